"""``bootloader = "pygrub"``: the kernel a PV/PVH domain boots, found in its first disk.

As libxl does, the bootloader gets the config's kernel, ramdisk and command line as
``--kernel``/``--ramdisk``/``--args`` and then ``bootloader_args``; it runs on every boot
(a reboot picks up a new kernel the guest installed), its copies of the kernel and ramdisk
live in the domain's run directory only until QEMU has read them.

libxl runs pygrub on the domain's console, where its menu waits for the config's timeout;
xenlite has no console before QEMU starts, so it boots the entry pygrub would boot when
nobody answers (the default, or ``--entry``), without waiting, and says so in xl dmesg.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from xenlite.base.errors import ConfigError, DomainError, Unsupported
from xenlite.boot.loader import Extracted, opened
from xenlite.boot.pygrub import UsageError, choose_boot, parse_options
from xenlite.config.domain.model import BuildInfo
from xenlite.domain.disks import PreparedDisk, describe

BUILTIN = "pygrub"


def is_pygrub(bootloader: str) -> bool:
    """``pygrub`` and any path to it (``/usr/bin/pygrub``, ``/usr/lib/xen-4.17/bin/pygrub``)."""
    return os.path.basename(bootloader) == BUILTIN


@dataclass(frozen=True, slots=True)
class Booted:
    """What the bootloader chose and where its copies are."""

    files: Extracted
    cmdline: str
    disk: str
    place: str
    config: str
    entry: int | None
    title: str | None
    notes: tuple[str, ...]

    def summary(self) -> dict[str, object]:
        """For the domain record and ``xl list -l``."""
        return {
            "bootloader": BUILTIN,
            "disk": self.disk,
            "partition": self.place,
            "config": self.config,
            "entry": self.entry,
            "title": self.title,
            "kernel": self.files.guest_kernel,
            "ramdisk": self.files.guest_ramdisk,
            "args": self.cmdline,
        }

    def build_info(self, b_info: BuildInfo) -> BuildInfo:
        """``b_info`` booting what the bootloader chose (for QEMU's argv only: the stored
        config keeps bootloader= so that the next boot runs it again)."""
        ramdisk = str(self.files.ramdisk) if self.files.ramdisk else None
        return replace(b_info, kernel=str(self.files.kernel), ramdisk=ramdisk, cmdline=self.cmdline)

    def log_line(self) -> str:
        chose = f"entry {self.entry} {self.title!r}" if self.entry is not None else "--kernel"
        ramdisk = f", ramdisk {self.files.guest_ramdisk}" if self.files.guest_ramdisk else ""
        return (
            f"pygrub: {self.disk}, {self.place}, {self.config}: {chose}: kernel "
            f"{self.files.guest_kernel}{ramdisk}, args {self.cmdline!r}"
        )


def bootloader_argv(b_info: BuildInfo) -> list[str]:
    """libxl's bootloader command line, without the disk (pygrub's options)."""
    argv = []
    if b_info.kernel:
        argv.append(f"--kernel={b_info.kernel}")
    if b_info.ramdisk:
        argv.append(f"--ramdisk={b_info.ramdisk}")
    if b_info.cmdline:
        argv.append(f"--args={b_info.cmdline}")
    return [*argv, *b_info.bootloader_args]


def run_bootloader(
    b_info: BuildInfo, disks: Sequence[PreparedDisk], directory: Path, *, source: str = ""
) -> Booted:
    """Run the built-in pygrub on the first disk; its copies go into ``directory``.

    :raise Unsupported: for a bootloader other than pygrub
    :raise ConfigError: for bootloader_args pygrub does not take
    :raise DomainError: with no disk to boot from
    :raise BootloaderError: when the disk holds no bootable kernel
    """
    bootloader = b_info.bootloader or ""
    if not is_pygrub(bootloader):
        raise Unsupported(
            f'bootloader="{bootloader}"',
            "xenlite has pygrub built in and runs no other bootloader program",
            'use bootloader = "pygrub", or kernel= and ramdisk= from the host',
        )
    notes = []
    if bootloader == "/usr/bin/pygrub":
        # libxl's own warning.
        notes.append("bootloader='/usr/bin/pygrub' is deprecated; use bootloader='pygrub' instead")
    if not disks:
        raise DomainError(
            "bootloader", "cannot run bootloader with no boot disk", "add the guest's disk= line"
        )
    first = disks[0]
    if first.qemu.empty:
        raise DomainError(
            "bootloader",
            f"the first disk, {describe(first.disk)}, is an empty cdrom drive",
            "insert a medium (target=) or put the boot disk first in disk=",
        )
    try:
        options = parse_options([*bootloader_argv(b_info), first.path])
    except UsageError as error:
        raise ConfigError(
            f"pygrub refuses them: {error}",
            path=source or None,
            key="bootloader_args",
            fix="give pygrub's options (xenlite help pygrub)",
        ) from error
    if options.interactive:
        options.interactive = False
        notes.append(
            "pygrub: no console before the guest starts here: booting the entry chosen "
            "without the menu (add -q to bootloader_args to say so)"
        )
    name = describe(first.disk)
    with opened(Path(first.path), first.qemu.driver, host_device=first.qemu.host_device) as disk:
        chosen = choose_boot(options, disk, name)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = chosen.extract(directory)
    title = chosen.found.menu.entries[chosen.entry].title if chosen.entry is not None else None
    return Booted(
        files=files,
        cmdline=chosen.args,
        disk=name,
        place=chosen.found.partition.describe(),
        config=chosen.found.config,
        entry=chosen.entry,
        title=title,
        notes=tuple(notes),
    )
