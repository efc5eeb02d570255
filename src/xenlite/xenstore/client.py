"""XenStore clients: an asyncio client for xenlite's daemons and a blocking one for the CLI tools.

Implements the client side of xenstore.txt and xs_wire.h as libxenstore (tools/libs/store/xs.c)
does it: socket lookup (XENSTORED_PATH, XENSTORED_RUNDIR), DIRECTORY_PART for directories too big
for one reply, permission strings, transactions retried on EAGAIN, watch events by token.

asyncio is imported only inside ``XenStoreClient``'s methods, so the blocking ``XenStore`` (used
by ``xenlite xenstore-*``) keeps CLI start-up fast.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

from xenlite.base.errors import XenStoreConnectionError, XenStoreError
from xenlite.base.sockets import AsyncClosing, Closing, address_for, connect_unix
from xenlite.xenstore.location import socket_candidates
from xenlite.xenstore.wire import ERROR_NAMES, Decoder, Op, Packet, encode_packet, split_strings

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

__all__ = [
    "DEFAULT_TIMEOUT",
    "Perm",
    "PermKind",
    "PermList",
    "Transaction",
    "Watch",
    "XenStore",
    "XenStoreClient",
    "XenStoreConnectionError",
    "errno_of",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds for one request's reply; C xenstored answers in microseconds
DEFAULT_WATCH_QUEUE = 4096  # events buffered per watch before the consumer is told it fell behind
DEFAULT_TRANSACTION_ATTEMPTS = 64
_READ_CHUNK = 262144

# Hints for the errors a daemon sends (xs_wire.h xsd_errors).
_FIXES = {
    "ENOENT": "check the path with 'xenstore-ls' or create it first",
    "EACCES": "this connection's domain lacks the permission; check 'xenstore-ls -p'",
    "EPERM": "only a privileged (dom0) connection may do this",
    "EEXIST": "the node or watch already exists",
    "EINVAL": "check the path syntax (xenstore.txt: characters, length) and the arguments",
    "EAGAIN": "another client changed the nodes this transaction read; run it again",
    "E2BIG": "the value or request exceeds the daemon's size limit",
    "ENOSPC": "a quota of the daemon is exhausted; remove nodes or raise the quota",
    "EBUSY": "the daemon is busy; retry",
    "ENOSYS": "the daemon does not implement this request",
    "EISCONN": "the domain is already introduced",
}


def errno_of(wire_name: str) -> int:
    """The errno value of an error name, as libxenstore's ``get_error`` maps it (else EINVAL)."""
    if wire_name in ERROR_NAMES:
        return int(getattr(errno, wire_name, errno.EINVAL))
    value = getattr(errno, wire_name, None)
    return value if isinstance(value, int) and wire_name.startswith("E") else errno.EINVAL


# --- permissions -------------------------------------------------------------------------------


class PermKind(StrEnum):
    """The letter of a permission string (xenstore.txt "Permissions")."""

    NONE = "n"
    READ = "r"
    WRITE = "w"
    BOTH = "b"


@dataclass(frozen=True, slots=True)
class Perm:
    """One permission entry: what ``domid`` may do (``r5`` = domain 5 may read)."""

    kind: PermKind
    domid: int

    @classmethod
    def parse(cls, text: str) -> Perm:
        """``n0``, ``r5``, ``w7``, ``b12`` -> Perm.

        :raise XenStoreError: EINVAL for anything else (as xs_strings_to_perms fails)
        """
        letter, digits = text[:1], text[1:]
        if letter not in ("n", "r", "w", "b") or not digits.isdigit() or not digits.isascii():
            raise XenStoreError(
                f"XenStore permission {text!r}",
                "EINVAL",
                "write a letter n, r, w or b followed by a domain id, e.g. r5",
            )
        return cls(PermKind(letter), int(digits))

    def __str__(self) -> str:
        return f"{self.kind.value}{self.domid}"


@dataclass(frozen=True, slots=True)
class PermList:
    """A node's permissions: the first entry names the owner and what everyone else may do.

    ``PermList.parse(["n0", "r5"])``: owned by dom0, no access for others, dom5 may read.
    """

    owner: Perm
    acl: tuple[Perm, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str]) -> PermList:
        """Permission strings (owner first) -> PermList.

        :raise XenStoreError: EINVAL for an empty list or a malformed entry
        """
        perms = [Perm.parse(item) for item in items]
        if not perms:
            raise XenStoreError(
                "XenStore permissions", "EINVAL", "give at least the owner entry, e.g. n0"
            )
        return cls(perms[0], tuple(perms[1:]))

    @classmethod
    def from_wire(cls, payload: bytes) -> PermList:
        """A GET_PERMS reply (NUL-separated strings) -> PermList."""
        return cls.parse(field.decode("ascii", "replace") for field in split_strings(payload))

    @property
    def entries(self) -> tuple[Perm, ...]:
        """Owner entry first, then the per-domain entries."""
        return (self.owner, *self.acl)

    def to_strings(self) -> list[str]:
        """``["n0", "r5"]``: the wire strings, owner first."""
        return [str(p) for p in self.entries]

    def __str__(self) -> str:
        return ",".join(self.to_strings())


