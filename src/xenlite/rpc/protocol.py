"""The CLI <-> xenlited wire contract: framing, messages, the handshake and the error mapping.

DESIGN.md "Processes": the CLI talks to xenlited over a root-only unix socket with a small JSON
protocol. Both ends (``client.py``, blocking; ``server.py``, asyncio) use only this module.

Framing: every message is one JSON object (UTF-8) behind a 4-byte big-endian length. A length
prefix rather than newline-delimited JSON because the reader learns a frame's size before
reading it, so an oversized frame is refused after 4 bytes instead of after buffering up to the
limit while scanning for a newline, and because a frame that carries file descriptors
(SCM_RIGHTS, for ``xl console``) must be matched to its bytes exactly. ``MAX_FRAME`` bounds
frames in both directions.

Messages::

    request   {"id": 7, "method": "domain.list", "params": {...}}
    response  {"id": 7, "result": <json>}                          (+ "fds": n)
    error     {"id": 7, "error": {"type", "what", "cause", "fix", "data"}}
    event     {"id": 7, "event": "progress", "data": <json>}       (+ "fds": n)

Events belong to a streaming request and precede its final response; the ``id`` ties them to
their request because one connection may have several requests in flight. ``"fds": n`` says
that n descriptors travel with the frame (SCM_RIGHTS, in order). An error whose ``id`` is null
answers a frame the server could not read; the server then closes the connection.

Handshake: the first request on a connection must be ``rpc.hello`` with the client's
``protocol`` number; a server that speaks another version answers with a ``version-mismatch``
RpcError and closes, so an ``xl`` newer or older than the running xenlited says so plainly.

Errors: ``error_to_wire`` / ``error_from_wire`` carry any XenliteError across with its class
(the nearest one defined in ``xenlite.base.errors``), message, fix and attributes, so ``xl``
prints exactly what the daemon raised. This is the one mapping of the RPC surface.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TypeAlias

from xenlite.base import errors
from xenlite.base.errors import RpcError, XenliteError
from xenlite.base.paths import under_root

PROTOCOL_VERSION = 1
HELLO_METHOD = "rpc.hello"
MAX_FRAME = 16 * 1024 * 1024  # bytes of JSON in one frame, checked by both ends
MAX_FDS = 16  # descriptors one frame may carry
HEADER = struct.Struct(">I")
DEFAULT_SOCKET = "/run/xenlite/xenlited.sock"
SOCKET_ENV = "XENLITED_SOCKET"
DAEMON_LOG_DIR = "/var/log/xenlite"

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = dict[str, JsonValue]
RequestId: TypeAlias = int | str

# A XenliteError nested in another's attributes (ConfigSyntaxError.more) travels as
# {_NESTED_ERROR: <wire error>}; no attribute value the daemon sets has this shape otherwise.
_NESTED_ERROR = "__xenlite_error__"
_RESERVED_ATTRS = frozenset({"what", "cause", "fix", "args"})


class RpcCode(StrEnum):
    """``RpcError.code``: why a conversation with xenlited failed."""

    RPC = "rpc"  # RpcError's default
    PROTOCOL = "protocol"  # a frame that breaks this module's rules
    VERSION_MISMATCH = "version-mismatch"
    UNKNOWN_METHOD = "unknown-method"
    BAD_PARAMS = "bad-params"
    INTERNAL = "internal"  # a bug in the daemon; its log has the traceback
    TOO_LARGE = "too-large"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection-lost"
    PERMISSION_DENIED = "permission-denied"
    NOT_RUNNING = "not-running"  # DaemonNotRunning
    CONNECT = "connect"
    ADDRESS_IN_USE = "address-in-use"
    BUSY = "busy"
    UNKNOWN_ERROR_TYPE = "unknown-error-type"


def socket_path() -> Path:
    """xenlited's socket: ``$XENLITED_SOCKET``, else /run/xenlite/xenlited.sock under the root."""
    override = os.environ.get(SOCKET_ENV)
    if override:
        return Path(override)
    return under_root(DEFAULT_SOCKET)


def daemon_log_hint() -> str:
    """Where an operator finds xenlited's log, for error fixes."""
    return f"xenlited's log in {under_root(DAEMON_LOG_DIR)}"


def protocol_error(cause: str, fix: str | None = None) -> RpcError:
    """An RpcError for a frame that breaks the protocol."""
    return RpcError(
        "xenlite rpc",
        cause,
        fix
        or "xl and xenlited disagree on the protocol; restart the host services "
        "(xenlite stop; xenlite start) so both come from the same xenlite",
        code=RpcCode.PROTOCOL,
    )


# --------------------------------------------------------------------------- messages


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A call of ``method`` with keyword ``params``."""

    id: RequestId
    method: str
    params: JsonObject


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """A final result. Handlers may return one to pass descriptors along with the result.

    The server owns (and closes after sending) ``fds``; on the client the caller owns them.
    """

    result: JsonValue
    fds: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One streamed event (console output, create progress) before a stream's final reply.

    The server owns (and closes after sending) ``fds``; on the client the caller owns them.
    """

    name: str
    data: JsonValue = None
    fds: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorReply:
    """A failed request; ``id`` is None when the server could not read the request at all."""

    id: RequestId | None
    error: XenliteError


