"""Finding QEMU and reading what it offers, with a stand-in binary that counts its runs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xenlite.base.errors import HostError, Unsupported
from xenlite.qemu import binary
from xenlite.qemu.binary import (
    find_qemu,
    parse_accels,
    parse_devices,
    parse_machines,
    parse_version,
    probe_binary,
)

MACHINE_HELP = """Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
"""
DEVICE_HELP = """Controller/Bridge/Hub devices:
name "pcie-root-port", bus PCI, desc "PCI Express Root Port"

Misc devices:
name "pvpanic", bus ISA
name "virtio-balloon-pci", bus PCI, alias "virtio-balloon"
"""


def fake_qemu(tmp_path: Path, version: str = "7.2.22") -> tuple[Path, Path]:
    """A shell script answering like qemu-system-x86_64; each run appends to a counter file."""
    counter = tmp_path / "runs"
    script = tmp_path / "qemu-system-x86_64"
    (tmp_path / "machines").write_text(MACHINE_HELP)
    (tmp_path / "devices").write_text(DEVICE_HELP)
    script.write_text(
        "#!/bin/sh\n"
        f"echo run >> {counter}\n"
        'case "$1" in\n'
        f"-version) echo 'QEMU emulator version {version} (Debian 1:7.2+dfsg-7)';;\n"
        f"-machine) cat {tmp_path}/machines;;\n"
        f"-device) cat {tmp_path}/devices;;\n"
        "-accel) printf 'Accelerators supported in QEMU binary:\\ntcg\\nkvm\\n';;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, counter


def test_parsers() -> None:
    assert parse_version("QEMU emulator version 7.2.22 (Debian)\n") == (7, 2, 22)
    assert parse_version("QEMU emulator version 8.1\n") == (8, 1, 0)
    assert parse_version("something else") is None
    machines = parse_machines(MACHINE_HELP)
    assert {"q35", "pc-q35-7.2", "pc", "microvm"} <= machines
    assert "Supported" not in machines
    assert parse_devices(DEVICE_HELP) == {
        "pcie-root-port",
        "pvpanic",
        "virtio-balloon-pci",
        "virtio-balloon",
    }
    assert parse_accels("Accelerators supported in QEMU binary:\ntcg\nkvm\n") == {"tcg", "kvm"}


def test_probe_caches_in_memory_and_on_disk(tmp_path: Path) -> None:
    script, counter = fake_qemu(tmp_path)
    cache = tmp_path / "cache"
    first = probe_binary(script, cache_dir=cache)
    assert first.version == (7, 2, 22)
    assert first.has_machine("q35")
    assert first.has_device("pvpanic")
    assert first.accels == {"tcg", "kvm"}
    runs = counter.read_text().count("run")
    assert runs == 4
    assert probe_binary(script, cache_dir=cache) == first
    binary._memory_cache.clear()
    assert probe_binary(script, cache_dir=cache) == first  # from disk
    assert counter.read_text().count("run") == runs


def test_a_changed_binary_is_asked_again(tmp_path: Path) -> None:
    script, counter = fake_qemu(tmp_path)
    cache = tmp_path / "cache"
    probe_binary(script, cache_dir=cache)
    script.write_text(script.read_text().replace("7.2.22", "8.0.1") + "\n# upgraded\n")
    os.utime(script, ns=(1, 1))
    assert probe_binary(script, cache_dir=cache).version == (8, 0, 1)
    assert counter.read_text().count("run") == 8


def test_require_names_the_package(tmp_path: Path) -> None:
    script, _ = fake_qemu(tmp_path)
    found = probe_binary(script, cache_dir=tmp_path / "cache")
    with pytest.raises(Unsupported, match="no-such-device") as info:
        found.require_device("no-such-device")
    assert "apt-get install qemu-system-x86" in (info.value.fix or "")
    with pytest.raises(Unsupported, match="virt"):
        found.require_machine("virt")


def test_not_qemu_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "fake"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    with pytest.raises(HostError, match="QEMU version"):
        probe_binary(script, cache_dir=tmp_path / "cache")


def test_find_qemu_override(tmp_path: Path) -> None:
    script, _ = fake_qemu(tmp_path)
    assert find_qemu(os.fspath(script)) == script
    with pytest.raises(HostError, match="not an absolute path"):
        find_qemu("qemu")
    with pytest.raises(HostError, match="not an executable file") as info:
        find_qemu(os.fspath(tmp_path / "missing"))
    assert "qemu-system-x86" in (info.value.fix or "")


def test_find_qemu_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, _ = fake_qemu(tmp_path)
    monkeypatch.setenv("PATH", os.fspath(tmp_path))
    assert find_qemu() == script
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "empty"))
    monkeypatch.setattr("xenlite.base.proc.shutil.which", lambda name, path=None: None)
    with pytest.raises(HostError, match="not found") as info:
        find_qemu()
    assert "apt-get install qemu-system-x86" in (info.value.fix or "")
