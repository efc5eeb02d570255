"""vif-route, vif-nat and script programs on real guests, each host in its own network
namespace with a second namespace ("outside") behind its uplink: a routed and a NATed guest
reach an address outside, Debian's own vif-bridge from xen-utils-common (unchanged) puts a
vif on its bridge through xenlite's XenStore, a custom script sees Xen's hotplug
environment, and its failure fails the create with its words; nothing is left after.

xl-network-configuration(5) (script, gatewaydev, ip), Xen's vif-route, vif-nat,
vif-bridge, vif-common.sh; libxl_linux.c's hotplug environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guestshell import GuestShell
from hoststate import host_state
from netns import add_bridge, ip, links, master_of, namespace, run_in
from xenlite.base.errors import XenStoreError
from xenlite.xenstore.client import XenStore

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

UPLINK = "10.80.0.1"  # the host's address on uplink0
OUTSIDE = "10.80.0.2"  # the other end, in the "outside" namespace


@pytest.fixture(scope="module")
def hosts(live_host_factory: Any) -> Iterator[tuple[Any, str]]:
    if shutil.which("nft") is None:
        pytest.skip("needs nftables (nft): apt-get install nftables")
    with namespace() as netns, namespace() as outside:
        add_bridge(netns, "xenbr0", "10.79.0.1/24")
        ip(netns, "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns",
           outside)  # fmt: skip
        ip(netns, "addr", "add", f"{UPLINK}/24", "dev", "uplink0")
        ip(netns, "link", "set", "uplink0", "up")
        ip(outside, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        ip(outside, "link", "set", "eth0", "up")
        forwarding = run_in(netns, "sysctl", "-w", "net.ipv4.ip_forward=1")
        assert forwarding.returncode == 0, forwarding.stderr
        with live_host_factory(netns) as host:
            yield host, outside


def _create(host: Any, name: str, *vifs: str) -> subprocess.CompletedProcess[str]:
    specs = ", ".join(f"'{v}'" for v in vifs)
    return host.xl("create", str(host.write_config(name, f"vif = [ {specs} ]")))


def _domid(host: Any, name: str) -> int:
    return int(host.xl("domid", name).stdout)


def _node(host: Any, path: str) -> str | None:
    with XenStore.open(host.root / "run/xenstored/socket") as xs:
        try:
            return xs.read(path).decode()
        except XenStoreError:
            return None


def _guest(guest: GuestShell, *commands: str) -> None:
    for command in commands:
        status, said = guest.run(command)
        assert status == 0, (command, said)


def _taps(host: Any) -> set[str]:
    return set(links(host.netns)) - {"lo", "xenbr0", "uplink0"}


def _proxies(netns: str) -> list[Any]:
    return list(json.loads(ip(netns, "-j", "neigh", "show", "proxy")))


def _nothing_left(host: Any) -> None:
    assert _taps(host) == set()
    assert _proxies(host.netns) == []
    listed = json.loads(run_in(host.netns, "nft", "-j", "list", "ruleset").stdout)["nftables"]
    assert [o for o in listed if "metainfo" not in o] == []


def test_vif_route_gives_the_guest_a_route_to_the_outside(hosts: tuple[Any, str]) -> None:
    host, outside = hosts
    before = host_state(host.root)
    created = _create(host, "routed", "script=vif-route,ip=10.80.0.5,gatewaydev=uplink0")
    assert created.returncode == 0, created.stderr
    try:
        tap = f"vif{_domid(host, 'routed')}.0"
        assert master_of(host.netns, tap) is None  # routed, not bridged
        assert ip(host.netns, "-4", "-o", "addr", "show", "dev", tap).split()[3] == f"{UPLINK}/32"
        (route,) = json.loads(ip(host.netns, "-j", "route", "show", "dev", tap))
        assert (route["dst"], route["prefsrc"], route["metric"]) == ("10.80.0.5", UPLINK, 2)
        assert [p["dst"] for p in _proxies(host.netns)] == ["10.80.0.5"]
        host.wait_ready("routed")
        with GuestShell(host, "routed") as guest:
            _guest(guest, "ip addr add 10.80.0.5/24 dev eth0", "ip link set eth0 up",
                   f"ping -c 1 -W 5 {OUTSIDE}")  # fmt: skip
        back = run_in(outside, "busybox", "ping", "-c", "1", "-W", "5", "10.80.0.5")
        assert back.returncode == 0, back.stdout + back.stderr
    finally:
        host.xl("destroy", "routed")
    _nothing_left(host)
    assert host_state(host.root) == before


def test_vif_nat_lets_the_guest_out_under_the_hosts_address(hosts: tuple[Any, str]) -> None:
    host, outside = hosts
    created = _create(host, "natted", "script=vif-nat,ip=10.81.0.2,gatewaydev=uplink0")
    assert created.returncode == 0, created.stderr
    try:
        tap = f"vif{_domid(host, 'natted')}.0"
        # vif-nat's router address: the guest's last octet + 127.
        assert ip(host.netns, "-4", "-o", "addr", "show", "dev", tap).split()[3] == "10.81.0.129/32"
        host.wait_ready("natted")
        with GuestShell(host, "natted") as guest:
            # The outside has no route to 10.81.0.0: only a masqueraded packet gets a reply.
            _guest(guest, "ip addr add 10.81.0.2/24 dev eth0", "ip link set eth0 up",
                   "ip route add default via 10.81.0.129", f"ping -c 1 -W 5 {OUTSIDE}")  # fmt: skip
        assert "10.81" not in ip(outside, "route", "show")
    finally:
        host.xl("destroy", "natted")
    _nothing_left(host)


def _debian_scripts(root: Path, tmp_path: Path) -> Path:
    scripts = root / "etc/xen/scripts"
    if not (scripts / "vif-bridge").exists():
        pytest.skip(f"Debian's xen-utils-common has no vif-bridge under {root}")
    copy = tmp_path / "scripts"
    shutil.copytree(scripts, copy)  # as packaged: vif-bridge sources its neighbours
    return copy


def test_debians_own_vif_bridge_puts_the_vif_on_its_bridge(
    hosts: tuple[Any, str], tmp_path: Path, xen_oracle_root: Path
) -> None:
    host, _ = hosts
    script = _debian_scripts(xen_oracle_root, tmp_path) / "vif-bridge"
    before = host_state(host.root)
    machine_log = Path("/var/log/xen/xen-hotplug.log")
    machine_had = machine_log.stat().st_size if machine_log.exists() else None
    created = _create(host, "debian", f"script={script},bridge=xenbr0,vifname=deb0,mtu=1400")
    assert created.returncode == 0, created.stderr
    try:
        domid = _domid(host, "debian")
        assert _taps(host) == {"deb0"}  # renamed by Xen's vif-common.sh from vif<domid>.0
        assert master_of(host.netns, "deb0") == "xenbr0"
        assert links(host.netns)["deb0"]["mtu"] == 1400
        back = f"/local/domain/0/backend/vif/{domid}/0"
        assert _node(host, f"{back}/hotplug-status") == "connected"  # its success()
        assert _node(host, f"{back}/script") == str(script)
        host.wait_ready("debian")
        with GuestShell(host, "debian") as guest:
            _guest(guest, "ip addr add 10.79.0.9/24 dev eth0", "ip link set eth0 up",
                   "ping -c 1 -W 5 10.79.0.1")  # fmt: skip
    finally:
        host.xl("destroy", "debian")
    assert _taps(host) == set()
    log = host.root / "var/log/xen/xen-hotplug.log"  # the script's own log, under the root
    assert log.exists()  # (what it logs goes to syslog; its stderr would go here)
    assert (machine_log.stat().st_size if machine_log.exists() else None) == machine_had
    # Xen's set_mtu takes the domid and devid from the vif's name, so with a vifname it
    # writes /local/domain/deb0/device/vif/deb0/mtu: on Xen as here, the script's own doing.
    assert _node(host, "/local/domain/deb0/device/vif/deb0/mtu") == "1400"
    with XenStore.open(host.root / "run/xenstored/socket") as xs:
        xs.rm("/local/domain/deb0")
    assert host_state(host.root) == before


RECORDING = """#!/bin/sh
# Records what libxl hands a vif script, then does vif-bridge's work with xenstore-utils.
out="$(dirname "$0")/calls"
echo "$* script=$script XENBUS_TYPE=$XENBUS_TYPE XENBUS_PATH=$XENBUS_PATH" \\
     "XENBUS_BASE_PATH=$XENBUS_BASE_PATH vif=$vif netdev=$netdev" >> "$out"
