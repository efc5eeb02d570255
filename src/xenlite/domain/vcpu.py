"""vCPUs on host threads: affinity at create and ``xl vcpu-pin``, the rows of ``xl vcpu-list``.

xl.cfg(5) "cpus", "cpus_soft"; xl.1 "vcpu-list", "vcpu-pin". Each vCPU of a QEMU domain runs
on its own host thread (QMP ``query-cpus-fast`` names it; TCG with ``thread=multi`` and KVM
alike), so Xen's hard affinity is the thread's CPU affinity (sched_setaffinity), and the CPU,
state and time of ``xl vcpu-list`` are the thread's own (/proc). Linux has no *soft*
affinity: a soft affinity is kept and shown, and the hypervisor log says that it does not
steer the thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from xenlite.base.errors import HostError
from xenlite.qemu.monitor import Monitor, VcpuThread
from xenlite.qemu.process import thread_stat


@dataclass(frozen=True, slots=True)
class VcpuInfo:
    """One row of ``xl vcpu-list`` (libxl_vcpuinfo)."""

    vcpuid: int
    online: bool
    cpu: int
    running: bool
    blocked: bool
    time_ns: int
    hard: frozenset[int]
    soft: frozenset[int]


def affinity_of(
    affinities: Sequence[frozenset[int]], vcpu: int, all_cpus: frozenset[int]
) -> frozenset[int]:
    """The affinity a config gives ``vcpu``: its entry, or every CPU when it has none (libxl
    leaves vCPUs beyond the list unpinned)."""
    if vcpu < len(affinities) and affinities[vcpu]:
        return affinities[vcpu]
    return all_cpus


def pin_thread(tid: int, cpus: frozenset[int], what: str) -> None:
    """:raise HostError: when the kernel refuses the affinity"""
    try:
        os.sched_setaffinity(tid, cpus)
    except OSError as exc:
        raise HostError(
            what,
            f"cannot set the CPU affinity of thread {tid} to {sorted(cpus)}: {exc.strerror}",
            "check that those CPUs are online and allowed to xenlited (its cpuset)",
        ) from exc


async def vcpu_threads(monitor: Monitor) -> list[VcpuThread]:
    """The domain's present vCPUs and their threads, by vCPU index."""
    return sorted(await monitor.query_cpus_fast(), key=lambda t: t.cpu_index)


def apply_affinity(
    threads: Sequence[VcpuThread], hard: Sequence[frozenset[int]], all_cpus: frozenset[int],
    what: str,
) -> None:  # fmt: skip
    """Give every vCPU thread its hard affinity.

    :raise HostError: when the threads are shared (one thread runs several vCPUs) and the
        vCPUs are asked for different CPUs, or when the kernel refuses
    """
    by_thread: dict[int, set[frozenset[int]]] = {}
    for thread in threads:
        by_thread.setdefault(thread.thread_id, set()).add(
            affinity_of(hard, thread.cpu_index, all_cpus)
        )
    for tid, wanted in by_thread.items():
        if len(wanted) > 1:
            raise HostError(
                what,
                f"vCPUs asked for different CPUs share one QEMU thread ({tid})",
                "give every vCPU the same cpus=, or run QEMU with one thread per vCPU",
            )
        pin_thread(tid, next(iter(wanted)), what)


def vcpu_rows(
    pid: int,
    threads: Sequence[VcpuThread],
    max_vcpus: int,
    soft: Sequence[frozenset[int]],
    all_cpus: frozenset[int],
    *,
    paused: bool,
) -> list[VcpuInfo]:
    """``xl vcpu-list`` rows: present vCPUs from their threads, the others offline."""
    by_index = {t.cpu_index: t for t in threads}
    rows = []
    for vcpu in range(max_vcpus):
        thread = by_index.get(vcpu)
        stat = thread_stat(pid, thread.thread_id) if thread is not None else None
        if thread is None or stat is None:
            rows.append(VcpuInfo(vcpu, False, 0, False, False, 0, all_cpus,
                                 affinity_of(soft, vcpu, all_cpus)))  # fmt: skip
            continue
        state, cpu, time_ns = stat
        try:
            hard = frozenset(os.sched_getaffinity(thread.thread_id))
        except OSError:
            hard = all_cpus
        running = state == "R" and not paused
        rows.append(
            VcpuInfo(
                vcpu,
                True,
                cpu,
                running,
                not running and not paused,
                time_ns,
                hard,
                affinity_of(soft, vcpu, all_cpus),
            )
        )
    return rows
