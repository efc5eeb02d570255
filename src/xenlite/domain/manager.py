"""The live registry of domains: create, destroy, pause, unpause, rename, shutdown, the on_*
actions driven by QEMU's events, and the rebuild after a daemon restart.

Implements xl.1 "create", "destroy", "pause", "unpause", "rename", "shutdown", "reboot" and
xl.cfg(5) "Event Actions" (on_poweroff, on_reboot, on_watchdog, on_crash, on_soft_reset) as
libxl and xl 4.17 carry them out, on one detached QEMU per domain:

- Domain ids increase and are not reused while the host runs (Xen's allocator; the
  high-water mark is on disk so a daemon restart keeps counting), names are unique, the
  uuid comes from the config or is generated.
- Create pushes an undo per step on an AsyncExitStack (libxl's destruction callbacks):
  record, QEMU, QMP connection, XenStore nodes, INTRODUCE. A failure at any step runs the
  undos, so nothing is left behind, and QEMU's own message reaches the user.
- ``restart`` destroys the domain and builds it again from the same config: a NEW domid, as
  xl's ``domain_restart`` gives; ``rename-restart`` first keeps the old domain under
  ``NAME-YYYYmmddTHHMMZ`` with a new uuid (xl's ``preserve_domain``); ``preserve`` keeps it;
  ``coredump-*`` writes the guest's memory (QMP dump-guest-memory) to /var/lib/xen/dump first.
- Crash-only: state lives in XenStore, in the records and in the QEMU processes; ``rebuild``
  re-attaches every QEMU, finishes half-done creates and destroys, and applies the on_*
  action of a domain that shut down or whose QEMU died while no daemon was watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import (
    ConfigError,
    DomainError,
    DomainNotFound,
    QemuError,
    Unsupported,
    XenliteError,
    XenStoreConnectionError,
    XenStoreError,
)
from xenlite.base.paths import under_root
from xenlite.config.domain.build import effective_max_memkb, effective_target_memkb
from xenlite.config.domain.choices import Action
from xenlite.config.domain.libxl_json import domain_config_from_json, domain_config_to_json
from xenlite.config.domain.model import CreateInfo, DeviceDisk, DomainConfig, DomainType
from xenlite.config.settings import LATER_WORDS
from xenlite.domain import orphans, vifhost, xspaths
from xenlite.domain.bootloader import run_bootloader
from xenlite.domain.cpupools import DomainPools
from xenlite.domain.devices import DomainDevices
from xenlite.domain.disks import PreparedDisk, prepare_disks, qemu_disks, vbd_nodes
from xenlite.domain.live import Domain, EngineHost, live_monitor, qemu_devices
from xenlite.domain.networks import DomainNetworks
from xenlite.domain.nics import prepare_nics, vif_nodes
from xenlite.domain.poolbook import PoolBook
from xenlite.domain.record import DomainRecord, RecordStore
from xenlite.domain.state import (
    DomainState,
    action_for,
    reason_from_qmp,
    require,
    state_after,
)
from xenlite.qemu import hvm
from xenlite.qemu.argv import QemuHost, balloon_target_bytes, build_argv, check_supported
from xenlite.qemu.binary import find_qemu, probe_binary
from xenlite.qemu.monitor import Monitor, QmpEvent
from xenlite.qemu.process import QemuProcess, attach, cpu_time_ns, launch, vcpu_on_cpu
from xenlite.rpc.contract import DomainInfo, ShutdownReason
from xenlite.xenstore.client import PermList, Transaction, XenStoreClient

log = logging.getLogger(__name__)

DUMP_DIR = "/var/lib/xen/dump"
LAUNCH_TIMEOUT = 30.0
QMP_TIMEOUT = 10.0
QUIT_TIMEOUT = 5.0
DUMP_TIMEOUT = 300.0
FIRMWARE_RESET_TIMEOUT = 3.0
POWER_BUTTON_INTERVAL = 2.0  # seconds between presses while a shutdown request stands
POWER_BUTTON_REPEAT_FOR = 120.0
_LIST_FIX = "list the domains with: xl list"
ENDED_KEPT = 1024
# QEMU run states that a reset must clear before ``cont`` (qapi/run-state.json).
_NEEDS_RESET = frozenset({"shutdown", "guest-panicked", "internal-error"})


class DomainManager(DomainPools, DomainDevices, DomainNetworks):
    """Every domU of one host root. All methods run on the daemon's event loop."""

    def __init__(
        self,
        host: EngineHost,
        xs: XenStoreClient,
        *,
        store: RecordStore | None = None,
        hypervisor_log: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.xs = xs
        self.store = store or RecordStore(host.root)
        self._log_hypervisor = hypervisor_log or (lambda line: None)
        self._domains: dict[int, Domain] = {}
        self._creating_names: set[str] = set()
        self._creating_domids: set[int] = set()
        self._creating_uuids: set[str] = set()
        # The disks of domains being created, by uuid: (name, disks), for the in-use check;
        # the lock makes that check and the claim one step.
        self._creating_disks: dict[str, tuple[str, tuple[DeviceDisk, ...]]] = {}
        self._disk_lock = asyncio.Lock()
        # How recently destroyed domains ended (None: destroyed without a shutdown), for a
        # waiter that polls and would otherwise miss a shutdown its on_* action cut short.
        self._ended: OrderedDict[int, ShutdownReason | None] = OrderedDict()
        # Allocation reads and rewrites the high-water file in a worker thread: two creates
        # at once would otherwise both read N and both get domid N+1.
        self._allocating = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.pools = PoolBook.load(host.root, self.all_cpus(), host.scheduler)
        self._pool_lock = asyncio.Lock()
        self._creating_pools: dict[str, int] = {}

    # ------------------------------------------------------------------ queries

    def domains(self) -> list[Domain]:
        """The domUs by domid."""
        return [self._domains[d] for d in sorted(self._domains)]

    def lookup(self, dom: str) -> Domain:
        """Resolve ``dom`` as xl does: a decimal string is a domid, anything else a name.

        :raise DomainNotFound: when no domU matches
        :raise DomainError: for domain 0, which is the host itself
        """
        text = dom.strip()
        if text.isdigit():
            domid = int(text)
            if domid == 0:
                raise DomainError(
                    "domain 0 (Domain-0)",
                    "is the host itself; this operation applies to guest domains",
                    "name a guest domain (xl list)",
                )
            found = self._domains.get(domid)
            if found is not None:
                return found
            raise DomainNotFound(f"domain {domid}", "no domain has this id", _LIST_FIX)
        if text == xspaths.DOM0_NAME:
            raise DomainError(
                f"domain '{text}'",
                "is the host itself; this operation applies to guest domains",
                "name a guest domain (xl list)",
            )
        for candidate in self._domains.values():
            if candidate.name == text:
                return candidate
        raise DomainNotFound(f"domain '{text}'", "no domain has this name", _LIST_FIX)

    def info(self, dom: Domain, *, with_config: bool = False) -> DomainInfo:
        """``dom`` as a list row; the vCPU threads' states tell running from blocked."""
        b_info = dom.config.b_info
        pid = dom.process.pid if dom.process is not None else None
        state = dom.state
        live = state is DomainState.RUNNING
        on_cpu = live and pid is not None and vcpu_on_cpu(pid)
        max_vcpus = b_info.max_vcpus or 1
        online = len(b_info.avail_vcpus) if b_info.avail_vcpus else max_vcpus
        return DomainInfo(
            domid=dom.domid,
            name=dom.name,
            uuid=dom.record.uuid,
            current_memkb=dom.balloon_kib if dom.balloon_kib is not None else dom.alloc_kib,
            outstanding_memkb=0,
            max_memkb=effective_max_memkb(b_info),
            vcpu_online=online,
            max_vcpus=max_vcpus,
            running=on_cpu,
            blocked=live and not on_cpu,
            paused=state is DomainState.PAUSED,
            shutdown=state in (DomainState.SHUTDOWN, DomainState.CRASHED),
            dying=state is DomainState.DYING,
            shutdown_reason=dom.record.shutdown_reason,
            cpu_time_ns=cpu_time_ns(pid) if pid is not None else 0,
            start_time=dom.record.start_time,
            cpupool=self.pool_of(dom).name,
            config=json.loads(dom.record.config_json) if with_config else None,
            bootloader=(
                json.loads(dom.record.bootloader) if with_config and dom.record.bootloader else None
            ),
        )

    # ------------------------------------------------------------------ create

    async def create(
        self,
        config: object,
        *,
        config_text: str = "",
        source: str = "",
        paused: bool = False,
        parser_warnings: Sequence[str] = (),
    ) -> tuple[Domain, tuple[str, ...]]:
        """Build and start a domain from its libxl JSON config; atomic. Returns the domain and
        what its config sets that takes no effect here (also written to the hypervisor log).
        ``parser_warnings`` are what reading the xl.cfg file said (keys xl ignores, ...): the
        caller has shown them; they go to the hypervisor log with the domain's name.

        :raise ConfigError: when the JSON is not a domain config or has no name
        :raise DomainError: when the name is taken
        :raise Unsupported: for what xenlite cannot do (config.settings says what)
        :raise QemuLaunchError: when QEMU refuses to start, with QEMU's own message
        """
        cfg = domain_config_from_json(config, source=source or "<domain.create>")
        if cfg.c_info.domid != CreateInfo().domid:  # the engine writes it (config.settings)
            raise Unsupported(
                "c_info.domid",
                f"xenlite chooses each new domain's domid; asking for one is {LATER_WORDS}",
                "remove domid from the domain's JSON",
            )
        # Before anything is claimed: a refusal leaves nothing to undo.
        notes = tuple(report.message() for report in check_supported(cfg))
        domain = await self._create(cfg, config_text=config_text, source=source, paused=paused)
        for warning in parser_warnings:
            self._log_hypervisor(f"Domain {domain.domid} ({domain.name}): config: {warning}")
        for note in notes:
            self._log_hypervisor(f"Domain {domain.domid} ({domain.name}): {note}")
        return domain, notes

    async def _create(
        self, cfg: DomainConfig, *, config_text: str, source: str, paused: bool
    ) -> Domain:
        name = cfg.c_info.name
        if not name:
            raise ConfigError(
                "a domain needs a name", path=source or None, key="name", fix='add name="..."'
            )
        self._claim_name(name)
        uuid = cfg.c_info.uuid or str(uuidlib.uuid4())
        cfg = replace(cfg, c_info=replace(cfg.c_info, uuid=uuid))
        self._creating_uuids.add(uuid)
        domid = -1
        try:
            async with self._pool_lock:  # a pool being destroyed must see this domain
                cfg, pool = self.config_in_pool(cfg)
                self._creating_pools[uuid] = pool.poolid
            async with self._disk_lock:
                prepared = await asyncio.to_thread(
                    prepare_disks, cfg.disks, domain=name, attached=self._attached_disks()
                )
                resolved = tuple(p.disk for p in prepared)
                self._creating_disks[uuid] = (name, resolved)
            cfg = replace(cfg, disks=resolved)
            async with self._allocating:
                domid = await asyncio.to_thread(
                    self.store.allocate_domid, set(self._domains) | self._creating_domids
                )
                self._creating_domids.add(domid)
            dom = await self._build(cfg, domid, config_text=config_text, source=source,
                                    paused=paused, disks=prepared)  # fmt: skip
        finally:
            self._creating_names.discard(name)
            self._creating_domids.discard(domid)
            self._creating_uuids.discard(uuid)
            self._creating_disks.pop(uuid, None)
            self._creating_pools.pop(uuid, None)
        dom.supervisor = self._spawn(self._supervise(dom), f"supervise domain {domid}")
        log.info("created domain %d (%s)%s", domid, name, " paused" if paused else "")
        return dom

    async def _build(
        self,
        cfg: DomainConfig,
        domid: int,
        *,
        config_text: str,
        source: str,
        paused: bool,
        disks: Sequence[PreparedDisk],
    ) -> Domain:
        name = cfg.c_info.name or ""
        uuid = cfg.c_info.uuid or ""  # chosen by _create
        nics = prepare_nics(cfg.nics, domid=domid, uuid=uuid, taken_macs=self._macs(),
                            emulated=hvm.is_hvm(cfg.b_info))  # fmt: skip
        cfg = replace(cfg, c_info=replace(cfg.c_info, domid=domid), nics=tuple(n.nic for n in nics))
        run_dir = self.host.run_dir(domid)
        record = DomainRecord(
            domid=domid,
            name=name,
            uuid=uuid,
            config_json=json.dumps(domain_config_to_json(cfg)),
            config_text=config_text,
            source=source,
            start_time=time.time(),
            state=DomainState.CREATING,
            run_dir=os.fspath(run_dir),
            log_file=os.fspath(self.host.qemu_log(name)),
            console_log=os.fspath(self.host.console_log(name)),
        )
        dom = Domain(record, cfg)
        async with AsyncExitStack() as undo:
            # xl's freemem(): the domain's memory comes out of free memory (or dom0) first.
            target = effective_target_memkb(cfg.b_info)
            self.host.memory.claim(target, f"domain '{name}' (memory = {target // 1024} MiB)")
            dom.alloc_kib = target
            undo.callback(self._give_back, dom)
            # The record goes last (undos run in reverse): while any other trace is left, a
            # record in state CREATING says so to the next daemon.
            await asyncio.to_thread(self.store.save, record)
            undo.push_async_callback(asyncio.to_thread, self.store.delete, domid)
            undo.callback(shutil.rmtree, run_dir, ignore_errors=True)
            crash_point("create:record-saved")
            disks = await self._run_block_scripts(dom, disks, undo)
            # The vif scripts' part: each NIC's tap wired before QEMU attaches to it.
            if any(n.host.mode is vifhost.Mode.SCRIPT for n in nics):
                undo.push_async_callback(self._remove_nodes, domid, uuid)
            await self._wire_vifs(domid, name, nics, undo)
            qemu_host = await asyncio.to_thread(self._qemu_host, cfg)
            boot_cfg, booted = cfg, None
            if cfg.b_info.bootloader:
                # Its copies live in the run directory, which the undo above removes.
                booted = await asyncio.to_thread(
                    run_bootloader, cfg.b_info, disks, run_dir / "bootloader", source=source
                )
                boot_cfg = replace(cfg, b_info=booted.build_info(cfg.b_info))
                crash_point("create:bootloader-ran")
            if hvm.is_hvm(cfg.b_info):
                await asyncio.to_thread(hvm.prepare_firmware, hvm.hvm_info(cfg.b_info), run_dir)
            argv = build_argv(boot_cfg, domid=domid, host=qemu_host, paths=dom.paths,
                              paused=True, disks=qemu_disks(disks),
                              nics=[n.qemu for n in nics])  # fmt: skip
            dom.process = await asyncio.to_thread(launch, argv, dom.paths, timeout=LAUNCH_TIMEOUT)
            undo.push_async_callback(self._stop_qemu, dom)
            crash_point("create:qemu-launched")
            if booted is not None:
                # QEMU has loaded the kernel and ramdisk: the copies are not needed again.
                booted.files.remove()
                chose = booted.log_line()
                for note in (*booted.notes, chose):
                    self._log_hypervisor(f"Domain {domid} ({name}): {note}")
                log.info("domain %d (%s): %s", domid, name, chose)
                record = replace(record, bootloader=json.dumps(booted.summary()))
                dom.record = record
            # Before the vCPUs are placed: joining a v1 cpuset resets a thread's affinity.
            await asyncio.to_thread(self._join_cgroup, dom)
            undo.push_async_callback(asyncio.to_thread, self._leave_cgroup, domid)
            crash_point("create:cgroup-joined")
            dom.monitor = Monitor(f"{name}({domid})")
            await dom.monitor.connect(dom.paths.qmp_socket, timeout=QMP_TIMEOUT)
            crash_point("create:qmp-connected")
            balloon = balloon_target_bytes(cfg)
            if balloon is not None:
                await dom.monitor.balloon(balloon)
            await self._place_vcpus(dom)
            await self._write_nodes(dom)
            undo.push_async_callback(self._remove_nodes, domid, uuid)
            await self._start_vnc(dom)
            crash_point("create:nodes-written")
            await self.xs.introduce(domid, xspaths.STORE_MFN, xspaths.STORE_PORT)
            undo.push_async_callback(self._release, domid)
            crash_point("create:introduced")
            if not paused:
                await dom.monitor.cont()
            crash_point("create:unpaused")
            dom.record = record.with_state(DomainState.PAUSED if paused else DomainState.RUNNING)
            await asyncio.to_thread(self.store.save, dom.record)
            self._domains[domid] = dom
            undo.pop_all()
        return dom

    async def _run_block_scripts(
        self, dom: Domain, disks: Sequence[PreparedDisk], undo: AsyncExitStack
    ) -> list[PreparedDisk]:
        """Write the nodes of the disks with ``script=`` and run their scripts (``add``),
        before QEMU opens what the scripts set up; ``undo`` runs ``remove`` and takes the
        domain's nodes away (its own teardown does the same, from its config)."""
        if any(one.disk.script is not None for one in disks):
            undo.push_async_callback(self._remove_nodes, dom.domid, dom.record.uuid)
        done: list[PreparedDisk] = []
        for one in disks:
            if one.disk.script is not None:
                await self._write_vbd_nodes(dom.domid, [one.disk])
                one = await self._plug_scripted(dom.domid, one, undo)
            done.append(one)
        return done

    def _attached_disks(self) -> list[tuple[str, DeviceDisk]]:
        """Every disk of a domain that exists or is being created, with the domain's name."""
        live = [(d.name, disk) for d in self._domains.values() for disk in d.config.disks]
        creating = [(n, disk) for n, ds in self._creating_disks.values() for disk in ds]
        return live + creating

    def _macs(self) -> list[str]:
        """The MACs of every live domain's NICs."""
        return [n.mac for d in self._domains.values() for n in d.config.nics if n.mac]

    def _claim_name(self, name: str) -> None:
        taken = name in self._creating_names or any(d.name == name for d in self._domains.values())
        if taken or name == xspaths.DOM0_NAME:
            raise DomainError(
                f"domain name '{name}'",
                "is already in use",
                "choose another name= (or destroy the domain that has it)",
            )
        self._creating_names.add(name)

    def _qemu_host(self, cfg: DomainConfig) -> QemuHost:
        binary = probe_binary(find_qemu(cfg.b_info.device_model))
        return QemuHost(binary, self.host.accel, self.host.nr_cpus)

    # ------------------------------------------------------------------ XenStore

    async def _write_nodes(self, dom: Domain) -> None:
        b_info = dom.config.b_info
        max_vcpus = b_info.max_vcpus or 1
        online = b_info.avail_vcpus or frozenset(range(max_vcpus))
        facts = xspaths.DomainFacts(
            domid=dom.domid,
            name=dom.name,
            uuid=dom.record.uuid,
            target_memkb=effective_target_memkb(b_info),
            max_memkb=effective_max_memkb(b_info),
            max_vcpus=max_vcpus,
            online_vcpus=frozenset(online),
            domain_type=str(dom.config.c_info.type or DomainType.PVH),
            pool_name=self.pool_of(dom).name,
        )
        nodes = xspaths.domain_nodes(facts) + vbd_nodes(dom.domid, dom.config.disks)
        nodes += vif_nodes(dom.domid, dom.config.nics)
        await xspaths.write_nodes(self.xs, nodes)

    async def _start_vnc(self, dom: Domain) -> None:
        """An HVM domain's VNC server: its password set (never on QEMU's command line) and
        its address in ``console/vnc-listen`` and ``vnc-port``, where xl vncviewer reads it."""
        vnc = hvm.vnc_of(hvm.hvm_info(dom.config.b_info)) if hvm.is_hvm(dom.config.b_info) else None
        if vnc is None or dom.monitor is None:
            return
        if vnc.password:
            await dom.monitor.set_vnc_password(vnc.password)
        address = await dom.monitor.vnc_address()
        if address is None:
            raise DomainError(
                f"domain {dom.domid} ({dom.name})",
                "QEMU started no VNC server",
                f"see QEMU's log {dom.record.log_file}",
            )
        console = f"{xspaths.dom_path(dom.domid)}/console"
        nodes = [
            xspaths.Node(f"{console}/vnc-listen", address[0]),
            xspaths.Node(f"{console}/vnc-port", str(address[1])),
        ]
        if vnc.password:
            # For xl vncviewer --autopass, as libxl keeps it; dom0 alone may read it.
            nodes.append(xspaths.Node(f"{console}/vnc-pass", vnc.password, ("n0",)))
        await xspaths.write_nodes(self.xs, nodes)
        self._log_hypervisor(f"Domain {dom.domid} ({dom.name}): VNC on {address[0]}:{address[1]}")

    async def _remove_nodes(self, domid: int, uuid: str) -> None:
        """Remove the domain's subtrees. Without XenStore the rest of a teardown goes on:
        the nodes of a domain without a record are swept when XenStore is back."""
        for root in xspaths.domain_roots(domid, uuid):
            try:
                await self.xs.rm_if_exists(root)
            except XenStoreConnectionError as exc:
                log.warning("domain %d: nodes left for the sweep: %s", domid, exc)
                return

    async def _release(self, domid: int) -> None:
        try:
            await self.xs.release(domid)
        except XenStoreConnectionError as exc:
            log.warning("domain %d: not released (a new xenstored never knew it): %s", domid, exc)
        except XenStoreError as exc:
            if exc.wire_name != "ENOENT":
                raise

    # ------------------------------------------------------------------ operations

    async def destroy(self, dom: str) -> None:
        """xl destroy: stop QEMU at once and remove every trace of the domain."""
        domain = self.lookup(dom)
        domain.destroy_requested = True  # before the lock: a restart holding it sees this
        async with domain.lock:
            if not domain.gone.is_set():
                await self._teardown(domain)

    async def pause(self, dom: str) -> None:
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.RUNNING, doing="pause it")
            await live_monitor(domain).stop()
            await self._set_state(domain, DomainState.PAUSED)

    async def unpause(self, dom: str) -> None:
        domain = self.lookup(dom)
        async with domain.lock:
            require(domain.name, domain.state, DomainState.PAUSED, doing="unpause it")
            await live_monitor(domain).cont()
            await self._set_state(domain, DomainState.RUNNING)

    async def rename(self, dom: str, new_name: str) -> None:
        """xl rename: the name in XenStore, in the record and in the stored config."""
        domain = self.lookup(dom)
        if not new_name or new_name.isdigit():
            raise DomainError(
                f"domain name '{new_name}'",
                "is not a valid name (empty or all digits, which would read as a domid)",
                "choose a name with at least one letter",
            )
        async with domain.lock:
            if new_name == domain.name:
                return
            self._claim_name(new_name)
            try:
                await self._rename(domain, new_name, domain.record.uuid)
            finally:
                self._creating_names.discard(new_name)

    async def _rename(self, domain: Domain, new_name: str, new_uuid: str) -> None:
        domid, old_uuid = domain.domid, domain.record.uuid

        async def body(tx: Transaction) -> None:
            await tx.write(xspaths.name_path(domid), new_name)
            if new_uuid != old_uuid:
                vm = xspaths.vm_path(new_uuid)
                await tx.write(vm, "")
                await tx.set_perms(vm, PermList.parse(xspaths.roperm(domid)))
                await tx.write(f"{vm}/uuid", new_uuid)
                await tx.write(f"{xspaths.dom_path(domid)}/vm", vm)
                with contextlib.suppress(XenStoreError):
                    await tx.rm(xspaths.vm_path(old_uuid))
            await tx.write(xspaths.vm_name_path(new_uuid), new_name)

        await self.xs.transact(body)
        c_info = replace(domain.config.c_info, name=new_name, uuid=new_uuid)
        domain.config = replace(domain.config, c_info=c_info)
        domain.record = replace(
            domain.record,
            name=new_name,
            uuid=new_uuid,
            config_json=json.dumps(domain_config_to_json(domain.config)),
        )
        await asyncio.to_thread(self.store.save, domain.record)

    async def shutdown(self, dom: str, *, reboot: bool) -> None:
        """xl shutdown/reboot: write control/shutdown for PV-aware guests and press the ACPI
        power button (poweroff) or reset the machine (reboot); the guest's reaction arrives
        as a QMP event and the on_* action follows."""
        domain = self.lookup(dom)
        require(
            domain.name,
            domain.state,
            DomainState.RUNNING,
            DomainState.PAUSED,
            doing="reboot it" if reboot else "shut it down",
        )
        await self.xs.write(
            xspaths.control_shutdown_path(domain.domid), "reboot" if reboot else "poweroff"
        )
        monitor = live_monitor(domain)
        if reboot:
            await monitor.system_reset()
        else:
            await monitor.system_powerdown()
            if domain.power_button is None or domain.power_button.done():
                domain.power_button = self._spawn(
                    self._press_until_down(domain), f"power button of domain {domain.domid}"
                )

    async def _press_until_down(self, domain: Domain) -> None:
        """Press the power button again while the request stands and the guest runs on.

        Under Xen, ``control/shutdown`` waits in XenStore until the guest's drivers read it,
        so a shutdown asked for while the guest is still booting happens once it is up. An
        ACPI press before the guest listens is lost instead: pressing again keeps Xen's
        promise, for a bounded time.
        """
        path = xspaths.control_shutdown_path(domain.domid)
        deadline = time.monotonic() + POWER_BUTTON_REPEAT_FOR
        while time.monotonic() < deadline:
            await asyncio.sleep(POWER_BUTTON_INTERVAL)
            if _finished(domain) or domain.state not in (DomainState.RUNNING, DomainState.PAUSED):
                return
            if domain.state is DomainState.PAUSED:
                continue  # the request waits for the guest to run again, as in XenStore
            try:
                if await self.xs.read(path) != b"poweroff":
                    return
                await live_monitor(domain).system_powerdown()
            except (QemuError, XenStoreError, XenStoreConnectionError):
                return

    def ended(self, domid: int) -> tuple[bool, ShutdownReason | None]:
        """Whether domain ``domid`` was destroyed while this daemon ran (among the last
        ENDED_KEPT), and the reason it had shut down with before (None: none)."""
        if domid not in self._ended:
            return False, None
        return True, self._ended[domid]

    async def wait_gone(self, dom: str, timeout: float) -> None:
        """Return once the domain has been destroyed (xl shutdown -w, reboot -w).

        :raise DomainError: when it still exists after ``timeout`` seconds
        """
        domain = self.lookup(dom)
        try:
            async with asyncio.timeout(timeout):
                await domain.gone.wait()
        except TimeoutError:
            raise DomainError(
                f"domain '{domain.name}' ({domain.domid})",
                f"still exists {timeout:g} s later (state {domain.state})",
                "the guest may ignore the request; xl destroy stops it at once",
            ) from None

    async def _set_state(
        self, domain: Domain, state: DomainState, reason: ShutdownReason | None = None
    ) -> None:
        domain.record = domain.record.with_state(state, reason)
        await asyncio.to_thread(self.store.save, domain.record)

    # ------------------------------------------------------------------ teardown

    async def _teardown(self, domain: Domain) -> None:
        """Destroy ``domain``: QEMU, XenStore nodes, RELEASE, record (caller holds its lock)."""
        domain.tearing_down = True
        with contextlib.suppress(XenliteError):
            await self._set_state(domain, DomainState.DYING, domain.record.shutdown_reason)
        crash_point("destroy:dying-saved")
        supervisor = domain.supervisor
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            await asyncio.wait([supervisor])
        await self._stop_qemu(domain)
        crash_point("destroy:qemu-stopped")
        await asyncio.to_thread(self._leave_cgroup, domain.domid)
        await self._unplug_vifs(domain, domain.config.nics)
        for disk in domain.config.disks:
            await self._unplug_scripted(domain, disk)
        await self._remove_nodes(domain.domid, domain.record.uuid)
        await self._release(domain.domid)
        crash_point("destroy:nodes-removed")
        await asyncio.to_thread(shutil.rmtree, domain.record.run_dir, True)
        crash_point("destroy:run-dir-removed")
        await asyncio.to_thread(self.store.delete, domain.domid)  # last: see _build
        self._give_back(domain)
        self._domains.pop(domain.domid, None)
        self._ended[domain.domid] = domain.record.shutdown_reason
        while len(self._ended) > ENDED_KEPT:
            self._ended.popitem(last=False)
        domain.gone.set()
        log.info("destroyed domain %d (%s)", domain.domid, domain.name)

    def _give_back(self, domain: Domain) -> None:
        self.host.memory.release(domain.alloc_kib)
        domain.alloc_kib = 0

    async def _stop_qemu(self, domain: Domain) -> None:
        process, monitor = domain.process, domain.monitor
        asked = False
        if monitor is not None and monitor.connected and process is not None:
            with contextlib.suppress(QemuError):
                await monitor.quit(timeout=QUIT_TIMEOUT)
                asked = True
        # A QEMU nobody could ask (half-made, or its monitor lost) is killed at once.
        if process is not None and not (asked and await _exits(process, QUIT_TIMEOUT)):
            process.kill()
            await _exits(process, QUIT_TIMEOUT)
        if monitor is not None:
            await monitor.disconnect()
        if process is not None:
            process.close()
        paths = domain.paths
        for path in (paths.qmp_socket, paths.serial_socket, paths.pid_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        domain.process = None
        domain.monitor = None

    # ------------------------------------------------------------------ events and actions

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _supervise(self, domain: Domain) -> None:
        """Follow one QEMU's events until it goes away; a QEMU that dies is a crash."""
        monitor = domain.monitor
        if monitor is None:
            return
        async for event in monitor.events():
            if _finished(domain):
                return
            await self._on_event(domain, event)
        if _finished(domain):
            return
        process = domain.process
        if process is not None and process.is_alive():
            log.warning("domain %d: QMP connection lost; reconnecting", domain.domid)
            with contextlib.suppress(QemuError):
                await monitor.disconnect()
                fresh = Monitor(f"{domain.name}({domain.domid})")
                await fresh.connect(domain.paths.qmp_socket, timeout=QMP_TIMEOUT)
                domain.monitor = fresh
                domain.supervisor = self._spawn(
                    self._supervise(domain), f"supervise domain {domain.domid}"
                )
                return
        status = process.exitcode if process is not None else None
        self._log_hypervisor(
            f"Domain {domain.domid} ({domain.name}): device model exited"
            + (f" with status {status}" if status is not None else "")
            + "; handled as a crash"
        )
        await self._shutdown_happened(domain, ShutdownReason.CRASH, qemu_gone=True)

    async def _on_event(self, domain: Domain, event: QmpEvent) -> None:
        if event.name == "DEVICE_DELETED":
            domain.device_deleted(str(event.data.get("device", "")))
            return
        reason = reason_from_qmp(event.name, event.data)
        if reason is not None:
            await self._shutdown_happened(domain, reason)
        elif event.name == "BALLOON_CHANGE":
            actual = event.data.get("actual")
            if isinstance(actual, int):
                domain.balloon_kib = actual // 1024
        elif event.name == "STOP" and domain.state is DomainState.RUNNING:
            async with domain.lock:
                if domain.state is DomainState.RUNNING:
                    await self._set_state(domain, DomainState.PAUSED)
        elif event.name == "RESUME" and domain.state is DomainState.PAUSED:
            async with domain.lock:
                if domain.state is DomainState.PAUSED:
                    await self._set_state(domain, DomainState.RUNNING)

    async def _shutdown_happened(
        self, domain: Domain, reason: ShutdownReason, *, qemu_gone: bool = False
    ) -> None:
        """The domain shut down with ``reason``: record it and apply its on_* action."""
        async with domain.lock:
            if domain.tearing_down or domain.gone.is_set():
                return
            already = domain.state in (DomainState.SHUTDOWN, DomainState.CRASHED)
            if already and not qemu_gone:
                return  # e.g. GUEST_PANICKED followed by SHUTDOWN(guest-panic)
            action = action_for(domain.config, reason)
            await self._set_state(domain, state_after(reason), reason)
            log.info(
                "domain %d (%s) shut down: %s; action %s",
                domain.domid,
                domain.name,
                reason,
                action.xl_name,
            )
            if reason is ShutdownReason.CRASH:
                self._log_hypervisor(
                    f"Domain {domain.domid} ({domain.name}) crashed; on_crash={action.xl_name}"
                )
            await self._apply(domain, action, qemu_gone=qemu_gone)

    async def _apply(self, domain: Domain, action: Action, *, qemu_gone: bool) -> None:
        if action is Action.PRESERVE:
            return
        if action is Action.SOFT_RESET:
            await self._soft_reset(domain, qemu_gone=qemu_gone)
            return
        if action in (Action.COREDUMP_DESTROY, Action.COREDUMP_RESTART):
            await self._dump_core(domain, qemu_gone=qemu_gone)
        config, text, source = domain.config, domain.record.config_text, domain.record.source
        if action is Action.RESTART_RENAME:
            # The old domain stays under a new name and uuid; the new one takes the old ones.
            await self._preserve_renamed(domain)
            await self._restart(domain, config, text, source)
            return
        restarting = action in (Action.RESTART, Action.COREDUMP_RESTART)
        if restarting and not domain.destroy_requested:
            # Between the teardown and the new domain's record the domain exists only in
            # this note: a daemon killed there restarts it when it starts again.
            await asyncio.to_thread(self.store.save_restart, domain.record)
        await self._teardown(domain)
        if restarting:
            crash_point("restart:torn-down")
            await self._restart_noted(domain.record, domain)

    async def _soft_reset(self, domain: Domain, *, qemu_gone: bool) -> None:
        """The soft-reset action: the same domain (domid, name, uuid, QEMU) is reset in place
        and runs on, as Xen's soft reset keeps the domain and lets it carry on. A QEMU reset
        starts the guest's kernel afresh (QEMU has no kexec hand-off to keep).

        QEMU runs under ``-action reboot=shutdown``, which would turn this reset into one
        more shutdown; ``set-action`` lets resets through until the firmware is past its own
        reset (SeaBIOS answers a warm reset by resetting the machine once more, as it cannot
        run its POST twice), then restores the rule.
        """
        what = f"Domain {domain.domid} ({domain.name})"
        if qemu_gone or domain.monitor is None or not domain.monitor.connected:
            self._log_hypervisor(f"{what}: no soft reset, its device model has exited")
            return
        monitor = domain.monitor
        try:
            await monitor.execute("set-action", {"reboot": "reset"}, timeout=QMP_TIMEOUT)
            try:
                await monitor.system_reset(timeout=QMP_TIMEOUT)
                # QEMU's main loop carries the reset out after the command's answer; until then
                # the machine still "needs a reset" and refuses to continue.
                async with asyncio.timeout(QMP_TIMEOUT):
                    while (await monitor.query_status()).status in _NEEDS_RESET:
                        await asyncio.sleep(0.02)
                await monitor.cont(timeout=QMP_TIMEOUT)
                # This runs inside the domain's supervisor, so nothing else reads the events
                # consumed here; a firmware that does not reset again costs the bound.
                await monitor.wait_guest_reset(FIRMWARE_RESET_TIMEOUT)
            finally:
                await monitor.execute("set-action", {"reboot": "shutdown"}, timeout=QMP_TIMEOUT)
        except (QemuError, TimeoutError) as exc:
            log.error("domain %d: soft reset failed: %s", domain.domid, exc)
            self._log_hypervisor(f"{what}: soft reset failed: {exc}; the domain is kept")
            return
        await self._set_state(domain, DomainState.RUNNING)
        self._log_hypervisor(f"{what}: soft reset; running again")

    async def _restart_noted(self, note: DomainRecord, old: Domain | None) -> None:
        """Build the domain of a restart note again; the note goes once that is settled,
        except when XenStore is away: then it waits for xenstore_back() (or the next start).
        """
        if old is not None and old.destroy_requested:
            await asyncio.to_thread(self.store.delete_restart, note.domid)
            self._log_hypervisor(
                f"Domain {note.domid} ({note.name}): not restarted, xl destroy was asked for"
            )
            return
        config = domain_config_from_json(json.loads(note.config_json), source=note.source)
        try:
            fresh = await self._create(
                config, config_text=note.config_text, source=note.source, paused=False
            )
        except XenStoreConnectionError as exc:
            log.warning("restart of domain %s waits for XenStore: %s", note.name, exc)
            self._log_hypervisor(f"restart of domain {note.name} waits for XenStore")
            return
        except XenliteError as exc:
            log.error("restarting domain %s failed: %s", note.name, exc)
            self._log_hypervisor(f"restart of domain {note.name} failed: {exc}")
        else:
            log.info("domain %s restarted as domain %d", fresh.name, fresh.domid)
        await asyncio.to_thread(self.store.delete_restart, note.domid)

    async def _restart_pending(self) -> None:
        """Carry out the restart notes a dead daemon (or a XenStore outage) left."""
        for note in await asyncio.to_thread(self.store.load_restarts):
            old = self._domains.get(note.domid)
            if old is not None:  # its teardown had not begun
                async with old.lock:
                    if not old.gone.is_set():
                        await self._teardown(old)
            if any(d.name == note.name for d in self._domains.values()):
                # The new domain was complete before the daemon died.
                await asyncio.to_thread(self.store.delete_restart, note.domid)
                continue
            await self._restart_noted(note, None)

    async def _restart(self, old: Domain, config: DomainConfig, text: str, source: str) -> None:
        if old.destroy_requested:
            self._log_hypervisor(
                f"Domain {old.domid} ({old.name}): not restarted, xl destroy was asked for"
            )
            return
        try:
            fresh = await self._create(config, config_text=text, source=source, paused=False)
        except XenliteError as exc:
            log.error("restarting domain %s failed: %s", config.c_info.name, exc)
            self._log_hypervisor(f"restart of domain {config.c_info.name} failed: {exc}")
            return
        log.info("domain %s restarted as domain %d", fresh.name, fresh.domid)

    async def _preserve_renamed(self, domain: Domain) -> None:
        # xl's preserve_domain: suffix "-%Y%m%dT%H%MZ" (UTC) and a fresh uuid.
        # A second preserve within the same minute would repeat the name, and names must stay
        # unique for lookups: that one gets "-2", "-3", ... after Xen's suffix.
        base = domain.name + time.strftime("-%Y%m%dT%H%MZ", time.gmtime())
        taken = {d.name for d in self._domains.values()} | self._creating_names
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        await self._rename(domain, name, str(uuidlib.uuid4()))

    async def _dump_core(self, domain: Domain, *, qemu_gone: bool) -> None:
        if qemu_gone or domain.monitor is None or not domain.monitor.connected:
            self._log_hypervisor(
                f"Domain {domain.domid}: no core dump, its device model has exited"
            )
            return
        directory = under_root(DUMP_DIR, self.host.root)
        stamp = time.strftime("%Y-%m-%d-%H%M.%S")
        path = directory / f"{stamp}-{domain.name}.{domain.domid}.core"
        try:
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            await domain.monitor.dump_guest_memory(path, timeout=DUMP_TIMEOUT)
        except (OSError, QemuError) as exc:
            log.error("domain %d: core dump failed: %s", domain.domid, exc)
            self._log_hypervisor(f"Domain {domain.domid}: core dump to {path} failed: {exc}")
            return
        log.info("domain %d: core dumped to %s", domain.domid, path)

    # ------------------------------------------------------------------ rebuild

    async def rebuild(self) -> None:
        """Take over the domains of this host root after a (re)start of the daemon."""
        records = await asyncio.to_thread(self.store.load_all)
        if records:
            highest = max(r.domid for r in records)
            if self.store.high_water() < highest:
                await asyncio.to_thread(self.store.allocate_domid, set(range(highest + 1)))
        for record in records:
            try:
                await self._adopt(record)
            except XenliteError as exc:
                log.error("domain %d (%s): cannot be taken over: %s", record.domid,
                          record.name, exc)  # fmt: skip
        await self._sweep_orphans()
        await self._restart_pending()

    async def _sweep_orphans(self) -> None:
        """Remove every trace that no domain owns any more (see domain/orphans.py)."""
        domids = set(self._domains)
        swept = await asyncio.to_thread(
            orphans.sweep_files,
            self.host.run_root(),
            self.store.directory,
            self.host.cgroups,
            domids,
        )
        await asyncio.to_thread(
            orphans.sweep_taps, self.host.root, domids | self._creating_domids, swept
        )
        await self._sweep_xenstore(swept)

    async def _sweep_xenstore(self, swept: orphans.Swept) -> None:
        domids = set(self._domains) | self._creating_domids
        uuids = {d.record.uuid for d in self._domains.values()} | self._creating_uuids
        await orphans.sweep_xenstore(self.xs, domids, uuids, swept)
        if swept:
            log.warning("removed what no domain owns: %s", swept)
            self._log_hypervisor(f"Removed traces of domains that no longer exist: {swept}")

    async def xenstore_back(self) -> None:
        """xenstored answers again after it was lost (daemon/xenstore_link.py): write every
        live domain's nodes where the store lacks them, introduce it again, and remove the
        nodes of domains that went away meanwhile."""
        for domain in self.domains():
            if not _finished(domain):
                await self._ensure_nodes(domain)
        await self._sweep_xenstore(orphans.Swept())
        await self._restart_pending()

    async def _adopt(self, record: DomainRecord) -> None:
        config = domain_config_from_json(json.loads(record.config_json), source=record.source)
        domain = Domain(record, config)
        domain.process = await asyncio.to_thread(attach, domain.paths)
        domain.alloc_kib = effective_target_memkb(config.b_info)
        self.host.memory.restore(domain.alloc_kib)
        self._domains[record.domid] = domain
        if record.state in (DomainState.CREATING, DomainState.DYING):
            log.info("domain %d: finishing its interrupted %s", record.domid, record.state)
            async with domain.lock:
                await self._teardown(domain)
            return
        await self._ensure_nodes(domain)
        if domain.process is not None:
            try:
                await asyncio.to_thread(self._join_cgroup, domain)
            except XenliteError as exc:
                # Keep the domain (it runs on), but say that its weight and cap are not
                # enforced now: a takeover must not drop them without a word.
                log.error("domain %d: cgroup not joined on takeover: %s", domain.domid, exc)
                self._log_hypervisor(
                    f"Domain {domain.domid} ({domain.name}): its cgroup could not be joined "
                    f"({exc}); cpu_weight/cap are not enforced until it is re-created"
                )
        if domain.process is None:
            if record.state not in (DomainState.SHUTDOWN, DomainState.CRASHED):
                self._spawn(
                    self._shutdown_happened(domain, ShutdownReason.CRASH, qemu_gone=True),
                    f"domain {record.domid} died",
                )
            return
        monitor = Monitor(f"{record.name}({record.domid})")
        await monitor.connect(domain.paths.qmp_socket, timeout=QMP_TIMEOUT)
        domain.monitor = monitor
        try:
            # _join_cgroup gave the cpuset its pool's CPUs (the book wins over a change cut
            # short); the vCPU threads follow, and QEMU's vCPUs win over a vcpu-set cut short.
            if record.state in (DomainState.RUNNING, DomainState.PAUSED):
                await self._settle_vcpus(domain)
        except XenliteError as exc:
            log.error("domain %d: not settled on takeover: %s", domain.domid, exc)
            self._log_hypervisor(f"Domain {domain.domid} ({domain.name}): its cpupool's CPUs "
                                 f"or vCPUs could not be settled on takeover ({exc})")  # fmt: skip
        devices = await qemu_devices(monitor)
        await self.finish_disk_changes(domain, devices)
        await self.finish_nic_changes(domain, devices)
        status = await monitor.query_status()
        missed: ShutdownReason | None = None
        if record.state in (DomainState.RUNNING, DomainState.PAUSED):
            if status.status == "guest-panicked":
                missed = ShutdownReason.CRASH
            elif status.status == "shutdown":
                # QEMU keeps no reason; a guest that shut down unobserved most often powered off.
                missed = ShutdownReason.POWEROFF
            elif status.running and record.state is DomainState.PAUSED:
                await self._set_state(domain, DomainState.RUNNING)
            elif not status.running and record.state is DomainState.RUNNING:
                await self._set_state(domain, DomainState.PAUSED)
        domain.supervisor = self._spawn(self._supervise(domain), f"supervise {record.domid}")
        if missed is not None:
            self._spawn(self._shutdown_happened(domain, missed), f"domain {record.domid} down")
        log.info("took over domain %d (%s), QEMU pid %d", record.domid, record.name,
                 domain.process.pid)  # fmt: skip

    async def _ensure_nodes(self, domain: Domain) -> None:
        """Write the domain's nodes again when XenStore lost them (xenstored restarted)."""
        if not await self.xs.exists(xspaths.name_path(domain.domid)):
            await self._write_nodes(domain)
        await self.xs.introduce(domain.domid, xspaths.STORE_MFN, xspaths.STORE_PORT)

    async def close(self) -> None:
        """Stop watching (QEMU processes keep running, to be taken over again)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        for domain in self._domains.values():
            if domain.monitor is not None:
                await domain.monitor.disconnect()
            if domain.process is not None:
                domain.process.close()

    # ------------------------------------------------------------------ sysrq, triggers

    async def send_keys(self, dom: str, keys: Sequence[str], *, doing: str) -> None:
        """Press ``keys`` (QEMU qcodes) together on the guest's keyboard (xl sysrq).

        :raise DomainStateError: unless the domain is running or paused
        :raise QemuError: when its QEMU does not answer or refuses
        """
        domain = self.lookup(dom)
        require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED, doing=doing)
        await live_monitor(domain).send_key(list(keys))

    async def machine_command(self, dom: str, command: str, *, doing: str) -> None:
        """Run one argument-less QMP machine command (inject-nmi, system_reset,
        system_powerdown, system_wakeup) on a live domain (xl trigger).

        :raise DomainStateError: unless the domain is running or paused
        :raise QemuError: when its QEMU does not answer or refuses
        """
        domain = self.lookup(dom)
        require(domain.name, domain.state, DomainState.RUNNING, DomainState.PAUSED, doing=doing)
        await live_monitor(domain).execute(command)


async def _exits(process: QemuProcess, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to exit; whether it did."""
    try:
        await asyncio.to_thread(process.wait_exit, timeout)
    except QemuError:
        return False
    return True


def _finished(domain: Domain) -> bool:
    """The domain is being (or has been) destroyed: its events no longer matter."""
    return domain.tearing_down or domain.gone.is_set()
