"""The host's cpupools: which host CPUs each pool holds, its scheduler, and the CPUs no pool
holds (free), kept in one state file.

xl.1 "CPUPOOLS COMMANDS", xlcpupool.cfg(5). Xen keeps its pools in the hypervisor, and they
last until the host reboots; xenlite keeps them in ``/run/xenlite/cpupools.json`` under the
host root (a tmpfs on a real host, so they last as long), written atomically before any
cgroup follows, so a xenlited killed in the middle of a change finds the new book at start
and brings every domain's cpuset in line with it. Pool-0 (poolid 0) always exists: at first
it holds every host CPU; its scheduler is the host's (``sched=``).

This module is the book alone (pure rules and the file); ``domain.cpupools`` applies it to
the domains.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from xenlite.base.errors import DomainError, HostError
from xenlite.base.files import write_atomic
from xenlite.base.paths import under_root

POOL_FILE = "/run/xenlite/cpupools.json"
POOL0_NAME = "Pool-0"
BOOK_FORMAT = 1
# The schedulers a xenlite pool can run: both map weight and cap onto the domain's cgroup.
SCHEDULERS = ("credit", "credit2")
# libxl_scheduler names that Xen has and xenlite cannot run (their parameters are not weights).
XEN_ONLY_SCHEDULERS = ("sedf", "arinc653", "rtds", "null")


@dataclass(frozen=True, slots=True)
class Cpupool:
    """One pool (libxl_cpupoolinfo without its domain count)."""

    poolid: int
    name: str
    sched: str
    cpus: frozenset[int]


def check_scheduler_name(name: str) -> str:
    """The scheduler a pool config names, checked.

    :raise DomainError: "Unknown scheduler" as xl says it, for a name Xen does not have
    :raise HostError: for a Xen scheduler xenlite does not map
    """
    if name in SCHEDULERS:
        return name
    if name in XEN_ONLY_SCHEDULERS:
        raise HostError(
            f"scheduler '{name}'",
            "xenlite runs a pool's domains under Linux's CFS, which has weights and caps "
            "(credit, credit2) but not this scheduler's parameters",
            'give sched="credit" or sched="credit2"',
        )
    raise DomainError(
        f"scheduler '{name}'", "Unknown scheduler", 'give sched="credit" or sched="credit2"'
    )


def numa_split_plan(
    nodes: dict[int, frozenset[int]], first_cpu: int
) -> list[tuple[str, frozenset[int]]]:
    """``xl cpupool-numa-split``: one pool per NUMA node, named Pool-node<N>; the first is
    Pool-0 itself, renamed, keeping the node of ``first_cpu`` (the host's first CPU)."""
    home = next(n for n, cpus in nodes.items() if first_cpu in cpus)
    order = [home, *sorted(n for n in nodes if n != home)]
    return [(f"Pool-node{n}", nodes[n]) for n in order]


class PoolBook:
    """Every pool of one host, by poolid; changes are saved before they are returned."""

    def __init__(self, path: Path, pools: dict[int, Cpupool]) -> None:
        self.path = path
        self._pools = pools

    @classmethod
    def load(cls, root: Path | None, host_cpus: frozenset[int], scheduler: str) -> PoolBook:
        """The host's book: the saved one, or Pool-0 with every host CPU.

        CPUs the host no longer offers leave their pools; Pool-0 runs ``scheduler`` (the
        host's ``sched=``) whatever the file says.

        :raise HostError: when a saved book cannot be read
        """
        path = under_root(POOL_FILE, root)
        pool0 = Cpupool(0, POOL0_NAME, scheduler, host_cpus)
        if not path.exists():
            return cls(path, {0: pool0})
        try:
            obj = json.loads(path.read_text())
            pools = {
                int(p["poolid"]): Cpupool(
                    int(p["poolid"]),
                    str(p["name"]),
                    str(p["sched"]),
                    frozenset(int(c) for c in p["cpus"]) & host_cpus,
                )
                for p in obj["pools"]
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HostError(
                f"cpupool book {path}",
                f"cannot be read: {exc}",
                "move the file away: xenlited then starts with Pool-0 holding every CPU",
            ) from None
        pools[0] = replace(pools.get(0, pool0), sched=scheduler)
        return cls(path, pools)

    def save(self) -> None:
        """:raise HostError: when the file cannot be written"""
        obj = {
            "format": BOOK_FORMAT,
            "pools": [
                {"poolid": p.poolid, "name": p.name, "sched": p.sched, "cpus": sorted(p.cpus)}
                for p in self.pools()
            ],
        }
        write_atomic(self.path, json.dumps(obj, indent=1).encode(), 0o644)

    # ------------------------------------------------------------------ queries

    def pools(self) -> list[Cpupool]:
        """Every pool by poolid (Pool-0 first), as ``xl cpupool-list`` lists them."""
        return [self._pools[i] for i in sorted(self._pools)]

    def get(self, poolid: int) -> Cpupool | None:
        return self._pools.get(poolid)

    @property
    def pool0(self) -> Cpupool:
        """Pool-0, which always exists (Domain-0's pool; renamed by cpupool-numa-split)."""
        return self._pools[0]

    def find(self, qualifier: str) -> Cpupool | None:
        """A pool by id (all digits) or by name, as libxl_cpupool_qualifier_to_cpupoolid."""
        if qualifier.isdigit():
            return self._pools.get(int(qualifier))
        return next((p for p in self._pools.values() if p.name == qualifier), None)

    def owner(self, cpu: int) -> Cpupool | None:
        """The pool holding ``cpu``; None when it is free."""
        return next((p for p in self._pools.values() if cpu in p.cpus), None)

    def free_cpus(self, host_cpus: Iterable[int]) -> frozenset[int]:
        """The host CPUs no pool holds (``xl info`` free_cpus)."""
        taken = frozenset().union(*(p.cpus for p in self._pools.values()))
        return frozenset(host_cpus) - taken

    # ------------------------------------------------------------------ changes

    def create(self, name: str, sched: str, cpus: frozenset[int]) -> Cpupool:
        """A new pool of ``cpus`` (free ones, which the caller has checked), the next id.

        :raise DomainError: when a pool has the name already
        """
        self.check_new_name(name)
        poolid = max(self._pools) + 1
        pool = Cpupool(poolid, name, sched, cpus)
        return self._store(pool)

    def check_new_name(self, name: str) -> None:
        """:raise DomainError: when a pool has ``name`` already, or the name is unusable"""
        if not name or name.isdigit():
            raise DomainError(
                f"cpupool name '{name}'",
                "is empty or all digits, which xl would read as a pool id",
                'give a name with a letter in it, e.g. name="pool1"',
            )
        if self.find(name) is not None:
            raise DomainError(
                f"cpupool name '{name}'",
                f'Pool name "{name}" already exists',
                "choose another name (xl cpupool-list shows the pools)",
            )

    def destroy(self, poolid: int) -> None:
        """Forget a pool; its CPUs become free."""
        pool = self._pools.pop(poolid)
        try:
            self.save()
        except HostError:
            self._pools[poolid] = pool
            raise

    def rename(self, poolid: int, name: str) -> Cpupool:
        """:raise DomainError: when another pool has ``name``"""
        pool = self._pools[poolid]
        if name != pool.name:
            self.check_new_name(name)
        return self._store(replace(pool, name=name))

    def set_cpus(self, poolid: int, cpus: frozenset[int]) -> Cpupool:
        return self._store(replace(self._pools[poolid], cpus=cpus))

    def _store(self, pool: Cpupool) -> Cpupool:
        previous = self._pools.get(pool.poolid)
        self._pools[pool.poolid] = pool
        try:
            self.save()
        except HostError:
            if previous is None:
                del self._pools[pool.poolid]
            else:
                self._pools[pool.poolid] = previous
            raise
        return pool
