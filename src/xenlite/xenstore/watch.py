"""Watches: registrations per path and the events a change fires.

Implements xenstore.txt "WATCH"/"UNWATCH" and C xenstored's watch.c rules: a change to a node
fires every watch on that node or an ancestor (reported with the changed node's path); removing
a subtree also fires the watches registered exactly on nodes inside it; a watcher only hears
about nodes it (or, failing that, their parent) may read; paths registered relative come back
relative; ``@introduceDomain``/``@releaseDomain`` are special paths fired by the domain code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from xenlite.xenstore.path import parent
from xenlite.xenstore.perms import PERM_READ, Perms
from xenlite.xenstore.tree import Node, Tree, lookup_in


class Watcher(Protocol):
    """What a watch needs from its connection."""

    domid: int
    privileged: bool

    def target(self) -> int | None: ...

    def send_event(self, path: bytes, token: bytes) -> None: ...


class Watch:
    __slots__ = ("conn", "path", "prefix_len", "token")

    def __init__(self, conn: Watcher, path: bytes, token: bytes, prefix_len: int) -> None:
        self.conn = conn
        self.path = path
        self.token = token
        self.prefix_len = prefix_len


class WatchRegistry:
    """Every watch of every connection, indexed by absolute path."""

    __slots__ = ("by_path",)

    def __init__(self) -> None:
        self.by_path: dict[bytes, list[Watch]] = {}

    def add(self, watch: Watch) -> None:
        self.by_path.setdefault(watch.path, []).append(watch)

    def find(self, conn: Watcher, path: bytes, token: bytes) -> Watch | None:
        for w in self.by_path.get(path, ()):
            if w.conn is conn and w.token == token:
                return w
        return None

    def remove(self, watch: Watch) -> None:
        lst = self.by_path[watch.path]
        lst.remove(watch)
        if not lst:
            del self.by_path[watch.path]

    def remove_conn(self, conn: Watcher) -> int:
        """Drop every watch of ``conn``; returns how many there were."""
        dropped = 0
        for path in list(self.by_path):
            keep = [w for w in self.by_path[path] if w.conn is not conn]
            dropped += len(self.by_path[path]) - len(keep)
            if keep:
                self.by_path[path] = keep
            else:
                del self.by_path[path]
        return dropped

    def _on_or_above(self, path: bytes) -> Iterator[Watch]:
        by_path = self.by_path
        while True:
            lst = by_path.get(path)
            if lst:
                yield from lst
            if path == b"/" or path[0] != 0x2F:
                return
            path = parent(path)

    def fire_event(self, tree: Tree, path: bytes, node: Node, old: Perms | None, rm: bool) -> None:
        """Send the events for one change reported by the tree (see ``tree.Event``)."""
        if not self.by_path:
            return
        perms = node.perms
        for w in list(self._on_or_above(path)):
            if _permitted(w.conn, tree, path, perms, old):
                w.conn.send_event(path[w.prefix_len :], w.token)
        if rm:
            prefix = path + b"/" if path != b"/" else b"/"
            for wpath in [p for p in self.by_path if p.startswith(prefix)]:
                sub = lookup_in(node, b"/" + wpath[len(prefix) :])
                if sub is None:
                    continue
                for w in list(self.by_path.get(wpath, ())):
                    if _permitted(w.conn, tree, wpath, sub.perms, None):
                        w.conn.send_event(wpath[w.prefix_len :], w.token)

    def fire_special(self, path: bytes, perms: Perms) -> None:
        """Fire ``@introduceDomain``/``@releaseDomain`` to everyone allowed to read it."""
        for w in list(self.by_path.get(path, ())):
            conn = w.conn
            if conn.privileged or perms.for_domain(conn.domid, conn.target()) & PERM_READ:
                conn.send_event(path, w.token)


def _permitted(conn: Watcher, tree: Tree, path: bytes, perms: Perms, old: Perms | None) -> bool:
    """watch.c ``watch_permitted``: old perms, the node's, or else its parent's allow reading."""
    if conn.privileged:
        return True
    target = conn.target()
    if old is not None and old.for_domain(conn.domid, target) & PERM_READ:
        return True
    if perms.for_domain(conn.domid, target) & PERM_READ:
        return True
    if path == b"/":
        return False
    par = tree.lookup(parent(path))
    return par is not None and bool(par.perms.for_domain(conn.domid, target) & PERM_READ)
