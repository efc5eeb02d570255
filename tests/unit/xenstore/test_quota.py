"""Quotas: C xenstored's limits and errors for guests, none for dom0; EQUOTA behind an option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from xenlite.base.errors import XenStoreError
from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.quota import Quotas, set_quota
from xenlite.xenstore.wire import Op

# The conftest fixture ``xs`` (XsHarness) makes the connections; they are typed Any here.
GuestStore = Callable[[Quotas], tuple[XenStore, Any, Any]]


@pytest.fixture
def guest_store(xs: Any) -> GuestStore:
    """``guest_store(quotas)``: a store, a dom0 connection and one of domain 5, which owns its
    home /local/domain/5."""

    def make(quotas: Quotas) -> tuple[XenStore, Any, Any]:
        store = XenStore(quotas)
        dom0 = xs.conn(store)
        xs.write(store, dom0, b"/local/domain/5", b"")
        xs.ok(store, dom0, Op.SET_PERMS, b"/local/domain/5", b"n5")
        return store, dom0, xs.conn(store, 5)

    return make


def test_defaults_are_c_xenstored_4_17() -> None:
    q = Quotas()
    assert (q.nodes, q.node_size, q.watches, q.transactions) == (1000, 2048, 128, 10)
    assert (q.node_permissions, q.path_length, q.transaction_nodes, q.outstanding) == (
        5,
        2048,
        1024,
        20,
    )


def test_set_quota_names() -> None:
    q = set_quota(Quotas(), "nodes=7")
    assert q.nodes == 7
    assert set_quota(q, "transaction-nodes=3").transaction_nodes == 3
    assert set_quota(q, "path-length=9999").path_length == 2048
    with pytest.raises(XenStoreError):
        set_quota(q, "bogus=1")
    with pytest.raises(XenStoreError):
        set_quota(q, "nodes=x")


def test_node_quota_counts_owned_nodes(xs: Any, guest_store: GuestStore) -> None:
    store, dom0, guest = guest_store(Quotas(nodes=4))  # /local/domain/5 itself counts
    assert xs.write(store, guest, b"a", b"")[0] == Op.WRITE
    assert xs.write(store, guest, b"b/c", b"")[0] == Op.WRITE  # two new nodes: 4 owned
    assert xs.err(store, guest, Op.WRITE, b"d") == "ENOSPC"
    xs.ok(store, guest, Op.RM, b"b")
    assert xs.write(store, guest, b"d", b"")[0] == Op.WRITE
    for i in range(20):  # dom0 is never limited
        xs.write(store, dom0, b"/local/domain/5/x%d" % i, b"")


def test_node_size_quota(xs: Any, guest_store: GuestStore) -> None:
    store, dom0, guest = guest_store(Quotas(node_size=100))
    assert xs.write(store, guest, b"small", b"x" * 40) == (Op.WRITE, b"OK\0")
    assert xs.write(store, guest, b"big", b"x" * 100) == (Op.ERROR, b"ENOSPC\0")
    assert xs.write(store, guest, b"small", b"x" * 100) == (Op.ERROR, b"ENOSPC\0")
    assert xs.write(store, dom0, b"/local/domain/5/small", b"x" * 3000)[0] == Op.WRITE


def test_watch_quota_is_e2big(xs: Any, guest_store: GuestStore) -> None:
    store, _dom0, guest = guest_store(Quotas(watches=2))
    for i in range(3):  # C checks "more than the quota" before adding
        assert xs.ok(store, guest, Op.WATCH, b"w%d" % i, b"t") == b"OK\0"
    assert xs.err(store, guest, Op.WATCH, b"w9", b"t") == "E2BIG"


def test_permissions_per_node_quota(xs: Any, guest_store: GuestStore) -> None:
    store, dom0, guest = guest_store(Quotas(node_permissions=2))
    xs.write(store, guest, b"n", b"")
    assert xs.ok(store, guest, Op.SET_PERMS, b"n", b"n5", b"r1") == b"OK\0"
    assert xs.err(store, guest, Op.SET_PERMS, b"n", b"n5", b"r1", b"r2") == "ENOSPC"
    assert xs.ok(store, dom0, Op.SET_PERMS, b"/local/domain/5/n", *[b"r%d" % i for i in range(9)])


def test_path_length_quota(xs: Any, guest_store: GuestStore) -> None:
    store, _dom0, guest = guest_store(Quotas(path_length=10))
    assert xs.write(store, guest, b"a" * 10, b"")[0] == Op.WRITE
    assert xs.err(store, guest, Op.READ, b"a" * 11) == "EINVAL"


def test_equota_option(xs: Any, guest_store: GuestStore) -> None:
    store, _dom0, guest = guest_store(Quotas(nodes=2, equota=True))
    xs.write(store, guest, b"a", b"")
    assert xs.err(store, guest, Op.WRITE, b"b") == "EQUOTA"


def test_control_quota_reports_and_sets(xs: Any, guest_store: GuestStore) -> None:
    store, dom0, guest = guest_store(Quotas())
    text = xs.ok(store, dom0, Op.CONTROL, b"quota")
    assert b"nodes: 1000\n" in text
    assert xs.ok(store, dom0, Op.CONTROL, b"quota", b"nodes", b"2") == b"OK\0"
    assert store.quotas.nodes == 2
    xs.ok(store, dom0, Op.INTRODUCE, b"5", b"1", b"1")
    xs.write(store, guest, b"a", b"")
    assert b"nodes: 2\n" in xs.ok(store, dom0, Op.CONTROL, b"quota", b"5")
    assert xs.err(store, dom0, Op.CONTROL, b"quota", b"77") == "ENOENT"
    assert xs.err(store, dom0, Op.CONTROL, b"quota", b"nosuch", b"1") == "EINVAL"
