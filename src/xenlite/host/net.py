"""Host networking through netlink: bridges, taps and their ports, rate limits, in the
network namespace xenlited runs in. The one owner of pyroute2: its errors become xenlite's,
its messages plain values.

Not a Xen man page: Xen's vif-bridge script does this with ``ip`` and ``brctl``; xenlite
speaks netlink itself (no parsing of command output).

Every tap xenlite makes carries an interface alias (``IFLA_IFALIAS``) ``xenlite:OWNER:DOMID``
that names the host root that made it (OWNER, :func:`owner_tag`) and its domain: a sweep
after a crash removes exactly the taps of its own domains that have gone, never an
interface it did not make.

A rate limit (vif ``rate=``) shapes what the guest sends, which reaches the host as the
tap's ingress: an ingress qdisc on the tap redirects every frame (u32 match-all, mirred) to
an ifb device whose egress is a token bucket (tbf). It queues rather than drops, as Xen's
netback holds the guest's ring back when its credit is spent, so TCP in the guest settles
at the rate instead of sawing at drops as a police action makes it. The ifb carries the
tap's alias, so the sweep removes it with the tap.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from xenlite.base.errors import HostError

log = logging.getLogger(__name__)

IFNAMSIZ = 16  # the kernel's limit, with the terminating NUL: names of at most 15 bytes
ALIAS_PREFIX = "xenlite"
_ROOT_FIX = "run xenlited as root (it needs CAP_NET_ADMIN to make taps and bridges)"


def owner_tag(root: Path) -> str:
    """The OWNER part of the aliases of the taps made for host root ``root``."""
    return hashlib.sha256(os.fsencode(root)).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface as netlink describes it."""

    index: int
    name: str
    kind: str  # "bridge", "tun", "veth", "dummy", ... ("" for a physical device)
    master: int | None  # the bridge it is a port of
    mtu: int
    up: bool
    mac: str
    alias: str


def check_name(name: str, what: str) -> None:
    """:raise HostError: when ``name`` cannot be a Linux interface name"""
    if (
        not name
        or len(os.fsencode(name)) >= IFNAMSIZ
        or "/" in name
        or any(c.isspace() for c in name)
        or name in (".", "..")
    ):
        raise HostError(
            what,
            f"'{name}' cannot name a network interface (at most {IFNAMSIZ - 1} bytes, no "
            "'/' or spaces)",
            "choose a shorter name (vifname=)",
        )


@contextmanager
def _netlink(what: str) -> Iterator[IPRoute]:
    try:
        with IPRoute() as ipr:
            yield ipr
    except NetlinkError as exc:
        raise _error(what, exc) from None
    except OSError as exc:  # a tap's ioctl (TUNSETIFF) and the socket itself
        if exc.errno == errno.EPERM:
            raise HostError(what, "not permitted (no CAP_NET_ADMIN)", _ROOT_FIX) from None
        raise HostError(what, f"netlink failed: {exc.strerror or exc}", _ROOT_FIX) from None


def _error(what: str, exc: NetlinkError) -> HostError:
    code = exc.code
    if code == errno.EPERM:
        return HostError(what, "not permitted (no CAP_NET_ADMIN)", _ROOT_FIX)
    if code == errno.EEXIST:
        return HostError(
            what, "a network interface of that name exists already", "choose another name"
        )
    return HostError(
        what,
        f"netlink refused: {os.strerror(code) if code else exc}",
        "see xenlited's log; check the host's network setup (ip -d link)",
    )


def _link(message: object) -> Link:
    get = message.get  # type: ignore[attr-defined]
    info = get("IFLA_LINKINFO")
    kind = info.get("IFLA_INFO_KIND") if info is not None else None
    return Link(
        index=int(get("index")),
        name=str(get("IFLA_IFNAME")),
        kind=str(kind or ""),
        master=get("IFLA_MASTER"),
        mtu=int(get("IFLA_MTU") or 0),
        up=bool(int(get("flags") or 0) & 1),  # IFF_UP
        mac=str(get("IFLA_ADDRESS") or ""),
        alias=str(get("IFLA_IFALIAS") or ""),
    )


def links() -> list[Link]:
    """Every interface of xenlited's network namespace."""
    with _netlink("network interfaces") as ipr:
        return [_link(m) for m in ipr.get_links()]


def find(name: str) -> Link | None:
    """The interface ``name``, or None when there is none."""
    with _netlink(f"network interface {name}") as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return None
        return _link(ipr.get_links(found[0])[0])


