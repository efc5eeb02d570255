"""create-image's parts without a guest: options, the disk made with the real tools (read
back by xenlite's own pygrub reader), the system's files, the xl.cfg, list/delete, and the
command line's refusals."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from xenlite.base.errors import HostError, ProvisionError
from xenlite.boot.disk import DiskWindow, open_disk
from xenlite.boot.filesystems import GuestFilesystem
from xenlite.boot.partitions import partitions
from xenlite.cli.progress import StepDisplay
from xenlite.config.domain.build import build_domain_config
from xenlite.config.xlcfg.grammar import parse
from xenlite.host import lvm
from xenlite.provision import catalog, disk, system, xlconfig
from xenlite.provision.request import (
    DhcpNetwork,
    DirStorage,
    Dist,
    ImageRequest,
    LvmStorage,
    check_hostname,
    check_request,
    parse_size,
    static_network,
)

XENLITE = Path(sys.executable).with_name("xenlite")


def _request(tmp_path: Path, **changes: object) -> ImageRequest:
    values: dict[str, object] = {
        "hostname": "web1",
        "dist": Dist.BUSYBOX,
        "storage": DirStorage(tmp_path / "images"),
        "network": static_network(["10.0.0.5"], None, "10.0.0.1", ["10.0.0.53"]),
        "root_bytes": 64 << 20,
        "swap_bytes": 16 << 20,
        "config_dir": tmp_path / "etc/xen",
    }
    values.update(changes)
    return ImageRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [("4G", 4 << 30), ("512M", 512 << 20), ("512Mb", 512 << 20), ("100", 100 << 20),
     ("64k", 64 << 10)],
)  # fmt: skip
def test_sizes_as_xen_create_image_reads_them(text: str, size: int) -> None:
    assert parse_size("--size", text) == size


def test_bad_values_name_the_option_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"--size '4 gigs'.*is not a size"):
        parse_size("--size", "4 gigs")
    with pytest.raises(ProvisionError, match="is not a host name"):
        check_hostname("-web")
    with pytest.raises(ProvisionError, match="is not an IPv4 address"):
        static_network(["10.0.0.300"], None, None, [])
    with pytest.raises(ProvisionError, match=r"not on the guest's network 10\.0\.0\.0/24"):
        static_network(["10.0.0.5"], None, "10.0.1.1", [])
    with pytest.raises(ProvisionError, match="too small"):
        check_request(_request(tmp_path, root_bytes=16 << 20))


def test_the_layout_is_partitioned_as_sfdisk_reads_it(tmp_path: Path) -> None:
    layout = disk.DiskLayout(64 << 20, 16 << 20)
    image = tmp_path / "disk.img"
    disk.allocate_file(image, layout.total_bytes, sparse=True)
    disk.write_partition_table(image, layout)
    dump = subprocess.run(["sfdisk", "-d", str(image)], capture_output=True, text=True).stdout
    assert "start=        2048, size=      131072, type=83, bootable" in dump
    assert "start=      133120, size=       32768, type=82" in dump
    with pytest.raises(ProvisionError, match="already exists"):
        disk.allocate_file(image, 1 << 20, sparse=True)


def test_the_root_filesystem_and_swap_are_where_the_table_says(tmp_path: Path) -> None:
    layout = disk.DiskLayout(64 << 20, 16 << 20)
    image = tmp_path / "disk.img"
    disk.allocate_file(image, layout.total_bytes, sparse=True)
    disk.write_partition_table(image, layout)
    tree = tmp_path / "tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "boot/grub/grub.cfg").write_text("set default=0\n")
    root_uuid, swap_uuid = uuid.uuid4(), uuid.uuid4()
    disk.make_root_filesystem(image, layout, kind="ext4", fs_uuid=root_uuid, source=tree)
    disk.make_swap(image, layout, swap_uuid=swap_uuid)
    opened = open_disk(image)
    try:
        found = partitions(opened)
        # pygrub's reader passes over the swap partition (type 82): no filesystem there.
        assert [(p.number, p.offset) for p in found] == [(1, layout.root_start)]
        fs = GuestFilesystem(DiskWindow(opened, found[0].offset, found[0].size), "partition 1")
        assert fs.read("/boot/grub/grub.cfg") == b"set default=0\n"
    finally:
        opened.close()
    swap = _blkid(image, layout.swap_start)
    assert "TYPE=swap" in swap
    assert f"UUID={swap_uuid}" in swap
    root = _blkid(image, layout.root_start)
    assert "TYPE=ext4" in root
    assert f"UUID={root_uuid}" in root


def _blkid(image: Path, offset: int) -> str:
    """What blkid's low-level probe finds at ``offset`` of ``image`` (KEY=value lines)."""
    return subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-o", "export", str(image)],
        capture_output=True,
        text=True,
    ).stdout


