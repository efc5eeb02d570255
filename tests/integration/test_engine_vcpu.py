"""vCPU affinity on real guests: cpus= at create, xl vcpu-pin, xl vcpu-list, kept on reboot.

xl.cfg(5) "cpus", xl.1 "vcpu-pin", "vcpu-list": the hard affinity is checked where it takes
effect, on QEMU's vCPU threads ("CPU n/TCG" or "CPU n/KVM" in /proc), not in xenlite's books.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BOOT_TIMEOUT = 30.0
ROW = re.compile(
    r"^(?P<name>\S.{31}) +(?P<id>\d+) +(?P<vcpu>\d+) +(?P<cpu>\d+|-) +(?P<state>[r-][b-][p-])"
    r" +(?P<time>\d+\.\d)  (?P<hard>\S+) / (?P<soft>\S+)$"
)


def _domid(host: Any, name: str) -> int:
    return int(host.xl("domid", name).stdout.strip())


def _vcpu_threads(host: Any, domid: int) -> dict[int, int]:
    """vCPU index -> thread id of the domain's QEMU (named by debug-threads=on)."""
    for pid in host.qemu_pids():
        if f"qemu-dm-{domid},".encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            continue
        threads = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            match = re.fullmatch(r"CPU (\d+)/(TCG|KVM)", comm)
            if match:
                threads[int(match[1])] = int(tid)
        return threads
    raise AssertionError(f"no QEMU for domain {domid}")


def _qemu_own_affinities(host: Any, domid: int) -> list[set[int]]:
    """The distinct affinities of the QEMU threads that run no vCPU."""
    vcpus = set(_vcpu_threads(host, domid).values())
    for pid in host.qemu_pids():
        if f"qemu-dm-{domid},".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            found = {frozenset(os.sched_getaffinity(t)) for t in tids if t not in vcpus}
            return [set(cpus) for cpus in found]
    raise AssertionError(f"no QEMU for domain {domid}")


def _affinities(host: Any, domid: int) -> dict[int, set[int]]:
    return {v: os.sched_getaffinity(t) for v, t in _vcpu_threads(host, domid).items()}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pinning needs at least 2 host CPUs")
def test_cpus_at_create_vcpu_pin_and_vcpu_list(live_host: Any) -> None:
    config = live_host.write_config("pinned", "vcpus = 2", 'cpus = "1"')
    assert live_host.xl("create", "-q", str(config)).returncode == 0
    live_host.wait_ready("pinned", timeout=BOOT_TIMEOUT)
    domid = _domid(live_host, "pinned")
    assert _affinities(live_host, domid) == {0: {1}, 1: {1}}
    assert live_host.xl("vcpu-pin", "pinned", "0", "0").returncode == 0
    assert _affinities(live_host, domid) == {0: {0}, 1: {1}}
    listing = live_host.xl("vcpu-list", "pinned")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == (
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)"
    )
    rows = [ROW.match(line) for line in lines[1:]]
    assert all(rows), lines
    assert [(m["vcpu"], m["hard"], m["soft"]) for m in rows if m] == [
        ("0", "0", "all"),
        ("1", "1", "all"),
    ]
    everything = live_host.xl("vcpu-list").stdout
    assert "Domain-0" in everything
    # The pinning is the domain's: a reboot (on_reboot=restart, a new domid) keeps it.
    assert live_host.xl("reboot", "-w", "pinned", timeout=60).returncode == 0
    live_host.wait_ready("pinned", count=2, timeout=BOOT_TIMEOUT)
    again = _domid(live_host, "pinned")
    assert again != domid
    assert _affinities(live_host, again) == {0: {0}, 1: {1}}
    wrong = live_host.xl("vcpu-pin", "pinned", "7", "0")
    assert wrong.returncode != 0
    assert "vCPU 7" in wrong.stderr
    assert live_host.xl("destroy", "pinned").returncode == 0


def _online(host: Any, name: str) -> str:
    """/sys/devices/system/cpu/online in the guest, once it has settled on ``wanted``."""
    from guestshell import GuestShell

    with GuestShell(host, name) as guest:
        status, said = guest.run("cat /sys/devices/system/cpu/online")
        assert status == 0, said
        return said.strip()


def _wait_online(host: Any, name: str, wanted: str, timeout: float = 20.0) -> None:
    """Until the guest's online CPU list is ``wanted`` (it onlines a plugged vCPU itself)."""
    import time

    from guestshell import GuestShell

    deadline = time.monotonic() + timeout
    with GuestShell(host, name) as guest:
        while True:
            status, said = guest.run("cat /sys/devices/system/cpu/online")
            assert status == 0, said
            if said.strip() == wanted:
                return
            assert time.monotonic() < deadline, f"online CPUs {said.strip()!r}, not {wanted!r}"
            time.sleep(0.2)


