"""Real guests (the guest kit under TCG) driven through xenlite.qemu: argv -> launch -> QMP.

The life cycle the domain engine relies on: paused start then cont, the ready marker on the
serial socket, vCPU thread ids, the balloon, the ACPI power button giving a SHUTDOWN event
with QEMU staying for the toolstack to decide, quit; and a guest panic seen through pvpanic
as GUEST_PANICKED, followed by an ELF core dump of the crashed guest.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path

import pytest

from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.config.domain.model import DomainConfig
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import (
    GUEST_MODULES,
    GuestKit,
    build_from_inputs,
    build_guest_kit,
    resolve_inputs,
)
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import QemuHost, balloon_target_bytes, build_argv
from xenlite.qemu.binary import find_qemu, probe_binary
from xenlite.qemu.monitor import Monitor
from xenlite.qemu.process import QemuProcess, launch
from xenlite.qemu.runpaths import RunPaths

pytestmark = pytest.mark.qemu
BOOT_TIMEOUT = 60.0
# The ISA pvpanic device is driven by Linux's pvpanic_mmio module (ACPI id QEMU0001).
PANIC_MODULES = ("pvpanic_mmio",)


def _require_tools() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    for program in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is missing: the guest kit is built from Debian packages")
    if not Path("/bin/busybox").is_file():
        pytest.skip("/bin/busybox is missing (apt-get install busybox-static)")


@pytest.fixture(scope="module")
def kit() -> GuestKit:
    _require_tools()
    return build_guest_kit()


@pytest.fixture(scope="module")
def panic_kit() -> GuestKit:
    """The kit with the pvpanic driver (a variant until GUEST_MODULES carries it)."""
    _require_tools()
    if all(module in GUEST_MODULES for module in PANIC_MODULES):
        return build_guest_kit()
    return build_from_inputs(resolve_inputs(modules=GUEST_MODULES + PANIC_MODULES))


def start(
    tmp_path: Path, kit: GuestKit, extra: str, *, memory: str
) -> tuple[QemuProcess, DomainConfig]:
    cfg_file = tmp_path / "guest.cfg"
    cfg_file.write_text(
        f'name = "guest"\nuuid = "6e3bd1b2-3c6d-4f7e-9b11-2f0d3b9ce042"\n'
        f'kernel = "{kit.kernel}"\nramdisk = "{kit.initrd}"\n'
        f'extra = "console=ttyS0 {extra}"\n{memory}\nvcpus = 2\n'
    )
    cfg = load_domain_config(os.fspath(cfg_file), host=HostFacts(nr_cpus=os.cpu_count() or 1))
    host = QemuHost(probe_binary(find_qemu()), Accel.TCG, nr_cpus=os.cpu_count() or 1)
    paths = RunPaths.in_directory(tmp_path / "run", tmp_path / "log", console_log=True)
    argv = build_argv(cfg.config, domid=9, host=host, paths=paths, paused=True)
    return launch(argv, paths, timeout=30), cfg.config


def drive_to_exit(
    process: QemuProcess, drive: Callable[[], Coroutine[object, object, None]]
) -> None:
    """Run ``drive()``, which ends by quitting QEMU: it must exit 0. Cleaned up in any case."""
    try:
        asyncio.run(drive())
        assert process.wait_exit(20) == 0
    finally:
        process.kill()
        process.wait_exit(10)
        process.remove_run_files()
        process.close()


async def read_until(reader: asyncio.StreamReader, marker: str, timeout: float) -> str:
    seen = b""
    async with asyncio.timeout(timeout):
        while marker.encode() not in seen:
            chunk = await reader.read(4096)
            if not chunk:
                raise AssertionError(f"serial closed before {marker!r}: {seen[-2000:]!r}")
            seen += chunk
    return seen.decode(errors="replace")


def test_paused_start_cont_ready_and_acpi_poweroff(tmp_path: Path, kit: GuestKit) -> None:
    process, cfg = start(tmp_path, kit, "", memory="memory = 192\nmaxmem = 256")
    paths = process.paths

    async def drive() -> None:
        async with Monitor("guest") as monitor:
            await monitor.connect(paths.qmp_socket, timeout=10)
            assert (await monitor.query_status()).status == "prelaunch"
            reader, writer = await asyncio.open_unix_connection(os.fspath(paths.serial_socket))
            try:
                threads = await monitor.query_cpus_fast()
                assert [t.cpu_index for t in threads] == [0, 1]
                tasks = set(os.listdir(f"/proc/{process.pid}/task"))
                assert {str(t.thread_id) for t in threads} <= tasks
                await monitor.cont()
                assert (await monitor.query_status()).running
                await read_until(reader, READY_MARKER, BOOT_TIMEOUT)
                # The guest starts at maxmem; the balloon takes it to memory=.
                target = balloon_target_bytes(cfg)
                assert target == 192 * 1024 * 1024
                await monitor.balloon(target)
                await wait_balloon(monitor, target)
                await monitor.system_powerdown()
                shutdown = await monitor.wait_event("SHUTDOWN", timeout=30)
                assert shutdown.data["reason"] == "guest-shutdown"
                # -action shutdown=pause: QEMU stays for the toolstack's on_poweroff.
                assert (await monitor.query_status()).status == "shutdown"
                assert process.is_alive()
                await monitor.quit()
            finally:
                writer.close()

    drive_to_exit(process, drive)
    assert paths.console_log is not None
    assert READY_MARKER in paths.console_log.read_text(errors="replace")


async def wait_balloon(monitor: Monitor, target: int) -> None:
    async with asyncio.timeout(30):
        while abs(await monitor.query_balloon() - target) > 4 * 1024 * 1024:
            await asyncio.sleep(0.2)


def test_guest_panic_is_seen_and_the_crashed_guest_dumped(
    tmp_path: Path, panic_kit: GuestKit
) -> None:
    process, _ = start(tmp_path, panic_kit, "xenlite.panic=1", memory="memory = 96")
    core = tmp_path / "guest.core"

    async def drive() -> None:
        async with Monitor("guest") as monitor:
            await monitor.connect(process.paths.qmp_socket, timeout=10)
            await monitor.cont()
            panicked = await monitor.wait_event("GUEST_PANICKED", timeout=BOOT_TIMEOUT)
            assert panicked.data["action"] == "pause"
            assert (await monitor.query_status()).status == "guest-panicked"
            await monitor.dump_guest_memory(core, timeout=60)
            await monitor.quit()

    drive_to_exit(process, drive)
    with core.open("rb") as stream:
        header = stream.read(20)
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[16:18], "little") == 4  # ET_CORE
    assert core.stat().st_size > 90 * 1024 * 1024
