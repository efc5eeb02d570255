"""cpupools on real guests: a domain in a pool runs only on the pool's CPUs, its pool has its
own scheduler, and cpupool-migrate moves it while it runs.

xl.1 "CPUPOOLS COMMANDS", xlcpupool.cfg(5), xl.cfg(5) "pool". Where a domain runs is checked
where it takes effect: the CPU affinity of every thread of its QEMU (/proc), which the
domain's cpuset gives them; not in xenlite's books.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from xenlite.base.errors import XenliteError
from xenlite.host import facts
from xenlite.host.cgroups import detect_layout

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BOOT_TIMEOUT = 30.0
LIST_HEADER = "Name               CPUs   Sched     Active   Domain count"


def _needs_two_cpus_and_cpusets() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("cpupools need at least 2 host CPUs to split")
    try:
        layout = detect_layout()
    except XenliteError as exc:
        pytest.skip(f"no cgroup cpu controller on this machine: {exc}")
    if layout.cpuset_mount is None:
        pytest.skip("no cpuset cgroup controller on this machine")


def _qemu_pid(host: Any, domid: int) -> int:
    for pid in host.qemu_pids():
        if f"qemu-dm-{domid},".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError(f"no QEMU for domain {domid}")


def _where_threads_may_run(host: Any, domid: int) -> set[frozenset[int]]:
    """The distinct CPU affinities of every thread of the domain's QEMU."""
    pid = _qemu_pid(host, domid)
    return {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{pid}/task")}


def _ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_a_domain_runs_in_its_pool_and_moves_with_cpupool_migrate(
    live_host: Any, tmp_path: Path
) -> None:
    _needs_two_cpus_and_cpusets()
    host = live_host
    first, second = sorted(os.sched_getaffinity(0))[:2]
    everything = len(os.sched_getaffinity(0))
    try:
        assert _ok(host.xl("cpupool-list")).splitlines() == [
            LIST_HEADER,
            f"Pool-0             {everything:3d}   credit2       y          1",
        ]
        # Every CPU is in Pool-0: a new pool must wait for one to be freed, as in Xen.
        taken = host.xl("cpupool-create", 'name="cp"', f'cpus="{second}"')
        assert taken.returncode != 0
        assert f"cpu {second} illegal or not free (it is in cpupool Pool-0)" in taken.stderr
        _ok(host.xl("cpupool-cpu-remove", "Pool-0", str(second)))
        info = dict(line.split(":", 1) for line in _ok(host.xl("info")).splitlines())
        assert {k.strip(): v.strip() for k, v in info.items()}["free_cpus"] == "1"
        pool_cfg = tmp_path / "cp.cfg"
        pool_cfg.write_text(f'name = "cp"\nsched = "credit"\ncpus = ["{second}"]\n')
        assert _ok(host.xl("cpupool-create", str(pool_cfg))).splitlines() == [
            f'Using config file "{pool_cfg}"',
            "cpupool name:   cp",
            "scheduler:      credit",
            "number of cpus: 1",
        ]
        config = host.write_config("pooled", "vcpus = 2", 'pool = "cp"', "cpu_weight = 512")
        _ok(host.xl("create", "-q", str(config)))
        host.wait_ready("pooled", timeout=BOOT_TIMEOUT)
        domid = int(_ok(host.xl("domid", "pooled")))
        # QEMU and every thread of it (vCPUs, I/O) on the pool's CPU, nowhere else.
        assert _where_threads_may_run(host, domid) == {frozenset({second})}
        rest = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)) if c != second)
        assert _ok(host.xl("cpupool-list", "-c")).splitlines() == [
            "Name               CPU list",
            f"Pool-0             {rest}",
            f"cp                 {second}",
        ]
        listing = _ok(host.xl("cpupool-list", "cp")).splitlines()
        assert listing == [LIST_HEADER, "cp                   1    credit       y          1"]
        assert _ok(host.xl("list", "-c", "pooled")).splitlines()[1].endswith(f"{'cp':>16}")
        # The pool's own scheduler: credit here while Pool-0 stays credit2.
        credit = _ok(host.xl("sched-credit")).splitlines()
        assert credit[0] == "Cpupool cp: tslice=30ms ratelimit=1000us migration-delay=0us"
        assert credit[2].split() == ["pooled", str(domid), "512", "0"]
        assert len(credit) == 3
        credit2 = _ok(host.xl("sched-credit2")).splitlines()
        assert credit2[0] == "Cpupool Pool-0: ratelimit=1000us"
        assert [line.split()[0] for line in credit2[2:]] == ["Domain-0"]
        assert _ok(host.xl("sched-credit", "-p", "Pool-0")) == ""
        unknown = host.xl("sched-credit", "-p", "nosuch")
        assert (unknown.returncode, unknown.stderr.splitlines()[0]) == (
            1,
            "unknown cpupool 'nosuch'",
        )
        _ok(host.xl("sched-credit", "-d", "pooled", "-w", "768"))
        assert _ok(host.xl("sched-credit", "-d", "pooled")).splitlines()[1].split()[2] == "768"
        wrong = host.xl("sched-credit2", "-d", "pooled")
        assert wrong.returncode != 0
        assert "cpupool cp runs the credit scheduler" in wrong.stderr
        # A pool with a domain keeps its last CPU, and is not destroyed.
        last = host.xl("cpupool-cpu-remove", "cp", str(second))
        assert last.returncode == 1
        assert f"cpu {second}: it is the last CPU of cpupool cp" in last.stderr
        assert "Some cpus may have not or only partially been removed from 'cp'." in last.stderr
        busy = host.xl("cpupool-destroy", "cp")
        assert busy.returncode != 0
        assert "Can't destroy cpupool 'cp'" in busy.stderr
        # A restarted xenlited finds the pools and the domain where they were.
        host.stop_xenlited()
        host.start()
        assert _ok(host.xl("cpupool-list", "cp")).splitlines() == listing
        assert _where_threads_may_run(host, domid) == {frozenset({second})}
        _ok(host.xl("cpupool-rename", "cp", "cpx"))
        assert _ok(host.xl("list", "-c", "pooled")).splitlines()[1].endswith(f"{'cpx':>16}")
        # cpupool-migrate: the running domain onto Pool-0's CPUs.
        _ok(host.xl("cpupool-migrate", "pooled", "Pool-0"))
        assert _where_threads_may_run(host, domid) == {
            frozenset(os.sched_getaffinity(0)) - {second}
        }
        assert "Pool-0" in _ok(host.xl("list", "-c", "pooled")).splitlines()[1]
        assert _ok(host.xl("cpupool-list", "cpx")).splitlines()[1].endswith("   0")
        moved = host.xl("sched-credit2", "-d", "pooled")
        assert moved.stdout.splitlines()[1].split()[2] == "768", moved.stderr
        # The CPU is cpx's until cpx gives it up.
        held = host.xl("cpupool-cpu-add", "Pool-0", str(second))
        assert held.returncode == 1
        assert f"cpu {second}: it is in cpupool cpx" in held.stderr
        assert "some cpus may not have been added to Pool-0" in held.stderr
        _ok(host.xl("cpupool-destroy", "cpx"))
        _ok(host.xl("cpupool-cpu-add", "Pool-0", str(second)))
        assert _where_threads_may_run(host, domid) == {frozenset(os.sched_getaffinity(0))}
        assert first in os.sched_getaffinity(0)
    finally:
        host.xl("destroy", "pooled")
        for name in ("cp", "cpx"):
            host.xl("cpupool-destroy", name)
        host.xl("cpupool-cpu-add", "Pool-0", "all")


