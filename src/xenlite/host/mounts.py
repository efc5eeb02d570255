"""Mounts below a directory, and removing a directory tree that may have some.

A Debian tree that debootstrap built has /proc and /sys mounted in it while its packages
are configured; a debootstrap killed half-way leaves them there. ``shutil.rmtree`` would walk
into them (and, for a bind-mounted /dev, into the host's own device nodes), so every tree
xenlite removes that may have held a chroot goes through :func:`remove_tree`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from xenlite.base.errors import CommandFailed, HostError
from xenlite.base.proc import run_sync

MOUNTINFO = Path("/proc/self/mountinfo")
_UMOUNT_TIMEOUT = 30.0
# mountinfo writes space, tab, newline and backslash in a path as \ooo octal escapes.
_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(top: Path) -> list[Path]:
    """The mount points at or below ``top``, deepest first (the order to unmount them in)."""
    top = top.resolve()
    found: list[Path] = []
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            point = Path(_unescape(fields[4]))
            if point == top or top in point.parents:
                found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_under(top: Path) -> None:
    """Unmount everything mounted at or below ``top``; a busy mount is detached (lazy).

    :raise HostError: when a mount stays
    """
    for point in mounts_under(top):
        try:
            run_sync(["umount", point], timeout=_UMOUNT_TIMEOUT)
        except CommandFailed:
            run_sync(["umount", "--lazy", point], timeout=_UMOUNT_TIMEOUT, check=False)
    left = mounts_under(top)
    if left:
        raise HostError(
            f"mount {left[0]}",
            "cannot be unmounted",
            f"find what holds it (fuser -vm {left[0]}), end that, and umount it",
        )


def remove_tree(top: Path) -> None:
    """Remove ``top`` and all below it, after unmounting whatever is mounted there; a
    missing ``top`` is fine.

    :raise HostError: when a mount below it stays
    """
    if not top.exists() and not top.is_symlink():
        return
    unmount_under(top)
    shutil.rmtree(top)
