"""Xen's credit scheduler on Linux: one cgroup per domain, on cgroup v1 and v2 hosts.

Implements xl.1 "sched-credit" / "sched-credit2" (weight, cap) and xl.cfg(5) "cpus=" /
cpupools for the one QEMU process (and all its threads) that runs a domain. Each domain gets
a group ``dom<domid>`` under xenlite's parent group (default ``xenlite``): e.g.
``/sys/fs/cgroup/cpu/xenlite/dom5`` and ``/sys/fs/cgroup/cpuset/xenlite/dom5`` on a v1 host,
``/sys/fs/cgroup/xenlite/dom5`` on a v2 host. The controllers are found in mountinfo: the cpu
controller is required, cpuset is used for ``cpus`` when present.

Mapping (proportional; Xen's default lands on the kernel's default):

================  =====================================  ==================================
Xen               cgroup v1                              cgroup v2
================  =====================================  ==================================
weight 1..65535   cpu.shares = weight * 4, clamped to    cpu.weight = round(weight * 100 /
(default 256)     [2, 262144]; 256 -> 1024               256), clamped to [1, 10000]; 256->100
cap % of 1 CPU    cpu.cfs_period_us = 100000,            cpu.max = "<cap * 1000> 100000",
(0 = no cap)      cpu.cfs_quota_us = cap * 1000 or -1    or "max 100000"
cpus              cpuset.cpus (+ cpuset.mems inherited)  cpuset.cpus
================  =====================================  ==================================

Reading back converts with the inverse. v1 holds every Xen weight exactly. v2 holds weights in
steps of 2.56 (``weight()`` returns the nearest Xen weight the kernel's value stands for, e.g.
257 reads back as 256) and saturates at 25600 (cpu.weight 10000); a saturated weight is logged
as a warning. The exact weight the user asked for belongs in the domain's record, as Xen's
toolstack keeps it; nothing of xenlite's own is stored in cgroupfs (it holds no plain files).

Blocking file I/O: call it through ``asyncio.to_thread`` from coroutines.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from xenlite.base.errors import DomainError, HostError, Unsupported
from xenlite.host.facts import parse_kernel_cpulist

log = logging.getLogger("xenlite.host")

XEN_WEIGHT_MIN, XEN_WEIGHT_MAX, XEN_WEIGHT_DEFAULT = 1, 65535, 256  # xl.1 "sched-credit"
XEN_CAP_MAX = 65535  # public/domctl.h: xen_domctl_sched_credit.cap is a uint16_t
V1_SHARES_MIN, V1_SHARES_MAX, V1_SHARES_DEFAULT = 2, 262144, 1024  # kernel/sched/sched.h
V2_WEIGHT_MIN, V2_WEIGHT_MAX, V2_WEIGHT_DEFAULT = 1, 10000, 100  # linux/cgroup.h CGROUP_WEIGHT_*
CFS_PERIOD_US = 100000  # the kernel's default CFS period, 100 ms
DOMID_FIRST_RESERVED = 0x7FF0  # public/xen.h
PARENT_DEFAULT = "xenlite"

# A task that just exited can keep a v2 group busy for a moment after it left cgroup.procs,
# and a process can spawn a thread into the group while we move it out; retry briefly.
_ATTEMPTS = 50
_RETRY_DELAY = 0.02
_DOMAIN_DIR = re.compile(r"dom(0|[1-9][0-9]{0,4})")  # exactly the names domain() gives
_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")
_FIX_ROOT = "run xenlited as root on a host whose cgroup controllers are writable"
_FIX_GONE = "create the domain's cgroup first (is the domain still running?)"


class CgroupVersion(StrEnum):
    """Which cgroup interface a controller is mounted with."""

    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where the cpu and cpuset controllers are mounted; cpuset may be absent."""

    cpu_version: CgroupVersion
    cpu_mount: Path
    cpuset_version: CgroupVersion | None = None
    cpuset_mount: Path | None = None

    def hierarchies(self) -> list[tuple[CgroupVersion, Path, frozenset[str]]]:
        """Each distinct mount with the controllers xenlite uses on it (one on a v2 host)."""
        if self.cpuset_mount is None or self.cpuset_version is None:
            return [(self.cpu_version, self.cpu_mount, frozenset({"cpu"}))]
        if self.cpuset_mount == self.cpu_mount:
            return [(self.cpu_version, self.cpu_mount, frozenset({"cpu", "cpuset"}))]
        return [
            (self.cpu_version, self.cpu_mount, frozenset({"cpu"})),
            (self.cpuset_version, self.cpuset_mount, frozenset({"cpuset"})),
        ]


