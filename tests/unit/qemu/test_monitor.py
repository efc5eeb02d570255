"""The QMP monitor against a fake QMP server on a real unix socket (a double at the socket
seam: real QEMU is driven in tests/integration/test_qemu_monitor.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from xenlite.base.errors import QemuCommandError, QemuError
from xenlite.qemu.monitor import Monitor, qmp_command

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}


def event(name: str, n: int = 0) -> dict[str, Any]:
    return {
        "event": name,
        "data": {"n": n},
        "timestamp": {"seconds": 1700000000, "microseconds": n},
    }


async def requests(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON objects as QEMU's streaming parser sees them (qemu.qmp sends no newlines)."""
    decoder = json.JSONDecoder()
    buffer = ""
    while chunk := await reader.read(65536):
        buffer += chunk.decode()
        while buffer.strip():
            try:
                request, end = decoder.raw_decode(buffer.lstrip())
            except ValueError:
                break
            buffer = buffer.lstrip()[end:]
            yield request


class FakeQmp:
    """Answers a few commands the way QEMU does; ``flood`` sends ``count`` events first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: asyncio.AbstractServer | None = None
        self.received: list[dict[str, Any]] = []

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self.client, path=str(self.path))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(message: dict[str, Any]) -> None:
            if "id" in message and message["id"] is None:
                del message["id"]  # QEMU echoes an id only when the request had one
            writer.write(json.dumps(message).encode() + b"\r\n")

        send(GREETING)
        try:
            async for request in requests(reader):
                self.received.append(request)
                command, ident = request.get("execute"), request.get("id")
                args = request.get("arguments", {})
                if command == "qmp_capabilities":
                    send({"return": {}, "id": ident})
                elif command == "query-status":
                    send({"return": {"status": "paused", "running": False}, "id": ident})
                elif command == "query-cpus-fast":
                    cpus = [{"cpu-index": 0, "thread-id": 4242, "qom-path": "/machine/cpu[0]"}]
                    send(event("NOISE"))
                    send({"return": cpus, "id": ident})
                elif command == "query-balloon":
                    send({"return": {"actual": 268435456}, "id": ident})
                elif command == "fail":
                    send({"error": {"class": "GenericError", "desc": "boom"}, "id": ident})
                elif command == "flood":
                    for n in range(args["count"]):
                        send(event("FLOOD", n))
                        if n % 500 == 0:
                            await writer.drain()
                    send({"return": {}, "id": ident})
                elif command == "hang":
                    continue
                elif command == "quit":
                    send({"return": {}, "id": ident})
                    send(event("SHUTDOWN"))
                    await writer.drain()
                    break
                elif command == "bye":
                    send(event("LAST"))
                    await writer.drain()
                    break
                else:
                    send({"return": {"echo": command, "args": args}, "id": ident})
                await writer.drain()
        finally:
            writer.close()


def run(path: Path, body: Callable[[FakeQmp], Awaitable[None]]) -> None:
    async def main() -> None:
        fake = FakeQmp(path)
        await fake.start()
        try:
            await body(fake)
        finally:
            await fake.stop()

    asyncio.run(main())


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "qmp.sock"


def test_commands_and_typed_helpers(sock: Path) -> None:
    async def body(fake: FakeQmp) -> None:
        async with Monitor("t") as monitor:
            await monitor.connect(sock, timeout=5)
            assert monitor.connected
            status = await monitor.query_status()
            assert (status.status, status.running) == ("paused", False)
            cpus = await monitor.query_cpus_fast()
            assert cpus[0].thread_id == 4242
            assert cpus[0].cpu_index == 0
            assert await monitor.query_balloon() == 256 * 1024 * 1024
            await monitor.balloon(128 * 1024 * 1024)
            await monitor.send_key(["ctrl", "alt", "delete"])
            got = await monitor.execute("anything", {"x": 1})
            assert got == {"echo": "anything", "args": {"x": 1}}
            noise = await monitor.wait_event("NOISE", timeout=5)
            assert noise.data == {"n": 0}
            assert noise.timestamp == 1700000000.0
        sent = {r["execute"]: r.get("arguments") for r in fake.received}
        assert sent["balloon"] == {"value": 128 * 1024 * 1024}
        assert sent["send-key"] == {
            "keys": [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
        }

    run(sock, body)


def test_errors_are_wrapped(sock: Path) -> None:
    async def body(fake: FakeQmp) -> None:
        monitor = Monitor()
        with pytest.raises(QemuError, match="not connected"):
            await monitor.execute("query-status")
        await monitor.connect(sock, timeout=5)
        with pytest.raises(QemuCommandError) as info:
            await monitor.execute("fail")
        assert info.value.error_class == "GenericError"
        assert info.value.desc == "boom"
        with pytest.raises(QemuError, match=r"no answer within 0\.2 s"):
            await monitor.execute("hang", timeout=0.2)
        # The connection survives a timed-out command.
        assert (await monitor.query_status()).status == "paused"
        await monitor.disconnect()
        await monitor.disconnect()

    run(sock, body)


def test_connect_failure_is_a_qemu_error(tmp_path: Path) -> None:
    async def body() -> None:
        with pytest.raises(QemuError, match="cannot connect"):
            await Monitor().connect(tmp_path / "missing.sock", timeout=2)

    asyncio.run(body())


def test_events_end_when_qemu_hangs_up(sock: Path) -> None:
    async def body(fake: FakeQmp) -> None:
        monitor = Monitor()
        await monitor.connect(sock, timeout=5)
        await monitor.quit()
        names = [e.name async for e in monitor.events()]
        assert names == ["SHUTDOWN"]
        assert not monitor.connected
        with pytest.raises(QemuError):
            await monitor.query_status()
        with pytest.raises(QemuError, match="closed the monitor before"):
            await monitor.wait_event("NEVER", timeout=2)
        await monitor.disconnect()

    run(sock, body)


def test_interrupted_command_is_a_qemu_error(sock: Path) -> None:
    async def body(fake: FakeQmp) -> None:
        monitor = Monitor()
        await monitor.connect(sock, timeout=5)
        with pytest.raises(QemuError, match="before answering") as info:
            await monitor.execute("bye")
        assert not isinstance(info.value, QemuCommandError)
        assert [e.name async for e in monitor.events()] == ["LAST"]
        await monitor.disconnect()

    run(sock, body)


def test_event_flood_stays_bounded(sock: Path) -> None:
    """STYLE.md §1/§7.4: qemu.qmp's own listener and its _history must not grow."""

    async def body(fake: FakeQmp) -> None:
        monitor = Monitor(max_events=50)
        await monitor.connect(sock, timeout=5)
        listener = monitor._qmp.events
        high_water = 0

        async def watch() -> None:
            nonlocal high_water
            while True:
                high_water = max(high_water, len(listener._history), listener._queue.qsize())
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        await monitor.execute("flood", {"count": 5000}, timeout=30)
        watcher.cancel()
        assert monitor.pending_events == 50
        assert monitor.dropped_events == 5000 - 50
        assert len(listener._history) == 0
        assert listener._queue.qsize() == 0
        assert high_water == 0
        # The newest events are the ones kept.
        kept = []
        async for item in monitor.events():
            kept.append(item.data["n"])
            if len(kept) == 50:
                break
        assert kept == list(range(4950, 5000))
        await monitor.disconnect()

    run(sock, body)


def test_sync_qmp_command(sock: Path) -> None:
    ready = threading.Event()
    stop: list[Callable[[], None]] = []

    def serve() -> None:
        async def main() -> None:
            fake = FakeQmp(sock)
            await fake.start()
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            ready.set()
            await done.wait()
            await fake.stop()

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        assert qmp_command(sock, "query-status", timeout=5) == {
            "status": "paused",
            "running": False,
        }
        assert qmp_command(sock, "query-cpus-fast", timeout=5)[0]["thread-id"] == 4242
        with pytest.raises(QemuCommandError, match="boom"):
            qmp_command(sock, "fail", timeout=5)
        with pytest.raises(QemuError, match="no answer within"):
            qmp_command(sock, "hang", timeout=0.3)
    finally:
        stop[0]()
        thread.join(10)
    with pytest.raises(QemuError, match="cannot talk to QEMU"):
        qmp_command(sock.with_name("absent.sock"), "query-status", timeout=1)
