"""xl console, sysrq and trigger against a fake xenlited at the real seam.

The daemon is a double: a real ``RpcServer`` on a temporary socket whose
``domain.console_attach`` is the real ``ConsoleBroker`` over a stub domain, and whose serial
"QEMU" is a thread that echoes what it reads on a real unix socket (one client at a time, as
QEMU's chardev). So descriptor passing, the one-client rule, the relay, raw mode and the
escape character are all exercised for real; only the guest is missing (the integration
test has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fdwait import read_until
from rpc_harness import ServerThread
from xenlite.base.errors import DomainNotFound
from xenlite.cli import main as cli_main
from xenlite.cli.commands import console as console_cli
from xenlite.cli.commands.console import Detach, parse_escape, relay
from xenlite.daemon.consoles import ConsoleBroker
from xenlite.rpc.client import RpcClient

XL = Path(sys.executable).with_name("xl")
DEADLINE = 10.0


# --------------------------------------------------------------------------- escape


@pytest.mark.parametrize(
    ("text", "code"),
    [("^]", 0x1D), ("^a", 0x01), ("^A", 0x01), ("^[", 0x1B), ("q", ord("q")), ("~", 0x7E)],
)
def test_escape_is_read_as_xenconsole_reads_it(text: str, code: int) -> None:
    assert parse_escape(text) == code


@pytest.mark.parametrize("text", ["", "ab", "^^^", "^]]", "^\u00e9"])
def test_an_escape_of_another_shape_is_invalid(text: str) -> None:
    assert parse_escape(text) is None


# --------------------------------------------------------------------------- relay


def _read_until(fd: int, wanted: bytes, timeout: float = DEADLINE) -> bytes:
    return read_until(fd, wanted, timeout)


class RelayRun:
    """relay() in a thread between a socketpair (the console) and two pipes."""

    def __init__(self, in_fd: int | None = None, escape: int = 0x1D) -> None:
        self.guest, console = socket.socketpair()
        self.console = console
        if in_fd is None:
            self.in_read, self.in_write = os.pipe()
        else:
            self.in_read, self.in_write = in_fd, -1
        self.out_read, self.out_write = os.pipe()
        self.result: Future[Detach] = Future()
        self.thread = threading.Thread(target=self._run, args=(escape,), daemon=True)
        self.thread.start()

    def _run(self, escape: int) -> None:
        try:
            outcome = relay(self.console.fileno(), self.in_read, self.out_write, escape=escape)
            self.result.set_result(outcome)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.result.set_exception(exc)

    def close(self) -> None:
        for fd in (self.in_read, self.in_write, self.out_read, self.out_write):
            if fd >= 0:
                os.close(fd)
        self.guest.close()
        self.console.close()


@pytest.fixture
def run() -> Iterator[RelayRun]:
    relay_run = RelayRun()
    try:
        yield relay_run
    finally:
        relay_run.close()


def test_relay_copies_both_ways_and_detaches_on_ctrl_close_bracket(run: RelayRun) -> None:
    os.write(run.in_write, b"echo hi\n")
    assert _recv_until(run.guest, b"echo hi\n") == b"echo hi\n"
    run.guest.sendall(b"hi\r\nguest:/# ")
    assert _read_until(run.out_read, b"guest:/# ") == b"hi\r\nguest:/# "
    # What precedes the escape in the same read still reaches the guest; nothing after it.
    os.write(run.in_write, b"ls\x1dpwd\n")
    assert run.result.result(timeout=DEADLINE) is Detach.ESCAPE
    run.guest.settimeout(2)
    assert _recv_until(run.guest, b"ls") == b"ls"
    run.guest.setblocking(False)
    with pytest.raises(BlockingIOError):
        run.guest.recv(100)


def test_relay_ends_at_the_end_of_its_input(run: RelayRun) -> None:
    os.close(run.in_write)
    run.in_write = -1
    assert run.result.result(timeout=DEADLINE) is Detach.INPUT_CLOSED


def test_relay_ends_when_the_console_closes(run: RelayRun) -> None:
    run.guest.sendall(b"reboot: Power down\r\n")
    run.guest.close()
    assert run.result.result(timeout=DEADLINE) is Detach.CONSOLE_CLOSED
    assert _read_until(run.out_read, b"Power down") == b"reboot: Power down\r\n"


def test_relay_honours_another_escape_character() -> None:
    relay_run = RelayRun(escape=ord("q"))
    try:
        os.write(relay_run.in_write, b"\x1d")  # Ctrl-] is an ordinary key now
        assert _recv_until(relay_run.guest, b"\x1d") == b"\x1d"
        os.write(relay_run.in_write, b"q")
        assert relay_run.result.result(timeout=DEADLINE) is Detach.ESCAPE
    finally:
        relay_run.close()


def test_relay_puts_a_terminal_in_raw_mode_and_restores_it() -> None:
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON
    assert before[3] & termios.ECHO
    relay_run = RelayRun(in_fd=slave)
    try:
        os.write(master, b"x")  # raw: one key goes at once, without a newline
        assert _recv_until(relay_run.guest, b"x") == b"x"
        during = termios.tcgetattr(slave)
        assert not during[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
        os.write(master, b"\x03")  # Ctrl-C is a key for the guest, not a signal for xl
        assert _recv_until(relay_run.guest, b"\x03") == b"\x03"
        os.write(master, b"\x1d")
        assert relay_run.result.result(timeout=DEADLINE) is Detach.ESCAPE
        assert termios.tcgetattr(slave) == before
    finally:
        relay_run.in_read = -1
        relay_run.close()
        os.close(slave)
        os.close(master)


def _recv_until(sock: socket.socket, wanted: bytes) -> bytes:
    data = b""
    sock.settimeout(DEADLINE)
    while wanted not in data:
        chunk = sock.recv(4096)
        assert chunk, f"EOF before {wanted!r}; got {data!r}"
        data += chunk
    return data


# --------------------------------------------------------------------------- fake xenlited


class EchoSerial:
    """QEMU's serial chardev as the client sees it: a unix socket server that serves one
    connection at a time and (as a guest tty would) echoes what it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.fspath(path))
        self.listener.listen(4)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            # A client that leaves mid-write is an ordinary end of its session.
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"guest:/# ")
                while data := conn.recv(4096):
                    self.received += data
                    conn.sendall(data.replace(b"\n", b"\r\n"))

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@dataclass
class _Paths:
    serial_socket: Path
    console_log: Path


