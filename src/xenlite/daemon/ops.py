"""xenlited's operations, one function per RPC method (the contract of issue 4).

xl.1 "info", "dmesg", "list", "create", "destroy", "pause", "unpause", "rename",
"shutdown", "reboot", "console", "sysrq", "trigger": the daemon side of each verb. The CLI
formats the results; the XenAPI and REST layers will call these same functions in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from xenlite import XEN_COMPAT_VERSION, __version__
from xenlite.base.errors import (
    DomainError,
    HostError,
    QemuCommandError,
    RpcError,
    Unsupported,
    XenStoreConnectionError,
)
from xenlite.base.paths import under_root
from xenlite.config.domain.libxl_json import struct_from_json
from xenlite.config.domain.model import DeviceDisk, DeviceNic
from xenlite.config.hostconf.bootopts import parse_xen_cmdline
from xenlite.config.specs.cpus import parse_cpu_list
from xenlite.daemon.consoles import ConsoleBroker, ConsoleInfo, console_info
from xenlite.daemon.dmesg import HypervisorLog
from xenlite.daemon.xenstore_link import BACK_WAIT, LOST_FIX, XenStoreLink
from xenlite.domain.live import Domain
from xenlite.domain.manager import DomainManager
from xenlite.domain.poolbook import Cpupool
from xenlite.domain.vcpu import VcpuInfo
from xenlite.domain.xspaths import DOM0_NAME, DOM0_UUID, memory_target_path
from xenlite.host import facts as host_facts
from xenlite.host import netbridge
from xenlite.host.cgroups import XEN_WEIGHT_DEFAULT
from xenlite.qemu import hvm
from xenlite.rpc.contract import VERSION_SKEW_FIX, DomainInfo, Method
from xenlite.rpc.protocol import Event, Reply, RpcCode

XEN_PAGESIZE = 4096
XEND_CONFIG_FORMAT = 4


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What ``xl info`` reports about the host, probed once at daemon start."""

    nr_cpus: int
    nr_nodes: int
    cores_per_socket: int
    threads_per_core: int
    cpu_mhz: float
    total_kib: int
    accel: str
    scheduler: str
    cmdline: str
    boot_time: float


class Trigger(StrEnum):
    """libxl_trigger (libxl_types.idl) as ``xl trigger`` names them."""

    POWER = "power"
    SLEEP = "sleep"
    NMI = "nmi"
    INIT = "init"
    RESET = "reset"
    S3RESUME = "s3resume"


# The QMP command that does what Xen's XEN_DOMCTL_sendtrigger does for each trigger.
_TRIGGER_QMP = {
    Trigger.NMI: "inject-nmi",
    Trigger.RESET: "system_reset",
    Trigger.POWER: "system_powerdown",
    Trigger.S3RESUME: "system_wakeup",
}
_TRIGGER_UNSUPPORTED = {
    Trigger.INIT: "QEMU has no command that sends an INIT IPI to a vCPU",
    Trigger.SLEEP: "QEMU has no command that presses the ACPI sleep button",
}
# Linux's SysRq keys (Documentation/admin-guide/sysrq.rst) are 0-9 and a-z; QEMU's qcode for
# each is the character itself.
_SYSRQ_KEYS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")

StreamHandler = Callable[..., AsyncIterator[Event | Reply]]


def xen_version() -> str:
    return f"{XEN_COMPAT_VERSION}.0-xenlite-{__version__}"


