"""Durable state files: the one atomic write (temporary file, fsync, rename, fsync of the
directory), so that a reader, or a daemon restarted after ``kill -9``, sees the old content or
the new one and never a torn file.

The temporary file is ``.NAME.PID.tmp`` beside the target: a writer killed before its rename
leaves only such a file, which the start-up sweep (``domain.orphans``) recognises and removes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from xenlite.base.errors import HostError


def temporary_name(path: Path) -> Path:
    """The temporary file :func:`write_atomic` writes before renaming it over ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def is_temporary(path: Path) -> bool:
    """Whether ``path`` looks like a temporary file an interrupted :func:`write_atomic` left."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def write_atomic(path: Path, data: bytes, mode: int = 0o600, *, fix: str | None = None) -> None:
    """Replace ``path`` by ``data`` atomically and durably; create its directory if missing.

    :raise HostError: when it cannot be written (nothing is left behind then)
    """
    temporary = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_synced(temporary, data, mode)
        os.replace(temporary, path)
        fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise HostError(
            f"file {path}",
            f"cannot be written: {exc.strerror or exc}",
            fix or f"check that {path.parent} is writable (xenlite runs as root)",
        ) from None


def write_synced(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create or truncate ``path``, write all of ``data`` and fsync it (not atomic).

    :raise OSError: as the system calls raise it
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable; a directory that cannot be opened
    (gone meanwhile) has nothing left to make durable."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        fsync_path(directory)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory already written (a tree published by one rename).

    :raise OSError: as the system calls raise it
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
