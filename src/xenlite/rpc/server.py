"""The asyncio side of the RPC contract: a root-only unix socket serving named handlers.

Generic: xenlited mounts its operations on it as ``{"domain.create": create, ...}``; nothing
here knows what they do. The wire rules are ``protocol.py``'s.

- The socket is created 0600 atomically: bound inside a fresh 0700 directory, chmod-ed, then
  renamed into place, so no one else can connect in between; a stale socket left by a killed
  daemon is replaced, a live one is refused.
- One task per connection; its requests run concurrently, at most ``max_in_flight`` at once
  (when that many run, the connection is not read until one finishes: backpressure, not a
  queue). Replies go out in completion order, tied to requests by ``id``.
- A handler is an ``async def`` (its return value is the result; ``Reply`` adds file
  descriptors) or an async generator (each ``Event`` it yields is sent at once; a ``Reply``
  it yields ends the stream, and running off the end replies ``null``).
- A handler's XenliteError goes back as itself; any other exception is a bug: logged with its
  traceback and answered as an ``internal`` RpcError that points at the daemon's log. The
  server never dies of a handler or a client.
- A client that sends an oversized or unreadable frame gets an error frame with a null id
  and is disconnected; others are not affected.
- When a client goes away its streams are cancelled (they are subscriptions: console,
  progress); its other requests run to completion (they are operations, and a half-done
  create is worse than a finished one nobody reads).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import functools
import inspect
import logging
import os
import socket
import stat
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeAlias

from xenlite.base.errors import RpcError, XenliteError
from xenlite.base.sockets import bind_unix, connect_unix
from xenlite.rpc.contract import VERSION_SKEW_FIX
from xenlite.rpc.protocol import (
    HELLO_METHOD,
    Event,
    FrameDecoder,
    JsonObject,
    Reply,
    Request,
    RequestId,
    RpcCode,
    check_hello,
    daemon_log_hint,
    encode_frame,
    error_reply_to_wire,
    event_to_wire,
    protocol_error,
    reply_to_wire,
    request_from_wire,
)

log = logging.getLogger("xenlite.rpc")

Handler: TypeAlias = Callable[..., Awaitable[object] | AsyncIterator[Event | Reply]]

_RECV_SIZE = 256 * 1024
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class _PeerGone(Exception):
    """The client cannot be written to any more (closed, reset or too slow)."""


class RpcServer:
    """Serve ``handlers`` on the unix socket ``path`` (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        handlers: Mapping[str, Handler],
        *,
        name: str = "xenlited",
        max_in_flight: int = 16,
        max_connections: int = 256,
        write_timeout: float = 30.0,
        log_hint: str | None = None,
    ) -> None:
        if max_in_flight < 1 or max_connections < 1:
            raise ValueError("max_in_flight and max_connections must be at least 1")
        reserved = [m for m in handlers if m.startswith("rpc.")]
        if reserved:
            raise ValueError(f"method names under 'rpc.' are the protocol's own: {reserved}")
        self.path = Path(path)
        self.name = name
        self.max_in_flight = max_in_flight
        self.max_connections = max_connections
        self.write_timeout = write_timeout
        self.log_hint = log_hint or daemon_log_hint()
        self._handlers = dict(handlers)
        self._signatures = {m: inspect.signature(h) for m, h in self._handlers.items()}
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._counter = 0

    async def __aenter__(self) -> RpcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def connection_count(self) -> int:
        """Clients connected right now."""
        return len(self._connections)

    async def start(self) -> None:
        """Create the socket and start accepting.

        :raise RpcError: ``address-in-use`` when another server answers on the path or a
            non-socket file is in the way; ``rpc`` when the socket cannot be created.
        """
        if self._listener is not None:
            raise RuntimeError("RpcServer.start() called twice")
        sock = _bind_listener(self.path, self.name)
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._listener = sock
        self._accept_task = asyncio.get_running_loop().create_task(
            self._accept_loop(sock), name=f"{self.name} rpc accept"
        )
        log.info("%s listening on %s", self.name, self.path)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, remove the socket, let running requests finish (up to ``grace``
        seconds, then cancel them) and close every connection. Safe to call twice."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
            self._accept_task = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._remove_socket()
        for conn in list(self._connections):
            conn.finish()
        tasks = list(self._connections.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%s: cancelled %d connections still busy", self.name, len(pending))
                await asyncio.wait(pending)

    def _remove_socket(self) -> None:
        # Only our own socket: a newer server may have taken the path over since.
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == self._inode:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:
                # EMFILE and friends: log, back off, keep serving the connections we have.
                log.error("%s: accept on %s failed: %s", self.name, self.path, exc)
                await asyncio.sleep(0.1)
                continue
            sock.setblocking(False)
            self._counter += 1
            label = f"#{self._counter} ({_peer(sock)})"
            if len(self._connections) >= self.max_connections:
                log.warning("%s: refusing connection %s: too many clients", self.name, label)
                _refuse_busy(sock, self.name, self.max_connections)
                continue
            conn = _Connection(self, sock, label)
            task = loop.create_task(conn.run(), name=f"{self.name} rpc {label}")
            self._connections[conn] = task
            task.add_done_callback(functools.partial(self._connection_done, conn))

    def _connection_done(self, conn: _Connection, task: asyncio.Task[None]) -> None:
        self._connections.pop(conn, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s: connection %s failed",
                self.name,
                conn.label,
                exc_info=task.exception(),
            )

    # ----------------------------------------------------------------------- requests

    def internal_error(self, method: str, exc: BaseException) -> RpcError:
        """What a client sees for a bug in a handler; the traceback goes to the log."""
        return RpcError(
            f"{self.name} {method}",
            f"internal error ({type(exc).__name__}: {str(exc)[:200]})",
            f"this is a bug in {self.name}; the traceback is in {self.log_hint}",
            code=RpcCode.INTERNAL,
        )

    def bind_params(self, request: Request) -> Handler:
        """The handler for ``request``, its params checked against the handler's signature.

        :raise RpcError: ``unknown-method`` or ``bad-params``.
        """
        handler = self._handlers.get(request.method)
        if handler is None:
            raise RpcError(
                f"{self.name} method {request.method}",
                f"{self.name} has no such operation",
                VERSION_SKEW_FIX,
                code=RpcCode.UNKNOWN_METHOD,
            )
        try:
            self._signatures[request.method].bind(**request.params)
        except TypeError as exc:
            raise RpcError(
                f"{self.name} method {request.method}",
                f"bad parameters: {exc}",
                VERSION_SKEW_FIX,
                code=RpcCode.BAD_PARAMS,
            ) from None
        return handler


class _Connection:
    """One client: a reader loop plus one task per request in flight."""

    def __init__(self, server: RpcServer, sock: socket.socket, label: str) -> None:
        self.server = server
        self.sock = sock
        self.label = label
        self.decoder = FrameDecoder()
        self.greeted = False
        self.slots = asyncio.Semaphore(server.max_in_flight)
        self.write_lock = asyncio.Lock()
        self.requests: dict[RequestId, asyncio.Task[None]] = {}
        self.streams: set[RequestId] = set()
        self.gone = False

    def finish(self) -> None:
        """Stop reading (server shutdown): running requests finish, streams are cancelled."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    def _drop(self, reason: str) -> None:
        if not self.gone:
            log.warning("%s: dropping client %s: %s", self.server.name, self.label, reason)
        self.gone = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        log.debug("%s: client %s connected", self.server.name, self.label)
        try:
            reading = True
            while reading and not self.gone:
                try:
                    data = await loop.sock_recv(self.sock, _RECV_SIZE)
                except OSError:
                    break
                if not data:
                    break
                try:
                    frames = self.decoder.feed(data)
                except RpcError as err:
                    await self._refuse(err)
                    break
                for obj in frames:
                    reading = await self._dispatch(obj)
                    if not reading:
                        break
        finally:
            await self._close()

    async def _close(self) -> None:
        try:
            for rid in self.streams:
                self.requests[rid].cancel()
            if self.requests:
                # Operations run to completion even when nobody will read the answer.
                await asyncio.wait(list(self.requests.values()))
        except asyncio.CancelledError:
            # The server's stop() ran out of patience: cancel what is left, then go.
            tasks = list(self.requests.values())
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            raise
        finally:
            self.sock.close()
            log.debug("%s: client %s disconnected", self.server.name, self.label)

    async def _refuse(self, err: RpcError) -> None:
        """Tell the client why it is being disconnected, then disconnect it."""
        log.warning("%s: client %s broke the protocol: %s", self.server.name, self.label, err)
        with contextlib.suppress(_PeerGone):
            await self._send(error_reply_to_wire(None, err))
        self._drop(err.cause)

    async def _dispatch(self, obj: JsonObject) -> bool:
        """Start one request; False when the connection must end."""
        try:
            request = request_from_wire(obj)
        except RpcError as err:
            await self._refuse(err)
            return False
        if request.method == HELLO_METHOD:
            try:
                answer = check_hello(request.params, self.server.name)
            except RpcError as err:
                log.warning("%s: client %s: %s", self.server.name, self.label, err)
                with contextlib.suppress(_PeerGone):
                    await self._send(error_reply_to_wire(request.id, err))
                self._drop(err.cause)
                return False
            self.greeted = True
            with contextlib.suppress(_PeerGone):
                await self._send(reply_to_wire(request.id, answer))
            return True
        if not self.greeted:
            await self._refuse(protocol_error(f"the first request must be {HELLO_METHOD}"))
            return False
        if request.id in self.requests:
            await self._refuse(protocol_error(f"request id {request.id!r} is already in use"))
            return False
        await self.slots.acquire()
        task = asyncio.get_running_loop().create_task(
            self._serve(request), name=f"{self.server.name} rpc {request.method}"
        )
        self.requests[request.id] = task
        task.add_done_callback(functools.partial(self._request_done, request.id))
        return True

    def _request_done(self, rid: RequestId, _task: asyncio.Task[None]) -> None:
        self.requests.pop(rid, None)
        self.streams.discard(rid)
        self.slots.release()

    async def _serve(self, request: Request) -> None:
        server = self.server
        try:
            try:
                handler = server.bind_params(request)
                outcome = handler(**request.params)
                if isinstance(outcome, AsyncIterator):
                    self.streams.add(request.id)
                    final = await self._stream(request.id, outcome)
                else:
                    final = await outcome
                await self._send_reply(request, final)
            except XenliteError as exc:
                log.debug("%s %s failed: %s", server.name, request.method, exc)
                await self._send(error_reply_to_wire(request.id, exc))
            except Exception as exc:
                log.exception("%s %s: internal error", server.name, request.method)
                await self._send(
                    error_reply_to_wire(request.id, server.internal_error(request.method, exc))
                )
        except _PeerGone:
            log.debug("%s %s: client %s gone", server.name, request.method, self.label)

    async def _stream(self, rid: RequestId, events: AsyncIterator[Event | Reply]) -> object:
        try:
            async for item in events:
                if isinstance(item, Reply):
                    return item
                if not isinstance(item, Event):
                    raise TypeError(f"a stream handler yielded {type(item).__name__}")
                try:
                    frame = encode_frame(event_to_wire(rid, item.name, item.data, len(item.fds)))
                except Exception:
                    _close_fds(item.fds)
                    raise
                await self._write(frame, item.fds)
            return None
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_reply(self, request: Request, final: object) -> None:
        reply = final if isinstance(final, Reply) else Reply(None, ())
        result = final.result if isinstance(final, Reply) else final
        try:
            frame = encode_frame(reply_to_wire(request.id, result, len(reply.fds)))
        except RpcError as err:
            _close_fds(reply.fds)
            await self._send(error_reply_to_wire(request.id, err))
            return
        except (TypeError, ValueError) as exc:
            _close_fds(reply.fds)
            log.error(
                "%s %s returned a result JSON cannot carry: %s",
                self.server.name,
                request.method,
                exc,
            )
            await self._send(
                error_reply_to_wire(request.id, self.server.internal_error(request.method, exc))
            )
            return
        await self._write(frame, reply.fds)

    async def _send(self, obj: Mapping[str, object]) -> None:
        await self._write(encode_frame(obj), ())

    async def _write(self, frame: bytes, fds: tuple[int, ...]) -> None:
        """Send one frame (with ``fds``, which are closed afterwards).

        :raise _PeerGone: when the client is gone or did not read for ``write_timeout``.
        """
        try:
            if self.gone:
                raise _PeerGone
            async with self.write_lock:
                try:
                    async with asyncio.timeout(self.server.write_timeout):
                        if fds:
                            await self._sendmsg(frame, fds)
                        else:
                            await asyncio.get_running_loop().sock_sendall(self.sock, frame)
                except TimeoutError:
                    self._drop(f"it read nothing for {self.server.write_timeout} s")
                    raise _PeerGone from None
                except OSError as exc:
                    self.gone = True
                    raise _PeerGone from exc
        finally:
            _close_fds(fds)

    async def _sendmsg(self, frame: bytes, fds: tuple[int, ...]) -> None:
        # asyncio has no sendmsg for sockets; the descriptors ride on the frame's first bytes.
        loop = asyncio.get_running_loop()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        while True:
            try:
                sent = self.sock.sendmsg([frame], ancillary)
                break
            except BlockingIOError:
                await _writable(loop, self.sock)
        if sent < len(frame):
            await loop.sock_sendall(self.sock, frame[sent:])


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    fd = sock.fileno()
    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def _close_fds(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _peer(sock: socket.socket) -> str:
    try:
        pid, uid, _ = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
    except OSError:
        return "peer unknown"
    return f"pid {pid} uid {uid}"


def _refuse_busy(sock: socket.socket, name: str, limit: int) -> None:
    err = RpcError(
        name,
        f"{name} already serves {limit} clients",
        "retry when fewer xl commands run at once",
        code=RpcCode.BUSY,
    )
    # Best effort: a fresh socket's buffer takes one small frame without blocking.
    with contextlib.suppress(OSError):
        sock.send(encode_frame(error_reply_to_wire(None, err)))
    sock.close()


def _bind_listener(path: Path, name: str) -> socket.socket:
    """A listening socket at ``path``, mode 0600 from the first moment it is reachable."""
    what = f"{name} socket {path}"
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        _check_path_free(path, what, name)
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise RpcError(
            what,
            f"cannot create it: {exc.strerror or exc}",
            "run the daemon as root, or point XENLITED_SOCKET at a writable place",
        ) from None
    temp = tmpdir / "socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        bind_unix(sock, temp)
        os.chmod(temp, 0o600)
        sock.listen(128)
        os.rename(temp, path)
    except OSError as exc:
        sock.close()
        raise RpcError(
            what,
            f"cannot create it: {exc.strerror or exc}",
            "run the daemon as root, or point XENLITED_SOCKET at a writable place",
        ) from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
        with contextlib.suppress(OSError):
            tmpdir.rmdir()
    sock.setblocking(False)
    return sock


def _check_path_free(path: Path, what: str, name: str) -> None:
    """Refuse a path held by a live server or a non-socket file; a stale socket may go."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise RpcError(
            what,
            "a file that is not a socket is in the way",
            f"remove {path}",
            code=RpcCode.ADDRESS_IN_USE,
        )
    try:
        connect_unix(path, None).close()
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
        return  # stale: the rename replaces it
    raise RpcError(
        what,
        f"another {name} is already listening there",
        "stop it first (xenlite stop), or give this one another socket path",
        code=RpcCode.ADDRESS_IN_USE,
    )
