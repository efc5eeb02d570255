"""The guest's disk: a raw image (or a volume) with an MBR partition table, the root
filesystem in partition 1 and swap in partition 2.

Nothing is mounted and no loop device is used: sfdisk writes the table into the image, mke2fs
makes the filesystem at the partition's offset (``-E offset=``) filled from a staging tree
(``-d``), and the swap header is mkswap's, made on a sparse file of the partition's size and
copied into place. So an image is made the same way on a file and on a logical volume.
"""

from __future__ import annotations

import errno
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import HostError, ProvisionError
from xenlite.base.proc import require_program, run_sync
from xenlite.base.units import MIB

# Partition 1 starts at 1 MiB, as fdisk aligns it; each partition is whole MiB.
FIRST_PARTITION = 1 * MIB
_PAGE = 4096
_TOOL_TIMEOUT = 60.0
# mke2fs -d copies every file of the system; a Debian tree is ~300 MB.
_MKFS_TIMEOUT = 1800.0


@dataclass(frozen=True, slots=True)
class DiskLayout:
    root_bytes: int
    swap_bytes: int

    @property
    def root_start(self) -> int:
        return FIRST_PARTITION

    @property
    def swap_start(self) -> int:
        return FIRST_PARTITION + _whole_mib(self.root_bytes)

    @property
    def total_bytes(self) -> int:
        return self.swap_start + _whole_mib(self.swap_bytes)

    def sfdisk_script(self) -> str:
        lines = [
            "label: dos",
            f"start={self.root_start // 512}, size={_whole_mib(self.root_bytes) // 512}, "
            "type=83, bootable",
        ]
        if self.swap_bytes:
            lines.append(
                f"start={self.swap_start // 512}, size={_whole_mib(self.swap_bytes) // 512}, "
                "type=82"
            )
        return "\n".join(lines) + "\n"


def _whole_mib(size: int) -> int:
    return (size + MIB - 1) // MIB * MIB


def _failed(step: str, target: Path, exc: HostError, fix: str) -> ProvisionError:
    return ProvisionError(f"{step} on {target}", exc.cause, fix)


def allocate_file(path: Path, size: int, *, sparse: bool) -> None:
    """A new image file of ``size`` bytes: sparse (holes, as xen-tools' ``--image sparse``)
    or with every block allocated now (``full``), so that a full disk shows at once.

    :raise ProvisionError: when the file exists or the filesystem has no room
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ProvisionError(
            f"disk image {path}", "already exists", "delete it, or give --force"
        ) from None
    try:
        if sparse:
            os.ftruncate(fd, size)
        else:
            os.posix_fallocate(fd, 0, size)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise ProvisionError(
                f"disk image {path}",
                f"the filesystem holding it has no room for {size >> 20} MiB",
                "free space there, give a smaller --size, or use another --dir",
            ) from None
        raise ProvisionError(f"disk image {path}", exc.strerror or str(exc)) from None
    os.close(fd)


def write_partition_table(target: Path, layout: DiskLayout) -> None:
    sfdisk = require_program("sfdisk", "fdisk")
    try:
        run_sync(
            [sfdisk, "--quiet", "--no-reread", "--no-tell-kernel", target],
            input=layout.sfdisk_script().encode(),
            timeout=_TOOL_TIMEOUT,
        )
    except HostError as exc:
        raise _failed("partitioning", target, exc, "check the image is writable") from None


def make_root_filesystem(
    target: Path,
    layout: DiskLayout,
    *,
    kind: str,
    fs_uuid: uuid.UUID,
    source: Path,
    keep_allocated: bool = False,
) -> None:
    """mke2fs ``kind`` in partition 1 holding the tree at ``source`` (owners and modes kept).
    ``keep_allocated``: no discard, which on an image file punches holes into a full image.

    :raise ProvisionError: when mke2fs fails (no room for the system: the fix says so)
    """
    mke2fs = require_program("mke2fs", "e2fsprogs")
    argv: list[str | os.PathLike[str]] = [
        mke2fs, "-q", "-F", "-t", kind, "-U", str(fs_uuid), "-L", "root",
        "-E", f"offset={layout.root_start}" + (",nodiscard" if keep_allocated else ""),
        "-d", source, target,
        f"{_whole_mib(layout.root_bytes) // 1024}k",
    ]  # fmt: skip
    try:
        run_sync(argv, timeout=_MKFS_TIMEOUT)
    except HostError as exc:
        raise _failed(
            f"making the {kind} filesystem",
            target,
            exc,
            f"free space where the image is (df {target.parent}), or give a larger --size if "
            "the system does not fit in it",
        ) from None


def make_swap(target: Path, layout: DiskLayout, *, swap_uuid: uuid.UUID) -> None:
    """mkswap's header for partition 2, made on a sparse scratch file of the same size (mkswap
    cannot write at an offset) and copied to the partition's first page."""
    if not layout.swap_bytes:
        return
    mkswap = require_program("mkswap", "util-linux")
    size = _whole_mib(layout.swap_bytes)
    with tempfile.TemporaryDirectory(prefix=".swap-", dir=target.parent) as scratch:
        header = Path(scratch) / "swap"
        with open(header, "wb") as stream:
            stream.truncate(size)
        try:
            run_sync([mkswap, "-U", str(swap_uuid), header], timeout=_TOOL_TIMEOUT)
        except HostError as exc:
            raise _failed("making swap", target, exc, "check util-linux's mkswap") from None
        with open(header, "rb") as stream:
            page = stream.read(_PAGE)
    with open(target, "r+b") as disk:
        disk.seek(layout.swap_start)
        disk.write(page)
        disk.flush()
        os.fsync(disk.fileno())
