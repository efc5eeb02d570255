"""Request dispatch: one handler per message type; the only exception -> error-name mapping.

Implements the operations of xenstore.txt (READ WRITE MKDIR RM DIRECTORY DIRECTORY_PART
GET_PERMS SET_PERMS WATCH UNWATCH TRANSACTION_START TRANSACTION_END INTRODUCE RELEASE
GET_DOMAIN_PATH IS_DOMAIN_INTRODUCED RESUME SET_TARGET RESET_WATCHES CONTROL) with the argument
checks, error names and reply formats of C xenstored 4.17 (core.c ``wire_funcs``): unknown
types get ENOSYS, privileged-only types EACCES, a bad transaction id ENOENT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from xenlite.base.errors import XenStoreError
from xenlite.xenstore import transaction as txn
from xenlite.xenstore.domains import (
    INTRODUCE_DOMAIN,
    RELEASE_DOMAIN,
    Domains,
    parse_domid,
)
from xenlite.xenstore.path import StoreError, canonicalize, domain_path
from xenlite.xenstore.perms import (
    PERM_OWNER,
    PERM_READ,
    PERM_WRITE,
    Perms,
    domid_exists,
    parse_perms,
)
from xenlite.xenstore.quota import Quotas, set_quota
from xenlite.xenstore.tree import Caller, Record, Tree
from xenlite.xenstore.watch import Watch, WatchRegistry
from xenlite.xenstore.wire import ERROR_NAMES, PAYLOAD_MAX, Op, encode_packet

log = logging.getLogger("xenlite.xenstore")

OK = b"OK\0"
_ERROR = Op.ERROR
_WIRE_ERRORS = frozenset(ERROR_NAMES) | {"EQUOTA"}

# Absolute paths that passed ``canonicalize`` for a privileged caller: clients repeat the same
# few paths, and the check is a regex plus scans. Bounded; cleared when full.
_CHECKED: set[bytes] = set()
_CHECKED_MAX = 8192


class Session:
    """The per-connection state the operations need; the server subclasses it."""

    def __init__(self, domid: int, privileged: bool) -> None:
        self.domid = domid
        self.privileged = privileged
        self.caller = Caller(domid, privileged)
        self.transactions: dict[int, txn.Transaction] = {}
        self.next_tx_id = 1
        self.watch_count = 0
        self.prefix_len = len(domain_path(domid)) + 1

    def target(self) -> int | None:
        return self.caller.target

    def send_event(self, path: bytes, token: bytes) -> None:
        raise NotImplementedError("a Session subclass delivers watch events")


Handler = Callable[["XenStore", Session, "txn.Transaction | None", bytes], bytes]


def _onearg(payload: bytes) -> bytes:
    """C's ``onearg``: exactly one string, NUL-terminated."""
    if not payload or payload.find(b"\0") != len(payload) - 1:
        raise StoreError("EINVAL", "XenStore request (want exactly one NUL-terminated argument)")
    return payload[:-1]


def _strings(payload: bytes) -> list[bytes]:
    """C's ``get_strings``: every NUL-terminated string (bytes after the last NUL ignored)."""
    return payload.split(b"\0")[:-1]


def _atoi(raw: bytes) -> int:
    """C's ``atoi``: leading blanks, a sign and digits; anything else ends the number."""
    s = raw.lstrip(b" \t\n\r\f\v")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    n = 0
    for c in s:
        if not 0x30 <= c <= 0x39:
            break
        n = n * 10 + c - 0x30
    return sign * n


