"""Quotas: C xenstored's limits and errors for guests, none for dom0; EQUOTA behind an option."""

from __future__ import annotations

import pytest

from xenlite.base.errors import XenStoreError
from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.quota import Quotas, set_quota
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


def guest_store(quotas: Quotas) -> tuple[XenStore, Sess, Sess]:
    store = XenStore(quotas)
    dom0 = conn(store)
    write(store, dom0, b"/local/domain/5", b"")
    ok(store, dom0, Op.SET_PERMS, b"/local/domain/5", b"n5")
    return store, dom0, conn(store, 5)


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


def test_node_quota_counts_owned_nodes() -> None:
    store, dom0, guest = guest_store(Quotas(nodes=4))  # /local/domain/5 itself counts
    assert write(store, guest, b"a", b"")[0] == Op.WRITE
    assert write(store, guest, b"b/c", b"")[0] == Op.WRITE  # two new nodes: 4 owned
    assert err(store, guest, Op.WRITE, b"d") == "ENOSPC"
    ok(store, guest, Op.RM, b"b")
    assert write(store, guest, b"d", b"")[0] == Op.WRITE
    for i in range(20):  # dom0 is never limited
        write(store, dom0, b"/local/domain/5/x%d" % i, b"")


def test_node_size_quota() -> None:
    store, dom0, guest = guest_store(Quotas(node_size=100))
    assert write(store, guest, b"small", b"x" * 40) == (Op.WRITE, b"OK\0")
    assert write(store, guest, b"big", b"x" * 100) == (Op.ERROR, b"ENOSPC\0")
    assert write(store, guest, b"small", b"x" * 100) == (Op.ERROR, b"ENOSPC\0")
    assert write(store, dom0, b"/local/domain/5/small", b"x" * 3000)[0] == Op.WRITE


def test_watch_quota_is_e2big() -> None:
    store, _dom0, guest = guest_store(Quotas(watches=2))
    for i in range(3):  # C checks "more than the quota" before adding
        assert ok(store, guest, Op.WATCH, b"w%d" % i, b"t") == b"OK\0"
    assert err(store, guest, Op.WATCH, b"w9", b"t") == "E2BIG"


def test_permissions_per_node_quota() -> None:
    store, dom0, guest = guest_store(Quotas(node_permissions=2))
    write(store, guest, b"n", b"")
    assert ok(store, guest, Op.SET_PERMS, b"n", b"n5", b"r1") == b"OK\0"
    assert err(store, guest, Op.SET_PERMS, b"n", b"n5", b"r1", b"r2") == "ENOSPC"
    assert ok(store, dom0, Op.SET_PERMS, b"/local/domain/5/n", *[b"r%d" % i for i in range(9)])


def test_path_length_quota() -> None:
    store, _dom0, guest = guest_store(Quotas(path_length=10))
    assert write(store, guest, b"a" * 10, b"")[0] == Op.WRITE
    assert err(store, guest, Op.READ, b"a" * 11) == "EINVAL"


def test_equota_option() -> None:
    store, _dom0, guest = guest_store(Quotas(nodes=2, equota=True))
    write(store, guest, b"a", b"")
    assert err(store, guest, Op.WRITE, b"b") == "EQUOTA"


def test_control_quota_reports_and_sets() -> None:
    store, dom0, guest = guest_store(Quotas())
    text = ok(store, dom0, Op.CONTROL, b"quota")
    assert b"nodes: 1000\n" in text
    assert ok(store, dom0, Op.CONTROL, b"quota", b"nodes", b"2") == b"OK\0"
    assert store.quotas.nodes == 2
    ok(store, dom0, Op.INTRODUCE, b"5", b"1", b"1")
    write(store, guest, b"a", b"")
    assert b"nodes: 2\n" in ok(store, dom0, Op.CONTROL, b"quota", b"5")
    assert err(store, dom0, Op.CONTROL, b"quota", b"77") == "ENOENT"
    assert err(store, dom0, Op.CONTROL, b"quota", b"nosuch", b"1") == "EINVAL"
