"""Domain messages: INTRODUCE RELEASE IS_DOMAIN_INTRODUCED RESUME SET_TARGET GET_DOMAIN_PATH,
privileged-only checks and CONTROL."""

from __future__ import annotations

from typing import Any

from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.wire import Op


def test_get_domain_path(xs: Any, store: XenStore) -> None:
    s = xs.conn(store, 7)
    assert xs.ok(store, s, Op.GET_DOMAIN_PATH, b"7") == b"/local/domain/7\0"
    assert xs.ok(store, s, Op.GET_DOMAIN_PATH, b"12") == b"/local/domain/12\0"
    assert xs.ok(store, s, Op.GET_DOMAIN_PATH, b"junk") == b"/local/domain/0\0"  # atoi, as C
    assert xs.call(store, s, Op.GET_DOMAIN_PATH, b"") == (Op.ERROR, b"EINVAL\0")


def test_introduce_release_lifecycle_removes_owned_nodes(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"0") == b"T\0"
    assert xs.ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"F\0"
    assert xs.ok(store, s, Op.INTRODUCE, b"4", b"1234", b"5") == b"OK\0"
    assert xs.ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"T\0"
    xs.write(store, s, b"/local/domain/4/name", b"vm")
    xs.ok(store, s, Op.SET_PERMS, b"/local/domain/4", b"n4")
    xs.ok(store, s, Op.SET_PERMS, b"/local/domain/4/name", b"r4")
    xs.write(store, s, b"/vm/kept", b"dom0 owns this")
    assert xs.ok(store, s, Op.RESUME, b"4") == b"OK\0"
    assert xs.ok(store, s, Op.RELEASE, b"4") == b"OK\0"
    assert xs.ok(store, s, Op.IS_DOMAIN_INTRODUCED, b"4") == b"F\0"
    assert xs.err(store, s, Op.READ, b"/local/domain/4") == "ENOENT"
    assert xs.ok(store, s, Op.READ, b"/vm/kept") == b"dom0 owns this"
    assert store.tree.owners.get(4) is None


def test_domain_errors(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    assert xs.err(store, s, Op.INTRODUCE, b"4", b"1") == "EINVAL"
    assert xs.err(store, s, Op.INTRODUCE, b"4", b"1", b"0") == "EINVAL"  # port must be > 0
    assert xs.err(store, s, Op.INTRODUCE, b"x", b"1", b"1") == "EINVAL"
    assert xs.err(store, s, Op.RELEASE, b"4") == "ENOENT"
    assert xs.err(store, s, Op.RELEASE, b"0") == "EINVAL"
    assert xs.err(store, s, Op.RESUME, b"4") == "ENOENT"
    assert xs.err(store, s, Op.SET_TARGET, b"4", b"5") == "ENOENT"
    assert xs.err(store, s, Op.SET_TARGET, b"4") == "EINVAL"
    xs.ok(store, s, Op.INTRODUCE, b"4", b"1", b"1")
    assert xs.err(store, s, Op.INTRODUCE, b"4", b"2", b"1") == "EINVAL"  # another ring


def test_privileged_only_messages(xs: Any, store: XenStore) -> None:
    guest = xs.conn(store, 3)
    for op, args in (
        (Op.INTRODUCE, (b"4", b"1", b"1")),
        (Op.RELEASE, (b"4",)),
        (Op.IS_DOMAIN_INTRODUCED, (b"0",)),
        (Op.RESUME, (b"4",)),
        (Op.SET_TARGET, (b"4", b"5")),
        (Op.CONTROL, (b"print", b"x")),
    ):
        assert xs.err(store, guest, op, *args) == "EACCES"


def test_control(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.CONTROL, b"print", b"hello") == b"OK\0"
    assert xs.ok(store, s, Op.CONTROL, b"check") == b"OK\0"
    assert b"quota" in xs.ok(store, s, Op.CONTROL, b"help")
    assert b"connections: 1" in xs.ok(store, s, Op.CONTROL, b"memreport")
    assert xs.ok(store, s, Op.CONTROL, b"log", b"off") == b"OK\0"
    assert xs.err(store, s, Op.CONTROL, b"frobnicate") == "EINVAL"
    assert xs.err(store, s, Op.CONTROL) == "EINVAL"
