"""Guest disk images for the bootloader tests, made with the real tools: mke2fs -d,
mkfs.fat + mcopy, xorriso, sfdisk and qemu-img. Nothing is mounted and no loop device is
used, so the images are made as any user."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = {
    "syslinux": "syslinux",
    "grub-mkstandalone": "grub-efi-amd64-bin",
    "mke2fs": "e2fsprogs",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "xorriso": "xorriso",
    "sfdisk": "fdisk",
    "qemu-img": "qemu-utils",
}


def need(*tools: str) -> None:
    """Skip the test, naming the package, when a tool is missing."""
    for tool in tools:
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.skip(f"{tool} is not installed (apt-get install {TOOLS[tool]})")


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "LC_ALL": "C"})


def tree(base: Path, files: Mapping[str, bytes | str], links: Mapping[str, str] = {}) -> Path:
    """A directory with ``files`` (path -> content) and symbolic ``links`` (path -> target)."""
    base.mkdir(parents=True)
    for path, content in files.items():
        target = base / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    for path, link_to in links.items():
        link = base / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(link_to)
    return base


def ext_fs(path: Path, source: Path, *, kind: str = "ext4", size_mib: int = 32) -> Path:
    need("mke2fs")
    _run("mke2fs", "-q", "-F", "-t", kind, "-d", os.fspath(source), os.fspath(path),
         f"{size_mib}M")  # fmt: skip
    return path


def fat_fs(path: Path, source: Path, *, size_mib: int = 32) -> Path:
    need("mkfs.fat", "mcopy")
    _run("mkfs.fat", "-C", "-n", "BOOT", os.fspath(path), str(size_mib * 1024))
    entries = [os.fspath(p) for p in sorted(source.iterdir())]
    if entries:
        _run("mcopy", "-s", "-i", os.fspath(path), *entries, "::/")
    return path


def iso_fs(path: Path, source: Path) -> Path:
    need("xorriso")
    _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", os.fspath(path),
         os.fspath(source))  # fmt: skip
    return path


@dataclass(frozen=True)
class Part:
    """A partition: its sfdisk type and the filesystem image put in it (None: left empty)."""

    kind: str
    size_mib: int
    filesystem: Path | None = None


def partitioned(path: Path, parts: Sequence[Part], *, label: str = "dos") -> Path:
    """A disk with a real partition table (sfdisk) and each filesystem copied into place."""
    need("sfdisk")
    total = 2 + sum(p.size_mib for p in parts) + 1
    with open(path, "wb") as disk:
        disk.truncate(total << 20)
    script = [f"label: {label}"]
    start = 2048
    for part in parts:
        script.append(f"start={start}, size={part.size_mib * 2048}, type={part.kind}")
        start += part.size_mib * 2048
    subprocess.run(
        ["sfdisk", "-q", os.fspath(path)],
        input="\n".join(script) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    start = 2048
    with open(path, "r+b") as disk:
        for part in parts:
            if part.filesystem is not None:
                data = part.filesystem.read_bytes()
                assert len(data) <= part.size_mib << 20, "filesystem larger than its partition"
                disk.seek(start * 512)
                disk.write(data)
            start += part.size_mib * 2048
    return path


def qcow2(path: Path, raw: Path, *, compressed: bool = True) -> Path:
    need("qemu-img")
    _run("qemu-img", "convert", *(["-c"] if compressed else []), "-f", "raw", "-O", "qcow2",
         os.fspath(raw), os.fspath(path))  # fmt: skip
    return path


SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
SYSLINUX_CFG = """\
SERIAL 0 115200
DEFAULT kit
PROMPT 0
TIMEOUT 0
LABEL kit
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND {cmdline}
"""
GRUB_EFI_CFG = """\
set timeout=0
serial --unit=0 --speed=115200
terminal_output serial console
search --no-floppy --file /vmlinuz --set=root
linux /vmlinuz {cmdline}
initrd /initrd.img
boot
"""


def firmware_disk(path: Path, kernel: Path, initrd: Path, cmdline: str) -> Path:
    """A disk that BIOS and UEFI firmware both boot: an MBR (syslinux's boot code) with one
    active FAT partition holding syslinux (BIOS) and a standalone GRUB at the removable-media
    path EFI/BOOT/BOOTX64.EFI (UEFI), both starting ``kernel`` with ``initrd``."""
    need("syslinux", "grub-mkstandalone", "mkfs.fat", "mcopy", "sfdisk")
    work = path.parent / f"{path.name}.parts"
    work.mkdir()
    size_mib = 64
    fat = work / "fat.img"
    # -h: the partition's start, which syslinux's volume boot record loads itself from.
    _run("mkfs.fat", "-C", "-h", "2048", "-n", "XLBOOT", os.fspath(fat), str(size_mib * 1024))
    _run("syslinux", "--install", os.fspath(fat))
    (work / "syslinux.cfg").write_text(SYSLINUX_CFG.format(cmdline=cmdline))
    (work / "grub.cfg").write_text(GRUB_EFI_CFG.format(cmdline=cmdline))
    efi = work / "BOOTX64.EFI"
    _run("grub-mkstandalone", "-O", "x86_64-efi", "-o", os.fspath(efi), "--locales=",
         "--themes=", "--fonts=", "--modules=part_msdos fat search serial linux normal",
         f"boot/grub/grub.cfg={work / 'grub.cfg'}")  # fmt: skip
    _run("mcopy", "-i", os.fspath(fat), os.fspath(kernel), "::/vmlinuz")
    _run("mcopy", "-i", os.fspath(fat), os.fspath(initrd), "::/initrd.img")
    _run("mcopy", "-i", os.fspath(fat), os.fspath(work / "syslinux.cfg"), "::/syslinux.cfg")
    _run("mmd", "-i", os.fspath(fat), "::/EFI", "::/EFI/BOOT")
    _run("mcopy", "-i", os.fspath(fat), os.fspath(efi), "::/EFI/BOOT/BOOTX64.EFI")
    partitioned(path, [Part("c", size_mib, fat)])
    subprocess.run(["sfdisk", "-q", "--activate", os.fspath(path), "1"], check=True,
                   capture_output=True)  # fmt: skip
    with open(path, "r+b") as disk:
        disk.write(SYSLINUX_MBR.read_bytes()[:440])
    shutil.rmtree(work)
    return path


def isolinux_iso(path: Path, kernel: Path, initrd: Path, cmdline: str) -> Path:
    """A CD image that BIOS firmware boots (El Torito, no emulation) with isolinux."""
    need("xorriso", "syslinux")
    root = path.parent / f"{path.name}.root"
    (root / "isolinux").mkdir(parents=True)
    shutil.copy(ISOLINUX_BIN, root / "isolinux")
    shutil.copy(LDLINUX_C32, root / "isolinux")
    (root / "isolinux" / "isolinux.cfg").write_text(SYSLINUX_CFG.format(cmdline=cmdline))
    shutil.copy(kernel, root / "vmlinuz")
    shutil.copy(initrd, root / "initrd.img")
    _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", os.fspath(path),
         "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
         "-boot-load-size", "4", "-boot-info-table", os.fspath(root))  # fmt: skip
    shutil.rmtree(root)
    return path