def require_bridge(name: str, what: str) -> Link:
    """The bridge ``name``.

    :raise HostError: when there is no such interface, or it is not a bridge
    """
    found = find(name)
    if found is None:
        raise HostError(
            what,
            f"bridge {name} does not exist",
            f"create it first: xenlite network-bridge start bridge={name} (or use bridge= "
            "to name one that exists)",
        )
    if found.kind != "bridge":
        raise HostError(
            what,
            f"{name} is a network interface but not a bridge ({found.kind or 'a device'})",
            "give a bridge in bridge=",
        )
    return found


def add_tap(name: str, *, bridge: Link | None, mtu: int, alias: str) -> None:
    """Make the persistent tap ``name`` (QEMU attaches to it by name), a port of ``bridge``
    (or of none) with ``mtu``, tagged with ``alias``, still down (:func:`set_up` brings it
    up once its filters are in place); nothing is left when a step fails.

    :raise HostError: when the name is taken, or netlink refuses a step
    """
    what = f"tap {name}"
    check_name(name, what)
    with _netlink(what) as ipr:
        if ipr.link_lookup(ifname=name):
            raise HostError(
                what,
                f"a network interface named {name} exists already",
                "give the vif another vifname= (or remove that interface)",
            )
        ipr.link("add", ifname=name, kind="tuntap", mode="tap")
        try:
            (index,) = ipr.link_lookup(ifname=name)
            ipr.link("set", index=index, ifalias=alias)
            ipr.link("set", index=index, mtu=mtu)
            if bridge is not None:
                ipr.link("set", index=index, master=bridge.index)
        except NetlinkError as exc:
            _delete(ipr, name)
            if exc.code == errno.EINVAL:
                on = f" on bridge {bridge.name}" if bridge is not None else ""
                raise HostError(
                    what,
                    f"the kernel refused its settings (mtu {mtu}{on})",
                    "give an mtu= the bridge's ports can have",
                ) from None
            raise


def delete(name: str) -> bool:
    """Remove the interface ``name``; False when there was none.

    :raise HostError: when netlink refuses
    """
    with _netlink(f"network interface {name}") as ipr:
        return _delete(ipr, name)


def _delete(ipr: IPRoute, name: str) -> bool:
    found = ipr.link_lookup(ifname=name)
    if not found:
        return False
    try:
        ipr.link("del", index=found[0])
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
        return False
    return True


def tagged(owner: str) -> dict[str, int]:
    """The taps whose alias says that host root ``owner`` made them: name -> domid."""
    prefix = f"{ALIAS_PREFIX}:{owner}:"
    found: dict[str, int] = {}
    for link in links():
        if link.alias.startswith(prefix) and link.alias[len(prefix) :].isdigit():
            found[link.name] = int(link.alias[len(prefix) :])
    return found


def tap_alias(owner: str, domid: int) -> str:
    return f"{ALIAS_PREFIX}:{owner}:{domid}"


@dataclass(frozen=True, slots=True)
class Address:
    """An interface address, as ``ip addr`` shows it."""

    family: int  # socket.AF_INET or AF_INET6
    address: str
    prefixlen: int
    broadcast: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """A route of the main table through one interface (not the kernel's own, which come
    and go with the addresses)."""

    family: int
    dst: str | None  # None: the default route
    dst_len: int
    gateway: str | None
    priority: int | None
    prefsrc: str | None
    scope: int
    proto: int


_MAIN_TABLE = 254
_PROTO_KERNEL = 2
_SCOPE_LINK = 253


