"""The blocking client: what xl says when xenlited is away, slow, older or restarted."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rpc_harness import ServerThread
from xenlite.base.errors import DaemonNotRunning, RpcError
from xenlite.rpc.client import START_FIX, RpcClient
from xenlite.rpc.protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    JsonObject,
    RpcCode,
    encode_frame,
    error_reply_to_wire,
    version_mismatch,
)

Serve = Callable[..., ServerThread]


async def add(a: int, b: int = 0) -> int:
    return a + b


def test_importing_the_client_does_not_load_asyncio() -> None:
    code = (
        "import sys, xenlite.rpc.client\n"
        "print(','.join(n for n in ('asyncio', 'xenlite.rpc.server') if n in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert out == "", f"xenlite.rpc.client loads {out}"


def test_default_path_follows_the_host_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XENLITED_SOCKET", raising=False)
    monkeypatch.setenv("XENLITE_ROOT", os.fspath(tmp_path))
    assert RpcClient().path == tmp_path / "run/xenlite/xenlited.sock"
    monkeypatch.setenv("XENLITED_SOCKET", "/elsewhere/x.sock")
    assert RpcClient().path == Path("/elsewhere/x.sock")


def test_a_missing_socket_means_the_daemon_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "run" / "xenlite" / "xenlited.sock"
    with pytest.raises(DaemonNotRunning) as excinfo:
        RpcClient(path).call("domain.list")
    err = excinfo.value
    assert str(err) == f"xenlited socket {path}: it does not exist: xenlited is not running"
    assert err.fix == START_FIX == "start the host services: xenlite start"


def test_a_stale_socket_means_the_daemon_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "xenlited.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(path))
    dead.close()
    with pytest.raises(DaemonNotRunning) as excinfo:
        RpcClient(path).call("domain.list")
    assert "nothing listens on it" in excinfo.value.cause
    assert excinfo.value.fix == START_FIX


def test_a_non_root_user_is_told_the_socket_is_root_only(serve: Serve, sock_path: Path) -> None:
    serve({"add": add})
    if os.geteuid() != 0:
        os.chmod(sock_path, 0)  # as a user, this is what a root-owned 0600 socket looks like
        with pytest.raises(RpcError) as excinfo:
            RpcClient(sock_path).call("add", a=1)
        assert excinfo.value.code == RpcCode.PERMISSION_DENIED
        assert "root-only" in excinfo.value.cause
        return
    # As root, try from a child that has become nobody.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        report = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            RpcClient(sock_path, timeout=5).call("add", a=1)
        except RpcError as err:
            report = f"{err.code}|{err.cause}|{err.fix}"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails
            report = repr(exc)
        os.write(write_end, report.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    os.waitpid(pid, 0)
    code, cause, fix = report.split("|")
    assert code == RpcCode.PERMISSION_DENIED
    assert cause == "permission denied: the socket is root-only"
    assert fix == "run xl as root (for example with sudo)"


def test_a_slow_answer_times_out_and_the_client_recovers(serve: Serve, sock_path: Path) -> None:
    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "late"

    serve({"slow": slow, "add": add})
    with RpcClient(sock_path, timeout=0.2) as client:
        with pytest.raises(RpcError) as excinfo:
            client.call("slow")
        assert excinfo.value.code == RpcCode.TIMEOUT
        assert "0.2 s" in excinfo.value.cause
        assert client.call("add", a=5) == 5  # a fresh connection, not the late answer


def test_a_restarted_daemon_is_reached_on_the_next_call(serve: Serve, sock_path: Path) -> None:
    first = serve({"add": add})
    client = RpcClient(sock_path, timeout=5)
    assert client.call("add", a=1) == 1
    first.close()
    serve({"add": add})
    assert client.call("add", a=2) == 2
    client.close()


def test_a_stopped_daemon_is_reported_as_not_running(serve: Serve, sock_path: Path) -> None:
    server = serve({"add": add})
    client = RpcClient(sock_path, timeout=5)
    assert client.call("add", a=1) == 1
    server.close()
    with pytest.raises(DaemonNotRunning):
        client.call("add", a=2)


def test_a_call_during_an_open_stream_is_a_bug(serve: Serve, sock_path: Path) -> None:
    from xenlite.rpc.protocol import Event

    async def ticks() -> object:
        yield Event("tick")

    serve({"ticks": ticks, "add": add})
    with RpcClient(sock_path, timeout=5) as client:
        stream = client.stream("ticks")
        with pytest.raises(RuntimeError, match="stream"):
            client.call("add", a=1)
        assert [e.name for e in stream] == ["tick"]
        assert client.call("add", a=1) == 1


# --------------------------------------------------------------------------- fake daemons


def _listen(
    path: Path, serve: Callable[[socket.socket], None], clients: int = 1
) -> threading.Thread:
    """A server thread: ``serve(conn)`` for each of ``clients`` connections, then it hangs up."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(path))
    listener.listen(clients)

    def run() -> None:
        with listener:
            for _ in range(clients):
                conn, _ = listener.accept()
                with conn:
                    serve(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_hello(conn: socket.socket) -> JsonObject:
    decoder = FrameDecoder()
    frames: list[JsonObject] = []
    while not frames:
        frames = decoder.feed(conn.recv(4096))
    return frames[0]


def _fake_daemon(path: Path, answer: Callable[[JsonObject], JsonObject]) -> threading.Thread:
    """A one-connection server that answers the hello with ``answer(hello)`` and hangs up."""
    return _listen(path, lambda conn: conn.sendall(encode_frame(answer(_read_hello(conn)))))


def test_an_older_daemon_is_named_in_the_version_error(tmp_path: Path) -> None:
    path = tmp_path / "old.sock"
    thread = _fake_daemon(
        path, lambda hello: {"id": hello["id"], "result": {"protocol": 0, "server": "xenlited"}}
    )
    with pytest.raises(RpcError) as excinfo:
        RpcClient(path, timeout=5, client="xl").call("domain.list")
    thread.join(5)
    err = excinfo.value
    assert err.code == RpcCode.VERSION_MISMATCH
    assert err.cause == (
        f"xl speaks protocol {PROTOCOL_VERSION}, xenlited speaks protocol 0 (xenlited is older)"
    )
    assert err.fix is not None
    assert "xenlite stop; xenlite start" in err.fix


def test_the_daemons_refusal_of_our_version_reaches_the_user(tmp_path: Path) -> None:
    path = tmp_path / "new.sock"
    refusal = version_mismatch("xl", PROTOCOL_VERSION, "xenlited", PROTOCOL_VERSION + 1)
    thread = _fake_daemon(path, lambda hello: error_reply_to_wire(hello["id"], refusal))  # type: ignore[arg-type]
    with pytest.raises(RpcError) as excinfo:
        RpcClient(path, timeout=5).connect()
    thread.join(5)
    assert excinfo.value.code == RpcCode.VERSION_MISMATCH
    assert str(excinfo.value) == str(refusal)


def test_a_daemon_that_hangs_up_mid_call_is_a_lost_connection(tmp_path: Path) -> None:
    path = tmp_path / "crash.sock"

    def serve(conn: socket.socket) -> None:
        hello = _read_hello(conn)
        answer = {"protocol": PROTOCOL_VERSION, "server": "xenlited"}
        conn.sendall(encode_frame({"id": hello["id"], "result": answer}))
        conn.recv(4096)  # the request; then "crash"

    thread = _listen(path, serve)
    with pytest.raises(RpcError) as excinfo:
        RpcClient(path, timeout=5).call("domain.create")
    thread.join(5)
    assert excinfo.value.code == RpcCode.CONNECTION_LOST
    assert "during domain.create" in excinfo.value.cause
    assert excinfo.value.fix is not None
    assert START_FIX in excinfo.value.fix


def test_a_refusal_reaches_the_user_whatever_the_timing(tmp_path: Path) -> None:
    # The daemon may hang up before or after our hello leaves: either way its reason shows.
    path = tmp_path / "busy.sock"
    busy = RpcError("xenlited", "xenlited already serves 1 clients", "retry", code=RpcCode.BUSY)
    rounds = 20
    thread = _listen(
        path, lambda conn: conn.sendall(encode_frame(error_reply_to_wire(None, busy))), rounds
    )
    for _ in range(rounds):
        with pytest.raises(RpcError) as excinfo:
            RpcClient(path, timeout=5).connect()
        assert excinfo.value.code == RpcCode.BUSY
        assert str(excinfo.value) == str(busy)
    thread.join(5)
