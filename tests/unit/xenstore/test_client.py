"""The XenStore clients against a scripted peer on a real unix socket.

The peer answers in an order the test chooses (to check routing by req_id), sends watch events,
errors and DIRECTORY_PART pieces, or stays silent (to check timeouts). Daemon behaviour itself
is checked by the integration tests against real daemons.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xenlite.base.errors import XenStoreError
from xenlite.base.sockets import bind_unix
from xenlite.xenstore.client import (
    Perm,
    PermKind,
    PermList,
    XenStore,
    XenStoreClient,
    XenStoreConnectionError,
    errno_of,
)
from xenlite.xenstore.location import socket_candidates
from xenlite.xenstore.wire import Decoder, Op, Packet, encode_packet

Reply = Callable[[Packet], list[bytes]]


def _reply(packet: Packet, op: int, payload: bytes) -> bytes:
    return encode_packet(op, packet.req_id, packet.tx_id, payload)


@contextmanager
def serve(path: Path, answer: Reply) -> Iterator[None]:
    """A one-connection peer in a thread: ``answer(request)`` gives the frames to send back."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_unix(server, path)  # as the daemons do: long paths too
    server.listen(1)

    def loop() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return  # closed before any client came
        decoder = Decoder()
        with conn:
            while data := conn.recv(65536):
                for packet in decoder.feed(data):
                    for frame in answer(packet):
                        conn.sendall(frame)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.close()
        thread.join(5)


def store_peer() -> Reply:
    """A tiny store: READ/WRITE/DIRECTORY/GET_PERMS/WATCH/transactions, ENOENT otherwise."""
    nodes: dict[bytes, bytes] = {}

    def answer(p: Packet) -> list[bytes]:
        fields = p.payload.split(b"\0")
        if p.op == Op.WRITE:
            nodes[fields[0]] = p.payload[len(fields[0]) + 1 :]
            return [_reply(p, p.op, b"OK\0")]
        if p.op == Op.READ and fields[0] in nodes:
            return [_reply(p, p.op, nodes[fields[0]])]
        if p.op == Op.GET_PERMS:
            return [_reply(p, p.op, b"n0\0r5\0")]
        if p.op == Op.WATCH:
            event = encode_packet(Op.WATCH_EVENT, 0, 0, fields[0] + b"\0" + fields[1] + b"\0")
            return [_reply(p, p.op, b"OK\0"), event]
        if p.op == Op.TRANSACTION_START:
            return [_reply(p, p.op, b"7\0")]
        if p.op == Op.TRANSACTION_END:
            return [_reply(p, p.op, b"OK\0")]
        return [_reply(p, Op.ERROR, b"ENOENT\0")]

    return answer


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "xs.sock"


def test_perm_list_parses_and_formats_as_xenstore_txt() -> None:
    perms = PermList.from_wire(b"n0\0r5\0b7\0")
    assert perms.owner == Perm(PermKind.NONE, 0)
    assert perms.acl == (Perm(PermKind.READ, 5), Perm(PermKind.BOTH, 7))
    assert str(perms) == "n0,r5,b7"
    assert perms.to_strings() == ["n0", "r5", "b7"]
    for bad in ("x0", "r", "r-1", "rr"):
        with pytest.raises(XenStoreError) as info:
            Perm.parse(bad)
        assert info.value.wire_name == "EINVAL"
    with pytest.raises(XenStoreError):
        PermList.parse([])


def test_socket_lookup_follows_libxenstore() -> None:
    assert socket_candidates({"XENSTORED_PATH": "/x/s", "XENSTORED_RUNDIR": "/r"}) == [Path("/x/s")]
    assert socket_candidates({"XENSTORED_RUNDIR": "/r"}) == [Path("/r/socket")]
    defaults = socket_candidates({})
    assert [
        str(p).endswith(s)
        for p, s in zip(
            defaults, ("/run/xenstored/socket", "/var/run/xenstored/socket"), strict=True
        )
    ] == [True, True]


def test_errno_mapping_is_libxenstore_s() -> None:
    import errno

    assert errno_of("ENOENT") == errno.ENOENT
    assert errno_of("EQUOTA") == errno.EINVAL


def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(XenStoreConnectionError) as info:
        XenStore.open(tmp_path / "none.sock")
    assert info.value.wire_name == "ENOENT"
    assert "xenlite xenstored" in (info.value.fix or "")

    async def go() -> None:
        await XenStoreClient.connect(tmp_path / "none.sock")

    with pytest.raises(XenStoreConnectionError):
        asyncio.run(go())


def test_sync_client_reads_writes_and_keeps_watch_events(sock_path: Path) -> None:
    with serve(sock_path, store_peer()), XenStore.open(sock_path, timeout=5) as xs:
        xs.write("/a", b"v\0x")
        assert xs.read("/a") == b"v\0x"
        assert xs.exists("/a")
        assert not xs.exists("/b")
        with pytest.raises(XenStoreError) as info:
            xs.read("/missing")
        assert info.value.wire_name == "ENOENT"
        assert str(info.value) == "XenStore READ /missing: ENOENT"
        assert str(xs.get_perms("/a")) == "n0,r5"
        xs.watch("/a", "tok")
        assert xs.read_watch(5) == ("/a", "tok")
        assert xs.transaction_start() == 7
        xs.transaction_end(7)


