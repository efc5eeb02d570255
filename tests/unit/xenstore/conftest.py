"""Fixtures of the XenStore unit tests: requests to an in-process XenStore, no socket.

``xs`` drives the real ``XenStore`` and its handlers the way the daemon does for one frame:
``xs.ok(store, conn, Op.READ, b"/a")`` sends a request and checks that it succeeded,
``xs.err(...)`` that it failed and returns the error name. Connections keep the watch events
they are sent in ``.events``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.wire import Decoder, Op, join_strings


class Sess(Session):
    """A connection that keeps the watch events it is sent."""

    def __init__(self, domid: int, privileged: bool) -> None:
        super().__init__(domid, privileged)
        self.events: list[tuple[bytes, bytes]] = []

    def send_event(self, path: bytes, token: bytes) -> None:
        self.events.append((path, token))


@dataclass(frozen=True, slots=True)
class XsHarness:
    """Requests as the daemon hands them to ``XenStore.handle``; every reply is checked to
    carry the request's id and transaction id."""

    req_id: int = 42

    def conn(self, store: XenStore, domid: int = 0) -> Sess:
        """A new connection of ``domid`` (dom0 is privileged, as in C xenstored)."""
        s = Sess(domid, store.is_privileged(domid))
        store.attach(s)
        return s

    def conns(self, store: XenStore, *domids: int) -> tuple[Sess, ...]:
        """One new connection per domain id, in order: ``dom0, guest = xs.conns(store, 0, 5)``."""
        return tuple(self.conn(store, domid) for domid in domids)

    def call(
        self, store: XenStore, s: Sess, op: int, payload: bytes, tx: int = 0
    ) -> tuple[int, bytes]:
        """One raw request; the reply's ``(op, payload)``."""
        out = store.handle(s, op, self.req_id, tx, payload)
        initial = store.take_initial_event()
        if initial is not None:
            s.send_event(initial[1], initial[2])
        (pkt,) = Decoder().feed(out)
        assert pkt.req_id == self.req_id
        assert pkt.tx_id == tx
        return pkt.op, pkt.payload

    def ok(self, store: XenStore, s: Sess, op: int, *fields: bytes, tx: int = 0) -> bytes:
        """A request of NUL-terminated ``fields`` that must succeed; its reply payload."""
        rop, payload = self.call(store, s, op, join_strings(*fields), tx)
        assert rop == op, payload
        return payload

    def err(self, store: XenStore, s: Sess, op: int, *fields: bytes, tx: int = 0) -> str:
        """A request that must fail; the error name (ENOENT, EACCES, ...)."""
        rop, payload = self.call(store, s, op, join_strings(*fields), tx)
        assert rop == Op.ERROR, (rop, payload)
        return payload.rstrip(b"\0").decode()

    def write(
        self, store: XenStore, s: Sess, path: bytes, value: bytes, tx: int = 0
    ) -> tuple[int, bytes]:
        """WRITE ``value`` (not NUL-terminated, as on the wire) to ``path``."""
        return self.call(store, s, Op.WRITE, path + b"\0" + value, tx)

    def start_tx(self, store: XenStore, s: Sess) -> int:
        """TRANSACTION_START; the new transaction's id."""
        reply = self.ok(store, s, Op.TRANSACTION_START, b"")
        assert reply.endswith(b"\0")
        return int(reply[:-1])


@pytest.fixture
def xs() -> XsHarness:
    return XsHarness()


@pytest.fixture
def store() -> XenStore:
    """A fresh XenStore with C xenstored's initial tree and default quotas."""
    return XenStore()
