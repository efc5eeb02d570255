"""QEMU argv snapshots: each tests/golden/qemu/*.cfg gives the checked-in *.argv next to it.

The binary and its capabilities are fixed here, so the snapshots do not depend on the host's
QEMU. ``UPDATE_GOLDEN=1 pytest tests/golden/test_qemu_argv.py`` rewrites the snapshots; review
the diff before committing it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import QemuHost, build_argv
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.runpaths import RunPaths

DATA = Path(__file__).parent / "qemu"
CONFIGS = sorted(p.name for p in DATA.glob("*.cfg"))
BINARY = QemuBinary(
    path=Path("/usr/bin/qemu-system-x86_64"),
    version=(7, 2, 0),
    version_text="QEMU emulator version 7.2.0",
    machines=frozenset({"q35"}),
    devices=frozenset(
        {
            "pvpanic",
            "virtio-balloon-pci",
            "virtio-blk-pci",
            "pcie-pci-bridge",
            "virtio-scsi-pci",
            "scsi-cd",
        }
    ),
    accels=frozenset({"kvm", "tcg"}),
)
HOSTS = {
    "tcg": QemuHost(BINARY, Accel.TCG, nr_cpus=4),
    "kvm": QemuHost(BINARY, Accel.KVM, nr_cpus=4),
}


def render(argv: list[str]) -> str:
    """One line per option with its value (shell-quoted), so diffs read option by option."""
    lines = [shlex.quote(argv[0])]
    index = 1
    while index < len(argv):
        arg = argv[index]
        if index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            lines.append(f"{shlex.quote(arg)} {shlex.quote(argv[index + 1])}")
            index += 2
        else:
            lines.append(shlex.quote(arg))
            index += 1
    return "\n".join(lines) + "\n"


def test_there_are_golden_configs() -> None:
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("accel", sorted(HOSTS))
@pytest.mark.parametrize("name", CONFIGS)
def test_argv_matches_golden(name: str, accel: str) -> None:
    loaded = load_domain_config(os.fspath(DATA / name), host=HostFacts(nr_cpus=4))
    paths = RunPaths.in_directory(Path("/run/xenlite/qemu/5"), Path("/var/log/xenlite/qemu/5"))
    argv = build_argv(loaded.config, domid=5, host=HOSTS[accel], paths=paths)
    got = render(argv)
    golden = DATA / f"{name.removesuffix('.cfg')}.{accel}.argv"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(got)
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_text()
    # The rendering is lossless: splitting it again gives the argv back.
    assert shlex.split(golden.read_text()) == argv
