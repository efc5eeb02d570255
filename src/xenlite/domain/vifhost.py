"""The host side of a vif: its tap, the anti-spoofing of its ``ip=``, the shaping of its
``rate=``, made before QEMU attaches to the tap and removed after, in that order reversed.

xl-network-configuration(5) (ip, rate, script, gatewaydev), Xen's vif-bridge and
vif-common.sh. What Xen's vif-bridge does on ``online`` (the tap on its bridge, up, with the
guest's MTU, its iptables rules) xenlite does itself: the tap through netlink (host/net.py),
the rules through nftables (host/nftables.py).

Choices, and why:

- The tap is made down, its filters and its shaping are set, and only then is it brought
  up: the guest never sends a frame the rules have not seen.
- ``ip=`` is a list of addresses or networks separated by spaces (vif-bridge reads it so),
  IPv4 or IPv6; each is checked here, so a typo fails the create naming it instead of
  letting every frame through.
- ``rate=`` is Xen's credit: ``rate_bytes_per_interval`` every ``rate_interval_usecs``.
  Shaped as a token bucket filled at that rate; its depth is the larger of one interval's
  credit and 128 KiB, as Linux netback lets credit pile up (so a 64 KiB TSO frame always
  fits).
- Removal is idempotent and names each piece by the domid and devid, so a teardown after a
  crash, or of a vif whose create failed halfway, removes what is there and nothing else.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from xenlite.base.errors import DomainError, HostError
from xenlite.config.domain.model import DeviceNic
from xenlite.host import net, nftables
from xenlite.host.nftables import Sources

log = logging.getLogger(__name__)

DEFAULT_BRIDGE = "xenbr0"  # libxl's default when neither the spec nor xl.conf names one
DEFAULT_MTU = 1500
NETBACK_MIN_BURST = 131072  # bytes: Linux netback's least credit ceiling


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
    bridge: str
    mtu: int
    sources: Sources | None  # ip= given: the guest may send only from these
    rate: Rate | None

    @property
    def ifb(self) -> str:
        """The device the NIC's outgoing frames are shaped on (only with a rate)."""
        return f"ifb{self.domid}.{self.devid}"

    @property
    def what(self) -> str:
        return f"vif {self.devid} ({self.tap})"


def tap_name(domid: int, nic: DeviceNic) -> str:
    """The host interface of the NIC: its vifname, else ``vif<domid>.<devid>`` (Xen's)."""
    return nic.ifname or f"vif{domid}.{nic.devid}"


def host_side(nic: DeviceNic, domid: int, what: str) -> HostSide:
    """The host side of ``nic`` (its devid set) in domain ``domid``.

    :raise DomainError: for an ``ip=`` or ``rate=`` that cannot be honoured, naming it
    """
    return HostSide(
        domid=domid,
        devid=nic.devid,
        tap=tap_name(domid, nic),
        bridge=nic.bridge or DEFAULT_BRIDGE,
        mtu=nic.mtu or DEFAULT_MTU,
        sources=sources(nic.ip, what) if nic.ip else None,
        rate=rate(nic.rate_bytes_per_interval, nic.rate_interval_usecs, what),
    )


def removal_side(nic: DeviceNic, domid: int) -> HostSide:
    """The host side to remove for ``nic``, even from a config this xenlite would refuse
    now: whatever its ``ip=`` or ``rate=`` say, their rules and shaping are looked for."""
    try:
        return host_side(nic, domid, f"vif {nic.devid}")
    except DomainError:
        side = host_side(replace(nic, ip=None, rate_interval_usecs=0), domid, "")
        return replace(side, sources=Sources((), ()) if nic.ip else None,
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


def plug(sides: Sequence[HostSide], *, root: Path) -> list[HostSide]:
    """Make each NIC's host side (what vif-bridge does on ``online``). On a failure what was
    made so far is removed again.

    :raise DomainError: when a bridge is missing, or a step is refused
    """
    made: list[HostSide] = []
    try:
        for side in sides:
            made.append(side)
            try:
                _plug(side, root)
            except HostError as exc:
                raise DomainError(side.what, exc.cause, exc.fix) from None
    except BaseException:
        unplug(made, root=root)
        raise
    return made


def _plug(side: HostSide, root: Path) -> None:
    owner = net.owner_tag(root)
    alias = net.tap_alias(owner, side.domid)
    bridge = net.require_bridge(side.bridge, side.what)
    net.add_tap(side.tap, bridge=bridge, mtu=side.mtu, alias=alias)
    if side.sources is not None:
        nftables.guard_sources(owner, device=side.tap, domid=side.domid, devid=side.devid,
                               sources=side.sources)  # fmt: skip
    if side.rate is not None:
        net.limit_rate(side.tap, ifb=side.ifb, bytes_per_second=side.rate.bytes_per_second,
                       burst=side.rate.burst, alias=alias)  # fmt: skip
    net.set_up(side.tap)


def unplug(sides: Iterable[HostSide], *, root: Path) -> None:
    """Remove each NIC's host side (what vif-bridge does on ``offline``): its rules, its
    shaping, its tap. What is gone already is fine; a failure is logged and the rest go on."""
    owner = net.owner_tag(root)
    for side in sides:
        steps: list[Callable[[], object]] = []
        if side.sources is not None:
            steps.append(partial(nftables.release, owner, side.domid, side.devid))
        if side.rate is not None:
            steps.append(partial(net.unlimit_rate, side.tap, ifb=side.ifb))
        steps.append(partial(net.delete, side.tap))
        for step in steps:
            try:
                step()
            except HostError as exc:
                log.error("%s of domain %d not removed: %s", side.what, side.domid, exc)
