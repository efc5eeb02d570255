"""``xenlite create-image``: make a guest that boots, in steps, each undone when a later one
fails, so that a failure leaves neither a half-made image nor a config behind.

The steps: check the request and that the name is free; stage the root tree (busybox with
the guest kit's kernel and initramfs, built once and cached, or Debian by debootstrap); make
the disk (image file or logical volume), its partition table, the root filesystem holding the
tree and the swap; copy the kernel beside the image when the guest boots directly (no
--pygrub); write the xl.cfg.

Everything is built in ``.NAME.partial`` (:mod:`xenlite.provision.workspace`), renamed to the
image's home before the config is written, so that even a kill -9 leaves no image that looks
whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from xenlite.base.errors import ProvisionError, XenliteError
from xenlite.guestkit.build import BUSYBOX as KIT_BUSYBOX
from xenlite.guestkit.build import GuestKit, build_guest_kit, busybox_applets
from xenlite.host import lvm
from xenlite.host.mounts import remove_tree
from xenlite.provision import debian, disk, workspace
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
    # The root password a Debian system was given (None: busybox, root has none).
    password: str | None = None


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
    return request.home / "boot"


def _name_in_use(request: ImageRequest) -> list[Path]:
    used = [path for path in (request.config_path, request.home) if path.exists()]
    if not isinstance(request.storage, DirStorage):
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
        debian.host_arch()
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
    password = None
    if request.dist is not Dist.BUSYBOX:
        password = request.password or debian.make_password()
    with (
        workspace.claimed(workspace.partial_of(request.home)) as partial,
        contextlib.ExitStack() as undo,
    ):
        undo.callback(remove_tree, partial)
        target = _make_target(request, undo, progress, partial)
        layout = disk.DiskLayout(request.root_bytes, request.swap_bytes)
        root_uuid = uuid.uuid4()
        swap_uuid = uuid.uuid4() if request.swap_bytes else None
        tree = partial / "staging"
        tree.mkdir()
        boot = _stage(request, progress, tree, kit_builder, root_uuid, swap_uuid, password)
        with _step(progress, request, f"Partitioning {target.name}"):
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
        direct = None if request.pygrub else _copy_boot_files(request, partial, tree, boot)
        remove_tree(tree)
        if isinstance(request.storage, DirStorage):
            target = request.home / target.name
        os.rename(partial, request.home)
        undo.callback(remove_tree, request.home)
        with _step(progress, request, f"Writing the configuration {request.config_path}"):
            text = render(request, str(target), direct)
            undo.callback(request.config_path.unlink, missing_ok=True)
            write_config(request, request.config_path, text)
        undo.pop_all()
    return MadeImage(
        request, request.config_path, target, boot, time.monotonic() - started, password
    )


def _make_target(
    request: ImageRequest, undo: contextlib.ExitStack, progress: Progress, partial: Path
) -> Path:
    """The disk to write: a new file in ``partial``, or a new volume removed again on
    failure."""
    size = disk.DiskLayout(request.root_bytes, request.swap_bytes).total_bytes
    kind = "sparse" if request.sparse else "full"
    if isinstance(request.storage, DirStorage):
        target = partial / DISK_IMAGE
        final = request.home / DISK_IMAGE
        with _step(
            progress, request, f"Creating the disk image {final} ({size >> 20} MiB, {kind})"
        ):
            disk.allocate_file(target, size, sparse=request.sparse)
        return target
    group, name = request.storage.group, f"{request.hostname}-disk"
    title = f"Creating the logical volume {group}/{name} ({size >> 20} MiB)"
    with _step(progress, request, title):
        target = lvm.create_volume(group, name, size)
    undo.callback(lvm.remove_volume, group, name)
    return target


def _stage(
    request: ImageRequest,
    progress: Progress,
    tree: Path,
    kit_builder: Callable[[], GuestKit],
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
    password: str | None,
) -> BootFiles:
    """Lay out the system in ``tree``."""
    if request.dist is Dist.BUSYBOX:
        with _step(progress, request, "Getting the kernel and initramfs (the guest kit)"):
            kit = kit_builder()
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
    assert password is not None
    title = f"Installing Debian {request.dist.value} with debootstrap from {request.mirror}"
    with _step(progress, request, title):
        debian.debootstrap(tree, request)
    with _step(progress, request, "Setting up the Debian system"):
        return debian.configure(
            tree, request, root_uuid=root_uuid, swap_uuid=swap_uuid, password=password
        )


def _copy_boot_files(
    request: ImageRequest, partial: Path, tree: Path, boot: BootFiles
) -> DirectBoot:
    """Without --pygrub the host boots the system's own kernel and initramfs: copies of
    them in the image's home (for a logical volume, under /var/lib/xenlite/images)."""
    (partial / "boot").mkdir()
    kernel = Path(boot.kernel).name
    ramdisk = Path(boot.initrd).name
    shutil.copyfile(tree / boot.kernel.lstrip("/"), partial / "boot" / kernel)
    shutil.copyfile(tree / boot.initrd.lstrip("/"), partial / "boot" / ramdisk)
    where = boot_dir(request)
    return DirectBoot(where / kernel, where / ramdisk, boot.cmdline)
