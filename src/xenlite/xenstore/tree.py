"""The node tree: persistent (shared, immutable) nodes with copy-on-write by epoch.

Implements the data model of xenstore.txt "Nodes" (a value, permissions and named children per
node; parents created implicitly, permissions inherited on create) and C xenstored's access
rules (``get_node_chk_perm``/``errno_from_parents`` in core.c: a missing node reports ENOENT
only when the nearest existing ancestor grants the requested access, else EACCES).

Snapshots are O(1), as oxenstored's persistent ``Store.Node``: a node may be changed in place
only by the tree whose ``epoch`` it carries; taking a snapshot moves the tree to a new epoch,
so every node reachable from the snapshot is copied (once) before it is changed. With no
transaction open, writes change nodes in place and copy nothing.

Each node carries a generation: a number that changes whenever its own value, permissions or
set of children changes (a copy made only to reach a descendant keeps it). Transactions detect
conflicts by comparing generations, like C xenstored's ``check_transaction``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from xenlite.xenstore.path import StoreError, components, join, parent
from xenlite.xenstore.perms import (
    PERM_OWNER,
    PERM_READ,
    PERM_WRITE,
    ROOT_PERMS,
    Perms,
    with_owner,
)

next_gen = itertools.count(1).__next__
next_epoch = itertools.count(1).__next__

ABSENT = 0  # the generation recorded for a node that does not exist


class Node:
    """One node. Tuples would be smaller, but slots keep in-place updates cheap."""

    __slots__ = ("children", "epoch", "gen", "perms", "value")

    value: bytes
    perms: Perms
    children: dict[bytes, Node] | None
    gen: int
    epoch: int

    def __init__(
        self,
        value: bytes,
        perms: Perms,
        children: dict[bytes, Node] | None,
        gen: int,
        epoch: int,
    ) -> None:
        self.value = value
        self.perms = perms
        self.children = children
        self.gen = gen
        self.epoch = epoch

    def copy(self, epoch: int) -> Node:
        kids = self.children
        return Node(self.value, self.perms, dict(kids) if kids else None, self.gen, epoch)

    def child_bytes(self) -> bytes:
        """The children as DIRECTORY sends them: each name followed by a NUL."""
        kids = self.children
        if not kids:
            return b""
        return b"\0".join(kids) + b"\0"

    def size(self) -> int:
        """What C xenstored's node-size quota counts: header, perms, value, children."""
        kids = self.children
        childlen = sum(len(k) + 1 for k in kids) if kids else 0
        return 24 + 8 * len(self.perms.entries) + len(self.value) + childlen


@dataclass(slots=True)
class Caller:
    """Who is asking: the domain of the connection and what it may bypass."""

    domid: int
    privileged: bool
    target: int | None = None

    def perm(self, perms: Perms) -> int:
        if self.privileged:
            return PERM_READ | PERM_WRITE | PERM_OWNER
        return perms.for_domain(self.domid, self.target)


@dataclass(slots=True)
class Limits:
    """The quotas the tree enforces on unprivileged callers (None = unlimited)."""

    nodes: int | None = 1000
    node_size: int | None = 2048


UNLIMITED = Limits(None, None)

# An event the tree reports for watches: (path, node, old_perms, recursive).
# ``recursive`` marks a removed subtree whose descendants' exact watches also fire.
Event = tuple[bytes, Node, Perms | None, bool]
# A journal record: (path, node) for a created/changed node, (path, None) for a removed subtree.
Record = tuple[bytes, Node | None]


def lookup_in(root: Node, path: bytes) -> Node | None:
    """The node at absolute ``path`` below ``root``, or None."""
    node: Node | None = root
    if path == b"/":
        return node
    for name in path[1:].split(b"/"):
        kids = node.children  # type: ignore[union-attr]
        if not kids:
            return None
        node = kids.get(name)
        if node is None:
            return None
    return node


def initial_root(epoch: int) -> Node:
    """The tree C xenstored starts with: ``/``, ``/tool``, ``/tool/xenstored``."""
    xenstored = Node(b"", ROOT_PERMS, None, next_gen(), epoch)
    tool = Node(b"", ROOT_PERMS, {b"xenstored": xenstored}, next_gen(), epoch)
    return Node(b"", ROOT_PERMS, {b"tool": tool}, next_gen(), epoch)


