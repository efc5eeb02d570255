"""xl console, xl create -c, xl sysrq and xl trigger on real guest-kit domains (TCG).

Each test drives the real ``xl`` through a pipe or a real pseudo-terminal against a private
host (the ``live_host`` fixture of conftest.py): typed commands reach the guest's shell and
its answer comes back, Ctrl-] returns while the domain keeps running, the console log keeps
every byte, a second client is refused, SysRq h prints the kernel's SysRq help, an NMI is
seen by the kernel and the power trigger powers the guest off.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fdwait import read_until
from xenlite.guestkit.boot import READY_MARKER

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

XL = Path(sys.executable).with_name("xl")
BOOT_TIMEOUT = 60.0
ECHO_TIMEOUT = 30.0


def _log(host: Any, name: str) -> str:
    path = Path(host.root) / f"var/log/xenlite/console/guest-{name}.log"
    # Bytes as the guest sent them (read_text would turn its \r\n into \n).
    return path.read_bytes().decode(errors="replace") if path.exists() else ""


def _wait_log(host: Any, name: str, text: str, timeout: float = BOOT_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := _log(host, name)):
        assert time.monotonic() < deadline, f"{name}: no {text!r} in its console log:\n{log}"
        time.sleep(0.1)
    return log


def _read_until(fd: int, wanted: bytes, timeout: float = ECHO_TIMEOUT) -> bytes:
    return read_until(fd, wanted, timeout)


def _names(host: Any) -> list[str]:
    listed = host.xl("list")
    assert listed.returncode == 0, listed.stderr
    return [line.split()[0] for line in listed.stdout.splitlines()[1:]]


def _xl(host: Any, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(XL), *args], env=host.env, **kwargs)


@pytest.fixture(scope="module")
def guest(live_host: Any) -> Iterator[str]:
    """One running guest for the console tests, destroyed at the end."""
    name = "con1"
    created = live_host.xl("create", "-q", str(live_host.write_config(name, memory=128)))
    assert created.returncode == 0, created.stderr
    _wait_log(live_host, name, READY_MARKER)
    yield name
    if name in _names(live_host):
        live_host.xl("destroy", name)


def test_console_through_a_pipe(live_host: Any, guest: str) -> None:
    word = f"hello-{random.randrange(10**6, 10**7)}"
    with _xl(
        live_host,
        "console",
        guest,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            # The guest shell echoes the command, then prints the word alone on a line.
            proc.stdin.write(f"echo {word}\n".encode())
            proc.stdin.flush()
            _read_until(proc.stdout.fileno(), f"\n{word}\r\n".encode())
            proc.stdin.write(b"\x1d")
            proc.stdin.flush()
            assert proc.wait(10) == 0
            assert proc.stderr.read() == b""
        finally:
            proc.kill()
    assert guest in _names(live_host)  # detaching leaves the domain running
    assert f"echo {word}\r\n{word}\r\n" in _log(live_host, guest)


def test_console_on_a_terminal_and_a_second_client(live_host: Any, guest: str) -> None:
    word = f"pty-{random.randrange(10**6, 10**7)}"
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    proc = _xl(live_host, "console", guest, stdin=slave, stdout=slave, stderr=slave)
    try:
        # Raw mode: the Enter key is a carriage return and goes to the guest as such.
        os.write(master, f"echo {word}\r".encode())
        _read_until(master, f"\n{word}\r\n".encode())
        assert not termios.tcgetattr(slave)[3] & termios.ICANON

        second = live_host.xl("console", guest)
        assert second.returncode == 37
        assert second.stderr.startswith("xenconsole: Could not lock /var/lock/xenconsole.")

        os.write(master, b"\x1d")
        assert proc.wait(10) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
    assert guest in _names(live_host)
    assert word in _log(live_host, guest)


def test_sysrq_h_prints_the_sysrq_help(live_host: Any, guest: str) -> None:
    done = live_host.xl("sysrq", guest, "h")
    assert (done.returncode, done.stderr) == (0, "")
    log = _wait_log(live_host, guest, "sysrq: HELP : ", timeout=ECHO_TIMEOUT)
    assert "show-memory-usage(m)" in log


def test_trigger_nmi_reaches_the_kernel(live_host: Any, guest: str) -> None:
    done = live_host.xl("trigger", guest, "nmi")
    assert (done.returncode, done.stderr) == (0, "")
    _wait_log(live_host, guest, "NMI received for unknown reason", timeout=ECHO_TIMEOUT)
    assert guest in _names(live_host)
    refused = live_host.xl("trigger", guest, "init")
    assert refused.returncode == 1
    assert "QEMU" in refused.stderr
    assert "fix:" in refused.stderr


def test_create_c_shows_the_boot_from_its_first_line(live_host: Any) -> None:
    name = "con2"
    config = live_host.write_config(name, memory=128)
    master, slave = os.openpty()
    proc = _xl(live_host, "create", "-c", str(config), stdin=slave, stdout=slave, stderr=slave)
    try:
        seen = _read_until(master, READY_MARKER.encode(), timeout=BOOT_TIMEOUT)
        # Attached before the guest ran: the kernel's first line is on the console too.
        assert b"Linux version" in seen
        os.write(master, b"\x1d")
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
    assert name in _names(live_host)

    # The power trigger presses the ACPI button: the guest powers off, on_poweroff=destroy.
    done = live_host.xl("trigger", name, "power")
    assert (done.returncode, done.stderr) == (0, "")
    deadline = time.monotonic() + BOOT_TIMEOUT
    while name in _names(live_host):
        assert time.monotonic() < deadline, _log(live_host, name)
        time.sleep(0.2)
    assert "reboot: Power down" in _log(live_host, name)