@dataclasses.dataclass(frozen=True, slots=True)
class Incoming:
    """A decoded server -> client frame: what it is, for which request, how many fds follow."""

    id: RequestId | None
    message: Reply | Event | ErrorReply
    nfds: int


# --------------------------------------------------------------------------- framing


def _json_default(value: object) -> JsonValue:
    # Handlers may answer with their frozen dataclasses and paths; StrEnums are already str.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_frame(obj: Mapping[str, object]) -> bytes:
    """One frame: length + compact JSON.

    :raise TypeError: when ``obj`` holds something JSON cannot express (a bug of the sender).
    :raise ValueError: likewise, for NaN and infinities.
    :raise RpcError: ``too-large`` when the frame would exceed MAX_FRAME.
    """
    body = json.dumps(
        obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    ).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise RpcError(
            "xenlite rpc",
            f"a message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit",
            "ask for less at once (filter by domain)",
            code=RpcCode.TOO_LARGE,
        )
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole JSON objects out."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[JsonObject]:
        """The frames completed by ``data``.

        :raise RpcError: ``protocol`` for an oversized frame or one that is not a JSON object;
            the stream is unusable afterwards.
        """
        self._buf += data
        frames: list[JsonObject] = []
        while len(self._buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buf)
            if size > self._max:
                raise protocol_error(
                    f"a frame announces {size} bytes, more than the {self._max}-byte limit"
                )
            if len(self._buf) < HEADER.size + size:
                break
            body = bytes(self._buf[HEADER.size : HEADER.size + size])
            del self._buf[: HEADER.size + size]
            frames.append(decode_body(body))
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not complete a frame yet."""
        return len(self._buf)


def decode_body(body: bytes) -> JsonObject:
    """A frame's JSON object.

    :raise RpcError: ``protocol`` when it is not UTF-8 JSON or not an object.
    """
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise protocol_error(f"a frame is not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise protocol_error(f"a frame holds a JSON {type(obj).__name__}, not an object")
    return obj


def _refuse_constant(name: str) -> JsonValue:
    raise ValueError(f"{name} is not JSON")


# --------------------------------------------------------------------------- messages <-> JSON


def request_to_wire(rid: RequestId, method: str, params: Mapping[str, object]) -> dict[str, object]:
    """A request frame's object (``params`` are encoded by ``encode_frame``)."""
    return {"id": rid, "method": method, "params": dict(params)}


def _is_request_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def request_from_wire(obj: JsonObject) -> Request:
    """A request read by the server.

    :raise RpcError: ``protocol`` when fields are missing or of the wrong type.
    """
    rid = obj.get("id")
    method = obj.get("method")
    params = obj.get("params", {})
    if not _is_request_id(rid):
        raise protocol_error("a request has no integer or string 'id'")
    assert isinstance(rid, int | str)
    if not isinstance(method, str) or not method:
        raise protocol_error(f"request {rid!r} has no 'method' name")
    if not isinstance(params, dict):
        raise protocol_error(f"request {rid!r} ({method}): 'params' is not an object")
    extra = set(obj) - {"id", "method", "params"}
    if extra:
        raise protocol_error(f"request {rid!r} ({method}) has unknown fields {sorted(extra)}")
    return Request(rid, method, params)


def reply_to_wire(rid: RequestId, result: object, nfds: int = 0) -> dict[str, object]:
    """A response frame's object (``result`` is encoded by ``encode_frame``)."""
    frame: dict[str, object] = {"id": rid, "result": result}
    if nfds:
        frame["fds"] = nfds
    return frame


def event_to_wire(rid: RequestId, name: str, data: object, nfds: int = 0) -> dict[str, object]:
    """An event frame's object."""
    frame: dict[str, object] = {"id": rid, "event": name, "data": data}
    if nfds:
        frame["fds"] = nfds
    return frame


def error_reply_to_wire(rid: RequestId | None, exc: XenliteError) -> JsonObject:
    """An error response frame's object."""
    return {"id": rid, "error": error_to_wire(exc)}


def incoming_from_wire(obj: JsonObject) -> Incoming:
    """A frame read by the client.

    :raise RpcError: ``protocol`` when it is neither a response, an error nor an event.
    """
    rid = obj.get("id")
    if rid is not None and not _is_request_id(rid):
        raise protocol_error("a response has an 'id' that is neither integer nor string")
    assert rid is None or isinstance(rid, int | str)
    nfds = obj.get("fds", 0)
    if not isinstance(nfds, int) or isinstance(nfds, bool) or not 0 <= nfds <= MAX_FDS:
        raise protocol_error(f"a response announces {nfds!r} file descriptors")
    if "error" in obj:
        error = obj["error"]
        if not isinstance(error, dict):
            raise protocol_error("an error response's 'error' is not an object")
        return Incoming(rid, ErrorReply(rid, error_from_wire(error)), nfds)
    if rid is None:
        raise protocol_error("a response has no 'id'")
    if "result" in obj:
        return Incoming(rid, Reply(obj["result"]), nfds)
    name = obj.get("event")
    if isinstance(name, str):
        return Incoming(rid, Event(name, obj.get("data")), nfds)
    raise protocol_error(f"a frame for request {rid!r} has neither 'result', 'error' nor 'event'")


