"""Permissions: the n/r/w/b matrix, owners, inheritance, dom0 privilege, hiding, targets."""

from __future__ import annotations

from typing import Any

import pytest

from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.path import StoreError
from xenlite.xenstore.perms import PERM_ALL, PERM_READ, PERM_WRITE, parse_perms
from xenlite.xenstore.wire import Op


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
def test_matrix_for_a_listed_domain(
    perm: bytes, can_read: bool, can_write: bool, xs: Any, store: XenStore
) -> None:
    dom0, guest = xs.conns(store, 0, 5)
    xs.write(store, dom0, b"/m/node", b"v")
    xs.ok(store, dom0, Op.SET_PERMS, b"/m", b"n0", b"r5")
    xs.ok(store, dom0, Op.SET_PERMS, b"/m/node", b"n0", perm + b"5")
    read = xs.call(store, guest, Op.READ, b"/m/node\0")
    assert (read == (Op.READ, b"v")) is can_read
    if not can_read:
        assert read == (Op.ERROR, b"EACCES\0")
    wrote = xs.write(store, guest, b"/m/node", b"new")
    assert (wrote == (Op.WRITE, b"OK\0")) is can_write
    if not can_write:
        assert wrote == (Op.ERROR, b"EACCES\0")


def test_missing_node_answers_enoent_only_when_parent_allows(xs: Any, store: XenStore) -> None:
    dom0, guest = xs.conns(store, 0, 5)
    xs.write(store, dom0, b"/secret/x", b"")
    xs.write(store, dom0, b"/open/x", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/open", b"n0", b"r5")
    assert xs.err(store, guest, Op.READ, b"/secret/nothing") == "EACCES"
    assert xs.err(store, guest, Op.READ, b"/open/nothing") == "ENOENT"
    assert xs.err(store, guest, Op.READ, b"/open/a/b/c") == "ENOENT"  # nearest ancestor decides
    assert xs.err(store, guest, Op.WRITE, b"/open/new") == "EACCES"  # creating needs write


def test_dom0_is_privileged_everywhere(xs: Any, store: XenStore) -> None:
    dom0, guest = xs.conns(store, 0, 5)
    xs.write(store, dom0, b"/g", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/g", b"n5")
    xs.write(store, guest, b"/g/own", b"mine")
    xs.ok(store, guest, Op.SET_PERMS, b"/g/own", b"n5")
    assert xs.ok(store, dom0, Op.READ, b"/g/own") == b"mine"
    assert xs.ok(store, dom0, Op.SET_PERMS, b"/g/own", b"n9") == b"OK\0"


def test_unprivileged_creator_owns_and_inherits_the_rest(xs: Any, store: XenStore) -> None:
    dom0, guest = xs.conns(store, 0, 5)
    xs.write(store, dom0, b"/h", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/h", b"r0", b"b5", b"w6")
    xs.write(store, guest, b"/h/a/b", b"x")
    assert xs.ok(store, dom0, Op.GET_PERMS, b"/h/a") == b"r5\0b5\0w6\0"
    assert xs.ok(store, dom0, Op.GET_PERMS, b"/h/a/b") == b"r5\0b5\0w6\0"
    xs.write(store, dom0, b"/h/dom0made", b"")
    assert xs.ok(store, dom0, Op.GET_PERMS, b"/h/dom0made") == b"r0\0b5\0w6\0"


def test_set_perms_needs_ownership_and_keeps_owner(xs: Any, store: XenStore) -> None:
    dom0, guest, other = xs.conns(store, 0, 5, 6)
    xs.write(store, dom0, b"/s", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/s", b"b5")
    xs.write(store, dom0, b"/s/n", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/s/n", b"n5", b"b6")
    assert xs.err(store, other, Op.SET_PERMS, b"/s/n", b"n6") == "EACCES"  # b is not ownership
    assert xs.err(store, guest, Op.SET_PERMS, b"/s/n", b"n6") == "EPERM"
    assert xs.ok(store, guest, Op.SET_PERMS, b"/s/n", b"r5", b"n6") == b"OK\0"
    assert xs.err(store, other, Op.READ, b"/s/n") == "EACCES"


def test_watch_events_respect_read_permission(xs: Any, store: XenStore) -> None:
    dom0, guest = xs.conns(store, 0, 5)
    xs.write(store, dom0, b"/w/hidden", b"")
    xs.ok(store, dom0, Op.SET_PERMS, b"/w", b"n0")
    xs.ok(store, dom0, Op.SET_PERMS, b"/w/hidden", b"n0")
    xs.ok(store, guest, Op.WATCH, b"/w", b"t")
    guest.events.clear()
    xs.write(store, dom0, b"/w/hidden", b"changed")
    assert guest.events == []
    xs.ok(store, dom0, Op.SET_PERMS, b"/w/hidden", b"n0", b"r5")
    assert guest.events == [(b"/w/hidden", b"t")]


def test_set_target_gives_the_device_model_its_guest_s_rights(xs: Any, store: XenStore) -> None:
    dom0, dm = xs.conns(store, 0, 9)
    xs.write(store, dom0, b"/local/domain/5/x", b"guest data")
    xs.ok(store, dom0, Op.SET_PERMS, b"/local/domain/5/x", b"n5")
    assert xs.err(store, dm, Op.READ, b"/local/domain/5/x") == "EACCES"
    xs.ok(store, dom0, Op.INTRODUCE, b"5", b"1", b"1")
    xs.ok(store, dom0, Op.INTRODUCE, b"9", b"2", b"2")
    assert xs.ok(store, dom0, Op.SET_TARGET, b"9", b"5") == b"OK\0"
    assert xs.ok(store, dm, Op.READ, b"/local/domain/5/x") == b"guest data"
