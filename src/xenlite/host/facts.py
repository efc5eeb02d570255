"""What the host is, as Xen's hypervisor would report it: memory, CPU topology and clock,
CPU time and boot time, read from /proc and /sys.

A file that Linux always has (/proc/meminfo, /proc/stat) and that cannot be read is an error
naming the file: without it the toolstack would report made-up numbers. A fact that some hosts
legitimately lack (no CPU topology in a container, no "cpu MHz" on some architectures) has the
value xl prints for an unknown one, and the log says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from xenlite.base.errors import HostError

log = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")
PROC_MEMINFO = Path("/proc/meminfo")
PROC_CPUINFO = Path("/proc/cpuinfo")
THREAD_SIBLINGS = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list")
NUMA_NODES = Path("/sys/devices/system/node")
_FIX = "xenlited needs /proc and /sys mounted, as on any Linux host"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise HostError(str(path), f"cannot be read: {exc.strerror or exc}", _FIX) from None


def memory_total_kib() -> int:
    """MemTotal of /proc/meminfo. :raise HostError: when it cannot be read or lacks it."""
    for line in _read(PROC_MEMINFO).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise HostError(str(PROC_MEMINFO), "has no MemTotal line", _FIX)


def nr_cpus() -> int:
    return os.cpu_count() or 1


def nr_nodes() -> int:
    """NUMA nodes; a host without /sys/devices/system/node has one."""
    return max(1, len(list(NUMA_NODES.glob("node[0-9]*"))))


def node_cpus(cpus: frozenset[int]) -> dict[int, frozenset[int]]:
    """Each NUMA node's CPUs among ``cpus`` (nodes without any left out); a host without
    /sys/devices/system/node has one node, 0, with all of them.

    :raise HostError: when a node's cpulist cannot be read
    """
    nodes: dict[int, frozenset[int]] = {}
    for entry in sorted(NUMA_NODES.glob("node[0-9]*")):
        found = parse_kernel_cpulist(_read(entry / "cpulist")) & cpus
        if found:
            nodes[int(entry.name[4:])] = frozenset(found)
    return nodes or {0: cpus}


def parse_kernel_cpulist(text: str) -> set[int]:
    """A CPU list in the kernel's format ("0-3,6", sysfs cpulist, cpuset.cpus)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def threads_per_core() -> int:
    """Hardware threads of CPU 0's core; 1 where the kernel shows no topology."""
    try:
        text = THREAD_SIBLINGS.read_text()
    except OSError as exc:
        log.info("no CPU topology (%s): threads_per_core is 1", exc.strerror or exc)
        return 1
    count = 0
    for part in text.strip().split(","):
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return max(1, count)


def cpu_mhz() -> float:
    """The first CPU's clock from /proc/cpuinfo; 0 (xl's unknown) where it gives none."""
    for line in _read(PROC_CPUINFO).splitlines():
        if line.startswith("cpu MHz"):
            try:
                return float(line.split(":", 1)[1])
            except ValueError:
                break
    log.info("%s gives no cpu MHz: cpu_mhz is 0", PROC_CPUINFO)
    return 0.0


def _stat_lines() -> list[str]:
    return _read(PROC_STAT).splitlines()


def boot_time() -> float:
    """When the host booted (``btime`` of /proc/stat). :raise HostError: without it."""
    for line in _stat_lines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise HostError(str(PROC_STAT), "has no btime line", _FIX)


def _tick_ns() -> int:
    return 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def cpu_time_ns() -> int:
    """CPU time the host spent outside idle (user + nice + system), as dom0's."""
    fields = _stat_lines()[0].split()
    return sum(int(v) for v in fields[1:4]) * _tick_ns()


def per_cpu_busy_ns() -> dict[int, int]:
    """Busy time (user, nice, system, irq, softirq, steal) of each CPU in /proc/stat."""
    busy: dict[int, int] = {}
    for line in _stat_lines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            v = [int(x) for x in values]
            busy[int(name[3:])] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * _tick_ns()
    return busy
