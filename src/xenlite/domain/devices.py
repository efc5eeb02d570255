"""A running domain's devices: its disks listed, hot-plugged and unplugged.

xl.1 "block-list", "block-attach", "block-detach". A mixin of ``DomainManager``: the manager
brings the registry (``lookup``), the XenStore client, the record store and the disk claims.

Hot-plug is QEMU's: ``blockdev-add`` of the disk's nodes and ``device_add`` of its
virtio-blk in a free slot of the domain's disk bridge (qemu/blockdev.py); unplug is
``device_del``, which the guest acknowledges (QEMU's DEVICE_DELETED event), then
``blockdev-del``. As in Xen, a detach needs the guest's cooperation; unlike Xen's, QEMU
cannot take a PCI device away from a guest that holds it, so ``--force`` cannot either,
and says so.

Crash-only: the record names a disk before QEMU gets it and until QEMU has let it go, so a
daemon killed in between leaves a record naming a disk QEMU may lack; block-detach of it
then finishes (a device or node QEMU no longer has counts as gone).
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace

from xenlite.base.errors import DeviceNotFound, DomainError, QemuCommandError
from xenlite.config.domain.model import DeviceDisk, DomainConfig
from xenlite.config.specs.disk import vdev_to_devid
from xenlite.domain import xspaths
from xenlite.domain.disks import (
    PreparedDisk,
    VbdRow,
    describe,
    prepare_disks,
    vbd_nodes,
    vbd_number,
    vbd_roots,
    vbd_rows,
)
from xenlite.domain.live import Domain, live_monitor
from xenlite.domain.state import DomainState, require
from xenlite.qemu.blockdev import DISK_SLOTS, block_nodes, disk_device, free_disk_slot, node_name
from xenlite.qemu.monitor import Monitor
from xenlite.xenstore.client import XenStoreClient

DETACH_TIMEOUT = 10.0  # seconds the guest has to release a disk (device_del)
_HELD_FIX = "stop using it in the guest (unmount it) and try again"
_FORCE_NOTE = "; QEMU cannot take a PCI device from a guest that holds it, so --force cannot"


class DomainDevices:
    """Device operations on the manager's domains."""

    xs: XenStoreClient
    _disk_lock: asyncio.Lock

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
            slot = free_disk_slot(await monitor.execute("query-pci"))
            if slot is None:
                raise DomainError(
                    f"{describe(disk)} for domain '{domain.name}'",
                    f"the domain has {len(DISK_SLOTS)} disks, as many as it can hold",
                    "detach a disk first (xl block-detach)",
                )
            before = domain.config
            async with AsyncExitStack() as undo:
                await self._keep_config(domain, replace(before, disks=(*own, prepared.disk)))
                undo.push_async_callback(self._keep_config, domain, before)
                for node in block_nodes(prepared.qemu):
                    await monitor.execute("blockdev-add", node)
                    undo.push_async_callback(_blockdev_del, monitor, str(node["node-name"]))
                await self._write_vbd_nodes(domain.domid, [prepared.disk])
                undo.push_async_callback(self._remove_vbd_nodes, domain.domid, prepared.disk)
                await monitor.execute("device_add", disk_device(prepared.qemu, slot))
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
            gone = domain.expect_device_deleted(device)
            try:
                await monitor.execute("device_del", {"id": device})
            except QemuCommandError as exc:
                if exc.error_class != "DeviceNotFound":
                    raise
                domain.device_deleted(device)  # QEMU never had it, or let it go already
            try:
                await asyncio.wait_for(asyncio.shield(gone), DETACH_TIMEOUT)
            except TimeoutError:
                raise DomainError(
                    f"disk {which} of domain '{domain.name}'",
                    f"the guest did not release it within {DETACH_TIMEOUT:g} s"
                    + (" (the domain is paused)" if domain.state is DomainState.PAUSED else ""),
                    _HELD_FIX + (_FORCE_NOTE if force else ""),
                ) from None
            await _blockdev_del(monitor, device)
            await _blockdev_del(monitor, f"{device}-file")
            for disk in found:
                await self._remove_vbd_nodes(domain.domid, disk)
            rest = tuple(d for d in domain.config.disks if d not in found)
            await self._keep_config(domain, replace(domain.config, disks=rest))

    async def _write_vbd_nodes(self, domid: int, disks: Sequence[DeviceDisk]) -> None:
        await xspaths.write_nodes(self.xs, vbd_nodes(domid, disks))

    async def _remove_vbd_nodes(self, domid: int, disk: DeviceDisk) -> None:
        for path in vbd_roots(domid, disk):
            await self.xs.rm(path)


async def _blockdev_del(monitor: Monitor, node: str) -> None:
    """blockdev-del, a node QEMU does not have counting as deleted."""
    try:
        await monitor.execute("blockdev-del", {"node-name": node})
    except QemuCommandError as exc:
        if "Failed to find node" not in exc.desc:
            raise
