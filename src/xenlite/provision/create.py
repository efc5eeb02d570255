"""``xenlite create-image``: make a guest that boots, in steps, each undone when a later one
fails, so that a failure leaves neither a half-made image nor a config behind.

The steps: check the request and that the name is free; get the system's kernel and
initramfs (the guest kit, built once and cached); stage the root tree; make the disk
(image file or logical volume), its partition table, the root filesystem holding the tree and
the swap; copy the kernel beside the image when the guest boots directly (no --pygrub); write
the xl.cfg.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from xenlite.base.errors import ProvisionError, XenliteError
from xenlite.base.paths import under_root
from xenlite.guestkit.build import BUSYBOX as KIT_BUSYBOX
from xenlite.guestkit.build import GuestKit, build_guest_kit, busybox_applets
from xenlite.host import lvm
from xenlite.provision import disk
from xenlite.provision.request import DirStorage, Dist, ImageRequest, check_request
from xenlite.provision.system import BootFiles, stage_busybox
from xenlite.provision.xlconfig import DirectBoot, render, write_config

DISK_IMAGE = "disk.img"


class Progress(Protocol):
    """How the steps are shown: ``step(title)`` wraps each one."""

    def step(self, title: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class MadeImage:
    request: ImageRequest
    config: Path
    disk: Path
    boot: BootFiles
    seconds: float


@contextlib.contextmanager
def _step(progress: Progress, request: ImageRequest, title: str) -> Iterator[None]:
    """One step, shown by ``progress``; a failure in it names the step."""
    with progress.step(title):
        try:
            yield
        except XenliteError as exc:
            raise ProvisionError(
                f"create-image {request.hostname}: {title}", f"{exc.what}: {exc.cause}", exc.fix
            ) from None
        except OSError as exc:
            raise ProvisionError(
                f"create-image {request.hostname}: {title}",
                f"{exc.filename or 'the host'}: {exc.strerror or exc}",
                "free space there or correct the path, then run it again",
            ) from None


def boot_dir(request: ImageRequest) -> Path:
    """Where the kernel and initramfs of a directly booted guest are kept."""
    if isinstance(request.storage, DirStorage):
        return request.storage.domain_dir(request.hostname) / "boot"
    return under_root(f"/var/lib/xenlite/images/{request.hostname}")


def _name_in_use(request: ImageRequest) -> list[Path]:
    used = [request.config_path] if request.config_path.exists() else []
    if isinstance(request.storage, DirStorage):
        home = request.storage.domain_dir(request.hostname)
        if home.exists():
            used.append(home)
    else:
        volume = lvm.volume_path(request.storage.group, f"{request.hostname}-disk")
        if volume.exists():
            used.append(volume)
    return used


def create_image(
    request: ImageRequest,
    progress: Progress,
    *,
    kit_builder: Callable[[], GuestKit] = build_guest_kit,
) -> MadeImage:
    """Make the image and config ``request`` asks for.

    :raise ProvisionError: naming the step that failed, why, and what to do
    """
    started = time.monotonic()
    check_request(request)
    if request.dist is not Dist.BUSYBOX:
        raise ProvisionError(
            f"create-image --dist {request.dist.value}",
            "Debian systems (debootstrap) are not in this xenlite release yet",
            "use --dist busybox",
        )
    used = _name_in_use(request)
    if used and not request.force:
        raise ProvisionError(
            f"create-image --hostname {request.hostname}",
            "the name is in use: " + ", ".join(str(p) for p in used) + " exist(s)",
            f"choose another --hostname, delete it (xenlite delete-image {request.hostname}), "
            "or give --force to replace it",
        )
    if used:
        from xenlite.provision.catalog import delete_image

        with _step(progress, request, f"Removing the old image of {request.hostname} (--force)"):
            delete_image(request.hostname, request.config_path.parent, request.storage)
    with contextlib.ExitStack() as undo:
        with _step(progress, request, "Getting the kernel and initramfs (the guest kit)"):
            kit = kit_builder()
        target, scratch_parent = _make_target(request, undo, progress)
        layout = disk.DiskLayout(request.root_bytes, request.swap_bytes)
        root_uuid = uuid.uuid4()
        swap_uuid = uuid.uuid4() if request.swap_bytes else None
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=scratch_parent) as staging:
            tree = Path(staging) / "root"
            tree.mkdir()
            boot = _stage(request, progress, tree, kit, root_uuid, swap_uuid)
            with _step(progress, request, f"Partitioning {target}"):
                disk.write_partition_table(target, layout)
            title = f"Making the {request.filesystem.value} filesystem with the system in it"
            with _step(progress, request, title):
                disk.make_root_filesystem(
                    target,
                    layout,
                    kind=request.filesystem.value,
                    fs_uuid=root_uuid,
                    source=tree,
                    keep_allocated=not request.sparse,
                )
            if swap_uuid is not None:
                with _step(progress, request, f"Making swap ({request.swap_bytes >> 20} MiB)"):
                    disk.make_swap(target, layout, swap_uuid=swap_uuid)
            direct = None if request.pygrub else _copy_boot_files(request, undo, tree, boot)
        with _step(progress, request, f"Writing the configuration {request.config_path}"):
            text = render(request, str(target), direct)
            undo.callback(request.config_path.unlink, missing_ok=True)
            write_config(request, request.config_path, text)
        undo.pop_all()
    return MadeImage(request, request.config_path, target, boot, time.monotonic() - started)


def _make_target(
    request: ImageRequest, undo: contextlib.ExitStack, progress: Progress
) -> tuple[Path, Path]:
    """The disk to write (a new file or volume, removed again on failure) and a directory
    for scratch files."""
    size = disk.DiskLayout(request.root_bytes, request.swap_bytes).total_bytes
    kind = "sparse" if request.sparse else "full"
    if isinstance(request.storage, DirStorage):
        home = request.storage.domain_dir(request.hostname)
        try:
            home.mkdir(parents=True)
        except OSError as exc:
            raise ProvisionError(
                f"image directory {home}", exc.strerror or str(exc), "check --dir"
            ) from None
        undo.callback(shutil.rmtree, home, ignore_errors=True)
        target = home / DISK_IMAGE
        with _step(
            progress, request, f"Creating the disk image {target} ({size >> 20} MiB, {kind})"
        ):
            disk.allocate_file(target, size, sparse=request.sparse)
        return target, home
    group, name = request.storage.group, f"{request.hostname}-disk"
    title = f"Creating the logical volume {group}/{name} ({size >> 20} MiB)"
    with _step(progress, request, title):
        target = lvm.create_volume(group, name, size)
    undo.callback(lvm.remove_volume, group, name)
    scratch = under_root("/var/lib/xenlite/images")
    scratch.mkdir(parents=True, exist_ok=True)
    return target, scratch


def _stage(
    request: ImageRequest,
    progress: Progress,
    tree: Path,
    kit: GuestKit,
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
) -> BootFiles:
    with _step(progress, request, "Installing busybox"):
        return stage_busybox(
            tree,
            request,
            kernel=kit.kernel,
            initrd=kit.initrd,
            release=kit.kernel_version,
            applets=busybox_applets(KIT_BUSYBOX),
            root_uuid=root_uuid,
            swap_uuid=swap_uuid,
        )


def _copy_boot_files(
    request: ImageRequest, undo: contextlib.ExitStack, tree: Path, boot: BootFiles
) -> DirectBoot:
    """Without --pygrub the host boots the system's own kernel and initramfs: copies of
    them beside the image (a logical volume has no beside: under /var/lib/xenlite)."""
    where = boot_dir(request)
    if not isinstance(request.storage, DirStorage):
        undo.callback(shutil.rmtree, where, ignore_errors=True)
    where.mkdir(parents=True, exist_ok=True)
    kernel = where / Path(boot.kernel).name
    ramdisk = where / Path(boot.initrd).name
    shutil.copyfile(tree / boot.kernel.lstrip("/"), kernel)
    shutil.copyfile(tree / boot.initrd.lstrip("/"), ramdisk)
    return DirectBoot(kernel, ramdisk, boot.cmdline)
