"""XenStoreLink against a real xenstored, killed -9 and started again on its store.

The link's own back-off would try again within RETRY_MAX seconds; ``wait_up`` (what
``xenlite start`` calls once it has started xenstored) must not depend on that: here the
back-off is made far longer than the test may run, so only the nudge can reconnect.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from xenlite.daemon import xenstore_link
from xenlite.daemon.xenstore_link import XenStoreLink
from xenlite.xenstore.client import XenStoreClient


def test_wait_up_reconnects_at_once_and_repairs(
    tmp_path: Path,
    start_xenstored: Callable[..., subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(xenstore_link, "RETRY_FIRST", 3600.0)
    sock, store = tmp_path / "xs.sock", tmp_path / "xs.db"
    daemon = start_xenstored(sock, "--persist", str(store))
    said: list[str] = []
    repaired: list[int] = []

    async def go() -> None:
        client = await XenStoreClient.connect(sock)
        link = XenStoreLink(client, lambda: _repair(client, repaired), said.append)
        runner = asyncio.get_running_loop().create_task(link.run())
        assert await link.wait_up(1)  # up: one round trip says so
        daemon.kill()
        daemon.wait(10)
        assert not await link.wait_up(0.3)  # nothing to reconnect to
        start_xenstored(sock, "--persist", str(store))
        assert await link.wait_up(10)
        assert repaired == [1]
        assert await client.read("/repaired") == b"1"
        # How the loss shows (EOF first, or a failed write) is the kernel's timing.
        assert said[0].startswith("XenStore connection lost: ")
        assert said[1:] == ["XenStore connection back"]
        await client.close()
        await asyncio.wait_for(runner, 10)  # the owner closed it: run() ends

    asyncio.run(go())


async def _repair(client: XenStoreClient, repaired: list[int]) -> None:
    repaired.append(client.generation)
    await client.write("/repaired", str(client.generation))
