"""Credit scheduling on real guests: cpu_weight/cap and xl sched-credit2 land in the domain's
cgroup (checked in cgroupfs, where the kernel reads them), and the group goes with the domain.

xl.cfg(5) "cpu_weight", "cap"; xl.1 "sched-credit2"; the mapping is host/cgroups.py's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xenlite.base.errors import XenliteError
from xenlite.host.cgroups import CgroupVersion, detect_layout, parent_for_root

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def _group(host: Any, domid: int) -> tuple[CgroupVersion, Path]:
    try:
        layout = detect_layout()
    except XenliteError as exc:
        pytest.skip(f"no cgroup cpu controller on this machine: {exc}")
    return layout.cpu_version, layout.cpu_mount / parent_for_root(host.root) / f"dom{domid}"


def _threads(pid: int) -> set[int]:
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def test_weight_and_cap_reach_the_domains_cgroup(live_host: Any) -> None:
    config = live_host.write_config("sched", "cpu_weight = 512", "cap = 25")
    created = live_host.xl("create", "-q", str(config))
    assert created.returncode == 0, created.stderr
    domid = int(live_host.xl("domid", "sched").stdout)
    version, group = _group(live_host, domid)
    if version is CgroupVersion.V1:
        assert (group / "cpu.shares").read_text().strip() == "2048"
        assert (group / "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert (group / "cpu.cfs_period_us").read_text().strip() == "100000"
        members = {int(t) for t in (group / "tasks").read_text().split()}
    else:
        assert (group / "cpu.weight").read_text().strip() == "200"
        assert (group / "cpu.max").read_text().strip() == "25000 100000"
        members = set()
        for pid in (group / "cgroup.procs").read_text().split():
            members |= _threads(int(pid))
    pids = [p for p in live_host.qemu_pids()
            if f"qemu-dm-{domid},".encode() in Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
    assert len(pids) == 1
    assert _threads(pids[0]) <= members  # QEMU and every one of its threads
    listing = live_host.xl("sched-credit2")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == "Cpupool Pool-0: ratelimit=1000us"
    assert lines[1] == "Name                                ID Weight  Cap"
    assert f"{'sched':<33} {domid:4d}    512   25" in lines
    assert live_host.xl("sched-credit2", "-d", "sched", "-w", "64", "-c", "0").returncode == 0
    if version is CgroupVersion.V1:
        assert (group / "cpu.shares").read_text().strip() == "256"
        assert (group / "cpu.cfs_quota_us").read_text().strip() == "-1"
    one = live_host.xl("sched-credit2", "-d", "sched").stdout.splitlines()
    assert one == ["Name                                ID Weight  Cap",
                   f"{'sched':<33} {domid:4d}     64    0"]  # fmt: skip
    # The host runs credit2 (Xen's default): credit's verb is refused as xl refuses it.
    other = live_host.xl("sched-credit", "-d", "sched")
    assert other.returncode != 0
    assert "returned credit2 not credit" in other.stderr
    bad = live_host.xl("sched-credit2", "-d", "sched", "-w", "70000")
    assert bad.returncode != 0
    assert live_host.xl("destroy", "sched").returncode == 0
    assert not group.exists()


def test_takeover_that_cannot_join_the_cgroup_says_so(
    live_host_factory: Callable[[], contextlib.AbstractContextManager[Any]],
) -> None:
    # A domain's cap must not stop being enforced without a word when a new xenlited takes
    # it over. To make the kernel refuse the join, xenlite's parent group gets a CFS quota
    # below the domain's cap while no xenlited runs (cgroup v1 refuses a child quota above
    # its parent's with EINVAL); the domain keeps running and xl dmesg says why.
    with live_host_factory() as host:
        config = host.write_config("capped", "cap = 50")
        created = host.xl("create", "-p", str(config))
        assert created.returncode == 0, created.stderr
        domid = int(host.xl("domid", "capped").stdout)
        version, group = _group(host, domid)
        if version is not CgroupVersion.V1:
            pytest.skip("cgroup v2 lets a child's cpu.max exceed its parent's: no refusal")
        parent_quota = group.parent / "cpu.cfs_quota_us"
        host.stop_xenlited()
        try:
            (group / "cpu.cfs_quota_us").write_text("-1")
            parent_quota.write_text("1000")  # 1% of a CPU, below the domain's 50%
            host.start()
            log = host.xl("dmesg").stdout
            assert f"Domain {domid} (capped): its cgroup could not be joined (" in log, log
            assert "cpu_weight/cap are not enforced until it is re-created" in log
            assert host.listed() == ["Domain-0", "capped"]  # it runs on
        finally:
            parent_quota.write_text("-1")
        assert host.xl("destroy", "capped").returncode == 0
