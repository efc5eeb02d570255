"""Bridged vifs on real guests, each test host in its own network namespace (tests/netns.py):
the tap ``vifD.N`` on xenbr0 with the guest's MAC and MTU, guests that reach each other and
the bridge's address, the vif nodes in XenStore, a new tap for the new domid on reboot, and
nothing left after destroy or a failed create.

xl-network-configuration(5), xenstore-paths (backend/vif, device/vif).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from guestshell import GuestShell
from hoststate import host_state
from netns import add_bridge, links, master_of, namespace
from xenlite.base.proc import pid_alive
from xenlite.xenstore.client import XenStore

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BRIDGE_ADDRESS = "10.77.0.1"


@pytest.fixture(scope="module")
def net_host(live_host_factory: Any) -> Iterator[Any]:
    with namespace() as netns:
        add_bridge(netns, "xenbr0", f"{BRIDGE_ADDRESS}/24")
        add_bridge(netns, "xenbr1")  # a private network: no address, no uplink
        with live_host_factory(netns) as host:
            yield host


def _domid(host: Any, name: str) -> int:
    return int(host.xl("domid", name).stdout)


def _node(host: Any, path: str) -> str:
    with XenStore.open(host.root / "run/xenstored/socket") as xs:
        return xs.read(path).decode()


def _taps(host: Any) -> dict[str, Any]:
    return {n: link for n, link in links(host.netns).items() if n not in ("lo", "xenbr0", "xenbr1")}


def _create(host: Any, name: str, *vifs: str) -> Any:
    specs = ", ".join(f"'{v}'" for v in vifs)
    return host.xl("create", str(host.write_config(name, f"vif = [ {specs} ]")))


def _guest_ip(guest: GuestShell, address: str) -> None:
    status, said = guest.run(f"ip addr add {address}/24 dev eth0 && ip link set eth0 up")
    assert status == 0, said


def test_guests_on_xenbr0_reach_each_other_and_the_bridge(net_host: Any) -> None:
    before = host_state(net_host.root)
    assert _create(net_host, "left", "mac=00:16:3e:00:00:0a").returncode == 0
    right = _create(net_host, "right", "bridge=xenbr0,mtu=1400")
    assert right.returncode == 0, right.stderr
    try:
        left_id, right_id = _domid(net_host, "left"), _domid(net_host, "right")
        taps = _taps(net_host)
        assert set(taps) == {f"vif{left_id}.0", f"vif{right_id}.0"}
        for tap, mtu in ((f"vif{left_id}.0", 1500), (f"vif{right_id}.0", 1400)):
            assert master_of(net_host.netns, tap) == "xenbr0"
            assert taps[tap]["mtu"] == mtu
            assert "UP" in taps[tap]["flags"]
        # The MAC xenlite chose for "right" is kept in its config, as libxl keeps it.
        listed = json.loads(net_host.xl("list", "-l", "right").stdout)
        (nic,) = listed[0]["config"]["nics"]
        right_mac = nic["mac"]
        assert right_mac.startswith("00:16:3e:")
        back = f"/local/domain/0/backend/vif/{right_id}/0"
        assert _node(net_host, f"{back}/mac") == right_mac
        assert _node(net_host, f"{back}/bridge") == "xenbr0"
        assert _node(net_host, f"{back}/mtu") == "1400"
        assert _node(net_host, f"{back}/hotplug-status") == "connected"
        assert _node(net_host, f"/local/domain/{right_id}/device/vif/0/backend") == back
        net_host.wait_ready("left")
        net_host.wait_ready("right")
        with GuestShell(net_host, "left") as left, GuestShell(net_host, "right") as guest:
            assert left.run("cat /sys/class/net/eth0/address") == (0, "00:16:3e:00:00:0a\n")
            assert guest.run("cat /sys/class/net/eth0/address") == (0, f"{right_mac}\n")
            assert guest.run("cat /sys/class/net/eth0/mtu") == (0, "1400\n")
            _guest_ip(left, "10.77.0.10")
            _guest_ip(guest, "10.77.0.11")
            for shell, peer in (
                (left, BRIDGE_ADDRESS),
                (left, "10.77.0.11"),
                (guest, "10.77.0.10"),
            ):
                status, said = shell.run(f"ping -c 1 -W 5 {peer}")
                assert status == 0, (peer, said)
    finally:
        net_host.xl("destroy", "left")
        net_host.xl("destroy", "right")
    assert _taps(net_host) == {}
    assert host_state(net_host.root) == before


def test_reboot_gives_the_tap_of_the_new_domid_and_keeps_the_mac(net_host: Any) -> None:
    created = _create(net_host, "again", "bridge=xenbr1")
    assert created.returncode == 0, created.stderr
    try:
        old = _domid(net_host, "again")
        mac = json.loads(net_host.xl("list", "-l", "again").stdout)[0]["config"]["nics"][0]["mac"]
        net_host.wait_ready("again")
        assert net_host.xl("reboot", "-w", "again", timeout=90).returncode == 0
        net_host.wait_ready("again", count=2)  # the new domain, booted
        new = _domid(net_host, "again")
        assert new != old
        assert set(_taps(net_host)) == {f"vif{new}.0"}
        assert master_of(net_host.netns, f"vif{new}.0") == "xenbr1"
        listed = json.loads(net_host.xl("list", "-l", "again").stdout)
        assert listed[0]["config"]["nics"][0]["mac"] == mac
    finally:
        net_host.xl("destroy", "again")
    assert _taps(net_host) == {}


def test_vifname_names_the_tap(net_host: Any) -> None:
    created = _create(net_host, "named", "vifname=web0,bridge=xenbr1")
    assert created.returncode == 0, created.stderr
    try:
        assert set(_taps(net_host)) == {"web0"}
        domid = _domid(net_host, "named")
        assert _node(net_host, f"/local/domain/0/backend/vif/{domid}/0/vifname") == "web0"
    finally:
        net_host.xl("destroy", "named")
    assert _taps(net_host) == {}


@pytest.mark.parametrize(
    ("vifs", "said"),
    [
        (["bridge=nosuch"], "bridge nosuch does not exist"),
        (["bridge=xenbr0", "bridge=lo"], "lo is a network interface but not a bridge"),
        (["ip=10.77.0.500"], "'10.77.0.500' is not an IP address or network"),
        (["bridge=xenbr0,ip=10.77.0.5", "bridge=nosuch,rate=1MB/s"], "bridge nosuch does not"),
        (["bridge=xenbr1", "vifname=lo"], "a network interface named lo exists already"),
    ],
)
def test_a_failed_create_leaves_no_tap(net_host: Any, vifs: list[str], said: str) -> None:
    before = host_state(net_host.root)
    refused = _create(net_host, "broken", *vifs)
    assert refused.returncode != 0
    assert said in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert _taps(net_host) == {}
    assert host_state(net_host.root) == before


def test_a_daemon_killed_mid_create_leaves_no_tap(net_host: Any) -> None:
    before = host_state(net_host.root)
    net_host.stop_xenlited()
    net_host.start(crash_at="create:qemu-launched")
    assert _create(net_host, "cut", "bridge=xenbr0").returncode != 0
    net_host.start()
    assert _taps(net_host) == {}
    assert host_state(net_host.root) == before


def _wait_guest(guest: GuestShell, command: str, expected: int, timeout: float = 30.0) -> None:
    # Hot-plug reaches the guest through the PCI bridge's SHPC: wait for its kernel to act.
    deadline = time.monotonic() + timeout
    while guest.run(command)[0] != expected:
        assert time.monotonic() < deadline, f"{command} never gave {expected}"
        time.sleep(0.2)


def test_network_attach_list_and_detach_on_a_running_guest(net_host: Any) -> None:
    before = host_state(net_host.root)
    created = _create(net_host, "hot", "mac=00:16:3e:00:00:20")
    assert created.returncode == 0, created.stderr
    try:
        domid = _domid(net_host, "hot")
        net_host.wait_ready("hot")
        header = "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path" + " " * 23
        row = "0   0  00:16:3e:00:00:20     0     4     -1    -1/-1          "
        row += f"/local/domain/0/backend/vif/{domid}/0".ljust(30)
        listed = net_host.xl("network-list", "hot")
        assert listed.stdout == f"{header}\n{row}\n"
        attached = net_host.xl("network-attach", "hot", "bridge=xenbr1", "mac=00:16:3e:00:00:21")
        assert attached.returncode == 0, attached.stderr
        assert master_of(net_host.netns, f"vif{domid}.1") == "xenbr1"
        with GuestShell(net_host, "hot") as guest:
            _wait_guest(guest, "test -e /sys/class/net/eth1", 0)
            assert guest.run("cat /sys/class/net/eth1/address") == (0, "00:16:3e:00:00:21\n")
            lines = net_host.xl("network-list", "hot").stdout.splitlines()
            assert [line.split()[:3] for line in lines[1:]] == [
                ["0", "0", "00:16:3e:00:00:20"],
                ["1", "0", "00:16:3e:00:00:21"],
            ]
            nics = json.loads(net_host.xl("list", "-l", "hot").stdout)[0]["config"]["nics"]
            assert [n["mac"] for n in nics] == ["00:16:3e:00:00:20", "00:16:3e:00:00:21"]
            # Detach by devid, then by MAC; the guest loses each NIC, the host its tap.
            assert net_host.xl("network-detach", "hot", "1").returncode == 0
            _wait_guest(guest, "test -e /sys/class/net/eth1", 1)
            assert set(_taps(net_host)) == {f"vif{domid}.0"}
            assert net_host.xl("network-detach", "hot", "00:16:3E:00:00:20").returncode == 0
            _wait_guest(guest, "test -e /sys/class/net/eth0", 1)
        assert _taps(net_host) == {}
        assert net_host.xl("network-list", "hot").stdout == f"{header}\n"
        unknown = net_host.xl("network-detach", "hot", "7")
        assert (unknown.returncode, unknown.stderr) == (1, "Unknown device 7.\n")
        # A NIC that cannot be made leaves the domain as it was.
        refused = net_host.xl("network-attach", "hot", "bridge=nosuch")
        assert refused.returncode != 0
        assert "bridge nosuch does not exist" in refused.stderr
        assert _taps(net_host) == {}
        assert (
            json.loads(net_host.xl("list", "-l", "hot").stdout)[0]["config"].get("nics", []) == []
        )
        # And one attached after all that comes up again, as vif D.0.
        assert net_host.xl("network-attach", "hot", "bridge=xenbr0").returncode == 0
        assert set(_taps(net_host)) == {f"vif{domid}.0"}
    finally:
        net_host.xl("destroy", "hot")
    assert _taps(net_host) == {}
    assert host_state(net_host.root) == before


@pytest.mark.parametrize(("point", "verb"), [("attach:tap-plugged", "attach"),
                                             ("detach:nic-deleted", "detach")])  # fmt: skip
def test_a_nic_change_cut_short_is_finished_by_the_next_daemon(
    net_host: Any, point: str, verb: str
) -> None:
    start = host_state(net_host.root)
    assert _create(net_host, "cutnic", "bridge=xenbr0").returncode == 0
    try:
        net_host.wait_ready("cutnic")
        domid = _domid(net_host, "cutnic")
        if verb == "detach":
            assert net_host.xl("network-attach", "cutnic", "bridge=xenbr1").returncode == 0
            with GuestShell(net_host, "cutnic") as guest:  # the guest has the NIC to let go
                _wait_guest(guest, "test -e /sys/class/net/eth1", 0)
        net_host.stop_xenlited()
        net_host.start(crash_at=point)
        dead = net_host.xenlited_pid()
        if verb == "attach":
            done = net_host.xl("network-attach", "cutnic", "bridge=xenbr1")
        else:
            done = net_host.xl("network-detach", "cutnic", "1")
        assert done.returncode != 0
        assert not pid_alive(dead), f"xenlited did not reach {point}: {done.stderr}"
        net_host.start()
        # Either way vif 1 is gone (QEMU had no device for it): its tap, nodes and entry.
        assert set(_taps(net_host)) == {f"vif{domid}.0"}
        nics = json.loads(net_host.xl("list", "-l", "cutnic").stdout)[0]["config"]["nics"]
        assert [n["devid"] for n in nics] == [0]
        assert "its attach or detach was cut short" in net_host.xl("dmesg").stdout
        again = net_host.xl("network-attach", "cutnic", "bridge=xenbr1")
        assert again.returncode == 0, again.stderr
    finally:
        net_host.xl("destroy", "cutnic")
    assert _taps(net_host) == {}
    assert host_state(net_host.root) == start


def test_without_cap_net_admin_a_vif_is_refused_saying_so(live_host_factory: Any) -> None:
    # xenlited without CAP_NET_ADMIN (setpriv drops it from the bounding set): no tap can
    # be made, and the create says why and leaves nothing.
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop CAP_NET_ADMIN")
    with namespace() as netns:
        add_bridge(netns, "xenbr0")
        with live_host_factory(netns, drop_caps=("net_admin",)) as host:
            before = host_state(host.root)
            refused = _create(host, "nocap", "bridge=xenbr0")
            assert refused.returncode != 0
            assert "not permitted (no CAP_NET_ADMIN)" in refused.stderr, refused.stderr
            assert "run xenlited as root" in refused.stderr
            assert _taps(host) == {}
            assert host_state(host.root) == before
