"""Real QEMU (TCG) launched detached by xenlite.qemu.process: failures leave nothing behind,
and a QEMU outlives the Python process that started it and is found again by its pid file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xenlite.base.errors import QemuLaunchError
from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import QemuHost, build_argv
from xenlite.qemu.binary import find_qemu, probe_binary
from xenlite.qemu.monitor import qmp_command
from xenlite.qemu.process import attach, launch
from xenlite.qemu.runpaths import RunPaths

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)",
    ),
]


def argv_for(tmp_path: Path, kernel: str, paths: RunPaths) -> list[str]:
    cfg_file = tmp_path / "guest.cfg"
    cfg_file.write_text(f'name = "p1"\nkernel = "{kernel}"\nmemory = 64\nextra = "console=ttyS0"\n')
    cfg = load_domain_config(os.fspath(cfg_file), host=HostFacts(nr_cpus=1)).config
    host = QemuHost(probe_binary(find_qemu()), Accel.TCG, nr_cpus=1)
    return build_argv(cfg, domid=1, host=host, paths=paths, paused=True)


def test_bad_kernel_path_gives_qemus_own_message_and_leaves_nothing(tmp_path: Path) -> None:
    paths = RunPaths.in_directory(tmp_path / "run", tmp_path / "log")
    argv = argv_for(tmp_path, "/nonexistent/vmlinuz", paths)
    with pytest.raises(QemuLaunchError) as info:
        launch(argv, paths, timeout=20)
    error = info.value
    assert error.exitcode == 1
    # QEMU 7.2: "qemu: could not open kernel file '/nonexistent/vmlinuz': No such file ..."
    assert "could not open kernel file '/nonexistent/vmlinuz'" in error.log_tail
    assert "could not open kernel file '/nonexistent/vmlinuz'" in str(error)
    for leftover in (paths.qmp_socket, paths.serial_socket, paths.pid_file):
        assert not leftover.exists(), leftover
    assert not any(
        os.fspath(paths.qmp_socket) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        for pid in os.listdir("/proc")
        if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists()
    )


LAUNCHER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from xenlite.qemu.process import launch
    from xenlite.qemu.runpaths import RunPaths
    argv, run_dir, log_dir = json.loads(sys.argv[1])
    process = launch(argv, RunPaths.in_directory(Path(run_dir), Path(log_dir)), timeout=30)
    print(process.pid)
    """
)


def test_qemu_outlives_its_launcher_and_is_attached_again(tmp_path: Path) -> None:
    paths = RunPaths.in_directory(tmp_path / "run", tmp_path / "log")
    # QEMU loads the kernel before it answers on QMP, so it must be a real one; the guest
    # never runs (-S).
    kit_kernel = _any_kernel()
    if kit_kernel is None:
        pytest.skip("no Linux kernel image on this host to boot (build the guest kit)")
    argv = argv_for(tmp_path, kit_kernel, paths)
    payload = json.dumps(
        [argv, os.fspath(paths.qmp_socket.parent), os.fspath(paths.log_file.parent)]
    )
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, payload], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.strip())
    process = attach(paths)
    assert process is not None, "the detached QEMU is gone after its launcher exited"
    try:
        assert process.pid == pid
        assert process.is_alive()
        assert os.getsid(pid) == pid
        assert qmp_command(paths.qmp_socket, "query-status", timeout=10)["status"] == "prelaunch"
    finally:
        process.kill(signal.SIGKILL)
    assert process.wait_exit(10) is None  # not our child: the status belongs to init
    assert not process.is_alive()
    process.remove_run_files()
    assert attach(paths) is None
    process.close()


def _any_kernel() -> str | None:
    try:
        from xenlite.guestkit.build import build_guest_kit

        return os.fspath(build_guest_kit().kernel)
    except Exception:  # noqa: BLE001 - any failure means "no kit here": the test skips
        return None