@dataclass
class _Record:
    console_log: str


@dataclass
class StubDomain:
    """What ConsoleBroker reads of a domain."""

    domid: int
    name: str
    serial: Path
    log: Path
    process: object = True
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def paths(self) -> _Paths:
        return _Paths(self.serial, self.log)

    @property
    def record(self) -> _Record:
        return _Record(os.fspath(self.log))


class FakeDaemon:
    def __init__(self, tmp: Path) -> None:
        self.serial = EchoSerial(tmp / "serial.sock")
        self.domain = StubDomain(4, "web01", tmp / "serial.sock", tmp / "guest-web01.log")
        self.broker = ConsoleBroker()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def handlers(self) -> dict[str, Any]:
        async def domain_list() -> list[dict[str, Any]]:
            return [_info(0, "Domain-0"), _info(self.domain.domid, self.domain.name)]

        async def console_attach(dom: str, console_type: str = "serial", num: int = 0) -> Any:
            self.calls.append(("domain.console_attach", {"dom": dom, "console_type": console_type}))
            if dom != str(self.domain.domid):
                raise DomainNotFound(f"domain {dom}", "no such domain", "xl list")
            async for item in self.broker.attach(self.domain):  # type: ignore[arg-type]
                yield item

        async def sysrq(dom: str, key: str) -> dict[str, Any]:
            self.calls.append(("domain.sysrq", {"dom": dom, "key": key}))
            return {}

        async def trigger(dom: str, trigger: str, vcpu: int = 0) -> dict[str, Any]:
            self.calls.append(("domain.trigger", {"dom": dom, "trigger": trigger, "vcpu": vcpu}))
            return {}

        async def create(
            config: dict[str, Any],
            config_text: str,
            source: str,
            paused: bool,
            parser_warnings: list[str],
        ) -> dict[str, Any]:
            self.calls.append(("domain.create", {"paused": paused}))
            return {"domid": self.domain.domid, "name": self.domain.name}

        async def unpause(dom: str) -> dict[str, Any]:
            self.calls.append(("domain.unpause", {"dom": dom}))
            return {}

        return {
            "domain.list": domain_list,
            "domain.console_attach": console_attach,
            "domain.sysrq": sysrq,
            "domain.trigger": trigger,
            "domain.unpause": unpause,
            "domain.create": create,
        }


