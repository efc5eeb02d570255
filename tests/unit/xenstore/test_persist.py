"""--persist: snapshot + journal round trips, torn tails, stale journals, compaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import XenStoreError
from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.persist import Persistence
from xenlite.xenstore.wire import Op, join_strings


def open_store(path: Path) -> tuple[XenStore, Persistence]:
    p = Persistence(path)
    tree, domains = p.load()
    store = XenStore(tree=tree, domains=domains, journal=p.append)
    store.on_domains_changed = lambda: p.append_domains(store.domains)
    p.compact(store.tree, store.domains)
    return store, p


def do(store: XenStore, op: int, payload: bytes) -> bytes:
    s = store.session(0)
    out = store.handle(s, op, 1, 0, payload)
    assert int.from_bytes(out[:4], "little") == op, out
    return out[16:]


def dump(store: XenStore) -> dict[bytes, tuple[bytes, bytes]]:
    from xenlite.xenstore.tree import walk

    return {p: (n.value, n.perms.wire) for p, n in walk(store.tree.root)}


def test_roundtrip_through_journal_and_snapshot(tmp_path: Path) -> None:
    f = tmp_path / "xs.db"
    store, p = open_store(f)
    do(store, Op.WRITE, b"/a/b\0hello")
    do(store, Op.WRITE, b"/a/c\0bin\0ary")
    do(store, Op.SET_PERMS, join_strings(b"/a/b", b"r5", b"w6"))
    do(store, Op.WRITE, b"/gone/x\0")
    do(store, Op.RM, join_strings(b"/gone"))
    do(store, Op.INTRODUCE, join_strings(b"5", b"77", b"3"))
    p.flush()
    expected = dump(store)
    # No close(): as after kill -9, only what flush() wrote is there.
    store2, p2 = open_store(f)
    assert dump(store2) == expected
    assert store2.domains.is_introduced(5)
    assert store2.tree.owners == store.tree.owners
    p2.close()
    store3, p3 = open_store(f)  # now from the compacted snapshot alone
    assert dump(store3) == expected
    p3.close()


def test_transaction_commit_is_journaled(tmp_path: Path) -> None:
    f = tmp_path / "xs.db"
    store, p = open_store(f)
    s = store.session(0)
    tx = int(store.handle(s, Op.TRANSACTION_START, 1, 0, b"\0")[16:-1])
    store.handle(s, Op.WRITE, 2, tx, b"/t/x\0in tx")
    store.handle(s, Op.TRANSACTION_END, 3, tx, b"T\0")
    p.flush()
    store2, p2 = open_store(f)
    assert store2.tree.lookup(b"/t/x").value == b"in tx"  # type: ignore[union-attr]
    p2.close()


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "xs.db"
    store, p = open_store(f)
    do(store, Op.WRITE, b"/keep\0yes")
    p.flush()
    do(store, Op.WRITE, b"/torn\0no")
    p.flush()
    journal = Path(f"{f}.journal")
    data = journal.read_bytes()
    journal.write_bytes(data[:-3])
    store2, p2 = open_store(f)
    assert store2.tree.lookup(b"/keep") is not None
    assert store2.tree.lookup(b"/torn") is None
    p2.close()


def test_stale_journal_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "xs.db"
    store, p = open_store(f)
    do(store, Op.WRITE, b"/a\x00one")
    do(store, Op.RM, b"/a\0")
    p.flush()
    journal = Path(f"{f}.journal")
    old_journal = journal.read_bytes()
    do(store, Op.WRITE, b"/a\0final")
    p.compact(store.tree, store.domains)  # the snapshot holds everything
    journal.write_bytes(old_journal)  # as if the crash hit before the journal was reset
    store2, p2 = open_store(f)
    assert store2.tree.lookup(b"/a").value == b"final"  # type: ignore[union-attr]
    p2.close()


def test_corrupt_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "xs.db"
    f.write_bytes(b"not a snapshot at all")
    with pytest.raises(XenStoreError) as info:
        Persistence(f).load()
    assert "xs.db" in str(info.value)
    assert info.value.fix
