"""The daemon over real sockets: framing errors, per-domain sockets, slow readers, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xenlite.xenstore.wire import Op

# The fixtures of tests/conftest.py: a daemon in a child process and raw wire clients.
StartXenstored = Callable[..., subprocess.Popen[bytes]]
XsClient = Callable[[Path], Any]


def test_oversized_frame_drops_only_that_client(
    tmp_path: Path, start_xenstored: StartXenstored, xs_client: XsClient
) -> None:
    sock = tmp_path / "s"
    proc = start_xenstored(sock)
    try:
        good = xs_client(sock)
        bad = xs_client(sock)
        bad.sock.sendall(struct.pack("<IIII", Op.WRITE, 1, 0, 5000) + b"x" * 100)
        assert bad.sock.recv(100) == b""  # disconnected, no reply
        assert good.reply(Op.WRITE, b"/still\0alive") == (Op.WRITE, b"OK\0")
        assert good.reply(Op.READ, b"/still\0") == (Op.READ, b"alive")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    log = (tmp_path / "s.log").read_text()
    assert "dropping connection" in log
    assert "5000" in log


def test_domain_socket_acts_as_that_domain(
    tmp_path: Path, start_xenstored: StartXenstored, xs_client: XsClient
) -> None:
    sock = tmp_path / "s"
    guest_sock = tmp_path / "dom5"
    proc = start_xenstored(sock, "--domain-socket", f"5:{guest_sock}")
    try:
        dom0 = xs_client(sock)
        dom0.reply(Op.MKDIR, b"/local/domain/5\0")
        dom0.reply(Op.SET_PERMS, b"/local/domain/5\0n5\0")
        dom0.reply(Op.WRITE, b"/local/domain/5/name\0vm5")
        dom0.reply(Op.WRITE, b"/secret\0dom0 only")
        guest = xs_client(guest_sock)
        assert guest.reply(Op.READ, b"name\0") == (Op.READ, b"vm5")  # relative to its home
        assert guest.reply(Op.READ, b"/secret\0") == (Op.ERROR, b"EACCES\0")
        assert guest.reply(Op.INTRODUCE, b"6\0001\0001\0") == (Op.ERROR, b"EACCES\0")
        # The toolstack can ask for another domain's socket at run time.
        seven = tmp_path / "dom7"
        assert dom0.reply(Op.CONTROL, b"domain-socket\0007\0" + bytes(seven) + b"\0") == (
            Op.CONTROL,
            b"OK\0",
        )
        deadline = time.monotonic() + 5
        while not seven.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        g7 = xs_client(seven)
        assert g7.reply(Op.GET_DOMAIN_PATH, b"7\0") == (Op.GET_DOMAIN_PATH, b"/local/domain/7\0")
        assert g7.reply(Op.WRITE, b"/local/domain/5/x\0no") == (Op.ERROR, b"EACCES\0")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert not sock.exists()
    assert not guest_sock.exists()


def test_a_client_that_never_reads_does_not_stall_others(
    tmp_path: Path, start_xenstored: StartXenstored, xs_client: XsClient
) -> None:
    sock = tmp_path / "s"
    guest_sock = tmp_path / "dom3"
    proc = start_xenstored(sock, "--domain-socket", f"3:{guest_sock}", "-Q", "memory=20000")
    try:
        dom0 = xs_client(sock)
        dom0.reply(Op.SET_PERMS, b"/\0n0\0r3\0")
        lazy = xs_client(guest_sock)
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.send(Op.WATCH, b"/\0tok\0")  # then never read again
        value = b"v" * 2000
        start = time.monotonic()
        for i in range(3000):
            assert dom0.reply(Op.WRITE, b"/flood/n%d\0" % (i % 50) + value)[0] == Op.WRITE
        assert time.monotonic() - start < 60
        assert dom0.reply(Op.READ, b"/flood/n1\0") == (Op.READ, value)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert "dropped" in (tmp_path / "s.log").read_text()


def test_pid_file_and_clean_shutdown(tmp_path: Path, start_xenstored: StartXenstored) -> None:
    sock = tmp_path / "s"
    pid_file = tmp_path / "pid"
    proc = start_xenstored(sock, "--pid-file", str(pid_file))
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert int(pid_file.read_text()) == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not sock.exists()
    assert not pid_file.exists()


def test_socket_in_use_is_refused(
    tmp_path: Path, start_xenstored: StartXenstored, xenstored_argv: list[str]
) -> None:
    sock = tmp_path / "s"
    proc = start_xenstored(sock)
    try:
        second = subprocess.run(
            [*xenstored_argv, "--no-fork", "--socket", str(sock)],
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert second.returncode != 0
        assert b"another xenstored is already listening there" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_daemonises_and_returns_when_ready(
    tmp_path: Path, xs_client: XsClient, xenstored_argv: list[str]
) -> None:
    sock = tmp_path / "s"
    pid_file = tmp_path / "pid"
    done = subprocess.run(
        [*xenstored_argv, "--socket", str(sock), "--pid-file", str(pid_file),
         "--log-file", str(tmp_path / "log")],
        capture_output=True,
        timeout=20,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(pid_file.read_text())
    try:
        c = xs_client(sock)
        assert c.reply(Op.WRITE, b"/d\0x") == (Op.WRITE, b"OK\0")
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sock.exists()
