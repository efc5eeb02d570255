"""A domain's resources: memory (mem-set, mem-max), scheduling (cgroups, weight, cap) and
vCPUs (cpus=, vcpu-pin, vcpu-list, vcpu-set).

xl.1 "mem-set", "mem-max", "sched-credit", "sched-credit2", "vcpu-list", "vcpu-pin",
"vcpu-set";
xl.cfg(5) "cpu_weight", "cap", "cpus", "cpus_soft". A mixin of ``DomainManager``: the manager
brings the registry (``lookup``, ``_domains``), the record store and the hypervisor log.
"""

from __future__ import annotations

import asyncio
import json
import os
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import DomainError, QemuError, Unsupported
from xenlite.config.domain.build import effective_max_memkb
from xenlite.config.domain.libxl_json import domain_config_to_json
from xenlite.config.domain.model import BuildInfo, DomainConfig
from xenlite.domain import xspaths
from xenlite.domain.live import UNPLUG_TIMEOUT, Domain, EngineHost, live_monitor
from xenlite.domain.poolbook import Cpupool, PoolBook
from xenlite.domain.record import RecordStore
from xenlite.domain.state import DomainState, require
from xenlite.domain.vcpu import (
    VcpuInfo,
    affinity_of,
    apply_affinity,
    pin_other_threads,
    plan_vcpu_set,
    unplug_vcpu,
    vcpu_rows,
    vcpu_threads,
)
from xenlite.host.cgroups import XEN_WEIGHT_DEFAULT
from xenlite.qemu.accel import Accel
from xenlite.qemu.monitor import VcpuThread
from xenlite.xenstore.client import XenStoreClient