# --------------------------------------------------------------------------- handshake


def hello_params(client: str) -> JsonObject:
    """``rpc.hello`` parameters a client sends first."""
    return {"protocol": PROTOCOL_VERSION, "client": client}


def check_hello(params: JsonObject, server: str) -> JsonObject:
    """The server's side of the handshake: its answer, or the error that ends the connection.

    :raise RpcError: ``version-mismatch`` when the client speaks another protocol version.
    """
    theirs = params.get("protocol")
    client = params.get("client")
    client_name = client if isinstance(client, str) else "the client"
    if not isinstance(theirs, int) or isinstance(theirs, bool):
        raise protocol_error(f"{HELLO_METHOD} from {client_name} has no integer 'protocol'")
    if theirs != PROTOCOL_VERSION:
        raise version_mismatch(client_name, theirs, server, PROTOCOL_VERSION)
    return {"protocol": PROTOCOL_VERSION, "server": server}


def version_mismatch(
    client: str, client_version: int, server: str, server_version: int
) -> RpcError:
    """The error both ends raise when their protocol versions differ."""
    older = server if server_version < client_version else client
    return RpcError(
        f"{server} protocol",
        f"{client} speaks protocol {client_version}, {server} speaks protocol "
        f"{server_version} ({older} is older)",
        "restart the host services so xenlited matches this xl: xenlite stop; xenlite start",
        code=RpcCode.VERSION_MISMATCH,
    )


# --------------------------------------------------------------------------- errors


@cache
def error_classes() -> Mapping[str, type[XenliteError]]:
    """Every XenliteError class defined in ``xenlite.base.errors``, by name."""
    found: dict[str, type[XenliteError]] = {}
    pending: list[type[XenliteError]] = [XenliteError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _wire_class(exc: XenliteError) -> type[XenliteError]:
    # A subclass defined elsewhere (config.grammar.ConfigSyntaxError) travels as its nearest
    # ancestor in base/errors.py; its extra attributes still travel in "data".
    known = error_classes()
    for cls in type(exc).__mro__:
        if known.get(cls.__name__) is cls:
            return cls
    return XenliteError


def _value_to_wire(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and value != value:  # NaN has no JSON form
            return str(value)
        return value
    if isinstance(value, XenliteError):
        return {_NESTED_ERROR: error_to_wire(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return [_value_to_wire(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _value_to_wire(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    return str(value)


def _value_from_wire(value: JsonValue) -> object:
    if isinstance(value, list):
        return [_value_from_wire(v) for v in value]
    if isinstance(value, dict):
        nested = value.get(_NESTED_ERROR)
        if len(value) == 1 and isinstance(nested, dict):
            return error_from_wire(nested)
        return {k: _value_from_wire(v) for k, v in value.items()}
    return value


def error_to_wire(exc: XenliteError) -> JsonObject:
    """A XenliteError as the ``error`` object of a response."""
    data: JsonObject = {}
    for name, value in vars(exc).items():
        if name.startswith("_") or name in _RESERVED_ATTRS:
            continue
        data[name] = _value_to_wire(value)
    return {
        "type": _wire_class(exc).__name__,
        "what": str(exc.what),
        "cause": str(exc.cause),
        "fix": None if exc.fix is None else str(exc.fix),
        "data": data,
    }


def error_from_wire(obj: JsonObject) -> XenliteError:
    """The XenliteError an ``error`` object describes, as the class the daemon raised.

    The instance is made without calling the class's ``__init__`` (constructors differ per
    class and rebuild ``what`` from parts); its message, fix and attributes are set as they
    were in the daemon, so ``str()`` and every attribute match. An unknown type becomes an
    RpcError (``unknown-error-type``) with the same message.

    :raise RpcError: ``protocol`` when ``obj`` is not an error object.
    """
    kind = obj.get("type")
    what = obj.get("what")
    cause = obj.get("cause")
    fix = obj.get("fix")
    data = obj.get("data", {})
    if not (isinstance(kind, str) and isinstance(what, str) and isinstance(cause, str)):
        raise protocol_error("an error response lacks 'type', 'what' or 'cause'")
    if fix is not None and not isinstance(fix, str):
        raise protocol_error("an error response's 'fix' is not a string")
    if not isinstance(data, dict):
        raise protocol_error("an error response's 'data' is not an object")
    cls = error_classes().get(kind)
    if cls is None:
        return RpcError(what, cause, fix, code=RpcCode.UNKNOWN_ERROR_TYPE)
    exc = cls.__new__(cls)
    Exception.__init__(exc, f"{what}: {cause}")
    exc.what = what
    exc.cause = cause
    exc.fix = fix
    for name, value in data.items():
        if name.isidentifier() and not name.startswith("_") and name not in _RESERVED_ATTRS:
            setattr(exc, name, _value_from_wire(value))
    return exc
