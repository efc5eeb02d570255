"""The host side of a vif: its tap, wired as its script says (bridged, routed or NATed),
the anti-spoofing of its ``ip=``, the shaping of its ``rate=``; made before QEMU attaches to
the tap and removed after, in that order reversed.

xl-network-configuration(5) (ip, rate, script, gatewaydev), Xen's vif-bridge, vif-route,
vif-nat and vif-common.sh. What those scripts do on ``online`` xenlite does itself: the tap,
addresses, routes and proxy ARP through netlink (host/net.py), the rules through nftables
(host/nftables.py). Any other ``script=`` is a real program, run as libxl runs it
(domain/hotplug.py); this module then makes the tap it is given and, after it, shapes it.

Choices, and why:

- The tap is made down, its filters and its shaping are set, and only then is it brought
  up; a guest sends nothing before QEMU attaches, after all of it.
- ``ip=`` is a list of addresses or networks separated by spaces (vif-bridge reads it so),
  IPv4 or IPv6; each is checked here, so a typo fails the create naming it instead of
  letting every frame through. With the built-in scripts it is enforced (host/nftables.py);
  a custom script is handed it in the backend's ``ip`` node, as on Xen, where what it does
  "depends on the hotplug script".
- ``rate=`` is Xen's credit: ``rate_bytes_per_interval`` every ``rate_interval_usecs``,
  enforced by netback whatever the script. Shaped as a token bucket filled at that rate; its
  depth is the larger of one interval's credit and 128 KiB, as Linux netback lets credit
  pile up (so a 64 KiB TSO frame always fits).
- vif-route as Xen's: the tap has the host's address on ``gatewaydev`` (eth0 when none is
  given) as a /32, proxy ARP, and a route per ``ip=`` entry (metric 2, that source). Beyond
  Xen's script, each listed address gets a proxy neighbour entry on gatewaydev, so the
  guest answers for its address on that network without proxy ARP for the whole
  interface (what Xen's network-route turned on), and the entry goes with the guest.
- vif-nat as Xen's: the guest's address is ``ip=`` (default ``10.D/256.D%256.(devid+1)``),
  the tap has the router address (its last octet + 127) as a /32, proxy ARP, and a route to
  the guest; what Xen's network-nat did for every guest (MASQUERADE out of its netdev) is a
  rule per guest here, out of ``gatewaydev`` (or any interface but the tap). Its DHCP
  server set-up is not: the guest is given its address by hand or by the guest kit's ip=.
- Routing needs IPv4 forwarding, a setting of the whole host that xenlite never turns on by
  itself: when it is off, ``xl dmesg`` says so and how to turn it on.
- Removal is idempotent and names each piece by the domid and devid, so a teardown after a
  crash, or of a vif whose create failed halfway, removes what is there and nothing else.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from pathlib import Path

from xenlite.base.errors import DomainError, HostError
from xenlite.config.domain.model import DeviceNic
from xenlite.domain.hotplug import XEN_SCRIPT_DIR
from xenlite.host import net, nftables
from xenlite.host.nftables import Sources

log = logging.getLogger(__name__)

DEFAULT_BRIDGE = "xenbr0"  # libxl's default when neither the spec nor xl.conf names one
DEFAULT_MTU = 1500
DEFAULT_GATEWAYDEV = "eth0"  # vif-common.sh dom0_ip: netdev, else eth0
NETBACK_MIN_BURST = 131072  # bytes: Linux netback's least credit ceiling
ROUTE_METRIC = 2  # vif-route's metric for a vif (a tap gets 1)
_RTPROT_BOOT = 3  # what `ip route add` marks its routes with
_SCOPE_LINK = 253


class Mode(StrEnum):
    """What wires the tap: one of Xen's scripts built in, or the ``script=`` program."""

    BRIDGE = "vif-bridge"
    ROUTE = "vif-route"
    NAT = "vif-nat"
    SCRIPT = "script"


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: filled at ``bytes_per_second``, holding at most ``burst`` bytes."""

    bytes_per_second: int
    burst: int


@dataclass(frozen=True, slots=True)
class HostSide:
    """What the host has for one NIC of domain ``domid``."""

    domid: int
    devid: int
    tap: str
    mode: Mode
    bridge: str
    mtu: int
    sources: Sources | None  # ip= given: the guest may send only from these
    rate: Rate | None
    gatewaydev: str | None = None
    script: str | None = None  # Mode.SCRIPT: script= as written
    nat_address: ipaddress.IPv4Address | None = None  # Mode.NAT: the guest's address

    @property
    def netback_name(self) -> str:
        """The name netback gives the vif, which its script is told (``vif``)."""
        return f"vif{self.domid}.{self.devid}"

    @property
    def ifb(self) -> str:
        """The device the NIC's outgoing frames are shaped on (only with a rate)."""
        return f"ifb{self.domid}.{self.devid}"

    @property
    def what(self) -> str:
        return f"vif {self.devid} ({self.tap})"

    @property
    def routed_from(self) -> str:
        return self.gatewaydev or DEFAULT_GATEWAYDEV