def _availability(host: Any, domid: int, vcpu: int) -> str:
    """The vCPU's cpu/N/availability node, read with xenlite's xenstore-read."""
    import subprocess
    import sys

    read = subprocess.run(
        [str(Path(sys.executable).with_name("xenlite")), "xenstore-read",
         f"/local/domain/{domid}/cpu/{vcpu}/availability"],
        env=host.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    return read.stdout.strip()


def _listed_vcpus(host: Any, name: str) -> int:
    row = host.xl("list", name).stdout.splitlines()[1].split()
    return int(row[3])


def test_vcpu_set_plugs_and_the_guest_follows(live_host: Any) -> None:
    config = live_host.write_config("hot", "vcpus = 1", "maxvcpus = 2")
    assert live_host.xl("create", "-q", str(config)).returncode == 0
    try:
        live_host.wait_ready("hot", timeout=BOOT_TIMEOUT)
        domid = _domid(live_host, "hot")
        assert _online(live_host, "hot") == "0"
        assert _listed_vcpus(live_host, "hot") == 1
        offline = live_host.xl("vcpu-list", "hot").stdout.splitlines()[2]
        matched = ROW.match(offline)
        assert matched is not None
        assert matched["state"] == "--p"

        done = live_host.xl("vcpu-set", "hot", "2")
        assert done.returncode == 0, done.stderr
        _wait_online(live_host, "hot", "0-1")
        assert sorted(_vcpu_threads(live_host, domid)) == [0, 1]
        assert _listed_vcpus(live_host, "hot") == 2
        rows = [ROW.match(line) for line in live_host.xl("vcpu-list", "hot").stdout.splitlines()]
        assert [r["state"][2] for r in rows[1:] if r] == ["-", "-"]  # both online
        assert _availability(live_host, domid, 1) == "online"

        # Above maxvcpus: libxl's words; nothing changes.
        over = live_host.xl("vcpu-set", "-i", "hot", "3")
        assert over.returncode != 0
        assert "Requested 3 VCPUs, however maxcpus is 2!" in over.stderr
        assert "maxvcpus = 3" in over.stderr
        # Below 1 is quietly ignored (xl.1).
        assert live_host.xl("vcpu-set", "hot", "0").returncode == 0
        assert _listed_vcpus(live_host, "hot") == 2

        # The count survives a reboot of the domain, as under Xen.
        assert live_host.xl("reboot", "-w", "hot", timeout=60).returncode == 0
        live_host.wait_ready("hot", count=2, timeout=BOOT_TIMEOUT)
        assert _online(live_host, "hot") == "0-1"
        domid = _domid(live_host, "hot")

        # 2 -> 1: the guest gives the highest vCPU up and ACPI ejects it.
        down = live_host.xl("vcpu-set", "hot", "1")
        assert down.returncode == 0, down.stderr
        _wait_online(live_host, "hot", "0")
        assert sorted(_vcpu_threads(live_host, domid)) == [0]
        assert _listed_vcpus(live_host, "hot") == 1
        assert _availability(live_host, domid, 1) == "offline"
        # Under TCG (these tests' accelerator) QEMU 7.2 cannot plug a vCPU into a QEMU that
        # had one unplugged: refused, saying why and what to do, and nothing changes.
        refused = live_host.xl("vcpu-set", "hot", "2")
        assert refused.returncode != 0
        assert "under TCG" in refused.stderr
        assert "xl reboot hot" in refused.stderr
        assert _listed_vcpus(live_host, "hot") == 1
        # A reboot brings a new QEMU with the one vCPU, which takes more again.
        assert live_host.xl("reboot", "-w", "hot", timeout=60).returncode == 0
        live_host.wait_ready("hot", count=3, timeout=BOOT_TIMEOUT)
        assert _online(live_host, "hot") == "0"
        assert live_host.xl("vcpu-set", "hot", "2").returncode == 0
        _wait_online(live_host, "hot", "0-1")
    finally:
        live_host.xl("destroy", "hot")


def test_a_vcpu_set_cut_short_is_settled_by_the_next_xenlited(live_host: Any) -> None:
    config = live_host.write_config("cut", "vcpus = 1", "maxvcpus = 2")
    assert live_host.xl("create", "-q", str(config)).returncode == 0
    try:
        live_host.wait_ready("cut", timeout=BOOT_TIMEOUT)
        domid = _domid(live_host, "cut")
        # Killed once QEMU has the new vCPU, before the config and XenStore say so.
        live_host.crash_during("vcpu-set:plugged", "vcpu-set", "cut", "2")
        assert _listed_vcpus(live_host, "cut") == 2
        assert _availability(live_host, domid, 1) == "online"
        assert "(a vcpu-set was cut short); QEMU's count kept" in live_host.xl("dmesg").stdout
        _wait_online(live_host, "cut", "0-1")
        assert sorted(_affinities(live_host, domid)) == [0, 1]
    finally:
        live_host.xl("destroy", "cut")


def test_vcpu_set_refuses_to_overcommit_the_host_unless_told(live_host: Any) -> None:
    host_cpus = os.cpu_count() or 1
    config = live_host.write_config("wide", "vcpus = 1", f"maxvcpus = {host_cpus + 1}")
    assert live_host.xl("create", "-q", str(config)).returncode == 0
    try:
        live_host.wait_ready("wide", timeout=BOOT_TIMEOUT)
        refused = live_host.xl("vcpu-set", "wide", str(host_cpus + 1))
        assert refused.returncode == 1
        assert refused.stderr == (
            f"You are overcommmitting! You have {host_cpus} physical CPUs and want "
            f"{host_cpus + 1} vCPUs! Aborting, use --ignore-host to continue\n"
        )
        assert _listed_vcpus(live_host, "wide") == 1
        done = live_host.xl("vcpu-set", "--ignore-host", "wide", str(host_cpus + 1))
        assert done.returncode == 0, done.stderr
        _wait_online(live_host, "wide", f"0-{host_cpus}")
        bad = live_host.xl("vcpu-set", "wide", "many")
        assert (bad.returncode, bad.stderr) == (1, "Error: Invalid argument.\n")
    finally:
        live_host.xl("destroy", "wide")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="keeping a CPU for dom0 needs 2")