def detect_layout(mountinfo_path: str | os.PathLike[str] = "/proc/self/mountinfo") -> CgroupLayout:
    """Find the hierarchies holding the cpu and cpuset controllers, v1 or v2.

    A cgroup2 mount counts for a controller only if its ``cgroup.controllers`` lists it.

    :raise Unsupported: when no hierarchy has the cpu controller
    :raise HostError: when the mount table cannot be read
    """
    text = _read(Path(mountinfo_path), "mount /proc (mount -t proc proc /proc)")
    found: dict[str, tuple[CgroupVersion, Path]] = {}
    v2_seen: list[str] = []
    # A hierarchy can be mounted more than once (a container's view is a subtree of it):
    # prefer the mount of its root, whose groups every process on the host can join.
    lines = sorted(text.splitlines(), key=lambda line: line.split(" ")[3:4] != ["/"])
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(" "), right.split(" ")
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mount = Path(_MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4]))
        if tail[0] == "cgroup":
            version, controllers = CgroupVersion.V1, set(tail[2].split(","))
        elif tail[0] == "cgroup2":
            version = CgroupVersion.V2
            try:
                controllers = set((mount / "cgroup.controllers").read_text().split())
            except OSError:
                controllers = set()
            v2_seen.append(f"{mount} offers {' '.join(sorted(controllers)) or 'none'}")
        else:
            continue
        for name in ("cpu", "cpuset"):
            if name in controllers:
                found.setdefault(name, (version, mount))
    if "cpu" not in found:
        raise Unsupported(
            "the cpu cgroup controller",
            f"no cgroup v1 mount in {os.fspath(mountinfo_path)} has it and no cgroup2 mount "
            f"lists it in cgroup.controllers ({'; '.join(v2_seen) or 'no cgroup2 mounts'}); "
            "xenlite needs it for domain weights and caps",
            "mount it (mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu), or on a cgroup v2 "
            "host have the parent group enable it (echo +cpu > cgroup.subtree_control)",
        )
    cpu_version, cpu_mount = found["cpu"]
    cpuset = found.get("cpuset")
    return CgroupLayout(
        cpu_version, cpu_mount, cpuset[0] if cpuset else None, cpuset[1] if cpuset else None
    )


def parent_for_root(root: str | os.PathLike[str]) -> str:
    """xenlite's parent group for a host root: ``xenlite`` for ``/``, ``xenlite-<hash>`` for
    any other root, so hosts side by side on one machine never share a ``dom<N>`` group."""
    if os.fspath(root) == "/":
        return PARENT_DEFAULT
    return f"{PARENT_DEFAULT}-{hashlib.sha256(os.fsencode(root)).hexdigest()[:12]}"


def remove_root_groups(root: str | os.PathLike[str]) -> None:
    """Remove every group of host root ``root`` (its daemon gone, its QEMUs killed): for the
    tests' and benchmarks' cleanup. Nothing to do without a cpu controller.

    :raise HostError: when a group cannot be removed
    """
    try:
        layout = detect_layout()
    except Unsupported:
        return
    CgroupHost(layout, parent_for_root(root)).remove_all()