def tap_name(domid: int, nic: DeviceNic) -> str:
    """The host interface of the NIC: its vifname, else ``vif<domid>.<devid>`` (Xen's)."""
    return nic.ifname or f"vif{domid}.{nic.devid}"


def mode_of(script: str | None) -> Mode:
    """The built-in script ``script=`` names (by name or under /etc/xen/scripts), else
    :attr:`Mode.SCRIPT`."""
    for mode in (Mode.BRIDGE, Mode.ROUTE, Mode.NAT):
        if script in (mode.value, f"{XEN_SCRIPT_DIR}/{mode.value}"):
            return mode
    return Mode.BRIDGE if script is None else Mode.SCRIPT


def host_side(nic: DeviceNic, domid: int, what: str) -> HostSide:
    """The host side of ``nic`` (its devid set) in domain ``domid``.

    :raise DomainError: for an ``ip=`` or ``rate=`` that cannot be honoured, naming it
    """
    mode = mode_of(nic.script)
    listed = sources(nic.ip, what) if nic.ip else None
    return HostSide(
        domid=domid,
        devid=nic.devid,
        tap=tap_name(domid, nic),
        mode=mode,
        bridge=nic.bridge or DEFAULT_BRIDGE,
        mtu=nic.mtu or DEFAULT_MTU,
        sources=listed if mode is not Mode.SCRIPT else None,
        rate=rate(nic.rate_bytes_per_interval, nic.rate_interval_usecs, what),
        gatewaydev=nic.gatewaydev,
        script=nic.script if mode is Mode.SCRIPT else None,
        nat_address=_nat_address(nic, domid, what) if mode is Mode.NAT else None,
    )


def removal_side(nic: DeviceNic, domid: int) -> HostSide:
    """The host side to remove for ``nic``, even from a config this xenlite would refuse
    now: whatever its ``ip=`` or ``rate=`` say, their rules and shaping are looked for."""
    try:
        return host_side(nic, domid, f"vif {nic.devid}")
    except DomainError:
        side = host_side(replace(nic, ip=None, rate_interval_usecs=0, script=None), domid, "")
        mode = mode_of(nic.script)
        return replace(side, mode=mode, script=nic.script if mode is Mode.SCRIPT else None,
                       sources=Sources((), ()) if nic.ip else None,
                       rate=Rate(0, 0) if nic.rate_interval_usecs else None)  # fmt: skip


def sources(text: str, what: str) -> Sources:
    """The networks of an ``ip=`` list.

    :raise DomainError: for an entry that is not an address or network
    """
    networks = []
    for entry in text.split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise DomainError(
                what,
                f"ip={text}: '{entry}' is not an IP address or network",
                "write ip=ADDRESS or ADDRESS/PREFIX, several separated by spaces",
            ) from None
    if not networks:
        raise DomainError(what, "ip= is empty", "give the guest's address, or leave ip= out")
    return Sources.of(networks)


