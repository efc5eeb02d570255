"""A vif's ``ip=`` and ``rate=`` on real guests, each host in its own network namespace
(tests/netns.py): a guest sending from an address not in its list is dropped, one from its
own passes; a bulk TCP transfer out of a rate-limited guest holds the asked rate within
10%; every rule, qdisc and ifb device is gone after destroy, a detach, or a crash.

xl-network-configuration(5) (ip, rate); Xen's vif-common.sh (the anti-spoofing rules).
Read from outside xenlite: ``nft -j`` and ``tc -j`` in the namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from guestshell import GuestShell
from hoststate import host_state
from netns import add_bridge, ip, links, namespace, run_in

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BRIDGE_ADDRESS = "10.78.0.1"
PORT = 8080
RATE_BYTES = 2_000_000  # rate=16Mb/s, well below what a TCG guest sends unlimited
_RECEIVE = """
import sys, time, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as reply:
    got = len(reply.read(65536))  # the bucket's first burst is not the rate
    start = time.monotonic()
    counted = 0
    while chunk := reply.read(65536):
        counted += len(chunk)
    print(got + counted, counted, time.monotonic() - start)
"""


@pytest.fixture(scope="module")
def net_host(live_host_factory: Any) -> Iterator[Any]:
    if shutil.which("nft") is None or shutil.which("tc") is None:
        pytest.skip("needs nftables (nft) and iproute2 (tc): apt-get install nftables")
    with namespace() as netns:
        add_bridge(netns, "xenbr0", f"{BRIDGE_ADDRESS}/24")
        with live_host_factory(netns) as host:
            yield host


def _domid(host: Any, name: str) -> int:
    return int(host.xl("domid", name).stdout)


def _create(host: Any, name: str, *vifs: str) -> subprocess.CompletedProcess[str]:
    specs = ", ".join(f"'{v}'" for v in vifs)
    return host.xl("create", str(host.write_config(name, f"vif = [ {specs} ]")))


def _ruleset(netns: str) -> list[dict[str, Any]]:
    listed = json.loads(run_in(netns, "nft", "-j", "list", "ruleset").stdout)["nftables"]
    return [o for o in listed if "metainfo" not in o]


def _chains(netns: str) -> dict[str, dict[str, Any]]:
    return {o["chain"]["name"]: o["chain"] for o in _ruleset(netns) if "chain" in o}


def _qdiscs(netns: str) -> list[dict[str, Any]]:
    found = json.loads(run_in(netns, "tc", "-j", "qdisc", "show").stdout or "[]")
    return [q for q in found if q.get("kind") not in ("noqueue", "noop")]


def _extra_links(netns: str) -> set[str]:
    return set(links(netns)) - {"lo", "xenbr0"}


def _nothing_left(host: Any) -> None:
    assert _extra_links(host.netns) == set()
    assert _ruleset(host.netns) == []
    assert _qdiscs(host.netns) == []


def _ping(guest: GuestShell, peer: str) -> int:
    return guest.run(f"ping -c 1 -W 3 {peer} > /dev/null")[0]


def _use_address(guest: GuestShell, address: str) -> None:
    status, said = guest.run(
        f"ip addr flush dev eth0 && ip addr add {address}/24 dev eth0 && ip link set eth0 up"
    )
    assert status == 0, said


def _neighbour(netns: str, address: str) -> list[Any]:
    return [n for n in json.loads(ip(netns, "-j", "neigh", "show", address))
            if n.get("state") != ["FAILED"]]  # fmt: skip


def test_a_guest_may_send_only_from_its_ip_list(net_host: Any) -> None:
    before = host_state(net_host.root)
    created = _create(net_host, "guarded", "bridge=xenbr0,ip=10.78.0.20 10.78.0.32/30")
    assert created.returncode == 0, created.stderr
    try:
        domid = _domid(net_host, "guarded")
        chain = _chains(net_host.netns)[f"vif_{domid}_0"]
        assert (chain["type"], chain["hook"]) == ("filter", "ingress")
        listed = json.loads(net_host.xl("list", "-l", "guarded").stdout)
        assert listed[0]["config"]["nics"][0]["ip"] == "10.78.0.20 10.78.0.32/30"
        (vif,) = json.loads(net_host.xl("network-list", "-l", "guarded").stdout)
        assert (vif["domid"], vif["devid"], vif["ip"]) == (domid, 0, "10.78.0.20 10.78.0.32/30")
        assert (vif["bridge"], vif["script"]) == ("xenbr0", "/etc/xen/scripts/vif-bridge")
        net_host.wait_ready("guarded")
        with GuestShell(net_host, "guarded") as guest:
            _use_address(guest, "10.78.0.20")
            assert _ping(guest, BRIDGE_ADDRESS) == 0
            _use_address(guest, "10.78.0.34")  # inside the listed network
            assert _ping(guest, BRIDGE_ADDRESS) == 0
            # Spoofed: neither its ICMP nor its ARP reach the host, which never learns it.
            _use_address(guest, "10.78.0.21")
            assert _ping(guest, BRIDGE_ADDRESS) != 0
            assert _neighbour(net_host.netns, "10.78.0.21") == []
            assert _neighbour(net_host.netns, "10.78.0.20") != []
            # A NIC hot-plugged with ip= is guarded from its first frame, and let go with it.
            attached = net_host.xl("network-attach", "guarded", "bridge=xenbr0,ip=10.78.0.40")
            assert attached.returncode == 0, attached.stderr
            assert f"vif_{domid}_1" in _chains(net_host.netns)
            assert net_host.xl("network-detach", "guarded", "1").returncode == 0
            assert f"vif_{domid}_1" not in _chains(net_host.netns)
    finally:
        net_host.xl("destroy", "guarded")
    _nothing_left(net_host)
    assert host_state(net_host.root) == before


def test_rate_holds_a_bulk_transfer_to_the_asked_rate(net_host: Any) -> None:
    created = _create(net_host, "shaped", "bridge=xenbr0,rate=16Mb/s")
    assert created.returncode == 0, created.stderr
    try:
        domid = _domid(net_host, "shaped")
        (tbf,) = [q for q in _qdiscs(net_host.netns) if q["kind"] == "tbf"]
        assert tbf["dev"] == f"ifb{domid}.0"
        (vif,) = json.loads(net_host.xl("network-list", "-l", "shaped").stdout)
        assert vif["rate"] == "100000,50000"  # libxl's BYTES,USECS of 16Mb/s at 50 ms
        ingress = [q for q in _qdiscs(net_host.netns) if q["kind"] == "ingress"]
        assert [q["dev"] for q in ingress] == [f"vif{domid}.0"]
        net_host.wait_ready("shaped")
        with GuestShell(net_host, "shaped") as guest:
            _use_address(guest, "10.78.0.30")
            status, said = guest.run(
                "mkdir -p /tmp/www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: "
                "application/octet-stream\\necho\\nexec dd if=/dev/zero bs=64k count=160 "
                "2>/dev/null\\n' > /tmp/www/cgi-bin/zeros && chmod +x /tmp/www/cgi-bin/zeros "
                f"&& httpd -p {PORT} -h /tmp/www"
            )
            assert status == 0, said
            url = f"http://10.78.0.30:{PORT}/cgi-bin/zeros"
            received = run_in(net_host.netns, sys.executable, "-c", _RECEIVE, url)
            assert received.returncode == 0, received.stderr
        total, counted, seconds = received.stdout.split()
        assert int(total) == 160 * 65536
        achieved = int(counted) / float(seconds)
        # Payload bytes: the bucket counts whole frames, TCP/IP headers are ~4% of them.
        assert 0.90 * RATE_BYTES <= achieved <= 1.10 * RATE_BYTES, achieved
    finally:
        net_host.xl("destroy", "shaped")
    _nothing_left(net_host)


def test_a_daemon_killed_mid_create_leaves_no_rule_or_qdisc(net_host: Any) -> None:
    before = host_state(net_host.root)
    net_host.stop_xenlited()
    net_host.start(crash_at="create:qemu-launched")
    cut = _create(net_host, "cutrules", "bridge=xenbr0,ip=10.78.0.50,rate=1MB/s")
    assert cut.returncode != 0
    net_host.start()  # its start-up sweep is done before it answers
    _nothing_left(net_host)
    assert host_state(net_host.root) == before