class CgroupHost:
    """xenlite's parent group on one host and the ``dom<domid>`` groups under it."""

    def __init__(self, layout: CgroupLayout, parent: str = PARENT_DEFAULT) -> None:
        if not parent or "/" in parent or parent in (".", ".."):
            raise ValueError(f"cgroup parent must be a single directory name, not {parent!r}")
        self.layout = layout
        self.parent = parent

    def domain(self, domid: int) -> DomainCgroup:
        """The group of ``domid``, whether it exists or not (nothing is created)."""
        if not 0 <= domid < DOMID_FIRST_RESERVED:
            raise ValueError(f"domid out of range: {domid}")
        lay, name = self.layout, f"dom{domid}"
        cpuset_dir = None if lay.cpuset_mount is None else lay.cpuset_mount / self.parent / name
        return DomainCgroup(domid, lay, lay.cpu_mount / self.parent / name, cpuset_dir)

    def create_domain(self, domid: int) -> DomainCgroup:
        """Create (or find) the domain's group in every hierarchy; idempotent.

        :raise Unsupported: when a cgroup v2 parent does not offer the controllers
        :raise HostError: when the kernel refuses a directory or a control file
        """
        group = self.domain(domid)
        for version, mount, controllers in self.layout.hierarchies():
            for path in (mount / self.parent, mount / self.parent / group.name):
                if version is CgroupVersion.V2:
                    # v2 offers a group only the controllers its parent enabled for children.
                    _enable_controllers(path.parent, controllers)
                _mkdir_group(path)
                if version is CgroupVersion.V1 and "cpuset" in controllers:
                    # A v1 cpuset with empty cpus/mems refuses tasks; start from the parent's.
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        if not _read(path / name, _FIX_ROOT).strip():
                            _write(path / name, _read(path.parent / name, _FIX_ROOT).strip())
        return group

    def domain_groups(self) -> list[DomainCgroup]:
        """Every ``dom<domid>`` group that exists, e.g. left behind by a crashed daemon."""
        domids: set[int] = set()
        for _, mount, _ in self.layout.hierarchies():
            try:
                entries = list((mount / self.parent).iterdir())
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _host_error(mount / self.parent, exc, _FIX_ROOT) from exc
            for entry in entries:
                match = _DOMAIN_DIR.fullmatch(entry.name)
                if match and int(match.group(1)) < DOMID_FIRST_RESERVED and entry.is_dir():
                    domids.add(int(match.group(1)))
        return [self.domain(domid) for domid in sorted(domids)]

    def remove_all(self) -> None:
        """Remove every domain group and the parent group; idempotent.

        :raise HostError: when a group cannot be emptied or removed
        """
        for group in self.domain_groups():
            group.remove()
        for version, mount, _ in self.layout.hierarchies():
            _remove_dir(version, mount, mount / self.parent)