def test_the_system_files_say_what_was_asked(tmp_path: Path) -> None:
    request = _request(tmp_path)
    assert system.interfaces(request).splitlines()[4:] == [
        "auto eth0",
        "iface eth0 inet static",
        "\taddress 10.0.0.5",
        "\tnetmask 255.255.255.0",
        "\tgateway 10.0.0.1",
    ]
    two = _request(tmp_path, network=static_network(["10.0.0.5", "10.0.0.6"], None, None, []))
    assert "\tup ip addr add 10.0.0.6/24 dev eth0" in system.interfaces(two)
    dhcp = _request(tmp_path, network=DhcpNetwork())
    assert "iface eth0 inet dhcp\n\thostname web1\n" in system.interfaces(dhcp)
    root_uuid = uuid.uuid4()
    fstab = system.fstab(request, root_uuid, None)
    assert f"UUID={root_uuid} / ext4 errors=remount-ro 0 1" in fstab
    assert "swap" not in fstab
    boot = system.BootFiles("6.1", "/boot/vmlinuz-6.1", "/boot/initrd.img-6.1",
                            system.kernel_cmdline(root_uuid))  # fmt: skip
    menu = system.grub_menu(request, boot, root_uuid, "busybox")
    assert f"\tlinux /boot/vmlinuz-6.1 root=UUID={root_uuid} ro console=ttyS0\n" in menu


def test_the_busybox_tree_has_init_and_every_applet(tmp_path: Path) -> None:
    if not system.BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    kernel, initrd = tmp_path / "k", tmp_path / "i"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    tree = tmp_path / "tree"
    tree.mkdir()
    boot = system.stage_busybox(
        tree, _request(tmp_path), kernel=kernel, initrd=initrd, release="6.1",
        applets=["sbin/init", "bin/sh", "sbin/ifup"], root_uuid=uuid.uuid4(), swap_uuid=None,
    )  # fmt: skip
    assert (tree / "sbin/init").readlink() == Path("/bin/busybox")
    assert (tree / "etc/inittab").read_text().startswith("# /etc/inittab")
    assert (tree / "etc/init.d/rcS").stat().st_mode & 0o111
    assert (tree / "etc/hostname").read_text() == "web1\n"
    assert (tree / "etc/resolv.conf").read_text() == "nameserver 10.0.0.53\n"
    assert (tree / boot.kernel.lstrip("/")).read_bytes() == b"kernel"
    assert (tree / "tmp").stat().st_mode & 0o1777 == 0o1777


def test_the_config_is_one_xl_reads_as_asked(tmp_path: Path) -> None:
    request = _request(tmp_path, mac="00:16:3e:01:02:03", bridge="xenbr0", pygrub=True)
    text = xlconfig.render(request, "/images/domains/web1/disk.img", None)
    config = build_domain_config(parse(text, "web1.cfg")).config
    assert config.c_info.name == "web1"
    assert config.b_info.target_memkb == 256 * 1024
    assert config.disks[0].pdev_path == "/images/domains/web1/disk.img"
    assert (config.nics[0].ip, config.nics[0].mac, config.nics[0].bridge) == (
        "10.0.0.5", "00:16:3e:01:02:03", "xenbr0")  # fmt: skip
    assert 'bootloader = "pygrub"' in text
    direct = xlconfig.DirectBoot(Path("/b/vmlinuz"), Path("/b/initrd.img"), "root=UUID=1 ro")
    text = xlconfig.render(_request(tmp_path, network=DhcpNetwork()), "/d.img", direct)
    assert 'dhcp = "dhcp"' in text
    assert 'kernel = "/b/vmlinuz"' in text
    with pytest.raises(ProvisionError, match="xl would refuse it"):
        xlconfig.write_config(request, tmp_path / "bad.cfg", text + "memory = [ 1 ]\n")
    assert not (tmp_path / "bad.cfg").exists()


