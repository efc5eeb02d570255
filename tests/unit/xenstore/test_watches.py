"""Watches: initial event, node and descendants, removal, relative paths, tokens, specials."""

from __future__ import annotations

from typing import Any

from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.wire import Op


def test_initial_event_then_changes_below(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.WATCH, b"/w", b"tok") == b"OK\0"
    assert s.events == [(b"/w", b"tok")]  # fired at once, even for a missing node
    xs.write(store, s, b"/w/a/b", b"1")
    xs.write(store, s, b"/w", b"2")
    xs.write(store, s, b"/wx", b"not below")
    xs.ok(store, s, Op.MKDIR, b"/w/m")
    xs.ok(store, s, Op.MKDIR, b"/w/m")  # exists: no event
    xs.ok(store, s, Op.SET_PERMS, b"/w/m", b"n0")
    assert s.events[1:] == [
        (b"/w/a/b", b"tok"),
        (b"/w", b"tok"),
        (b"/w/m", b"tok"),
        (b"/w/m", b"tok"),
    ]


def test_root_watch_sees_everything(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    xs.ok(store, s, Op.WATCH, b"/", b"all")
    xs.write(store, s, b"/x/y", b"")
    assert s.events == [(b"/", b"all"), (b"/x/y", b"all")]


def test_rm_fires_the_node_its_ancestors_and_watched_descendants(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    xs.write(store, s, b"/r/a/b/c", b"")
    xs.ok(store, s, Op.WATCH, b"/r", b"top")
    xs.ok(store, s, Op.WATCH, b"/r/a/b", b"deep")
    xs.ok(store, s, Op.WATCH, b"/r/a/nothere", b"missing")
    s.events.clear()
    xs.ok(store, s, Op.RM, b"/r/a")
    assert sorted(s.events) == sorted([(b"/r/a", b"top"), (b"/r/a/b", b"deep")])


def test_relative_watch_reports_relative_paths(xs: Any, store: XenStore) -> None:
    s = xs.conn(store, 0)
    assert xs.ok(store, s, Op.WATCH, b"device", b"rel") == b"OK\0"
    assert s.events == [(b"device", b"rel")]
    xs.write(store, s, b"/local/domain/0/device/vif/0", b"")
    assert s.events[-1] == (b"device/vif/0", b"rel")
    assert xs.ok(store, s, Op.UNWATCH, b"device", b"rel") == b"OK\0"
    xs.write(store, s, b"/local/domain/0/device/x", b"")
    assert len(s.events) == 2


def test_tokens_duplicates_and_unwatch(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    xs.ok(store, s, Op.WATCH, b"/t", b"one")
    xs.ok(store, s, Op.WATCH, b"/t", b"two")
    assert xs.err(store, s, Op.WATCH, b"/t", b"one") == "EEXIST"
    s.events.clear()
    xs.write(store, s, b"/t", b"")
    assert sorted(s.events) == [(b"/t", b"one"), (b"/t", b"two")]
    xs.ok(store, s, Op.UNWATCH, b"/t", b"one")
    assert xs.err(store, s, Op.UNWATCH, b"/t", b"one") == "ENOENT"
    assert xs.err(store, s, Op.WATCH, b"/t") == "EINVAL"
    assert xs.err(store, s, Op.WATCH, b"/bad//path", b"x") == "EINVAL"


def test_watches_are_per_connection_and_go_with_it(xs: Any, store: XenStore) -> None:
    a, b = xs.conns(store, 0, 0)
    xs.ok(store, a, Op.WATCH, b"/p", b"t")
    xs.ok(store, b, Op.WATCH, b"/p", b"t")  # same token on another connection is fine
    store.detach(a)
    a.events.clear()
    b.events.clear()
    xs.write(store, b, b"/p", b"")
    assert a.events == []
    assert b.events == [(b"/p", b"t")]


def test_reset_watches(xs: Any, store: XenStore) -> None:
    s = xs.conn(store)
    xs.ok(store, s, Op.WATCH, b"/q", b"t")
    xs.ok(store, s, Op.RESET_WATCHES, b"")
    s.events.clear()
    xs.write(store, s, b"/q", b"")
    assert s.events == []
    xs.ok(store, s, Op.WATCH, b"/q", b"t")  # no EEXIST after the reset


def test_special_paths(xs: Any, store: XenStore) -> None:
    s, guest = xs.conns(store, 0, 3)
    xs.ok(store, s, Op.WATCH, b"@introduceDomain", b"in")
    xs.ok(store, s, Op.WATCH, b"@releaseDomain", b"out")
    xs.ok(store, guest, Op.WATCH, b"@releaseDomain", b"g")
    assert s.events == [(b"@introduceDomain", b"in"), (b"@releaseDomain", b"out")]
    s.events.clear()
    guest.events.clear()
    xs.write(store, s, b"/local/domain/5/name", b"guest")
    assert s.events == []  # special watches do not see node changes
    xs.ok(store, s, Op.INTRODUCE, b"5", b"100", b"3")
    assert s.events == [(b"@introduceDomain", b"in")]
    xs.ok(store, s, Op.INTRODUCE, b"5", b"100", b"3")  # again: no second event
    assert s.events == [(b"@introduceDomain", b"in")]
    xs.ok(store, s, Op.RELEASE, b"5")
    assert s.events == [(b"@introduceDomain", b"in"), (b"@releaseDomain", b"out")]
    assert guest.events == []  # @releaseDomain is n0: guests do not hear it