class Operations:
    """The operations over one domain manager; ``handlers()`` names them for the RPC server."""

    def __init__(
        self,
        manager: DomainManager,
        dmesg: HypervisorLog,
        facts: HostFacts,
        link: XenStoreLink,
    ) -> None:
        self.manager = manager
        self.dmesg = dmesg
        self.facts = facts
        self.link = link
        self.consoles = ConsoleBroker()

    def handlers(self) -> dict[str, Callable[..., Awaitable[object]] | StreamHandler]:
        return {
            Method.HOST_INFO: self.host_info,
            Method.HOST_DMESG: self.host_dmesg,
            Method.HOST_XENSTORE_WAIT: self.host_xenstore_wait,
            Method.HOST_NETWORK_BRIDGE: self.host_network_bridge,
            Method.HOST_CPUPOOL_LIST: self.host_cpupool_list,
            Method.HOST_CPUPOOL_CREATE: self.host_cpupool_create,
            Method.HOST_CPUPOOL_DESTROY: self.host_cpupool_destroy,
            Method.HOST_CPUPOOL_RENAME: self.host_cpupool_rename,
            Method.HOST_CPUPOOL_CPU_ADD: self.host_cpupool_cpu_add,
            Method.HOST_CPUPOOL_CPU_REMOVE: self.host_cpupool_cpu_remove,
            Method.HOST_CPUPOOL_NUMA_SPLIT: self.host_cpupool_numa_split,
            Method.DOMAIN_CPUPOOL_MIGRATE: self.domain_cpupool_migrate,
            Method.DOMAIN_LIST: self.domain_list,
            Method.DOMAIN_CREATE: self.domain_create,
            Method.DOMAIN_DESTROY: self.domain_destroy,
            Method.DOMAIN_PAUSE: self.domain_pause,
            Method.DOMAIN_UNPAUSE: self.domain_unpause,
            Method.DOMAIN_RENAME: self.domain_rename,
            Method.DOMAIN_SHUTDOWN: self.domain_shutdown,
            Method.DOMAIN_WAIT_GONE: self.domain_wait_gone,
            Method.DOMAIN_ENDED: self.domain_ended,
            Method.DOMAIN_CONSOLE: self.domain_console,
            Method.DOMAIN_CONSOLE_ATTACH: self.domain_console_attach,
            Method.DOMAIN_MEM_SET: self.domain_mem_set,
            Method.DOMAIN_VCPU_LIST: self.domain_vcpu_list,
            Method.DOMAIN_BLOCK_LIST: self.domain_block_list,
            Method.DOMAIN_BLOCK_ATTACH: self.domain_block_attach,
            Method.DOMAIN_CDROM_INSERT: self.domain_cdrom_insert,
            Method.DOMAIN_BLOCK_DETACH: self.domain_block_detach,
            Method.DOMAIN_NETWORK_LIST: self.domain_network_list,
            Method.DOMAIN_NETWORK_ATTACH: self.domain_network_attach,
            Method.DOMAIN_NETWORK_DETACH: self.domain_network_detach,
            Method.DOMAIN_SCHED_GET: self.domain_sched_get,
            Method.DOMAIN_SCHED_SET: self.domain_sched_set,
            Method.DOMAIN_VCPU_PIN: self.domain_vcpu_pin,
            Method.DOMAIN_VCPU_SET: self.domain_vcpu_set,
            Method.DOMAIN_MEM_MAX: self.domain_mem_max,
            Method.DOMAIN_SYSRQ: self.domain_sysrq,
            Method.DOMAIN_TRIGGER: self.domain_trigger,
        }

    # ------------------------------------------------------------------ host

    def free_kib(self) -> int:
        """free_memory: what neither dom0 nor any domain holds."""
        return self.manager.host.memory.free_kib

    async def host_network_bridge(
        self, action: str, bridge: str, netdev: str | None = None, force: bool = False
    ) -> dict[str, object]:
        """xenlite network-bridge start|stop|status, in xenlited's network namespace."""
        run_root = self.manager.host.run_root()
        if action == "start":
            found = await asyncio.to_thread(
                netbridge.start, run_root, bridge, netdev, force=bool(force)
            )
        elif action == "stop":
            await asyncio.to_thread(netbridge.stop, run_root, bridge)
            return {}
        elif action == "status":
            found = await asyncio.to_thread(netbridge.status, run_root, bridge)
        else:
            raise HostError(
                f"network-bridge {action}", "is not an action", "use start, stop or status"
            )
        return dataclasses.asdict(found)

    async def host_info(self) -> list[list[object]]:
        """``xl info``'s fields in xl's order, as [name, value] pairs."""
        f = self.facts
        uname = platform.uname()
        major, minor = XEN_COMPAT_VERSION.split(".")
        mhz = int(f.cpu_mhz * 1000)
        virt_caps = "pv hvm hap" if f.accel == "kvm" else "pv hvm"
        pairs: list[tuple[str, object]] = [
            ("host", uname.node),
            ("release", uname.release),
            ("version", uname.version),
            ("machine", uname.machine),
            ("nr_cpus", f.nr_cpus),
            ("max_cpu_id", f.nr_cpus - 1),
            ("nr_nodes", f.nr_nodes),
            ("cores_per_socket", f.cores_per_socket),
            ("threads_per_core", f.threads_per_core),
            ("cpu_mhz", f"{mhz // 1000}.{mhz % 1000:03d}"),
            ("hw_caps", ":".join(["00000000"] * 8)),
            ("virt_caps", virt_caps),
            ("total_memory", self.manager.host.memory.total_kib // 1024),
            ("free_memory", self.free_kib() // 1024),
            ("sharing_freed_memory", 0),
            ("sharing_used_memory", 0),
            ("outstanding_claims", 0),
            ("free_cpus", len(self.manager.free_cpus())),
            ("xen_major", int(major)),
            ("xen_minor", int(minor)),
            ("xen_extra", f".0-xenlite-{__version__}"),
            ("xen_version", xen_version()),
            ("xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"),
            ("xen_scheduler", f.scheduler),
            ("xen_pagesize", XEN_PAGESIZE),
            ("platform_params", "virt_start=0xffff800000000000"),
            ("xen_changeset", f"xenlite {__version__}"),
            ("xen_commandline", f.cmdline),
            ("cc_compiler", f"Python {platform.python_version()}"),
            ("cc_compile_by", "xenlite"),
            ("cc_compile_domain", ""),
            ("cc_compile_date", ""),
            ("build_id", ""),
            ("xend_config_format", XEND_CONFIG_FORMAT),
        ]
        return [[name, value] for name, value in pairs]

    async def host_dmesg(self, clear: bool = False) -> dict[str, object]:
        text = self.dmesg.text()
        if clear:
            self.dmesg.clear()
        return {"text": text}

    async def host_xenstore_wait(self, timeout: float = BACK_WAIT) -> dict[str, object]:
        """Reconnect to a xenstored that just came back, now, and wait until the domains'
        nodes are repaired (``xenlite start``).

        :raise XenStoreConnectionError: when that did not happen within ``timeout`` seconds
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _bad_param("timeout", timeout, "a number of seconds")
        if not await self.link.wait_up(float(timeout)):
            raise XenStoreConnectionError(
                "xenlited's XenStore connection",
                f"is not back {timeout:g} s after xenstored started",
                f"read xenlited's log in {under_root('/var/log/xenlite')}; {LOST_FIX}",
            )
        return {}

    # ------------------------------------------------------------------ domains

    def dom0_info(self) -> DomainInfo:
        """Domain-0 is the host: it holds whatever no domU was given."""
        f = self.facts
        book = self.manager.host.memory
        return DomainInfo(
            domid=0,
            name=DOM0_NAME,
            uuid=DOM0_UUID,
            current_memkb=book.dom0_kib,
            outstanding_memkb=0,
            max_memkb=book.total_kib,
            vcpu_online=self.manager.host.dom0_vcpus or f.nr_cpus,
            max_vcpus=self.manager.host.dom0_vcpus or f.nr_cpus,
            running=True,
            blocked=False,
            paused=False,
            shutdown=False,
            dying=False,
            shutdown_reason=None,
            cpu_time_ns=host_facts.cpu_time_ns(),
            start_time=f.boot_time,
            cpupool=self.manager.pool_of(None).name,
            config=None,
        )

    async def domain_list(self) -> list[DomainInfo]:
        """Domain-0 first, then every domU by domid, with its libxl JSON config."""
        rows = [self.dom0_info()]
        rows += [self.manager.info(d, with_config=True) for d in self.manager.domains()]
        return rows

    async def domain_create(
        self,
        config: dict[str, object],
        config_text: str = "",
        source: str = "",
        paused: bool = False,
        parser_warnings: object = (),
    ) -> dict[str, object]:
        domain, notes = await self.manager.create(
            config,
            config_text=config_text,
            source=source,
            paused=paused,
            parser_warnings=_strings(parser_warnings, "parser_warnings"),
        )
        return {"domid": domain.domid, "name": domain.name, "warnings": list(notes)}

    async def domain_destroy(self, dom: str) -> dict[str, object]:
        await self.manager.destroy(_dom(dom))
        return {}

    async def domain_pause(self, dom: str) -> dict[str, object]:
        await self.manager.pause(_dom(dom))
        return {}

    async def domain_unpause(self, dom: str) -> dict[str, object]:
        await self.manager.unpause(_dom(dom))
        return {}

    async def domain_rename(self, dom: str, name: str) -> dict[str, object]:
        await self.manager.rename(_dom(dom), name)
        return {}

    async def domain_shutdown(self, dom: str, reboot: bool = False) -> dict[str, object]:
        await self.manager.shutdown(_dom(dom), reboot=reboot)
        return {}

    async def domain_wait_gone(self, dom: str, timeout: float = 60.0) -> dict[str, object]:
        await self.manager.wait_gone(_dom(dom), float(timeout))
        return {}

    async def domain_ended(self, domid: int) -> dict[str, object]:
        """How a domain that is gone ended: {"known", "shutdown_reason"} (xl's -w waits)."""
        known, reason = self.manager.ended(int(domid))
        return {"known": known, "shutdown_reason": None if reason is None else str(reason)}

    async def domain_console(self, dom: str) -> ConsoleInfo:
        return console_info(self.manager.lookup(_dom(dom)))

    async def domain_console_attach(
        self, dom: str, console_type: str = "serial", num: int = 0
    ) -> AsyncIterator[Event | Reply]:
        """xl console: an ``attached`` event with QEMU's serial socket as a descriptor, held
        for this client alone until it disconnects (then the console is free again).

        ``console_type`` "pv" and "serial" are the same port here: a xenlite domain's PV console is
        its serial port. Other consoles do not exist.

        :raise ConsoleBusy: when another client is attached
        :raise Unsupported: for a vuart console or a console number other than 0
        """
        domain = self.manager.lookup(_dom(dom))
        if console_type not in ("pv", "serial"):
            raise Unsupported(
                f"console type '{console_type}' of domain '{domain.name}'",
                "a xenlite domain has one console, its serial port (pv and serial name it)",
                "attach with 'xl console -t serial' (or without -t)",
            )
        if num != 0:
            raise Unsupported(
                f"console {num} of domain '{domain.name}'",
                "a xenlite domain has one console (number 0), its serial port",
                "attach without -n (or with -n 0)",
            )
        b_info = domain.config.b_info
        if hvm.is_hvm(b_info) and not hvm.has_serial_console(hvm.hvm_info(b_info)):
            raise DomainError(
                f"console of domain '{domain.name}'",
                'an HVM guest has a serial port only with serial = "pty" in its config, as on Xen',
                'add serial = "pty" and create the domain again (its screen is on VNC: xl '
                "vncviewer DOMAIN)",
            )
        async for item in self.consoles.attach(domain):
            yield item

    async def domain_mem_set(self, dom: str, memkb: int) -> dict[str, object]:
        """xl mem-set: a domU's balloon target, or Domain-0's reservation (the host's).

        :raise InsufficientMemory: when the growth does not fit
        """
        name = _dom(dom)
        if _is_dom0(name):
            self.manager.host.memory.set_dom0(memkb)
            await self.manager.xs.write(memory_target_path(0), str(memkb))
            return {}
        await self.manager.mem_set(name, memkb)
        return {}

    async def domain_mem_max(self, dom: str, memkb: int) -> dict[str, object]:
        """xl mem-max: a domU's ceiling; Domain-0's is the host's memory."""
        name = _dom(dom)
        if _is_dom0(name):
            raise Unsupported(
                "xl mem-max on Domain-0",
                "Domain-0 is the host: its ceiling is the host's memory",
                "use xl mem-set 0 SIZE to move its reservation",
            )
        await self.manager.mem_max(name, memkb)
        return {}

    async def domain_block_list(self, dom: str) -> list[dict[str, object]]:
        """xl block-list: one domain's vbds (Domain-0 has none)."""
        if _is_dom0(_dom(dom)):
            return []
        return [dataclasses.asdict(row) for row in await self.manager.block_list(_dom(dom))]

    async def domain_block_attach(self, dom: str, disk: object) -> dict[str, object]:
        """xl block-attach: ``disk`` is libxl's JSON of the disk (as xl create -n shows it)."""
        if _is_dom0(_dom(dom)):
            raise _no_dom0_devices("attach a disk")
        device = struct_from_json(DeviceDisk, disk, source="domain.block_attach")
        prepared = await self.manager.block_attach(_dom(dom), device)
        return {"devid": prepared.number, "vdev": prepared.vdev}

    async def domain_block_detach(
        self, dom: str, disk: str, force: bool = False
    ) -> dict[str, object]:
        """xl block-detach: ``disk`` is a vdev (xvdb) or a vbd number."""
        if _is_dom0(_dom(dom)):
            raise _no_dom0_devices("detach a disk")
        await self.manager.block_detach(_dom(dom), str(disk), force=bool(force))
        return {}

    async def domain_cdrom_insert(self, dom: str, disk: object) -> dict[str, object]:
        """xl cd-insert and cd-eject: ``disk`` is libxl's JSON of the medium (an empty one
        ejects), its vdev the drive's."""
        if _is_dom0(_dom(dom)):
            raise _no_dom0_devices("change a cdrom")
        device = struct_from_json(DeviceDisk, disk, source="domain.cdrom_insert")
        prepared = await self.manager.cdrom_insert(_dom(dom), device)
        return {"devid": prepared.number, "vdev": prepared.vdev}

    async def domain_network_list(self, dom: str) -> list[dict[str, object]]:
        """xl network-list: one domain's vifs (Domain-0 has none)."""
        if _is_dom0(_dom(dom)):
            return []
        return [dataclasses.asdict(row) for row in await self.manager.network_list(_dom(dom))]

    async def domain_network_attach(self, dom: str, nic: object) -> dict[str, object]:
        """xl network-attach: ``nic`` is libxl's JSON of the NIC, xl.conf's defaults in."""
        if _is_dom0(_dom(dom)):
            raise _no_dom0_devices("attach a vif")
        device = struct_from_json(DeviceNic, nic, source="domain.network_attach")
        prepared = await self.manager.network_attach(_dom(dom), device)
        return {"devid": prepared.nic.devid, "mac": prepared.nic.mac, "tap": prepared.qemu.tap}

    async def domain_network_detach(self, dom: str, nic: str) -> dict[str, object]:
        """xl network-detach: ``nic`` is the vif's devid or its MAC."""
        if _is_dom0(_dom(dom)):
            raise _no_dom0_devices("detach a vif")
        await self.manager.network_detach(_dom(dom), str(nic))
        return {}

    async def domain_vcpu_list(self, dom: str | None = None) -> list[dict[str, object]]:
        """xl vcpu-list: Domain-0's vCPUs (the host CPUs) and every domU's, or one domain's."""
        out: list[dict[str, object]] = []
        if dom is None or _is_dom0(_dom(dom)):
            host = self.manager.host
            rows = await asyncio.to_thread(_dom0_vcpus, host.dom0_vcpus, host.dom0_cpus)
            out.append({"domid": 0, "name": DOM0_NAME, "vcpus": rows})
            if dom is not None:
                return out
        domains = self.manager.domains() if dom is None else [self.manager.lookup(_dom(dom))]
        for domain in domains:
            rows = await self.manager.vcpu_list(str(domain.domid))
            out.append({"domid": domain.domid, "name": domain.name, "vcpus": rows})
        return out

    async def domain_vcpu_pin(
        self, dom: str, vcpu: int | None, hard: list[int] | None, soft: list[int] | None
    ) -> dict[str, object]:
        """xl vcpu-pin: ``None`` for "all" vCPUs or for an affinity left as it is."""
        name = _dom(dom)
        if _is_dom0(name):
            raise Unsupported(
                "xl vcpu-pin on Domain-0",
                "Domain-0's vCPUs are the host's own CPUs, which cannot be pinned elsewhere",
                "pin guest domains; keep host CPUs for dom0 with dom0_max_vcpus=",
            )
        await self.manager.vcpu_pin(
            name,
            vcpu,
            None if hard is None else frozenset(hard),
            None if soft is None else frozenset(soft),
        )
        return {}

    async def domain_vcpu_set(self, dom: str, count: int) -> dict[str, object]:
        """xl vcpu-set: the domain's vCPUs 0..count-1 present; how many it has after."""
        name = _dom(dom)
        if _is_dom0(name):
            raise Unsupported(
                "xl vcpu-set on Domain-0",
                "Domain-0's vCPUs are the host's own CPUs, which xenlite does not take offline",
                "keep host CPUs for dom0 with dom0_max_vcpus= on the Xen command line",
            )
        return {"vcpus": await self.manager.vcpu_set(name, count)}

    async def domain_sched_get(
        self, scheduler: str, dom: str | None = None, pool: str | None = None
    ) -> dict[str, object]:
        """xl sched-credit/sched-credit2: without ``dom``, one block per cpupool that runs
        ``scheduler`` (only ``pool`` when given): its parameters and its domains' weights and
        caps, Domain-0 in Pool-0 with the default weight and no cap; no block for a pool of
        another scheduler (xl prints nothing for it). With ``dom``, that domain's row.

        :raise DomainError: when ``dom``'s pool runs another scheduler, or ``pool`` is unknown
        """
        manager = self.manager
        dom0 = {"domid": 0, "name": DOM0_NAME, "weight": XEN_WEIGHT_DEFAULT, "cap": 0}

        def row(domain: Domain) -> dict[str, object]:
            weight, cap = manager.sched_params(str(domain.domid), scheduler)
            return {"domid": domain.domid, "name": domain.name, "weight": weight, "cap": cap}

        if dom is not None:
            if _is_dom0(_dom(dom)):
                manager.check_scheduler(scheduler)
                return {"domains": [dom0]}
            return {"domains": [row(manager.lookup(_dom(dom)))]}
        wanted = manager.find_pool(pool) if pool is not None else None
        boot = parse_xen_cmdline(self.facts.cmdline)
        blocks: list[dict[str, object]] = []
        for one in manager.pools.pools():
            if one.sched != scheduler or (wanted is not None and one.poolid != wanted.poolid):
                continue
            rows = [dom0] if one.poolid == 0 else []
            rows += [row(d) for d in manager.pool_members(one)]
            # Xen's pool parameters as the command line gives them; CFS has no counterpart.
            blocks.append({"name": one.name, "tslice_ms": boot.sched_credit_tslice_ms,
                           "ratelimit_us": boot.sched_ratelimit_us, "migration_delay_us": 0,
                           "domains": rows})  # fmt: skip
        return {"pools": blocks}

    async def domain_sched_set(
        self, scheduler: str, dom: str, weight: int | None = None, cap: int | None = None
    ) -> dict[str, object]:
        """xl sched-credit -d DOM -w W -c C (and sched-credit2)."""
        name = _dom(dom)
        if _is_dom0(name):
            raise Unsupported(
                "scheduling parameters of Domain-0",
                "Domain-0 is the host: its processes are not in a xenlite cgroup",
                "set weights and caps of guest domains",
            )
        await self.manager.set_sched_params(name, scheduler, weight, cap)
        return {}

    # ------------------------------------------------------------------ cpupools

    def _pool(self, pool: Cpupool) -> dict[str, object]:
        return {"poolid": pool.poolid, "name": pool.name, "sched": pool.sched,
                "cpus": sorted(pool.cpus),
                "n_dom": self.manager.pool_domain_count(pool)}  # fmt: skip

    async def host_cpupool_list(self) -> list[dict[str, object]]:
        """xl cpupool-list: every pool by poolid, with its CPUs and domain count."""
        return [self._pool(pool) for pool in self.manager.pools.pools()]

    def _cpu_list(self, spec: object) -> list[int]:
        """A CPU list as xl's parse_cpurange reads it ("1,5,10-16,^13", "node:0"), against
        this host's CPUs and NUMA nodes.

        :raise ConfigError: for a malformed list, or a CPU or node the host does not have
        """
        if not isinstance(spec, str):
            raise _bad_param("cpus", spec, "a CPU list such as 1,5,10-16,^13")
        nr_cpus = self.facts.nr_cpus
        nodes = host_facts.node_cpus(frozenset(range(nr_cpus)))
        return sorted(parse_cpu_list(spec, nr_cpus, nr_nodes=max(nodes) + 1,
                                     node_cpus=lambda n: nodes.get(n, frozenset()),
                                     key="cpus", strict=True))  # fmt: skip

    async def host_cpupool_create(
        self,
        name: str,
        sched: str | None = None,
        cpus: str | None = None,
        dryrun: bool = False,
    ) -> dict[str, object]:
        """xl cpupool-create: a pool of free CPUs (with ``dryrun``, only checked)."""
        wanted = None if cpus is None else self._cpu_list(cpus)
        pool = await self.manager.cpupool_create(name, sched, wanted, dryrun=bool(dryrun))
        return {"poolid": pool.poolid, "name": pool.name, "sched": pool.sched,
                "cpus": sorted(pool.cpus)}  # fmt: skip

    async def host_cpupool_destroy(self, pool: str) -> dict[str, object]:
        await self.manager.cpupool_destroy(pool)
        return {}

    async def host_cpupool_rename(self, pool: str, name: str) -> dict[str, object]:
        await self.manager.cpupool_rename(pool, name)
        return {}

    async def host_cpupool_cpu_add(self, pool: str, cpus: str) -> dict[str, object]:
        """xl cpupool-cpu-add: the CPUs that could not be added, each with why."""
        refused = await self.manager.cpupool_cpu_add(pool, self._cpu_list(cpus))
        return {"refused": [{"cpu": r.cpu, "why": r.why} for r in refused]}

    async def host_cpupool_cpu_remove(self, pool: str, cpus: str) -> dict[str, object]:
        """xl cpupool-cpu-remove: the CPUs that could not be removed, each with why."""
        refused = await self.manager.cpupool_cpu_remove(pool, self._cpu_list(cpus))
        return {"refused": [{"cpu": r.cpu, "why": r.why} for r in refused]}

    async def host_cpupool_numa_split(self) -> list[dict[str, object]]:
        """xl cpupool-numa-split: one pool per NUMA node; the pools after it."""
        return [self._pool(pool) for pool in await self.manager.cpupool_numa_split()]

    async def domain_cpupool_migrate(self, dom: str, pool: str) -> dict[str, object]:
        """xl cpupool-migrate: a domU into another pool (Domain-0 stays in Pool-0)."""
        name = _dom(dom)
        if _is_dom0(name):
            raise DomainError(
                "Domain-0",
                "Domain-0 can't be moved to another cpu-pool (xl.1 cpupool-migrate)",
                "move guest domains; give Pool-0 fewer CPUs to keep them from dom0's",
            )
        await self.manager.cpupool_migrate(name, pool)
        return {}

    async def domain_sysrq(self, dom: str, key: str) -> dict[str, object]:
        """xl sysrq: Alt+SysRq+<key> on the guest's PS/2 keyboard.

        Xen writes the key to control/sysrq for the guest's PV driver; a QEMU guest has no
        such driver, but Linux takes SysRq from any keyboard (kernel.sysrq permitting).

        :raise Unsupported: for a key Linux has no SysRq function on
        """
        if len(key) != 1 or key not in _SYSRQ_KEYS:
            raise Unsupported(
                f"SysRq key {key!r}",
                "the guest's keyboard can send SysRq with 0-9 and a-z only",
                "use one of Linux's SysRq keys, e.g. xl sysrq DOMAIN h for the help",
            )
        await self.manager.send_keys(_dom(dom), ["alt", "sysrq", key], doing="send it a SysRq")
        return {}

    async def domain_trigger(self, dom: str, trigger: str, vcpu: int = 0) -> dict[str, object]:
        """xl trigger: nmi, reset, power and s3resume through QMP; init and sleep cannot be.

        :raise Unsupported: for init and sleep, and for an NMI aimed at a vCPU other than 0
            (QEMU delivers an NMI to every vCPU at once)
        :raise DomainError: for a trigger libxl does not know
        """
        try:
            kind = Trigger(trigger.lower())
        except ValueError:
            raise DomainError(
                f"trigger '{trigger}'",
                "is not a trigger",
                "use one of: " + ", ".join(t.value for t in Trigger),
            ) from None
        domain = self.manager.lookup(_dom(dom))
        why_not = _TRIGGER_UNSUPPORTED.get(kind)
        if why_not is not None:
            raise Unsupported(
                f"xl trigger {kind} on domain '{domain.name}'",
                f"{why_not}, so xenlite cannot send this trigger",
                "use nmi, reset, power or s3resume",
            )
        max_vcpus = domain.config.b_info.max_vcpus or 1
        if not 0 <= vcpu < max_vcpus:
            raise DomainError(
                f"vCPU {vcpu} of domain '{domain.name}'",
                f"does not exist (the domain has {max_vcpus} vCPUs, numbered from 0)",
                f"give a vCPU between 0 and {max_vcpus - 1}, or none",
            )
        if kind is Trigger.NMI and vcpu != 0:
            raise Unsupported(
                f"xl trigger nmi to vCPU {vcpu} of domain '{domain.name}'",
                "QEMU injects an NMI into every vCPU at once; it cannot aim at one",
                "leave out the vCPU (the NMI reaches vCPU 0 and the others)",
            )
        try:
            await self.manager.machine_command(
                str(domain.domid), _TRIGGER_QMP[kind], doing=f"send it the {kind} trigger"
            )
        except QemuCommandError as exc:
            if kind is not Trigger.S3RESUME:
                raise
            raise DomainError(
                f"xl trigger s3resume on domain '{domain.name}'",
                f"QEMU cannot wake it: {exc.desc}",
                "s3resume wakes a guest that has suspended itself to RAM "
                "(echo mem > /sys/power/state in the guest)",
            ) from exc
        return {}


def _is_dom0(dom: str) -> bool:
    """Whether ``dom`` (as ``_dom`` gives it) names Domain-0, the host itself."""
    return dom in ("0", DOM0_NAME)


def _dom(dom: object) -> str:
    """``dom`` as the CLI sends it: a name or a decimal domid (an int is accepted too)."""
    if isinstance(dom, bool) or not isinstance(dom, str | int):
        raise DomainError(
            f"domain {dom!r}", "is neither a name nor a domid", "give a name or a number"
        )
    return str(dom)


def _dom0_vcpus(count: int, pinned: tuple[int, ...]) -> list[VcpuInfo]:
    """Domain-0's vCPUs are the host CPUs: CPU time from /proc/stat, and running when the CPU
    did any work during a short look (20 ms). ``count`` of them (dom0_max_vcpus; 0: all),
    vCPU i on host CPU ``pinned[i]`` with that hard affinity under dom0_vcpus_pin."""
    first = host_facts.per_cpu_busy_ns()
    time.sleep(0.02)
    second = host_facts.per_cpu_busy_ns()
    everything = frozenset(first)
    cpus = list(pinned) or sorted(second)
    rows = []
    for vcpu, cpu in enumerate(cpus[: count or len(cpus)]):
        busy = second.get(cpu, 0)
        running = busy > first.get(cpu, busy)
        hard = frozenset({cpu}) if pinned else everything
        rows.append(VcpuInfo(vcpu, True, cpu, running, not running, busy, hard, everything))
    return rows


def _strings(value: object, name: str) -> list[str]:
    """A request's list-of-strings parameter. :raise RpcError: ``bad-params`` otherwise."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _bad_param(name, value, "a list of strings")
    return list(value)


def _bad_param(name: str, value: object, wanted: str) -> RpcError:
    return RpcError(
        f"request parameter {name}",
        f"is {value!r}, not {wanted}",
        VERSION_SKEW_FIX,
        code=RpcCode.BAD_PARAMS,
    )


def _no_dom0_devices(doing: str) -> DomainError:
    return DomainError(
        f"Domain-0 ({doing})",
        "Domain-0 is the host itself: its disks are the host's",
        "name a domU (xl list shows them)",
    )
