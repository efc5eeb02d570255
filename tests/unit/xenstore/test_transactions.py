"""Transactions: isolation, commit, abort, EAGAIN on conflict, ids and quotas."""

from __future__ import annotations

from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.quota import Quotas
from xenlite.xenstore.wire import Decoder, Op, join_strings

# -- in-process harness (the real XenStore and handlers; only the socket is left out) ------


class Sess(Session):
    """A connection that keeps the watch events it is sent."""

    def __init__(self, domid: int, privileged: bool) -> None:
        super().__init__(domid, privileged)
        self.events: list[tuple[bytes, bytes]] = []

    def send_event(self, path: bytes, token: bytes) -> None:
        self.events.append((path, token))


def conn(store: XenStore, domid: int = 0) -> Sess:
    s = Sess(domid, store.is_privileged(domid))
    store.attach(s)
    return s


def call(store: XenStore, s: Sess, op: int, payload: bytes, tx: int = 0) -> tuple[int, bytes]:
    out = store.handle(s, op, 42, tx, payload)
    initial = store.take_initial_event()
    if initial is not None:
        s.send_event(initial[1], initial[2])
    (pkt,) = Decoder().feed(out)
    assert pkt.req_id == 42
    assert pkt.tx_id == tx
    return pkt.op, pkt.payload


def ok(store: XenStore, s: Sess, op: int, *fields: bytes, tx: int = 0) -> bytes:
    rop, payload = call(store, s, op, join_strings(*fields), tx)
    assert rop == op, payload
    return payload


def err(store: XenStore, s: Sess, op: int, *fields: bytes, tx: int = 0) -> str:
    rop, payload = call(store, s, op, join_strings(*fields), tx)
    assert rop == Op.ERROR, (rop, payload)
    return payload.rstrip(b"\0").decode()


def write(store: XenStore, s: Sess, path: bytes, value: bytes, tx: int = 0) -> tuple[int, bytes]:
    return call(store, s, Op.WRITE, path + b"\0" + value, tx)


def start(store: XenStore, s: Sess) -> int:
    reply = ok(store, s, Op.TRANSACTION_START, b"")
    assert reply.endswith(b"\0")
    return int(reply[:-1])


def test_isolation_both_ways_and_commit() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    write(store, a, b"/t/x", b"old")
    write(store, a, b"/other/z", b"")
    tx = start(store, a)
    write(store, a, b"/t/x", b"new", tx)
    write(store, a, b"/t/y", b"created", tx)
    assert ok(store, a, Op.READ, b"/t/x", tx=tx) == b"new"
    assert ok(store, b, Op.READ, b"/t/x") == b"old"
    assert err(store, b, Op.READ, b"/t/y") == "ENOENT"
    write(store, b, b"/other/elsewhere", b"1")
    assert ok(store, a, Op.TRANSACTION_END, b"T", tx=tx) == b"OK\0"
    assert ok(store, b, Op.READ, b"/t/x") == b"new"
    assert ok(store, b, Op.READ, b"/t/y") == b"created"
    assert ok(store, b, Op.READ, b"/other/elsewhere") == b"1"


def test_snapshot_hides_later_changes_and_reading_them_conflicts() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    tx = start(store, a)
    write(store, b, b"/elsewhere", b"1")
    assert err(store, a, Op.READ, b"/elsewhere", tx=tx) == "ENOENT"
    assert err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"


def test_abort_discards() -> None:
    store = XenStore()
    a = conn(store)
    tx = start(store, a)
    write(store, a, b"/gone", b"x", tx)
    assert ok(store, a, Op.TRANSACTION_END, b"F", tx=tx) == b"OK\0"
    assert err(store, a, Op.READ, b"/gone") == "ENOENT"
    assert err(store, a, Op.READ, b"/gone", tx=tx) == "ENOENT"  # the id is closed


def test_conflict_is_eagain_and_changes_nothing() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    write(store, a, b"/c/x", b"0")
    tx = start(store, a)
    assert ok(store, a, Op.READ, b"/c/x", tx=tx) == b"0"
    write(store, a, b"/c/other", b"mine", tx)
    write(store, b, b"/c/x", b"1")
    assert err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"
    assert err(store, a, Op.READ, b"/c/other") == "ENOENT"
    assert ok(store, a, Op.READ, b"/c/x") == b"1"


