"""Watches: initial event, node and descendants, removal, relative paths, tokens, specials."""

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


def test_initial_event_then_changes_below() -> None:
    store = XenStore()
    s = conn(store)
    assert ok(store, s, Op.WATCH, b"/w", b"tok") == b"OK\0"
    assert s.events == [(b"/w", b"tok")]  # fired at once, even for a missing node
    write(store, s, b"/w/a/b", b"1")
    write(store, s, b"/w", b"2")
    write(store, s, b"/wx", b"not below")
    ok(store, s, Op.MKDIR, b"/w/m")
    ok(store, s, Op.MKDIR, b"/w/m")  # exists: no event
    ok(store, s, Op.SET_PERMS, b"/w/m", b"n0")
    assert s.events[1:] == [
        (b"/w/a/b", b"tok"),
        (b"/w", b"tok"),
        (b"/w/m", b"tok"),
        (b"/w/m", b"tok"),
    ]


def test_root_watch_sees_everything() -> None:
    store = XenStore()
    s = conn(store)
    ok(store, s, Op.WATCH, b"/", b"all")
    write(store, s, b"/x/y", b"")
    assert s.events == [(b"/", b"all"), (b"/x/y", b"all")]


def test_rm_fires_the_node_its_ancestors_and_watched_descendants() -> None:
    store = XenStore()
    s = conn(store)
    write(store, s, b"/r/a/b/c", b"")
    ok(store, s, Op.WATCH, b"/r", b"top")
    ok(store, s, Op.WATCH, b"/r/a/b", b"deep")
    ok(store, s, Op.WATCH, b"/r/a/nothere", b"missing")
    s.events.clear()
    ok(store, s, Op.RM, b"/r/a")
    assert sorted(s.events) == sorted([(b"/r/a", b"top"), (b"/r/a/b", b"deep")])


def test_relative_watch_reports_relative_paths() -> None:
    store = XenStore()
    s = conn(store, 0)
    assert ok(store, s, Op.WATCH, b"device", b"rel") == b"OK\0"
    assert s.events == [(b"device", b"rel")]
    write(store, s, b"/local/domain/0/device/vif/0", b"")
    assert s.events[-1] == (b"device/vif/0", b"rel")
    assert ok(store, s, Op.UNWATCH, b"device", b"rel") == b"OK\0"
    write(store, s, b"/local/domain/0/device/x", b"")
    assert len(s.events) == 2


def test_tokens_duplicates_and_unwatch() -> None:
    store = XenStore()
    s = conn(store)
    ok(store, s, Op.WATCH, b"/t", b"one")
    ok(store, s, Op.WATCH, b"/t", b"two")
    assert err(store, s, Op.WATCH, b"/t", b"one") == "EEXIST"
    s.events.clear()
    write(store, s, b"/t", b"")
    assert sorted(s.events) == [(b"/t", b"one"), (b"/t", b"two")]
    ok(store, s, Op.UNWATCH, b"/t", b"one")
    assert err(store, s, Op.UNWATCH, b"/t", b"one") == "ENOENT"
    assert err(store, s, Op.WATCH, b"/t") == "EINVAL"
    assert err(store, s, Op.WATCH, b"/bad//path", b"x") == "EINVAL"


def test_watches_are_per_connection_and_go_with_it() -> None:
    store = XenStore()
    a = conn(store)
    b = conn(store)
    ok(store, a, Op.WATCH, b"/p", b"t")
    ok(store, b, Op.WATCH, b"/p", b"t")  # same token on another connection is fine
    store.detach(a)
    a.events.clear()
    b.events.clear()
    write(store, b, b"/p", b"")
    assert a.events == []
    assert b.events == [(b"/p", b"t")]


def test_reset_watches() -> None:
    store = XenStore()
    s = conn(store)
    ok(store, s, Op.WATCH, b"/q", b"t")
    ok(store, s, Op.RESET_WATCHES, b"")
    s.events.clear()
    write(store, s, b"/q", b"")
    assert s.events == []
    ok(store, s, Op.WATCH, b"/q", b"t")  # no EEXIST after the reset


def test_special_paths() -> None:
    store = XenStore()
    s = conn(store)
    guest = conn(store, 3)
    ok(store, s, Op.WATCH, b"@introduceDomain", b"in")
    ok(store, s, Op.WATCH, b"@releaseDomain", b"out")
    ok(store, guest, Op.WATCH, b"@releaseDomain", b"g")
    assert s.events == [(b"@introduceDomain", b"in"), (b"@releaseDomain", b"out")]
    s.events.clear()
    guest.events.clear()
    write(store, s, b"/local/domain/5/name", b"guest")
    assert s.events == []  # special watches do not see node changes
    ok(store, s, Op.INTRODUCE, b"5", b"100", b"3")
    assert s.events == [(b"@introduceDomain", b"in")]
    ok(store, s, Op.INTRODUCE, b"5", b"100", b"3")  # again: no second event
    assert s.events == [(b"@introduceDomain", b"in")]
    ok(store, s, Op.RELEASE, b"5")
    assert s.events == [(b"@introduceDomain", b"in"), (b"@releaseDomain", b"out")]
    assert guest.events == []  # @releaseDomain is n0: guests do not hear it
