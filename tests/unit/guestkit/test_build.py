"""Guest kit building: cache key, module resolution, cache reuse and atomic entries.

The build tests use a local stand-in for the downloaded kernel package (a directory laid out
like Debian's linux-image package, with small ELF modules carrying real .modinfo sections):
the download is the one step that needs the network, and the slow test at the end does it
for real.
"""

from __future__ import annotations

import dataclasses
import gzip
import lzma
import os
import shutil
import struct
from pathlib import Path

import pytest

from xenlite.base.errors import GuestKitError
from xenlite.base.proc import run_sync
from xenlite.guestkit import build
from xenlite.guestkit.build import (
    GUEST_MODULES,
    KitInputs,
    build_from_inputs,
    guest_kit_key,
    modinfo,
    module_name,
    read_module,
    resolve_modules,
)

RELEASE = "6.1.0-99-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
needs_busybox = pytest.mark.skipif(
    not BUSYBOX.is_file(), reason="/bin/busybox is missing (apt-get install busybox-static)"
)


def elf_module(info: dict[str, str]) -> bytes:
    """A minimal little-endian ELF64 relocatable file whose only content is .modinfo."""
    modinfo_data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in info.items())
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    header_size, section_size = 64, 64
    modinfo_offset = header_size
    shstrtab_offset = modinfo_offset + len(modinfo_data)
    shoff = shstrtab_offset + len(shstrtab)
    shoff += -shoff % 8
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, header_size, 0, 0, section_size, 3, 2
    )
    body = header + modinfo_data + shstrtab
    body += bytes(shoff - len(body))

    def section(name: int, kind: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, 0, 0, 1, 0)

    return (
        body
        + section(0, 0, 0, 0)
        + section(1, 1, modinfo_offset, len(modinfo_data))
        + section(10, 3, shstrtab_offset, len(shstrtab))
    )


DEPENDS = {
    "virtio_ring": "",
    "virtio": "virtio_ring",
    "virtio_pci_modern_dev": "",
    "virtio_pci": "virtio_ring,virtio_pci_modern_dev,virtio",
    "virtio_blk": "virtio,virtio_ring",
    "failover": "",
    "net_failover": "failover",
    "virtio_net": "net_failover,virtio,virtio_ring",
    "virtio_balloon": "virtio,virtio_ring",
    "virtio_console": "virtio,virtio_ring",
    "button": "",
    "pvpanic_mmio": "",
    "scsi_common": "",
    "scsi_mod": "scsi_common",
    "virtio_scsi": "scsi_mod,virtio,virtio_ring",
    "cdrom": "",
    "sr_mod": "cdrom,scsi_mod,scsi_common",
    "unrelated": "",
}


def fake_kernel_tree(root: Path, *, builtin: tuple[str, ...] = ("evdev",)) -> Path:
    """A tree shaped like an unpacked linux-image-*-cloud-amd64 package."""
    modules = root / "lib" / "modules" / RELEASE
    for name, depends in DEPENDS.items():
        directory = modules / "kernel" / ("net" if "failover" in name else "drivers")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.ko").write_bytes(elf_module({"name": name, "depends": depends}))
    (modules / "modules.builtin").write_text(
        "".join(f"kernel/drivers/input/{n}.ko\n" for n in builtin)
    )
    (root / "boot").mkdir()
    (root / "boot" / f"vmlinuz-{RELEASE}").write_bytes(b"fake bzImage")
    return root


