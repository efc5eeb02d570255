"""bootloader = "pygrub" on real guests: the guest kit's kernel and initramfs found inside the
guest's own disk (a partitioned ext4 image with GRUB 2, GRUB legacy on FAT, extlinux on an
ISO 9660 image, a compressed qcow2), booted to the ready marker with the entry's command
line; pygrub runs again on reboot; a disk without a kernel fails the create and leaves
nothing behind, also when the daemon dies right after the bootloader ran."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bootimages import Part, ext_fs, fat_fs, iso_fs, partitioned, qcow2, tree
from guestshell import GuestShell
from hoststate import host_state

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

GRUB2 = """\
set default="{default}"
set timeout=5
menuentry 'Debian GNU/Linux' --class debian {{
    insmod ext2
    set root='hd0,msdos1'
    linux /boot/vmlinuz-kit console=ttyS0 marker=first
    initrd /boot/initrd.img-kit
}}
menuentry 'Debian GNU/Linux, second' {{
    linux /vmlinuz console=ttyS0 marker=second
    initrd /boot/initrd.img-kit
}}
"""


def _kit_files(host: Any) -> dict[str, bytes | str]:
    return {
        "/boot/vmlinuz-kit": host.kernel.read_bytes(),
        "/boot/initrd.img-kit": host.initrd.read_bytes(),
    }


def _grub2_disk(host: Any, work: Path, default: str = "0") -> Path:
    files = {**_kit_files(host), "/boot/grub/grub.cfg": GRUB2.format(default=default)}
    source = tree(work / "root", files, {"/vmlinuz": "boot/vmlinuz-kit"})
    fs = ext_fs(work / "root.ext4", source, size_mib=96)
    image = partitioned(work / "disk.img", [Part("83", 100, fs)])
    (work / "root.ext4").unlink()
    shutil.rmtree(source)
    return image


def _config(host: Any, name: str, disk: str, *lines: str) -> Path:
    path = host.root / f"{name}.cfg"
    body = [
        f'name = "{name}"',
        'bootloader = "pygrub"',
        "memory = 96",
        f"disk = [ '{disk}' ]",
        *lines,
    ]
    path.write_text("\n".join(body) + "\n")
    return path


def _cmdline(host: Any, name: str) -> str:
    with GuestShell(host, name) as guest:
        status, said = guest.run("cat /proc/cmdline")
    assert status == 0, said
    return said.strip()


def _leftovers(host: Any) -> list[Path]:
    return sorted(host.root.glob("run/xenlite/**/boot_*"))


def test_grub2_on_a_partitioned_ext4_disk_and_again_on_reboot(
    live_host: Any, tmp_path: Path
) -> None:
    before = host_state(live_host.root)
    image = _grub2_disk(live_host, tmp_path)
    config = _config(live_host, "grubbed", f"file:{image},xvda,r", 'extra = "from_config=1"')
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("grubbed")
        # The entry's arguments, then the config's (libxl passes them as --args).
        assert _cmdline(live_host, "grubbed").endswith("console=ttyS0 marker=first from_config=1")
        assert _leftovers(live_host) == []  # QEMU has read the copies: they are gone
        listed = json.loads(live_host.xl("list", "-l", "grubbed").stdout)[0]
        assert listed["config"]["b_info"]["bootloader"] == "pygrub"
        assert "kernel" not in listed["config"]["b_info"]  # the next boot runs pygrub again
        assert listed["bootloader"] == {
            "bootloader": "pygrub",
            "disk": f"disk xvda ({image})",
            "partition": "partition 1 (msdos, at byte 1048576)",
            "config": "/boot/grub/grub.cfg",
            "entry": 0,
            "title": "Debian GNU/Linux",
            "kernel": "/boot/vmlinuz-kit",
            "ramdisk": "/boot/initrd.img-kit",
            "args": "console=ttyS0 marker=first from_config=1",
        }
        dmesg = live_host.xl("dmesg").stdout
        assert "pygrub: disk xvda" in dmesg
        assert "entry 0 'Debian GNU/Linux': kernel /boot/vmlinuz-kit" in dmesg
        # A new default in the guest's grub.cfg is what the next boot runs, as under Xen.
        _grub2_disk(live_host, tmp_path / "second", default="1").replace(image)
        assert live_host.xl("reboot", "-w", "grubbed", timeout=90).returncode == 0
        live_host.wait_ready("grubbed", count=2)
        assert _cmdline(live_host, "grubbed").endswith("marker=second from_config=1")
    finally:
        live_host.xl("destroy", "grubbed")
    assert host_state(live_host.root) == before


@pytest.mark.parametrize("kind", ["grub-on-fat", "extlinux-on-iso", "qcow2"])
def test_other_filesystems_and_formats(live_host: Any, tmp_path: Path, kind: str) -> None:
    before = host_state(live_host.root)
    files = _kit_files(live_host)
    if kind == "grub-on-fat":
        files["/boot/grub/menu.lst"] = (
            "default 0\ntimeout 3\ntitle kit\n  root (hd0,0)\n"
            "  kernel /boot/vmlinuz-kit console=ttyS0 marker=legacy\n"
            "  initrd /boot/initrd.img-kit\n"
        )
        fs = fat_fs(tmp_path / "boot.fat", tree(tmp_path / "root", files), size_mib=96)
        disk = f"file:{partitioned(tmp_path / 'disk.img', [Part('c', 100, fs)])},xvda,r"
        marker = "marker=legacy"
    elif kind == "extlinux-on-iso":
        files["/boot/isolinux/isolinux.cfg"] = (
            "DEFAULT kit\nLABEL kit\n  LINUX /boot/vmlinuz-kit\n  INITRD /boot/initrd.img-kit\n"
            "  APPEND console=ttyS0 marker=extlinux\n"
        )
        disk = f"{iso_fs(tmp_path / 'cd.iso', tree(tmp_path / 'root', files))},raw,xvda,r"
        marker = "marker=extlinux"
    else:
        raw = _grub2_disk(live_host, tmp_path)
        disk = f"format=qcow2,vdev=xvda,access=r,target={qcow2(tmp_path / 'disk.qcow2', raw)}"
        raw.unlink()
        marker = "marker=first"
    # Each case its own name: the console log of a name is kept across domains, and a
    # ready line left by the previous case would be taken for this guest's.
    name = kind.replace("-", "")
    created = live_host.xl("create", str(_config(live_host, name, disk)))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready(name)
        assert _cmdline(live_host, name).endswith(marker)
    finally:
        live_host.xl("destroy", name)
    assert host_state(live_host.root) == before


def test_a_disk_without_a_kernel_fails_the_create_and_leaves_nothing(
    live_host: Any, tmp_path: Path
) -> None:
    before = host_state(live_host.root)
    empty = ext_fs(tmp_path / "empty.ext4", tree(tmp_path / "root", {"/etc/hostname": "x\n"}))
    refused = live_host.xl("create", str(_config(live_host, "nokernel", f"{empty},raw,xvda,r")))
    assert refused.returncode != 0
    assert f"disk xvda ({empty}): no bootable kernel found: the whole disk: ext2/3/4" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert host_state(live_host.root) == before
    # Another bootloader program is refused by name.
    other = _config(live_host, "other", f"{empty},raw,xvda,r", 'bootloader = "/usr/bin/pvgrub"')
    refused = live_host.xl("create", str(other))
    assert refused.returncode != 0
    assert "runs no other bootloader program" in refused.stderr
    assert host_state(live_host.root) == before


def test_a_daemon_killed_after_the_bootloader_leaves_nothing(
    live_host: Any, tmp_path: Path
) -> None:
    before = host_state(live_host.root)
    image = _grub2_disk(live_host, tmp_path)
    live_host.stop_xenlited()
    live_host.start(crash_at="create:bootloader-ran")
    config = _config(live_host, "cut", f"file:{image},xvda,r")
    assert live_host.xl("create", str(config)).returncode != 0
    live_host.start()
    assert _leftovers(live_host) == []
    assert host_state(live_host.root) == before


def test_the_seeds_pygrub_guest(live_host: Any, tmp_path: Path) -> None:
    # seeds/000: bootloader = "/usr/bin/pygrub" in the DomU config; seeds/002: the guest's
    # own GRUB legacy menu.lst, root (hd0,0), set up "as you normally would", on ext3.
    before = host_state(live_host.root)
    files = {
        "/boot/vmlinuz-2.6.29.3": live_host.kernel.read_bytes(),
        "/boot/initrd-2.6.29.3.img": live_host.initrd.read_bytes(),
        "/boot/grub/menu.lst": "default 0\ntimeout 5\n\ntitle kernel.org paravirt DomU\n"
        "\troot (hd0,0)\n\tkernel /boot/vmlinuz-2.6.29.3 root=LABEL=DISK1 ro console=ttyS0\n"
        "\tinitrd /boot/initrd-2.6.29.3.img\n",
    }
    fs = ext_fs(tmp_path / "root.ext3", tree(tmp_path / "root", files), kind="ext3", size_mib=64)
    image = partitioned(tmp_path / "disk.img", [Part("83", 64, fs)])
    config = live_host.root / "seed.cfg"
    config.write_text(
        'name = "seed"\nbootloader = "/usr/bin/pygrub"\nmemory = 96\n'
        f"disk = [ 'file:{image},xvda,w' ]\n"
    )
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("seed")
        assert _cmdline(live_host, "seed").endswith("root=LABEL=DISK1 ro console=ttyS0")
        dmesg = live_host.xl("dmesg").stdout
        assert "bootloader='/usr/bin/pygrub' is deprecated; use bootloader='pygrub'" in dmesg
        assert "entry 0 'kernel.org paravirt DomU'" in dmesg
    finally:
        live_host.xl("destroy", "seed")
    assert host_state(live_host.root) == before
