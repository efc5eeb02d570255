"""Concurrent transactions against a serial model: every commit is as if run alone at its end.

A hypothesis state machine drives one XenStore with direct writes/removes and several open
transactions. Each transaction must see only its snapshot plus its own changes; a commit that
succeeds must give exactly what replaying the transaction at commit time gives (reads
included), a commit with no concurrent change must succeed, and EAGAIN must change nothing.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.tree import walk
from xenlite.xenstore.wire import Decoder, Op

PATHS = [b"/p", b"/p/a", b"/p/b", b"/p/a/x", b"/p/b/y"]
VALUES = [b"", b"1", b"2", b"three"]

Model = dict[bytes, bytes]
Step = tuple[str, bytes, bytes, bytes]  # kind, path, value, observed reply


def parent(path: bytes) -> bytes:
    return path[: path.rfind(b"/")] or b"/"


def m_write(model: Model, path: bytes, value: bytes) -> bytes:
    q = parent(path)
    while q != b"/" and q not in model:
        model[q] = b""
        q = parent(q)
    model[path] = value
    return b"OK"


def m_rm(model: Model, path: bytes) -> bytes:
    if path not in model:
        return b"OK" if parent(path) in model or parent(path) == b"/" else b"ENOENT"
    for p in [p for p in model if p == path or p.startswith(path + b"/")]:
        del model[p]
    return b"OK"


def m_read(model: Model, path: bytes) -> bytes:
    return model.get(path, b"ENOENT")


def apply(model: Model, step: Step) -> bytes:
    kind, path, value, _ = step
    if kind == "write":
        return m_write(model, path, value)
    if kind == "rm":
        return m_rm(model, path)
    return m_read(model, path)


class Conn(Session):
    def send_event(self, path: bytes, token: bytes) -> None:
        pass


class Tx:
    def __init__(self, tx_id: int, snapshot: Model, version: int) -> None:
        self.tx_id = tx_id
        self.view = dict(snapshot)
        self.steps: list[Step] = []
        self.version = version


class TransactionsVsSerial(RuleBasedStateMachine):
    txs = Bundle("txs")

    def __init__(self) -> None:
        super().__init__()
        self.store = XenStore()
        self.conn = Conn(0, True)
        self.store.attach(self.conn)
        self.model: Model = {}
        self.version = 0  # bumped by every change to the live store

    def call(self, op: int, payload: bytes, tx: int = 0) -> bytes:
        (pkt,) = Decoder().feed(self.store.handle(self.conn, op, 1, tx, payload))
        if pkt.op == Op.ERROR:
            return pkt.payload.rstrip(b"\0")
        return b"OK" if op in (Op.WRITE, Op.RM, Op.TRANSACTION_END) else pkt.payload

    def run(self, step: Step, tx: int = 0) -> bytes:
        kind, path, value, _ = step
        if kind == "write":
            return self.call(Op.WRITE, path + b"\0" + value, tx)
        if kind == "rm":
            return self.call(Op.RM, path + b"\0", tx)
        return self.call(Op.READ, path + b"\0", tx)

    @rule(kind=st.sampled_from(["write", "rm"]), path=st.sampled_from(PATHS),
          value=st.sampled_from(VALUES))  # fmt: skip
    def direct(self, kind: str, path: bytes, value: bytes) -> None:
        step: Step = (kind, path, value, b"")
        expected = apply(self.model, step)
        assert self.run(step) == expected
        if expected == b"OK":
            self.version += 1

    @rule(target=txs)
    def start(self) -> Tx:
        tx_id = int(self.call(Op.TRANSACTION_START, b"\0").rstrip(b"\0"))
        return Tx(tx_id, self.model, self.version)

    @rule(tx=txs, kind=st.sampled_from(["write", "rm", "read"]), path=st.sampled_from(PATHS),
          value=st.sampled_from(VALUES))  # fmt: skip
    def in_tx(self, tx: Tx, kind: str, path: bytes, value: bytes) -> None:
        step: Step = (kind, path, value, b"")
        expected = apply(tx.view, step)
        got = self.run(step, tx.tx_id)
        assert got == expected, (step, got, expected)
        tx.steps.append((kind, path, value, got))

    @rule(tx=consumes(txs))
    def commit(self, tx: Tx) -> None:
        got = self.call(Op.TRANSACTION_END, b"T\0", tx.tx_id)
        if got == b"EAGAIN":
            assert tx.version != self.version, "EAGAIN although nothing else changed"
            return
        assert got == b"OK"
        replay = dict(self.model)
        for step in tx.steps:
            assert apply(replay, step) == step[3], "commit is not serializable"
        # Any write or rm counts as a change, as a direct one does: xenstored (C and ours)
        # bumps a node's generation even when the value written equals the old one, so a
        # transaction that touched it conflicts.
        if any(kind != "read" and reply == b"OK" for kind, _, _, reply in tx.steps):
            self.version += 1
        self.model = replay

    @rule(tx=consumes(txs))
    def abort(self, tx: Tx) -> None:
        assert self.call(Op.TRANSACTION_END, b"F\0", tx.tx_id) == b"OK"

    @invariant()
    def store_matches_model(self) -> None:
        p = self.store.tree.lookup(b"/p")
        actual = {} if p is None else {path: n.value for path, n in walk(p, b"/p")}
        assert actual == self.model


TransactionsVsSerial.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
test_transactions_vs_serial_model = TransactionsVsSerial.TestCase
