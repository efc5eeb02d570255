"""xenlited's XenStore connection, kept up: when xenstored dies, reconnect and repair.

Not a Xen man page: Xen's toolstack has no answer to a dead xenstored (libxl's callers fail
until the host is rebooted); xenlite's xenstored persists its store (``--persist``), so it
can come back, and xenlited comes back with it. While it is gone, an operation that needs
XenStore fails with a clear error and undoes itself (create) or finishes without it
(destroy); once it answers again, ``on_back`` rewrites what the new daemon may lack (dom0's
and every domain's nodes, the introductions) and removes the nodes of domains that went away
meanwhile (domain/orphans.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from xenlite.base.errors import XenliteError, XenStoreConnectionError
from xenlite.xenstore.client import XenStoreClient

log = logging.getLogger(__name__)

RETRY_FIRST = 0.1  # seconds before the first reconnect attempt, doubling up to RETRY_MAX
RETRY_MAX = 2.0
CONNECT_TIMEOUT = 1.0
BACK_WAIT = 10.0  # host.xenstore_wait (xenlite start): how long a reconnect may take
LOST_FIX = "start xenstored again (xenlite start); xenlited reconnects by itself"


class XenStoreLink:
    """xenlited's XenStore connection kept up: ``run`` reconnects after each loss and calls
    ``on_back``; ``wait_up`` lets ``xenlite start`` (which just started xenstored again)
    have the reconnect made at once and wait for it, so the host it returns is usable."""

    def __init__(
        self,
        xs: XenStoreClient,
        on_back: Callable[[], Awaitable[None]],
        say: Callable[[str], None],
    ) -> None:
        self.xs = xs
        self._on_back = on_back
        self._say = say
        self._nudge = asyncio.Event()
        self._up = asyncio.Event()
        self._up.set()

    async def run(self) -> None:
        """Run until ``xs`` is closed by its owner. Never raises (a failed ``on_back`` is
        logged; the next loss retries)."""
        xs = self.xs
        xs.lost_fix = LOST_FIX
        while True:
            reason = await xs.wait_lost()
            if xs.closed_by_client:
                return
            self._up.clear()
            log.warning("XenStore connection lost (%s); reconnecting", reason.cause)
            self._say(f"XenStore connection lost: {reason.cause}")
            if not await self._reconnect():
                return
            log.info("XenStore connection back (generation %d)", xs.generation)
            self._say("XenStore connection back")
            try:
                await self._on_back()
            except XenliteError as exc:
                log.error("repairing XenStore after the reconnect failed: %s", exc)
            self._up.set()

    async def wait_up(self, timeout: float) -> bool:
        """Try to reconnect now if the link is down; True once it is up and repaired, False
        when that did not happen within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._wait_up()
        except TimeoutError:
            return False

    async def _wait_up(self) -> bool:
        if self._up.is_set():
            generation = self.xs.generation
            try:  # one round trip: run() may not have noticed a loss yet
                await self.xs.exists("/")
            except XenStoreConnectionError:
                if not self.xs.closed:
                    return False  # no reply in time, yet not lost: nothing to reconnect
                if self.xs.generation == generation:
                    self._up.clear()  # run() sees the loss and sets it again once back
            else:
                return True
        self._nudge.set()
        await self._up.wait()
        return True

    async def _reconnect(self) -> bool:
        """Try again and again, backing off (a nudge tries at once); False when the owner
        closed ``xs`` meanwhile."""
        delay = RETRY_FIRST
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), delay)
            self._nudge.clear()
            if self.xs.closed_by_client:
                return False
            try:
                await self.xs.reopen(timeout=CONNECT_TIMEOUT)
            except XenStoreConnectionError:
                delay = min(delay * 2, RETRY_MAX)
            else:
                return True
