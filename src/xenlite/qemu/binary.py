"""Find the QEMU binary that runs domUs and learn what it can do (version, machines, devices).

xl.cfg(5) "device_model_override": a config may name its own device-model binary; otherwise
xenlite runs Debian's ``qemu-system-x86_64`` (package qemu-system-x86). What a binary offers
is read from ``-version``, ``-machine help``, ``-device help`` and ``-accel help`` once per
binary and cached in memory and on disk, keyed by path, mtime and size, so an upgraded
QEMU is asked again and an unchanged one costs nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import HostError, Unsupported
from xenlite.base.files import write_atomic
from xenlite.base.paths import user_cache_dir
from xenlite.base.proc import require_program, run_sync

QEMU_SYSTEM = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"
_PROBE_TIMEOUT = 20.0
_CACHE_FILE = "qemu-binaries.json"
_CACHE_FORMAT = 1

_VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")
_DEVICE_RE = re.compile(r'^name "([^"]+)"(?:.*alias "([^"]+)")?')
_MACHINE_ALIAS_RE = re.compile(r"\(alias of ([^)\s]+)\)")


@dataclass(frozen=True, slots=True)
class QemuBinary:
    """One QEMU binary and what it offers."""

    path: Path
    version: tuple[int, int, int]
    version_text: str
    machines: frozenset[str]
    devices: frozenset[str]
    accels: frozenset[str]

    def has_machine(self, name: str) -> bool:
        return name in self.machines

    def has_device(self, name: str) -> bool:
        return name in self.devices

    def require_machine(self, name: str) -> None:
        """:raise Unsupported: when this QEMU has no machine type ``name``"""
        if name not in self.machines:
            raise Unsupported(
                f"QEMU machine type '{name}'",
                f"{self.path} ({self.version_text}) does not offer it",
                f"install a QEMU that has it: apt-get install {QEMU_PACKAGE}",
            )

    def require_device(self, name: str) -> None:
        """:raise Unsupported: when this QEMU has no device model ``name``"""
        if name not in self.devices:
            raise Unsupported(
                f"QEMU device '{name}'",
                f"{self.path} ({self.version_text}) does not offer it",
                f"install a QEMU that has it: apt-get install {QEMU_PACKAGE}",
            )


_memory_cache: dict[tuple[str, int, int], QemuBinary] = {}


def find_qemu(device_model_override: str | None = None) -> Path:
    """The binary to run: ``device_model_override`` when the config gives one, else
    ``qemu-system-x86_64`` from PATH.

    :raise HostError: when the override is not an executable file, or QEMU is not installed
    """
    if device_model_override is None:
        return require_program(QEMU_SYSTEM, QEMU_PACKAGE)
    path = Path(device_model_override)
    if not path.is_absolute():
        raise HostError(
            f"device_model_override '{device_model_override}'",
            "is not an absolute path",
            f"give the full path of a QEMU binary, e.g. /usr/bin/{QEMU_SYSTEM}",
        )
    if not path.is_file() or not os.access(path, os.X_OK):
        raise HostError(
            f"device_model_override '{device_model_override}'",
            "is not an executable file",
            f"give the path of an installed QEMU, or remove the key to use {QEMU_SYSTEM} "
            f"(apt-get install {QEMU_PACKAGE})",
        )
    return path


def probe_binary(path: Path, *, cache_dir: Path | None = None) -> QemuBinary:
    """What ``path`` offers, from the cache when the binary is unchanged.

    :param cache_dir: where the on-disk cache lives (default ``user_cache_dir()``)
    :raise HostError: when the binary cannot be run or does not look like QEMU
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise HostError(
            f"QEMU binary {path}",
            f"cannot be read: {exc.strerror or exc}",
            f"apt-get install {QEMU_PACKAGE}",
        ) from None
    key = (os.fspath(path), info.st_mtime_ns, info.st_size)
    cached = _memory_cache.get(key)
    if cached is not None:
        return cached
    directory = user_cache_dir() if cache_dir is None else cache_dir
    binary = _load_disk_cache(directory, key)
    if binary is None:
        binary = _ask_binary(path)
        _store_disk_cache(directory, key, binary)
    _memory_cache[key] = binary
    return binary


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, micro)`` from ``-version`` output, or None."""
    match = _VERSION_RE.search(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def parse_machines(text: str) -> frozenset[str]:
    """Machine names (and the names they alias) from ``-machine help``."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.strip() or line.startswith("Supported machines"):
            continue
        names.add(line.split()[0])
        alias = _MACHINE_ALIAS_RE.search(line)
        if alias:
            names.add(alias[1])
    return frozenset(names)


