"""Permissions: the n/r/w/b matrix, owners, inheritance, dom0 privilege, hiding, targets."""

from __future__ import annotations

import pytest

from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.path import StoreError
from xenlite.xenstore.perms import PERM_ALL, PERM_READ, PERM_WRITE, parse_perms
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


def test_parse_and_wire() -> None:
    p = parse_perms([b"n0", b"r5", b"w6", b"b7"])
    assert p.owner == 0
    assert p.wire == b"n0\0r5\0w6\0b7\0"
    assert p.strings() == ["n0", "r5", "w6", "b7"]
    assert parse_perms([b"n0"]) is parse_perms([b"n0"])  # shared
    assert parse_perms([b"r0x10", b"w010", b"b+3"]).wire == b"r16\0w8\0b3\0"
    assert parse_perms([b"r-1"]).owner == 0xFFFFFFFF  # as C stores it: no such domain
    for bad in (b"", b"q1", b"r", b"r5x", b"r--1", b"r0x"):
        with pytest.raises(StoreError):
            parse_perms([bad])


def test_for_domain_rules() -> None:
    p = parse_perms([b"r3", b"w5", b"n6", b"b7"])
    assert p.for_domain(3) == PERM_ALL  # owner
    assert p.for_domain(5) == PERM_WRITE
    assert p.for_domain(6) == 0
    assert p.for_domain(7) == PERM_READ | PERM_WRITE
    assert p.for_domain(9) == PERM_READ  # default from the owner entry
    assert p.for_domain(9, target=3) == PERM_ALL  # device model of the owner
    assert p.for_domain(9, target=5) == PERM_WRITE


@pytest.mark.parametrize(
    ("perm", "can_read", "can_write"),
    [(b"n", False, False), (b"r", True, False), (b"w", False, True), (b"b", True, True)],
)
def test_matrix_for_a_listed_domain(perm: bytes, can_read: bool, can_write: bool) -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    write(store, dom0, b"/m/node", b"v")
    ok(store, dom0, Op.SET_PERMS, b"/m", b"n0", b"r5")
    ok(store, dom0, Op.SET_PERMS, b"/m/node", b"n0", perm + b"5")
    read = call(store, guest, Op.READ, b"/m/node\0")
    assert (read == (Op.READ, b"v")) is can_read
    if not can_read:
        assert read == (Op.ERROR, b"EACCES\0")
    wrote = write(store, guest, b"/m/node", b"new")
    assert (wrote == (Op.WRITE, b"OK\0")) is can_write
    if not can_write:
        assert wrote == (Op.ERROR, b"EACCES\0")


def test_missing_node_answers_enoent_only_when_parent_allows() -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    write(store, dom0, b"/secret/x", b"")
    write(store, dom0, b"/open/x", b"")
    ok(store, dom0, Op.SET_PERMS, b"/open", b"n0", b"r5")
    assert err(store, guest, Op.READ, b"/secret/nothing") == "EACCES"
    assert err(store, guest, Op.READ, b"/open/nothing") == "ENOENT"
    assert err(store, guest, Op.READ, b"/open/a/b/c") == "ENOENT"  # nearest ancestor decides
    assert err(store, guest, Op.WRITE, b"/open/new") == "EACCES"  # creating needs write


def test_dom0_is_privileged_everywhere() -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    write(store, dom0, b"/g", b"")
    ok(store, dom0, Op.SET_PERMS, b"/g", b"n5")
    write(store, guest, b"/g/own", b"mine")
    ok(store, guest, Op.SET_PERMS, b"/g/own", b"n5")
    assert ok(store, dom0, Op.READ, b"/g/own") == b"mine"
    assert ok(store, dom0, Op.SET_PERMS, b"/g/own", b"n9") == b"OK\0"


def test_unprivileged_creator_owns_and_inherits_the_rest() -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    write(store, dom0, b"/h", b"")
    ok(store, dom0, Op.SET_PERMS, b"/h", b"r0", b"b5", b"w6")
    write(store, guest, b"/h/a/b", b"x")
    assert ok(store, dom0, Op.GET_PERMS, b"/h/a") == b"r5\0b5\0w6\0"
    assert ok(store, dom0, Op.GET_PERMS, b"/h/a/b") == b"r5\0b5\0w6\0"
    write(store, dom0, b"/h/dom0made", b"")
    assert ok(store, dom0, Op.GET_PERMS, b"/h/dom0made") == b"r0\0b5\0w6\0"


def test_set_perms_needs_ownership_and_keeps_owner() -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    other = conn(store, 6)
    write(store, dom0, b"/s", b"")
    ok(store, dom0, Op.SET_PERMS, b"/s", b"b5")
    write(store, dom0, b"/s/n", b"")
    ok(store, dom0, Op.SET_PERMS, b"/s/n", b"n5", b"b6")
    assert err(store, other, Op.SET_PERMS, b"/s/n", b"n6") == "EACCES"  # b is not ownership
    assert err(store, guest, Op.SET_PERMS, b"/s/n", b"n6") == "EPERM"
    assert ok(store, guest, Op.SET_PERMS, b"/s/n", b"r5", b"n6") == b"OK\0"
    assert err(store, other, Op.READ, b"/s/n") == "EACCES"


def test_watch_events_respect_read_permission() -> None:
    store = XenStore()
    dom0 = conn(store)
    guest = conn(store, 5)
    write(store, dom0, b"/w/hidden", b"")
    ok(store, dom0, Op.SET_PERMS, b"/w", b"n0")
    ok(store, dom0, Op.SET_PERMS, b"/w/hidden", b"n0")
    ok(store, guest, Op.WATCH, b"/w", b"t")
    guest.events.clear()
    write(store, dom0, b"/w/hidden", b"changed")
    assert guest.events == []
    ok(store, dom0, Op.SET_PERMS, b"/w/hidden", b"n0", b"r5")
    assert guest.events == [(b"/w/hidden", b"t")]


def test_set_target_gives_the_device_model_its_guest_s_rights() -> None:
    store = XenStore()
    dom0 = conn(store)
    dm = conn(store, 9)
    write(store, dom0, b"/local/domain/5/x", b"guest data")
    ok(store, dom0, Op.SET_PERMS, b"/local/domain/5/x", b"n5")
    assert err(store, dm, Op.READ, b"/local/domain/5/x") == "EACCES"
    ok(store, dom0, Op.INTRODUCE, b"5", b"1", b"1")
    ok(store, dom0, Op.INTRODUCE, b"9", b"2", b"2")
    assert ok(store, dom0, Op.SET_TARGET, b"9", b"5") == b"OK\0"
    assert ok(store, dm, Op.READ, b"/local/domain/5/x") == b"guest data"
