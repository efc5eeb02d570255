"""A domain's NICs: each vif spec checked and resolved (MAC, tap name, bridge, MTU, ip=,
rate=) and described in XenStore as libxl describes it.

xl-network-configuration(5) (mac, bridge, vifname, type, model, mtu, script, backend),
xenstore-paths (backend/vif and device/vif). What Xen's vif-bridge script does (the tap
``vifD.N`` on the bridge, up, with the guest's MTU, its filters) xenlite does itself
(domain/vifhost.py); the XenStore nodes then say ``hotplug-status = connected``, as after
the script.

Choices, and why:

- A NIC without ``mac=`` gets one in Xen's OUI 00:16:3e, derived from the domain's UUID
  and the devid, so the same config (with its uuid) gets the same MAC, and kept in the
  domain's config, as libxl keeps the one it chose: a reboot keeps it. A derived MAC that
  another domain of the host has is derived again, so two domains never share one.
- ``ip=``, ``rate=``, ``script=`` and ``gatewaydev=`` are honoured on the host side
  (domain/vifhost.py) and written to the backend as libxl writes them; COLO's
  ``forwarddev=`` is refused.
- PV and PVH guests get virtio-net whatever ``model=`` says, as netfront ignores it on Xen;
  an emulated NIC (``type=ioemu``) is refused on them, as libxl refuses it.
- An HVM guest's vif is emulated (libxl's default ``type=ioemu``): ``model=`` is the QEMU
  device (libxl's default ``rtl8139``), as libxl hands it to QEMU; ``type=vif`` gives it
  the PV NIC instead, virtio-net here. (Xen gives an ioemu vif both, and the guest's PV
  drivers unplug the emulated one; a guest here sees the one it asked for.) A vif hot-plugged
  into an HVM guest is PV, as xl network-attach's is on Xen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from xenlite.base.errors import DomainError, HostError, Unsupported
from xenlite.config.domain.model import DEVID_AUTO, DeviceNic, NicType
from xenlite.domain import xspaths
from xenlite.domain.hotplug import XEN_SCRIPT_DIR
from xenlite.domain.vifhost import DEFAULT_BRIDGE, DEFAULT_MTU, HostSide, Mode, host_side
from xenlite.domain.xspaths import Node
from xenlite.host import net
from xenlite.qemu.hvm import DEFAULT_NIC_MODEL
from xenlite.qemu.netdev import NIC_DEVICE, GuestNic

XEN_OUI = "00:16:3e"


@dataclass(frozen=True, slots=True)
class PreparedNic:
    """A NIC checked and resolved: its libxl device (MAC and devid set, as libxl keeps
    them), its host side (domain/vifhost.py), and what QEMU is given."""

    nic: DeviceNic
    host: HostSide
    qemu: GuestNic


def describe(nic: DeviceNic) -> str:
    return f"vif {nic.devid}" + (f" ({nic.mac})" if nic.mac else "")


def prepare_nics(
    nics: Sequence[DeviceNic],
    *,
    domid: int,
    uuid: str,
    taken_macs: Iterable[str],
    emulated: bool = False,
) -> list[PreparedNic]:
    """Check and resolve the config's NICs for domain ``domid`` (``emulated``: an HVM
    domain's, which are emulated unless ``type=vif``).

    :raise DomainError: for a vif spec xenlite cannot honour, naming the vif and the fix
    :raise Unsupported: for a key that is not in xenlite yet, or cannot be on QEMU
    """
    taken = {m.lower() for m in taken_macs}
    prepared: list[PreparedNic] = []
    devids: set[int] = set()
    for index, nic in enumerate(nics):
        devid = nic.devid if nic.devid != DEVID_AUTO else index
        nic = replace(nic, devid=devid)
        what = describe(nic)
        if devid in devids:
            raise DomainError(what, f"devid {devid} is given twice", "give each vif its own devid=")
        devids.add(devid)
        _refuse_unsupported(nic, what, emulated=emulated)
        mac = _mac(nic, what, uuid, taken)
        taken.add(mac)
        if emulated and nic.nictype is not NicType.VIF:
            model = nic.model or DEFAULT_NIC_MODEL
            resolved = replace(nic, mac=mac, nictype=NicType.VIF_IOEMU, model=model)
        else:
            model = NIC_DEVICE
            resolved = replace(nic, mac=mac, nictype=NicType.VIF)
        side = host_side(resolved, domid, what)
        try:
            net.check_name(side.tap, what)
        except HostError as exc:
            raise DomainError(what, exc.cause, exc.fix) from None
        prepared.append(
            PreparedNic(
                nic=resolved,
                host=side,
                qemu=GuestNic(devid=devid, tap=side.tap, mac=mac, mtu=side.mtu, model=model),
            )
        )
    return prepared


def _refuse_unsupported(nic: DeviceNic, what: str, *, emulated: bool) -> None:
    if nic.backend_domname not in xspaths.DOM0_NAMES or nic.backend_domid != 0:
        raise Unsupported(
            what,
            f"backend={nic.backend_domname}: xenlite serves every vif from dom0 (there are no "
            "driver domains on a QEMU host)",
            "remove backend= from the vif spec",
        )
    if nic.nictype is NicType.VIF_IOEMU and not emulated:
        raise DomainError(
            what,
            "type=ioemu is an emulated NIC, which a PV or PVH guest cannot have (as libxl "
            "refuses it)",
            "remove type=ioemu (or use type=vif)",
        )
    if nic.coloft_forwarddev:
        raise Unsupported(
            what,
            "forwarddev= (COLO) is not in xenlite: it needs Xen's COLO replication",
            "remove forwarddev= from the vif spec",
        )


def _mac(nic: DeviceNic, what: str, uuid: str, taken: set[str]) -> str:
    if nic.mac:
        mac = nic.mac.lower()
        octets = mac.split(":")
        if len(octets) != 6 or not all(
            len(o) == 2 and all(c in "0123456789abcdef" for c in o) for o in octets
        ):
            raise DomainError(what, f"mac={nic.mac} is not a MAC address", "write mac=XX:XX:...")
        if int(octets[0], 16) & 1:
            raise DomainError(
                what,
                f"mac={nic.mac} is a multicast address, which no NIC can have",
                "give a unicast MAC (the first octet even), or leave mac= out",
            )
        return mac
    for attempt in range(256):
        digest = hashlib.sha256(f"{uuid}/{nic.devid}/{attempt}".encode()).digest()
        mac = f"{XEN_OUI}:{digest[0] & 0x7F:02x}:{digest[1]:02x}:{digest[2]:02x}"
        if mac not in taken:
            return mac
    raise DomainError(what, "no free MAC address could be derived", "give one: mac=")


def vif_roots(domid: int, devid: int) -> tuple[str, str, str]:
    """The directories that describe one NIC (its removal removes them)."""
    return (
        xspaths.backend_path("vif", domid, devid),
        xspaths.frontend_path("vif", domid, devid),
        xspaths.libxl_device_path(domid, "vif", devid),
    )


def vif_nodes(domid: int, nics: Sequence[DeviceNic], *, before_script: bool = False) -> list[Node]:
    """The backend, frontend and /libxl nodes libxl writes for each NIC (resolved by
    prepare_nics), in state 4 (Connected) with its hotplug script done: the tap is wired and
    QEMU has the NIC before the nodes are written. ``before_script``: for a script program
    about to run, ``hotplug-status`` empty, as libxl writes it for the script to fill."""
    nodes: list[Node] = []
    for nic in nics:
        back, front, record = vif_roots(domid, nic.devid)
        mtu = nic.mtu or DEFAULT_MTU
        script = nic.script or Mode.BRIDGE.value
        entries = [
            ("frontend-id", str(domid)),
            ("online", "1"),
            ("state", xspaths.XENBUS_CONNECTED),
            ("script", script if script.startswith("/") else f"{XEN_SCRIPT_DIR}/{script}"),
        ]
        if nic.ifname:
            entries.append(("vifname", nic.ifname))
        entries.append(("mac", nic.mac or ""))
        if nic.ip:
            entries.append(("ip", nic.ip))
        if nic.gatewaydev:
            entries.append(("gatewaydev", nic.gatewaydev))
        if nic.rate_interval_usecs > 0:
            entries.append(("rate", f"{nic.rate_bytes_per_interval},{nic.rate_interval_usecs}"))
        if mtu != DEFAULT_MTU:
            entries.append(("mtu", str(mtu)))
        entries += [
            ("bridge", nic.bridge or DEFAULT_BRIDGE),
            ("handle", str(nic.devid)),
            ("type", str(nic.nictype)),
            ("hotplug-status", "" if before_script else "connected"),
        ]
        front_entries = [
            Node("handle", str(nic.devid)),
            Node("mac", nic.mac or ""),
            Node("mtu", str(mtu), xspaths.roperm(domid)),  # libxl's ro_front
            Node("trusted", "0" if nic.trusted is False else "1"),
        ]
        nodes += xspaths.device_nodes(domid, (back, front, record), entries, front_entries)
    return nodes
