"""The persistent tree: copy-on-write by epoch, O(1) snapshots, generations, owner counts."""

from __future__ import annotations

import pytest

from xenlite.xenstore.path import (
    StoreError,
    ancestors_and_self,
    canonicalize,
    is_child,
    parent,
)
from xenlite.xenstore.perms import parse_perms
from xenlite.xenstore.tree import UNLIMITED, Caller, Tree, walk

DOM0 = Caller(0, True)


def test_canonicalize() -> None:
    assert canonicalize(b"/a/b", 3) == b"/a/b"
    assert canonicalize(b"a/b", 3) == b"/local/domain/3/a/b"
    assert canonicalize(b"@x", 0, allow_special=True) == b"@x"
    assert canonicalize(b"/", 0) == b"/"
    for bad in (b"", b"/a/", b"a//b", b"/a\xff", b"/a.b", b"/a b"):
        with pytest.raises(StoreError):
            canonicalize(bad, 0)
    with pytest.raises(StoreError):
        canonicalize(b"@x", 0)
    assert canonicalize(b"/local/domain/3/" + b"a" * 10, 3, path_max=10)
    with pytest.raises(StoreError):
        canonicalize(b"/local/domain/3/" + b"a" * 11, 3, path_max=10)


def test_path_helpers() -> None:
    assert parent(b"/a/b") == b"/a"
    assert parent(b"/a") == b"/"
    assert is_child(b"/a/b", b"/a")
    assert is_child(b"/a", b"/a")
    assert not is_child(b"/ab", b"/a")
    assert is_child(b"/anything", b"/")
    assert ancestors_and_self(b"/a/b") == [b"/a/b", b"/a", b"/"]


def test_snapshot_is_isolated_and_shares_untouched_nodes() -> None:
    tree = Tree()
    for i in range(10):
        tree.write(DOM0, b"/d%d/x" % i, b"v", UNLIMITED)
    snap = tree.snapshot()
    tree.write(DOM0, b"/d0/x", b"changed", UNLIMITED)
    snap.write(DOM0, b"/d1/x", b"tx", UNLIMITED)
    assert snap.lookup(b"/d0/x").value == b"v"  # type: ignore[union-attr]
    assert tree.lookup(b"/d1/x").value == b"v"  # type: ignore[union-attr]
    assert tree.lookup(b"/d5") is snap.lookup(b"/d5")  # shared, not copied
    assert tree.lookup(b"/d0") is not snap.lookup(b"/d0")


def test_in_place_updates_without_snapshots() -> None:
    tree = Tree()
    tree.write(DOM0, b"/a/b", b"1", UNLIMITED)
    root = tree.root
    node = tree.lookup(b"/a/b")
    tree.write(DOM0, b"/a/b", b"2", UNLIMITED)
    assert tree.root is root
    assert tree.lookup(b"/a/b") is node


def test_generation_changes_only_with_own_content() -> None:
    tree = Tree()
    tree.write(DOM0, b"/a/b", b"1", UNLIMITED)
    a = tree.lookup(b"/a")
    assert a is not None
    gen_a = a.gen
    tree.snapshot()
    tree.write(DOM0, b"/a/b", b"2", UNLIMITED)  # copies /a to reach /a/b
    assert tree.lookup(b"/a").gen == gen_a  # type: ignore[union-attr]
    tree.write(DOM0, b"/a/c", b"", UNLIMITED)  # a new child changes /a
    assert tree.lookup(b"/a").gen != gen_a  # type: ignore[union-attr]


def test_owner_counts_follow_creates_removes_and_perms() -> None:
    tree = Tree()
    tree.write(DOM0, b"/g", b"", UNLIMITED)
    tree.set_perms(DOM0, b"/g", parse_perms([b"b7"]))
    guest = Caller(7, False)
    tree.write(guest, b"/g/a/b", b"", UNLIMITED)
    assert tree.owners[7] == 3
    tree.rm(guest, b"/g/a")
    assert tree.owners[7] == 1
    tree.set_perms(DOM0, b"/g", parse_perms([b"n0"]))
    assert 7 not in tree.owners
    assert sum(tree.owners.values()) == sum(1 for _ in walk(tree.root))


def test_remove_owned_and_keep_orphans() -> None:
    tree = Tree()
    tree.write(DOM0, b"/local/domain/4/x", b"", UNLIMITED)
    tree.write(DOM0, b"/vm/4", b"", UNLIMITED)
    tree.set_perms(DOM0, b"/local/domain/4", parse_perms([b"n4"]))
    tree.set_perms(DOM0, b"/vm/4", parse_perms([b"n4"]))
    kept = tree.snapshot()
    tree.remove_owned(4, keep_orphans=False, new_owner=0)
    assert tree.lookup(b"/local/domain/4") is None
    assert tree.lookup(b"/vm/4") is None
    assert tree.lookup(b"/local/domain") is not None
    kept.remove_owned(4, keep_orphans=True, new_owner=0)
    assert kept.lookup(b"/vm/4").perms.owner == 0  # type: ignore[union-attr]


def test_walk_is_preorder_in_child_order() -> None:
    tree = Tree()
    for p in (b"/b/y", b"/a", b"/b/x"):
        tree.write(DOM0, p, b"", UNLIMITED)
    assert [p for p, _ in walk(tree.root)] == [
        b"/",
        b"/tool",
        b"/tool/xenstored",
        b"/b",
        b"/b/y",
        b"/b/x",
        b"/a",
    ]
