"""A running domain's devices: its disks listed, hot-plugged and unplugged, its cdrom media
changed.

xl.1 "block-list", "block-attach", "block-detach", "cd-insert", "cd-eject". A mixin of
``DomainManager``: the manager brings the registry (``lookup``), the XenStore client, the
record store and the disk claims.

Hot-plug is QEMU's: ``blockdev-add`` of the disk's nodes and ``device_add`` of its
virtio-blk in a free slot of the domain's disk bridge (qemu/blockdev.py), or of its scsi-cd
on the domain's cdrom controller (plugged into the bridge with the first cdrom); unplug is
``device_del``, which the guest acknowledges (QEMU's DEVICE_DELETED event), then
``blockdev-del``. As in Xen, a detach needs the guest's cooperation; unlike Xen's, QEMU
cannot take a PCI device away from a guest that holds it, so ``--force`` cannot either,
and says so.

A disk with ``script=`` has its block script run (domain/hotplug.py) once its XenStore nodes
are written: ``add`` before QEMU opens the device the script set up, ``remove`` after QEMU
let it go; create and destroy do the same for the config's scripted disks.

A cdrom's medium changes as on a real drive: the new medium's nodes are opened first, then
the tray opens (forced, as a toolstack's eject is), the old medium leaves, the new one goes
in and the tray closes; the guest sees a media change. Xen's cd-insert serves HVM guests
only (their emulated drives); here every guest's cdrom is QEMU's, so PV and PVH guests
have it too.

Crash-only: the record names a disk before QEMU gets it and until QEMU has let it go, so a
daemon killed in between leaves a record naming a disk QEMU has no device for. The next
daemon finishes such a disk as a detach when it takes the domain over (its nodes in QEMU
and XenStore removed, its block script run with ``remove``, the record entry dropped, and
a line in ``xl dmesg``): an attach that did not report success leaves nothing, a detach
whose guest let the disk go completes. A block-detach of a disk QEMU lacks finishes the
same way (a device or node QEMU no longer has counts as gone).
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import DeviceNotFound, DomainError, QemuCommandError, XenliteError
from xenlite.config.domain.model import DeviceDisk, DomainConfig
from xenlite.config.specs.disk import vdev_to_devid
from xenlite.domain import xspaths
from xenlite.domain.disks import (
    PreparedDisk,
    VbdRow,
    describe,
    medium_entries,
    prepare_disks,
    vbd_nodes,
    vbd_number,
    vbd_roots,
    vbd_rows,
    with_script_device,
)
from xenlite.domain.hotplug import run_block_script, script_device, script_path
from xenlite.domain.live import Domain, EngineHost, cut_short_text, live_monitor, unplug
from xenlite.domain.state import DomainState, require
from xenlite.domain.xspaths import Node
from xenlite.qemu.blockdev import (
    CDROM_CONTROLLER_ID,
    DISK_SLOTS,
    BlockDisk,
    block_nodes,
    cdrom_controller,
    cdrom_device,
    disk_device,
    free_disk_slot,
    has_cdrom_controller,
    medium_node,
    next_medium_node,
    node_name,
)
from xenlite.qemu.monitor import Monitor
from xenlite.xenstore.client import XenStoreClient

log = logging.getLogger(__name__)

_HELD_FIX = "stop using it in the guest (unmount it) and try again"
_FORCE_NOTE = "; QEMU cannot take a PCI device from a guest that holds it, so --force cannot"


class DomainDevices:
    """Device operations on the manager's domains."""

    xs: XenStoreClient
    host: EngineHost
    _disk_lock: asyncio.Lock
    _log_hypervisor: Callable[[str], None]

    @abstractmethod
    def lookup(self, dom: str) -> Domain:
        """The domain named ``dom`` (a name or a domid); the manager provides it."""

    @abstractmethod
    def _attached_disks(self) -> list[tuple[str, DeviceDisk]]:
        """Every disk of every domain, with its domain's name; the manager provides it."""

    @abstractmethod
    async def _keep_config(self, domain: Domain, config: DomainConfig) -> None:
        """Make ``config`` the domain's, in its record too; DomainResources provides it."""

    async def block_list(self, dom: str) -> list[VbdRow]:
        """xl block-list: the domain's vbds as its XenStore nodes describe them."""
        domain = self.lookup(dom)
        return await vbd_rows(self.xs, domain.domid)

    async def block_attach(self, dom: str, disk: DeviceDisk) -> PreparedDisk:
        """xl block-attach: check ``disk`` as a create would, then plug it into the guest.

        :raise DomainStateError: unless the domain is running or paused
        :raise DomainError: for a bad or busy disk (see prepare_disks), or no free port
        :raise QemuError: when QEMU refuses the disk (its message)
        """
        domain = self.lookup(dom)
        async with self._disk_lock, domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="attach a disk")  # fmt: skip
            monitor = live_monitor(domain)
            own = domain.config.disks
            others = [(n, d) for n, d in self._attached_disks() if n != domain.name]
            (prepared,) = await asyncio.to_thread(
                prepare_disks, [disk], domain=domain.name, attached=others, existing=own
            )
            pci = await monitor.execute("query-pci")
            controller = prepared.qemu.cdrom and has_cdrom_controller(pci)
            slot = None if controller else free_disk_slot(pci)
            if slot is None and not controller:
                raise DomainError(
                    f"{describe(disk)} for domain '{domain.name}'",
                    f"the domain has {len(DISK_SLOTS)} disks, as many as it can hold",
                    "detach a disk first (xl block-detach)",
                )
            before = domain.config
            async with AsyncExitStack() as undo:
                await self._keep_config(domain, replace(before, disks=(*own, prepared.disk)))
                undo.push_async_callback(self._keep_config, domain, before)
                crash_point("attach:config-kept")
                await self._write_vbd_nodes(domain.domid, [prepared.disk])
                undo.push_async_callback(self._remove_vbd_nodes, domain.domid, prepared.disk)
                crash_point("attach:nodes-written")
                if prepared.disk.script is not None:
                    prepared = await self._plug_scripted(domain.domid, prepared, undo)
                await _add_nodes(monitor, prepared.qemu, undo)
                crash_point("attach:blockdev-added")
                if slot is not None and not prepared.qemu.cdrom:
                    await monitor.execute("device_add", disk_device(prepared.qemu, slot))
                else:
                    if slot is not None:  # the domain's first cdrom: its controller first
                        await monitor.execute("device_add", cdrom_controller(slot))
                        undo.push_async_callback(_device_del, monitor, CDROM_CONTROLLER_ID)
                    await monitor.execute("device_add", cdrom_device(prepared.qemu))
                undo.pop_all()
        return prepared

    async def block_detach(self, dom: str, which: str, *, force: bool = False) -> None:
        """xl block-detach: unplug the disk ``which`` (a vdev such as xvdb, or its number).

        :raise DomainStateError: unless the domain is running or paused
        :raise DomainError: for a disk the domain does not have, or one the guest holds
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="detach a disk")  # fmt: skip
            number = vbd_number(which, f"disk {which} of domain '{domain.name}'")
            found = [d for d in domain.config.disks if vdev_to_devid(d.vdev or "") == number]
            if not found:
                raise DeviceNotFound(
                    f"disk {which} of domain '{domain.name}'",
                    "the domain has no such disk",
                    f"see its disks with: xl block-list {domain.name}",
                )
            monitor = live_monitor(domain)
            device = node_name(number)
            medium = medium_node(await monitor.execute("query-block"), device) or device
            await unplug(domain, monitor, device, what=f"disk {which} of domain '{domain.name}'",
                         fix=_HELD_FIX + (_FORCE_NOTE if force else ""))  # fmt: skip
            crash_point("detach:device-deleted")
            await self._release_disks(domain, monitor, found, medium)

    async def finish_disk_changes(self, domain: Domain, devices: set[str]) -> None:
        """On a takeover: finish, as detaches, the disks the record names and QEMU has no
        device for (``devices``: QEMU's; their block-attach or block-detach was cut short)."""
        monitor = live_monitor(domain)
        for disk in domain.config.disks:
            device = node_name(vdev_to_devid(disk.vdev or ""))
            if device in devices:
                continue
            log.warning("domain %d: finishing the cut-short attach or detach of %s",
                        domain.domid, describe(disk))  # fmt: skip
            said = cut_short_text(domain, describe(disk))
            try:
                await _blockdev_del(monitor, f"{device}.1")  # a cdrom's second medium
                await _blockdev_del(monitor, f"{device}.1-file")
                await self._release_disks(domain, monitor, [disk], device)
            except XenliteError as exc:
                # The domain is taken over all the same; block-detach can finish it later.
                log.error("domain %d: %s not detached: %s", domain.domid, describe(disk), exc)
                self._log_hypervisor(said + f"detaching it failed ({exc}): xl block-detach it")
                continue
            self._log_hypervisor(said + "it is detached")

    async def _release_disks(
        self, domain: Domain, monitor: Monitor, disks: Sequence[DeviceDisk], medium: str
    ) -> None:
        """The end of a detach, once QEMU has no device for ``disks``: their nodes in QEMU
        (``medium`` and its protocol node) and XenStore, their scripts, their record entry."""
        await _blockdev_del(monitor, medium)
        await _blockdev_del(monitor, f"{medium}-file")
        for disk in disks:
            await self._unplug_scripted(domain, disk)
            await self._remove_vbd_nodes(domain.domid, disk)
        rest = tuple(d for d in domain.config.disks if d not in disks)
        await self._keep_config(domain, replace(domain.config, disks=rest))

    async def cdrom_insert(self, dom: str, disk: DeviceDisk) -> PreparedDisk:
        """xl cd-insert (and cd-eject, with an empty ``disk``): put ``disk``'s medium into
        the domain's cdrom drive ``disk.vdev``, in place of whatever it holds.

        :raise DomainStateError: unless the domain is running or paused
        :raise DeviceNotFound: when the domain has no cdrom drive of that vdev
        :raise DomainError: for a bad or busy medium (see prepare_disks)
        :raise QemuError: when QEMU refuses the medium (its message)
        """
        domain = self.lookup(dom)
        async with self._disk_lock, domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="change a cdrom")  # fmt: skip
            number = vbd_number(disk.vdev or "", f"cdrom {disk.vdev} of domain '{domain.name}'")
            drive = _cdrom_drive(domain, number, disk.vdev or "")
            rest = [d for d in domain.config.disks if d is not drive]
            others = [(n, d) for n, d in self._attached_disks() if n != domain.name]
            inserted = replace(disk, vdev=drive.vdev, is_cdrom=1, removable=1, readwrite=0)
            (prepared,) = await asyncio.to_thread(
                prepare_disks, [inserted], domain=domain.name, attached=others, existing=rest
            )
            monitor = live_monitor(domain)
            device = node_name(number)
            old = medium_node(await monitor.execute("query-block"), device)
            new = next_medium_node(prepared.qemu, old)
            async with AsyncExitStack() as undo:
                await _add_nodes(monitor, prepared.qemu, undo, node=new)
                await monitor.execute("blockdev-open-tray", {"id": device, "force": True})
                if old is not None:
                    await monitor.execute("blockdev-remove-medium", {"id": device})
                undo.pop_all()
            if not prepared.qemu.empty:
                await monitor.execute("blockdev-insert-medium", {"id": device, "node-name": new})
            await monitor.execute("blockdev-close-tray", {"id": device})
            if old is not None:
                await _blockdev_del(monitor, old)
                await _blockdev_del(monitor, f"{old}-file")
            await self._write_medium_nodes(domain.domid, prepared.disk)
            disks = tuple(prepared.disk if d is drive else d for d in domain.config.disks)
            await self._keep_config(domain, replace(domain.config, disks=disks))
        return prepared

    async def _write_medium_nodes(self, domid: int, disk: DeviceDisk) -> None:
        back, _, record = vbd_roots(domid, disk)
        entries = medium_entries(disk, ejected=not disk.pdev_path)
        nodes = [Node(f"{root}/{key}", value) for root in (back, record) for key, value in entries]
        await xspaths.write_nodes(self.xs, nodes)

    async def _plug_scripted(
        self, domid: int, prepared: PreparedDisk, undo: AsyncExitStack
    ) -> PreparedDisk:
        """Run the disk's block script (``add``; its nodes are written) and give the disk the
        device the script set up; ``undo`` runs ``remove``.

        :raise DomainError: when the script fails or sets up no block device
        """
        disk = prepared.disk
        assert disk.script is not None
        back = vbd_roots(domid, disk)[0]
        script = script_path(disk.script, self.host.root)
        what = describe(disk)
        root = self.host.root
        await run_block_script(self.xs, script, "add", back, root=root, what=what)
        undo.push_async_callback(run_block_script, self.xs, script, "remove", back, root=root,
                                 what=what)  # fmt: skip
        device = await script_device(self.xs, back, script=script, what=what)
        return await asyncio.to_thread(with_script_device, prepared, device)

    async def _unplug_scripted(self, domain: Domain, disk: DeviceDisk) -> None:
        """Run a scripted disk's block script with ``remove`` (its nodes are still there).
        A failure is logged and the teardown goes on, as libxl ignores it on removal."""
        if disk.script is None:
            return
        back = vbd_roots(domain.domid, disk)[0]
        script = script_path(disk.script, self.host.root)
        try:
            await run_block_script(self.xs, script, "remove", back, root=self.host.root,
                                   what=describe(disk))  # fmt: skip
        except XenliteError as exc:
            log.error("domain %d: %s", domain.domid, exc)
            self._log_hypervisor(f"Domain {domain.domid} ({domain.name}): {exc}")

    async def _write_vbd_nodes(self, domid: int, disks: Sequence[DeviceDisk]) -> None:
        await xspaths.write_nodes(self.xs, vbd_nodes(domid, disks))

    async def _remove_vbd_nodes(self, domid: int, disk: DeviceDisk) -> None:
        await xspaths.remove_device(self.xs, domid, vbd_roots(domid, disk))


