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