def parse_devices(text: str) -> frozenset[str]:
    """Device names (and aliases) from ``-device help``."""
    names: set[str] = set()
    for line in text.splitlines():
        match = _DEVICE_RE.match(line.strip())
        if match:
            names.add(match[1])
            if match[2]:
                names.add(match[2])
    return frozenset(names)


def parse_accels(text: str) -> frozenset[str]:
    """Accelerator names from ``-accel help``."""
    return frozenset(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("Accelerators")
    )


def _ask(path: Path, *args: str) -> str:
    fix = f"check that {path} is a working QEMU (apt-get install --reinstall {QEMU_PACKAGE})"
    result = run_sync([path, *args], timeout=_PROBE_TIMEOUT, fix=fix)
    return result.stdout.decode(errors="replace")


def _ask_binary(path: Path) -> QemuBinary:
    version_text = _ask(path, "-version")
    version = parse_version(version_text)
    if version is None:
        raise HostError(
            f"QEMU binary {path}",
            f"'-version' did not print a QEMU version: {version_text.strip()[:200]!r}",
            f"point device_model_override at a QEMU, or apt-get install {QEMU_PACKAGE}",
        )
    return QemuBinary(
        path=path,
        version=version,
        version_text=version_text.strip().splitlines()[0],
        machines=parse_machines(_ask(path, "-machine", "help")),
        devices=parse_devices(_ask(path, "-device", "help")),
        accels=parse_accels(_ask(path, "-accel", "help")),
    )


def _load_disk_cache(directory: Path, key: tuple[str, int, int]) -> QemuBinary | None:
    try:
        stored = json.loads((directory / _CACHE_FILE).read_text())
        entry = stored["binaries"][f"{key[0]}\0{key[1]}\0{key[2]}"]
        if stored["format"] != _CACHE_FORMAT:
            return None
        major, minor, micro = entry["version"]
        return QemuBinary(
            path=Path(key[0]),
            version=(int(major), int(minor), int(micro)),
            version_text=str(entry["version_text"]),
            machines=frozenset(str(m) for m in entry["machines"]),
            devices=frozenset(str(d) for d in entry["devices"]),
            accels=frozenset(str(a) for a in entry["accels"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # A missing or damaged cache only costs asking the binary again.
        return None


def _store_disk_cache(directory: Path, key: tuple[str, int, int], binary: QemuBinary) -> None:
    path = directory / _CACHE_FILE
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict) or stored.get("format") != _CACHE_FORMAT:
            raise ValueError("stale cache format")
        entries = stored["binaries"]
        if not isinstance(entries, dict):
            raise ValueError("damaged cache")
    except (OSError, ValueError, KeyError):
        entries = {}
    # Keep only the newest entry per binary path: an upgrade replaces the old one.
    entries = {k: v for k, v in entries.items() if k.split("\0", 1)[0] != key[0]}
    entries[f"{key[0]}\0{key[1]}\0{key[2]}"] = {
        "version": list(binary.version),
        "version_text": binary.version_text,
        "machines": sorted(binary.machines),
        "devices": sorted(binary.devices),
        "accels": sorted(binary.accels),
    }
    with contextlib.suppress(HostError):  # an unwritable cache only costs a probe next time
        write_atomic(path, json.dumps({"format": _CACHE_FORMAT, "binaries": entries}).encode())