# --- socket lookup and payloads ------------------------------------------------------------------


async def _open(path: Path, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A unix connection to ``path`` (abstract-socket aware), within ``timeout`` seconds.

    :raise OSError: when it cannot be made (ETIMEDOUT for the deadline)
    """
    import asyncio

    try:
        with address_for(path) as address:
            async with asyncio.timeout(timeout):
                return await asyncio.open_unix_connection(address, limit=_READ_CHUNK)
    except TimeoutError:
        raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None


def _no_daemon(tried: Sequence[Path], exc: OSError | None) -> XenStoreConnectionError:
    reason = os.strerror(exc.errno) if exc is not None and exc.errno else "no socket"
    name = errno.errorcode.get(exc.errno, "ENOENT") if exc is not None and exc.errno else "ENOENT"
    where = ", ".join(str(p) for p in tried)
    return XenStoreConnectionError(
        f"XenStore daemon socket {where}",
        reason,
        name,
        "start the daemon ('xenlite xenstored') or point XENSTORED_PATH at its socket",
    )


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _value_bytes(value: bytes | str) -> bytes:
    return _b(value) if isinstance(value, str) else bytes(value)


def _one_string(payload: bytes) -> str:
    return _s(payload[:-1] if payload.endswith(b"\0") else payload)


def _error_from_reply(op: int, subject: str, payload: bytes) -> XenStoreError:
    name = _one_string(payload) or "EINVAL"
    try:
        op_name = Op(op).name
    except ValueError:
        op_name = f"type {op}"
    what = f"XenStore {op_name} {subject}".rstrip()
    return XenStoreError(what, name, _FIXES.get(name))


def _directory_names(payload: bytes) -> list[str]:
    return [_s(name) for name in split_strings(payload)]


class _DirectoryParts:
    """Reassembles DIRECTORY_PART replies as xs.c's xs_directory_part does.

    Each reply is ``generation\\0name\\0...``; the last one ends in an empty name. A change of
    generation between parts means the directory changed: start again from offset 0.
    """

    __slots__ = ("_generation", "done", "names", "offset")

    def __init__(self) -> None:
        self._generation: bytes | None = None
        self.offset = 0
        self.names: bytearray = bytearray()
        self.done = False

    def request(self, path: str) -> bytes:
        return _b(path) + b"\0" + str(self.offset).encode() + b"\0"

    def feed(self, reply: bytes) -> None:
        generation, _, rest = reply.partition(b"\0")
        if self._generation is None:
            self._generation = generation
        elif generation != self._generation:
            self._generation, self.offset, self.names = None, 0, bytearray()
            return
        self.names += rest
        self.offset += len(rest)
        if len(self.names) <= 1 or self.names[-2:] == b"\0\0":
            self.done = True

    def result(self) -> list[str]:
        data = bytes(self.names)
        if data.endswith(b"\0\0"):
            data = data[:-1]
        return [name for name in _directory_names(data) if name]


# --- the asyncio client --------------------------------------------------------------------------


class Watch(AsyncClosing):
    """A registered watch: an async iterator of ``(path, token)`` events.

    The daemon sends one event at registration, then one per change of the node or its
    descendants. ``async with`` unregisters it on exit; ``close()`` does it explicitly.
    """

    def __init__(
        self, client: XenStoreClient, path: str, token: str, queue: asyncio.Queue[tuple[str, str]]
    ) -> None:
        self.client = client
        self.path = path
        self.token = token
        self._queue = queue
        self._lost = 0
        self._closed = False

    def _deliver(self, event: tuple[str, str]) -> None:
        # One slot stays free for the end-of-connection sentinel.
        if self._queue.qsize() >= self._queue.maxsize - 1:
            self._lost += 1
            return
        self._queue.put_nowait(event)

    def _check(self) -> None:
        if self._lost:
            lost, self._lost = self._lost, 0
            raise XenStoreConnectionError(
                f"XenStore watch on {self.path} (token {self.token})",
                f"{lost} events were dropped because the consumer fell behind",
                "ENOSPC",
                "consume events faster or raise watch_queue_size",
            )

    async def next(self, timeout: float | None = None) -> tuple[str, str]:
        """The next event; waits at most ``timeout`` seconds (None: until one arrives).

        :raise XenStoreConnectionError: ETIMEDOUT, a lost connection (EIO) or dropped events
        """
        import asyncio

        self._check()
        if self._queue.empty():
            self.client._raise_if_closed(f"XenStore watch on {self.path}")
        try:
            async with asyncio.timeout(timeout):
                event = await self._queue.get()
        except TimeoutError:
            raise XenStoreConnectionError(
                f"XenStore watch on {self.path}",
                f"no event within {timeout} s",
                "ETIMEDOUT",
                "wait longer or check that the node changes",
            ) from None
        if event == _CLOSED:
            self._queue.put_nowait(_CLOSED)  # let every later reader see the end as well
            self.client._raise_if_closed(f"XenStore watch on {self.path}")
        return event

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[str, str]:
        # Waiting for an event is waiting for something to happen, not for a reply: no timeout.
        return await self.next(None)

    async def close(self) -> None:
        """Unregister the watch (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.client._forget_watch(self)
        if not self.client.closed:
            await self.client.unwatch(self.path, self.token)


_CLOSED = ("", "")  # queue sentinel: the connection is gone


class Transaction:
    """One XenStore transaction: the client's operations bound to a transaction id.

    ``async with`` commits on a clean exit and aborts on an exception. A commit that conflicts
    raises XenStoreError EAGAIN, unless the transaction came from
    ``XenStoreClient.transactions()``, which then starts the next attempt.
    """

    def __init__(self, client: XenStoreClient, *, retrying: bool = False) -> None:
        self.client = client
        self.tx_id = 0
        self.state = "new"  # new, open, committed, aborted, conflict
        self._retrying = retrying
        self._generation = client.generation

    async def start(self) -> Self:
        if self.state != "new":
            raise XenStoreError("XenStore transaction", "EINVAL", "start a new Transaction")
        self._generation = self.client.generation
        reply = await self.client.request(Op.TRANSACTION_START, b"\0", subject="")
        self.tx_id = int(_one_string(reply))
        self.state = "open"
        return self

    def _id(self) -> int:
        """The transaction id, while the connection it was started on stands.

        :raise XenStoreConnectionError: after a reopen(): the daemon never knew this id
        """
        if self._generation != self.client.generation:
            self.state = "aborted"
            raise XenStoreConnectionError(
                f"XenStore transaction {self.tx_id}",
                "was started on a connection that has since been lost",
                "EIO",
                "run the whole operation again",
            )
        return self.tx_id

    async def _end(self, commit: bool) -> None:
        if self.state != "open":
            raise XenStoreError(
                f"XenStore transaction {self.tx_id}", "EINVAL", "the transaction is not open"
            )
        try:
            await self.client.request(
                Op.TRANSACTION_END, b"T\0" if commit else b"F\0", tx=self._id(), subject=""
            )
        except (XenStoreError, XenStoreConnectionError) as exc:
            conflict = isinstance(exc, XenStoreError) and exc.wire_name == "EAGAIN"
            self.state = "conflict" if conflict else "aborted"
            raise
        self.state = "committed" if commit else "aborted"

    async def commit(self) -> None:
        """End the transaction, applying its changes.

        :raise XenStoreError: EAGAIN when another client changed what it read
        """
        await self._end(True)

    async def abort(self) -> None:
        """End the transaction, discarding its changes."""
        await self._end(False)

    async def read(self, path: str) -> bytes:
        return await self.client.read(path, tx=self._id())

    async def write(self, path: str, value: bytes | str) -> None:
        await self.client.write(path, value, tx=self._id())

    async def mkdir(self, path: str) -> None:
        await self.client.mkdir(path, tx=self._id())

    async def rm(self, path: str) -> None:
        await self.client.rm(path, tx=self._id())

    async def directory(self, path: str) -> list[str]:
        return await self.client.directory(path, tx=self._id())

    async def exists(self, path: str) -> bool:
        return await self.client.exists(path, tx=self._id())

    async def get_perms(self, path: str) -> PermList:
        return await self.client.get_perms(path, tx=self._id())

    async def set_perms(self, path: str, perms: PermList) -> None:
        await self.client.set_perms(path, perms, tx=self._id())

    async def __aenter__(self) -> Self:
        if self.state == "new":
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self.state != "open":
            return False
        if exc_type is not None:
            if not self.client.closed and self._generation == self.client.generation:
                await self.abort()
            return False
        try:
            await self.commit()
        except XenStoreError as err:
            if err.wire_name == "EAGAIN" and self._retrying:
                return False  # transactions() starts the next attempt
            raise
        return False


class XenStoreClient(AsyncClosing):
    """An asyncio XenStore client: requests pipelined on one connection, routed by req_id.

    Create it with ``await XenStoreClient.connect(path)``; every request waits at most
    ``timeout`` seconds for its reply. Paths are str, values bytes (str values are UTF-8).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        path: Path,
        timeout: float = DEFAULT_TIMEOUT,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        import asyncio

        self.path = path
        self.timeout = timeout
        self.watch_queue_size = watch_queue_size
        self._reader = reader
        self._writer = writer
        self._pending: dict[int, asyncio.Future[Packet]] = {}
        self._watches: dict[str, list[Watch]] = {}
        self._next_id = 0
        self._tokens = itertools.count(1)
        self._closed_reason: XenStoreConnectionError | None = None
        self._closed_by_client = False
        self._lost = asyncio.Event()
        # Bumped by each reopen(): transactions of an older connection are void.
        self.generation = 0
        # The fix a request on a lost connection names (a daemon that reconnects by itself
        # says so instead).
        self.lost_fix = "check that the daemon is running and reconnect"
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> XenStoreClient:
        """Connect to the daemon at ``path``, or find its socket as libxenstore does.

        :raise XenStoreConnectionError: when no daemon answers there
        """
        tried = [Path(path)] if path is not None else socket_candidates()
        last: OSError | None = None
        for candidate in tried:
            try:
                reader, writer = await _open(candidate, timeout)
            except OSError as exc:
                last = exc
                continue
            return cls(
                reader, writer, path=candidate, timeout=timeout, watch_queue_size=watch_queue_size
            )
        raise _no_daemon(tried, last)

    async def wait_lost(self) -> XenStoreConnectionError:
        """Wait until the connection is gone (the daemon died or hung up, or close());
        return why."""
        await self._lost.wait()
        assert self._closed_reason is not None
        return self._closed_reason

    @property
    def closed_by_client(self) -> bool:
        """close() was called: the connection is not to be reopened."""
        return self._closed_by_client

    async def reopen(self, timeout: float | None = None) -> None:
        """Connect again to the same daemon after the connection was lost. What was pending
        has failed and watches have ended; transactions started before are void.

        :raise XenStoreConnectionError: when no daemon answers yet, or after close()
        """
        import asyncio

        if self._closed_reason is None:
            return
        if self._closed_by_client:
            raise XenStoreConnectionError(
                f"XenStore connection {self.path}", "was closed by the client", "EIO"
            )
        try:
            reader, writer = await _open(self.path, self.timeout if timeout is None else timeout)
        except OSError as exc:
            raise _no_daemon([self.path], exc) from None
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task  # ended with the connection; reaped here
        self._writer.close()
        self._reader, self._writer = reader, writer
        self._watches.clear()
        self._closed_reason = None
        self._lost = asyncio.Event()
        self.generation += 1
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    def _raise_if_closed(self, what: str) -> None:
        if self._closed_reason is not None:
            raise XenStoreConnectionError(
                what,
                self._closed_reason.cause,
                self._closed_reason.wire_name,
                self._closed_reason.fix,
            )

    async def close(self) -> None:
        """Close the connection; pending requests fail with EIO, watch iterators end."""
        import asyncio

        self._closed_by_client = True
        if self._closed_reason is None:
            self._shut(
                XenStoreConnectionError(
                    f"XenStore connection {self.path}", "closed by the client", "EIO"
                )
            )
        self._read_task.cancel()
        try:
            await self._read_task
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise
        self._writer.close()
        try:
            async with asyncio.timeout(self.timeout):
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            pass  # the socket is closed either way; nothing more to release

    def _shut(self, reason: XenStoreConnectionError) -> None:
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._lost.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    XenStoreConnectionError(reason.what, reason.cause, reason.wire_name, reason.fix)
                )
        self._pending.clear()
        for watches in self._watches.values():
            for watch in watches:
                if not watch._queue.full():
                    watch._queue.put_nowait(_CLOSED)

    async def _read_loop(self) -> None:
        decoder = Decoder()
        reason = "the daemon closed the connection"
        try:
            while True:
                # Idle reading is waiting for the daemon to speak, not for a reply: each
                # request has its own deadline in request().
                data = await self._reader.read(_READ_CHUNK)
                if not data:
                    break
                for packet in decoder.feed(data):
                    self._dispatch(packet)
        except XenStoreError as exc:
            reason = f"the daemon broke the framing: {exc}"
        except OSError as exc:
            reason = f"reading from the daemon failed: {exc.strerror or exc}"
        self._shut(
            XenStoreConnectionError(
                f"XenStore connection {self.path}",
                reason,
                "EIO",
                self.lost_fix,
            )
        )

    def _dispatch(self, packet: Packet) -> None:
        if packet.op == Op.WATCH_EVENT:
            fields = split_strings(packet.payload)
            if len(fields) >= 2:
                token = _s(fields[1])
                for watch in self._watches.get(token, ()):
                    watch._deliver((_s(fields[0]), token))
            return
        future = self._pending.pop(packet.req_id, None)
        if future is not None and not future.done():
            future.set_result(packet)

    def _new_id(self) -> int:
        while True:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            if self._next_id not in self._pending:
                return self._next_id

    async def request(self, op: Op, payload: bytes, *, tx: int = 0, subject: str) -> bytes:
        """Send one request and wait for its reply's payload.

        :raise XenStoreError: the daemon's error (``wire_name`` ENOENT, EACCES, ...)
        :raise XenStoreConnectionError: ETIMEDOUT after ``timeout`` s, EIO when disconnected
        """
        import asyncio

        op = Op(op)
        self._raise_if_closed(f"XenStore {op.name} {subject}".rstrip())
        req_id = self._new_id()
        future: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            self._writer.write(encode_packet(op, req_id, tx, payload))
            async with asyncio.timeout(self.timeout):
                await self._writer.drain()
                reply = await future
        except TimeoutError:
            raise XenStoreConnectionError(
                f"XenStore {op.name} {subject}".rstrip(),
                f"no reply within {self.timeout} s",
                "ETIMEDOUT",
                "check that the daemon is alive; raise the client's timeout for slow hosts",
            ) from None
        except (ConnectionError, OSError) as exc:
            self._shut(
                XenStoreConnectionError(
                    f"XenStore connection {self.path}",
                    f"writing to the daemon failed: {exc}",
                    "EIO",
                    self.lost_fix,
                )
            )
            self._raise_if_closed(f"XenStore {op.name} {subject}".rstrip())
            raise
        finally:
            self._pending.pop(req_id, None)
        if reply.op == Op.ERROR:
            raise _error_from_reply(op, subject, reply.payload)
        return reply.payload

    # --- node operations ---

    async def read(self, path: str, *, tx: int = 0) -> bytes:
        """The value of ``path``."""
        return await self.request(Op.READ, _b(path) + b"\0", tx=tx, subject=path)

    async def write(self, path: str, value: bytes | str, *, tx: int = 0) -> None:
        """Set ``path`` to ``value``, creating it and missing parents."""
        await self.request(Op.WRITE, _b(path) + b"\0" + _value_bytes(value), tx=tx, subject=path)

    async def mkdir(self, path: str, *, tx: int = 0) -> None:
        """Create ``path`` with an empty value (no error if it exists)."""
        await self.request(Op.MKDIR, _b(path) + b"\0", tx=tx, subject=path)

    async def rm(self, path: str, *, tx: int = 0) -> None:
        """Remove ``path`` and everything below it."""
        await self.request(Op.RM, _b(path) + b"\0", tx=tx, subject=path)

    async def directory(self, path: str, *, tx: int = 0) -> list[str]:
        """The names of ``path``'s children; large directories come in DIRECTORY_PART pieces."""
        try:
            reply = await self.request(Op.DIRECTORY, _b(path) + b"\0", tx=tx, subject=path)
        except XenStoreError as exc:
            if exc.wire_name != "E2BIG":
                raise
        else:
            return _directory_names(reply)
        parts = _DirectoryParts()
        while not parts.done:
            try:
                reply = await self.request(
                    Op.DIRECTORY_PART, parts.request(path), tx=tx, subject=path
                )
            except XenStoreError as exc:
                if exc.wire_name == "ENOSYS":  # as libxenstore: no DIRECTORY_PART -> E2BIG
                    raise XenStoreError(exc.what, "E2BIG", _FIXES["E2BIG"]) from exc
                raise
            parts.feed(reply)
        return parts.result()

    async def read_if_exists(self, path: str, *, tx: int = 0) -> bytes | None:
        """The value of ``path``, or None when there is no such node (ENOENT)."""
        try:
            return await self.read(path, tx=tx)
        except XenStoreError as exc:
            if exc.wire_name == "ENOENT":
                return None
            raise

    async def rm_if_exists(self, path: str, *, tx: int = 0) -> None:
        """Remove ``path``; one that is not there (ENOENT: nor its parent) counts as removed."""
        try:
            await self.rm(path, tx=tx)
        except XenStoreError as exc:
            if exc.wire_name != "ENOENT":
                raise

    async def directory_if_exists(self, path: str, *, tx: int = 0) -> list[str]:
        """``path``'s children, or none when there is no such node (ENOENT)."""
        try:
            return await self.directory(path, tx=tx)
        except XenStoreError as exc:
            if exc.wire_name == "ENOENT":
                return []
            raise

    async def exists(self, path: str, *, tx: int = 0) -> bool:
        """Whether ``path`` can be read (xenstore-exists' test: ENOENT and EACCES say no)."""
        try:
            await self.read(path, tx=tx)
        except XenStoreError as exc:
            if exc.wire_name in ("ENOENT", "EACCES"):
                return False
            raise
        return True

    async def get_perms(self, path: str, *, tx: int = 0) -> PermList:
        """The permissions of ``path``, owner first."""
        reply = await self.request(Op.GET_PERMS, _b(path) + b"\0", tx=tx, subject=path)
        return PermList.from_wire(reply)

    async def set_perms(self, path: str, perms: PermList, *, tx: int = 0) -> None:
        """Replace the permissions of ``path`` (the connection must own it or be dom0)."""
        payload = _b(path) + b"\0" + b"".join(_b(p) + b"\0" for p in perms.to_strings())
        await self.request(Op.SET_PERMS, payload, tx=tx, subject=path)

    # --- watches ---

    async def watch(self, path: str, token: str | None = None) -> Watch:
        """Register a watch on ``path`` (or a special path such as @introduceDomain).

        The token defaults to a fresh one; events are routed to the Watch by token.
        """
        import asyncio

        token = token if token is not None else f"xenlite-{next(self._tokens)}"
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(self.watch_queue_size + 1)
        watch = Watch(self, path, token, queue)
        # Registered before the request goes out: the initial event may follow the reply at once.
        self._watches.setdefault(token, []).append(watch)
        try:
            await self.request(Op.WATCH, _b(path) + b"\0" + _b(token) + b"\0", subject=path)
        except BaseException:
            self._forget_watch(watch)
            raise
        return watch

    def _forget_watch(self, watch: Watch) -> None:
        watches = self._watches.get(watch.token, [])
        if watch in watches:
            watches.remove(watch)
        if not watches:
            self._watches.pop(watch.token, None)

    async def unwatch(self, path: str, token: str) -> None:
        """Remove the watch registered with ``path`` and ``token``."""
        await self.request(Op.UNWATCH, _b(path) + b"\0" + _b(token) + b"\0", subject=path)

    async def reset_watches(self) -> None:
        """Remove every watch of this connection."""
        await self.request(Op.RESET_WATCHES, b"", subject="")
        for watches in list(self._watches.values()):
            for watch in watches:
                watch._closed = True
        self._watches.clear()

    # --- transactions ---

    def transaction(self) -> Transaction:
        """A transaction to use with ``async with`` (or ``await tx.start()`` ...)."""
        return Transaction(self)

    async def start_transaction(self) -> Transaction:
        """Start a transaction; end it with ``commit()`` or ``abort()``."""
        return await Transaction(self).start()

    async def transactions(
        self, attempts: int = DEFAULT_TRANSACTION_ATTEMPTS
    ) -> AsyncIterator[Transaction]:
        """Attempts of one transaction, retried on EAGAIN::

            async for tx in client.transactions():
                async with tx:
                    await tx.write("/a", await tx.read("/b"))

        :raise XenStoreError: EAGAIN when every attempt conflicted
        """
        for _ in range(attempts):
            tx = Transaction(self, retrying=True)
            yield tx
            if tx.state != "conflict":
                return
        raise XenStoreError(
            f"XenStore transaction ({attempts} attempts)",
            "EAGAIN",
            "other clients keep changing the same nodes; retry later",
        )

    async def transact(
        self,
        body: Callable[[Transaction], Awaitable[T]],
        attempts: int = DEFAULT_TRANSACTION_ATTEMPTS,
    ) -> T:
        """Run ``body(tx)`` in a transaction and commit, running it again on EAGAIN."""
        for _ in range(attempts):
            async with Transaction(self) as tx:
                result = await body(tx)
                try:
                    await tx.commit()
                except XenStoreError as exc:
                    if exc.wire_name == "EAGAIN":
                        continue
                    raise
                return result
        raise XenStoreError(
            f"XenStore transaction ({attempts} attempts)",
            "EAGAIN",
            "other clients keep changing the same nodes; retry later",
        )

    # --- domains and control ---

    async def introduce(self, domid: int, mfn: int, port: int) -> None:
        """INTRODUCE a domain (its ring page frame and event channel port)."""
        payload = f"{domid}\0{mfn}\0{port}\0".encode()
        await self.request(Op.INTRODUCE, payload, subject=f"domain {domid}")

    async def release(self, domid: int) -> None:
        """RELEASE a domain: forget it and fire @releaseDomain."""
        await self.request(Op.RELEASE, f"{domid}\0".encode(), subject=f"domain {domid}")

    async def resume(self, domid: int) -> None:
        """RESUME: clear a domain's shutdown flag."""
        await self.request(Op.RESUME, f"{domid}\0".encode(), subject=f"domain {domid}")

    async def get_domain_path(self, domid: int) -> str:
        """The home path of a domain (/local/domain/<domid>)."""
        reply = await self.request(
            Op.GET_DOMAIN_PATH, f"{domid}\0".encode(), subject=f"domain {domid}"
        )
        return _one_string(reply)

    async def is_domain_introduced(self, domid: int) -> bool:
        reply = await self.request(
            Op.IS_DOMAIN_INTRODUCED, f"{domid}\0".encode(), subject=f"domain {domid}"
        )
        return _one_string(reply) != "F"

    async def set_target(self, domid: int, target: int) -> None:
        """SET_TARGET: let ``domid`` act with ``target``'s privileges (a device model)."""
        payload = f"{domid}\0{target}\0".encode()
        await self.request(Op.SET_TARGET, payload, subject=f"domain {domid}")

    async def control(self, *args: str | bytes) -> bytes:
        """CONTROL (xenstore-control): ``control("log", "on")``; returns the reply's text."""
        payload = b"".join(_value_bytes(a) + b"\0" for a in args)
        subject = _s(_value_bytes(args[0])) if args else ""
        return await self.request(Op.CONTROL, payload, subject=subject)


# --- the blocking client -------------------------------------------------------------------------


class XenStore(Closing):
    """A blocking XenStore client for the command-line tools (no asyncio, one request at a time).

    Watch events that arrive while a reply is awaited are kept for ``read_watch()``.
    """

    def __init__(self, sock: socket.socket, *, path: Path, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._sock = sock
        self._decoder = Decoder()
        self._packets: deque[Packet] = deque()
        self._events: deque[tuple[str, str]] = deque()
        self._next_id = 0

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> XenStore:
        """Connect to the daemon at ``path``, or find its socket as libxenstore does.

        :raise XenStoreConnectionError: when no daemon answers there
        """
        tried = [Path(path)] if path is not None else socket_candidates()
        last: OSError | None = None
        for candidate in tried:
            try:
                sock = connect_unix(candidate, timeout)
            except OSError as exc:
                last = exc if exc.errno else OSError(errno.ETIMEDOUT, "timed out")
                continue
            return cls(sock, path=candidate, timeout=timeout)
        raise _no_daemon(tried, last)

    def close(self) -> None:
        self._sock.close()

    def _lost(self, what: str, cause: str, name: str = "EIO") -> XenStoreConnectionError:
        return XenStoreConnectionError(
            what, cause, name, "check that the daemon is running and reconnect"
        )

    def _next_packet(self, what: str, deadline: float | None) -> Packet:
        while not self._packets:
            if deadline is None:
                self._sock.settimeout(None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise XenStoreConnectionError(
                        what, "no reply in time", "ETIMEDOUT", "check that the daemon is alive"
                    )
                self._sock.settimeout(left)
            try:
                data = self._sock.recv(_READ_CHUNK)
            except TimeoutError:
                continue
            except OSError as exc:
                raise self._lost(what, f"reading from the daemon failed: {exc}") from exc
            if not data:
                raise self._lost(what, "the daemon closed the connection")
            self._packets.extend(self._decoder.feed(data))
        return self._packets.popleft()

    def _keep_event(self, packet: Packet) -> None:
        fields = split_strings(packet.payload)
        if len(fields) < 2:
            return
        if len(self._events) >= DEFAULT_WATCH_QUEUE:
            raise XenStoreConnectionError(
                "XenStore watch events",
                f"more than {DEFAULT_WATCH_QUEUE} events are waiting to be read",
                "ENOSPC",
                "call read_watch() while waiting for events",
            )
        self._events.append((_s(fields[0]), _s(fields[1])))

    def request(self, op: Op, payload: bytes, *, tx: int = 0, subject: str) -> bytes:
        """Send one request and return its reply's payload.

        :raise XenStoreError: the daemon's error (``wire_name`` ENOENT, EACCES, ...)
        :raise XenStoreConnectionError: ETIMEDOUT after ``timeout`` s, EIO when disconnected
        """
        op = Op(op)
        what = f"XenStore {op.name} {subject}".rstrip()
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        req_id = self._next_id
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(encode_packet(op, req_id, tx, payload))
        except OSError as exc:
            raise self._lost(what, f"writing to the daemon failed: {exc}") from exc
        deadline = time.monotonic() + self.timeout
        while True:
            packet = self._next_packet(what, deadline)
            if packet.op == Op.WATCH_EVENT:
                self._keep_event(packet)
                continue
            if packet.req_id != req_id:
                continue  # a late reply to a request that timed out earlier
            if packet.op == Op.ERROR:
                raise _error_from_reply(op, subject, packet.payload)
            return packet.payload

    def read(self, path: str, *, tx: int = 0) -> bytes:
        return self.request(Op.READ, _b(path) + b"\0", tx=tx, subject=path)

    def write(self, path: str, value: bytes | str, *, tx: int = 0) -> None:
        self.request(Op.WRITE, _b(path) + b"\0" + _value_bytes(value), tx=tx, subject=path)

    def mkdir(self, path: str, *, tx: int = 0) -> None:
        self.request(Op.MKDIR, _b(path) + b"\0", tx=tx, subject=path)

    def rm(self, path: str, *, tx: int = 0) -> None:
        self.request(Op.RM, _b(path) + b"\0", tx=tx, subject=path)

    def directory(self, path: str, *, tx: int = 0) -> list[str]:
        """Children of ``path``; DIRECTORY_PART for large directories, as libxenstore."""
        try:
            return _directory_names(
                self.request(Op.DIRECTORY, _b(path) + b"\0", tx=tx, subject=path)
            )
        except XenStoreError as exc:
            if exc.wire_name != "E2BIG":
                raise
        parts = _DirectoryParts()
        while not parts.done:
            try:
                reply = self.request(Op.DIRECTORY_PART, parts.request(path), tx=tx, subject=path)
            except XenStoreError as exc:
                if exc.wire_name == "ENOSYS":
                    raise XenStoreError(exc.what, "E2BIG", _FIXES["E2BIG"]) from exc
                raise
            parts.feed(reply)
        return parts.result()

    def exists(self, path: str, *, tx: int = 0) -> bool:
        try:
            self.read(path, tx=tx)
        except XenStoreError as exc:
            if exc.wire_name in ("ENOENT", "EACCES"):
                return False
            raise
        return True

    def get_perms(self, path: str, *, tx: int = 0) -> PermList:
        return PermList.from_wire(self.request(Op.GET_PERMS, _b(path) + b"\0", tx=tx, subject=path))

    def set_perms(self, path: str, perms: PermList, *, tx: int = 0) -> None:
        payload = _b(path) + b"\0" + b"".join(_b(p) + b"\0" for p in perms.to_strings())
        self.request(Op.SET_PERMS, payload, tx=tx, subject=path)

    def watch(self, path: str, token: str) -> None:
        self.request(Op.WATCH, _b(path) + b"\0" + _b(token) + b"\0", subject=path)

    def unwatch(self, path: str, token: str) -> None:
        self.request(Op.UNWATCH, _b(path) + b"\0" + _b(token) + b"\0", subject=path)

    def read_watch(self, timeout: float | None = None) -> tuple[str, str]:
        """The next watch event ``(path, token)``; waits up to ``timeout`` s (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            packet = self._next_packet("XenStore watch", deadline)
            if packet.op == Op.WATCH_EVENT:
                self._keep_event(packet)
        return self._events.popleft()

    def transaction_start(self) -> int:
        return int(_one_string(self.request(Op.TRANSACTION_START, b"\0", subject="")))

    def transaction_end(self, tx: int, *, commit: bool = True) -> None:
        """End transaction ``tx``; EAGAIN when a commit conflicts."""
        self.request(Op.TRANSACTION_END, b"T\0" if commit else b"F\0", tx=tx, subject="")

    def get_domain_path(self, domid: int) -> str:
        return _one_string(
            self.request(Op.GET_DOMAIN_PATH, f"{domid}\0".encode(), subject=f"domain {domid}")
        )