def rate(per_interval: int, usecs: int, what: str) -> Rate | None:
    """The bucket of Xen's credit, None when there is no limit.

    :raise DomainError: for a rate tc cannot shape
    """
    if usecs <= 0:
        return None
    per_second = round(per_interval * 1_000_000 / usecs)
    if not 0 < per_second <= net.TBF_MAX_RATE:
        raise DomainError(
            what,
            f"rate= of {per_interval} bytes every {usecs} us ({per_second} bytes/s) cannot "
            f"be shaped (tc takes 1 to {net.TBF_MAX_RATE} bytes/s)",
            "give a rate within that, or leave rate= out",
        )
    return Rate(bytes_per_second=per_second, burst=max(per_interval, NETBACK_MIN_BURST))


def _nat_address(nic: DeviceNic, domid: int, what: str) -> ipaddress.IPv4Address:
    """vif-nat's guest address: the first of ``ip=`` (its prefix dropped, as the script
    does), else 10.(domid / 256).(domid % 256).(devid + 1)."""
    if not nic.ip:
        return ipaddress.IPv4Address(f"10.{domid // 256}.{domid % 256}.{nic.devid + 1}")
    first = nic.ip.split()[0]
    try:
        address = ipaddress.ip_interface(first).ip
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):
        raise DomainError(what, f"ip={nic.ip}: vif-nat needs the guest's IPv4 address first",
                          "write ip=ADDRESS (IPv4)")  # fmt: skip
    if int(address) & 0xFF > 128:
        raise DomainError(
            what,
            f"ip={first}: vif-nat's router address is the guest's last octet + 127, which "
            "would pass 255",
            "give the guest an address whose last octet is at most 128",
        )
    return address