class Tree:
    """A root plus its bookkeeping: node counts per owner, events, journal records, access set."""

    __slots__ = ("accessed", "base", "epoch", "events", "log", "owners", "root")

    def __init__(self, root: Node | None = None, owners: dict[int, int] | None = None) -> None:
        self.epoch = next_epoch()
        self.root = root if root is not None else initial_root(self.epoch)
        self.owners: dict[int, int] = owners if owners is not None else self._count_owners()
        self.events: list[Event] | None = None
        self.log: list[Record] | None = None
        self.base: Node | None = None
        self.accessed: dict[bytes, int] | None = None

    # -- snapshots -------------------------------------------------------------------------

    def snapshot(self) -> Tree:
        """A private copy for a transaction, sharing every node (O(1) plus the owner table)."""
        self.epoch = next_epoch()  # from now on this tree copies before changing shared nodes
        snap = Tree(self.root, dict(self.owners))
        snap.base = self.root
        snap.accessed = {}
        return snap

    def fork(self) -> Tree:
        """A scratch copy whose changes can be adopted with ``adopt`` (commit replay)."""
        self.epoch = next_epoch()
        return Tree(self.root, dict(self.owners))

    def adopt(self, other: Tree) -> None:
        """Take over the state of a fork made from this tree."""
        self.root = other.root
        self.owners = other.owners
        self.epoch = other.epoch

    # -- lookup ----------------------------------------------------------------------------

    def lookup(self, path: bytes) -> Node | None:
        return lookup_in(self.root, path)

    def nearest(self, path: bytes) -> tuple[bytes, Node]:
        """The deepest existing ancestor of a missing ``path`` (C's ``ask_parents``)."""
        while True:
            path = parent(path)
            node = self.lookup(path)
            if node is not None:
                return path, node

    def touch(self, path: bytes) -> None:
        """Record, in a transaction, the generation ``path`` had when the transaction began."""
        accessed = self.accessed
        if accessed is None or path in accessed:
            return
        node = lookup_in(self.base, path)  # type: ignore[arg-type]
        accessed[path] = node.gen if node is not None else ABSENT
        if node is None and path != b"/":
            # The answer for a missing node depends on its ancestors: they join the read set.
            self.touch(parent(path))

    def get(self, caller: Caller, path: bytes, perm: int) -> Node:
        """The node at ``path`` if ``caller`` has ``perm`` on it.

        :raise StoreError: EACCES without the permission; ENOENT when it does not exist and
            the nearest ancestor grants ``perm`` (EACCES otherwise, to hide its existence).
        """
        if self.accessed is not None:
            self.touch(path)
        node = self.lookup(path)
        if caller.privileged:
            if node is None:
                raise StoreError("ENOENT", f"XenStore node {path.decode()}")
            return node
        if node is not None:
            if caller.perm(node.perms) & perm == perm:
                return node
            raise StoreError("EACCES", f"XenStore node {path.decode()}")
        _, anc = self.nearest(path)
        if caller.perm(anc.perms) & perm:
            raise StoreError("ENOENT", f"XenStore node {path.decode()}")
        raise StoreError("EACCES", f"XenStore node {path.decode()}")

    # -- mutation helpers ------------------------------------------------------------------

    def _chain(self, path: bytes) -> Node:
        """The node at ``path`` (which exists) made writable, copying shared ancestors."""
        epoch = self.epoch
        node = self.root
        if node.epoch != epoch:
            node = node.copy(epoch)
            self.root = node
        if path == b"/":
            return node
        for name in path[1:].split(b"/"):
            kids = node.children
            assert kids is not None
            child = kids[name]
            if child.epoch != epoch:
                child = child.copy(epoch)
                kids[name] = child
            node = child
        return node

    def _create(
        self, caller: Caller, path: bytes, value: bytes, limits: Limits
    ) -> tuple[Node, Node | None]:
        """Create ``path`` and any missing parents; returns (new node, None).

        :raise StoreError: ENOSPC over the caller's node quota.
        """
        anc_path, _ = self.nearest(path)
        names = components(path)[len(components(anc_path)) :]
        owners = self.owners
        if not caller.privileged:
            quota = limits.nodes
            if quota is not None and owners.get(caller.domid, 0) + len(names) > quota:
                raise StoreError("ENOSPC", f"XenStore node {path.decode()} (node quota)")
            size_quota = limits.node_size
            if size_quota is not None and 32 + len(value) > size_quota:
                raise StoreError("ENOSPC", f"XenStore node {path.decode()} (node-size quota)")
        epoch = self.epoch
        node = self._chain(anc_path)
        node.gen = next_gen()
        perms = node.perms
        if not caller.privileged:
            perms = with_owner(perms, caller.domid)
        owner = perms.owner
        log = self.log
        accessed = self.accessed
        cur_path = anc_path
        if log is not None:
            log.append((anc_path, node))
        last = len(names) - 1
        for i, name in enumerate(names):
            child = Node(value if i == last else b"", perms, None, next_gen(), epoch)
            if node.children is None:
                node.children = {name: child}
            else:
                node.children[name] = child
            node = child
            cur_path = join(cur_path, name)
            if accessed is not None:
                self.touch(cur_path)
            if log is not None:
                log.append((cur_path, child))
        owners[owner] = owners.get(owner, 0) + len(names)
        return node, None

    # -- operations ------------------------------------------------------------------------

    def write(self, caller: Caller, path: bytes, value: bytes, limits: Limits) -> None:
        """WRITE: set the value, creating the node and its parents if needed."""
        node: Node | None
        if caller.privileged:
            # ``get`` without the exception for a node to create (dom0 may write anywhere).
            node = lookup_in(self.root, path)
            accessed = self.accessed
            if accessed is not None and path not in accessed:
                if node is not None and node.epoch != self.epoch:
                    # Not copied by this transaction yet: it is the snapshot's own node.
                    accessed[path] = node.gen
                else:
                    self.touch(path)
        else:
            try:
                node = self.get(caller, path, PERM_WRITE)
            except StoreError as err:
                if err.wire_name != "ENOENT":
                    raise
                node = None
        if node is None:
            node, _ = self._create(caller, path, value, limits)
        else:
            size_quota = limits.node_size
            if (
                not caller.privileged
                and size_quota is not None
                and node.size() - len(node.value) + len(value) > size_quota
            ):
                raise StoreError("ENOSPC", f"XenStore node {path.decode()} (node-size quota)")
            if node.epoch != self.epoch:
                node = self._chain(path)
            node.value = value
            node.gen = next_gen()
            if self.log is not None:
                self.log.append((path, node))
        if self.events is not None:
            self.events.append((path, node, None, False))

    def mkdir(self, caller: Caller, path: bytes, limits: Limits) -> None:
        """MKDIR: create an empty node (and parents); fine if it exists."""
        try:
            self.get(caller, path, PERM_WRITE)
        except StoreError as err:
            if err.wire_name != "ENOENT":
                raise
            node, _ = self._create(caller, path, b"", limits)
            if self.events is not None:
                self.events.append((path, node, None, False))

    def rm(self, caller: Caller, path: bytes) -> None:
        """RM: remove a node and everything below it; fine if it is gone but its parent is not.

        :raise StoreError: EINVAL for ``/``; ENOENT when the parent is missing too.
        """
        try:
            node = self.get(caller, path, PERM_WRITE)
        except StoreError as err:
            if err.wire_name == "ENOENT" and path != b"/":
                par = parent(path)
                if self.accessed is not None:
                    self.touch(par)
                if self.lookup(par) is not None:
                    return
            raise
        if path == b"/":
            raise StoreError("EINVAL", "XenStore node / (the root cannot be removed)")
        self._remove(path, node)

    def _remove(self, path: bytes, node: Node) -> None:
        par_path = parent(path)
        if self.accessed is not None:
            self.touch(par_path)
        par = self._chain(par_path)
        kids = par.children
        assert kids is not None
        del kids[path[path.rfind(b"/") + 1 :]]
        if not kids:
            par.children = None
        par.gen = next_gen()
        owners = self.owners
        for sub in iter_nodes(node):
            owner = sub.perms.owner
            left = owners.get(owner, 0) - 1
            if left > 0:
                owners[owner] = left
            else:
                owners.pop(owner, None)
        if self.log is not None:
            self.log.append((path, None))
        if self.events is not None:
            self.events.append((path, node, None, True))

    def set_perms(self, caller: Caller, path: bytes, perms: Perms) -> None:
        """SET_PERMS: replace the permissions (owner or privileged callers only).

        :raise StoreError: EPERM when an unprivileged caller tries to change the owner.
        """
        node = self.get(caller, path, PERM_WRITE | PERM_OWNER)
        if not caller.privileged and perms.owner != node.perms.owner:
            raise StoreError("EPERM", f"XenStore node {path.decode()} (cannot change owner)")
        old = node.perms
        node = self._chain(path)
        node.perms = perms
        node.gen = next_gen()
        owners = self.owners
        left = owners.get(old.owner, 0) - 1
        if left > 0:
            owners[old.owner] = left
        else:
            owners.pop(old.owner, None)
        owners[perms.owner] = owners.get(perms.owner, 0) + 1
        if self.log is not None:
            self.log.append((path, node))
        if self.events is not None:
            self.events.append((path, node, old, False))

    def remove_owned(self, domid: int, keep_orphans: bool, new_owner: int) -> None:
        """Remove (or hand to ``new_owner``) every node ``domid`` owns: a released domain."""
        if not self.owners.get(domid):
            return
        found: list[tuple[bytes, Node]] = []
        stack: list[tuple[bytes, Node]] = [(b"/", self.root)]
        while stack:
            path, node = stack.pop()
            if node.perms.owner == domid and path != b"/":
                found.append((path, node))
                if not keep_orphans:
                    continue
            if node.children:
                stack.extend((join(path, k), v) for k, v in node.children.items())
        for path, node in found:
            if keep_orphans:
                owner_caller = Caller(0, True)
                perms = with_owner(node.perms, new_owner)
                self.set_perms(owner_caller, path, perms)
            elif self.lookup(path) is node:
                self._remove(path, node)

    # -- journal replay --------------------------------------------------------------------

    def put(self, path: bytes, value: bytes, perms: Perms) -> None:
        """Set a node's value and perms, creating it (not its parents) if needed: replay."""
        if path == b"/":
            node = self._chain(path)
            old_owner: int | None = node.perms.owner
        else:
            par_path = parent(path)
            if self.lookup(par_path) is None:
                raise StoreError("EINVAL", f"journal record for {path.decode()} (no parent)")
            par = self._chain(par_path)
            name = path[path.rfind(b"/") + 1 :]
            existing = par.children.get(name) if par.children else None
            if existing is None:
                node = Node(value, perms, None, next_gen(), self.epoch)
                if par.children is None:
                    par.children = {}
                par.children[name] = node
                old_owner = None
            else:
                node = self._chain(path)
                old_owner = node.perms.owner
        node.value = value
        node.perms = perms
        owners = self.owners
        if old_owner is not None:
            owners[old_owner] -= 1
            if not owners[old_owner]:
                del owners[old_owner]
        owners[perms.owner] = owners.get(perms.owner, 0) + 1

    def delete(self, path: bytes) -> None:
        """Remove a subtree if present: replay."""
        node = self.lookup(path)
        if node is not None and path != b"/":
            self._remove(path, node)

    def _count_owners(self) -> dict[int, int]:
        owners: dict[int, int] = {}
        for node in iter_nodes(self.root):
            owners[node.perms.owner] = owners.get(node.perms.owner, 0) + 1
        return owners


def iter_nodes(node: Node) -> Iterator[Node]:
    """Every node of a subtree, ``node`` included."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n.children:
            stack.extend(n.children.values())


def walk(node: Node, path: bytes = b"/") -> Iterator[tuple[bytes, Node]]:
    """(path, node) for a subtree in pre-order, parents before children, children in order."""
    stack = [(path, node)]
    while stack:
        p, n = stack.pop()
        yield p, n
        if n.children:
            stack.extend((join(p, k), v) for k, v in reversed(n.children.items()))
