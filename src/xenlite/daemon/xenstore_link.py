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
import logging
from collections.abc import Awaitable, Callable

from xenlite.base.errors import XenliteError, XenStoreConnectionError
from xenlite.xenstore.client import XenStoreClient

log = logging.getLogger(__name__)

RETRY_FIRST = 0.1  # seconds before the first reconnect attempt, doubling up to RETRY_MAX
RETRY_MAX = 2.0
CONNECT_TIMEOUT = 1.0
LOST_FIX = "start xenstored again (xenlite start); xenlited reconnects by itself"


async def keep_connected(
    xs: XenStoreClient,
    on_back: Callable[[], Awaitable[None]],
    say: Callable[[str], None],
) -> None:
    """Run until ``xs`` is closed by its owner: after each loss, reconnect and call
    ``on_back``. Never raises (a failed ``on_back`` is logged; the next loss retries)."""
    xs.lost_fix = LOST_FIX
    while True:
        reason = await xs.wait_lost()
        if xs.closed_by_client:
            return
        log.warning("XenStore connection lost (%s); reconnecting", reason.cause)
        say(f"XenStore connection lost: {reason.cause}")
        if not await _reconnect(xs):
            return
        log.info("XenStore connection back (generation %d)", xs.generation)
        say("XenStore connection back")
        try:
            await on_back()
        except XenliteError as exc:
            log.error("repairing XenStore after the reconnect failed: %s", exc)


async def _reconnect(xs: XenStoreClient) -> bool:
    """Try again and again, backing off; False when the owner closed ``xs`` meanwhile."""
    delay = RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if xs.closed_by_client:
            return False
        try:
            await xs.reopen(timeout=CONNECT_TIMEOUT)
        except XenStoreConnectionError:
            delay = min(delay * 2, RETRY_MAX)
        else:
            return True
