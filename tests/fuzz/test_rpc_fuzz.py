"""Arbitrary bytes and JSON at the RPC wire: only RpcErrors come out, and a live server drops
the offending client while it keeps serving the others."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenlite.base.errors import RpcError, XenliteError
from xenlite.rpc.client import RpcClient
from xenlite.rpc.protocol import (
    HEADER,
    FrameDecoder,
    JsonObject,
    RpcCode,
    encode_frame,
    error_from_wire,
    hello_params,
    incoming_from_wire,
    request_from_wire,
)
from xenlite.rpc.server import RpcServer

T = TypeVar("T")


def _outcome(read: Callable[[], T]) -> T | RpcError:
    """What ``read`` returned, or the RpcError it raised; anything else propagates."""
    try:
        return read()
    except RpcError as err:
        return err


_HELLO = encode_frame({"id": 0, "method": "rpc.hello", "params": hello_params("fuzz")})

# Bytes that look like frames some of the time, so the fuzzer gets past the length prefix.
_FRAMEISH = st.builds(
    lambda body, extra: HEADER.pack(len(body) + extra) + body,
    st.binary(max_size=64) | st.text(max_size=40).map(str.encode),
    st.integers(-3, 3).map(lambda n: max(n, 0)),
)
_GARBAGE = st.lists(_FRAMEISH | st.binary(max_size=64), min_size=1, max_size=4).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | _GARBAGE)
def test_the_decoder_yields_objects_or_a_protocol_error(data: bytes) -> None:
    outcome = _outcome(lambda: FrameDecoder(max_frame=1024).feed(data))
    if isinstance(outcome, RpcError):
        assert outcome.code == RpcCode.PROTOCOL
    else:
        assert all(isinstance(f, dict) for f in outcome)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_KEYS = st.sampled_from(
    [
        "id",
        "method",
        "params",
        "result",
        "error",
        "event",
        "data",
        "fds",
        "type",
        "what",
        "cause",
        "fix",
    ]
) | st.text(max_size=6)
_OBJECTS = st.dictionaries(_KEYS, _JSON, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_OBJECTS)
def test_message_readers_raise_only_protocol_errors(obj: JsonObject) -> None:
    for read in (request_from_wire, incoming_from_wire, error_from_wire):
        outcome = _outcome(lambda: read(obj))  # noqa: B023 - called at once
        if isinstance(outcome, RpcError) and outcome.code == RpcCode.PROTOCOL:
            continue
        if read is error_from_wire:  # an error object that reads is an error, never a crash
            assert isinstance(outcome, XenliteError)
        else:
            assert not isinstance(outcome, RpcError)


class _Daemon:
    def __init__(self, path: Path) -> None:
        async def echo(**params: object) -> object:
            return params

        self.server = RpcServer(path, {"echo": echo}, max_in_flight=4)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            self.loop.run_until_complete(self.server.start())
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.server.stop(grace=1))
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("rpcfuzz") / "xenlited.sock"
    server = _Daemon(path)
    yield path
    server.close()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.booleans(), _GARBAGE)
def test_a_server_survives_garbage_and_serves_others(
    daemon: Path, greet: bool, garbage: bytes
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(os.fspath(daemon))
    sock.sendall((_HELLO if greet else b"") + garbage)
    sock.shutdown(socket.SHUT_WR)  # so a half frame ends in EOF, not in waiting
    decoder = FrameDecoder()
    frames: list[JsonObject] = []
    try:
        while data := sock.recv(65536):
            frames.extend(decoder.feed(data))
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    for frame in frames:  # every answer is well formed
        incoming = incoming_from_wire(frame)
        if "error" in frame:
            assert isinstance(frame["error"], dict)
            assert isinstance(error_from_wire(frame["error"]), XenliteError)
        else:
            assert incoming.id is not None
    with RpcClient(daemon, timeout=5) as bystander:
        assert bystander.call("echo", n=1) == {"n": 1}
