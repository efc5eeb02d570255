"""Choose QEMU's accelerator: KVM when a real guest runs under it in time, TCG otherwise.

Not a Xen man page: ../shared/DESIGN.md "KVM: /dev/kvm opening is not proof". A host can
offer a /dev/kvm on which guests hang, crawl (nested virtualization without hardware help)
or make QEMU abort, so the probe boots a tiny real guest: SeaBIOS, QEMU's multiboot loader,
then a 32-bit payload that writes 64 MiB of memory and leaves through the isa-debug-exit
device. Working KVM finishes in a fraction of a second; anything else misses the deadline or
exits the wrong way, and the host falls back to TCG with the reason. The answer is cached per
host boot (``/proc/sys/kernel/random/boot_id``) and per QEMU binary.

``XENLITE_ACCEL=kvm|tcg`` forces the choice; a forced ``kvm`` that does not work is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from xenlite.base.errors import HostError, Unsupported
from xenlite.base.files import write_atomic
from xenlite.base.paths import user_cache_dir
from xenlite.base.proc import require_program, run_sync

QEMU_SYSTEM = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"
ACCEL_ENV = "XENLITE_ACCEL"
KVM_DEVICE = Path("/dev/kvm")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

# isa-debug-exit makes QEMU exit with (value << 1) | 1; the payload writes 1.
_DEBUG_EXIT_PORT = 0xF4
_EXPECTED_STATUS = 3
_PAYLOAD_LOAD_ADDRESS = 0x100000
_PAYLOAD_STORE_BASE = 0x200000
_PAYLOAD_STORES = 16 * 1024 * 1024  # 32-bit stores: 64 MiB
_PAYLOAD_MEMORY_MB = 128
_CACHE_FILE = "accel-probe.json"
_CACHE_FORMAT = 1


class Accel(StrEnum):
    """QEMU's ``-accel`` name."""

    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True, slots=True)
class AccelProbe:
    """The accelerator to use and why; ``cached`` when it came from this boot's earlier probe."""

    accel: Accel
    reason: str
    cached: bool = False


def probe_accel(*, timeout: float = 5.0) -> AccelProbe:
    """Pick KVM or TCG for this host, honouring ``XENLITE_ACCEL``.

    :param timeout: how long the KVM test guest may take before KVM counts as unusable
    :raise HostError: when ``XENLITE_ACCEL`` has an unknown value or QEMU is not installed
    :raise Unsupported: when ``XENLITE_ACCEL=kvm`` but KVM does not work here
    """
    forced = os.environ.get(ACCEL_ENV, "").strip().lower()
    if forced not in ("", Accel.KVM, Accel.TCG):
        raise HostError(
            f"environment variable {ACCEL_ENV}",
            f"'{forced}' is not an accelerator xenlite knows",
            f"set {ACCEL_ENV}=kvm or {ACCEL_ENV}=tcg, or unset it to probe",
        )
    if forced == Accel.TCG:
        return AccelProbe(Accel.TCG, f"forced by {ACCEL_ENV}=tcg")
    qemu = require_program(QEMU_SYSTEM, QEMU_PACKAGE)
    result = _cached_probe(qemu)
    if result is None:
        result = _probe_kvm(qemu, timeout)
        _store_probe(qemu, result)
    if forced == Accel.KVM:
        if result.accel is not Accel.KVM:
            raise Unsupported(
                "KVM",
                f"{ACCEL_ENV}=kvm but KVM is not usable on this host: {result.reason}",
                f"unset {ACCEL_ENV} (or set it to tcg) to run guests under TCG",
            )
        return AccelProbe(Accel.KVM, f"forced by {ACCEL_ENV}=kvm; {result.reason}", result.cached)
    return result


