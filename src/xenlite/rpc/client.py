"""The blocking client of xenlited's RPC socket, for the CLI.

Plain sockets and no asyncio, so ``xl list`` starts fast (DESIGN.md "The CLI is a thin
client"). The wire rules are ``protocol.py``'s; errors the daemon raises come back as the same
XenliteError classes, so ``xl`` prints exactly what xenlited said. One client is one
connection and serves one request at a time; it is not thread-safe.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

from xenlite import __version__
from xenlite.base.errors import DaemonNotRunning, RpcError, XenliteError
from xenlite.base.sockets import Closing, connect_unix
from xenlite.rpc.protocol import (
    HELLO_METHOD,
    MAX_FDS,
    PROTOCOL_VERSION,
    ErrorReply,
    Event,
    FrameDecoder,
    Incoming,
    JsonObject,
    JsonValue,
    Reply,
    RpcCode,
    daemon_log_hint,
    encode_frame,
    hello_params,
    incoming_from_wire,
    protocol_error,
    request_to_wire,
    socket_path,
    version_mismatch,
)

DEFAULT_TIMEOUT = 60.0  # seconds to wait for a reply; streams wait as long as they must
START_FIX = "start the host services: xenlite start"
_RECV_SIZE = 256 * 1024
_FD_SIZE = array.array("i").itemsize


class RpcClient(Closing):
    """A connection to xenlited (opened on first use, reopened after a failure).

    :param path: the socket; default ``protocol.socket_path()`` ($XENLITED_SOCKET or
        /run/xenlite/xenlited.sock under the host root).
    :param timeout: seconds to wait for connecting and for each reply (None: no limit).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        *,
        client: str = f"xl (xenlite {__version__})",
    ) -> None:
        self.path = socket_path() if path is None else Path(path)
        self.timeout = timeout
        self.client = client
        self.server: str | None = None
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder()
        self._frames: deque[JsonObject] = deque()
        self._fds: deque[int] = deque()
        self._next_id = 1
        self._busy = False
        self._used = False  # a request went out on this connection (see _send_request)

    # ----------------------------------------------------------------------- connection

    def connect(self) -> None:
        """Connect and shake hands (calls do this themselves when needed).

        :raise DaemonNotRunning: when the socket is missing or nothing listens on it.
        :raise RpcError: ``permission-denied`` for a non-root user, ``version-mismatch`` when
            xenlited speaks another protocol version, ``timeout``, ``connect``.
        """
        if self._sock is not None:
            return
        sock = self._open()
        self._sock = sock
        try:
            answer = self._exchange(HELLO_METHOD, hello_params(self.client), self.timeout)
        except BaseException:
            self.close()
            raise
        server_name = answer.get("server") if isinstance(answer, dict) else None
        theirs = answer.get("protocol") if isinstance(answer, dict) else None
        self.server = server_name if isinstance(server_name, str) else "xenlited"
        if theirs != PROTOCOL_VERSION:
            self.close()
            if not isinstance(theirs, int):
                raise protocol_error(f"{HELLO_METHOD} answer carries no protocol version")
            raise version_mismatch(self.client, PROTOCOL_VERSION, self.server, theirs)

    def _open(self) -> socket.socket:
        what = f"xenlited socket {self.path}"
        try:
            return connect_unix(self.path, self.timeout)
        except (FileNotFoundError, NotADirectoryError):
            raise DaemonNotRunning(
                what, "it does not exist: xenlited is not running", START_FIX
            ) from None
        except ConnectionRefusedError:
            raise DaemonNotRunning(
                what,
                "nothing listens on it (a stale socket: xenlited stopped or was killed)",
                START_FIX,
            ) from None
        except PermissionError:
            raise RpcError(
                what,
                "permission denied: the socket is root-only",
                "run xl as root (for example with sudo)",
                code=RpcCode.PERMISSION_DENIED,
            ) from None
        except TimeoutError:
            raise self._timeout_error("connecting") from None
        except OSError as exc:
            raise RpcError(
                what,
                f"cannot connect: {exc.strerror or exc}",
                f"check that xenlited runs ({START_FIX}) and that {self.path} is its socket",
                code=RpcCode.CONNECT,
            ) from None

    def close(self) -> None:
        """Close the connection (and any descriptors received but not handed out)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.popleft())
        self._decoder = FrameDecoder()
        self._frames.clear()
        self._busy = False
        self._used = False

    # ----------------------------------------------------------------------- calls

    def call(self, method: str, /, **params: object) -> JsonValue:
        """Run ``method`` in xenlited and return its result.

        Descriptors that come with the result are closed; use ``call_with_fds`` to keep them.

        :raise XenliteError: the error xenlited raised, as its own class.
        :raise DaemonNotRunning: when xenlited is not running.
        :raise RpcError: when the conversation fails (timeout, lost connection, protocol).
        """
        reply = self.call_with_fds(method, **params)
        for fd in reply.fds:
            os.close(fd)
        return reply.result

    def call_with_fds(self, method: str, /, **params: object) -> Reply:
        """Like ``call``, returning the result with the descriptors that came along (the
        caller owns and must close them)."""
        self.connect()
        return self._exchange_reply(method, params, self.timeout)

    def stream(self, method: str, /, **params: object) -> Stream:
        """Start a streaming ``method``: iterate the returned Stream for its events; its
        ``result`` holds the final reply once iteration ends.

        :raise XenliteError: (while iterating) the error xenlited raised, as its own class.
        """
        self.connect()
        rid = self._send_request(method, params)
        return Stream(self, rid, method)

    # ----------------------------------------------------------------------- internals

    def _exchange(self, method: str, params: JsonObject, timeout: float | None) -> JsonValue:
        reply = self._exchange_reply(method, params, timeout)
        for fd in reply.fds:
            os.close(fd)
        return reply.result

    def _exchange_reply(
        self, method: str, params: Mapping[str, object], timeout: float | None
    ) -> Reply:
        rid = self._send_request(method, params)
        try:
            incoming = self._receive(rid, method, timeout)
        except BaseException:
            # Interrupted or failed mid-reply: the connection's state is unknown; drop it.
            self.close()
            raise
        self._busy = False
        message = incoming.message
        if isinstance(message, Reply):
            return message
        if isinstance(message, ErrorReply):
            raise message.error
        for fd in message.fds:
            os.close(fd)
        self.close()
        raise protocol_error(f"{method} is not a streaming operation, yet xenlited sent events")

    def _send_request(self, method: str, params: Mapping[str, object]) -> int:
        if self._busy:
            raise RuntimeError("RpcClient: finish or close the open stream first")
        rid = self._next_id
        self._next_id += 1
        frame = encode_frame(request_to_wire(rid, method, params))
        while True:
            sock = self._sock
            assert sock is not None
            sock.settimeout(self.timeout)
            try:
                sock.sendall(frame)
                break
            except TimeoutError:
                self.close()
                raise self._timeout_error(f"sending {method}") from None
            except (BrokenPipeError, ConnectionResetError) as exc:
                refusal = self._refusal()
                if refusal is not None:  # it told us why it hung up (busy, protocol)
                    self.close()
                    raise refusal from None
                # An idle connection xenlited has closed (it restarted): nothing of this
                # request arrived, so sending it once more on a new connection is safe.
                reused = self._used
                self.close()
                if not reused:
                    raise self._lost_error(method, exc) from None
                self.connect()
            except OSError as exc:
                self.close()
                raise self._lost_error(method, exc) from None
        self._used = True
        self._busy = True
        return rid

    def _refusal(self) -> XenliteError | None:
        """The error xenlited sent before hanging up on us, if it waits in our buffer."""
        sock = self._sock
        assert sock is not None
        sock.settimeout(0)
        with contextlib.suppress(OSError, XenliteError):
            while data := sock.recv(_RECV_SIZE):
                self._frames.extend(self._decoder.feed(data))
        for obj in self._frames:
            with contextlib.suppress(XenliteError):
                message = incoming_from_wire(obj).message
                if isinstance(message, ErrorReply) and message.id is None:
                    return message.error
        return None

    def _receive(self, rid: int, method: str, timeout: float | None) -> Incoming:
        """The next frame for request ``rid``, with its descriptors attached."""
        try:
            obj = self._next_frame(method, timeout)
            incoming = incoming_from_wire(obj)
            fds = tuple(self._fds.popleft() for _ in range(min(incoming.nfds, len(self._fds))))
            if len(fds) < incoming.nfds:
                _close_all(fds)
                raise protocol_error(f"a reply to {method} lacks the descriptors it announces")
        except XenliteError:
            self.close()
            raise
        message = incoming.message
        if isinstance(message, ErrorReply) and message.id is None:
            # The server could not read what we sent and hangs up.
            self.close()
            raise message.error
        if incoming.id != rid:
            _close_all(fds)
            self.close()
            raise protocol_error(f"xenlited answered request {incoming.id!r}, not {rid}")
        if isinstance(message, Reply):
            message = Reply(message.result, fds)
        elif isinstance(message, Event):
            message = Event(message.name, message.data, fds)
        else:
            _close_all(fds)
        return Incoming(incoming.id, message, incoming.nfds)

    def _next_frame(self, method: str, timeout: float | None) -> JsonObject:
        sock = self._sock
        assert sock is not None
        sock.settimeout(timeout)
        while not self._frames:
            try:
                data, ancdata, flags, _ = sock.recvmsg(
                    _RECV_SIZE, socket.CMSG_SPACE(MAX_FDS * _FD_SIZE), socket.MSG_CMSG_CLOEXEC
                )
            except TimeoutError:
                raise self._timeout_error(f"waiting for the answer to {method}") from None
            except OSError as exc:
                raise self._lost_error(method, exc) from None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % _FD_SIZE])
                    self._fds.extend(fds)
            if flags & socket.MSG_CTRUNC:
                raise protocol_error(f"xenlited sent more than {MAX_FDS} descriptors at once")
            if not data:
                raise self._lost_error(method, None)
            self._frames.extend(self._decoder.feed(data))
        return self._frames.popleft()

    def _timeout_error(self, doing: str) -> RpcError:
        return RpcError(
            f"xenlited socket {self.path}",
            f"no answer within {self.timeout} s while {doing}",
            f"xenlited may be stuck or overloaded; see {daemon_log_hint()}",
            code=RpcCode.TIMEOUT,
        )

    def _lost_error(self, method: str, exc: OSError | None) -> RpcError:
        how = f" ({exc.strerror or exc})" if exc is not None else ""
        return RpcError(
            f"xenlited socket {self.path}",
            f"xenlited closed the connection during {method}{how}",
            f"it may have stopped or crashed: see {daemon_log_hint()}, then {START_FIX}",
            code=RpcCode.CONNECTION_LOST,
        )


class Stream(Iterator[Event], Closing):
    """The events of one streaming call, then its final ``result`` (and ``fds``).

    Leaving a stream before its end (``close()``, or the ``with`` block) closes the client's
    connection: xenlited then cancels the stream; the client reconnects on its next call.
    """

    def __init__(self, client: RpcClient, rid: int, method: str) -> None:
        self._client = client
        self._rid = rid
        self.method = method
        self.result: JsonValue = None
        self.fds: tuple[int, ...] = ()
        self.done = False

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Event:
        if self.done:
            raise StopIteration
        try:
            incoming = self._client._receive(self._rid, self.method, None)
        except BaseException:
            self.done = True
            self._client.close()
            raise
        message = incoming.message
        if isinstance(message, Event):
            return message
        self.done = True
        self._client._busy = False
        if isinstance(message, ErrorReply):
            raise message.error
        self.result = message.result
        self.fds = message.fds
        raise StopIteration

    def close(self) -> None:
        """Abandon the stream if it is still running."""
        if not self.done:
            self.done = True
            self._client.close()


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