def test_what_cpupool_verbs_refuse_they_name(live_host: Any) -> None:
    _needs_two_cpus_and_cpusets()
    host = live_host
    try:
        missing = host.xl("cpupool-list", "nosuch")
        assert (missing.returncode, missing.stderr.splitlines()[0]) == (
            1,
            "Pool 'nosuch' does not exist",
        )
        dup = host.xl("cpupool-create", 'name="Pool-0"')
        assert dup.returncode != 0
        assert 'Pool name "Pool-0" already exists' in dup.stderr
        unknown = host.xl("cpupool-create", 'name="p"', 'sched="fair"')
        assert unknown.returncode != 0
        assert "Unknown scheduler" in unknown.stderr
        rtds = host.xl("cpupool-create", 'name="p"', 'sched="rtds"')
        assert rtds.returncode != 0
        assert "credit, credit2" in rtds.stderr
        beyond = host.xl("cpupool-cpu-add", "Pool-0", "4095")
        assert beyond.returncode != 0
        assert "CPU 4095 does not exist" in beyond.stderr
        # -n checks and prints, and makes nothing.
        dry = host.xl("cpupool-create", "-n", 'name="dry"')
        assert _ok(dry).splitlines()[1:] == [
            "cpupool name:   dry",
            "scheduler:      credit2",
            "number of cpus: 0",
        ]
        assert "dry" not in _ok(host.xl("cpupool-list"))
        # A pool without CPUs (xl's default) exists, but no domain can run in it.
        _ok(host.xl("cpupool-create", 'name="empty"'))
        assert "empty                0   credit2       y          0" in _ok(host.xl("cpupool-list"))
        refused = host.xl("create", str(host.write_config("nowhere", 'pool = "empty"')))
        assert refused.returncode != 0
        assert "cpupool empty has no CPUs" in refused.stderr
        assert "nowhere" not in _ok(host.xl("list"))
        dom0 = host.xl("cpupool-migrate", "Domain-0", "empty")
        assert dom0.returncode != 0
        assert "Domain-0 can't be moved to another cpu-pool" in dom0.stderr
        pool0 = host.xl("cpupool-destroy", "Pool-0")
        assert pool0.returncode != 0
        assert "Can't destroy cpupool 'Pool-0'" in pool0.stderr
        taken = host.xl("cpupool-rename", "empty", "Pool-0")
        assert taken.returncode != 0
        assert 'Pool name "Pool-0" already exists' in taken.stderr
    finally:
        host.xl("cpupool-destroy", "empty")