bridge=$(xenstore-read "$XENBUS_PATH/bridge")
echo "ip=$(xenstore-read "$XENBUS_PATH/ip")" >> "$out"
case "$1" in
online) ip link set "$vif" master "$bridge" && ip link set "$vif" up &&
        xenstore-write "$XENBUS_PATH/hotplug-status" connected ;;
offline) ip link set "$vif" nomaster ;;
esac
"""
FAILING = """#!/bin/sh
xenstore-write "$XENBUS_PATH/hotplug-error" "no switch port for $vif"
echo "switch said no" >&2
exit 1
"""


def _install(host: Any, name: str, text: str) -> Path:
    """Put script ``name`` in the host root's /etc/xen/scripts; that directory."""
    scripts = host.root / "etc/xen/scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / name).write_text(text)
    (scripts / name).chmod(0o755)
    return scripts


def test_a_custom_script_gets_xens_hotplug_environment(hosts: tuple[Any, str]) -> None:
    host, _ = hosts
    scripts = _install(host, "vif-record", RECORDING)
    calls = scripts / "calls"
    calls.unlink(missing_ok=True)
    created = _create(host, "custom", "script=vif-record,bridge=xenbr0,ip=10.79.0.7,"
                      "gatewaydev=uplink0,rate=1MB/s")  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        domid = _domid(host, "custom")
        assert master_of(host.netns, f"vif{domid}.0") == "xenbr0"
        # rate= is netback's, so xenlite's whatever the script: shaped after the script ran.
        assert f"ifb{domid}.0" in links(host.netns)
        # Hot-plugged, the same: online before QEMU has the NIC, offline once it let it go.
        host.wait_ready("custom")
        spec = "script=vif-record,ip=10.79.0.8,gatewaydev=uplink0"
        attached = host.xl("network-attach", "custom", spec)
        assert attached.returncode == 0, attached.stderr
        assert master_of(host.netns, f"vif{domid}.1") == "xenbr0"
        with GuestShell(host, "custom") as guest:  # the guest has the NIC to let go
            _guest(guest, "while [ ! -e /sys/class/net/eth1 ]; do sleep 0.1; done")
        assert host.xl("network-detach", "custom", "1").returncode == 0
        assert f"vif{domid}.1" not in links(host.netns)
    finally:
        host.xl("destroy", "custom")
    lines = calls.read_text().splitlines()

    def call(action: str, devid: int) -> str:
        return (f"{action} type_if=vif script={scripts}/vif-record XENBUS_TYPE=vif "
                f"XENBUS_PATH=backend/vif/{domid}/{devid} XENBUS_BASE_PATH=backend "
                f"vif=vif{domid}.{devid} netdev=uplink0")  # fmt: skip

    assert lines == [  # ip= is the script's to honour, as on Xen
        call("online", 0), "ip=10.79.0.7", call("online", 1), "ip=10.79.0.8",
        call("offline", 1), "ip=10.79.0.8", call("offline", 0), "ip=10.79.0.7",
    ]  # fmt: skip
    assert _taps(host) == set()


def test_a_failing_script_fails_the_create_with_its_words(hosts: tuple[Any, str]) -> None:
    host, _ = hosts
    _install(host, "vif-fail", FAILING)
    before = host_state(host.root)
    refused = _create(host, "failing", "bridge=xenbr0", "script=vif-fail,bridge=xenbr0")
    assert refused.returncode != 0
    assert "vif-fail online exited with status 1" in refused.stderr, refused.stderr
    assert "script: no switch port for vif" in refused.stderr
    assert "its stderr: switch said no" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _taps(host) == set()
    assert host_state(host.root) == before
    missing = _create(host, "missing", "script=vif-nosuch")
    assert "vif-nosuch is missing or not executable" in missing.stderr
    assert _taps(host) == set()
