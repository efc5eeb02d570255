"""A guest's disk as the bootloader reads it: a raw file or block device read directly, any
other format through QEMU (``qemu.nbd``); and a window onto one partition of it that the
filesystem readers use as a file object."""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from xenlite.base.errors import XenliteError

if TYPE_CHECKING:
    from xenlite.qemu.nbd import NbdExport

QCOW2_MAGIC = b"QFI\xfb"


class BootloaderError(XenliteError):
    """The bootloader could not find or read a kernel in a guest's disk."""


class Disk(Protocol):
    """Bytes of a guest's disk as the guest sees them."""

    size: int

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class RawDisk:
    """A raw image file or a block device, read with pread."""

    def __init__(self, path: Path) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise BootloaderError(
                str(path),
                f"cannot open the disk: {error.strerror}",
                fix="check the disk's path in the config and that it is readable",
            ) from error
        self.size = os.lseek(self._fd, 0, os.SEEK_END)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        os.close(self._fd)


class CachedDisk:
    """A disk read through a socket, in aligned chunks kept for re-reads: filesystem readers
    read a few bytes at a time, each a round trip otherwise."""

    CHUNK = 256 << 10
    KEPT = 64

    def __init__(self, export: NbdExport) -> None:
        self._export = export
        self.size = export.size
        self._chunks: OrderedDict[int, bytes] = OrderedDict()

    def _chunk(self, index: int) -> bytes:
        data = self._chunks.get(index)
        if data is None:
            data = self._export.read(index * self.CHUNK, self.CHUNK)
            self._chunks[index] = data
            if len(self._chunks) > self.KEPT:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(index)
        return data

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length >= self.CHUNK * 4:
            return self._export.read(offset, length)
        parts = []
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self.CHUNK)
            data = self._chunk(index)[within : within + end - offset]
            if not data:
                break
            parts.append(data)
            offset += len(data)
        return b"".join(parts)

    def close(self) -> None:
        self._export.close()


def disk_format(path: Path, fmt: str | None) -> str:
    """The disk's format: the one given, else qcow2 when the file says so, else raw."""
    if fmt:
        return fmt
    try:
        with open(path, "rb") as file:
            return "qcow2" if file.read(4) == QCOW2_MAGIC else "raw"
    except OSError:
        return "raw"


def open_disk(path: Path, fmt: str | None = None, *, host_device: bool = False) -> Disk:
    """Open a guest's disk read-only; ``fmt`` is the disk spec's format (None: detect),
    ``host_device`` says the path is a block device (QEMU opens those with host_device)."""
    fmt = disk_format(path, fmt)
    if fmt == "raw":
        return RawDisk(path)
    if not path.exists():
        raise BootloaderError(str(path), "no such file", fix="check the disk's path in the config")
    from xenlite.qemu.nbd import NbdExport  # only for images QEMU must read

    return CachedDisk(NbdExport(path, fmt, protocol="host_device" if host_device else "file"))


class DiskWindow(io.RawIOBase):
    """``size`` bytes of a disk from ``start``, as a read-only file object (the filesystem
    libraries take one)."""

    def __init__(self, disk: Disk, start: int, size: int | None = None) -> None:
        super().__init__()
        self._disk = disk
        self._start = start
        self._size = disk.size - start if size is None else min(size, disk.size - start)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self._size - self._position
        size = max(0, min(size, self._size - self._position))
        data = self._disk.read(self._start + self._position, size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def get_size(self) -> int:
        return self._size
