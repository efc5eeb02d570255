"""Conformance of the node operations: READ WRITE MKDIR RM DIRECTORY DIRECTORY_PART GET_PERMS."""

from __future__ import annotations

import pytest

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


@pytest.fixture
def store() -> XenStore:
    return XenStore()


def test_initial_tree_is_c_xenstored_s(store: XenStore) -> None:
    s = conn(store)
    assert ok(store, s, Op.DIRECTORY, b"/") == b"tool\0"
    assert ok(store, s, Op.DIRECTORY, b"/tool") == b"xenstored\0"
    assert ok(store, s, Op.GET_PERMS, b"/") == b"n0\0"


def test_write_read_and_implicit_parents(store: XenStore) -> None:
    s = conn(store)
    assert write(store, s, b"/a/b/c", b"v\0with nul") == (Op.WRITE, b"OK\0")
    assert ok(store, s, Op.READ, b"/a/b/c") == b"v\0with nul"
    assert ok(store, s, Op.READ, b"/a/b") == b""
    assert ok(store, s, Op.DIRECTORY, b"/a") == b"b\0"
    assert ok(store, s, Op.DIRECTORY, b"/a/b/c") == b""


def test_read_errors(store: XenStore) -> None:
    s = conn(store)
    assert err(store, s, Op.READ, b"/nope") == "ENOENT"
    assert err(store, s, Op.READ, b"/a//b") == "EINVAL"
    assert err(store, s, Op.READ, b"/a/") == "EINVAL"
    assert err(store, s, Op.READ, b"/a b") == "EINVAL"
    assert err(store, s, Op.READ, b"@introduceDomain") == "EINVAL"
    assert call(store, s, Op.READ, b"")[1] == b"EINVAL\0"
    assert call(store, s, Op.READ, b"/tool")[0] == Op.ERROR  # no trailing NUL: not one argument
    assert call(store, s, Op.READ, b"/tool\0x\0")[1] == b"EINVAL\0"


def test_write_needs_a_path(store: XenStore) -> None:
    s = conn(store)
    assert call(store, s, Op.WRITE, b"/no-nul-anywhere") == (Op.ERROR, b"EINVAL\0")
    assert write(store, s, b"/", b"root value") == (Op.WRITE, b"OK\0")
    assert ok(store, s, Op.READ, b"/") == b"root value"


def test_relative_paths_are_under_the_domain_path(store: XenStore) -> None:
    s = conn(store)
    assert write(store, s, b"device/vif", b"1")[0] == Op.WRITE
    assert ok(store, s, Op.READ, b"/local/domain/0/device/vif") == b"1"
    assert ok(store, s, Op.READ, b"device/vif") == b"1"


def test_path_length_limits(store: XenStore) -> None:
    s = conn(store)
    long_abs = b"/" + b"a" * 3071
    assert write(store, s, long_abs, b"x")[0] == Op.WRITE
    assert err(store, s, Op.READ, long_abs + b"a") == "EINVAL"
    guest = conn(store, 5)
    ok(store, s, Op.SET_PERMS, b"/", b"n0", b"b5")
    rel = b"a" * 2048
    assert write(store, guest, rel, b"x")[0] == Op.WRITE
    assert err(store, guest, Op.READ, rel + b"b") == "EINVAL"


def test_mkdir(store: XenStore) -> None:
    s = conn(store)
    assert ok(store, s, Op.MKDIR, b"/m/n") == b"OK\0"
    assert ok(store, s, Op.READ, b"/m/n") == b""
    write(store, s, b"/m/n", b"keep")
    assert ok(store, s, Op.MKDIR, b"/m/n") == b"OK\0"
    assert ok(store, s, Op.READ, b"/m/n") == b"keep"


def test_rm(store: XenStore) -> None:
    s = conn(store)
    write(store, s, b"/r/a/b", b"1")
    write(store, s, b"/r/c", b"2")
    assert ok(store, s, Op.RM, b"/r/a") == b"OK\0"
    assert ok(store, s, Op.DIRECTORY, b"/r") == b"c\0"
    assert ok(store, s, Op.RM, b"/r/a") == b"OK\0"  # gone, but its parent exists
    assert err(store, s, Op.RM, b"/r/a/b") == "ENOENT"  # parent missing too
    assert err(store, s, Op.RM, b"/") == "EINVAL"


