"""Detached launch, re-attach and cleanup, with stand-ins for QEMU (a shell that fails, and a
small Python QMP greeter); the real QEMU runs in tests/integration/test_qemu_process.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from qmp_greeter import greeter_argv
from xenlite.base.errors import HostError, QemuError, QemuLaunchError
from xenlite.qemu.process import _option_parts, attach, launch, log_tail
from xenlite.qemu.runpaths import RunPaths


@pytest.fixture
def paths(tmp_path: Path) -> RunPaths:
    return RunPaths.in_directory(tmp_path / "run", tmp_path / "log")


def leftovers(paths: RunPaths) -> list[Path]:
    return [p for p in (paths.qmp_socket, paths.serial_socket, paths.pid_file) if p.exists()]


def test_a_failing_start_reports_its_own_words_and_leaves_nothing(paths: RunPaths) -> None:
    argv = ["/bin/sh", "-c", "echo \"qemu: could not load kernel '/nope'\" >&2; exit 1"]
    with pytest.raises(QemuLaunchError) as info:
        launch(argv, paths, timeout=10)
    error = info.value
    assert error.exitcode == 1
    assert "could not load kernel '/nope'" in error.log_tail
    assert "could not load kernel '/nope'" in str(error)
    assert error.argv == argv
    assert leftovers(paths) == []
    assert paths.log_file.exists()


def test_the_log_tail_is_this_launchs_only(paths: RunPaths) -> None:
    paths.log_file.parent.mkdir(parents=True)
    paths.log_file.write_text("old run: something unrelated\n")
    with pytest.raises(QemuLaunchError) as info:
        launch(["/bin/sh", "-c", "echo fresh >&2; exit 2"], paths, timeout=10)
    assert info.value.log_tail == "fresh"
    assert "old run" in log_tail(paths.log_file)


def test_greeting_makes_a_launch_and_attach_finds_it(paths: RunPaths) -> None:
    process = launch(greeter_argv(paths), paths, timeout=20)
    try:
        assert process.is_alive()
        assert paths.pid_file.read_text() == f"{process.pid}\n"
        assert os.getsid(process.pid) == process.pid  # its own session
        again = attach(paths)
        assert again is not None
        assert again.pid == process.pid
        assert not again.is_child
        again.close()
        with pytest.raises(QemuError, match="already running"):
            launch(greeter_argv(paths), paths, timeout=5)
        with pytest.raises(QemuError, match="still runs"):
            process.remove_run_files()
    finally:
        process.kill()
    assert process.wait_exit(10) == -signal.SIGKILL
    assert not process.is_alive()
    process.remove_run_files()
    assert leftovers(paths) == []
    assert attach(paths) is None
    process.close()


def test_attach_finds_a_qemu_whose_pid_file_was_never_written(paths: RunPaths) -> None:
    # The launcher died between starting QEMU and writing its pid file: the QMP socket on
    # the command line (this run directory's own) still finds it, and only it: /run/qmp.sock
    # is a tail of this socket's path, yet names another directory.
    other = RunPaths.in_directory(Path("/") / paths.qmp_socket.parent.name)
    process = launch(greeter_argv(paths), paths, timeout=20)
    try:
        paths.pid_file.unlink()
        found = attach(paths)
        assert found is not None
        assert found.pid == process.pid
        found.close()
        assert attach(other) is None
    finally:
        process.kill()
    process.wait_exit(10)
    assert attach(paths) is None
    process.close()


def test_no_greeting_in_time_kills_the_process(paths: RunPaths) -> None:
    with pytest.raises(QemuLaunchError, match="did not answer on QMP") as info:
        launch(["/bin/sh", "-c", "echo waiting; exec sleep 30"], paths, timeout=0.5)
    assert info.value.exitcode is None
    assert "waiting" in info.value.log_tail
    assert leftovers(paths) == []


def test_attach_never_trusts_a_pid_of_another_program(paths: RunPaths) -> None:
    paths.pid_file.parent.mkdir(parents=True)
    paths.pid_file.write_text(f"{os.getpid()}\n")
    assert attach(paths) is None
    paths.pid_file.write_text("not a pid\n")
    assert attach(paths) is None
    paths.pid_file.write_text("1\n")
    assert attach(paths) is None


def test_missing_binary_is_a_host_error(paths: RunPaths) -> None:
    with pytest.raises(HostError, match="cannot be started") as info:
        launch(["/nonexistent/qemu-system-x86_64"], paths, timeout=5)
    assert "qemu-system-x86" in (info.value.fix or "")


def test_option_parts_respect_escaped_commas() -> None:
    assert _option_parts("socket,id=q,path=/a,,b/q.sock,server=on") == [
        "socket",
        "id=q",
        "path=/a,,b/q.sock",
        "server=on",
    ]
