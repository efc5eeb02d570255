"""An RpcServer on its own event-loop thread, so tests drive it with the blocking client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from xenlite.rpc.server import Handler, RpcServer

T = TypeVar("T")


class ServerThread:
    """Runs one RpcServer until closed; ``submit`` runs a coroutine on its loop."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler], **options: Any) -> None:
        self.path = path
        self.server = RpcServer(path, handlers, **options)
        self.loop = asyncio.new_event_loop()
        self._stopped: asyncio.Event | None = None
        self._started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="rpc-test-server", daemon=True)
        self._thread.start()
        self._started.result(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except Exception as exc:  # noqa: BLE001 - re-raised in the test thread
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        await self._stopped.wait()
        await self.server.stop(grace=2.0)

    def submit(self, make: Callable[[], Awaitable[T]]) -> T:
        async def wrapper() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout=10)

    def call_soon(self, func: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(func)

    def close(self) -> None:
        if self._thread.is_alive():
            assert self._stopped is not None
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the RPC server did not stop"
