"""RpcServer with the real blocking client (and raw sockets where a client must misbehave)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from rpc_harness import ServerThread
from xenlite.base.errors import CommandFailed, ConfigError, RpcError, XenStoreError
from xenlite.rpc.client import RpcClient
from xenlite.rpc.protocol import (
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Event,
    FrameDecoder,
    JsonObject,
    Reply,
    RpcCode,
    encode_frame,
    error_from_wire,
    hello_params,
)

Serve = Callable[..., ServerThread]


async def echo(**params: object) -> object:
    return params


async def add(a: int, b: int = 0) -> int:
    return a + b


@dataclasses.dataclass(frozen=True, slots=True)
class _Dom:
    name: str
    domid: int


async def domains() -> list[_Dom]:
    return [_Dom("Domain-0", 0), _Dom("web01", 3)]


async def config_error() -> None:
    raise ConfigError("unknown key 'brige'", path="web01.cfg", line=12, col=8, key="vif")


async def command_failed() -> None:
    raise CommandFailed(["qemu-img", "create"], 1, "qemu-img: no space\n", fix="free space")


async def bug() -> None:
    raise KeyError("oops")


async def unserialisable() -> object:
    return object()


async def progress(steps: int) -> AsyncIterator[Event | Reply]:
    for i in range(steps):
        yield Event("progress", {"step": i})
    yield Reply({"domid": 5})


async def plain_stream() -> AsyncIterator[Event]:
    yield Event("line", "hello")


async def failing_stream() -> AsyncIterator[Event]:
    yield Event("line", "first")
    raise XenStoreError("/local/domain/9", "ENOENT", fix="is domain 9 running?")


BASIC = {
    "echo": echo,
    "add": add,
    "domains": domains,
    "config_error": config_error,
    "command_failed": command_failed,
    "bug": bug,
    "unserialisable": unserialisable,
    "progress": progress,
    "plain_stream": plain_stream,
    "failing_stream": failing_stream,
}


def raw_connect(path: Path, *, hello: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(os.fspath(path))
    if hello:
        sock.sendall(encode_frame({"id": 0, "method": "rpc.hello", "params": hello_params("t")}))
        answer = read_frames(sock, 1)[0]["result"]
        assert isinstance(answer, dict)
        assert answer["protocol"] == PROTOCOL_VERSION
    return sock


def read_frames(sock: socket.socket, count: int) -> list[JsonObject]:
    decoder = FrameDecoder()
    frames: list[JsonObject] = []
    while len(frames) < count:
        data = sock.recv(65536)
        assert data, f"connection closed after {len(frames)} of {count} frames"
        frames.extend(decoder.feed(data))
    return frames


def read_until_closed(sock: socket.socket) -> list[JsonObject]:
    decoder = FrameDecoder()
    frames: list[JsonObject] = []
    while data := sock.recv(65536):
        frames.extend(decoder.feed(data))
    return frames


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# --------------------------------------------------------------------------- the socket


def test_socket_is_root_only_and_appears_under_its_directory(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    mode = os.lstat(sock_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert os.listdir(sock_path.parent) == [sock_path.name]  # no temporary left behind


def test_stop_removes_the_socket(serve: Serve, sock_path: Path) -> None:
    server = serve(BASIC)
    server.close()
    assert not os.path.lexists(sock_path)


def test_stop_leaves_a_socket_that_another_server_took_over(serve: Serve, sock_path: Path) -> None:
    first = serve(BASIC)
    os.unlink(sock_path)
    second = serve({"add": add})
    first.close()
    assert os.path.lexists(sock_path)
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("add", a=1, b=2) == 3
    second.close()


def test_a_stale_socket_is_replaced(serve: Serve, sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(sock_path))
    dead.close()  # what a daemon killed with -9 leaves behind
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("add", a=2) == 2


def test_a_live_server_is_not_displaced(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with pytest.raises(RpcError) as excinfo:
        serve(BASIC)
    assert excinfo.value.code == RpcCode.ADDRESS_IN_USE
    assert "already listening" in excinfo.value.cause
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("add", a=1) == 1


def test_a_file_in_the_way_is_not_removed(serve: Serve, sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    sock_path.write_text("precious")
    with pytest.raises(RpcError) as excinfo:
        serve(BASIC)
    assert excinfo.value.code == RpcCode.ADDRESS_IN_USE
    assert excinfo.value.fix == f"remove {sock_path}"
    assert sock_path.read_text() == "precious"


def test_a_path_longer_than_sun_path_works(serve: Serve, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "xenlited.sock"
    serve(BASIC, path=deep)
    assert stat.S_IMODE(os.lstat(deep).st_mode) == 0o600
    with RpcClient(deep, timeout=5) as client:
        assert client.call("add", a=4, b=5) == 9


# --------------------------------------------------------------------------- calls and errors


def test_calls_pass_params_and_return_results(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("echo", name="web01", vcpus=[0, 1], opts={"p": True}) == {
            "name": "web01",
            "vcpus": [0, 1],
            "opts": {"p": True},
        }
        assert client.call("domains") == [
            {"name": "Domain-0", "domid": 0},
            {"name": "web01", "domid": 3},
        ]
        assert client.server == "xenlited"


def test_handler_errors_come_back_as_their_own_class(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        with pytest.raises(ConfigError) as config:
            client.call("config_error")
        assert str(config.value) == "web01.cfg:12:8: vif: unknown key 'brige'"
        assert config.value.col == 8
        with pytest.raises(CommandFailed) as failed:
            client.call("command_failed")
        assert failed.value.argv == ["qemu-img", "create"]
        assert failed.value.stderr_tail == "qemu-img: no space\n"
        assert failed.value.fix == "free space"
        assert client.call("add", a=1) == 1  # the connection survives errors


def test_a_bug_is_logged_and_answered_as_internal_error(
    serve: Serve, sock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    serve(BASIC, log_hint="/var/log/xenlite/xenlited.log")
    with caplog.at_level(logging.ERROR, logger="xenlite.rpc"), RpcClient(sock_path, 5) as client:
        with pytest.raises(RpcError) as excinfo:
            client.call("bug")
        err = excinfo.value
        assert err.code == RpcCode.INTERNAL
        assert "KeyError" in err.cause
        assert (
            err.fix
            == "this is a bug in xenlited; the traceback is in /var/log/xenlite/xenlited.log"
        )
        with pytest.raises(RpcError) as unser:
            client.call("unserialisable")
        assert unser.value.code == RpcCode.INTERNAL
        assert client.call("add", a=3) == 3
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert tracebacks
    assert tracebacks[0].exc_info is not None
    assert tracebacks[0].exc_info[0] is KeyError


def test_unknown_method_and_bad_params_say_so(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        with pytest.raises(RpcError) as unknown:
            client.call("domain.frobnicate")
        assert unknown.value.code == RpcCode.UNKNOWN_METHOD
        assert "domain.frobnicate" in str(unknown.value)
        with pytest.raises(RpcError) as bad:
            client.call("add", b=1)
        assert bad.value.code == RpcCode.BAD_PARAMS
        assert "'a'" in bad.value.cause
        with pytest.raises(RpcError) as extra:
            client.call("add", a=1, c=2)
        assert extra.value.code == RpcCode.BAD_PARAMS


def test_reserved_method_names_are_refused() -> None:
    from xenlite.rpc.server import RpcServer

    with pytest.raises(ValueError, match=r"rpc\."):
        RpcServer("/nonexistent/s", {"rpc.hello": echo})


def test_a_result_too_large_for_a_frame_is_an_error(serve: Serve, sock_path: Path) -> None:
    async def huge() -> str:
        return "x" * MAX_FRAME

    serve({"huge": huge, "add": add})
    with RpcClient(sock_path, timeout=10) as client:
        with pytest.raises(RpcError) as excinfo:
            client.call("huge")
        assert excinfo.value.code == RpcCode.TOO_LARGE
        assert client.call("add", a=1) == 1


# --------------------------------------------------------------------------- concurrency


def test_concurrent_clients_each_get_their_own_answers(serve: Serve, sock_path: Path) -> None:
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0.001)
        return a + b

    serve({"add": slow_add})
    failures: list[str] = []

    def worker(n: int) -> None:
        with RpcClient(sock_path, timeout=10) as client:
            for i in range(30):
                got = client.call("add", a=n, b=i)
                if got != n + i:
                    failures.append(f"{n}+{i} gave {got}")

    threads = [threading.Thread(target=worker, args=(n * 1000,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not failures


def test_requests_on_one_connection_run_concurrently(serve: Serve, sock_path: Path) -> None:
    released = asyncio.Event()

    async def wait_for_release() -> str:
        await released.wait()
        return "waited"

    async def release() -> str:
        released.set()
        return "released"

    serve({"wait": wait_for_release, "release": release})
    sock = raw_connect(sock_path)
    sock.sendall(
        encode_frame({"id": 1, "method": "wait", "params": {}})
        + encode_frame({"id": 2, "method": "release", "params": {}})
    )
    frames = read_frames(sock, 2)
    # The second request completed the first, so it was answered first.
    assert frames == [{"id": 2, "result": "released"}, {"id": 1, "result": "waited"}]
    sock.close()


def test_requests_in_flight_per_connection_are_bounded(serve: Serve, sock_path: Path) -> None:
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def hold() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return peak

    server = serve({"hold": hold}, max_in_flight=2)
    sock = raw_connect(sock_path)
    sock.sendall(b"".join(encode_frame({"id": i, "method": "hold"}) for i in range(1, 6)))
    wait_for(lambda: running == 2)
    time.sleep(0.05)
    assert running == 2  # the other three wait unread
    server.call_soon(gate.set)
    frames = read_frames(sock, 5)
    assert sorted(f["id"] for f in frames) == [1, 2, 3, 4, 5]  # type: ignore[type-var]
    assert peak == 2
    sock.close()


def test_an_operation_finishes_when_its_client_leaves(serve: Serve, sock_path: Path) -> None:
    done = threading.Event()
    started = threading.Event()

    async def create() -> str:
        started.set()
        await asyncio.sleep(0.1)
        done.set()
        return "created"

    serve({"create": create, "add": add})
    sock = raw_connect(sock_path)
    sock.sendall(encode_frame({"id": 1, "method": "create"}))
    assert started.wait(5)
    sock.close()
    assert done.wait(5)
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("add", a=1) == 1


def test_too_many_clients_are_told_to_retry(serve: Serve, sock_path: Path) -> None:
    server = serve(BASIC, max_connections=1)
    with RpcClient(sock_path, timeout=5) as first:
        first.connect()
        wait_for(lambda: server.server.connection_count == 1)
        with pytest.raises(RpcError) as excinfo, RpcClient(sock_path, timeout=5) as second:
            second.connect()
        assert excinfo.value.code == RpcCode.BUSY
        assert first.call("add", a=1) == 1


def test_stop_lets_running_operations_finish(serve: Serve, sock_path: Path) -> None:
    started = threading.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    server = serve({"slow": slow})
    client = RpcClient(sock_path, timeout=5)
    answer: list[object] = []
    caller = threading.Thread(target=lambda: answer.append(client.call("slow")))
    caller.start()
    assert started.wait(5)
    server.close()
    caller.join(5)
    assert answer == ["finished"]
    client.close()


# --------------------------------------------------------------------------- streams


def test_a_stream_yields_events_then_its_result(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        stream = client.stream("progress", steps=3)
        assert [e.data for e in stream] == [{"step": 0}, {"step": 1}, {"step": 2}]
        assert stream.result == {"domid": 5}
        plain = client.stream("plain_stream")
        assert [(e.name, e.data) for e in plain] == [("line", "hello")]
        assert plain.result is None
        assert client.call("add", a=1) == 1


def test_an_error_in_a_stream_follows_its_events(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    with RpcClient(sock_path, timeout=5) as client:
        stream = client.stream("failing_stream")
        assert next(stream).data == "first"
        with pytest.raises(XenStoreError) as excinfo:
            next(stream)
        assert excinfo.value.wire_name == "ENOENT"
        assert list(stream) == []
        assert client.call("add", a=1) == 1


def test_leaving_a_stream_cancels_it_in_the_server(serve: Serve, sock_path: Path) -> None:
    cleaned = threading.Event()

    async def console() -> AsyncIterator[Event]:
        try:
            n = 0
            while True:
                yield Event("output", n)
                n += 1
                await asyncio.sleep(0.01)
        finally:
            cleaned.set()

    serve({"console": console, "add": add})
    with RpcClient(sock_path, timeout=5) as client:
        with client.stream("console") as stream:
            assert next(stream).data == 0
            assert next(stream).data == 1
        assert cleaned.wait(5)
        assert client.call("add", a=1) == 1  # reconnected


def test_descriptors_travel_with_results_and_events(serve: Serve, sock_path: Path) -> None:
    def pipe_with(text: bytes) -> int:
        r, w = os.pipe()
        os.write(w, text)
        os.close(w)
        return r

    async def open_console() -> Reply:
        return Reply({"tty": "pts"}, (pipe_with(b"serial"),))

    async def attach() -> AsyncIterator[Event | Reply]:
        yield Event("fd", "a", (pipe_with(b"one"), pipe_with(b"two")))
        yield Reply("attached")

    serve({"open_console": open_console, "attach": attach})
    with RpcClient(sock_path, timeout=5) as client:
        reply = client.call_with_fds("open_console")
        assert reply.result == {"tty": "pts"}
        assert len(reply.fds) == 1
        assert os.read(reply.fds[0], 10) == b"serial"
        assert os.get_inheritable(reply.fds[0]) is False
        os.close(reply.fds[0])
        stream = client.stream("attach")
        event = next(stream)
        assert [os.read(fd, 10) for fd in event.fds] == [b"one", b"two"]
        for fd in event.fds:
            os.close(fd)
        assert list(stream) == []
        assert stream.result == "attached"


# --------------------------------------------------------------------------- bad clients


def test_a_request_before_hello_is_refused(serve: Serve, sock_path: Path) -> None:
    serve(BASIC)
    sock = raw_connect(sock_path, hello=False)
    sock.sendall(encode_frame({"id": 1, "method": "add", "params": {"a": 1}}))
    frames = read_until_closed(sock)
    assert len(frames) == 1
    assert frames[0]["id"] is None
    error = frames[0]["error"]
    assert isinstance(error, dict)
    assert "rpc.hello" in error["cause"]  # type: ignore[operator]
    sock.close()


def test_a_client_of_another_protocol_version_is_told_and_dropped(
    serve: Serve, sock_path: Path
) -> None:
    serve(BASIC)
    sock = raw_connect(sock_path, hello=False)
    params = {"protocol": PROTOCOL_VERSION + 1, "client": "xl (xenlite 9.0)"}
    sock.sendall(encode_frame({"id": 0, "method": "rpc.hello", "params": params}))
    frames = read_until_closed(sock)
    assert len(frames) == 1
    assert frames[0]["id"] == 0
    error = frames[0]["error"]
    assert isinstance(error, dict)
    err = error_from_wire(error)
    assert isinstance(err, RpcError)
    assert err.code == RpcCode.VERSION_MISMATCH
    assert "xl (xenlite 9.0) speaks protocol" in err.cause
    sock.close()


@pytest.mark.parametrize(
    "garbage",
    [
        HEADER.pack(MAX_FRAME + 1),
        HEADER.pack(3) + b"{{{",
        HEADER.pack(2) + b"[]",
        encode_frame({"id": 5}),
        encode_frame({"id": 1, "method": "add", "params": {"a": 1}}) * 2,  # duplicate id
    ],
)
def test_a_garbled_frame_drops_that_client_only(
    serve: Serve, sock_path: Path, garbage: bytes
) -> None:
    async def hold() -> int:
        await asyncio.sleep(0.2)
        return 1

    serve({**BASIC, "add": hold})
    with RpcClient(sock_path, timeout=5) as bystander:
        bystander.connect()
        sock = raw_connect(sock_path)
        sock.sendall(garbage)
        frames = read_until_closed(sock)
        errors = [f for f in frames if f.get("id") is None]
        assert len(errors) == 1
        assert error_from_wire(errors[0]["error"]).code == RpcCode.PROTOCOL  # type: ignore[arg-type,attr-defined]
        sock.close()
        assert bystander.call("echo", still="here") == {"still": "here"}


def test_a_client_that_never_reads_is_dropped(serve: Serve, sock_path: Path) -> None:
    async def big() -> str:
        return "x" * (1 << 20)

    serve({"big": big, "add": add}, write_timeout=0.2, max_in_flight=64)
    sock = raw_connect(sock_path)
    sock.sendall(b"".join(encode_frame({"id": i, "method": "big"}) for i in range(1, 40)))
    # The server gives up on it; meanwhile and afterwards others are served.
    with RpcClient(sock_path, timeout=5) as client:
        assert client.call("add", a=1) == 1
        time.sleep(0.3)
        assert client.call("add", a=2) == 2
    sock.settimeout(5)
    received = 0
    try:
        while data := sock.recv(1 << 20):
            received += len(data)
    except ConnectionResetError:
        pass
    assert received < 39 * (1 << 20)
    sock.close()
