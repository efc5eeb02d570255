"""The filesystems a guest boots from, read without mounting anything.

- ext2, ext3, ext4: libfsext (``pyfsext``, libyal's reader, also used by plaso/dfvfs). The
  PyPI ``ext4`` package reads only extent-mapped files: on ext2/ext3 (block maps) it lists
  empty directories without an error, so it cannot serve.
- FAT12/16/32 with long names: libfsfat (``pyfsfat``, the same family and interface).
- ISO 9660 with Rock Ridge or Joliet names: ``pycdlib``.

Each reader is this module's alone; they share one path walk here that follows symbolic
links (Debian's /vmlinuz -> boot/vmlinuz-6.1) the way the kernel does.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, cast

import pyfsext
import pyfsfat

from xenlite.boot.disk import BootloaderError, DiskWindow

_MAX_LINKS = 40


class _Tree(Protocol):
    """What a filesystem reader offers to the shared path walk."""

    label: str

    def root(self) -> Any: ...
    def child(self, node: Any, name: str) -> Any | None: ...
    def is_dir(self, node: Any) -> bool: ...
    def link(self, node: Any) -> str | None: ...
    def content(self, node: Any) -> bytes: ...


class _Ext:
    """Nodes are (path, entry): libfsext finds an entry by its full path (its lookup by name
    from a directory entry fails on the root), and the walk keeps paths free of links."""

    label = "ext2/3/4"

    def __init__(self, window: DiskWindow) -> None:
        self._volume = pyfsext.volume()
        self._volume.open_file_object(window)

    def root(self) -> Any:
        return ("/", self._volume.get_root_directory())

    def child(self, node: Any, name: str) -> Any | None:
        path = posixpath.join(node[0], name)
        entry = self._volume.get_file_entry_by_path(path)
        return None if entry is None else (path, entry)

    def is_dir(self, node: Any) -> bool:
        return stat.S_ISDIR(node[1].file_mode)

    def link(self, node: Any) -> str | None:
        if stat.S_ISLNK(node[1].file_mode):
            return str(node[1].symbolic_link_target)
        return None

    def content(self, node: Any) -> bytes:
        return bytes(node[1].read_buffer(node[1].size))


class _Fat:
    label = "FAT"

    def __init__(self, window: DiskWindow) -> None:
        self._volume = pyfsfat.volume()
        self._volume.open_file_object(window)

    def root(self) -> Any:
        return self._volume.get_root_directory()

    def child(self, node: Any, name: str) -> Any | None:
        # FAT names are case-insensitive; libfsfat matches them so.
        return node.get_sub_file_entry_by_name(name)

    def is_dir(self, node: Any) -> bool:
        # The root directory has no directory entry, hence no attributes.
        flags = node.file_attribute_flags
        return flags is None or bool(flags & 0x10)

    def link(self, node: Any) -> str | None:
        return None

    def content(self, node: Any) -> bytes:
        return bytes(node.read_buffer(node.size))


@dataclass(frozen=True, slots=True)
class _IsoNode:
    path: str
    record: Any


class _Iso:
    """pycdlib addresses a record by its full path in one of three name spaces: Rock Ridge
    (POSIX names, links), Joliet (long names) or plain ISO 9660 (NAME.EXT;1, upper case)."""

    label = "ISO 9660"

    def __init__(self, window: DiskWindow) -> None:
        # Imported here: pycdlib takes a tenth of a second to import, and most disks hold
        # no ISO 9660 filesystem.
        import pycdlib
        from pycdlib.pycdlibexception import PyCdlibException

        self._error = PyCdlibException
        self._iso = pycdlib.PyCdlib()
        with self._errors():
            self._iso.open_fp(cast(BinaryIO, window))
        if self._iso.has_rock_ridge():
            self._space = "rr_path"
        elif self._iso.has_joliet():
            self._space = "joliet_path"
        else:
            self._space = "iso_path"

    def _name(self, record: Any) -> str:
        if self._space == "rr_path" and record.rock_ridge is not None:
            return str(record.rock_ridge.name().decode("utf-8", "replace"))
        raw = record.file_identifier()
        name = raw.decode("utf-16-be" if self._space == "joliet_path" else "latin-1", "replace")
        return str(name.split(";")[0].rstrip(".") if self._space == "iso_path" else name)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """pycdlib's errors as the OSError every reader raises."""
        try:
            yield
        except self._error as error:
            raise OSError(str(error)) from error

    def root(self) -> Any:
        with self._errors():
            return _IsoNode("/", self._iso.get_record(**{self._space: "/"}))

    def child(self, node: Any, name: str) -> Any | None:
        with self._errors():
            records = list(self._iso.list_children(**{self._space: node.path}))
        for record in records:
            if record.is_dot() or record.is_dotdot():
                continue
            found = self._name(record)
            same = found == name if self._space == "rr_path" else found.lower() == name.lower()
            if same:
                return _IsoNode(posixpath.join(node.path, found), record)
        return None

    def is_dir(self, node: Any) -> bool:
        return bool(node.record.is_dir())

    def link(self, node: Any) -> str | None:
        rock = node.record.rock_ridge
        if self._space == "rr_path" and rock is not None and rock.is_symlink():
            return str(rock.symlink_path().decode("utf-8", "replace"))
        return None

    def content(self, node: Any) -> bytes:
        out = io.BytesIO()
        with self._errors():
            self._iso.get_file_from_iso_fp(out, **{self._space: node.path})
        return out.getvalue()


