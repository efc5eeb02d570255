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