def _index(ipr: IPRoute, name: str, what: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise HostError(what, f"network interface {name} does not exist", "see ip link")
    return int(found[0])


def addresses(name: str) -> list[Address]:
    """The IPv4 and global IPv6 addresses of ``name``."""
    with _netlink(f"addresses of {name}") as ipr:
        index = _index(ipr, name, f"addresses of {name}")
        found = []
        for message in ipr.get_addr(index=index):
            family = int(message["family"])
            if family == socket.AF_INET6 and int(message["scope"]) != 0:
                continue  # link-local: the kernel makes it for every interface
            found.append(
                Address(
                    family=family,
                    address=str(message.get("IFA_ADDRESS")),
                    prefixlen=int(message["prefixlen"]),
                    broadcast=message.get("IFA_BROADCAST"),
                )
            )
        return found


def routes(name: str) -> list[Route]:
    """The routes of the main table through ``name``, but the kernel's own."""
    with _netlink(f"routes of {name}") as ipr:
        index = _index(ipr, name, f"routes of {name}")
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in ipr.get_routes(family=family, table=_MAIN_TABLE, oif=index):
                if int(message["proto"]) == _PROTO_KERNEL or message.get("RTA_OIF") != index:
                    continue
                if family == socket.AF_INET6 and str(message.get("RTA_DST") or "").startswith(
                    "fe80"
                ):
                    continue
                found.append(
                    Route(
                        family=family,
                        dst=message.get("RTA_DST"),
                        dst_len=int(message["dst_len"]),
                        gateway=message.get("RTA_GATEWAY"),
                        priority=message.get("RTA_PRIORITY"),
                        prefsrc=message.get("RTA_PREFSRC"),
                        scope=int(message["scope"]),
                        proto=int(message["proto"]),
                    )
                )
        return found


def default_route_devices() -> set[str]:
    """The interfaces that carry a default route (IPv4 or IPv6, main table)."""
    with _netlink("default routes") as ipr:
        indexes = {
            message.get("RTA_OIF")
            for family in (socket.AF_INET, socket.AF_INET6)
            for message in ipr.get_routes(family=family, table=_MAIN_TABLE)
            if int(message["dst_len"]) == 0 and message.get("RTA_OIF") is not None
        }
        return {_link(m).name for m in ipr.get_links() if m["index"] in indexes}


def add_bridge(name: str, *, mac: str | None = None) -> None:
    """Make the bridge ``name`` (with ``mac``, as Xen's script gives it the uplink's), up.

    :raise HostError: when the name is taken or netlink refuses
    """
    what = f"bridge {name}"
    check_name(name, what)
    with _netlink(what) as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        try:
            index = _index(ipr, name, what)
            if mac is not None:
                ipr.link("set", index=index, address=mac)
            ipr.link("set", index=index, state="up")
        except NetlinkError:
            _delete(ipr, name)
            raise


def set_up(name: str) -> None:
    with _netlink(f"network interface {name}") as ipr:
        ipr.link("set", index=_index(ipr, name, name), state="up")


def set_master(name: str, bridge: str | None) -> None:
    """Make ``name`` a port of ``bridge``, or of no bridge."""
    what = f"network interface {name}"
    with _netlink(what) as ipr:
        master = _index(ipr, bridge, what) if bridge is not None else 0
        ipr.link("set", index=_index(ipr, name, what), master=master)


def change_address(name: str, address: Address, *, add: bool) -> None:
    """Add ``address`` to ``name`` (one already there is fine) or remove it (one not there
    is fine)."""
    what = f"address {address.address}/{address.prefixlen} of {name}"
    with _netlink(what) as ipr:
        args: dict[str, object] = {
            "index": _index(ipr, name, what),
            "address": address.address,
            "prefixlen": address.prefixlen,
            "family": address.family,
        }
        if add and address.broadcast:
            args["broadcast"] = address.broadcast
        try:
            ipr.addr("add" if add else "del", **args)
        except NetlinkError as exc:
            if exc.code not in ((errno.EEXIST,) if add else (errno.EADDRNOTAVAIL, errno.ENOENT)):
                raise


def change_route(name: str, route: Route, *, add: bool) -> None:
    """Add ``route`` through ``name`` (one already there is fine) or remove it (likewise)."""
    what = f"route {route.dst or 'default'}/{route.dst_len} via {name}"
    with _netlink(what) as ipr:
        args: dict[str, object] = {
            "family": route.family,
            "dst_len": route.dst_len,
            "oif": _index(ipr, name, what),
            "table": _MAIN_TABLE,
            "scope": route.scope,
            "proto": route.proto,
        }
        for key, value in (
            ("dst", route.dst),
            ("gateway", route.gateway),
            ("priority", route.priority),
            ("prefsrc", route.prefsrc),
        ):
            if value is not None:
                args[key] = value
        try:
            ipr.route("add" if add else "del", **args)
        except NetlinkError as exc:
            if exc.code not in ((errno.EEXIST,) if add else (errno.ESRCH, errno.ENOENT)):
                raise


TBF_MAX_RATE = 2**32 - 1  # tc's tbf rate is 32 bits of bytes per second
_INGRESS = 0xFFFF0000
_TBF = 0x10000
_ETH_P_ALL = 0x0003
SHAPING_LATENCY = "100ms"  # how long a frame may wait in the bucket's queue


def limit_rate(tap: str, *, ifb: str, bytes_per_second: int, burst: int, alias: str) -> None:
    """Shape what the guest behind ``tap`` sends to ``bytes_per_second`` with a bucket of
    ``burst`` bytes, through the ifb device ``ifb`` (made here, tagged with ``alias``);
    nothing is left when a step fails.

    :raise HostError: when the kernel has no ifb or tbf, or netlink refuses a step
    """
    what = f"rate limit of {tap}"
    check_name(ifb, what)
    if not 0 < bytes_per_second <= TBF_MAX_RATE:
        raise HostError(what, f"{bytes_per_second} bytes/s is beyond what tc can shape",
                        f"give rate= at most {TBF_MAX_RATE} bytes/s, or leave it out")  # fmt: skip
    with _netlink(what) as ipr:
        tap_index = _index(ipr, tap, what)
        try:
            ipr.link("add", ifname=ifb, kind="ifb")
        except NetlinkError as exc:
            if exc.code == errno.EOPNOTSUPP:
                raise HostError(what, "the kernel has no ifb devices (module ifb)",
                                "load it: modprobe ifb") from None  # fmt: skip
            raise
        try:
            ifb_index = _index(ipr, ifb, what)
            ipr.link("set", index=ifb_index, ifalias=alias)
            ipr.link("set", index=ifb_index, state="up")
            ipr.tc("add", "tbf", ifb_index, _TBF, rate=bytes_per_second, burst=burst,
                   latency=SHAPING_LATENCY)  # fmt: skip
            ipr.tc("add", "ingress", tap_index, _INGRESS)
            ipr.tc("add-filter", "u32", tap_index, parent=_INGRESS, protocol=_ETH_P_ALL,
                   prio=1, target=0, keys=["0x0/0x0+0"],
                   action={"kind": "mirred", "direction": "egress", "action": "redirect",
                           "ifindex": ifb_index})  # fmt: skip
        except NetlinkError:
            _delete(ipr, ifb)
            with contextlib.suppress(NetlinkError):
                ipr.tc("del", "ingress", tap_index, _INGRESS)
            raise


def unlimit_rate(tap: str, *, ifb: str) -> None:
    """Remove the rate limit of ``tap`` (its ingress qdisc and the ifb); either gone already
    is fine.

    :raise HostError: when netlink refuses
    """
    with _netlink(f"rate limit of {tap}") as ipr:
        _delete(ipr, ifb)
        found = ipr.link_lookup(ifname=tap)
        if found:
            try:
                ipr.tc("del", "ingress", found[0], _INGRESS)
            except NetlinkError as exc:
                if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
                    raise


_SYSCTL = Path("/proc/sys/net/ipv4")
NTF_PROXY = 0x08


def ipv4_forwarding() -> bool:
    """IPv4 forwarding is on in xenlited's network namespace (net.ipv4.ip_forward)."""
    try:
        return (_SYSCTL / "ip_forward").read_text().strip() == "1"
    except OSError:
        return False


def set_proxy_arp(name: str) -> None:
    """Answer ARP on ``name`` for the addresses routed elsewhere (net.ipv4.conf.NAME.proxy_arp,
    which goes with the interface).

    :raise HostError: when the setting cannot be written
    """
    path = _SYSCTL / "conf" / name / "proxy_arp"
    try:
        path.write_text("1\n")
    except OSError as exc:
        raise HostError(f"proxy ARP on {name}", f"cannot write {path}: {exc.strerror}",
                        _ROOT_FIX) from None  # fmt: skip


def change_proxy_neighbour(name: str, address: str, *, add: bool) -> None:
    """Answer ARP for ``address`` on ``name`` (``ip neigh add proxy ADDRESS dev NAME``), or
    stop; one already there, or already gone, is fine.

    :raise HostError: when ``name`` is missing (on add) or netlink refuses
    """
    what = f"proxy ARP for {address} on {name}"
    with _netlink(what) as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            if add:
                raise HostError(what, f"network interface {name} does not exist", "see ip link")
            return
        try:
            ipr.neigh("add" if add else "del", dst=address, ifindex=found[0], flags=NTF_PROXY,
                      family=socket.AF_INET)  # fmt: skip
        except NetlinkError as exc:
            if exc.code not in ((errno.EEXIST,) if add else (errno.ENOENT, errno.ESRCH)):
                raise
