"""The XenStore wire codec: message types, error names, the 16-byte header, an incremental decoder.

Implements xs_wire.h (``struct xsd_sockmsg``, ``enum xsd_sockmsg_type``, ``xsd_errors``) and
the framing of xenstore.txt "General operation". Pure: no I/O, shared by server and client.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from xenlite.base.errors import XenStoreError

__all__ = [
    "ERROR_NAMES",
    "HEADER_SIZE",
    "PAYLOAD_MAX",
    "Decoder",
    "Frame",
    "Op",
    "Packet",
    "ProtocolError",
    "join_strings",
    "split_strings",
]


class Op(IntEnum):
    """xs_wire.h ``enum xsd_sockmsg_type``."""

    CONTROL = 0  # alias XS_DEBUG
    DIRECTORY = 1
    READ = 2
    GET_PERMS = 3
    WATCH = 4
    UNWATCH = 5
    TRANSACTION_START = 6
    TRANSACTION_END = 7
    INTRODUCE = 8
    RELEASE = 9
    GET_DOMAIN_PATH = 10
    WRITE = 11
    MKDIR = 12
    RM = 13
    SET_PERMS = 14
    WATCH_EVENT = 15
    ERROR = 16
    IS_DOMAIN_INTRODUCED = 17
    RESUME = 18
    SET_TARGET = 19
    # 20 was XS_RESTRICT, removed from Xen.
    RESET_WATCHES = 21
    DIRECTORY_PART = 22
    GET_FEATURE = 23
    SET_FEATURE = 24
    GET_QUOTA = 25
    SET_QUOTA = 26
    INVALID = 0xFFFF


HEADER_SIZE = 16  # sizeof(struct xsd_sockmsg)
PAYLOAD_MAX = 4096  # xs_wire.h XENSTORE_PAYLOAD_MAX

# xs_wire.h xsd_errors, in table order (new errors are only ever appended there).
ERROR_NAMES: tuple[str, ...] = (
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
)

_HEADER = struct.Struct("<IIII")  # native little-endian on every host Xen supports (x86, arm)
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack


class ProtocolError(XenStoreError):
    """A peer broke the framing rules (e.g. a payload longer than XENSTORE_PAYLOAD_MAX)."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(what, "EINVAL", fix)


@dataclass(frozen=True, slots=True)
class Packet:
    """One message: header fields plus the raw payload."""

    op: int
    req_id: int
    tx_id: int
    payload: bytes

    def encode(self) -> bytes:
        """Header + payload, ready to write to the socket.

        :raise ProtocolError: when the payload is longer than PAYLOAD_MAX.
        """
        n = len(self.payload)
        if n > PAYLOAD_MAX:
            raise ProtocolError(
                f"XenStore packet of {n} bytes",
                fix=f"keep payloads at or below XENSTORE_PAYLOAD_MAX ({PAYLOAD_MAX} bytes)",
            )
        return _pack_header(self.op, self.req_id, self.tx_id, n) + self.payload


def encode_packet(op: int, req_id: int, tx_id: int, payload: bytes) -> bytes:
    """Like ``Packet(...).encode()`` without building the Packet (hot path, no length check)."""
    return _pack_header(op, req_id, tx_id, len(payload)) + payload


# One decoded message as the server consumes it: (op, req_id, tx_id, payload).
Frame = tuple[int, int, int, bytes]


def _decode(src: bytes | bytearray | memoryview, pos: int, out: list[Frame]) -> int:
    """Append the complete frames of ``src[pos:]`` to ``out``; returns where the rest begins.

    :raise ProtocolError: when a header announces a payload longer than PAYLOAD_MAX.
    """
    end = len(src)
    while end - pos >= HEADER_SIZE:
        op, req_id, tx_id, length = _unpack_header(src, pos)
        if length > PAYLOAD_MAX:
            raise ProtocolError(
                f"XenStore frame announcing {length} payload bytes",
                fix=f"the limit is XENSTORE_PAYLOAD_MAX ({PAYLOAD_MAX}); fix the client",
            )
        stop = pos + HEADER_SIZE + length
        if stop > end:
            break
        out.append((op, req_id, tx_id, bytes(src[pos + HEADER_SIZE : stop])))
        pos = stop
    return pos


class Decoder:
    """Incremental frame decoder: feed it bytes as they arrive, get whole packets back.

    Unlike oxenstored's ``partial.ml`` an oversized length is never clamped: the stream is
    unrecoverable and the caller must drop the peer.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> list[Packet]:
        """Append ``data`` and return every complete packet now available.

        :raise ProtocolError: when a header announces a payload longer than PAYLOAD_MAX.
        """
        return [Packet(*f) for f in self.frames(data)]

    def frames(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Like ``feed`` but as plain tuples (the server's hot path: no object per message).

        ``data`` is only read during the call, so the caller may reuse its receive buffer.

        :raise ProtocolError: when a header announces a payload longer than PAYLOAD_MAX.
        """
        buf = self._buf
        out: list[Frame] = []
        if self._pos == len(buf):
            # Nothing pending (the usual case): decode straight from ``data``, copying each
            # payload once, and keep only an incomplete tail.
            pos = _decode(data, 0, out)
            buf.clear()
            self._pos = 0
            if pos < len(data):
                buf += data[pos:]
            return out
        buf += data
        pos = _decode(buf, self._pos, out)
        if pos >= len(buf):
            buf.clear()
            pos = 0
        elif pos > 65536:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return out

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buf) - self._pos


def split_strings(payload: bytes) -> list[bytes]:
    """The NUL-separated fields of a payload; one trailing NUL ends the last field.

    ``b"a\\0b\\0"`` and ``b"a\\0b"`` both give ``[b"a", b"b"]``; ``b""`` gives ``[]``.
    """
    if not payload:
        return []
    if payload[-1] == 0:
        payload = payload[:-1]
    return payload.split(b"\0")


def join_strings(*fields: bytes, trailing_nul: bool = True) -> bytes:
    """Fields joined by NUL, with a NUL after the last one unless ``trailing_nul`` is False."""
    body = b"\0".join(fields)
    return body + b"\0" if trailing_nul else body