def _kind(window: DiskWindow) -> str | None:
    """ext, fat or iso from the filesystem's own signature; None when none matches."""
    window.seek(0)
    head = window.read(0x8006)
    if len(head) >= 1082 and head[1080:1082] == b"\x53\xef":
        return "ext"
    if len(head) >= 0x8006 and head[0x8001:0x8006] == b"CD001":
        return "iso"
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        fat16, fat32 = head[54:59], head[82:87]
        if fat16.startswith(b"FAT") or fat32 == b"FAT32" or head[0] in (0xE9, 0xEB):
            bytes_per_sector = int.from_bytes(head[11:13], "little")
            if bytes_per_sector in (512, 1024, 2048, 4096):
                return "fat"
    return None


class GuestFilesystem:
    """One filesystem inside a guest's disk: look files up and read them."""

    def __init__(self, window: DiskWindow, where: str) -> None:
        self.where = where
        kind = _kind(window)
        readers: dict[str, Callable[[DiskWindow], _Tree]] = {
            "ext": _Ext,
            "fat": _Fat,
            "iso": _Iso,
        }
        if kind is None:
            raise BootloaderError(
                where,
                "no ext2/3/4, FAT or ISO 9660 filesystem there",
                fix="the bootloader reads only those; boot with kernel= from the host",
            )
        window.seek(0)
        try:
            self._tree: _Tree = readers[kind](window)
        except OSError as error:
            raise BootloaderError(
                where, f"the {kind} filesystem cannot be read: {error}", fix="run fsck on it"
            ) from error
        self.label = self._tree.label

    def _walk(self, path: str) -> Any | None:
        """The node at ``path`` (relative paths from the root), following links."""
        pending = [p for p in path.split("/") if p not in ("", ".")]
        trail: list[Any] = [self._tree.root()]
        links = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                if len(trail) > 1:
                    trail.pop()
                continue
            if not self._tree.is_dir(trail[-1]):
                return None
            node = self._tree.child(trail[-1], name)
            if node is None:
                return None
            target = self._tree.link(node)
            if target is None:
                trail.append(node)
                continue
            links += 1
            if links > _MAX_LINKS:
                return None
            if target.startswith("/"):
                trail = trail[:1]
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
        return trail[-1]

    def exists(self, path: str) -> bool:
        try:
            node = self._walk(path)
        except OSError:
            return False
        return node is not None and not self._tree.is_dir(node)

    def read(self, path: str) -> bytes:
        try:
            node = self._walk(path)
            if node is None or self._tree.is_dir(node):
                raise BootloaderError(
                    f"{self.where}: {path}",
                    "no such file",
                    fix="check the path in the boot config (or --kernel/--ramdisk)",
                )
            return self._tree.content(node)
        except OSError as error:
            raise BootloaderError(
                f"{self.where}: {path}", f"cannot be read: {error}", fix="run fsck on it"
            ) from error
