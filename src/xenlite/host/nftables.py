"""Packet filters through nftables, in the network namespace xenlited runs in: the
anti-spoofing of a vif's ``ip=`` and vif-nat's masquerade. The one owner of the ``nft``
program (its ruleset language in, its JSON out, its errors become xenlite's).

Not a Xen man page: Xen's vif-common.sh ``handle_iptable`` (FORWARD rules with
``-m physdev --physdev-in vifD.N -s ADDR -j ACCEPT``, plus DHCP requests; disabled in Debian's
packaging) and network-nat's MASQUERADE rule. Choices, and why:

- Anti-spoofing sits on the tap's **netdev ingress** hook (one base chain per vif, bound to
  its device), not on the bridge family's hooks: it is the first point a guest's frame
  reaches in the host, before the bridge, routing or NAT, so one chain serves vif-bridge,
  vif-route and vif-nat alike, sees ARP and every EtherType (iptables never saw ARP, so Xen
  let ARP spoofing through), and costs one short chain per frame of that guest only.
- A guarded vif may send IPv4 only from its listed networks (plus a DHCP request from
  0.0.0.0, as Xen's rules allow), ARP only for those addresses (plus probes from 0.0.0.0),
  IPv6 only from its listed IPv6 networks, link-local and DAD's ``::`` when it lists IPv6
  (when it lists none, IPv6 passes unfiltered, as on Xen, whose rules are IPv4 only), and
  no other EtherType (a VLAN tag would carry a spoofed packet past the rules).
- Everything lives in tables named for the host root (``xenlite_OWNER``, host/net.py's
  owner tag), one chain per vif named ``vif_DOMID_DEVID`` and NAT rules commented with the
  same name, so removal and the start-up sweep touch exactly what this host root made. A
  chain outlives its device in the kernel (and may bind to a new device of that name), so
  it is always removed explicitly; a table left empty is removed too.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xenlite.base.errors import CommandFailed, HostError
from xenlite.base.proc import run_sync

NFT_TIMEOUT = 10.0
INGRESS_PRIORITY = -500  # before anything a user hangs on the tap's ingress at priority 0
_FIX = "install nftables (apt-get install nftables) and run xenlited as root"
_CHAIN = re.compile(r"vif_(\d+)_(\d+)\Z")
# One nft transaction at a time: "is the table empty, then remove it" must not interleave
# with another vif's "add the table, then its chain".
_LOCK = threading.Lock()

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Sources:
    """The networks a guest may send from through one vif."""

    ipv4: tuple[ipaddress.IPv4Network, ...]
    ipv6: tuple[ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, networks: Iterable[Network]) -> Sources:
        """The networks by family, overlaps merged (an nft interval set refuses them)."""
        listed = list(networks)
        v4 = [n for n in listed if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in listed if isinstance(n, ipaddress.IPv6Network)]
        return cls(ipv4=tuple(ipaddress.collapse_addresses(v4)),
                   ipv6=tuple(ipaddress.collapse_addresses(v6)))  # fmt: skip


def table_name(owner: str) -> str:
    return f"xenlite_{owner}"


def chain_name(domid: int, devid: int) -> str:
    return f"vif_{domid}_{devid}"


def _nft(script: str, what: str) -> None:
    try:
        run_sync(["nft", "-f", "-"], input=script.encode(), timeout=NFT_TIMEOUT, fix=_FIX)
    except CommandFailed as exc:
        raise HostError(what, f"nft refused the rules: {exc.stderr_tail.strip()}", _FIX) from None


def _listing(family: str, table: str, what: str) -> list[dict[str, Any]]:
    """The objects of ``table`` (``nft -j -a list table``), [] when there is no such table."""
    result = run_sync(["nft", "-j", "-a", "list", "table", family, table],
                      timeout=NFT_TIMEOUT, check=False, fix=_FIX)  # fmt: skip
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace")
        if "No such file or directory" in said:
            return []
        raise HostError(what, f"nft cannot list table {family} {table}: {said.strip()}", _FIX)
    objects = json.loads(result.stdout or b"{}").get("nftables", [])
    return [o for o in objects if isinstance(o, dict) and "metainfo" not in o]


def _set(networks: Sequence[Network], *extra: str) -> str:
    items = [*(str(n) if n.prefixlen != n.max_prefixlen else str(n.network_address)
               for n in networks), *extra]  # fmt: skip
    return "{ " + ", ".join(items) + " }"


def guard_sources(owner: str, *, device: str, domid: int, devid: int, sources: Sources) -> None:
    """Let the guest behind ``device`` send only from ``sources`` (the rules replace any
    the vif had). Idempotent.

    :raise HostError: when nft is missing or refuses
    """
    table, chain = table_name(owner), chain_name(domid, devid)
    at = f"netdev {table} {chain}"
    lines = [
        f"add table netdev {table}",
        f'add chain {at} {{ type filter hook ingress device "{device}" priority '
        f"{INGRESS_PRIORITY}; policy accept; }}",
        f"flush chain {at}",
    ]
    rule = f"add rule {at}"
    if sources.ipv4:
        lines += [
            f"{rule} arp htype 1 arp ptype ip arp saddr ip {_set(sources.ipv4, '0.0.0.0')} accept",
            f"{rule} ip saddr {_set(sources.ipv4)} accept",
        ]
    lines += [
        f"{rule} meta protocol arp drop",
        f"{rule} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        f"{rule} meta protocol ip drop",
    ]
    if sources.ipv6:
        lines += [
            f"{rule} ip6 saddr {_set(sources.ipv6, 'fe80::/10')} accept",
            f"{rule} ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, mld2-listener-report }} "
            "accept",
            f"{rule} meta protocol ip6 drop",
        ]
    else:
        lines.append(f"{rule} meta protocol ip6 accept")
    lines.append(f"{rule} drop")
    with _LOCK:
        _nft("\n".join(lines) + "\n", f"anti-spoofing rules of {device}")


def masquerade(owner: str, *, device: str, domid: int, devid: int, source: str,
               outdev: str | None) -> None:  # fmt: skip
    """vif-nat's NAT: what the guest at ``source`` sends out (through ``outdev``, or any
    interface but its own) leaves with the host's address. Idempotent.

    :raise HostError: when nft is missing or refuses
    """
    table, tag = table_name(owner), chain_name(domid, devid)
    out = f'oifname "{outdev}"' if outdev else f'oifname != "{device}"'
    with _LOCK:
        _remove_nat_rules(owner, tag)
        _nft(
            f"add table ip {table}\n"
            f"add chain ip {table} postrouting {{ type nat hook postrouting priority srcnat; "
            "policy accept; }\n"
            f'add rule ip {table} postrouting ip saddr {source} {out} masquerade comment "{tag}"\n',
            f"NAT rule of {device}",
        )


def release(owner: str, domid: int, devid: int) -> None:
    """Remove what this module set up for vif ``devid`` of ``domid``; nothing there is fine.

    :raise HostError: when nft refuses
    """
    with _LOCK:
        _release(owner, domid, devid)


def _release(owner: str, domid: int, devid: int) -> None:
    table, chain = table_name(owner), chain_name(domid, devid)
    objects = _listing("netdev", table, f"anti-spoofing rules of vif {domid}.{devid}")
    chains = {o["chain"]["name"] for o in objects if "chain" in o}
    if chain in chains:
        script = f"delete chain netdev {table} {chain}\n"
        if chains == {chain}:
            script += f"delete table netdev {table}\n"
        _nft(script, f"anti-spoofing rules of vif {domid}.{devid}")
    _remove_nat_rules(owner, chain)


def _remove_nat_rules(owner: str, tag: str) -> None:
    table = table_name(owner)
    objects = _listing("ip", table, f"NAT rules of {tag}")
    rules = [o["rule"] for o in objects if "rule" in o]
    doomed = [r for r in rules if r.get("comment") == tag]
    if not doomed:
        return
    if len(doomed) == len(rules):
        script = f"delete table ip {table}\n"
    else:
        script = "".join(f"delete rule ip {table} postrouting handle {r['handle']}\n"
                         for r in doomed)  # fmt: skip
    _nft(script, f"NAT rules of {tag}")


def vifs(owner: str) -> set[tuple[int, int]]:
    """(domid, devid) of every vif this host root has rules for.

    :raise HostError: when nft is missing or refuses
    """
    table = table_name(owner)
    found: set[tuple[int, int]] = set()
    with _LOCK:
        names = [o["chain"]["name"] for o in _listing("netdev", table, "anti-spoofing rules")
                 if "chain" in o]  # fmt: skip
        names += [o["rule"].get("comment", "") for o in _listing("ip", table, "NAT rules")
                  if "rule" in o]  # fmt: skip
    for name in names:
        matched = _CHAIN.match(name)
        if matched:
            found.add((int(matched[1]), int(matched[2])))
    return found
