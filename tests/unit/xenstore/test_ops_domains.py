"""Domain messages: INTRODUCE RELEASE IS_DOMAIN_INTRODUCED RESUME SET_TARGET GET_DOMAIN_PATH,
privileged-only checks and CONTROL."""

from __future__ import annotations

from xenlite.xenstore.ops import Session, XenStore
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


def test_get_domain_path() -> None:
    store = XenStore()
    s = conn(store, 7)
    assert ok(store, s, Op.GET_DOMAIN_PATH, b"7") == b"/local/domain/7\0"
    assert ok(store, s, Op.GET_DOMAIN_PATH, b"12") == b"/local/domain/12\0"
    assert ok(store, s, Op.GET_DOMAIN_PATH, b"junk") == b"/local/domain/0\0"  # atoi, as C
    assert call(store, s, Op.GET_DOMAIN_PATH, b"") == (Op.ERROR, b"EINVAL\0")


def test_introduce_release_lifecycle_removes_owned_nodes() -> None:
    store = XenStore()
    s = conn(store)
    assert ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"0") == b"T\0"
    assert ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"F\0"
    assert ok(store, s, Op.INTRODUCE, b"4", b"1234", b"5") == b"OK\0"
    assert ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"T\0"
    write(store, s, b"/local/domain/4/name", b"vm")
    ok(store, s, Op.SET_PERMS, b"/local/domain/4", b"n4")
    ok(store, s, Op.SET_PERMS, b"/local/domain/4/name", b"r4")
    write(store, s, b"/vm/kept", b"dom0 owns this")
    assert ok(store, s, Op.RESUME, b"4") == b"OK\0"
    assert ok(store, s, Op.RELEASE, b"4") == b"OK\0"
    assert ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"F\0"
    assert err(store, s, Op.READ, b"/local/domain/4") == "ENOENT"
    assert ok(store, s, Op.READ, b"/vm/kept") == b"dom0 owns this"
    assert store.tree.owners.get(4) is None


def test_domain_errors() -> None:
    store = XenStore()
    s = conn(store)
    assert err(store, s, Op.INTRODUCE, b"4", b"1") == "EINVAL"
    assert err(store, s, Op.INTRODUCE, b"4", b"1", b"0") == "EINVAL"  # port must be > 0
    assert err(store, s, Op.INTRODUCE, b"x", b"1", b"1") == "EINVAL"
    assert err(store, s, Op.RELEASE, b"4") == "ENOENT"
    assert err(store, s, Op.RELEASE, b"0") == "EINVAL"
    assert err(store, s, Op.RESUME, b"4") == "ENOENT"
    assert err(store, s, Op.SET_TARGET, b"4", b"5") == "ENOENT"
    assert err(store, s, Op.SET_TARGET, b"4") == "EINVAL"
    ok(store, s, Op.INTRODUCE, b"4", b"1", b"1")
    assert err(store, s, Op.INTRODUCE, b"4", b"2", b"1") == "EINVAL"  # another ring


def test_privileged_only_messages() -> None:
    store = XenStore()
    guest = conn(store, 3)
    for op, args in (
        (Op.INTRODUCE, (b"4", b"1", b"1")),
        (Op.RELEASE, (b"4",)),
        (Op.IS_DOMAIN_INTRODUCED, (b"0",)),
        (Op.RESUME, (b"4",)),
        (Op.SET_TARGET, (b"4", b"5")),
        (Op.CONTROL, (b"print", b"x")),
    ):
        assert err(store, guest, op, *args) == "EACCES"


def test_control() -> None:
    store = XenStore()
    s = conn(store)
    assert ok(store, s, Op.CONTROL, b"print", b"hello") == b"OK\0"
    assert ok(store, s, Op.CONTROL, b"check") == b"OK\0"
    assert b"quota" in ok(store, s, Op.CONTROL, b"help")
    assert b"connections: 1" in ok(store, s, Op.CONTROL, b"memreport")
    assert ok(store, s, Op.CONTROL, b"log", b"off") == b"OK\0"
    assert err(store, s, Op.CONTROL, b"frobnicate") == "EINVAL"
    assert err(store, s, Op.CONTROL) == "EINVAL"
