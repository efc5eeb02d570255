"""XenStore path syntax: validation, domain-relative paths, parents, watch matching.

Implements xenstore.txt "Paths" and xs_wire.h's XENSTORE_ABS_PATH_MAX/XENSTORE_REL_PATH_MAX, with
C xenstored's rules (``canonicalize()`` in core.c): the characters ``A-Za-z0-9-/_@``, no ``//``,
no trailing ``/`` except the root, and the length limit counted after ``/local/domain/N/``.
"""

from __future__ import annotations

import re

from xenlite.base.errors import XenStoreError

ABS_PATH_MAX = 3072  # xs_wire.h XENSTORE_ABS_PATH_MAX
REL_PATH_MAX = 2048  # xs_wire.h XENSTORE_REL_PATH_MAX

_VALID = re.compile(rb"[A-Za-z0-9\-/_@]+")
_LOCAL = re.compile(rb"/local/domain/(\d{1,5})/")


class StoreError(XenStoreError):
    """A request the store refuses; ``wire_name`` is what the client gets in its XS_ERROR."""

    def __init__(self, wire_name: str, what: str = "XenStore request") -> None:
        super().__init__(what, wire_name)


def domain_path(domid: int) -> bytes:
    """``/local/domain/<domid>``, the base of a domain's relative paths."""
    return b"/local/domain/%d" % domid


def relative_length(path: bytes) -> int:
    """The length C xenstored checks against the path quota: after ``/local/domain/N/``."""
    m = _LOCAL.match(path)
    return len(path) - (m.end() if m else 0)


def canonicalize(
    raw: bytes, domid: int, *, allow_special: bool = False, path_max: int | None = None
) -> bytes:
    """The absolute form of ``raw`` as sent by a connection of ``domid``.

    ``path_max`` (None = no limit, as for privileged connections) bounds the length after the
    ``/local/domain/N/`` prefix; the absolute limit XENSTORE_ABS_PATH_MAX always holds.

    :raise StoreError: EINVAL for an empty path, a bad character, ``//``, a trailing ``/``, a
        special (``@``) path where none is allowed, or a path over the length limit.
    """
    if not raw or _VALID.fullmatch(raw) is None:
        raise StoreError("EINVAL", f"XenStore path {raw!r} (empty or invalid character)")
    first = raw[0]
    if first == 0x40:  # "@"
        if not allow_special:
            raise StoreError("EINVAL", f"XenStore path {raw!r} (special path not allowed here)")
        name = raw
    elif first == 0x2F:  # "/"
        name = raw
    else:
        name = domain_path(domid) + b"/" + raw
    if (name[-1] == 0x2F and name != b"/") or b"//" in name:
        raise StoreError("EINVAL", f"XenStore path {raw!r} (empty component)")
    if len(name) > ABS_PATH_MAX or (path_max is not None and relative_length(name) > path_max):
        raise StoreError("EINVAL", f"XenStore path {raw[:64]!r}... (too long)")
    return name


def components(path: bytes) -> list[bytes]:
    """The names along an absolute path; ``[]`` for the root."""
    if path == b"/":
        return []
    return path[1:].split(b"/")


def parent(path: bytes) -> bytes:
    """The parent of an absolute, non-root path."""
    cut = path.rfind(b"/")
    return path[:cut] if cut > 0 else b"/"


def join(base: bytes, name: bytes) -> bytes:
    """``base/name`` for an absolute ``base``."""
    return base + b"/" + name if base != b"/" else b"/" + name


def is_child(child: bytes, ancestor: bytes) -> bool:
    """Whether ``child`` is ``ancestor`` or below it (watch.c ``is_child``)."""
    if ancestor == b"/":
        return True
    if not child.startswith(ancestor):
        return False
    n = len(ancestor)
    return len(child) == n or child[n] == 0x2F


def ancestors_and_self(path: bytes) -> list[bytes]:
    """``path`` and every ancestor up to ``/``, deepest first."""
    out = [path]
    while path != b"/":
        path = parent(path)
        out.append(path)
    return out