def test_unrelated_changes_do_not_conflict() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    write(store, a, b"/u/x", b"0")
    write(store, a, b"/u/y", b"0")
    tx = start(store, a)
    write(store, a, b"/u/x", b"tx", tx)
    write(store, b, b"/u/y", b"outside")
    assert ok(store, a, Op.TRANSACTION_END, b"T", tx=tx) == b"OK\0"
    assert ok(store, a, Op.READ, b"/u/x") == b"tx"
    assert ok(store, a, Op.READ, b"/u/y") == b"outside"


def test_creating_the_same_node_conflicts() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    tx = start(store, a)
    assert err(store, a, Op.READ, b"/new", tx=tx) == "ENOENT"
    write(store, a, b"/new", b"a", tx)
    write(store, b, b"/new", b"b")
    assert err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"
    assert ok(store, a, Op.READ, b"/new") == b"b"


def test_removal_inside_a_transaction() -> None:
    store = XenStore()
    a = conn(store)
    write(store, a, b"/rm/a/b", b"")
    tx = start(store, a)
    ok(store, a, Op.RM, b"/rm/a", tx=tx)
    assert err(store, a, Op.READ, b"/rm/a/b", tx=tx) == "ENOENT"
    assert ok(store, a, Op.READ, b"/rm/a/b") == b""
    ok(store, a, Op.TRANSACTION_END, b"T", tx=tx)
    assert err(store, a, Op.READ, b"/rm/a/b") == "ENOENT"


def test_watches_fire_on_commit_only() -> None:
    store = XenStore()
    a = conn(store)
    w = conn(store)
    ok(store, w, Op.WATCH, b"/wt", b"tok")
    w.events.clear()
    tx = start(store, a)
    write(store, a, b"/wt/x", b"1", tx)
    assert w.events == []
    ok(store, a, Op.TRANSACTION_END, b"T", tx=tx)
    assert w.events == [(b"/wt/x", b"tok")]
    tx = start(store, a)
    write(store, a, b"/wt/y", b"1", tx)
    ok(store, a, Op.TRANSACTION_END, b"F", tx=tx)
    assert w.events == [(b"/wt/x", b"tok")]


def test_ids_errors_and_nesting() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    t1 = start(store, a)
    t2 = start(store, a)
    assert t1 != t2
    assert t1 != 0
    assert err(store, b, Op.READ, b"/tool", tx=t1) == "ENOENT"  # ids are per connection
    assert err(store, a, Op.READ, b"/tool", tx=12345) == "ENOENT"
    assert err(store, a, Op.TRANSACTION_START, b"", tx=t1) == "EBUSY"
    assert err(store, a, Op.TRANSACTION_END, b"X", tx=t1) == "EINVAL"
    assert err(store, a, Op.TRANSACTION_END, b"T") == "ENOENT"
    ok(store, a, Op.WATCH, b"/any", b"t", tx=99999)  # WATCH ignores the transaction id


def test_transaction_quota_for_guests_only() -> None:
    store = XenStore(Quotas(transactions=2))
    guest = conn(store, 5)
    opened = [start(store, guest) for _ in range(3)]  # C allows quota + 1
    assert len(set(opened)) == 3
    assert err(store, guest, Op.TRANSACTION_START, b"") == "ENOSPC"
    dom0 = conn(store)
    for _ in range(10):
        start(store, dom0)


def test_transaction_nodes_quota() -> None:
    store = XenStore(Quotas(transaction_nodes=5))
    dom0 = conn(store)
    write(store, dom0, b"/local/domain/5", b"")
    ok(store, dom0, Op.SET_PERMS, b"/local/domain/5", b"n5")
    guest = conn(store, 5)
    tx = start(store, guest)
    names = [b"n%d" % i for i in range(10)]
    results = [write(store, guest, n, b"x", tx)[1] for n in names]
    assert b"ENOSPC\0" in results
    assert results[0] == b"OK\0"


def test_reset_watches_drops_transactions() -> None:
    store = XenStore()
    a = conn(store)
    tx = start(store, a)
    assert ok(store, a, Op.RESET_WATCHES, b"") == b"OK\0"
    assert err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "ENOENT"