def nat_router(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    """vif-nat's ``routing_ip``: the guest's address with 127 added to its last octet."""
    return address + 127


def plug(sides: Sequence[HostSide], *, root: Path) -> list[str]:
    """Make each NIC's host side (what its script does on ``online``; for a script program,
    only the tap it is given). On a failure what was made so far is removed again.

    :return: what ``xl dmesg`` should say about them (a setting the host lacks)
    :raise DomainError: when a bridge or gatewaydev is missing, or a step is refused
    """
    made: list[HostSide] = []
    notes: list[str] = []
    try:
        for side in sides:
            made.append(side)
            try:
                notes += _plug(side, root)
            except HostError as exc:
                raise DomainError(side.what, exc.cause, exc.fix) from None
    except BaseException:
        unplug(made, root=root)
        raise
    return notes


def _plug(side: HostSide, root: Path) -> list[str]:
    owner = net.owner_tag(root)
    alias = net.tap_alias(owner, side.domid)
    if side.mode is Mode.SCRIPT:
        # The script is given netback's name and does the rest (finish_scripted after it).
        net.add_tap(side.netback_name, bridge=None, mtu=side.mtu, alias=alias)
        return []
    bridge = net.require_bridge(side.bridge, side.what) if side.mode is Mode.BRIDGE else None
    main_ip = _address_of(side.routed_from, side) if side.mode is Mode.ROUTE else None
    net.add_tap(side.tap, bridge=bridge, mtu=side.mtu, alias=alias)
    if side.sources is not None:
        nftables.guard_sources(owner, device=side.tap, domid=side.domid, devid=side.devid,
                               sources=side.sources)  # fmt: skip
    if side.rate is not None:
        net.limit_rate(side.tap, ifb=side.ifb, bytes_per_second=side.rate.bytes_per_second,
                       burst=side.rate.burst, alias=alias)  # fmt: skip
    if side.mode is Mode.BRIDGE:
        net.set_up(side.tap)
        if side.gatewaydev:
            return [f"{side.what}: gatewaydev={side.gatewaydev} has no use with vif-bridge "
                    "(Xen's vif-bridge ignores it too)"]  # fmt: skip
        return []
    if side.mode is Mode.ROUTE:
        assert main_ip is not None
        _route_guest(side, main_ip)
    else:
        _nat_guest(side, owner)
    if net.ipv4_forwarding():
        return []
    return [f"{side.what}: {side.mode} with IPv4 forwarding off in the host: the guest "
            "reaches the host only (turn it on: sysctl -w net.ipv4.ip_forward=1)"]  # fmt: skip


def _address_of(device: str, side: HostSide) -> str:
    if net.find(device) is None:
        raise HostError(side.what, f"vif-route's gatewaydev {device} does not exist",
                        "give gatewaydev= the interface on the guest's network")  # fmt: skip
    for address in net.addresses(device):
        if address.family == socket.AF_INET:
            return address.address
    raise HostError(side.what, f"{device} has no IPv4 address (vif-route gives the tap the "
                    "host's address on gatewaydev)",
                    f"bring {device} up with an address, or give another gatewaydev=")  # fmt: skip


def _route_guest(side: HostSide, main_ip: str) -> None:
    net.change_address(side.tap, net.Address(socket.AF_INET, main_ip, 32), add=True)
    net.set_proxy_arp(side.tap)
    net.set_up(side.tap)
    for network in side.sources.ipv4 if side.sources else ():
        route = net.Route(family=socket.AF_INET, dst=str(network.network_address),
                          dst_len=network.prefixlen, gateway=None, priority=ROUTE_METRIC,
                          prefsrc=main_ip, scope=_SCOPE_LINK, proto=_RTPROT_BOOT)  # fmt: skip
        net.change_route(side.tap, route, add=True)
        if network.prefixlen == network.max_prefixlen:
            net.change_proxy_neighbour(side.routed_from, str(network.network_address), add=True)


def _nat_guest(side: HostSide, owner: str) -> None:
    guest = side.nat_address
    assert guest is not None
    router = str(nat_router(guest))
    net.change_address(side.tap, net.Address(socket.AF_INET, router, 32), add=True)
    net.set_up(side.tap)
    route = net.Route(family=socket.AF_INET, dst=str(guest), dst_len=32, gateway=None,
                      priority=None, prefsrc=router, scope=_SCOPE_LINK,
                      proto=_RTPROT_BOOT)  # fmt: skip
    net.change_route(side.tap, route, add=True)
    net.set_proxy_arp(side.tap)
    nftables.masquerade(owner, device=side.tap, domid=side.domid, devid=side.devid,
                        source=str(guest), outdev=side.gatewaydev)  # fmt: skip


def finish_scripted(side: HostSide, *, root: Path) -> None:
    """After a script program's ``online``: the tap is where QEMU will look (the script
    renamed it to its vifname, as vif-common.sh does), and shaped.

    :raise DomainError: when the script left no tap of that name
    """
    if net.find(side.tap) is None:
        left = " (it is still " + side.netback_name + ")" if net.find(side.netback_name) else ""
        raise DomainError(
            side.what,
            f"vif script {side.script} online left no interface {side.tap}{left}",
            "make the script rename the vif to its vifname as Xen's vif-common.sh does, or "
            "leave vifname= out",
        )
    if side.rate is not None:
        alias = net.tap_alias(net.owner_tag(root), side.domid)
        try:
            net.limit_rate(side.tap, ifb=side.ifb, bytes_per_second=side.rate.bytes_per_second,
                           burst=side.rate.burst, alias=alias)  # fmt: skip
        except HostError as exc:
            raise DomainError(side.what, exc.cause, exc.fix) from None


def unplug(sides: Iterable[HostSide], *, root: Path) -> None:
    """Remove each NIC's host side (what its script does on ``offline``): its rules, its
    shaping, its proxy entries, its tap. What is gone already is fine; a failure is logged
    and the rest go on."""
    owner = net.owner_tag(root)
    for side in sides:
        steps: list[Callable[[], object]] = []
        if side.sources is not None or side.mode is Mode.NAT:
            steps.append(partial(nftables.release, owner, side.domid, side.devid))
        if side.rate is not None:
            steps.append(partial(net.unlimit_rate, side.tap, ifb=side.ifb))
        if side.mode is Mode.ROUTE and side.sources is not None:
            for network in side.sources.ipv4:
                if network.prefixlen == network.max_prefixlen:
                    steps.append(partial(net.change_proxy_neighbour, side.routed_from,
                                         str(network.network_address), add=False))  # fmt: skip
        steps.append(partial(net.delete, side.tap))
        if side.mode is Mode.SCRIPT and side.tap != side.netback_name:
            steps.append(partial(net.delete, side.netback_name))  # the script never renamed it
        for step in steps:
            try:
                step()
            except HostError as exc:
                log.error("%s of domain %d not removed: %s", side.what, side.domid, exc)
