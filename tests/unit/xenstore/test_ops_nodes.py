"""Conformance of the node operations: READ WRITE MKDIR RM DIRECTORY DIRECTORY_PART GET_PERMS."""

from __future__ import annotations

from typing import Any

from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.wire import Op


def test_initial_tree_is_c_xenstored_s(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.DIRECTORY, b"/") == b"tool\0"
    assert xs.ok(store, s, Op.DIRECTORY, b"/tool") == b"xenstored\0"
    assert xs.ok(store, s, Op.GET_PERMS, b"/") == b"n0\0"


def test_write_read_and_implicit_parents(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.write(store, s, b"/a/b/c", b"v\0with nul") == (Op.WRITE, b"OK\0")
    assert xs.ok(store, s, Op.READ, b"/a/b/c") == b"v\0with nul"
    assert xs.ok(store, s, Op.READ, b"/a/b") == b""
    assert xs.ok(store, s, Op.DIRECTORY, b"/a") == b"b\0"
    assert xs.ok(store, s, Op.DIRECTORY, b"/a/b/c") == b""


def test_read_errors(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.err(store, s, Op.READ, b"/nope") == "ENOENT"
    assert xs.err(store, s, Op.READ, b"/a//b") == "EINVAL"
    assert xs.err(store, s, Op.READ, b"/a/") == "EINVAL"
    assert xs.err(store, s, Op.READ, b"/a b") == "EINVAL"
    assert xs.err(store, s, Op.READ, b"@introduceDomain") == "EINVAL"
    assert xs.call(store, s, Op.READ, b"")[1] == b"EINVAL\0"
    assert xs.call(store, s, Op.READ, b"/tool")[0] == Op.ERROR  # no trailing NUL: not one argument
    assert xs.call(store, s, Op.READ, b"/tool\0x\0")[1] == b"EINVAL\0"


def test_write_needs_a_path(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.call(store, s, Op.WRITE, b"/no-nul-anywhere") == (Op.ERROR, b"EINVAL\0")
    assert xs.write(store, s, b"/", b"root value") == (Op.WRITE, b"OK\0")
    assert xs.ok(store, s, Op.READ, b"/") == b"root value"


def test_relative_paths_are_under_the_domain_path(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.write(store, s, b"device/vif", b"1")[0] == Op.WRITE
    assert xs.ok(store, s, Op.READ, b"/local/domain/0/device/vif") == b"1"
    assert xs.ok(store, s, Op.READ, b"device/vif") == b"1"


def test_path_length_limits(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    long_abs = b"/" + b"a" * 3071
    assert xs.write(store, s, long_abs, b"x")[0] == Op.WRITE
    assert xs.err(store, s, Op.READ, long_abs + b"a") == "EINVAL"
    guest = xs.conn(store, 5)
    xs.ok(store, s, Op.SET_PERMS, b"/", b"n0", b"b5")
    rel = b"a" * 2048
    assert xs.write(store, guest, rel, b"x")[0] == Op.WRITE
    assert xs.err(store, guest, Op.READ, rel + b"b") == "EINVAL"


def test_mkdir(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.MKDIR, b"/m/n") == b"OK\0"
    assert xs.ok(store, s, Op.READ, b"/m/n") == b""
    xs.write(store, s, b"/m/n", b"keep")
    assert xs.ok(store, s, Op.MKDIR, b"/m/n") == b"OK\0"
    assert xs.ok(store, s, Op.READ, b"/m/n") == b"keep"


def test_rm(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    xs.write(store, s, b"/r/a/b", b"1")
    xs.write(store, s, b"/r/c", b"2")
    assert xs.ok(store, s, Op.RM, b"/r/a") == b"OK\0"
    assert xs.ok(store, s, Op.DIRECTORY, b"/r") == b"c\0"
    assert xs.ok(store, s, Op.RM, b"/r/a") == b"OK\0"  # gone, but its parent exists
    assert xs.err(store, s, Op.RM, b"/r/a/b") == "ENOENT"  # parent missing too
    assert xs.err(store, s, Op.RM, b"/") == "EINVAL"


def test_directory_keeps_creation_order(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    for name in (b"z", b"a", b"m"):
        xs.write(store, s, b"/d/" + name, b"")
    assert xs.ok(store, s, Op.DIRECTORY, b"/d") == b"z\0a\0m\0"
    xs.ok(store, s, Op.RM, b"/d/z")
    xs.write(store, s, b"/d/z", b"")
    assert xs.ok(store, s, Op.DIRECTORY, b"/d") == b"a\0m\0z\0"


def test_directory_too_big_is_e2big_and_directory_part_pages(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    names = [b"child-%04d-" % i + b"x" * 40 for i in range(200)]
    for name in names:
        xs.write(store, s, b"/big/" + name, b"")
    assert xs.err(store, s, Op.DIRECTORY, b"/big") == "E2BIG"
    got: list[bytes] = []
    offset = 0
    gens = set()
    while True:
        reply = xs.ok(store, s, Op.DIRECTORY_PART, b"/big", b"%d" % offset)
        assert len(reply) <= 4096
        gen, _, rest = reply.partition(b"\0")
        gens.add(gen)
        if rest.endswith(b"\0\0") or rest == b"\0":
            got += [n for n in rest.split(b"\0") if n]
            break
        chunk = [n for n in rest.split(b"\0") if n]
        got += chunk
        offset += len(rest)
    assert got == names
    assert len(gens) == 1
    assert xs.ok(store, s, Op.DIRECTORY_PART, b"/big", b"999999").endswith(b"\0\0")
    assert xs.err(store, s, Op.DIRECTORY_PART, b"/big") == "EINVAL"


def test_directory_part_generation_changes_with_children(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    xs.write(store, s, b"/g/a", b"")
    gen1 = xs.ok(store, s, Op.DIRECTORY_PART, b"/g", b"0").split(b"\0")[0]
    assert xs.ok(store, s, Op.DIRECTORY_PART, b"/g", b"0") == gen1 + b"\0a\0\0"
    xs.write(store, s, b"/g/b", b"")
    gen2 = xs.ok(store, s, Op.DIRECTORY_PART, b"/g", b"0").split(b"\0")[0]
    assert gen1 != gen2


def test_get_and_set_perms(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    xs.write(store, s, b"/p", b"")
    assert xs.ok(store, s, Op.SET_PERMS, b"/p", b"r3", b"w4", b"b5", b"n6") == b"OK\0"
    assert xs.ok(store, s, Op.GET_PERMS, b"/p") == b"r3\0w4\0b5\0n6\0"
    xs.write(store, s, b"/p/child", b"")
    assert xs.ok(store, s, Op.GET_PERMS, b"/p/child") == b"r3\0w4\0b5\0n6\0"
    assert xs.err(store, s, Op.SET_PERMS, b"/p") == "EINVAL"
    assert xs.err(store, s, Op.SET_PERMS, b"/p", b"x1") == "EINVAL"
    assert xs.err(store, s, Op.SET_PERMS, b"/p", b"r") == "EINVAL"
    assert xs.err(store, s, Op.SET_PERMS, b"/p", b"r-1", b"n5") == "ENOENT"  # no such owner
    assert xs.err(store, s, Op.SET_PERMS, b"/p", b"r32752") == "ENOENT"
    assert xs.err(store, s, Op.SET_PERMS, b"/nope", b"r1") == "ENOENT"
    assert xs.err(store, s, Op.GET_PERMS, b"/nope") == "ENOENT"


def test_special_node_perms(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    assert xs.ok(store, s, Op.GET_PERMS, b"@releaseDomain") == b"n0\0"
    assert xs.ok(store, s, Op.SET_PERMS, b"@releaseDomain", b"n0", b"r7") == b"OK\0"
    assert xs.ok(store, s, Op.GET_PERMS, b"@releaseDomain") == b"n0\0r7\0"
    assert xs.err(store, s, Op.GET_PERMS, b"@other") == "ENOENT"


def test_unknown_and_reply_only_types_are_enosys(store: XenStore, xs: Any) -> None:
    s = xs.conn(store)
    for op in (Op.WATCH_EVENT, Op.ERROR, 20, Op.GET_FEATURE, Op.SET_QUOTA, 999):
        assert xs.call(store, s, op, b"/\0") == (Op.ERROR, b"ENOSYS\0")