def _cdrom_drive(domain: Domain, number: int, vdev: str) -> DeviceDisk:
    for disk in domain.config.disks:
        if vdev_to_devid(disk.vdev or "") == number:
            if disk.is_cdrom:
                return disk
            raise DomainError(
                f"cdrom {vdev} of domain '{domain.name}'",
                f"{disk.vdev} is a disk, not a cdrom drive",
                "give the vdev of one of its cdrom drives (devtype=cdrom in xl block-list -l)",
            )
    raise DeviceNotFound(
        f"cdrom {vdev} of domain '{domain.name}'",
        "the domain has no such cdrom drive",
        f"give a drive it has (xl block-list), or add one: xl block-attach DOM '{vdev}:cdrom,r'",
    )


async def _add_nodes(
    monitor: Monitor, disk: BlockDisk, undo: AsyncExitStack, *, node: str | None = None
) -> None:
    """blockdev-add the disk's nodes (none for an empty drive), each deleted by ``undo``."""
    for props in block_nodes(disk, node):
        await monitor.execute("blockdev-add", props)
        undo.push_async_callback(_blockdev_del, monitor, str(props["node-name"]))


async def _device_del(monitor: Monitor, device: str) -> None:
    """device_del, a device QEMU does not have counting as deleted."""
    try:
        await monitor.execute("device_del", {"id": device})
    except QemuCommandError as exc:
        if exc.error_class != "DeviceNotFound":
            raise


async def _blockdev_del(monitor: Monitor, node: str) -> None:
    """blockdev-del, a node QEMU does not have counting as deleted."""
    try:
        await monitor.execute("blockdev-del", {"node-name": node})
    except QemuCommandError as exc:
        if "Failed to find node" not in exc.desc:
            raise
