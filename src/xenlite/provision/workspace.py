"""The directory an image is built in, ``.NAME.partial`` beside its home, renamed to the home
once the image is whole.

A create-image that is killed half-way leaves only this directory (and whatever debootstrap
had mounted in it): no config, no home, so the name is not "in use". The run holds an
exclusive flock on the directory while it builds; the next run for the name, or
``delete-image NAME``, finds it unlocked and removes it, mounts first. A locked one belongs
to a create-image that is still running, and is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from xenlite.base.errors import ProvisionError
from xenlite.host.mounts import remove_tree


def partial_of(home: Path) -> Path:
    """Where the image whose home is ``home`` is built."""
    return home.parent / f".{home.name}.partial"


def _in_use(partial: Path) -> ProvisionError:
    return ProvisionError(
        f"create-image {partial.name.removeprefix('.').removesuffix('.partial')}",
        f"another create-image of this name is running (it is building in {partial})",
        "wait for it to finish, or end it and run this again",
    )


def _lock(partial: Path) -> int | None:
    """An exclusive lock on ``partial``: its descriptor, or None when another run holds it."""
    fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale(partial: Path) -> bool:
    """Remove what an interrupted create-image left in ``partial``; False when there is none.

    :raise ProvisionError: when a create-image still builds there
    """
    if not partial.is_dir():
        return False
    fd = _lock(partial)
    if fd is None:
        raise _in_use(partial)
    try:
        remove_tree(partial)
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def claimed(partial: Path) -> Iterator[Path]:
    """``partial``, made anew and locked for this run; a stale one is removed first."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(partial)
    try:
        partial.mkdir()
    except FileExistsError:
        raise _in_use(partial) from None
    fd = _lock(partial)
    if fd is None:
        raise _in_use(partial)
    try:
        yield partial
    finally:
        os.close(fd)
