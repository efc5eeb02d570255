"""cpupools on the host: ``xl cpupool-*`` and ``pool=``, each pool a set of host CPUs that its
domains' cpusets hold, with its own scheduler.

xl.1 "CPUPOOLS COMMANDS", xlcpupool.cfg(5), xl.cfg(5) "pool". Xen's rules: a host CPU is in
at most one pool (or free); a domain is in exactly one pool, Domain-0 always in Pool-0; a pool
with domains keeps at least one CPU, and is destroyed only once empty of domains; moving a
domain resets its vCPUs' affinity to the new pool. Each domain's cpuset cgroup holds its
pool's CPUs, so its QEMU and every thread of it run there and nowhere else; weights compete
only among the domains on the same CPUs, which is what "scheduling does not cross cpu-pool
boundaries" means on Linux. A mixin of ``DomainManager`` (see domain/resources.py).

Why no cgroup per pool: pools hold disjoint CPUs, so a parent group per pool would change no
share, and on cgroup v1 it would make every CPU change an ordered walk (a parent's cpuset
must stay a superset of its children's, or the kernel answers EBUSY).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import DomainError, Unsupported
from xenlite.config.domain.model import DomainConfig
from xenlite.domain import xspaths
from xenlite.domain.live import Domain
from xenlite.domain.poolbook import Cpupool, check_scheduler_name, numa_split_plan
from xenlite.domain.resources import DomainResources
from xenlite.domain.state import DomainState
from xenlite.domain.vcpu import vcpu_threads
from xenlite.host.facts import node_cpus


@dataclass(frozen=True, slots=True)
class CpuRefusal:
    """A CPU that cpupool-cpu-add or -remove could not move, and why."""

    cpu: int
    why: str


class DomainPools(DomainResources):
    """The cpupool verbs over the manager's domains and its pool book."""

    _pool_lock: asyncio.Lock
    _creating_pools: dict[str, int]  # uuid of a domain being created -> its poolid

    # ------------------------------------------------------------------ queries

    def pool_domain_count(self, pool: Cpupool) -> int:
        """libxl_cpupoolinfo.n_dom: the pool's domains, Domain-0 counted in Pool-0."""
        members = len(self.pool_members(pool))
        creating = sum(1 for poolid in self._creating_pools.values() if poolid == pool.poolid)
        return members + creating + (1 if pool.poolid == 0 else 0)

    def find_pool(self, qualifier: str) -> Cpupool:
        """:raise DomainError: "unknown cpupool" as xl says it"""
        pool = self.pools.find(qualifier)
        if pool is None:
            raise DomainError(
                f"cpupool '{qualifier}'",
                f"unknown cpupool '{qualifier}'",
                "name a pool by its name or id (xl cpupool-list)",
            )
        return pool

    def free_cpus(self) -> frozenset[int]:
        return self.pools.free_cpus(self.all_cpus())

    def config_in_pool(self, cfg: DomainConfig) -> tuple[DomainConfig, Cpupool]:
        """``cfg`` with its pool= resolved to a pool of the book (by name, or by id when
        the qualifier is all digits; c_info.poolid when no name is given).

        :raise DomainError: "Illegal pool specified" as libxl says it, or for a pool without
            CPUs, where no vCPU could run
        """
        c_info = cfg.c_info
        qualifier = c_info.pool_name if c_info.pool_name is not None else str(c_info.poolid)
        pool = self.pools.find(qualifier)
        if pool is None:
            raise DomainError(
                f"pool={qualifier} of domain '{c_info.name}'",
                f"Illegal pool specified: {qualifier}",
                "create the pool first (xl cpupool-create), or name one of xl cpupool-list",
            )
        self._require_cpus(pool, f"pool={qualifier} of domain '{c_info.name}'")
        if pool.poolid == 0 and c_info.pool_name is None:
            return cfg, pool  # the default, left as the config had it
        return replace(cfg, c_info=replace(c_info, poolid=pool.poolid, pool_name=pool.name)), pool

    def _require_cpus(self, pool: Cpupool, what: str) -> None:
        """:raise DomainError: for a pool without CPUs, where no vCPU of a domain could run"""
        if not pool.cpus & self.all_cpus():
            raise DomainError(
                what,
                f"cpupool {pool.name} has no CPUs, so no vCPU of the domain could run",
                f"give the pool CPUs first: xl cpupool-cpu-add {pool.name} CPUS",
            )

    # ------------------------------------------------------------------ pools

    def _check_cpusets(self, doing: str) -> None:
        """:raise Unsupported: on a host where domains cannot be confined to CPUs"""
        cgroups = self.host.cgroups
        if cgroups is None or cgroups.layout.cpuset_mount is None:
            missing = self.host.cgroups_missing or "this host has no cpuset cgroup controller"
            raise Unsupported(
                doing,
                f"a cpupool is the CPUs its domains' cpusets hold, and {missing}",
                "mount the cpuset controller (mount -t cgroup -o cpuset cgroup "
                "/sys/fs/cgroup/cpuset), or on a cgroup v2 host enable +cpuset",
            )

    def _check_cpus(self, cpus: Iterable[int], doing: str) -> frozenset[int]:
        """:raise DomainError: for a CPU the host does not have"""
        wanted, host = frozenset(cpus), self.all_cpus()
        if missing := sorted(wanted - host):
            raise DomainError(
                doing,
                f"cpu {missing[0]} illegal or not free (this host has CPUs {sorted(host)})",
                "name CPUs of this host (xl info: nr_cpus)",
            )
        return wanted

    async def cpupool_create(
        self, name: str, sched: str | None, cpus: Iterable[int] | None, *, dryrun: bool = False
    ) -> Cpupool:
        """``xl cpupool-create``: a pool of free CPUs (none given: no CPU, as xl does).

        :raise DomainError: for a name taken, an unknown scheduler, a CPU not free
        :raise Unsupported: on a host without cpusets
        """
        async with self._pool_lock:
            chosen_sched = check_scheduler_name(sched) if sched else self.host.scheduler
            wanted = self._check_cpus(cpus or (), f"cpupool '{name}'")
            self.pools.check_new_name(name)
            for cpu in sorted(wanted):
                owner = self.pools.owner(cpu)
                if owner is not None:
                    raise DomainError(
                        f"cpupool '{name}'",
                        f"cpu {cpu} illegal or not free (it is in cpupool {owner.name})",
                        f"free it first: xl cpupool-cpu-remove {owner.name} {cpu}",
                    )
            if dryrun:
                return Cpupool(-1, name, chosen_sched, wanted)
            self._check_cpusets(f"xl cpupool-create {name}")
            pool = await asyncio.to_thread(self.pools.create, name, chosen_sched, wanted)
        self._log_hypervisor(
            f"Created cpupool {pool.poolid} ({pool.name}), scheduler {pool.sched}, "
            f"CPUs {sorted(pool.cpus) or 'none'}"
        )
        return pool

    async def cpupool_destroy(self, qualifier: str) -> None:
        """``xl cpupool-destroy``: only a pool without domains; its CPUs become free.

        :raise DomainError: for Pool-0 or a pool that has domains
        """
        async with self._pool_lock:
            pool = self.find_pool(qualifier)
            count = self.pool_domain_count(pool)
            if count:
                holds = "Domain-0" if pool.poolid == 0 else f"{count} domain(s)"
                raise DomainError(
                    f"cpupool '{pool.name}'",
                    f"Can't destroy cpupool '{pool.name}': it holds {holds}, and only a pool "
                    "without domains can be destroyed",
                    "move its domains away first (xl cpupool-migrate DOMAIN Pool-0)"
                    if pool.poolid
                    else "Pool-0 always holds Domain-0; it is never destroyed",
                )
            await asyncio.to_thread(self.pools.destroy, pool.poolid)
        self._log_hypervisor(f"Destroyed cpupool {pool.poolid} ({pool.name})")

    async def cpupool_rename(self, qualifier: str, new_name: str) -> None:
        """``xl cpupool-rename``; the domains' configs follow, so a reboot keeps the pool.

        :raise DomainError: when another pool has the name
        """
        async with self._pool_lock:
            pool = self.find_pool(qualifier)
            await self._follow_rename(
                await asyncio.to_thread(self.pools.rename, pool.poolid, new_name)
            )

    async def _follow_rename(self, pool: Cpupool) -> None:
        """The pool's domains' configs and /vm/UUID/pool_name take its new name."""
        for domain in self.pool_members(pool):
            if domain.config.c_info.pool_name is not None:
                c_info = replace(domain.config.c_info, pool_name=pool.name)
                await self._keep_config(domain, replace(domain.config, c_info=c_info))
            await self._write_pool_name(domain)

    async def cpupool_cpu_add(self, qualifier: str, cpus: Iterable[int]) -> list[CpuRefusal]:
        """``xl cpupool-cpu-add``: every free CPU of ``cpus`` joins the pool; the others are
        refused one by one (in another pool, or not on this host), as Xen does.

        :raise Unsupported: on a host without cpusets
        """
        async with self._pool_lock:
            pool = self.find_pool(qualifier)
            self._check_cpusets(f"xl cpupool-cpu-add {pool.name}")
            host, refused, added = self.all_cpus(), [], set()
            for cpu in sorted(frozenset(cpus)):
                owner = self.pools.owner(cpu)
                if cpu not in host:
                    refused.append(CpuRefusal(cpu, "this host has no such CPU"))
                elif owner is not None and owner.poolid != pool.poolid:
                    refused.append(CpuRefusal(cpu, f"it is in cpupool {owner.name}; remove "
                                                   "it from there first"))  # fmt: skip
                elif owner is None:
                    added.add(cpu)
            if added:
                pool = await asyncio.to_thread(self.pools.set_cpus, pool.poolid,
                                               pool.cpus | added)  # fmt: skip
                await self._pool_changed(pool)
        return refused

    async def cpupool_cpu_remove(self, qualifier: str, cpus: Iterable[int]) -> list[CpuRefusal]:
        """``xl cpupool-cpu-remove``: the pool's CPUs of ``cpus`` become free, but a pool
        with domains keeps its last CPU (Xen's EBUSY); the others are refused one by one.

        :raise Unsupported: on a host without cpusets
        """
        async with self._pool_lock:
            pool = self.find_pool(qualifier)
            self._check_cpusets(f"xl cpupool-cpu-remove {pool.name}")
            refused, left = [], set(pool.cpus)
            for cpu in sorted(frozenset(cpus)):
                if cpu not in pool.cpus:
                    refused.append(CpuRefusal(cpu, f"it is not in cpupool {pool.name}"))
                elif len(left) == 1 and self.pool_domain_count(pool):
                    refused.append(CpuRefusal(
                        cpu, f"it is the last CPU of cpupool {pool.name}, whose domains would "
                             "have none to run on (Device or resource busy)"))  # fmt: skip
                else:
                    left.discard(cpu)
            if left != pool.cpus:
                pool = await asyncio.to_thread(self.pools.set_cpus, pool.poolid, frozenset(left))
                await self._pool_changed(pool)
        return refused

    async def cpupool_migrate(self, dom: str, qualifier: str) -> None:
        """``xl cpupool-migrate``: the domain runs on the new pool's CPUs, its vCPUs'
        affinity reset (Xen resets it on a move); its config follows, so a reboot stays.

        :raise DomainError: for a pool without CPUs
        """
        domain = self.lookup(dom)
        async with self._pool_lock, domain.lock:
            pool = self.find_pool(qualifier)
            if self.pool_of(domain).poolid == pool.poolid:
                return
            self._require_cpus(pool, f"domain '{domain.name}'")
            b_info = replace(domain.config.b_info, vcpu_hard_affinity=(),
                             vcpu_soft_affinity=())  # fmt: skip
            c_info = replace(domain.config.c_info, poolid=pool.poolid, pool_name=pool.name)
            await self._keep_config(domain, replace(domain.config, c_info=c_info, b_info=b_info))
            crash_point("cpupool:config-kept")
            await self._confine(domain)
            await self._write_pool_name(domain)
        self._log_hypervisor(f"Domain {domain.domid} ({domain.name}) moved to cpupool "
                             f"{pool.poolid} ({pool.name})")  # fmt: skip

    async def cpupool_numa_split(self) -> list[Cpupool]:
        """``xl cpupool-numa-split``: one pool per NUMA node (Pool-node<N>), Pool-0 renamed
        for the node of the first CPU; only while Pool-0 is the one pool, as xl requires.
        Domains stay in pool 0 (on its node's CPUs). Returns the pools.

        :raise DomainError: when other pools exist
        :raise Unsupported: on a host without cpusets, when there is more than one node
        """
        async with self._pool_lock:
            if len(self.pools.pools()) > 1:
                raise DomainError(
                    "xl cpupool-numa-split",
                    "splitting not possible, already cpupools in use",
                    "destroy the other pools first (xl cpupool-destroy), giving their CPUs "
                    "back to Pool-0 (xl cpupool-cpu-add)",
                )
            host = self.all_cpus()
            plan = numa_split_plan(await asyncio.to_thread(node_cpus, host), min(host))
            if len(plan) > 1:
                self._check_cpusets("xl cpupool-numa-split")
            (name, home), others = plan[0], plan[1:]
            await asyncio.to_thread(self.pools.rename, 0, name)
            pool0 = await asyncio.to_thread(self.pools.set_cpus, 0, home)
            made = [pool0]
            for other, cpus in others:
                made.append(await asyncio.to_thread(self.pools.create, other, pool0.sched, cpus))
            await self._pool_changed(pool0)
            await self._follow_rename(pool0)
        self._log_hypervisor(
            "cpupool-numa-split: " + ", ".join(f"{p.name} CPUs {sorted(p.cpus)}" for p in made)
        )
        return made

    # ------------------------------------------------------------------ applying

    async def _pool_changed(self, pool: Cpupool) -> None:
        """Every domain of the pool onto its new CPUs (the book has them already)."""
        crash_point("cpupool:book-saved")
        for domain in self.pool_members(pool):
            async with domain.lock:
                await self._confine(domain)
        self._log_hypervisor(f"cpupool {pool.poolid} ({pool.name}) now has CPUs "
                             f"{sorted(pool.cpus) or 'none'}")  # fmt: skip

    async def _confine(self, domain: Domain) -> None:
        """The domain's cpuset onto its pool's CPUs, then its vCPU threads' affinity (a v1
        cpuset change resets every thread's affinity to the cpuset's CPUs)."""
        cgroups = self.host.cgroups
        if domain.process is None or cgroups is None or cgroups.layout.cpuset_mount is None:
            return
        group = cgroups.domain(domain.domid)
        await asyncio.to_thread(group.set_cpus, set(self.pool_cpus(domain)))
        if domain.state in (DomainState.RUNNING, DomainState.PAUSED) and domain.monitor:
            threads = await vcpu_threads(domain.monitor)
            await self._apply_hard_affinity(domain, threads, strict=False)

    async def _write_pool_name(self, domain: Domain) -> None:
        await self.xs.write(xspaths.vm_pool_name_path(domain.record.uuid),
                            self.pool_of(domain).name)  # fmt: skip