class DomainResources:
    """Memory, scheduling and vCPU operations on the manager's domains."""

    host: EngineHost
    xs: XenStoreClient
    store: RecordStore
    pools: PoolBook
    _domains: dict[int, Domain]
    _log_hypervisor: Callable[[str], None]

    @abstractmethod
    def lookup(self, dom: str) -> Domain:
        """The domain named ``dom`` (a name or a domid); the manager provides it."""

    # ------------------------------------------------------------------ memory

    async def mem_set(self, dom: str, target_kib: int) -> None:
        """xl mem-set: the balloon brings the guest to ``target_kib``; memory/target follows.

        Growing takes the difference from free memory (autoballooning dom0 as create does);
        shrinking gives it back to free memory.

        :raise DomainError: above the domain's maximum (maxmem)
        :raise InsufficientMemory: when the growth does not fit
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="set its memory")  # fmt: skip
            b_info = domain.config.b_info
            maximum = effective_max_memkb(b_info)
            if target_kib > maximum:
                raise DomainError(
                    f"memory target of domain '{domain.name}'",
                    f"{target_kib} KiB is above its maximum of {maximum} KiB (maxmem)",
                    f"ask for at most {maximum // 1024}m, or raise the maximum first "
                    "(xl mem-max, up to the size the domain was built with)",
                )
            monitor = live_monitor(domain)
            grow = target_kib - domain.alloc_kib
            if grow > 0:
                self.host.memory.claim(grow, f"growing domain '{domain.name}' by {grow} KiB")
            try:
                await monitor.balloon(target_kib * 1024)
            except QemuError:
                if grow > 0:
                    self.host.memory.release(grow)
                raise
            if grow < 0:
                self.host.memory.release(-grow)
            domain.alloc_kib = target_kib
            await self.xs.write(xspaths.memory_target_path(domain.domid), str(target_kib))
            await self._update_config(domain, replace(b_info, target_memkb=target_kib))

    async def mem_max(self, dom: str, max_kib: int) -> None:
        """xl mem-max: the domain's ceiling (memory/static-max).

        :raise Unsupported: above the size QEMU gave the guest at boot (no memory hotplug)
        :raise DomainError: below the current target (libxl's static-max >= dynamic-max)
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="set its maximum memory")  # fmt: skip
            built_kib = await live_monitor(domain).base_memory_bytes() // 1024
            if max_kib > built_kib:
                raise Unsupported(
                    f"maximum memory of domain '{domain.name}'",
                    f"{max_kib} KiB is more than the {built_kib} KiB its QEMU was built with, "
                    "and a xenlite domain has no memory hotplug to grow past that",
                    f"ask for at most {built_kib // 1024}m, or recreate the domain with a "
                    "larger maxmem= (then xl mem-set can grow it up to that)",
                )
            if max_kib < domain.alloc_kib:
                raise DomainError(
                    f"maximum memory of domain '{domain.name}'",
                    f"{max_kib} KiB is below its current target of {domain.alloc_kib} KiB "
                    "(the maximum must be at least the target)",
                    "lower the target first: xl mem-set DOMAIN SIZE",
                )
            await self.xs.write(xspaths.static_max_path(domain.domid), str(max_kib))
            b_info = domain.config.b_info
            await self._update_config(domain, replace(b_info, max_memkb=max_kib))

    async def _update_config(self, domain: Domain, b_info: BuildInfo) -> None:
        """Keep ``b_info`` in the domain's config and record (see _keep_config)."""
        await self._keep_config(domain, replace(domain.config, b_info=b_info))

    async def _keep_config(self, domain: Domain, config: DomainConfig) -> None:
        """Make ``config`` the domain's, in its record too, so a restart (on_reboot) and a
        daemon restart see it, as libxl keeps a domain's current settings."""
        domain.config = config
        domain.record = replace(
            domain.record, config_json=json.dumps(domain_config_to_json(domain.config))
        )
        await asyncio.to_thread(self.store.save, domain.record)

    # ------------------------------------------------------------------ scheduling

    def _join_cgroup(self, domain: Domain) -> None:
        """Put the domain's QEMU in its own cgroup with its weight and cap (credit/credit2).

        :raise Unsupported: when the config sets cpu_weight/cap and the host has no cpu
            controller to honour them
        """
        params = domain.config.b_info.sched_params
        cgroups = self.host.cgroups
        if cgroups is None:
            if params.weight != -1 or params.cap != -1:
                raise Unsupported(
                    f"cpu_weight/cap of domain '{domain.name}'",
                    f"this host cannot apply them: {self.host.cgroups_missing}",
                    "remove cpu_weight= and cap= from the config, or give xenlited a cpu "
                    "cgroup controller",
                )
            return
        assert domain.process is not None
        group = cgroups.create_domain(domain.domid)
        if cgroups.layout.cpuset_mount is not None:
            # The domain's cpupool: its QEMU, every thread of it, runs on the pool's CPUs.
            group.set_cpus(set(self.pool_cpus(domain)))
        group.add_process(domain.process.pid)
        group.set_weight(params.weight if params.weight != -1 else XEN_WEIGHT_DEFAULT)
        group.set_cap(params.cap if params.cap != -1 else 0)

    def _leave_cgroup(self, domid: int) -> None:
        if self.host.cgroups is not None:
            self.host.cgroups.domain(domid).remove()

    def sched_params(self, dom: str, scheduler: str) -> tuple[int, int]:
        """(weight, cap) of a domain under ``scheduler``, as its cgroup holds them.

        :raise DomainError: when the host runs another scheduler (xl's sched_domain_get)
        """
        domain = self.lookup(dom)
        self.check_scheduler(scheduler, domain)
        params = domain.config.b_info.sched_params
        weight = params.weight if params.weight != -1 else XEN_WEIGHT_DEFAULT
        return weight, params.cap if params.cap != -1 else 0

    async def set_sched_params(
        self, dom: str, scheduler: str, weight: int | None, cap: int | None
    ) -> None:
        """``xl sched-credit -d DOM -w W -c C``: onto the domain's cgroup, and into its config.

        :raise DomainError: for another scheduler or a value out of range (nothing changed)
        :raise Unsupported: when the host has no cpu cgroup controller
        """
        domain = self.lookup(dom)
        self.check_scheduler(scheduler, domain)
        cgroups = self.host.cgroups
        if cgroups is None:
            raise Unsupported(
                f"scheduling parameters of domain '{domain.name}'",
                f"this host cannot apply them: {self.host.cgroups_missing}",
                "give xenlited a cpu cgroup controller (cgroup v1 'cpu' or v2 'cpu')",
            )
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="set its scheduling parameters")  # fmt: skip
            group = cgroups.domain(domain.domid)
            params = domain.config.b_info.sched_params
            if weight is not None:
                await asyncio.to_thread(group.set_weight, weight)
                params = replace(params, weight=weight)
            if cap is not None:
                await asyncio.to_thread(group.set_cap, cap)
                params = replace(params, cap=cap)
            b_info = replace(domain.config.b_info, sched_params=params)
            await self._update_config(domain, b_info)

    def check_scheduler(self, scheduler: str, domain: Domain | None = None) -> None:
        """:raise DomainError: when the domain's pool (Pool-0 for none, where Domain-0 is)
        runs another scheduler than ``scheduler``"""
        pool = self.pool_of(domain)
        if scheduler != pool.sched:
            where = (
                "sched= on the Xen command line"
                if pool.poolid == 0
                else f"cpupool-create's sched= for {pool.name}"
            )
            raise DomainError(
                f"{scheduler} scheduling parameters",
                f"libxl_domain_sched_params_get returned {pool.sched} not {scheduler}",
                f"cpupool {pool.name} runs the {pool.sched} scheduler ({where}): use xl "
                f"sched-{pool.sched}",
            )

    # ------------------------------------------------------------------ cpupools

    def pool_of(self, domain: Domain | None) -> Cpupool:
        """The cpupool ``domain`` runs in; Pool-0 for None (Domain-0's pool)."""
        pool = self.pools.get(domain.config.c_info.poolid) if domain is not None else None
        return pool or self.pools.pool0

    def pool_cpus(self, domain: Domain) -> frozenset[int]:
        """The host CPUs of the domain's pool."""
        return self.pool_of(domain).cpus & self.all_cpus()

    def pool_members(self, pool: Cpupool) -> list[Domain]:
        """The pool's domUs by domid."""
        return [self._domains[domid] for domid in sorted(self._domains)
                if self.pool_of(self._domains[domid]).poolid == pool.poolid]  # fmt: skip

    # ------------------------------------------------------------------ vCPUs

    def all_cpus(self) -> frozenset[int]:
        """The host CPUs domains may run on (xenlited's own affinity)."""
        return frozenset(os.sched_getaffinity(0))

    def default_cpus(self, domain: Domain) -> frozenset[int]:
        """Where a vCPU without an affinity of its own runs: every CPU of its cpupool but
        those kept for dom0 (dom0_vcpus_pin), unless dom0 holds them all."""
        everything = self.pool_cpus(domain)
        left = everything - frozenset(self.host.dom0_cpus)
        return left or everything

    async def _place_vcpus(self, domain: Domain) -> None:
        """cpus= (hard affinity) onto the vCPU threads; cpus_soft= is only recorded."""
        b_info = domain.config.b_info
        await self._apply_hard_affinity(domain, await vcpu_threads(live_monitor(domain)))
        if any(b_info.vcpu_soft_affinity):
            self._log_hypervisor(
                f"Domain {domain.domid} ({domain.name}): soft affinity recorded; Linux has no "
                "soft affinity, so it does not steer the vCPU threads"
            )

    async def _apply_hard_affinity(
        self, domain: Domain, threads: Sequence[VcpuThread], *, strict: bool = True
    ) -> None:
        """Each vCPU thread on its hard affinity within the domain's cpupool.

        :raise DomainError: when ``strict`` and an affinity names no CPU of the pool (Xen's
            EINVAL); otherwise (the pool changed under the domain) such a vCPU runs on the
            pool's CPUs, as Xen breaks the affinity, and the hypervisor log says so
        """
        what = f"vCPU affinity of domain '{domain.name}'"
        pool, cpus = self.pool_of(domain), self.pool_cpus(domain)
        hard = []
        for vcpu, wanted in enumerate(domain.config.b_info.vcpu_hard_affinity):
            if wanted and not wanted & cpus:
                if strict:
                    raise DomainError(
                        what,
                        f"vCPU {vcpu}'s CPUs {sorted(wanted)} are none of cpupool "
                        f"{pool.name}'s CPUs {sorted(cpus)}",
                        f"give cpus= among {sorted(cpus)}, or put the domain in the pool that "
                        "has those CPUs (pool=)",
                    )
                self._log_hypervisor(
                    f"Domain {domain.domid} ({domain.name}): breaking affinity of vCPU {vcpu}: "
                    f"cpupool {pool.name} no longer has CPUs {sorted(wanted)}"
                )
            hard.append(wanted & cpus)
        default = self.default_cpus(domain)
        await asyncio.to_thread(apply_affinity, threads, hard, default, what)
        if domain.process is not None:
            # QEMU's own threads take the default too: off the CPUs kept for dom0. (The
            # cpuset holds the whole pool, since cpus= may name dom0's CPUs, as in Xen.)
            await asyncio.to_thread(pin_other_threads, domain.process.pid, threads, default, what)

    async def vcpu_list(self, dom: str) -> list[VcpuInfo]:
        """``xl vcpu-list``: each vCPU's thread, CPU, state, time and affinity."""
        domain = self.lookup(dom)
        b_info = domain.config.b_info
        max_vcpus = b_info.max_vcpus or 1
        everything = self.default_cpus(domain)
        live = domain.process is not None and domain.monitor is not None
        if not live or domain.state not in (DomainState.RUNNING, DomainState.PAUSED):
            soft = b_info.vcpu_soft_affinity
            return vcpu_rows(0, [], max_vcpus, soft, everything, paused=True)
        threads = await vcpu_threads(live_monitor(domain))
        assert domain.process is not None
        return vcpu_rows(domain.process.pid, threads, max_vcpus, b_info.vcpu_soft_affinity,
                         everything, paused=domain.state is DomainState.PAUSED)  # fmt: skip

    async def vcpu_set(self, dom: str, count: int) -> int:
        """``xl vcpu-set``: vCPUs 0..count-1 present, by QEMU's CPU hot-plug (ACPI), the
        highest removed first; the guest onlines a new vCPU itself (the guest kit and
        create-image's systems do) and must give up one being removed. Returns how many
        vCPUs the domain has after it; below 1 nothing is done, as xl.1 says.

        :raise DomainError: above maxvcpus, or when the guest keeps a vCPU being removed
        :raise Unsupported: for a domain without ACPI, whose guest cannot learn of a change;
            under TCG, for an addition to a QEMU that had a vCPU unplugged (QEMU 7.2 then
            corrupts its heap)
        """
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="set its vCPUs")  # fmt: skip
            b_info = domain.config.b_info
            maximum = b_info.max_vcpus or 1
            monitor = live_monitor(domain)
            if count < 1:
                return len(await vcpu_threads(monitor))
            if count > maximum:
                raise DomainError(
                    f"vCPUs of domain '{domain.name}'",
                    f"Requested {count} VCPUs, however maxcpus is {maximum}! (QEMU fixes the "
                    "most vCPUs a guest can have when it starts)",
                    f"set maxvcpus = {count} in its config and create it again",
                )
            if b_info.acpi is False:
                raise Unsupported(
                    f"vCPUs of domain '{domain.name}'",
                    "it runs without ACPI (acpi = 0), and a guest learns of a plugged or "
                    "unplugged vCPU only by ACPI",
                    "remove acpi = 0 from its config and create it again",
                )
            change = plan_vcpu_set(await monitor.query_hotpluggable_cpus(), count)
            tcg = self.host.accel is Accel.TCG
            if change.add and tcg and domain.record.vcpu_unplugged:
                raise Unsupported(
                    f"adding vCPUs to domain '{domain.name}'",
                    "under TCG (no KVM on this host) QEMU corrupts its heap when it plugs a "
                    "vCPU after one was unplugged (seen with QEMU 7.2: 'double free or "
                    "corruption'), and the guest would die; this domain's QEMU had one "
                    "unplugged",
                    f"reboot the domain (xl reboot {domain.name}): its new QEMU starts with "
                    "the vCPUs it has now and takes more again; on a host where KVM works "
                    "vcpu-set adds and removes freely",
                )
            if change.remove and not domain.record.vcpu_unplugged:
                # Before the first device_del: a kill -9 after it must not lose the fact.
                domain.record = replace(domain.record, vcpu_unplugged=True)
                await asyncio.to_thread(self.store.save, domain.record)
            try:
                for device in change.add:
                    await monitor.execute("device_add", device)
                if change.add:
                    crash_point("vcpu-set:plugged")
                for vcpu, path in change.remove:
                    if not await unplug_vcpu(monitor, path, timeout=UNPLUG_TIMEOUT):
                        paused = (
                            " (the domain is paused)" if domain.state is DomainState.PAUSED else ""
                        )
                        raise DomainError(
                            f"vCPU {vcpu} of domain '{domain.name}'",
                            f"the guest did not release it within {UNPLUG_TIMEOUT:g} s{paused}",
                            "the guest must take it offline and let ACPI eject it (Linux does "
                            "unless a task is bound to that CPU); the request stays with the "
                            "guest, and xl vcpu-list shows the vCPU until it lets go",
                        )
            finally:
                present = await self._vcpus_changed(domain)
        return present

    async def _settle_vcpus(self, domain: Domain) -> None:
        """On takeover: the vCPU threads placed in the domain's pool as the book has it now
        (a pool may have changed while no xenlited ran, or mid-change), and QEMU's present
        vCPUs taken as the truth (a vcpu-set cut short by kill -9 leaves the config and
        XenStore behind them)."""
        b_info = domain.config.b_info
        threads = await vcpu_threads(live_monitor(domain))
        present = frozenset(t.cpu_index for t in threads)
        recorded = b_info.avail_vcpus or frozenset(range(b_info.max_vcpus or 1))
        if present == recorded:
            await self._apply_hard_affinity(domain, threads, strict=False)
            return
        self._log_hypervisor(
            f"Domain {domain.domid} ({domain.name}): QEMU has vCPUs {sorted(present)}, its "
            f"config said {sorted(recorded)} (a vcpu-set was cut short); QEMU's count kept"
        )
        await self._vcpus_changed(domain, threads)

    async def _vcpus_changed(
        self, domain: Domain, threads: Sequence[VcpuThread] | None = None
    ) -> int:
        """After a vcpu-set, whole or cut short: the new threads placed (cpus=, within the
        pool as it is now), XenStore's cpu/N/availability and the config's online vCPUs as
        QEMU has them now (``threads``, when the caller has just asked QEMU)."""
        if threads is None:
            threads = await vcpu_threads(live_monitor(domain))
        await self._apply_hard_affinity(domain, threads, strict=False)
        b_info = domain.config.b_info
        online = frozenset(t.cpu_index for t in threads)
        for node in xspaths.cpu_nodes(domain.domid, b_info.max_vcpus or 1, online):
            await self.xs.write(node.path, node.value)
        await self._update_config(domain, replace(b_info, avail_vcpus=online))
        return len(online)

    async def vcpu_pin(
        self,
        dom: str,
        vcpu: int | None,
        hard: frozenset[int] | None,
        soft: frozenset[int] | None,
    ) -> None:
        """``xl vcpu-pin``: the hard affinity of one vCPU (or all, ``vcpu`` None) onto its
        thread, kept in the config so that it survives a reboot of the domain as under Xen;
        ``None`` leaves an affinity as it is ("-")."""
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED,
                    doing="pin its vCPUs")  # fmt: skip
            b_info = domain.config.b_info
            max_vcpus = b_info.max_vcpus or 1
            if vcpu is not None and not 0 <= vcpu < max_vcpus:
                raise DomainError(
                    f"vCPU {vcpu} of domain '{domain.name}'",
                    f"does not exist (the domain has {max_vcpus} vCPUs, numbered from 0)",
                    f"name a vCPU between 0 and {max_vcpus - 1}, or all",
                )
            everything = self.pool_cpus(domain)
            default = self.default_cpus(domain)
            chosen = range(max_vcpus) if vcpu is None else (vcpu,)

            def updated(
                current: tuple[frozenset[int], ...], new: frozenset[int] | None
            ) -> tuple[frozenset[int], ...]:
                if new is None:
                    return current
                table = [affinity_of(current, v, default) for v in range(max_vcpus)]
                for v in chosen:
                    table[v] = new
                return tuple(table)

            hard_table = updated(b_info.vcpu_hard_affinity, hard)
            soft_table = updated(b_info.vcpu_soft_affinity, soft)
            if hard is not None:
                if not hard & everything:
                    pool = self.pool_of(domain)
                    raise DomainError(
                        f"hard affinity of domain '{domain.name}'",
                        f"names no CPU of its cpupool {pool.name} (its CPUs: {sorted(everything)})",
                        "name CPUs of the pool, e.g. all, or move the domain first "
                        "(xl cpupool-migrate)",
                    )
                threads = await vcpu_threads(live_monitor(domain))
                in_pool = [wanted & everything for wanted in hard_table]
                await asyncio.to_thread(apply_affinity, threads, in_pool, default,
                                        f"vCPU affinity of domain '{domain.name}'")  # fmt: skip
            new_b = replace(b_info, vcpu_hard_affinity=hard_table, vcpu_soft_affinity=soft_table)
            await self._update_config(domain, new_b)
            if soft is not None:
                self._log_hypervisor(
                    f"Domain {domain.domid} ({domain.name}): soft affinity recorded; Linux has "
                    "no soft affinity, so it does not steer the vCPU threads"
                )