def test_both_clients_reach_a_socket_path_longer_than_sun_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 150)
    deep.mkdir()
    path = deep / "xs.sock"
    with serve(path, store_peer()), XenStore.open(path, timeout=5) as xs:
        xs.write("/long", b"yes")
        assert xs.read("/long") == b"yes"

    async def go() -> bytes:
        async with await XenStoreClient.connect(deep / "async.sock", timeout=5) as client:
            await client.write("/long", b"async")
            return await client.read("/long")

    with serve(deep / "async.sock", store_peer()):
        assert asyncio.run(go()) == b"async"


def test_async_replies_are_routed_by_req_id(sock_path: Path) -> None:
    held: list[Packet] = []

    def answer(p: Packet) -> list[bytes]:
        # Hold the first two READs, then answer them in reverse order after the third.
        held.append(p)
        if len(held) < 3:
            return []
        return [_reply(q, Op.READ, q.payload.rstrip(b"\0")) for q in reversed(held)]

    with serve(sock_path, answer):

        async def go() -> list[bytes]:
            async with await XenStoreClient.connect(sock_path, timeout=5) as client:
                return list(await asyncio.gather(*(client.read(p) for p in ("/x", "/y", "/z"))))

        assert asyncio.run(go()) == [b"/x", b"/y", b"/z"]


def test_async_timeout_and_watch_and_transaction(sock_path: Path) -> None:
    peer = store_peer()

    def answer(p: Packet) -> list[bytes]:
        if p.op == Op.READ and p.payload == b"/silent\0":
            return []
        return peer(p)

    with serve(sock_path, answer):

        async def go() -> None:
            client = await XenStoreClient.connect(sock_path, timeout=0.3)
            with pytest.raises(XenStoreConnectionError) as info:
                await client.read("/silent")
            assert info.value.wire_name == "ETIMEDOUT"
            watch = await client.watch("/w", "tok")
            assert await watch.next(5) == ("/w", "tok")
            async for tx in client.transactions():
                async with tx:
                    await tx.write("/n", b"1")
            assert tx.state == "committed"
            assert await client.transact(lambda t: t.read("/n")) == b"1"
            await client.close()
            with pytest.raises(XenStoreConnectionError) as closed:
                await client.read("/n")
            assert closed.value.wire_name == "EIO"

        asyncio.run(go())


def test_directory_part_reassembly(sock_path: Path) -> None:
    names = [f"child-{i:04d}".encode() for i in range(400)]
    blob = b"".join(n + b"\0" for n in names) + b"\0"

    def answer(p: Packet) -> list[bytes]:
        if p.op == Op.DIRECTORY:
            return [_reply(p, Op.ERROR, b"E2BIG\0")]
        offset = int(p.payload.split(b"\0")[1])
        chunk = blob[offset : offset + 1000]
        return [_reply(p, p.op, b"42\0" + chunk)]

    with serve(sock_path, answer), XenStore.open(sock_path, timeout=5) as xs:
        assert xs.directory("/big") == [n.decode() for n in names]


def test_reopen_after_the_daemon_died(
    tmp_path: Path, start_xenstored: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # A real xenstored, killed -9 and started again on its persisted store: the client's
    # pending work fails clearly, a transaction of the old connection stays void, and after
    # reopen() the same client works again on what the store kept.
    sock, store = tmp_path / "xs.sock", tmp_path / "xs.db"
    daemon = start_xenstored(sock, "--persist", str(store))

    async def go() -> None:
        client = await XenStoreClient.connect(sock)
        client.lost_fix = "wait: the owner reconnects"
        await client.write("/kept", "yes")
        tx = await client.start_transaction()
        await tx.write("/in-tx", "1")
        daemon.kill()
        daemon.wait(10)
        reason = await asyncio.wait_for(client.wait_lost(), 10)
        assert reason.fix == "wait: the owner reconnects"
        with pytest.raises(XenStoreConnectionError, match="closed the connection"):
            await client.read("/kept")
        with pytest.raises(XenStoreConnectionError, match="Connection refused"):
            await client.reopen(timeout=1)
        start_xenstored(sock, "--persist", str(store))
        await client.reopen(timeout=5)
        assert client.generation == 1
        assert await client.read("/kept") == b"yes"
        with pytest.raises(XenStoreConnectionError, match="since been lost"):
            await tx.write("/in-tx", "2")
        assert not await client.exists("/in-tx")
        await client.close()
        assert client.closed_by_client
        with pytest.raises(XenStoreConnectionError, match="closed by the client"):
            await client.reopen()

    asyncio.run(go())


def test_a_lost_daemon_is_not_a_refused_request() -> None:
    # `except XenStoreError` handles what xenstored answered (ENOENT, EACCES, ...); a daemon
    # that is gone must not hide among those answers, so no caller needs a guard first.
    assert not issubclass(XenStoreConnectionError, XenStoreError)
    from xenlite.rpc.protocol import error_from_wire, error_to_wire

    lost = XenStoreConnectionError("XenStore", "the daemon closed the connection", "EIO")
    back = error_from_wire(error_to_wire(lost))
    assert type(back) is XenStoreConnectionError
    assert str(back) == str(lost)
