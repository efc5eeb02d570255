"""The daemon's fast paths: tuple frames from a reused buffer, the validated-path cache."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from xenlite.xenstore import ops
from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.wire import Decoder, Op, Packet, ProtocolError, encode_packet


def test_frames_from_a_reused_buffer_are_copies() -> None:
    buf = bytearray(64)
    view = memoryview(buf)
    first = encode_packet(Op.READ, 7, 0, b"/a\0")
    buf[: len(first)] = first
    d = Decoder()
    frames = d.frames(view[: len(first)])
    buf[:] = bytes(64)  # the server overwrites its buffer with the next recv
    assert frames == [(Op.READ, 7, 0, b"/a\0")]
    assert d.pending == 0


def test_frames_keep_a_tail_and_finish_it() -> None:
    stream = encode_packet(Op.WRITE, 1, 3, b"/a\0v") + encode_packet(Op.READ, 2, 0, b"/a\0")
    d = Decoder()
    assert d.frames(stream[:25]) == [(Op.WRITE, 1, 3, b"/a\0v")]
    assert d.pending == 25 - 20
    assert d.frames(memoryview(stream)[25:]) == [(Op.READ, 2, 0, b"/a\0")]
    assert d.pending == 0


def test_feed_and_frames_agree() -> None:
    stream = b"".join(encode_packet(Op.READ, i, 0, b"/x%d\0" % i) for i in range(5))
    assert Decoder().feed(stream) == [Packet(*f) for f in Decoder().frames(stream)]


def test_frames_refuse_an_oversized_header_on_both_paths() -> None:
    bad = encode_packet(Op.READ, 1, 0, b"")[:12] + (5000).to_bytes(4, "little")
    with pytest.raises(ProtocolError):
        Decoder().frames(bad)
    d = Decoder()
    d.frames(bad[:8])
    with pytest.raises(ProtocolError):
        d.frames(bad[8:])


def test_cached_path_is_still_checked_for_unprivileged_callers(xs: Any, store: XenStore) -> None:
    dom0, dom5 = xs.conns(store, 0, 5)
    long = b"/local/domain/5/" + b"x" * 300
    xs.ok(store, dom0, Op.WRITE, long, b"v")  # dom0 has no path quota: now cached
    assert long in ops._CHECKED
    store.quotas = replace(store.quotas, path_length=100)
    assert xs.err(store, dom5, Op.READ, long) == "EINVAL"
    assert xs.ok(store, dom0, Op.READ, long) == b"v\0"


def test_invalid_paths_are_never_cached(xs: Any, store: XenStore) -> None:
    dom0 = xs.conn(store, 0)
    for raw in (b"/a//b", b"/a/", b"/a b"):
        assert xs.err(store, dom0, Op.READ, raw) == "EINVAL"
        assert raw not in ops._CHECKED


def test_unwatched_write_changes_the_node_in_place(xs: Any, store: XenStore) -> None:
    dom0 = xs.conn(store, 0)
    assert xs.write(store, dom0, b"/a/b", b"1")[0] == Op.WRITE
    node = store.tree.lookup(b"/a/b")
    root = store.tree.root
    assert xs.write(store, dom0, b"/a/b", b"2")[0] == Op.WRITE
    # No transaction open: no copy of the node or its ancestors, nothing left queued.
    assert store.tree.lookup(b"/a/b") is node
    assert store.tree.root is root
    assert node is not None
    assert node.value == b"2"
    assert store.tree.events == []


def test_dom0_write_in_a_transaction_joins_the_read_set(xs: Any, store: XenStore) -> None:
    dom0, other = xs.conns(store, 0, 0)
    xs.write(store, dom0, b"/t/k", b"0")
    for meanwhile in (b"/t/k", b"/t/new"):  # an existing node it wrote, one it created
        tx = xs.start_tx(store, dom0)
        assert xs.write(store, dom0, b"/t/k", b"1", tx)[0] == Op.WRITE
        assert xs.write(store, dom0, b"/t/new/deep", b"x", tx)[0] == Op.WRITE
        xs.write(store, other, meanwhile, b"changed")
        assert xs.err(store, dom0, Op.TRANSACTION_END, b"T", tx=tx) == "EAGAIN"
        assert xs.err(store, dom0, Op.READ, b"/t/new/deep") == "ENOENT"


def test_guest_write_still_checks_permissions_before_creating(xs: Any, store: XenStore) -> None:
    dom0, dom5 = xs.conns(store, 0, 5)
    xs.ok(store, dom0, Op.MKDIR, b"/locked")
    assert xs.err(store, dom5, Op.WRITE, b"/locked/x\0v") == "EACCES"
    assert xs.err(store, dom0, Op.READ, b"/locked/x") == "ENOENT"


def test_watch_still_fires_after_unwatched_writes(xs: Any, store: XenStore) -> None:
    dom0, watcher = xs.conns(store, 0, 0)
    xs.write(store, dom0, b"/w/a", b"1")
    xs.ok(store, watcher, Op.WATCH, b"/w", b"tok")
    watcher.events.clear()
    xs.write(store, dom0, b"/w/a", b"2")
    assert watcher.events == [(b"/w/a", b"tok")]