@dataclass(frozen=True, slots=True)
class DomainCgroup:
    """One domain's group: its QEMU process and threads, its weight, cap and cpus."""

    domid: int
    layout: CgroupLayout
    cpu_dir: Path
    cpuset_dir: Path | None

    @property
    def name(self) -> str:
        return f"dom{self.domid}"

    def add_process(self, pid: int) -> None:
        """Move process ``pid`` and all its threads into the group.

        Writing the pid to cgroup.procs (v1 and v2) moves the whole thread group at once under
        the kernel's threadgroup lock, so a thread spawned meanwhile cannot be left behind, as
        it could by walking /proc/PID/task and writing each tid to ``tasks``.

        :raise HostError: when the process is gone or the kernel refuses the move
        """
        for _, _, path in self._groups():
            _write(path / "cgroup.procs", str(pid), f"check that process {pid} still exists")

    def pids(self) -> list[int]:
        """The processes in the group (thread group ids)."""
        return _read_ids(self.cpu_dir / "cgroup.procs")

    def set_weight(self, weight: int) -> None:
        """Set the credit weight (1..65535, default 256; see the module's mapping).

        :raise DomainError: when the weight is out of range (nothing is written)
        :raise HostError: when the kernel refuses it
        """
        if not XEN_WEIGHT_MIN <= weight <= XEN_WEIGHT_MAX:
            raise DomainError(
                f"domain {self.domid}: weight",
                f"{weight} is out of range",
                f"give a weight from {XEN_WEIGHT_MIN} to {XEN_WEIGHT_MAX} (default 256)",
            )
        if self.layout.cpu_version is CgroupVersion.V1:
            shares = weight * V1_SHARES_DEFAULT // XEN_WEIGHT_DEFAULT
            _write(self.cpu_dir / "cpu.shares", str(max(V1_SHARES_MIN, min(V1_SHARES_MAX, shares))))
            return
        cpu_weight = round(weight * V2_WEIGHT_DEFAULT / XEN_WEIGHT_DEFAULT)
        if cpu_weight > V2_WEIGHT_MAX:
            log.warning("domain %d: weight %d acts as 25600, cgroup v2's top", self.domid, weight)
        cpu_weight = max(V2_WEIGHT_MIN, min(V2_WEIGHT_MAX, cpu_weight))
        _write(self.cpu_dir / "cpu.weight", str(cpu_weight))

    def weight(self) -> int:
        """The weight the kernel holds, in Xen's units (nearest, on v2)."""
        if self.layout.cpu_version is CgroupVersion.V1:
            shares = int(_read(self.cpu_dir / "cpu.shares", _FIX_GONE))
            value = shares * XEN_WEIGHT_DEFAULT / V1_SHARES_DEFAULT
        else:
            cpu_weight = int(_read(self.cpu_dir / "cpu.weight", _FIX_GONE))
            value = cpu_weight * XEN_WEIGHT_DEFAULT / V2_WEIGHT_DEFAULT
        return max(XEN_WEIGHT_MIN, min(XEN_WEIGHT_MAX, round(value)))

    def set_cap(self, cap: int) -> None:
        """Cap the domain at ``cap`` percent of one CPU (0 = no cap).

        :raise DomainError: when the cap is out of range (nothing is written)
        :raise HostError: when the kernel refuses it
        """
        if not 0 <= cap <= XEN_CAP_MAX:
            raise DomainError(
                f"domain {self.domid}: cap",
                f"{cap} is out of range",
                f"give a cap from 0 (no cap) to {XEN_CAP_MAX} percent of one CPU",
            )
        quota = cap * CFS_PERIOD_US // 100
        if self.layout.cpu_version is CgroupVersion.V1:
            _write(self.cpu_dir / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(self.cpu_dir / "cpu.cfs_quota_us", str(quota) if cap else "-1")
        else:
            _write(self.cpu_dir / "cpu.max", f"{quota if cap else 'max'} {CFS_PERIOD_US}")

    def cap(self) -> int:
        """The cap the kernel holds, in percent of one CPU (0 = no cap)."""
        if self.layout.cpu_version is CgroupVersion.V1:
            quota = _read(self.cpu_dir / "cpu.cfs_quota_us", _FIX_GONE).strip()
            period = _read(self.cpu_dir / "cpu.cfs_period_us", _FIX_GONE).strip()
        else:
            quota, period = _read(self.cpu_dir / "cpu.max", _FIX_GONE).split()
        if quota in ("-1", "max"):
            return 0
        # A quota below 1% set by someone else is still a cap: never read it back as 0.
        return max(1, round(int(quota) * 100 / int(period)))

    def set_cpus(self, cpus: set[int]) -> None:
        """Confine the domain to ``cpus`` (xl.cfg(5) "cpus=", a cpupool's cpus).

        :raise DomainError: when the set is empty or names cpus the parent group lacks
        :raise Unsupported: when the host has no cpuset controller
        :raise HostError: when the kernel refuses it
        """
        path = self._cpuset_dir()
        available = parse_kernel_cpulist(_read(path.parent / self._available_file(), _FIX_GONE))
        if not cpus or not cpus <= available:
            missing = _format_cpu_list(cpus - available) if cpus else "none given"
            raise DomainError(
                f"domain {self.domid}: cpus",
                f"not available to xenlite's cgroup: {missing}",
                f"choose cpus from {_format_cpu_list(available)}",
            )
        _write(path / "cpuset.cpus", _format_cpu_list(cpus))

    def cpus(self) -> set[int]:
        """The cpus the domain may run on."""
        path = self._cpuset_dir()
        cpus = parse_kernel_cpulist(_read(path / "cpuset.cpus", _FIX_GONE))
        # An empty v2 cpuset.cpus means "whatever the parent has".
        return cpus or parse_kernel_cpulist(_read(path / self._available_file(), _FIX_GONE))

    def remove(self) -> None:
        """Move any remaining tasks back to the root group and remove the group; idempotent.

        :raise HostError: when tasks keep coming back or the kernel keeps refusing the rmdir
        """
        for version, mount, path in self._groups():
            _remove_dir(version, mount, path)

    def _groups(self) -> list[tuple[CgroupVersion, Path, Path]]:
        # The group's directory in each distinct hierarchy (one on a v2 host).
        dirs = {self.layout.cpu_mount: self.cpu_dir}
        if self.layout.cpuset_mount is not None and self.cpuset_dir is not None:
            dirs.setdefault(self.layout.cpuset_mount, self.cpuset_dir)
        return [(version, mount, dirs[mount]) for version, mount, _ in self.layout.hierarchies()]

    def _cpuset_dir(self) -> Path:
        if self.cpuset_dir is None:
            raise Unsupported(
                f"domain {self.domid}: cpus",
                "this host has no cpuset cgroup controller",
                "mount it (mount -t cgroup -o cpuset cgroup /sys/fs/cgroup/cpuset), or on a "
                "cgroup v2 host enable it (echo +cpuset > cgroup.subtree_control)",
            )
        return self.cpuset_dir

    def _available_file(self) -> str:
        # v2 may leave cpuset.cpus empty ("inherit"); what a group really has is in .effective.
        if self.layout.cpuset_version is CgroupVersion.V1:
            return "cpuset.cpus"
        return "cpuset.cpus.effective"


def _host_error(path: Path, exc: OSError, fix: str) -> HostError:
    return HostError(os.fspath(path), exc.strerror or str(exc), fix)


def _read(path: Path, fix: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise _host_error(path, exc, fix) from exc


def _write_once(path: Path, value: str) -> None:
    # One write() per value: the kernel parses each write on its own. No O_CREAT: a missing
    # control file means a controller is not enabled, which must not pass silently.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _write(path: Path, value: str, fix: str | None = None) -> None:
    try:
        _write_once(path, value)
    except OSError as exc:
        if fix is None and exc.errno == errno.EINVAL:
            fix = f"the kernel refused {value!r}; check the value against the parent group"
        raise _host_error(path, exc, fix or _FIX_ROOT) from exc


def _read_ids(path: Path) -> list[int]:
    try:
        return [int(word) for word in path.read_text().split()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _host_error(path, exc, _FIX_ROOT) from exc


def _enable_controllers(path: Path, controllers: frozenset[str]) -> None:
    available = set(_read(path / "cgroup.controllers", _FIX_ROOT).split())
    if unavailable := " ".join(sorted(controllers - available)):
        raise Unsupported(
            f"cgroup {os.fspath(path)}",
            f"its cgroup.controllers does not offer {unavailable}",
            f"enable {unavailable} in its parent's cgroup.subtree_control",
        )
    enabled = set(_read(path / "cgroup.subtree_control", _FIX_ROOT).split())
    if missing := sorted(controllers - enabled):
        _write(
            path / "cgroup.subtree_control",
            " ".join(f"+{name}" for name in missing),
            "move the processes out of this group first: cgroup v2 lets no group but the root "
            "hold processes and enable controllers for its children",
        )


def _mkdir_group(path: Path) -> None:
    # The kernel fills a new group with its control files; unit tests replace this function
    # with a fake kernel that does the same in a plain directory.
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise _host_error(path, exc, _FIX_ROOT) from exc


def _rmdir_group(path: Path) -> None:
    # rmdir of a group drops its control files with it; unit tests replace this function.
    os.rmdir(path)


def _remove_dir(version: CgroupVersion, root: Path, path: Path) -> None:
    # v1 lists a thread whose leader is in another group only in "tasks": sweep both there.
    files = ("cgroup.procs", "tasks") if version is CgroupVersion.V1 else ("cgroup.procs",)
    for _ in range(_ATTEMPTS):
        for name in files:
            for ident in _read_ids(path / name):
                try:
                    _write_once(root / name, str(ident))
                except ProcessLookupError:
                    pass  # the task exited on its own
                except OSError as exc:
                    raise _host_error(root / name, exc, _FIX_ROOT) from exc
        try:
            _rmdir_group(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise _host_error(path, exc, _FIX_ROOT) from exc
        time.sleep(_RETRY_DELAY)
    raise HostError(
        os.fspath(path),
        f"still busy after {_ATTEMPTS} attempts to move its tasks to {os.fspath(root)}",
        "find what keeps adding tasks or child groups to it (cat its cgroup.procs) and stop it",
    )


def _format_cpu_list(cpus: set[int]) -> str:
    # The kernel's list format, "0-3,6".
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{first}-{last}" if last > first else str(first) for first, last in runs)