def test_dom0_vcpus_pin_keeps_cpu_0_for_dom0(live_host_factory: Any) -> None:
    """The seed's "dom0_max_vcpus=1 dom0_vcpus_pin": dom0's one vCPU on CPU 0, and domains
    without cpus= run on the other CPUs; a domain that names CPU 0 still gets it."""
    everything = sorted(os.sched_getaffinity(0))
    with live_host_factory() as host:
        host.restart_with(
            {"/etc/default/grub": 'GRUB_CMDLINE_XEN="dom0_max_vcpus=1 dom0_vcpus_pin"\n'}
        )
        dmesg = host.xl("dmesg").stdout
        assert f"Dom0 has 1 vCPUs pinned to CPUs {everything[0]} (dom0_vcpus_pin)" in dmesg
        rows = host.xl("vcpu-list", "Domain-0").stdout.splitlines()[1:]
        assert len(rows) == 1
        dom0 = ROW.match(rows[0])
        assert dom0 is not None
        assert (dom0["vcpu"], dom0["cpu"], dom0["hard"]) == ("0", str(everything[0]),
                                                            str(everything[0]))  # fmt: skip
        assert host.xl("list", "Domain-0").stdout.splitlines()[1].split()[3] == "1"

        config = host.write_config("guest", "vcpus = 2")
        named = host.write_config("named", "vcpus = 2", f'cpus = "{everything[0]}"')
        assert host.xl("create", "-q", str(config)).returncode == 0
        assert host.xl("create", "-q", str(named)).returncode == 0
        host.wait_ready("guest", timeout=BOOT_TIMEOUT)
        host.wait_ready("named", timeout=BOOT_TIMEOUT)
        rest = set(everything[1:])
        assert _affinities(host, _domid(host, "guest")) == {0: rest, 1: rest}
        first = {everything[0]}
        assert _affinities(host, _domid(host, "named")) == {0: first, 1: first}
        # QEMU's own threads (main loop, I/O) stay off dom0's CPU too, even where the vCPUs
        # were sent there by cpus=.
        assert _qemu_own_affinities(host, _domid(host, "guest")) == [rest]
        assert _qemu_own_affinities(host, _domid(host, "named")) == [rest]
        # vcpu-pin of one vCPU leaves the other on the domains' CPUs, not on dom0's.
        assert host.xl("vcpu-pin", "guest", "0", "all").returncode == 0
        assert _affinities(host, _domid(host, "guest")) == {0: set(everything), 1: rest}