def probe_payload() -> bytes:
    """The multiboot (a.out kludge) image the KVM probe boots.

    Entered in 32-bit protected mode at 1 MiB + 32, it stores a counter into every dword
    from 2 MiB up to 66 MiB, then writes 1 to the isa-debug-exit port and halts.
    """
    magic, flags = 0x1BADB002, 0x00010000  # Multiboot spec 3.1.1; bit 16: addresses below
    checksum = -(magic + flags) & 0xFFFFFFFF
    entry = _PAYLOAD_LOAD_ADDRESS + 32
    header = struct.pack(
        "<8I", magic, flags, checksum, _PAYLOAD_LOAD_ADDRESS, _PAYLOAD_LOAD_ADDRESS, 0, 0, entry
    )
    code = b"".join(
        (
            b"\xbf" + struct.pack("<I", _PAYLOAD_STORE_BASE),  # mov edi, base
            b"\xb9" + struct.pack("<I", _PAYLOAD_STORES),  # mov ecx, count
            b"\x31\xc0",  # xor eax, eax
            b"\x89\x07",  # loop: mov [edi], eax
            b"\x83\xc7\x04",  # add edi, 4
            b"\x40",  # inc eax
            b"\x49",  # dec ecx
            b"\x75\xf7",  # jnz loop
            b"\xb0\x01",  # mov al, 1
            b"\xe6" + bytes([_DEBUG_EXIT_PORT]),  # out 0xf4, al
            b"\xf4",  # hlt
            b"\xeb\xfd",  # jmp hlt
        )
    )
    return header + code


def _probe_kvm(qemu: Path, timeout: float) -> AccelProbe:
    if not KVM_DEVICE.exists():
        return AccelProbe(Accel.TCG, f"{KVM_DEVICE} does not exist (no KVM in this kernel)")
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return AccelProbe(
            Accel.TCG,
            f"{KVM_DEVICE} is not readable and writable by this user (add it to group kvm)",
        )
    with tempfile.TemporaryDirectory(prefix="xenlite-kvm-probe-") as scratch:
        payload = Path(scratch) / "probe.mb"
        payload.write_bytes(probe_payload())
        argv = [
            os.fspath(qemu),
            "-accel", "kvm",
            "-cpu", "host",
            "-machine", "pc",
            "-m", str(_PAYLOAD_MEMORY_MB),
            "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", "none", "-monitor", "none",
            "-device", f"isa-debug-exit,iobase={_DEBUG_EXIT_PORT:#x},iosize=0x04",
            "-kernel", os.fspath(payload),
        ]  # fmt: skip
        started = time.monotonic()
        try:
            result = run_sync(argv, timeout=timeout, check=False)
        except HostError:
            return AccelProbe(
                Accel.TCG,
                f"a KVM test guest did not finish within {timeout:g} s "
                f"({KVM_DEVICE} exists but guests hang or crawl under it)",
            )
        elapsed = time.monotonic() - started
    if result.returncode != _EXPECTED_STATUS:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        detail = f": {' / '.join(tail)}" if tail else ""
        return AccelProbe(
            Accel.TCG,
            f"a KVM test guest made QEMU exit with status {result.returncode}, "
            f"not {_EXPECTED_STATUS}{detail}",
        )
    return AccelProbe(Accel.KVM, f"a KVM test guest ran to completion in {elapsed:.2f} s")


def _cache_identity(qemu: Path) -> dict[str, object] | None:
    try:
        boot_id = BOOT_ID.read_text().strip()
        info = qemu.stat()
    except OSError:
        return None
    return {
        "format": _CACHE_FORMAT,
        "boot_id": boot_id,
        "qemu": os.fspath(qemu),
        "qemu_mtime_ns": info.st_mtime_ns,
        "qemu_size": info.st_size,
    }


def _cached_probe(qemu: Path) -> AccelProbe | None:
    identity = _cache_identity(qemu)
    if identity is None:
        return None
    try:
        stored = json.loads((user_cache_dir() / _CACHE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("identity") != identity:
        return None
    accel, reason = stored.get("accel"), stored.get("reason")
    if accel not in (Accel.KVM, Accel.TCG) or not isinstance(reason, str):
        return None
    return AccelProbe(Accel(accel), reason, cached=True)


def _store_probe(qemu: Path, probe: AccelProbe) -> None:
    identity = _cache_identity(qemu)
    if identity is None:
        return
    directory = user_cache_dir()
    record = {"identity": identity, "accel": str(probe.accel), "reason": probe.reason}
    # A cache that cannot be written only costs a probe next time.
    with contextlib.suppress(HostError):
        write_atomic(directory / _CACHE_FILE, json.dumps(record).encode())
