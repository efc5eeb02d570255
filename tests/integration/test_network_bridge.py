"""``xenlite network-bridge`` in network namespaces (tests/netns.py): a bridge on a veth
"uplink" whose other end is in a second namespace (the "outside"), the uplink's address and
default route moved onto the bridge and back, a guest on that bridge reaching the outside,
the refusals, and a private bridge without an uplink.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from guestshell import GuestShell
from netns import addresses, default_route_device, ip, links, master_of, namespace, run_in

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

OUTSIDE, INSIDE = "10.88.0.1", "10.88.0.2"


@pytest.fixture(scope="module")
def uplinked(live_host_factory: Any) -> Iterator[tuple[Any, str]]:
    if shutil.which("busybox") is None:
        pytest.skip("the reachability checks use busybox ping (apt-get install busybox-static)")
    with namespace() as outside, namespace() as netns:
        ip(netns, "link", "add", "uplink0", "type", "veth", "peer", "name", "far0")
        ip(netns, "link", "set", "far0", "netns", outside)
        ip(outside, "addr", "add", f"{OUTSIDE}/24", "dev", "far0")
        ip(outside, "link", "set", "far0", "up")
        ip(netns, "addr", "add", f"{INSIDE}/24", "dev", "uplink0")
        ip(netns, "link", "set", "uplink0", "up")
        ip(netns, "route", "add", "default", "via", OUTSIDE)
        with live_host_factory(netns) as host:
            yield host, outside


def _reaches(netns: str, address: str) -> bool:
    return run_in(netns, "busybox", "ping", "-c", "1", "-W", "3", address).returncode == 0


def test_the_uplink_moves_onto_the_bridge_and_back(uplinked: tuple[Any, str]) -> None:
    host, outside = uplinked
    netns = host.netns
    assert _reaches(netns, OUTSIDE)
    # The interface of the default route is refused without --force, and nothing changes.
    refused = host.xl("network-bridge", "start", "netdev=uplink0")
    assert refused.returncode != 0
    assert "carries the default route" in refused.stderr
    assert "--force" in refused.stderr
    assert "xenbr0" not in links(netns)
    started = host.xl("network-bridge", "start", "bridge=xenbr0", "netdev=uplink0", "--force")
    assert started.returncode == 0, started.stderr
    assert started.stdout == (
        f"bridge xenbr0: up, netdev uplink0\n  ports: uplink0\n  addresses: {INSIDE}/24\n"
    )
    assert master_of(netns, "uplink0") == "xenbr0"
    assert addresses(netns, "uplink0") == []
    assert addresses(netns, "xenbr0") == [f"{INSIDE}/24"]
    assert default_route_device(netns) == "xenbr0"
    # The bridge takes the uplink's MAC, as Xen's script gives it.
    assert links(netns)["xenbr0"]["address"] == links(netns)["uplink0"]["address"]
    assert _reaches(netns, OUTSIDE)
    assert _reaches(outside, INSIDE)
    # Again: nothing to do, the same answer.
    again = host.xl("network-bridge", "start", "bridge=xenbr0", "netdev=uplink0", "--force")
    assert (again.returncode, again.stdout) == (0, started.stdout)
    # A guest on the bridge reaches the outside namespace through the uplink.
    created = host.xl("create", str(host.write_config("wired", "vif = [ 'bridge=xenbr0' ]")))
    assert created.returncode == 0, created.stderr
    try:
        host.wait_ready("wired")
        with GuestShell(host, "wired") as guest:
            status, said = guest.run(
                "ip addr add 10.88.0.50/24 dev eth0 && ip link set eth0 up && "
                f"ping -c 1 -W 5 {OUTSIDE}"
            )
            assert status == 0, said
        status_out = host.xl("network-bridge", "status").stdout
        domid = int(host.xl("domid", "wired").stdout)
        assert f"  ports: uplink0 vif{domid}.0\n" in status_out
    finally:
        host.xl("destroy", "wired")
    # stop gives everything back to the uplink.
    stopped = host.xl("network-bridge", "stop", "bridge=xenbr0")
    assert (stopped.returncode, stopped.stdout) == (0, ""), stopped.stderr
    assert "xenbr0" not in links(netns)
    assert master_of(netns, "uplink0") is None
    assert addresses(netns, "uplink0") == [f"{INSIDE}/24"]
    assert default_route_device(netns) == "uplink0"
    assert _reaches(netns, OUTSIDE)


def test_a_private_bridge_has_no_uplink(uplinked: tuple[Any, str]) -> None:
    host, _ = uplinked
    started = host.xl("network-bridge", "start", "bridge=xenbr1")
    assert started.returncode == 0, started.stderr
    assert started.stdout == "bridge xenbr1: up, no uplink\n  ports:\n  addresses:\n"
    assert links(host.netns)["xenbr1"]["linkinfo"]["info_kind"] == "bridge"
    assert host.xl("network-bridge", "stop", "bridge=xenbr1").returncode == 0
    assert "xenbr1" not in links(host.netns)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["stop", "bridge=never"], "xenlite did not start this bridge"),
        (["status", "bridge=never"], "bridge never does not exist"),
        (["start", "bridge=lo"], "lo exists and is not a bridge"),
        (["start", "netdev=nosuch0"], "netdev nosuch0 does not exist"),
        (["start", "bridge=a-name-far-too-long"], "cannot name a network interface"),
        (["restart"], "needs start, stop or status"),
        (["status", "netdev=uplink0"], "netdev= is for start"),
    ],
)
def test_bad_requests_say_why_and_change_nothing(
    uplinked: tuple[Any, str], args: list[str], said: str
) -> None:
    host, _ = uplinked
    before = sorted(links(host.netns))
    refused = host.xl("network-bridge", *args)
    assert refused.returncode != 0
    assert said in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(links(host.netns)) == before