def test_numa_split_makes_one_pool_per_node(live_host: Any) -> None:
    _needs_two_cpus_and_cpusets()
    host = live_host
    nodes = facts.node_cpus(frozenset(os.sched_getaffinity(0)))
    try:
        _ok(host.xl("cpupool-numa-split"))
        listed = _ok(host.xl("cpupool-list", "-c")).splitlines()[1:]
        home = next(n for n, cpus in nodes.items() if min(os.sched_getaffinity(0)) in cpus)
        assert listed[0].split() == [f"Pool-node{home}", ",".join(map(str, sorted(nodes[home])))]
        assert len(listed) == len(nodes)
        # Only while Pool-0 is the one pool, as xl says.
        _ok(host.xl("cpupool-create", 'name="extra"'))
        again = host.xl("cpupool-numa-split")
        assert again.returncode != 0
        assert "splitting not possible, already cpupools in use" in again.stderr
    finally:
        host.xl("cpupool-destroy", "extra")
        for node in sorted(nodes)[1:]:
            host.xl("cpupool-destroy", f"Pool-node{node}")
        host.xl("cpupool-rename", "0", "Pool-0")
        host.xl("cpupool-cpu-add", "Pool-0", "all")
    assert _ok(host.xl("cpupool-list", "-c")).splitlines()[1].split()[0] == "Pool-0"


def test_a_pool_change_cut_short_is_finished_by_the_next_xenlited(live_host: Any) -> None:
    _needs_two_cpus_and_cpusets()
    host = live_host
    first, second = sorted(os.sched_getaffinity(0))[:2]
    try:
        _ok(host.xl("create", "-q", str(host.write_config("steady", "vcpus = 2"))))
        host.wait_ready("steady", timeout=BOOT_TIMEOUT)
        domid = int(_ok(host.xl("domid", "steady")))
        # Killed after the book says CPU `second` left Pool-0, before the cpuset followed.
        host.crash_during("cpupool:book-saved", "cpupool-cpu-remove", "Pool-0", str(second))
        rest = frozenset(os.sched_getaffinity(0)) - {second}
        assert _where_threads_may_run(host, domid) == {rest}
        _ok(host.xl("cpupool-create", 'name="side"', f'cpus="{second}"'))
        # Killed after the domain's config names its new pool, before its cpuset followed.
        host.crash_during("cpupool:config-kept", "cpupool-migrate", "steady", "side")
        assert _where_threads_may_run(host, domid) == {frozenset({second})}
        assert _ok(host.xl("list", "-c", "steady")).splitlines()[1].endswith(f"{'side':>16}")
        assert first in rest
    finally:
        host.xl("destroy", "steady")
        host.xl("cpupool-destroy", "side")
        host.xl("cpupool-cpu-add", "Pool-0", "all")