def _info(domid: int, name: str) -> dict[str, Any]:
    return {
        "domid": domid,
        "name": name,
        "uuid": f"00000000-0000-0000-0000-00000000000{domid}",
        "current_memkb": 131072,
        "outstanding_memkb": 0,
        "max_memkb": 131072,
        "vcpu_online": 1,
        "max_vcpus": 1,
        "running": False,
        "blocked": True,
        "paused": False,
        "shutdown": False,
        "dying": False,
        "shutdown_reason": None,
        "cpupool": "Pool-0",
        "cpu_time_ns": 0,
        "start_time": 1_700_000_000.0,
        "config": None,
    }


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    with tempfile.TemporaryDirectory(prefix="xlc-", dir="/tmp") as tmp:
        fake = FakeDaemon(Path(tmp))
        path = Path(tmp) / "xenlited.sock"
        thread = ServerThread(path, fake.handlers())
        monkeypatch.setenv("XENLITED_SOCKET", str(path))
        try:
            yield fake
        finally:
            thread.close()
            fake.serial.close()


def xl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli_main.main(["xl", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _xl_process(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    if not XL.exists():
        pytest.skip(f"the xl console script is not installed at {XL}")
    return subprocess.Popen([str(XL), *args], env=dict(os.environ), **kwargs)


# --------------------------------------------------------------------------- xl console


def test_console_through_a_pipe_relays_and_detaches(daemon: FakeDaemon) -> None:
    with _xl_process(
        "console", "web01", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            proc.stdin.write(b"echo hello-31337\n")
            proc.stdin.flush()
            seen = _read_until(proc.stdout.fileno(), b"hello-31337\r\n")
            assert seen.startswith(b"guest:/# ")
            proc.stdin.write(b"\x1d")
            proc.stdin.flush()
            assert proc.wait(DEADLINE) == 0
            assert proc.stderr.read() == b""
        finally:
            proc.kill()
    assert bytes(daemon.serial.received) == b"echo hello-31337\n"
    assert daemon.calls == [("domain.console_attach", {"dom": "4", "console_type": "serial"})]


def test_console_on_a_terminal_is_raw_and_restored(daemon: FakeDaemon) -> None:
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    proc = _xl_process("console", "-t", "pv", "4", stdin=slave, stdout=slave, stderr=slave)
    try:
        _read_until(master, b"guest:/# ")
        assert not termios.tcgetattr(slave)[3] & termios.ICANON
        os.write(master, b"uname\r")
        _read_until(master, b"uname\r")
        os.write(master, b"\x1d")
        assert proc.wait(DEADLINE) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_a_second_console_gets_xenconsoles_lock_error_until_the_first_leaves(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    with _xl_process(
        "console", "web01", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as first:
        assert first.stdin is not None
        assert first.stdout is not None
        try:
            _read_until(first.stdout.fileno(), b"guest:/# ")
            status, _, err = xl(capsys, "console", "web01")
            assert status == 37  # xenconsole's err(ENOLCK, ...)
            assert err.startswith(
                "xenconsole: Could not lock /var/lock/xenconsole.4: "
                "Resource temporarily unavailable\n"
            )
            assert "guest-web01.log" in err
            first.stdin.write(b"\x1d")
            first.stdin.flush()
            assert first.wait(DEADLINE) == 0
        finally:
            first.kill()
    # The first client is gone: the console is free again (xenlited saw it hang up).
    deadline = time.monotonic() + DEADLINE
    while daemon.broker.attached(4):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    os.write(in_write, b"again\n\x1d")
    with RpcClient() as client:
        outcome = console_cli.attach_console(client, 4, in_fd=in_read, out_fd=out_write)
    for fd in (in_read, in_write, out_write):
        os.close(fd)
    assert outcome is Detach.ESCAPE
    os.close(out_read)


def test_console_options_are_checked_as_xl_checks_them(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = xl(capsys, "console", "-t", "hvc", "web01")
    assert (status, err) == (1, "console type supported are: pv, serial, vuart\n")
    status, _, err = xl(capsys, "console", "-t", "vuart", "web01")
    assert status == 1
    assert "vuart" in err
    assert "fix:" in err
    status, _, err = xl(capsys, "console", "-n", "1", "web01")
    assert status == 1
    assert "one console" in err
    status, _, err = xl(capsys, "console", "-e", "abc", "web01")
    assert status == 22
    assert err.startswith("Invalid escape argument\n")
    status, _, err = xl(capsys, "console", "nosuch")
    assert status == 1
    assert "nosuch is an invalid domain identifier" in err
    assert daemon.calls == []
    status, _, err = xl(capsys, "console")
    assert status == 1
    assert "requires a domain" in err


def test_console_help_says_pv_is_the_serial_port(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = xl(capsys, "help", "console")
    assert status == 0
    assert out.startswith("Usage: xl [-v] console [options] <Domain>\n")
    assert "PV console is its serial port" in out


# --------------------------------------------------------------------------- xl create -c


@pytest.mark.parametrize("paused", [False, True])
def test_create_c_attaches_before_the_guest_runs(
    daemon: FakeDaemon, tmp_path: Path, paused: bool
) -> None:
    config = tmp_path / "web01.cfg"
    config.write_text('name = "web01"\ntype = "pvh"\nkernel = "/boot/vmlinuz"\nmemory = 128\n')
    args = ["create", "-q", "-c", *(["-p"] if paused else []), str(config)]
    with _xl_process(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            _read_until(proc.stdout.fileno(), b"guest:/# ")
            proc.stdin.write(b"\x1d")
            proc.stdin.flush()
            assert proc.wait(DEADLINE) == 0, proc.stderr.read()
        finally:
            proc.kill()
    # Created paused, console held, then (without -p) let run: nothing is missed on it.
    expected = [
        ("domain.create", {"paused": True}),
        ("domain.console_attach", {"dom": "4", "console_type": "serial"}),
    ]
    if not paused:
        expected.append(("domain.unpause", {"dom": "4"}))
    assert daemon.calls == expected


# --------------------------------------------------------------------------- sysrq, trigger


def test_sysrq_sends_one_letter(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert xl(capsys, "sysrq", "web01", "h") == (0, "", "")
    assert daemon.calls == [("domain.sysrq", {"dom": "4", "key": "h"})]
    status, out, err = xl(capsys, "sysrq", "web01", "hh")
    assert status == 1
    assert err == "Invalid sysrq.\n\n"
    assert out.startswith("Usage: xl [-vf] sysrq <Domain> <letter>\n")
    assert len(daemon.calls) == 1


def test_trigger_names_and_vcpu(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert xl(capsys, "trigger", "web01", "nmi") == (0, "", "")
    assert xl(capsys, "trigger", "4", "POWER", "0") == (0, "", "")
    status, _, err = xl(capsys, "trigger", "web01", "reset", "first")
    assert (status, err) == (0, "Invalid vcpuid, using default vcpuid=0.\n\n")
    status, _, err = xl(capsys, "trigger", "web01", "kick")
    assert status == 1
    assert err.startswith('Invalid trigger "kick"\n')
    assert daemon.calls == [
        ("domain.trigger", {"dom": "4", "trigger": "nmi", "vcpu": 0}),
        ("domain.trigger", {"dom": "4", "trigger": "power", "vcpu": 0}),
        ("domain.trigger", {"dom": "4", "trigger": "reset", "vcpu": 0}),
    ]


def test_the_verbs_are_no_longer_listed_as_missing() -> None:
    from xenlite.cli.table import BY_NAME, XL_VERBS_NOT_YET

    for verb in ("console", "sysrq", "trigger"):
        assert verb in BY_NAME
        assert verb not in XL_VERBS_NOT_YET
