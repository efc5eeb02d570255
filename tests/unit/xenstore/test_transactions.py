"""Transactions: isolation, commit, abort, EAGAIN on conflict, ids and quotas."""

from __future__ import annotations

from typing import Any

from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.quota import Quotas
from xenlite.xenstore.wire import Op


def test_isolation_both_ways_and_commit(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    xs.write(store, a, b"/t/x", b"old")
    xs.write(store, a, b"/other/z", b"")
    tx = xs.start_tx(store, a)
    xs.write(store, a, b"/t/x", b"new", tx)
    xs.write(store, a, b"/t/y", b"created", tx)
    assert xs.ok(store, a, Op.READ, b"/t/x", tx=tx) == b"new"
    assert xs.ok(store, b, Op.READ, b"/t/x") == b"old"
    assert xs.err(store, b, Op.READ, b"/t/y") == "ENOENT"
    xs.write(store, b, b"/other/elsewhere", b"1")
    assert xs.ok(store, a, Op.TRANSACTION_END, b"T", tx=tx) == b"OK\0"
    assert xs.ok(store, b, Op.READ, b"/t/x") == b"new"
    assert xs.ok(store, b, Op.READ, b"/t/y") == b"created"
    assert xs.ok(store, b, Op.READ, b"/other/elsewhere") == b"1"


def test_snapshot_hides_later_changes_and_reading_them_conflicts(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    tx = xs.start_tx(store, a)
    xs.write(store, b, b"/elsewhere", b"1")
    assert xs.err(store, a, Op.READ, b"/elsewhere", tx=tx) == "ENOENT"
    assert xs.err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"


def test_abort_discards(xs: Any, store: XenStore) -> None:
    a = xs.conn(store)
    tx = xs.start_tx(store, a)
    xs.write(store, a, b"/gone", b"x", tx)
    assert xs.ok(store, a, Op.TRANSACTION_END, b"F", tx=tx) == b"OK\0"
    assert xs.err(store, a, Op.READ, b"/gone") == "ENOENT"
    assert xs.err(store, a, Op.READ, b"/gone", tx=tx) == "ENOENT"  # the id is closed


def test_conflict_is_eagain_and_changes_nothing(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    xs.write(store, a, b"/c/x", b"0")
    tx = xs.start_tx(store, a)
    assert xs.ok(store, a, Op.READ, b"/c/x", tx=tx) == b"0"
    xs.write(store, a, b"/c/other", b"mine", tx)
    xs.write(store, b, b"/c/x", b"1")
    assert xs.err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"
    assert xs.err(store, a, Op.READ, b"/c/other") == "ENOENT"
    assert xs.ok(store, a, Op.READ, b"/c/x") == b"1"


def test_unrelated_changes_do_not_conflict(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    xs.write(store, a, b"/u/x", b"0")
    xs.write(store, a, b"/u/y", b"0")
    tx = xs.start_tx(store, a)
    xs.write(store, a, b"/u/x", b"tx", tx)
    xs.write(store, b, b"/u/y", b"outside")
    assert xs.ok(store, a, Op.TRANSACTION_END, b"T", tx=tx) == b"OK\0"
    assert xs.ok(store, a, Op.READ, b"/u/x") == b"tx"
    assert xs.ok(store, a, Op.READ, b"/u/y") == b"outside"


def test_creating_the_same_node_conflicts(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    tx = xs.start_tx(store, a)
    assert xs.err(store, a, Op.READ, b"/new", tx=tx) == "ENOENT"
    xs.write(store, a, b"/new", b"a", tx)
    xs.write(store, b, b"/new", b"b")
    assert xs.err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"
    assert xs.ok(store, a, Op.READ, b"/new") == b"b"


def test_removal_inside_a_transaction(xs: Any, store: XenStore) -> None:
    a = xs.conn(store)
    xs.write(store, a, b"/rm/a/b", b"")
    tx = xs.start_tx(store, a)
    xs.ok(store, a, Op.RM, b"/rm/a", tx=tx)
    assert xs.err(store, a, Op.READ, b"/rm/a/b", tx=tx) == "ENOENT"
    assert xs.ok(store, a, Op.READ, b"/rm/a/b") == b""
    xs.ok(store, a, Op.TRANSACTION_END, b"T", tx=tx)
    assert xs.err(store, a, Op.READ, b"/rm/a/b") == "ENOENT"


def test_watches_fire_on_commit_only(xs: Any, store: XenStore) -> None:
    a, w = xs.conns(store, 0, 0)
    xs.ok(store, w, Op.WATCH, b"/wt", b"tok")
    w.events.clear()
    tx = xs.start_tx(store, a)
    xs.write(store, a, b"/wt/x", b"1", tx)
    assert w.events == []
    xs.ok(store, a, Op.TRANSACTION_END, b"T", tx=tx)
    assert w.events == [(b"/wt/x", b"tok")]
    tx = xs.start_tx(store, a)
    xs.write(store, a, b"/wt/y", b"1", tx)
    xs.ok(store, a, Op.TRANSACTION_END, b"F", tx=tx)
    assert w.events == [(b"/wt/x", b"tok")]


def test_ids_errors_and_nesting(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    t1 = xs.start_tx(store, a)
    t2 = xs.start_tx(store, a)
    assert t1 != t2
    assert t1 != 0
    assert xs.err(store, b, Op.READ, b"/tool", tx=t1) == "ENOENT"  # ids are per connection
    assert xs.err(store, a, Op.READ, b"/tool", tx=12345) == "ENOENT"
    assert xs.err(store, a, Op.TRANSACTION_START, b"", tx=t1) == "EBUSY"
    assert xs.err(store, a, Op.TRANSACTION_END, b"X", tx=t1) == "EINVAL"
    assert xs.err(store, a, Op.TRANSACTION_END, b"T") == "ENOENT"
    xs.ok(store, a, Op.WATCH, b"/any", b"t", tx=99999)  # WATCH ignores the transaction id


def test_transaction_quota_for_guests_only(xs: Any) -> None:
    store = XenStore(Quotas(transactions=2))
    guest = xs.conn(store, 5)
    opened = [xs.start_tx(store, guest) for _ in range(3)]  # C allows quota + 1
    assert len(set(opened)) == 3
    assert xs.err(store, guest, Op.TRANSACTION_START, b"") == "ENOSPC"
    dom0 = xs.conn(store)
    for _ in range(10):
        xs.start_tx(store, dom0)


def test_transaction_nodes_quota(xs: Any) -> None:
    store = XenStore(Quotas(transaction_nodes=5))
    dom0 = xs.conn(store)
    xs.write(store, dom0, b"/local/domain/5", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/local/domain/5", b"n5")
    guest = xs.conn(store, 5)
    tx = xs.start_tx(store, guest)
    names = [b"n%d" % i for i in range(10)]
    results = [xs.write(store, guest, n, b"x", tx)[1] for n in names]
    assert b"ENOSPC\0" in results
    assert results[0] == b"OK\0"


def test_reset_watches_drops_transactions(xs: Any, store: XenStore) -> None:
    a = xs.conn(store)
    tx = xs.start_tx(store, a)
    assert xs.ok(store, a, Op.RESET_WATCHES, b"") == b"OK\0"
    assert xs.err(store, a, Op.TRANSACTION_END, b"T", tx=tx) == "ENOENT"
