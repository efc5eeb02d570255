"""Transactions: a private snapshot per transaction, conflict detection, replay on commit.

Implements xenstore.txt "TRANSACTION_START"/"TRANSACTION_END" with full isolation: a
transaction reads and writes its own O(1) snapshot of the tree (``Tree.snapshot``) and records
the generation of every node it touched as it was when the transaction began. Commit fails
with EAGAIN when any of those nodes changed since (C xenstored's rule); otherwise the
transaction's successful changes are replayed, in order, on a fork of the live tree, which
then replaces it, so a commit is all or nothing and fires its watches only when it succeeds.
When nothing at all changed the store meanwhile, the transaction's own tree is adopted as it
is, without a replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xenlite.xenstore.path import StoreError
from xenlite.xenstore.perms import Perms
from xenlite.xenstore.tree import ABSENT, Caller, Event, Limits, Record, Tree

# One change to replay: ("write", path, value) | ("mkdir", path) | ("rm", path)
# | ("perms", path, Perms), with the caller who made it.
Change = tuple[Caller, str, bytes, bytes | Perms | None]


@dataclass(slots=True)
class Transaction:
    """An open transaction of one connection."""

    tx_id: int
    tree: Tree
    changes: list[Change] = field(default_factory=list)

    @property
    def accessed(self) -> int:
        """How many nodes the transaction has touched (the transaction-nodes quota)."""
        return len(self.tree.accessed or ())


def start(main: Tree, tx_id: int) -> Transaction:
    """Open a transaction on a snapshot of ``main``."""
    tree = main.snapshot()
    # Kept in case nothing else changes the store before the commit (see ``commit``).
    tree.events = []
    tree.log = [] if main.log is not None else None
    return Transaction(tx_id, tree)


def conflicts(main: Tree, tx: Transaction) -> bool:
    """Whether a node the transaction touched changed in ``main`` since it began."""
    lookup = main.lookup
    for path, gen in (tx.tree.accessed or {}).items():
        node = lookup(path)
        if (node.gen if node is not None else ABSENT) != gen:
            return True
    return False


def apply_change(tree: Tree, change: Change, limits: Limits) -> None:
    """Run one recorded change on ``tree``."""
    caller, kind, path, arg = change
    if kind == "write":
        assert isinstance(arg, bytes)
        tree.write(caller, path, arg, limits)
    elif kind == "mkdir":
        tree.mkdir(caller, path, limits)
    elif kind == "rm":
        tree.rm(caller, path)
    else:
        assert isinstance(arg, Perms)
        tree.set_perms(caller, path, arg)


def commit(main: Tree, tx: Transaction, limits: Limits) -> tuple[list[Event], list[Record]]:
    """Make the transaction's changes live; returns the watch events and journal records.

    :raise StoreError: EAGAIN on a conflict; the error of a change that no longer fits (a
        quota) when replaying, in which case nothing is changed.
    """
    mine = tx.tree
    # Any change to the store since the snapshot would have copied its root (the snapshot
    # moved ``main`` to a new epoch), so an unchanged root means nothing can conflict.
    unchanged = main.root is mine.base
    if not unchanged and conflicts(main, tx):
        raise StoreError("EAGAIN", f"XenStore transaction {tx.tx_id} (conflict, retry it)")
    if not tx.changes:
        return [], []
    if unchanged:
        # Nothing changed the store since the transaction began (any change would have copied
        # the root, the snapshot having moved ``main`` to a new epoch): the transaction's tree
        # is exactly the result of replaying it, so it becomes the live tree as it is.
        main.adopt(mine)
        return mine.events or [], mine.log or []
    work = main.fork()
    work.events = []
    work.log = [] if main.log is not None else None
    for change in tx.changes:
        apply_change(work, change, limits)
    main.adopt(work)
    return work.events, work.log or []
