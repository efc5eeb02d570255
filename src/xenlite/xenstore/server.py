"""The daemon's event loop and server: unix sockets, one object per connection, bounded output.

Implements the socket side of xenstore.txt "General operation": requests are processed in
order per connection and answered with the same req_id and tx_id; watch events are queued
behind replies. The main socket's clients are dom0 (privileged), as on a Xen host;
``add_domain_socket`` listens on another socket whose clients act as a given domid.

Nobody can stall the daemon: each connection's unsent output is bounded (a connection that
does not read its replies is no longer read from until it does, and watch events beyond the
bound are dropped with a log line), and a peer that sends an oversized or garbled frame is
disconnected with the reason logged.

The loop is a plain epoll loop (``Reactor``), not asyncio: asyncio's per-wakeup machinery
(selector keys, handles, the ready queue) cost about 4 us of CPU per request on a small VM,
a tenth of what a sequential client waits for, and the daemon needs nothing else of it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import select
import socket
import stat
import time
from collections.abc import Callable

from xenlite.base.errors import HostError
from xenlite.xenstore.ops import Session, XenStore
from xenlite.xenstore.path import StoreError
from xenlite.xenstore.wire import PAYLOAD_MAX, Decoder, Op, ProtocolError, encode_packet

log = logging.getLogger("xenlite.xenstore")

_WATCH_EVENT = Op.WATCH_EVENT
PRIV_OUTPUT_LIMIT = 64 * 1024 * 1024  # bytes of unsent output a dom0 connection may hold
RECV_SIZE = 256 * 1024


_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_IN_EVENTS = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
_OUT_EVENTS = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


class Reactor:
    """A single-threaded epoll loop: fd callbacks, one periodic timer, stop on request.

    A callback that raises is logged and the loop goes on, so a bug reached by one
    request cannot take the daemon down with it.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._readers: dict[int, Callable[[], None]] = {}
        self._writers: dict[int, Callable[[], None]] = {}
        self._masks: dict[int, int] = {}
        self._timer: tuple[float, Callable[[], None]] | None = None
        self._due = 0.0
        self.stopping = False

    def _update(self, fd: int) -> None:
        mask = (_EPOLLIN if fd in self._readers else 0) | (_EPOLLOUT if fd in self._writers else 0)
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            del self._masks[fd]
            self._epoll.unregister(fd)
            return
        self._masks[fd] = mask
        if old:
            self._epoll.modify(fd, mask)
        else:
            self._epoll.register(fd, mask)

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self._readers[fd] = callback
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def add_writer(self, fd: int, callback: Callable[[], None]) -> None:
        self._writers[fd] = callback
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    def every(self, interval: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` every ``interval`` seconds while the loop runs."""
        self._timer = (interval, callback)
        self._due = time.monotonic() + interval

    def stop(self) -> None:
        """Make ``run`` return after the events at hand (safe from a signal handler)."""
        self.stopping = True

    def run(self) -> None:
        """Dispatch events until ``stop``."""
        poll = self._epoll.poll
        readers = self._readers
        writers = self._writers
        while not self.stopping:
            timeout = -1.0
            if self._timer is not None:
                timeout = max(self._due - time.monotonic(), 0.0)
            events = poll(timeout)
            for fd, ev in events:
                try:
                    # Looked up per event: an earlier callback may have closed this fd.
                    if ev & _IN_EVENTS:
                        cb = readers.get(fd)
                        if cb is not None:
                            cb()
                    if ev & _OUT_EVENTS:
                        cb = writers.get(fd)
                        if cb is not None:
                            cb()
                except Exception:
                    log.exception("xenstored: unexpected error handling fd %d", fd)
            if self._timer is not None and time.monotonic() >= self._due:
                interval, tick = self._timer
                self._due = time.monotonic() + interval
                try:
                    tick()
                except Exception:
                    log.exception("xenstored: unexpected error in the periodic task")

    def close(self) -> None:
        self._epoll.close()


class Connection(Session):
    """One client connection: a non-blocking socket driven by the loop's reader callbacks.

    Transports and protocols are bypassed on purpose: every request costs a few
    microseconds less this way, which is most of what a sequential client waits for.
    """

    def __init__(self, server: Server, sock: socket.socket, domid: int, label: str) -> None:
        Session.__init__(self, domid, server.store.is_privileged(domid))
        self.server = server
        self.store = server.store
        self.sock: socket.socket | None = sock
        self.fd = sock.fileno()
        self.label = label
        self.decoder = Decoder()
        self.out: list[bytes] = []  # built during one round of processing
        self.backlog = bytearray()  # what the socket did not take yet
        self.out_limit = PRIV_OUTPUT_LIMIT if self.privileged else self.store.quotas.memory
        self.reading = True
        self.dropped = 0

    def on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        server = self.server
        try:
            # Into one preallocated buffer: ``recv(n)`` would malloc n bytes per call, and a
            # 256 KiB malloc (mmap-sized) costs more than the whole request on a small VM.
            n = sock.recv_into(server.rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"receive failed: {exc.strerror}")
            return
        if not n:
            self.close(None)
            return
        try:
            frames = self.decoder.frames(server.rview[:n])
        except ProtocolError as err:
            self.close(str(err))
            return
        store = self.store
        handle = store.handle
        out = self.out
        trace = server.trace
        for op, req_id, tx_id, payload in frames:
            reply = handle(self, op, req_id, tx_id, payload)
            out.append(reply)
            if trace:
                log.debug("IN  %s %d %d %d %r", self.label, op, req_id, tx_id, payload)
                log.debug("OUT %s %r", self.label, reply)
            if store._pending_initial is not None:
                _, path, token = store._pending_initial
                store._pending_initial = None
                self.send_event(path, token)
        if server.before_reply is not None or server.dirty:
            server.flush()
        if out:
            self.transmit()

    def transmit(self) -> None:
        """Send what is queued; keep the rest and wait for the socket to drain."""
        sock = self.sock
        out = self.out
        if sock is None:
            out.clear()
            return
        backlog = self.backlog
        if backlog:
            backlog += b"".join(out)
            out.clear()
            return  # the writer callback is armed and sends in order
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.close(f"send failed: {exc.strerror}")
            return
        if sent < len(data):
            backlog += data[sent:]
            loop = self.server.loop
            loop.add_writer(self.fd, self.on_writable)
            if len(backlog) > self.out_limit and self.reading:
                # The client is not reading its replies: stop reading its requests.
                loop.remove_reader(self.fd)
                self.reading = False

    def on_writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        backlog = self.backlog
        try:
            sent = sock.send(backlog)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"send failed: {exc.strerror}")
            return
        del backlog[:sent]
        loop = self.server.loop
        if not backlog:
            loop.remove_writer(self.fd)
        if not self.reading and len(backlog) <= self.out_limit // 2:
            loop.add_reader(self.fd, self.on_readable)
            self.reading = True

    def send_event(self, path: bytes, token: bytes) -> None:
        payload = path + b"\0" + token + b"\0"
        if len(payload) > PAYLOAD_MAX or self.sock is None:
            return
        if len(self.backlog) > self.out_limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "connection %s (dom%d) is not reading: dropped %d watch events",
                    self.label,
                    self.domid,
                    self.dropped,
                )
            return
        self.out.append(encode_packet(_WATCH_EVENT, 0, 0, payload))
        self.server.dirty.add(self)

    def close(self, reason: str | None) -> None:
        """Disconnect; ``reason`` (logged) says why when it is the daemon's decision."""
        sock = self.sock
        if sock is None:
            return
        if reason is not None:
            log.warning("dropping connection %s (dom%d): %s", self.label, self.domid, reason)
        else:
            log.debug("connection %s (dom%d) closed", self.label, self.domid)
        loop = self.server.loop
        loop.remove_reader(self.fd)
        loop.remove_writer(self.fd)
        self.sock = None
        sock.close()
        self.store.detach(self)
        self.server.connections.discard(self)
        self.server.dirty.discard(self)
        self.out.clear()
        self.backlog.clear()


class Server:
    """The listening sockets and connections around one XenStore."""

    def __init__(
        self,
        store: XenStore,
        *,
        before_reply: Callable[[], None] | None = None,
        loop: Reactor | None = None,
    ) -> None:
        self.store = store
        self.loop = loop if loop is not None else Reactor()
        self.connections: set[Connection] = set()
        self.dirty: set[Connection] = set()
        self.listeners: dict[str, tuple[int, socket.socket]] = {}
        self.before_reply = before_reply
        self._counter = 0
        self.trace = log.isEnabledFor(logging.DEBUG)  # -T: every request and reply
        # Every connection receives into this one buffer: requests are processed
        # synchronously and the decoder copies what it keeps.
        self.rbuf = bytearray(RECV_SIZE)
        self.rview = memoryview(self.rbuf)
        store.control_hooks[b"domain-socket"] = self._control_domain_socket

    def flush(self) -> None:
        """Journal what changed, then send the watch events other connections are owed."""
        if self.before_reply is not None:
            self.before_reply()
        dirty = self.dirty
        while dirty:
            conn = dirty.pop()
            if conn.out:
                conn.transmit()

    def _accept(self, lsock: socket.socket, domid: int, where: str) -> None:
        try:
            sock, _ = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("accept on %s failed: %s", where, exc.strerror)
            return
        sock.setblocking(False)
        self._counter += 1
        conn = Connection(self, sock, domid, f"{where}#{self._counter}")
        self.store.attach(conn)
        self.connections.add(conn)
        self.loop.add_reader(conn.fd, conn.on_readable)
        log.debug("connection %s (dom%d) opened", conn.label, domid)

    def _serve_socket(self, path: str, lsock: socket.socket, domid: int) -> None:
        self.listeners[path] = (domid, lsock)
        self.loop.add_reader(lsock.fileno(), functools.partial(self._accept, lsock, domid, path))
        log.info("listening on %s as dom%d", path, domid)

    def listen(self, path: str, domid: int = 0, mode: int = 0o600) -> None:
        """Listen on a unix socket whose clients act as ``domid`` (0: the dom0 socket).

        :raise HostError: when a live daemon already answers there or the socket cannot be
            created.
        """
        self._serve_socket(path, _bind_unix(path, mode), domid)

    def add_domain_socket(self, domid: int, path: str) -> None:
        """Listen on ``path`` for clients of domain ``domid`` (permissions enforced as it)."""
        self.listen(path, domid, mode=0o660)

    def _control_domain_socket(self, args: list[bytes]) -> bytes:
        # CONTROL domain-socket <domid> <path>: the toolstack asks for a guest's socket.
        if len(args) != 2 or not args[0].isdigit():
            raise StoreError("EINVAL", "CONTROL domain-socket (want <domid> <path>)")
        path = os.fsdecode(args[1])
        try:
            sock = _bind_unix(path, 0o660)
        except HostError as err:
            raise StoreError("EEXIST" if os.path.exists(path) else "EINVAL", err.what) from err
        self._serve_socket(path, sock, int(args[0]))
        return b"OK\0"

    def close(self) -> None:
        """Stop listening, remove the sockets and drop every connection."""
        for path, (_, lsock) in list(self.listeners.items()):
            self.loop.remove_reader(lsock.fileno())
            lsock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.listeners.clear()
        for conn in list(self.connections):
            conn.close(None)


def _bind_unix(path: str, mode: int) -> socket.socket:
    """A listening unix socket at ``path``, replacing a stale one left by a dead daemon."""
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise HostError(
                f"socket {path}", "a file that is not a socket is in the way", fix="remove it"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise HostError(
                    f"socket {path}", f"cannot probe it: {exc.strerror}", fix="check the path"
                ) from exc
            os.unlink(path)  # left behind by a daemon that died: take its place
        else:
            raise HostError(
                f"socket {path}",
                "another xenstored is already listening there",
                fix="stop that daemon or choose another --socket",
            )
        finally:
            probe.close()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HostError(
            f"socket {path}",
            f"cannot listen there: {exc.strerror}",
            fix="check that the directory exists and is writable, or choose another path",
        ) from exc
    sock.setblocking(False)
    return sock
