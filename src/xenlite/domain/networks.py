"""A running domain's NICs: listed, hot-plugged and unplugged.

xl.1 "network-list", "network-attach", "network-detach". A mixin of ``DomainManager``, as
DomainDevices is for disks: the manager brings the registry (``lookup``), the XenStore
client, the record store and the host.

Hot-plug is QEMU's: the NIC's tap is made on its bridge (domain/nics.py), then
``netdev_add`` of the tap backend and ``device_add`` of its virtio-net in a free slot of
the domain's NIC bridge (qemu/netdev.py); unplug is ``device_del``, which the guest
acknowledges (QEMU's DEVICE_DELETED event), then ``netdev_del`` and the tap's removal. As
for disks, the record names a NIC before QEMU has it and until QEMU let it go, and a takeover
finishes a NIC QEMU has no device for as a detach (its backend, tap, nodes and record entry
go; ``xl dmesg`` says so).
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import DeviceNotFound, DomainError, QemuCommandError, XenliteError
from xenlite.config.domain.model import DEVID_AUTO, DeviceNic, DomainConfig
from xenlite.domain import vifhost, xspaths
from xenlite.domain.hotplug import run_script, script_path
from xenlite.domain.live import Domain, EngineHost, cut_short_text, live_monitor, unplug
from xenlite.domain.nics import PreparedNic, describe, prepare_nics, vif_nodes, vif_roots
from xenlite.domain.state import DomainState, require
from xenlite.domain.vifhost import HostSide, Mode
from xenlite.qemu.monitor import Monitor
from xenlite.qemu.netdev import NIC_SLOTS, free_nic_slot, netdev, nic_device
from xenlite.xenstore.client import XenStoreClient

log = logging.getLogger(__name__)

_BACKEND_KEYS = ("bridge", "script", "ip", "rate", "gatewaydev", "vifname")


@dataclass(frozen=True, slots=True)
class VifRow:
    """One line of ``xl network-list``, as libxl_device_nic_getinfo reads it."""

    devid: int
    backend_id: int
    mac: str
    state: int
    evtch: int  # -1: no Xen frontend writes one (QEMU's virtio-net has none)
    rref_tx: int
    rref_rx: int
    backend: str
    # Beyond xl's columns (``xl network-list -l``): what the backend says of the vif, as its
    # script reads it; "" where the node is absent.
    domid: int = -1
    bridge: str = ""
    script: str = ""
    ip: str = ""
    rate: str = ""
    gatewaydev: str = ""
    vifname: str = ""


class DomainNetworks:
    """NIC operations on the manager's domains."""

    xs: XenStoreClient
    host: EngineHost
    _log_hypervisor: Callable[[str], None]

    @abstractmethod
    def lookup(self, dom: str) -> Domain:
        """The domain named ``dom`` (a name or a domid); the manager provides it."""

    @abstractmethod
    def _macs(self) -> list[str]:
        """The MACs of every live domain's NICs; the manager provides it."""

    @abstractmethod
    async def _keep_config(self, domain: Domain, config: DomainConfig) -> None:
        """Make ``config`` the domain's, in its record too; DomainResources provides it."""

    async def network_list(self, dom: str) -> list[VifRow]:
        """xl network-list: the domain's vifs as libxl's device records describe them."""
        domid = self.lookup(dom).domid

        async def number(path: str) -> int:
            return xspaths.int_or_unset(await xspaths.read_str(self.xs, path))

        rows = []
        records = f"{xspaths.libxl_path(domid)}/device/vif"
        for name in sorted(await self.xs.directory_if_exists(records), key=xspaths.numeric_order):
            front = await xspaths.read_str(self.xs, f"{records}/{name}/frontend")
            back = await xspaths.read_str(self.xs, f"{records}/{name}/backend")
            if front is None or back is None or not name.isdigit():
                continue
            said = {key: await xspaths.read_str(self.xs, f"{back}/{key}") or ""
                    for key in _BACKEND_KEYS}  # fmt: skip
            rows.append(
                VifRow(
                    devid=int(name),
                    backend_id=await number(f"{front}/backend-id"),
                    mac=await xspaths.read_str(self.xs, f"{front}/mac") or "",
                    state=await number(f"{front}/state"),
                    evtch=await number(f"{front}/event-channel"),
                    rref_tx=await number(f"{front}/tx-ring-ref"),
                    rref_rx=await number(f"{front}/rx-ring-ref"),
                    backend=back,
                    domid=domid,
                    **said,
                )
            )
        return rows

    async def network_attach(self, dom: str, nic: DeviceNic) -> PreparedNic:
        """xl network-attach: check ``nic`` as a create would, then plug it into the guest.

        :raise DomainStateError: unless the domain is running or paused
        :raise DomainError: for a bad vif spec, a missing bridge, or no free slot
        :raise QemuError: when QEMU refuses the NIC (its message)
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="attach a vif")  # fmt: skip
            own = domain.config.nics
            if nic.devid == DEVID_AUTO:  # libxl: the next free devid
                nic = replace(nic, devid=max((n.devid for n in own), default=-1) + 1)
            if any(n.devid == nic.devid for n in own):
                raise DomainError(
                    f"{describe(nic)} for domain '{domain.name}'",
                    f"the domain has a vif {nic.devid} already",
                    "give another devid= (or leave it out)",
                )
            (prepared,) = prepare_nics(
                [nic], domid=domain.domid, uuid=domain.record.uuid, taken_macs=self._macs()
            )
            monitor = live_monitor(domain)
            slot = free_nic_slot(await monitor.execute("query-pci"))
            if slot is None:
                raise DomainError(
                    f"{describe(prepared.nic)} for domain '{domain.name}'",
                    f"the domain has {len(NIC_SLOTS)} vifs, as many as it can hold",
                    "detach a vif first (xl network-detach)",
                )
            before = domain.config
            async with AsyncExitStack() as undo:
                await self._keep_config(domain, replace(before, nics=(*own, prepared.nic)))
                undo.push_async_callback(self._keep_config, domain, before)
                if prepared.host.mode is not Mode.SCRIPT:  # _wire_vifs writes a script's
                    await xspaths.write_nodes(self.xs, vif_nodes(domain.domid, [prepared.nic]))
                    undo.push_async_callback(self._remove_vif_nodes, domain.domid, prepared.nic)
                await self._wire_vifs(domain.domid, domain.name, [prepared], undo)
                crash_point("attach:tap-plugged")
                await monitor.execute("netdev_add", netdev(prepared.qemu))
                undo.push_async_callback(_netdev_del, monitor, prepared.qemu.netdev_id)
                await monitor.execute("device_add", nic_device(prepared.qemu, slot))
                undo.pop_all()
        return prepared

    async def network_detach(self, dom: str, which: str) -> None:
        """xl network-detach: unplug the NIC ``which`` (its devid or its MAC).

        :raise DomainStateError: unless the domain is running or paused
        :raise DeviceNotFound: for a NIC the domain does not have
        :raise DomainError: when the guest does not let it go
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="detach a vif")  # fmt: skip
            found = _find_nic(domain, which)
            monitor = live_monitor(domain)
            await unplug(
                domain, monitor, f"nic{found.devid}",
                what=f"vif {found.devid} of domain '{domain.name}'",
                fix="unpause the domain, or check that the guest handles PCI hot-unplug",
            )  # fmt: skip
            crash_point("detach:nic-deleted")
            await self._release_nic(domain, monitor, found)

    async def finish_nic_changes(self, domain: Domain, devices: set[str]) -> None:
        """On a takeover: finish, as detaches, the NICs the record names and QEMU has no
        device for (``devices``: QEMU's; their network-attach or -detach was cut short)."""
        monitor = live_monitor(domain)
        for nic in domain.config.nics:
            if f"nic{nic.devid}" in devices:
                continue
            said = cut_short_text(domain, describe(nic))
            log.warning("domain %d: finishing the cut-short attach or detach of %s",
                        domain.domid, describe(nic))  # fmt: skip
            try:
                await self._release_nic(domain, monitor, nic)
            except XenliteError as exc:
                log.error("domain %d: %s not detached: %s", domain.domid, describe(nic), exc)
                self._log_hypervisor(said + f"detaching it failed ({exc}): xl network-detach it")
                continue
            self._log_hypervisor(said + "it is detached")

    async def _release_nic(self, domain: Domain, monitor: Monitor, nic: DeviceNic) -> None:
        """The end of a detach, once QEMU has no device for ``nic``: its backend, its tap,
        its nodes and its record entry."""
        await _netdev_del(monitor, f"vif{nic.devid}")
        await self._unplug_vifs(domain, [nic])
        await self._remove_vif_nodes(domain.domid, nic)
        rest = tuple(n for n in domain.config.nics if n is not nic)
        await self._keep_config(domain, replace(domain.config, nics=rest))

    async def _wire_vifs(
        self, domid: int, name: str, prepared: Sequence[PreparedNic], undo: AsyncExitStack
    ) -> None:
        """Make the host side of ``prepared`` (domain/vifhost.py) and run the script programs
        among them (``online``, their nodes written first), as libxl runs them before the
        device is used; ``undo`` takes it all back (``offline`` first)."""
        sides = [one.host for one in prepared]
        notes = await asyncio.to_thread(vifhost.plug, sides, root=self.host.root)
        undo.push_async_callback(asyncio.to_thread, vifhost.unplug, sides, root=self.host.root)
        for one in prepared:
            if one.host.mode is not Mode.SCRIPT:
                continue
            await xspaths.write_nodes(self.xs, vif_nodes(domid, [one.nic], before_script=True))
            undo.push_async_callback(self._remove_vif_nodes, domid, one.nic)
            undo.push_async_callback(self._vif_script_offline, domid, name, one.host)
            await self._vif_script(domid, one.host, "online")
            await asyncio.to_thread(vifhost.finish_scripted, one.host, root=self.host.root)
        for note in notes:
            self._log_hypervisor(f"Domain {domid} ({name}): {note}")

    async def _vif_script(self, domid: int, side: HostSide, action: str) -> None:
        """Run a vif's script program with ``action`` (online, offline) as libxl does.

        :raise DomainError: when it fails, or (online) does not say the vif is connected
        """
        assert side.script is not None
        script = script_path(side.script, self.host.root)
        backend = xspaths.backend_path("vif", domid, side.devid)
        what = f"{side.what} of domain {domid}"
        env = {"vif": side.netback_name, "netdev": side.gatewaydev or ""}
        await run_script(self.xs, script, [action, "type_if=vif"], kind="vif", backend=backend,
                         root=self.host.root, what=what, extra_env=env)  # fmt: skip
        if action != "online":
            return
        status = await xspaths.read_str(self.xs, f"{backend}/hotplug-status")
        if status != "connected":
            raise DomainError(
                what,
                f"vif script {script} online exited 0 but left hotplug-status "
                f"{status or 'empty'} (Xen's vifs connect only at 'connected')",
                "make the script write it as Xen's success() does: xenstore-write "
                '"$XENBUS_PATH/hotplug-status" connected',
            )

    async def _vif_script_offline(self, domid: int, name: str, side: HostSide) -> None:
        """``offline`` of a vif's script program; a failure is logged and the removal goes
        on, as libxl goes on."""
        try:
            await self._vif_script(domid, side, "offline")
        except XenliteError as exc:
            log.error("domain %d: %s", domid, exc)
            self._log_hypervisor(f"Domain {domid} ({name}): {exc}")

    async def _unplug_vifs(self, domain: Domain, nics: Iterable[DeviceNic]) -> None:
        """Remove the host side of ``nics`` (QEMU has let them go): a script program's
        ``offline`` (their nodes are still there), then rules, shaping, taps."""
        sides = [vifhost.removal_side(nic, domain.domid) for nic in nics]
        for side in sides:
            if side.mode is Mode.SCRIPT:
                await self._vif_script_offline(domain.domid, domain.name, side)
        await asyncio.to_thread(vifhost.unplug, sides, root=self.host.root)

    async def _remove_vif_nodes(self, domid: int, nic: DeviceNic) -> None:
        await xspaths.remove_device(self.xs, domid, vif_roots(domid, nic.devid))


def _find_nic(domain: Domain, which: str) -> DeviceNic:
    """The domain's NIC of devid or MAC ``which`` (xl network-detach takes either)."""
    for nic in domain.config.nics:
        if (which.isdigit() and nic.devid == int(which)) or (
            nic.mac is not None and nic.mac.lower() == which.lower()
        ):
            return nic
    raise DeviceNotFound(
        f"vif {which} of domain '{domain.name}'",
        "the domain has no such vif",
        f"see its vifs with: xl network-list {domain.name}",
    )


async def _netdev_del(monitor: Monitor, netdev_id: str) -> None:
    """netdev_del, a backend QEMU does not have counting as deleted."""
    try:
        await monitor.execute("netdev_del", {"id": netdev_id})
    except QemuCommandError as exc:
        if exc.error_class != "DeviceNotFound" and "not found" not in exc.desc:
            raise
