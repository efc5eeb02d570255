"""pygrub's search: each partition of the guest's disk in turn, the first boot config found in
pygrub's order of paths, the entry it would choose, and the kernel and ramdisk copied out
into files on the host."""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xenlite.boot.disk import BootloaderError, Disk, DiskWindow, open_disk
from xenlite.boot.extlinux import parse_extlinux
from xenlite.boot.filesystems import GuestFilesystem
from xenlite.boot.grubmenu import parse_grub2, parse_grub_legacy
from xenlite.boot.menu import BootMenu, BootMenuError, boot_choice
from xenlite.boot.partitions import Partition, partitions

# pygrub's read limit for a config file.
_CONFIG_MAX = 1 << 20

_GRUB2_PATHS = ("/boot/grub/grub.cfg", "/grub/grub.cfg", "/boot/grub2/grub.cfg", "/grub2/grub.cfg")
_EXTLINUX_PATHS = (
    "/boot/isolinux/isolinux.cfg",
    "/boot/extlinux/extlinux.conf",
    "/boot/extlinux.conf",
    "/extlinux/extlinux.conf",
    "/extlinux.conf",
)
_LEGACY_PATHS = ("/boot/grub/menu.lst", "/boot/grub/grub.conf", "/grub/menu.lst", "/grub/grub.conf")
# Beyond pygrub: where isolinux and syslinux keep their config on CDs and sticks.
_MORE_EXTLINUX = ("/isolinux/isolinux.cfg", "/syslinux/syslinux.cfg", "/boot/syslinux/syslinux.cfg")

Parser = Callable[[str, str, GuestFilesystem], BootMenu]


def _grub2(text: str, source: str, fs: GuestFilesystem) -> BootMenu:
    env_path = posixpath.join(posixpath.dirname(source), "grubenv")
    env: dict[str, str] = {}
    if fs.exists(env_path):
        env = parse_grubenv(fs.read(env_path).decode("utf-8", "replace"))
    return parse_grub2(text, source, env)


def _extlinux(text: str, source: str, fs: GuestFilesystem) -> BootMenu:
    return parse_extlinux(text, source)


def _legacy(text: str, source: str, fs: GuestFilesystem) -> BootMenu:
    return parse_grub_legacy(text, source)


CONFIGS: tuple[tuple[str, Parser], ...] = (
    *((path, _grub2) for path in _GRUB2_PATHS),
    *((path, _extlinux) for path in _EXTLINUX_PATHS),
    *((path, _legacy) for path in _LEGACY_PATHS),
    *((path, _extlinux) for path in _MORE_EXTLINUX),
)


def parse_grubenv(text: str) -> dict[str, str]:
    """GRUB's environment block: ``name=value`` lines after its header, '#' padding."""
    env = {}
    for line in text.split("\n"):
        if line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        env[name] = value
    return env


@dataclass(frozen=True, slots=True)
class Found:
    """Where the boot config was: its partition, filesystem, path and menu."""

    partition: Partition
    fs: GuestFilesystem
    config: str
    menu: BootMenu


@dataclass(slots=True)
class Search:
    """The outcome of looking through a disk: ``found`` or, per place tried, why not."""

    disk: str
    found: Found | None = None
    tried: list[str] = field(default_factory=list)

    def failure(self) -> BootloaderError:
        reasons = "; ".join(self.tried) or "nothing to try"
        return BootloaderError(
            self.disk,
            f"no bootable kernel found: {reasons}",
            fix="put a GRUB (/boot/grub/grub.cfg, menu.lst) or extlinux config on an ext2/3/4, "
            "FAT or ISO 9660 filesystem of the disk, or boot with kernel= from the host",
        )


def _read_config(fs: GuestFilesystem) -> tuple[str, Parser] | None:
    for path, parser in CONFIGS:
        if fs.exists(path):
            return path, parser
    return None


def search(
    disk: Disk,
    name: str,
    *,
    entry: str | None = None,
    extra_args: str = "",
    offset: int | None = None,
    need_kernel: bool = True,
) -> Search:
    """Look through ``disk`` as pygrub does; ``offset`` (pygrub's --offset) names one
    filesystem start instead of the partition table's. With ``need_kernel``, a menu whose
    chosen entry boots no kernel sends the search on to the next partition, as in pygrub."""
    result = Search(name)
    places = [Partition(0, offset)] if offset is not None else partitions(disk)
    for place in places:
        where = f"{name}: {place.describe()}"
        try:
            fs = GuestFilesystem(DiskWindow(disk, place.offset, place.size), where)
        except BootloaderError as error:
            result.tried.append(f"{place.describe()}: {error.cause}")
            continue
        config = _read_config(fs)
        if config is None:
            result.tried.append(f"{place.describe()}: {fs.label}, no boot config")
            continue
        path, parser = config
        text = fs.read(path)[:_CONFIG_MAX].decode("utf-8", "replace")
        try:
            menu = parser(text, path, fs)
            if need_kernel:
                boot_choice(menu, entry, extra_args)
        except BootMenuError as error:
            result.tried.append(f"{place.describe()}: {error}")
            continue
        result.found = Found(place, fs, path, menu)
        return result
    return result


def _guest_path(fs: GuestFilesystem, path: str, config: str) -> str:
    """A kernel path as the config names it; a relative one is looked up from the root
    (as pygrub) and then, as syslinux means it, from the config's directory."""
    if path.startswith("/") or fs.exists(path):
        return path
    beside = posixpath.normpath(posixpath.join(posixpath.dirname(config), path))
    return beside if fs.exists(beside) else path


@dataclass(frozen=True, slots=True)
class Extracted:
    """The kernel and ramdisk copied out of the guest, and what they were inside it."""

    kernel: Path
    ramdisk: Path | None
    guest_kernel: str
    guest_ramdisk: str | None

    def remove(self) -> None:
        """Delete the copies (QEMU has read them, or the boot failed)."""
        self.kernel.unlink(missing_ok=True)
        if self.ramdisk is not None:
            self.ramdisk.unlink(missing_ok=True)


def _write_new(directory: Path, prefix: str, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def extract(
    fs: GuestFilesystem, kernel: str, ramdisk: str | None, config: str, directory: Path
) -> Extracted:
    """Copy the kernel and ramdisk (several initrds: one after the other, as GRUB loads
    them) into new files in ``directory``; nothing is left there on failure."""
    guest_kernel = _guest_path(fs, kernel, config)
    kernel_data = fs.read(guest_kernel)
    guest_ramdisks = [_guest_path(fs, p, config) for p in (ramdisk or "").split()]
    ramdisk_data = b"".join(fs.read(p) for p in guest_ramdisks)
    kernel_file = _write_new(directory, "boot_kernel.", kernel_data)
    try:
        ramdisk_file = (
            _write_new(directory, "boot_ramdisk.", ramdisk_data) if guest_ramdisks else None
        )
    except BaseException:
        kernel_file.unlink()
        raise
    return Extracted(kernel_file, ramdisk_file, guest_kernel, " ".join(guest_ramdisks) or None)


@contextlib.contextmanager
def opened(path: Path, fmt: str | None = None, *, host_device: bool = False) -> Iterator[Disk]:
    """``open_disk`` as a context: the disk (and any qemu-storage-daemon) closed after."""
    disk = open_disk(path, fmt, host_device=host_device)
    try:
        yield disk
    finally:
        disk.close()
