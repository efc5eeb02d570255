"""Domain cgroups on this machine's real cgroupfs: a threaded process joins, is weighted,
capped and pinned as the kernel reports it, and goes back to the root group on removal.

Each test uses its own parent group (``xenlite-test-<pid>-<n>``) and removes it, even on failure.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlite.base.errors import DomainError, HostError, XenliteError
from xenlite.host.cgroups import CgroupHost, CgroupLayout, CgroupVersion, detect_layout

# Two extra threads, so "the process and all its threads" is more than the main thread.
THREADED_SLEEP = """
import threading, time
for _ in range(2):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
time.sleep(60)
"""
_parents = itertools.count()


def _layout() -> CgroupLayout:
    if os.geteuid() != 0:
        pytest.skip("moving processes between cgroups needs root")
    try:
        return detect_layout()
    except XenliteError as err:
        pytest.skip(f"no cgroup cpu controller on this machine: {err}")


@pytest.fixture
def host() -> Iterator[CgroupHost]:
    cgroups = CgroupHost(_layout(), parent=f"xenlite-test-{os.getpid()}-{next(_parents)}")
    try:
        yield cgroups
    finally:
        cgroups.remove_all()
        for _, mount, _ in cgroups.layout.hierarchies():
            assert not (mount / cgroups.parent).exists()


@pytest.fixture
def threaded() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", THREADED_SLEEP])
    try:
        deadline = time.monotonic() + 10
        while len(_tids(proc.pid)) < 3:
            assert time.monotonic() < deadline, "the threaded process did not start its threads"
            time.sleep(0.01)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _tids(pid: int) -> set[int]:
    return {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}


def _cgroup_of(tid: int, layout: CgroupLayout, controller: str) -> str:
    """The group ``tid`` is in for ``controller``, from /proc (the kernel's own view)."""
    version = layout.cpu_version if controller == "cpu" else layout.cpuset_version
    for line in Path(f"/proc/{tid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version is CgroupVersion.V2 and controllers == "") or (
            controller in controllers.split(",")
        ):
            return path
    raise AssertionError(f"no {controller} line in /proc/{tid}/cgroup")


def test_a_process_and_all_its_threads_are_weighted_capped_pinned_and_released(
    host: CgroupHost, threaded: subprocess.Popen[bytes]
) -> None:
    layout, pid = host.layout, threaded.pid
    tids = _tids(pid)
    group = host.create_domain(5)
    assert host.create_domain(5) == group  # idempotent
    group.add_process(pid)

    in_group = f"/{host.parent}/dom5"
    for tid in tids:
        assert _cgroup_of(tid, layout, "cpu") == in_group
        if layout.cpuset_mount is not None:
            assert _cgroup_of(tid, layout, "cpuset") == in_group
    assert group.pids() == [pid]
    if layout.cpu_version is CgroupVersion.V1:
        assert {int(t) for t in (group.cpu_dir / "tasks").read_text().split()} == tids
    assert [g.domid for g in host.domain_groups()] == [5]

    group.set_weight(512)
    group.set_cap(25)
    if layout.cpu_version is CgroupVersion.V1:
        assert (group.cpu_dir / "cpu.shares").read_text() == "2048\n"
        assert (group.cpu_dir / "cpu.cfs_period_us").read_text() == "100000\n"
        assert (group.cpu_dir / "cpu.cfs_quota_us").read_text() == "25000\n"
    else:
        assert (group.cpu_dir / "cpu.weight").read_text() == "200\n"
        assert (group.cpu_dir / "cpu.max").read_text() == "25000 100000\n"
    assert (group.weight(), group.cap()) == (512, 25)
    group.set_cap(0)
    assert group.cap() == 0

    if layout.cpuset_mount is not None:
        all_cpus = os.sched_getaffinity(pid)
        group.set_cpus({0})
        assert group.cpuset_dir is not None
        assert (group.cpuset_dir / "cpuset.cpus").read_text() == "0\n"
        assert group.cpus() == {0}
        assert [os.sched_getaffinity(tid) for tid in tids] == [{0}] * len(tids)

    group.remove()
    assert not group.cpu_dir.exists()
    assert group.cpuset_dir is None or not group.cpuset_dir.exists()
    for tid in tids:
        assert _cgroup_of(tid, layout, "cpu") == "/"
    if layout.cpuset_mount is not None:
        # Back in the root cpuset, the threads may run anywhere again.
        assert {tid: os.sched_getaffinity(tid) for tid in tids} == dict.fromkeys(tids, all_cpus)
    assert threaded.poll() is None  # removal moved the process; it did not stop it
    group.remove()  # idempotent
    assert host.domain_groups() == []


def test_remove_all_clears_groups_left_behind(
    host: CgroupHost, threaded: subprocess.Popen[bytes]
) -> None:
    # As after a daemon crash: groups exist, one still holds a process; a new host object
    # finds them and takes everything away.
    host.create_domain(7).add_process(threaded.pid)
    host.create_domain(8)
    again = CgroupHost(host.layout, parent=host.parent)
    assert [g.domid for g in again.domain_groups()] == [7, 8]
    again.remove_all()
    assert again.domain_groups() == []
    assert _cgroup_of(threaded.pid, host.layout, "cpu") == "/"


def test_a_process_that_is_gone_is_a_host_error_from_the_kernel(host: CgroupHost) -> None:
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    group = host.create_domain(9)
    with pytest.raises(HostError) as info:
        group.add_process(gone.pid)
    assert str(info.value) == f"{group.cpu_dir / 'cgroup.procs'}: No such process"
    assert f"process {gone.pid}" in str(info.value.fix)
    assert group.pids() == []


def test_cpus_this_machine_lacks_are_refused_before_the_kernel_sees_them(
    host: CgroupHost,
) -> None:
    if host.layout.cpuset_mount is None:
        pytest.skip("no cpuset controller on this machine")
    group = host.create_domain(9)
    before = group.cpus()
    missing = max(before) + 1
    with pytest.raises(DomainError) as info:
        group.set_cpus({0, missing})
    assert f"not available to xenlite's cgroup: {missing}" in str(info.value)
    assert group.cpus() == before