class XenStore:
    """The store and everything that acts on it: tree, watches, domains, quotas, journal."""

    def __init__(
        self,
        quotas: Quotas | None = None,
        *,
        tree: Tree | None = None,
        domains: Domains | None = None,
        journal: Callable[[list[Record]], None] | None = None,
        keep_orphans: bool = False,
        priv_domid: int = 0,
    ) -> None:
        self.quotas = quotas or Quotas()
        self.limits = self.quotas.limits()
        self.tree = tree or Tree()
        self.tree.events = []
        self.journal = journal
        self.tree.log = [] if journal is not None else None
        self.domains = domains or Domains()
        self.watches = WatchRegistry()
        self.sessions: set[Session] = set()
        self.keep_orphans = keep_orphans
        self.priv_domid = priv_domid
        self.control_hooks: dict[bytes, Callable[[list[bytes]], bytes]] = {}
        self.on_domains_changed: Callable[[], None] | None = None
        self._pending_initial: tuple[Session, bytes, bytes] | None = None

    # -- sessions --------------------------------------------------------------------------

    def session(self, domid: int) -> Session:
        """Register a plain Session (for in-process use and tests)."""
        s = Session(domid, self.is_privileged(domid))
        self.attach(s)
        return s

    def is_privileged(self, domid: int) -> bool:
        return domid == 0 or domid == self.priv_domid

    def attach(self, session: Session) -> None:
        session.caller.target = self.domains.target_of(session.domid)
        self.sessions.add(session)

    def detach(self, session: Session) -> None:
        """Forget a closed connection: its watches and open transactions go with it."""
        self.sessions.discard(session)
        self.watches.remove_conn(session)
        session.transactions.clear()
        session.watch_count = 0

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, session: Session, op: int, req_id: int, tx_id: int, payload: bytes) -> bytes:
        """Process one request; returns the encoded reply (XS_ERROR on failure)."""
        try:
            handler = _HANDLERS[op] if op < len(_HANDLERS) else None
            if handler is None:
                raise StoreError("ENOSYS", f"XenStore message type {op}")
            if not session.privileged and op in _PRIV_OPS:
                raise StoreError("EACCES", f"XenStore {Op(op).name} (privileged only)")
            tx = None
            if tx_id and op not in _NOTID_OPS:
                tx = session.transactions.get(tx_id)
                if tx is None:
                    raise StoreError("ENOENT", f"XenStore transaction {tx_id}")
            reply = handler(self, session, tx, payload)
        except StoreError as err:
            name = err.wire_name
            if name == "ENOSPC" and self.quotas.equota:
                name = "EQUOTA"  # every ENOSPC here is a quota (see quota.py)
            self._after_change()
            return encode_packet(_ERROR, req_id, tx_id, name.encode() + b"\0")
        except XenStoreError as err:
            name = err.wire_name if err.wire_name in _WIRE_ERRORS else "EINVAL"
            return encode_packet(_ERROR, req_id, tx_id, name.encode() + b"\0")
        if len(reply) > PAYLOAD_MAX:
            return encode_packet(_ERROR, req_id, tx_id, b"E2BIG\0")
        if self.tree.events or self.tree.log:
            self._after_change()
        return encode_packet(op, req_id, tx_id, reply)

    def _after_change(self) -> None:
        tree = self.tree
        events = tree.events
        if events:
            tree.events = []
            if self.watches.by_path:  # most writes of a busy host have nobody watching
                fire = self.watches.fire_event
                for path, node, old, rm in events:
                    fire(tree, path, node, old, rm)
        if tree.log:
            records = tree.log
            tree.log = []
            assert self.journal is not None
            self.journal(records)

    def _quota_error(self, what: str, default: str = "ENOSPC") -> StoreError:
        return StoreError(self.quotas.error(default), what)

    def _path(self, session: Session, raw: bytes, special: bool = False) -> bytes:
        if session.privileged and raw in _CHECKED:
            return raw  # an absolute path already validated (its form does not depend on who)
        path_max = None if session.privileged else self.quotas.path_length
        path = canonicalize(raw, session.domid, allow_special=special, path_max=path_max)
        if path is raw and raw[0] == 0x2F:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED.add(raw)
        return path

    def _tree(self, tx: txn.Transaction | None) -> Tree:
        return tx.tree if tx is not None else self.tree

    def _record(self, session: Session, tx: txn.Transaction, change: txn.Change) -> None:
        tx.changes.append(change)
        if not session.privileged and tx.accessed > self.quotas.transaction_nodes:
            raise self._quota_error(f"XenStore transaction {tx.tx_id} (transaction-nodes quota)")

    # -- node operations -------------------------------------------------------------------

    def op_read(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        path = self._path(s, _onearg(payload))
        return self._tree(tx).get(s.caller, path, PERM_READ).value

    def op_directory(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        path = self._path(s, _onearg(payload))
        return self._tree(tx).get(s.caller, path, PERM_READ).child_bytes()

    def op_directory_part(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        if payload.count(b"\0") != 2:
            raise StoreError("EINVAL", "XenStore DIRECTORY_PART (want path and offset)")
        raw, offset_raw, _ = payload.split(b"\0", 2)
        path = self._path(s, raw)
        node = self._tree(tx).get(s.caller, path, PERM_READ)
        off = max(_atoi(offset_raw), 0)
        gen = b"%d\0" % node.gen
        children = node.child_bytes()
        total = len(children)
        if off >= total:
            return gen + b"\0"
        maxlen = PAYLOAD_MAX - len(gen) - 1
        length = 0
        pos = off
        while True:
            nul = children.find(b"\0", pos)
            name_len = nul - pos
            if length + name_len >= maxlen:
                break
            length += name_len + 1
            pos = nul + 1
            if off + length == total:
                break
        chunk = gen + children[off : off + length]
        return chunk + b"\0" if off + length == total else chunk

    def op_get_perms(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        path = self._path(s, _onearg(payload), special=True)
        if path[0] == 0x40:
            return self._special(s, path, PERM_READ).wire
        return self._tree(tx).get(s.caller, path, PERM_READ).perms.wire

    def _special(self, s: Session, path: bytes, perm: int) -> Perms:
        perms = self.domains.special_perms.get(path)
        if perms is None:
            raise StoreError("ENOENT", f"XenStore special node {path.decode()}")
        if s.caller.perm(perms) & perm != perm:
            raise StoreError("EACCES", f"XenStore special node {path.decode()}")
        return perms

    def op_write(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        nul = payload.find(b"\0")
        if nul < 0:
            raise StoreError("EINVAL", "XenStore WRITE (want path NUL value)")
        path = self._path(s, payload[:nul])
        value = payload[nul + 1 :]
        if tx is None:
            self.tree.write(s.caller, path, value, self.limits)
        else:
            tx.tree.write(s.caller, path, value, self.limits)
            self._record(s, tx, (s.caller, "write", path, value))
        return OK

    def op_mkdir(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        path = self._path(s, _onearg(payload))
        self._tree(tx).mkdir(s.caller, path, self.limits)
        if tx is not None:
            self._record(s, tx, (s.caller, "mkdir", path, None))
        return OK

    def op_rm(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        path = self._path(s, _onearg(payload))
        self._tree(tx).rm(s.caller, path)
        if tx is not None:
            self._record(s, tx, (s.caller, "rm", path, None))
        return OK

    def op_set_perms(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if len(fields) < 2:
            raise StoreError("EINVAL", "XenStore SET_PERMS (want path and permissions)")
        if not s.privileged and len(fields) - 1 > self.quotas.node_permissions:
            raise self._quota_error("XenStore SET_PERMS (node-permissions quota)")
        perms = parse_perms(fields[1:])
        if not domid_exists(perms.owner):
            raise StoreError("ENOENT", f"XenStore SET_PERMS (owner domain {perms.owner})")
        path = self._path(s, fields[0], special=True)
        if path[0] == 0x40:
            old = self._special(s, path, PERM_WRITE | PERM_OWNER)
            if not s.privileged and perms.owner != old.owner:
                raise StoreError("EPERM", f"XenStore special node {path.decode()}")
            self.domains.special_perms[path] = perms
            return OK
        self._tree(tx).set_perms(s.caller, path, perms)
        if tx is not None:
            self._record(s, tx, (s.caller, "perms", path, perms))
        return OK

    # -- watches ---------------------------------------------------------------------------

    def op_watch(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if len(fields) != 2:
            raise StoreError("EINVAL", "XenStore WATCH (want path and token)")
        raw, token = fields
        relative = raw[:1] not in (b"/", b"@")
        path = self._path(s, raw, special=True)
        if self.watches.find(s, path, token) is not None:
            raise StoreError("EEXIST", f"XenStore watch {raw.decode()} (token already used)")
        if not s.privileged and s.watch_count > self.quotas.watches:
            raise self._quota_error("XenStore WATCH (watch quota)", "E2BIG")
        self.watches.add(Watch(s, path, token, s.prefix_len if relative else 0))
        s.watch_count += 1
        self._pending_initial = (s, raw, token)
        return OK

    def op_unwatch(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if len(fields) != 2:
            raise StoreError("EINVAL", "XenStore UNWATCH (want path and token)")
        path = self._path(s, fields[0], special=True)
        watch = self.watches.find(s, path, fields[1])
        if watch is None:
            raise StoreError("ENOENT", f"XenStore watch {fields[0].decode()}")
        self.watches.remove(watch)
        s.watch_count -= 1
        return OK

    def op_reset_watches(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        self.watches.remove_conn(s)
        s.watch_count = 0
        s.transactions.clear()
        return OK

    # -- transactions ----------------------------------------------------------------------

    def op_transaction_start(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        if tx is not None:
            raise StoreError("EBUSY", "XenStore TRANSACTION_START (inside a transaction)")
        if not s.privileged and len(s.transactions) > self.quotas.transactions:
            raise self._quota_error("XenStore TRANSACTION_START (transaction quota)")
        tx_id = s.next_tx_id
        while tx_id == 0 or tx_id in s.transactions:
            tx_id = (tx_id + 1) & 0xFFFFFFFF
        s.next_tx_id = (tx_id + 1) & 0xFFFFFFFF
        s.transactions[tx_id] = txn.start(self.tree, tx_id)
        return b"%d\0" % tx_id

    def op_transaction_end(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        arg = _onearg(payload)
        if arg not in (b"T", b"F"):
            raise StoreError("EINVAL", "XenStore TRANSACTION_END (want T or F)")
        if tx is None:
            raise StoreError("ENOENT", "XenStore TRANSACTION_END (no transaction)")
        del s.transactions[tx.tx_id]
        if arg == b"T":
            events, records = txn.commit(self.tree, tx, self.limits)
            assert self.tree.events is not None
            self.tree.events.extend(events)
            if records and self.tree.log is not None:
                self.tree.log.extend(records)
        return OK

    # -- domains ---------------------------------------------------------------------------

    def op_introduce(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if len(fields) < 3:
            raise StoreError("EINVAL", "XenStore INTRODUCE (want domid, mfn, port)")
        domid = parse_domid(fields[0])
        if self.domains.introduce(domid, _atoi(fields[1]), _atoi(fields[2])):
            self.watches.fire_special(
                INTRODUCE_DOMAIN, self.domains.special_perms[INTRODUCE_DOMAIN]
            )
            self._domains_changed()
        return OK

    def op_release(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        domid = parse_domid(_onearg(payload), allow_zero=False)
        self.release_domain(domid)
        return OK

    def release_domain(self, domid: int) -> None:
        """Forget a domain, remove the nodes it owns and fire @releaseDomain.

        :raise StoreError: ENOENT when it is not introduced.
        """
        self.domains.release(domid)
        self.tree.remove_owned(domid, self.keep_orphans, self.priv_domid)
        for sess in self.sessions:
            if sess.caller.target == domid:
                sess.caller.target = None
        self._after_change()
        self.watches.fire_special(RELEASE_DOMAIN, self.domains.special_perms[RELEASE_DOMAIN])
        self._domains_changed()

    def _domains_changed(self) -> None:
        if self.on_domains_changed is not None:
            self.on_domains_changed()

    def op_get_domain_path(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        return domain_path(_atoi(_onearg(payload)) & 0xFFFFFFFF) + b"\0"

    def op_is_domain_introduced(
        self, s: Session, tx: txn.Transaction | None, payload: bytes
    ) -> bytes:
        domid = _atoi(_onearg(payload))
        return b"T\0" if domid == 0x7FF0 or self.domains.is_introduced(domid) else b"F\0"

    def op_resume(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        domid = parse_domid(_onearg(payload), allow_zero=False)
        self.domains.get(domid).shutdown = False
        return OK

    def op_set_target(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if len(fields) != 2:
            raise StoreError("EINVAL", "XenStore SET_TARGET (want domid and target)")
        domid = parse_domid(fields[0])
        target = parse_domid(fields[1])
        dom = self.domains.get(domid)
        self.domains.get(target)
        dom.target = target
        for sess in self.sessions:
            if sess.domid == domid:
                sess.caller.target = target
        self._domains_changed()
        return OK

    # -- control ---------------------------------------------------------------------------

    def op_control(self, s: Session, tx: txn.Transaction | None, payload: bytes) -> bytes:
        fields = _strings(payload)
        if not fields:
            raise StoreError("EINVAL", "XenStore CONTROL (no command)")
        cmd, args = fields[0], fields[1:]
        if cmd == b"help":
            names = sorted([*_CONTROL_HELP, *self.control_hooks])
            return b"".join(n + b"\n" for n in names) + b"\0"
        if cmd == b"check":
            return OK
        if cmd == b"print":
            if len(args) != 1:
                raise StoreError("EINVAL", "XenStore CONTROL print (want one string)")
            log.info("control: %s", args[0].decode(errors="replace"))
            return OK
        if cmd == b"log":
            if len(args) != 1 or args[0] not in (b"on", b"off"):
                raise StoreError("EINVAL", "XenStore CONTROL log (want on or off)")
            level = logging.DEBUG if args[0] == b"on" else logging.INFO
            log.setLevel(level)
            return OK
        if cmd == b"quota":
            return self._control_quota(args)
        if cmd == b"memreport":
            return self._memreport().encode() + b"\0"
        hook = self.control_hooks.get(cmd)
        if hook is not None:
            return hook(args)
        raise StoreError("EINVAL", f"XenStore CONTROL {cmd.decode(errors='replace')} (unknown)")

    def _control_quota(self, args: list[bytes]) -> bytes:
        if not args:
            return self.quotas.describe().encode() + b"\0"
        if len(args) == 1 and args[0].isdigit():
            domid = int(args[0])
            if not self.domains.is_introduced(domid):
                raise StoreError("ENOENT", f"domain {domid} (not introduced)")
            nodes = self.tree.owners.get(domid, 0)
            watches = sum(w.watch_count for w in self.sessions if w.domid == domid)
            txs = sum(len(w.transactions) for w in self.sessions if w.domid == domid)
            text = f"nodes: {nodes}\nwatches: {watches}\ntransactions: {txs}\n"
            return text.encode() + b"\0"
        spec = "=".join(a.decode(errors="replace") for a in args[:2])
        self.quotas = set_quota(self.quotas, spec)
        self.limits = self.quotas.limits()
        return OK

    def _memreport(self) -> str:
        owners = ", ".join(f"dom{d}: {n}" for d, n in sorted(self.tree.owners.items()))
        watches = sum(len(v) for v in self.watches.by_path.values())
        return f"nodes per owner: {owners}\nwatches: {watches}\nconnections: {len(self.sessions)}\n"

    def take_initial_event(self) -> tuple[Session, bytes, bytes] | None:
        """The initial event a WATCH just registered owes its connection (sent after the OK)."""
        pending = self._pending_initial
        self._pending_initial = None
        return pending


_CONTROL_HELP = (b"check", b"help", b"log", b"memreport", b"print", b"quota")

_PRIV_OPS = frozenset(
    {Op.CONTROL, Op.INTRODUCE, Op.RELEASE, Op.IS_DOMAIN_INTRODUCED, Op.RESUME, Op.SET_TARGET}
)
_NOTID_OPS = frozenset({Op.WATCH, Op.UNWATCH})


def _table() -> list[Handler | None]:
    table: list[Handler | None] = [None] * (Op.DIRECTORY_PART + 1)
    named: dict[Op, Any] = {
        Op.CONTROL: XenStore.op_control,
        Op.DIRECTORY: XenStore.op_directory,
        Op.READ: XenStore.op_read,
        Op.GET_PERMS: XenStore.op_get_perms,
        Op.WATCH: XenStore.op_watch,
        Op.UNWATCH: XenStore.op_unwatch,
        Op.TRANSACTION_START: XenStore.op_transaction_start,
        Op.TRANSACTION_END: XenStore.op_transaction_end,
        Op.INTRODUCE: XenStore.op_introduce,
        Op.RELEASE: XenStore.op_release,
        Op.GET_DOMAIN_PATH: XenStore.op_get_domain_path,
        Op.WRITE: XenStore.op_write,
        Op.MKDIR: XenStore.op_mkdir,
        Op.RM: XenStore.op_rm,
        Op.SET_PERMS: XenStore.op_set_perms,
        Op.IS_DOMAIN_INTRODUCED: XenStore.op_is_domain_introduced,
        Op.RESUME: XenStore.op_resume,
        Op.SET_TARGET: XenStore.op_set_target,
        Op.RESET_WATCHES: XenStore.op_reset_watches,
        Op.DIRECTORY_PART: XenStore.op_directory_part,
    }
    for op, fn in named.items():
        table[op] = fn
    return table


_HANDLERS = _table()
