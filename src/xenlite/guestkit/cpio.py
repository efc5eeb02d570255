"""A deterministic newc ("070701") cpio writer for the guest kit's initramfs.

Implements the format the Linux kernel unpacks at boot (Documentation/driver-api/early-userspace/
buffer-format.rst, cpio(5) "New ASCII Format"): directories, regular files, symlinks and
character/block device nodes, written without root because the modes and device numbers are
only bytes in a header. Output is reproducible: entries are sorted, every mtime is fixed, every
owner is root, inode numbers are assigned in order and no entry is a hard link.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

# Bumped whenever the bytes written for the same entries change, so that cached guest kits
# built by an older writer are rebuilt (it is part of the guest kit's cache key).
CPIO_WRITER_VERSION = "1"

_NEWC_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"
# The newc header is the magic plus 13 eight-digit hex fields.
_HEADER_LEN = 6 + 13 * 8
_MAX_FIELD = 0xFFFFFFFF


class EntryKind(StrEnum):
    """What an archive member is; the value is its file-type bits' name."""

    DIRECTORY = "directory"
    FILE = "file"
    SYMLINK = "symlink"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"


_TYPE_BITS = {
    EntryKind.DIRECTORY: stat.S_IFDIR,
    EntryKind.FILE: stat.S_IFREG,
    EntryKind.SYMLINK: stat.S_IFLNK,
    EntryKind.CHAR_DEVICE: stat.S_IFCHR,
    EntryKind.BLOCK_DEVICE: stat.S_IFBLK,
}


@dataclass(frozen=True, slots=True)
class CpioEntry:
    """One archive member. ``data`` is the content of a file or the target of a symlink."""

    path: str
    kind: EntryKind
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def _normalise(path: str) -> str:
    """Return ``path`` relative to the archive root, as the kernel expects (no leading '/')."""
    if "\0" in path:
        raise ValueError(f"cpio member name {path!r} contains a NUL byte")
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    if not parts:
        raise ValueError(f"cpio member name {path!r} names the archive root")
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"cpio member name {path!r} contains '.' or '..'")
    return "/".join(parts)


class CpioArchive:
    """An in-memory set of members, written sorted as newc, optionally gzip-compressed.

    Parent directories that were not added explicitly are created with mode 0755 so the
    kernel never meets a member whose directory does not exist yet.
    """

    def __init__(self) -> None:
        self._entries: dict[str, CpioEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and _normalise(path) in self._entries

    def entries(self) -> list[CpioEntry]:
        """All members in the order they are written (parents before children)."""
        return [self._entries[k] for k in sorted(self._entries, key=_sort_key)]

    def add_directory(self, path: str, mode: int = 0o755) -> None:
        """Add a directory; adding an existing directory again only updates its mode."""
        name = _normalise(path)
        existing = self._entries.get(name)
        if existing is not None and existing.kind is not EntryKind.DIRECTORY:
            raise ValueError(f"cpio member {name!r} already exists as a {existing.kind}")
        self._add_parents(name)
        self._entries[name] = CpioEntry(name, EntryKind.DIRECTORY, _permissions(mode))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file with ``data`` as its content."""
        self._add(CpioEntry(_normalise(path), EntryKind.FILE, _permissions(mode), bytes(data)))

    def add_symlink(self, path: str, target: str) -> None:
        """Add a symbolic link pointing at ``target`` (stored verbatim, may be relative)."""
        if not target or "\0" in target:
            raise ValueError(f"symlink {path!r} needs a non-empty target without NUL bytes")
        self._add(CpioEntry(_normalise(path), EntryKind.SYMLINK, 0o777, target.encode()))

    def add_device(
        self, path: str, kind: EntryKind, major: int, minor: int, mode: int = 0o600
    ) -> None:
        """Add a character or block device node with the given device number."""
        if kind not in (EntryKind.CHAR_DEVICE, EntryKind.BLOCK_DEVICE):
            raise ValueError(f"device node {path!r} must be a char or block device, not {kind}")
        if not (0 <= major <= _MAX_FIELD and 0 <= minor <= _MAX_FIELD):
            raise ValueError(f"device node {path!r}: device number {major}:{minor} out of range")
        self._add(CpioEntry(_normalise(path), kind, _permissions(mode), b"", major, minor))

    def to_bytes(self, *, mtime: int = 0) -> bytes:
        """The uncompressed newc archive, trailer included."""
        chunks: list[bytes] = []
        for ino, entry in enumerate(self.entries(), start=1):
            nlink = 2 if entry.kind is EntryKind.DIRECTORY else 1
            mode = _TYPE_BITS[entry.kind] | entry.mode
            chunks.append(
                _member(entry.path, entry.data, ino, mode, nlink, mtime, entry.rdev_major,
                        entry.rdev_minor)
            )  # fmt: skip
        chunks.append(_member(_TRAILER, b"", 0, 0, 1, 0, 0, 0))
        return b"".join(chunks)

    def to_gzip(self, *, mtime: int = 0, level: int = 9) -> bytes:
        """The archive gzip-compressed with a fixed header timestamp (reproducible bytes)."""
        return gzip.compress(self.to_bytes(mtime=mtime), compresslevel=level, mtime=0)

    def _add(self, entry: CpioEntry) -> None:
        if entry.path in self._entries:
            raise ValueError(f"cpio member {entry.path!r} added twice")
        self._add_parents(entry.path)
        self._entries[entry.path] = entry

    def _add_parents(self, name: str) -> None:
        parent = PurePosixPath(name).parent
        missing: list[str] = []
        while str(parent) != ".":
            key = str(parent)
            existing = self._entries.get(key)
            if existing is not None:
                if existing.kind is not EntryKind.DIRECTORY:
                    raise ValueError(f"cpio member {name!r}: parent {key!r} is a {existing.kind}")
                break
            missing.append(key)
            parent = parent.parent
        for key in missing:
            self._entries[key] = CpioEntry(key, EntryKind.DIRECTORY, 0o755)


def _sort_key(name: str) -> tuple[str, ...]:
    # Sorting by components keeps every directory directly ahead of its own children.
    return tuple(name.split("/"))


def _permissions(mode: int) -> int:
    if mode & ~0o7777:
        raise ValueError(f"mode {mode:#o} has bits outside the permission bits (0o7777)")
    return mode


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(
    name: str,
    data: bytes,
    ino: int,
    mode: int,
    nlink: int,
    mtime: int,
    rdev_major: int,
    rdev_minor: int,
) -> bytes:
    encoded = name.encode() + b"\0"
    if len(data) > _MAX_FIELD:
        raise ValueError(f"cpio member {name!r} is larger than newc's 4 GiB limit")
    fields = (ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdev_major, rdev_minor)
    header = _NEWC_MAGIC + b"".join(b"%08X" % f for f in (*fields, len(encoded), 0))
    head = header + encoded
    return head + _pad4(_HEADER_LEN + len(encoded)) + data + _pad4(len(data))
