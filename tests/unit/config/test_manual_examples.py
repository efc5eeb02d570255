"""The examples of xl.cfg(5) and Xen's xlexample files give the values the manual describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.config.domain.build import HostFacts, LoadedDomain, load_domain_config
from xenlite.config.domain.model import (
    Action,
    DiskFormat,
    DomainType,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
)

# The manual's CPU examples assume a bigger host than the corpus's 8 CPUs.
HOST = HostFacts(nr_cpus=32)


def load(tmp_path: Path, text: str, host: HostFacts = HOST) -> LoadedDomain:
    path = tmp_path / "guest.cfg"
    path.write_text(text)
    return load_domain_config(str(path), host=host)


def test_syntax_examples_are_equivalent(tmp_path: Path) -> None:
    # xl.cfg(5) SYNTAX: newline- and ';'-separated forms mean the same
    a = load(tmp_path, 'name="h0"\ntype="hvm"\n').config
    b = load(tmp_path, 'name="h0"; type="hvm"\n').config
    assert a == b
    assert a.c_info.name == "h0"
    assert a.c_info.type == DomainType.HVM
    assert isinstance(a.b_info.u, HvmBuildInfo)


def test_memory_is_mbytes(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name="g"\nkernel="/k"\nmemory=512\n').config
    assert cfg.b_info.target_memkb == 524288
    assert cfg.b_info.max_memkb == 524288  # maxmem defaults to memory


def test_maxmem_above_memory_starts_ballooned(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name="g"\nkernel="/k"\nmemory=8096\nmaxmem=262144\n').config
    assert cfg.b_info.target_memkb == 8096 * 1024
    assert cfg.b_info.max_memkb == 262144 * 1024
    assert cfg.b_info.max_memkb > cfg.b_info.target_memkb


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        ('"all"', frozenset(range(32))),
        ('"0-3,5,^1"', frozenset({0, 2, 3, 5})),
        ('"all,^7"', frozenset(range(32)) - {7}),
        ('"all,^5-8"', frozenset(range(32)) - {5, 6, 7, 8}),
    ],
)
def test_cpus_string_forms_apply_to_every_vcpu(
    tmp_path: Path, cpus: str, expected: frozenset[int]
) -> None:
    cfg = load(tmp_path, f'name="g"\nkernel="/k"\nvcpus=4\ncpus={cpus}\n').config
    assert cfg.b_info.vcpu_hard_affinity == (expected,) * 4


def test_cpus_list_maps_each_vcpu(tmp_path: Path) -> None:
    # ["2", "3-8,^5"]: vCPU 0 on CPU 2, vCPU 1 on CPUs 3, 4, 6, 7, 8
    cfg = load(tmp_path, 'name="g"\nkernel="/k"\nvcpus=2\ncpus=["2", "3-8,^5"]\n').config
    assert cfg.b_info.vcpu_hard_affinity == (frozenset({2}), frozenset({3, 4, 6, 7, 8}))


def test_nodes_form_on_one_node_host(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name="g"\nkernel="/k"\nvcpus=1\ncpus="nodes:0"\n').config
    assert cfg.b_info.vcpu_hard_affinity == (frozenset(range(32)),)


def test_on_actions_defaults_and_names(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name="g"\nkernel="/k"\n').config
    # defaults: destroy / restart / destroy / destroy / soft-reset
    assert cfg.on_poweroff == Action.DESTROY
    assert cfg.on_reboot == Action.RESTART
    assert cfg.on_watchdog == Action.DESTROY
    assert cfg.on_crash == Action.DESTROY
    assert cfg.on_soft_reset == Action.SOFT_RESET
    text = 'name="g"\nkernel="/k"\non_poweroff="preserve"\non_reboot="rename-restart"\n'
    text += 'on_watchdog="coredump-restart"\non_crash="coredump-destroy"\n'
    cfg = load(tmp_path, text).config
    assert cfg.on_poweroff == Action.PRESERVE
    assert cfg.on_reboot == Action.RESTART_RENAME
    assert cfg.on_watchdog == Action.COREDUMP_RESTART
    assert cfg.on_crash == Action.COREDUMP_DESTROY


def _xlexample(shared_dir: Path, name: str) -> LoadedDomain:
    path = shared_dir / "corpus" / "xlcfg" / f"xen-project_xen__tools_examples_{name}"
    return load_domain_config(str(path), host=HostFacts(nr_cpus=8))


def test_xlexample_pvlinux(shared_dir: Path) -> None:
    cfg = _xlexample(shared_dir, "xlexample.pvlinux").config
    assert cfg.c_info.name == "example.pvlinux"
    assert isinstance(cfg.b_info.u, PvBuildInfo)
    assert cfg.b_info.kernel == "/boot/vmlinuz"
    assert cfg.b_info.cmdline == "root=/dev/xvda1"  # extra= becomes the command line
    assert cfg.b_info.target_memkb == 128 * 1024
    assert cfg.b_info.max_vcpus == 2
    assert cfg.b_info.avail_vcpus == frozenset({0, 1})
    # vif = [ '' ]: one nic with every default (bridge, script chosen later)
    assert len(cfg.nics) == 1
    assert cfg.nics[0].devid == 0
    assert cfg.nics[0].bridge is None
    # '/dev/vg/guest-volume,raw,xvda,rw'
    assert cfg.disks[0].pdev_path == "/dev/vg/guest-volume"
    assert cfg.disks[0].format == DiskFormat.RAW
    assert cfg.disks[0].vdev == "xvda"
    assert cfg.disks[0].readwrite == 1


def test_xlexample_pvhlinux(shared_dir: Path) -> None:
    cfg = _xlexample(shared_dir, "xlexample.pvhlinux").config
    assert cfg.c_info.type == DomainType.PVH
    assert isinstance(cfg.b_info.u, PvhBuildInfo)
    assert cfg.b_info.target_memkb == 512 * 1024
    assert cfg.b_info.avail_vcpus == frozenset(range(4))


def test_xlexample_hvm(shared_dir: Path) -> None:
    loaded = _xlexample(shared_dir, "xlexample.hvm")
    cfg = loaded.config
    assert cfg.c_info.type == DomainType.HVM
    assert isinstance(cfg.b_info.u, HvmBuildInfo)
    assert cfg.b_info.u.sdl.enable is True  # sdl = 1
    assert cfg.b_info.u.vnc.enable is None  # #vnc = 1 is commented out
    assert cfg.c_info.uuid is None  # the default is a new UUID at each start
    assert cfg.b_info.target_memkb == 128 * 1024
    assert loaded.warnings == ()


def test_xmexample_hvm_legacy_keys(shared_dir: Path) -> None:
    loaded = _xlexample(shared_dir, "xmexample.hvm")
    cfg = loaded.config
    u = cfg.b_info.u
    assert isinstance(u, HvmBuildInfo)
    assert cfg.c_info.type == DomainType.HVM  # builder='hvm'
    assert cfg.b_info.kernel is None  # kernel = "hvmloader" is ignored
    assert u.vnc.enable is True
    assert u.vnc.passwd == ""
    assert u.sdl.opengl is True
    assert u.serial == "pty"
    assert cfg.nics[0].bridge == "xenbr0"
    assert cfg.disks[1].is_cdrom == 1