def inputs(**changes: object) -> KitInputs:
    base = KitInputs(
        kernel_package=f"linux-image-{RELEASE}",
        kernel_package_version="6.1.999-1",
        busybox_version="1:1.35.0-4",
        init_script=b"#!/bin/sh\necho init\n",
        modules=GUEST_MODULES,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class FakeFetcher:
    """Stands in for apt-get download + dpkg-deb -x; counts how often it was asked."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, kit_inputs: KitInputs, workdir: Path) -> Path:
        self.calls += 1
        if self.fail:
            raise GuestKitError("package x", "download failed", "run apt-get update")
        return fake_kernel_tree(workdir / "tree")


# -- cache key ---------------------------------------------------------------------------


def test_key_is_stable_for_equal_inputs() -> None:
    assert guest_kit_key(inputs()) == guest_kit_key(inputs())
    assert len(guest_kit_key(inputs())) == 64
    int(guest_kit_key(inputs()), 16)


@pytest.mark.parametrize(
    "change",
    [
        {"kernel_package": "linux-image-6.1.0-98-cloud-amd64"},
        {"kernel_package_version": "6.1.999-2"},
        {"busybox_version": "1:1.36.1-1"},
        {"init_script": b"#!/bin/sh\necho other\n"},
        {"modules": (*GUEST_MODULES, "virtio_rng")},
        {"modules": tuple(reversed(GUEST_MODULES))},
        {"cpio_writer_version": "999"},
    ],
)
def test_key_changes_when_any_input_changes(change: dict[str, object]) -> None:
    assert guest_kit_key(inputs(**change)) != guest_kit_key(inputs())


def test_shipped_init_script_is_part_of_the_inputs() -> None:
    script = build.init_script()
    assert script.startswith(b"#!/bin/sh")
    assert b"xenlite-guest: ready" in script


# -- modules -----------------------------------------------------------------------------


def test_module_names_follow_the_kernel() -> None:
    assert module_name("kernel/drivers/misc/pvpanic-pci.ko.zst") == "pvpanic_pci"
    assert module_name(Path("virtio_net.ko.xz")) == "virtio_net"
    assert module_name("button.ko") == "button"


def test_modinfo_reads_the_elf_section() -> None:
    info = modinfo(elf_module({"name": "virtio_net", "depends": "virtio,net_failover"}))
    assert info["name"] == "virtio_net"
    assert info["depends"] == "virtio,net_failover"


def test_modinfo_refuses_non_elf_data() -> None:
    with pytest.raises(GuestKitError, match="not an ELF file"):
        modinfo(b"not a module at all, just some text" * 3)


def test_dependencies_load_first_and_builtins_are_skipped(tmp_path: Path) -> None:
    tree = fake_kernel_tree(tmp_path)
    plan = resolve_modules(tree / "lib/modules" / RELEASE, GUEST_MODULES)
    order = [m.name for m in plan.load_order]
    assert plan.builtin == ("evdev",)
    assert "evdev" not in order
    assert "unrelated" not in order
    assert len(order) == len(set(order))
    for module in order:
        for dependency in filter(None, DEPENDS[module].split(",")):
            assert order.index(dependency) < order.index(module), (dependency, module)
    assert set(GUEST_MODULES) - {"evdev"} <= set(order)


def test_modules_dep_is_preferred_when_present(tmp_path: Path) -> None:
    modules = fake_kernel_tree(tmp_path) / "lib/modules" / RELEASE
    # A modules.dep that disagrees with .modinfo shows which one was read.
    (modules / "modules.dep").write_text(
        "kernel/drivers/button.ko: kernel/drivers/unrelated.ko\nkernel/drivers/unrelated.ko:\n"
    )
    plan = resolve_modules(modules, ["button"])
    assert [m.name for m in plan.load_order] == ["unrelated", "button"]


def test_missing_module_names_what_needed_it(tmp_path: Path) -> None:
    modules = fake_kernel_tree(tmp_path) / "lib/modules" / RELEASE
    (modules / "kernel/drivers/virtio_ring.ko").unlink()
    with pytest.raises(GuestKitError, match=r"virtio_ring \(needed by virtio") as caught:
        resolve_modules(modules, ["virtio_blk"])
    assert caught.value.fix is not None


def test_dependency_cycle_is_reported(tmp_path: Path) -> None:
    modules = fake_kernel_tree(tmp_path) / "lib/modules" / RELEASE
    (modules / "kernel/drivers/virtio_ring.ko").write_bytes(
        elf_module({"name": "virtio_ring", "depends": "virtio"})
    )
    with pytest.raises(GuestKitError, match="cycle"):
        resolve_modules(modules, ["virtio"])


def test_compressed_modules_are_decompressed(tmp_path: Path) -> None:
    raw = elf_module({"name": "x", "depends": ""})
    xz = tmp_path / "x.ko.xz"
    xz.write_bytes(lzma.compress(raw, format=lzma.FORMAT_XZ))
    gz = tmp_path / "y.ko.gz"
    gz.write_bytes(gzip.compress(raw))
    assert read_module(xz) == raw
    assert read_module(gz) == raw
    if shutil.which("zstd") is not None:
        plain = tmp_path / "z.ko"
        plain.write_bytes(raw)
        run_sync(["zstd", "-q", plain, "-o", tmp_path / "z.ko.zst"], timeout=30)
        assert read_module(tmp_path / "z.ko.zst") == raw


def test_corrupt_compressed_module_is_a_guest_kit_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ko.xz"
    bad.write_bytes(b"not xz")
    with pytest.raises(GuestKitError, match="cannot be decompressed"):
        read_module(bad)


# -- building and the cache --------------------------------------------------------------


@needs_busybox
def test_build_reuses_the_cache_until_inputs_change(tmp_path: Path) -> None:
    fetch = FakeFetcher()
    cache = tmp_path / "cache"
    first = build_from_inputs(inputs(), cache_root=cache, fetch_kernel=fetch)
    assert not first.cached
    assert first.kernel_version == RELEASE
    assert first.key == guest_kit_key(inputs())
    assert first.kernel.read_bytes() == b"fake bzImage"
    second = build_from_inputs(inputs(), cache_root=cache, fetch_kernel=fetch)
    assert second.cached
    assert (second.kernel, second.initrd, second.key) == (first.kernel, first.initrd, first.key)
    assert fetch.calls == 1
    changed = build_from_inputs(
        inputs(init_script=b"#!/bin/sh\necho new\n"), cache_root=cache, fetch_kernel=fetch
    )
    assert not changed.cached
    assert changed.key != first.key
    assert fetch.calls == 2
    forced = build_from_inputs(inputs(), cache_root=cache, fetch_kernel=fetch, force=True)
    assert not forced.cached
    assert forced.key == first.key
    assert fetch.calls == 3
    # Only finished entries and the lock remain: no temporary directories.
    assert sorted(p.name for p in cache.iterdir()) == sorted([".lock", first.key, changed.key])


@needs_busybox
def test_initramfs_holds_init_busybox_and_modules_in_order(tmp_path: Path) -> None:
    kit = build_from_inputs(inputs(), cache_root=tmp_path, fetch_kernel=FakeFetcher())
    archive = gzip.decompress(kit.initrd.read_bytes())
    listing = run_sync(["cpio", "-itv", "--quiet"], input=archive, timeout=30).stdout.decode()
    names = {line.split(" 1970 ", 1)[1].split(" -> ")[0]: line for line in listing.splitlines()}
    assert names["init"].startswith("-rwxr-xr-x")
    assert names["bin/busybox"].startswith("-rwxr-xr-x")
    assert names["dev/console"].startswith("crw-------")
    assert "-> /bin/busybox" in names["bin/sh"]
    assert "-> /bin/busybox" in names["sbin/acpid"]
    assert f"lib/modules/{RELEASE}/kernel/virtio_net.ko" in names
    extract = tmp_path / "root"
    extract.mkdir()
    run_sync(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames", "init", "lib/modules/*"],
        input=archive,
        timeout=30,
        cwd=extract,
    )
    assert (extract / "init").read_bytes() == inputs().init_script
    load_list = (extract / "lib/modules" / RELEASE / "xenlite-modules").read_text().splitlines()
    loaded = [line.split()[0] for line in load_list]
    assert loaded.index("virtio_ring") < loaded.index("virtio") < loaded.index("virtio_net")
    assert "evdev" not in loaded  # built in
    for line in load_list:
        name, relative = line.split()
        module = extract / "lib/modules" / relative
        assert modinfo(module.read_bytes())["name"] == name


@needs_busybox
def test_build_is_reproducible(tmp_path: Path) -> None:
    one = build_from_inputs(inputs(), cache_root=tmp_path / "a", fetch_kernel=FakeFetcher())
    two = build_from_inputs(inputs(), cache_root=tmp_path / "b", fetch_kernel=FakeFetcher())
    assert one.initrd.read_bytes() == two.initrd.read_bytes()


def test_failed_build_leaves_no_entry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stand_in = tmp_path / "busybox"  # never run: the download fails first
    stand_in.write_bytes(b"")
    with pytest.raises(GuestKitError, match="download failed"):
        build_from_inputs(
            inputs(), cache_root=cache, fetch_kernel=FakeFetcher(fail=True), busybox=stand_in
        )
    assert [p.name for p in cache.iterdir()] == [".lock"]


def test_missing_busybox_is_reported_with_the_package(tmp_path: Path) -> None:
    with pytest.raises(GuestKitError, match="does not exist") as caught:
        build_from_inputs(
            inputs(), cache_root=tmp_path, fetch_kernel=FakeFetcher(), busybox=tmp_path / "nope"
        )
    assert caught.value.fix == "apt-get install busybox-static"


@needs_busybox
def test_out_directory_receives_kernel_and_initrd(tmp_path: Path) -> None:
    out = tmp_path / "out"
    kit = build_from_inputs(
        inputs(), cache_root=tmp_path / "c", fetch_kernel=FakeFetcher(), out=out
    )
    assert kit.kernel == out / "vmlinuz"
    assert kit.initrd == out / "initrd.img"
    cached = build_from_inputs(inputs(), cache_root=tmp_path / "c", fetch_kernel=FakeFetcher())
    assert kit.kernel.read_bytes() == cached.kernel.read_bytes()
    assert kit.initrd.read_bytes() == cached.initrd.read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@needs_busybox
def test_incomplete_entry_is_rebuilt(tmp_path: Path) -> None:
    fetch = FakeFetcher()
    kit = build_from_inputs(inputs(), cache_root=tmp_path, fetch_kernel=fetch)
    kit.initrd.unlink()  # as if someone deleted part of the cache
    again = build_from_inputs(inputs(), cache_root=tmp_path, fetch_kernel=fetch)
    assert not again.cached
    assert again.initrd.is_file()
    assert fetch.calls == 2


# -- apt and dpkg (read-only queries against this host) -----------------------------------

needs_apt = pytest.mark.skipif(
    shutil.which("apt-cache") is None or shutil.which("dpkg-query") is None,
    reason="apt-cache/dpkg-query are missing (not a Debian-based host)",
)


def test_control_parsing_joins_continuation_lines() -> None:
    fields = build._parse_control("Package: a\nDepends: b,\n c\nVersion: 1\n\nPackage: z\n")
    assert fields == {"Package": "a", "Depends": "b,\nc", "Version": "1"}


@needs_apt
def test_unknown_package_says_to_run_apt_get_update() -> None:
    with pytest.raises(GuestKitError, match="apt-cache does not know it") as caught:
        build.resolve_kernel_package("xenlite-no-such-package-anywhere")
    assert caught.value.fix is not None
    assert "apt-get update" in caught.value.fix


@needs_apt
def test_cloud_meta_package_resolves_to_a_real_image_package() -> None:
    try:
        name, version = build.resolve_kernel_package("linux-image-cloud-amd64")
    except GuestKitError as exc:
        pytest.skip(f"apt does not know the cloud kernel here: {exc}")
    assert name.startswith("linux-image-")
    assert name.endswith("-cloud-amd64")
    assert name != "linux-image-cloud-amd64"
    assert version[0].isdigit()


@pytest.mark.slow
@needs_apt
@needs_busybox
def test_real_build_is_cached_on_the_second_call() -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("the guest kit is built for amd64 hosts")
    first = build.build_guest_kit()
    second = build.build_guest_kit()
    assert second.cached
    assert second.key == first.key
    assert second.kernel == first.kernel
    assert first.kernel.stat().st_size > 1_000_000
    assert first.kernel_version.endswith("-cloud-amd64")
