"""Unix stream sockets at any path length, and closing the objects that own a connection.

The rules of unix(7): ``sockaddr_un.sun_path`` holds 107 bytes and a NUL, so a longer path
(deep host roots under /tmp) is reached through its directory's /proc/self/fd entry, which
Linux resolves like the directory itself. Shared by xenlite's RPC and XenStore sockets.
"""

from __future__ import annotations

import abc
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

__all__ = [
    "SUN_PATH_MAX",
    "AsyncClosing",
    "Closing",
    "address_for",
    "bind_unix",
    "connect_unix",
    "unix_address",
]

SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes including the NUL (unix(7))


def unix_address(path: Path) -> tuple[str, int | None]:
    """An address ``bind``/``connect`` accept for ``path``, and a directory fd to close after.

    Prefer ``address_for``, which closes the descriptor itself.

    :raise OSError: when a long path's directory cannot be opened.
    """
    text = os.fspath(path)
    if len(os.fsencode(text)) <= SUN_PATH_MAX:
        return text, None
    dirfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{dirfd}/{path.name}", dirfd


@contextmanager
def address_for(path: Path) -> Iterator[str]:
    """``with address_for(path) as address:`` an address for ``path``, valid inside the block.

    :raise OSError: when a long path's directory cannot be opened.
    """
    address, dirfd = unix_address(path)
    try:
        yield address
    finally:
        if dirfd is not None:
            os.close(dirfd)


def connect_unix(path: Path, timeout: float | None) -> socket.socket:
    """A stream socket connected to ``path``; ``timeout`` bounds the connect and stays set.

    :raise OSError: as ``connect`` raises it (TimeoutError after ``timeout`` seconds,
        ConnectionRefusedError for a stale socket, FileNotFoundError, PermissionError); the
        socket is closed by then.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        with address_for(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix(sock: socket.socket, path: Path) -> None:
    """Bind the unix socket ``sock`` to ``path``.

    :raise OSError: as ``bind`` raises it (EADDRINUSE, EACCES, ...).
    """
    with address_for(path) as address:
        sock.bind(address)


class Closing(abc.ABC):
    """``with obj:`` closes ``obj`` on the way out, whatever happened inside."""

    __slots__ = ()

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing(abc.ABC):
    """``async with obj:`` awaits ``obj.close()`` on the way out, whatever happened inside."""

    __slots__ = ()

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the object holds (idempotent)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