def test_directory_keeps_creation_order(store: XenStore) -> None:
    s = conn(store)
    for name in (b"z", b"a", b"m"):
        write(store, s, b"/d/" + name, b"")
    assert ok(store, s, Op.DIRECTORY, b"/d") == b"z\0a\0m\0"
    ok(store, s, Op.RM, b"/d/z")
    write(store, s, b"/d/z", b"")
    assert ok(store, s, Op.DIRECTORY, b"/d") == b"a\0m\0z\0"


def test_directory_too_big_is_e2big_and_directory_part_pages(store: XenStore) -> None:
    s = conn(store)
    names = [b"child-%04d-" % i + b"x" * 40 for i in range(200)]
    for name in names:
        write(store, s, b"/big/" + name, b"")
    assert err(store, s, Op.DIRECTORY, b"/big") == "E2BIG"
    got: list[bytes] = []
    offset = 0
    gens = set()
    while True:
        reply = ok(store, s, Op.DIRECTORY_PART, b"/big", b"%d" % offset)
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
    assert ok(store, s, Op.DIRECTORY_PART, b"/big", b"999999").endswith(b"\0\0")
    assert err(store, s, Op.DIRECTORY_PART, b"/big") == "EINVAL"


def test_directory_part_generation_changes_with_children(store: XenStore) -> None:
    s = conn(store)
    write(store, s, b"/g/a", b"")
    gen1 = ok(store, s, Op.DIRECTORY_PART, b"/g", b"0").split(b"\0")[0]
    assert ok(store, s, Op.DIRECTORY_PART, b"/g", b"0") == gen1 + b"\0a\0\0"
    write(store, s, b"/g/b", b"")
    gen2 = ok(store, s, Op.DIRECTORY_PART, b"/g", b"0").split(b"\0")[0]
    assert gen1 != gen2


def test_get_and_set_perms(store: XenStore) -> None:
    s = conn(store)
    write(store, s, b"/p", b"")
    assert ok(store, s, Op.SET_PERMS, b"/p", b"r3", b"w4", b"b5", b"n6") == b"OK\0"
    assert ok(store, s, Op.GET_PERMS, b"/p") == b"r3\0w4\0b5\0n6\0"
    write(store, s, b"/p/child", b"")
    assert ok(store, s, Op.GET_PERMS, b"/p/child") == b"r3\0w4\0b5\0n6\0"
    assert err(store, s, Op.SET_PERMS, b"/p") == "EINVAL"
    assert err(store, s, Op.SET_PERMS, b"/p", b"x1") == "EINVAL"
    assert err(store, s, Op.SET_PERMS, b"/p", b"r") == "EINVAL"
    assert err(store, s, Op.SET_PERMS, b"/p", b"r-1", b"n5") == "ENOENT"  # no such owner
    assert err(store, s, Op.SET_PERMS, b"/p", b"r32752") == "ENOENT"
    assert err(store, s, Op.SET_PERMS, b"/nope", b"r1") == "ENOENT"
    assert err(store, s, Op.GET_PERMS, b"/nope") == "ENOENT"


def test_special_node_perms(store: XenStore) -> None:
    s = conn(store)
    assert ok(store, s, Op.GET_PERMS, b"@releaseDomain") == b"n0\0"
    assert ok(store, s, Op.SET_PERMS, b"@releaseDomain", b"n0", b"r7") == b"OK\0"
    assert ok(store, s, Op.GET_PERMS, b"@releaseDomain") == b"n0\0r7\0"
    assert err(store, s, Op.GET_PERMS, b"@other") == "ENOENT"


def test_unknown_and_reply_only_types_are_enosys(store: XenStore) -> None:
    s = conn(store)
    for op in (Op.WATCH_EVENT, Op.ERROR, 20, Op.GET_FEATURE, Op.SET_QUOTA, 999):
        assert call(store, s, op, b"/\0") == (Op.ERROR, b"ENOSYS\0")
