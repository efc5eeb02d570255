"""vCPUs on host threads: affinity at create and ``xl vcpu-pin``, the rows of ``xl vcpu-list``,
and the vCPUs ``xl vcpu-set`` plugs and unplugs.

xl.cfg(5) "cpus", "cpus_soft"; xl.1 "vcpu-list", "vcpu-pin". Each vCPU of a QEMU domain runs
on its own host thread (QMP ``query-cpus-fast`` names it; TCG with ``thread=multi`` and KVM
alike), so Xen's hard affinity is the thread's CPU affinity (sched_setaffinity), and the CPU,
state and time of ``xl vcpu-list`` are the thread's own (/proc). Linux has no *soft*
affinity: a soft affinity is kept and shown, and the hypervisor log says that it does not
steer the thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from xenlite.base.errors import HostError
from xenlite.qemu.monitor import CpuSlot, Monitor, VcpuThread
from xenlite.qemu.process import thread_stat

# QEMU numbers vCPUs (cpu-index) in the order of their place in the topology.
_TOPOLOGY = ("socket-id", "die-id", "cluster-id", "core-id", "thread-id")
# The device id of a vCPU that vcpu-set plugged; the boot vCPUs have only a QOM path.
PLUGGED_ID = "xenlite-vcpu{}"
_UNPLUG_POLL = 0.05  # seconds between looks at whether the guest let a vCPU go


@dataclass(frozen=True, slots=True)
class VcpuChange:
    """What ``xl vcpu-set`` asks of QEMU: ``device_add`` arguments, lowest vCPU first, and
    the QOM paths to ``device_del``, highest first (xl.1: "the highest number VCPUs will be
    hotplug removed")."""

    add: tuple[dict[str, object], ...]
    remove: tuple[tuple[int, str], ...]  # (vCPU, QOM path)


def plan_vcpu_set(slots: Sequence[CpuSlot], count: int) -> VcpuChange:
    """The devices to plug and unplug so that vCPUs 0..count-1 are there and no other."""

    def place(slot: CpuSlot) -> tuple[int, ...]:
        props = dict(slot.props)
        return tuple(props.get(key, 0) for key in _TOPOLOGY)

    ordered = sorted(slots, key=place)
    add = tuple(
        {"driver": slot.type, "id": PLUGGED_ID.format(vcpu), **dict(slot.props)}
        for vcpu, slot in enumerate(ordered[:count])
        if slot.qom_path is None
    )
    remove = tuple(
        (vcpu, slot.qom_path)
        for vcpu, slot in reversed(list(enumerate(ordered)))
        if vcpu >= count and slot.qom_path is not None
    )
    return VcpuChange(add, remove)


async def unplug_vcpu(monitor: Monitor, path: str, *, timeout: float) -> bool:
    """``device_del`` of the vCPU at QOM ``path``, and the wait for the guest to offline
    and eject it; False when it still has it after ``timeout`` seconds.

    The wait watches the slot itself (``query-hotpluggable-cpus``): QEMU 7.2 reports the
    ejection only as DEVICE_DELETED of the vCPU's lapic child, not of the vCPU.
    """
    await monitor.execute("device_del", {"id": path})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(slot.qom_path == path for slot in await monitor.query_hotpluggable_cpus()):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(_UNPLUG_POLL)
    return True


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


def pin_thread(tid: int, cpus: frozenset[int], what: str, *, gone_ok: bool = False) -> None:
    """:raise HostError: when the kernel refuses the affinity (or, unless ``gone_ok``, the
    thread has exited)"""
    try:
        os.sched_setaffinity(tid, cpus)
    except OSError as exc:
        if gone_ok and isinstance(exc, ProcessLookupError):
            return
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


def pin_other_threads(
    pid: int, threads: Sequence[VcpuThread], cpus: frozenset[int], what: str
) -> None:
    """QEMU's own threads (main loop, I/O, workers: every thread of ``pid`` that runs no
    vCPU) onto ``cpus``; the threads QEMU starts later inherit it from them. A thread that
    exits meanwhile is skipped.

    :raise HostError: when the kernel refuses the affinity
    """
    vcpu_tids = {t.thread_id for t in threads}
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return  # QEMU has exited: its supervisor says so
    for tid in tids:
        if tid not in vcpu_tids:
            pin_thread(tid, cpus, what, gone_ok=True)


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
