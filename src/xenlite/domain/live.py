"""A live domain and the host it runs on: what the manager and its helpers share.

``Domain`` is a domU as the engine holds it (record, config, QEMU process and monitor, lock,
its share of memory); ``EngineHost`` the facts of the host (root, accelerator, CPUs, memory
book, scheduler and cgroups); ``DomainInfo`` one row of ``xl list``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import DomainError, QemuCommandError, QemuError
from xenlite.base.paths import under_root
from xenlite.config.domain.model import DomainConfig
from xenlite.domain.record import DomainRecord
from xenlite.domain.state import DomainState
from xenlite.host.cgroups import CgroupHost
from xenlite.host.memory import HostMemory
from xenlite.qemu.accel import Accel
from xenlite.qemu.monitor import Monitor
from xenlite.qemu.process import QemuProcess
from xenlite.qemu.runpaths import RunPaths

RUN_DIR = "/run/xenlite/qemu"
LOG_DIR = "/var/log/xenlite"
CONSOLE_LOG_DIR = "/var/log/xenlite/console"


@dataclass(frozen=True, slots=True)
class EngineHost:
    """What the engine knows about the host it runs domains on."""

    root: Path
    accel: Accel
    nr_cpus: int
    memory: HostMemory
    scheduler: str = "credit2"  # the host's Xen scheduler (sched=), credit or credit2
    cgroups: CgroupHost | None = None  # None: no cpu controller (``cgroups_missing`` says why)
    cgroups_missing: str = ""
    # dom0_vcpus_pin: the host CPUs dom0's vCPUs are pinned to, which domains without cpus=
    # leave to dom0 (the seeds: "make sure dom0 always gets enough CPU time to process I/O").
    dom0_cpus: tuple[int, ...] = ()
    dom0_vcpus: int = 0  # dom0's vCPU count (dom0_max_vcpus); 0: one per host CPU

    def run_root(self) -> Path:
        """Where every domain's run directory lives."""
        return under_root(RUN_DIR, self.root)

    def run_dir(self, domid: int) -> Path:
        return self.run_root() / str(domid)

    def qemu_log(self, name: str) -> Path:
        # Xen keeps the device model's output in /var/log/xen/qemu-dm-NAME.log.
        return under_root(LOG_DIR, self.root) / f"qemu-dm-{name}.log"

    def console_log(self, name: str) -> Path:
        # xenconsoled's log name (xenconsoled --log=guest): guest-NAME.log.
        return under_root(CONSOLE_LOG_DIR, self.root) / f"guest-{name}.log"


class Domain:
    """A domU the engine manages: its record, its config and, while it runs, its QEMU."""

    def __init__(self, record: DomainRecord, config: DomainConfig) -> None:
        self.record = record
        self.config = config
        self.process: QemuProcess | None = None
        self.monitor: Monitor | None = None
        self.supervisor: asyncio.Task[None] | None = None
        self.gone = asyncio.Event()
        self.lock = asyncio.Lock()
        self.tearing_down = False
        # xl destroy was asked for: an on_* restart under way must not bring it back.
        self.destroy_requested = False
        self.power_button: asyncio.Task[None] | None = None
        self.alloc_kib = 0  # what the host's memory book gave this domain (its target)
        self.balloon_kib: int | None = None  # the guest's size as its balloon last reported
        # device_del in flight: QEMU's DEVICE_DELETED for the id resolves the future.
        self.unplugs: dict[str, asyncio.Future[None]] = {}

    def expect_device_deleted(self, device: str) -> asyncio.Future[None]:
        """A future that QEMU's DEVICE_DELETED event for ``device`` resolves."""
        future = self.unplugs.get(device)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self.unplugs[device] = future
        return future

    def device_deleted(self, device: str) -> None:
        """QEMU reported ``device`` gone (the supervisor calls this)."""
        future = self.unplugs.pop(device, None)
        if future is not None and not future.done():
            future.set_result(None)

    @property
    def domid(self) -> int:
        return self.record.domid

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> DomainState:
        return self.record.state

    @property
    def paths(self) -> RunPaths:
        run_dir = Path(self.record.run_dir)
        return RunPaths(
            qmp_socket=run_dir / "qmp.sock",
            serial_socket=run_dir / "serial.sock",
            pid_file=run_dir / "qemu.pid",
            log_file=Path(self.record.log_file),
            console_log=Path(self.record.console_log),
        )

    def __repr__(self) -> str:
        return f"Domain({self.domid}, {self.name!r}, {self.state})"


def live_monitor(domain: Domain) -> Monitor:
    """The domain's connected QMP monitor.

    :raise QemuError: when its QEMU is not connected (it has exited)
    """
    if domain.monitor is None or not domain.monitor.connected:
        raise QemuError(
            f"domain '{domain.name}' ({domain.domid})",
            "its QEMU is not connected (it has exited)",
            "destroy the domain (xl destroy)",
        )
    return domain.monitor


PERIPHERALS = "/machine/peripheral"  # QOM: the devices given an id, by their id
UNPLUG_TIMEOUT = 10.0  # seconds the guest has to release a device (device_del)


async def qemu_devices(monitor: Monitor) -> set[str]:
    """The ids of the devices QEMU has (QOM's /machine/peripheral)."""
    children = await monitor.execute("qom-list", {"path": PERIPHERALS})
    return {str(c.get("name")) for c in children if isinstance(c, dict)}


async def unplug(domain: Domain, monitor: Monitor, device: str, *, what: str, fix: str) -> None:
    """``device_del`` of ``device`` and the wait for the guest to let it go (QEMU's
    DEVICE_DELETED event); a device QEMU does not have counts as gone.

    :raise DomainError: naming ``what``, with ``fix``, when the guest does not release it
        within UNPLUG_TIMEOUT
    """
    gone = domain.expect_device_deleted(device)
    try:
        await monitor.execute("device_del", {"id": device})
    except QemuCommandError as exc:
        if exc.error_class != "DeviceNotFound":
            raise
        domain.device_deleted(device)  # QEMU never had it, or let it go already
    try:
        await asyncio.wait_for(asyncio.shield(gone), UNPLUG_TIMEOUT)
    except TimeoutError:
        paused = " (the domain is paused)" if domain.state is DomainState.PAUSED else ""
        raise DomainError(
            what, f"the guest did not release it within {UNPLUG_TIMEOUT:g} s{paused}", fix
        ) from None


def cut_short_text(domain: Domain, what: str) -> str:
    """The start of the ``xl dmesg`` line about a device a takeover finds half attached."""
    return (
        f"Domain {domain.domid} ({domain.name}): {what} had no device in QEMU after a "
        "restart of xenlited (its attach or detach was cut short); "
    )
