"""The daemon over real sockets: framing errors, per-domain sockets, slow readers, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xenlite.xenstore.wire import Decoder, Op, Packet

OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_clients() -> object:
    yield
    while OPEN:
        OPEN.pop().close()


# -- a real daemon in a child process, and a minimal wire client ---------------------------

RUN = "import sys; from xenlite.xenstore.main import run; raise SystemExit(run(sys.argv[1:]))"


def start_daemon(sock: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    log = log or sock.with_suffix(".log")
    stderr = sock.with_suffix(".stderr")
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUN, "--no-fork", "--socket", str(sock), "--log-file",
             str(log), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(stderr.read_text())
        try:
            Client(sock).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise AssertionError("daemon did not start")


class Client:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        OPEN.append(self.sock)
        self.sock.connect(str(path))
        self.decoder = Decoder()
        self.queue: list[Packet] = []
        self.req = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, op: int, payload: bytes, tx: int = 0) -> int:
        self.req += 1
        self.sock.sendall(Packet(op, self.req, tx, payload).encode())
        return self.req

    def recv(self) -> Packet:
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the daemon")
            self.queue += self.decoder.feed(data)
        return self.queue.pop(0)

    def reply(self, op: int, payload: bytes, tx: int = 0) -> tuple[int, bytes]:
        req = self.send(op, payload, tx)
        while True:
            p = self.recv()
            if p.op != Op.WATCH_EVENT:
                assert p.req_id == req
                return p.op, p.payload


def test_oversized_frame_drops_only_that_client(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    proc = start_daemon(sock)
    try:
        good = Client(sock)
        bad = Client(sock)
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


def test_domain_socket_acts_as_that_domain(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    guest_sock = tmp_path / "dom5"
    proc = start_daemon(sock, "--domain-socket", f"5:{guest_sock}")
    try:
        dom0 = Client(sock)
        dom0.reply(Op.MKDIR, b"/local/domain/5\0")
        dom0.reply(Op.SET_PERMS, b"/local/domain/5\0n5\0")
        dom0.reply(Op.WRITE, b"/local/domain/5/name\0vm5")
        dom0.reply(Op.WRITE, b"/secret\0dom0 only")
        guest = Client(guest_sock)
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
        g7 = Client(seven)
        assert g7.reply(Op.GET_DOMAIN_PATH, b"7\0") == (Op.GET_DOMAIN_PATH, b"/local/domain/7\0")
        assert g7.reply(Op.WRITE, b"/local/domain/5/x\0no") == (Op.ERROR, b"EACCES\0")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert not sock.exists()
    assert not guest_sock.exists()


def test_a_client_that_never_reads_does_not_stall_others(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    guest_sock = tmp_path / "dom3"
    proc = start_daemon(sock, "--domain-socket", f"3:{guest_sock}", "-Q", "memory=20000")
    try:
        dom0 = Client(sock)
        dom0.reply(Op.SET_PERMS, b"/\0n0\0r3\0")
        lazy = Client(guest_sock)
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


def test_pid_file_and_clean_shutdown(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    pid_file = tmp_path / "pid"
    proc = start_daemon(sock, "--pid-file", str(pid_file))
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


def test_socket_in_use_is_refused(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    proc = start_daemon(sock)
    try:
        second = subprocess.run(
            [sys.executable, "-c", RUN, "--no-fork", "--socket", str(sock)],
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert second.returncode != 0
        assert b"another xenstored is already listening there" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_daemonises_and_returns_when_ready(tmp_path: Path) -> None:
    sock = tmp_path / "s"
    pid_file = tmp_path / "pid"
    done = subprocess.run(
        [sys.executable, "-c", RUN, "--socket", str(sock), "--pid-file", str(pid_file),
         "--log-file", str(tmp_path / "log")],
        capture_output=True,
        timeout=20,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(pid_file.read_text())
    try:
        c = Client(sock)
        assert c.reply(Op.WRITE, b"/d\0x") == (Op.WRITE, b"OK\0")
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sock.exists()
