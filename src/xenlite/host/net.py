"""Host networking through netlink: bridges, taps and their ports, in the network namespace
xenlited runs in. The one owner of pyroute2: its errors become xenlite's, its messages
plain values.

Not a Xen man page: Xen's vif-bridge script does this with ``ip`` and ``brctl``; xenlite
speaks netlink itself (no parsing of command output).

Every tap xenlite makes carries an interface alias (``IFLA_IFALIAS``) ``xenlite:OWNER:DOMID``
that names the host root that made it (OWNER, :func:`owner_tag`) and its domain: a sweep
after a crash removes exactly the taps of its own domains that have gone, never an
interface it did not make.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
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
    except OSError as exc:
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


def add_tap(name: str, *, bridge: Link, mtu: int, alias: str) -> None:
    """Make the persistent tap ``name`` (QEMU attaches to it by name), a port of ``bridge``
    with ``mtu``, up, tagged with ``alias``; nothing is left when a step fails.

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
            ipr.link("set", index=index, master=bridge.index)
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            _delete(ipr, name)
            if exc.code == errno.EINVAL:
                raise HostError(
                    what,
                    f"the kernel refused its settings (mtu {mtu} on bridge {bridge.name})",
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