def test_list_and_delete_read_back_what_create_writes(tmp_path: Path) -> None:
    request = _request(tmp_path, mac="00:16:3e:01:02:03")
    home = request.home
    home.mkdir(parents=True)
    (home / "disk.img").write_bytes(b"")
    xlconfig.write_config(
        request, request.config_path, xlconfig.render(request, str(home / "disk.img"), None)
    )
    dhcp = _request(tmp_path, hostname="db1", network=DhcpNetwork())
    xlconfig.write_config(dhcp, dhcp.config_path, xlconfig.render(dhcp, "/x/db1.img", None))
    (request.config_dir / "xl.conf").write_text("autoballoon=0\n")
    entries, unreadable = catalog.list_images(request.config_dir)
    assert unreadable == []
    assert [e.describe() for e in entries] == [
        f"Name: db1\nMemory: 256 MB\nDHCP\nConfig: {dhcp.config_path}",
        f"Name: web1\nMemory: 256 MB\nIP: 10.0.0.5 [MAC: 00:16:3e:01:02:03]\n"
        f"Config: {request.config_path}",
    ]
    assert catalog.storage_of(entries[1], "web1") == DirStorage(tmp_path / "images")
    said = catalog.delete_image("web1", request.config_dir, None)
    assert said == [f"Deleting: {request.config_path}", f"Removing: {home}"]
    assert not home.exists()
    assert not request.config_path.exists()
    with pytest.raises(ProvisionError, match="there is no image of that name"):
        catalog.delete_image("web1", request.config_dir, None)


def test_lvm_without_device_mapper_is_refused_saying_so() -> None:
    if lvm.has_device_mapper():
        pytest.skip("this host has device-mapper: lvcreate would really run")
    with pytest.raises(HostError, match="no device-mapper"):
        lvm.create_volume("vg0", "web1-disk", 64 << 20)


def test_steps_are_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    display = StepDisplay(out, live=False)
    with display.step("Partitioning"):
        pass
    with pytest.raises(RuntimeError), display.step("Making swap"):
        raise RuntimeError("boom")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Partitioning ... done (")
    assert lines[1].startswith("Making swap ... failed (")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--dir", "/tmp/x"], "--hostname is required"),
        (["--hostname", "a"], "give one of --dir DIR"),
        (["--hostname", "a", "--dir", "/x", "--lvm", "vg"], "give one of --dir DIR"),
        (["--hostname", "a", "--dir", "/x", "--ip", "10.0.0.2", "--dhcp"], "exclude each other"),
        (["--hostname", "a", "--dir", "/x", "--dist", "sid"], "is not one of busybox"),
        (
            ["--hostname", "a", "--dir", "/x", "--dist", "bookworm", "--size", "512M"],
            "too small for Debian bookworm",
        ),
        (["--hostname", "a", "--dir", "/x", "--cache", "maybe"], "is not yes or no"),
    ],
)
def test_create_image_refusals(tmp_path: Path, args: list[str], said: str) -> None:
    done = subprocess.run(
        [str(XENLITE), "create-image", *args], capture_output=True, text=True, timeout=60,
        env={"XENLITE_ROOT": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "etc/xen").exists()


def test_lvm_storage_is_told_apart_from_files(tmp_path: Path) -> None:
    entry = catalog.ImageEntry(tmp_path / "a.cfg", "a", 1, None, None, False, ("/dev/vg0/a-disk",))
    assert catalog.storage_of(entry, "a") == LvmStorage("vg0")
