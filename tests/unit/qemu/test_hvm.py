"""HVM domains on QEMU: firmware, boot order, emulated disks and NICs, display and VNC, the
serial console, USB and clocks, from xl.cfg keys to QEMU's command line."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError, HostError, Unsupported
from xenlite.config.domain.build import build_domain_config
from xenlite.config.domain.model import DomainConfig, HvmBuildInfo
from xenlite.config.specs.disk import vdev_to_devid
from xenlite.config.xlcfg.grammar import parse_with_overrides
from xenlite.qemu import hvm
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import QemuHost, _rtc_option, build_argv
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.blockdev import BlockDisk
from xenlite.qemu.netdev import GuestNic
from xenlite.qemu.runpaths import RunPaths

BINARY = QemuBinary(
    path=Path("/usr/bin/qemu-system-x86_64"),
    version=(7, 2, 0),
    version_text="QEMU emulator version 7.2.0",
    machines=frozenset({"q35", "pc"}),
    devices=frozenset(
        {
            "pvpanic",
            "virtio-balloon-pci",
            "virtio-blk-pci",
            "pci-bridge",
            "pcie-pci-bridge",
            "virtio-scsi-pci",
            "scsi-cd",
            "virtio-net-pci",
            "rtl8139",
            "e1000",
            "cirrus-vga",
            "VGA",
            "ich9-ahci",
            "piix3-usb-uhci",
            "usb-ehci",
            "usb-tablet",
        }
    ),
    accels=frozenset({"kvm", "tcg"}),
)
TCG = QemuHost(BINARY, Accel.TCG, nr_cpus=2)
PATHS = RunPaths.in_directory(Path("/run/xenlite/qemu/9"))
HVM = 'name="h"\ntype="hvm"\nmemory=256\n'


def config(text: str) -> DomainConfig:
    return build_domain_config(parse_with_overrides(text, "h.cfg", [])).config


def info(text: str) -> HvmBuildInfo:
    u = config(HVM + text).b_info.u
    assert isinstance(u, HvmBuildInfo)
    return u


def disk(vdev: str, *, cdrom: bool = False, path: str = "/srv/x.img") -> BlockDisk:
    number = vdev_to_devid(vdev)
    return BlockDisk(number=number, vdev=vdev, path=path, host_device=False, driver="raw",
                     read_only=cdrom, discard=False, direct=False, cdrom=cdrom)  # fmt: skip


def argv_of(text: str, **kwargs: object) -> list[str]:
    return build_argv(config(HVM + text), domid=9, host=TCG, paths=PATHS, **kwargs)  # type: ignore[arg-type]


def after(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_default_hvm_guest_boots_seabios_on_xens_chipset_with_cirrus_and_vnc() -> None:
    argv = argv_of("")
    assert after(argv, "-machine") == ["pc"]
    assert not {"-kernel", "-bios", "-nographic"} & set(argv)
    assert after(argv, "-vnc") == ["127.0.0.1:0,to=99"]
    assert "cirrus-vga" in after(argv, "-device")
    assert "pci-bridge,id=vbdbridge,bus=pci.0,addr=0x10,chassis_nr=1" in after(argv, "-device")
    assert "pci-bridge,id=vifbridge,bus=pci.0,addr=0x11,chassis_nr=2" in after(argv, "-device")
    assert after(argv, "-serial") == []  # no serial= : no serial port, as on Xen


def test_serial_pty_is_the_console() -> None:
    assert after(argv_of('serial="pty"\n'), "-serial") == ["chardev:serial0"]
    assert after(argv_of('serial=["pty"]\n'), "-serial") == ["chardev:serial0"]
    with pytest.raises(Unsupported, match="serial"):
        argv_of('serial="tcp:127.0.0.1:4555"\n')


def test_ovmf_maps_code_read_only_and_the_domains_own_variables() -> None:
    argv = argv_of('bios="ovmf"\n')
    assert after(argv, "-drive") == [
        f"if=pflash,format=raw,unit=0,readonly=on,file={hvm.OVMF_CODE}",
        "if=pflash,format=raw,unit=1,file=/run/xenlite/qemu/9/uefi-vars.fd",
    ]
    assert after(argv_of('firmware="uefi"\n'), "-drive") == after(argv, "-drive")
    assert after(argv_of('bios_path_override="/srv/bios.bin"\n'), "-bios") == ["/srv/bios.bin"]
    with pytest.raises(Unsupported, match="rombios"):
        argv_of('bios="rombios"\n')


def test_prepare_firmware_copies_the_variable_store_once(tmp_path: Path) -> None:
    if not hvm.OVMF_VARS.is_file():
        pytest.skip(f"{hvm.OVMF_VARS} is not installed (apt-get install ovmf)")
    hvm.prepare_firmware(info('bios="ovmf"\n'), tmp_path)
    stored = tmp_path / hvm.UEFI_VARS_FILE
    assert stored.read_bytes() == hvm.OVMF_VARS.read_bytes()
    stored.write_bytes(b"the guest wrote its boot entries")
    hvm.prepare_firmware(info('bios="ovmf"\n'), tmp_path)  # a reboot keeps them
    assert stored.read_bytes() == b"the guest wrote its boot entries"
    with pytest.raises(HostError, match="BIOS image"):
        hvm.prepare_firmware(info(f'bios_path_override="{tmp_path}/none.bin"\n'), tmp_path)


def test_disks_are_ide_by_position_and_pv_beyond_with_boot_order() -> None:
    disks = [disk("hda"), disk("hdc", cdrom=True, path="/srv/cd.iso"), disk("xvde")]
    argv = argv_of('boot="dc"\n', disks=disks)
    devices = after(argv, "-device")
    assert "ide-hd,id=vbd768,bus=ide.0,unit=0,drive=vbd768,serial=hda,bootindex=2" in devices
    assert "ide-cd,id=vbd5632,bus=ide.1,unit=0,drive=vbd5632,bootindex=1" in devices
    assert any(d.startswith("virtio-blk-pci,drive=vbd51776,id=vbd51776,") and "bootindex=3" in d
               for d in devices)  # fmt: skip


def test_ahci_takes_the_hard_disks_and_the_cdrom_stays_ide() -> None:
    disks = [disk("xvda"), disk("hdc", cdrom=True, path="")]
    devices = after(argv_of('hdtype="ahci"\n', disks=disks), "-device")
    assert "ich9-ahci,id=ahci0" in devices
    assert "ide-hd,id=vbd51712,bus=ahci0.0,drive=vbd51712,serial=xvda,bootindex=1" in devices
    assert "ide-cd,id=vbd5632,bus=ide.1,unit=0,bootindex=2" in devices  # empty: no drive=


def test_boot_letters() -> None:
    assert hvm.boot_order(info("")) == "cda"
    order = hvm.boot_order(info('boot="ndc"\n'))
    indexes = hvm.boot_indexes(order, disks=["a", "b"], cdroms=["c"], nics=["n0"])
    assert indexes == {"n0": 1, "c": 2, "a": 3, "b": 4}
    for bad in ("x", "cc"):
        with pytest.raises(ConfigError, match="boot"):
            hvm.boot_order(info(f'boot="{bad}"\n'))


def test_emulated_nic_model() -> None:
    nic = GuestNic(devid=0, tap="vif9.0-emu", mac="00:16:3e:00:00:01", mtu=1500, model="e1000")
    devices = after(argv_of('boot="n"\n', nics=[nic]), "-device")
    assert ("e1000,id=nic0,netdev=vif0,mac=00:16:3e:00:00:01,bus=vifbridge,addr=0x1,bootindex=1"
            in devices)  # fmt: skip


def test_vnc_keys() -> None:
    assert hvm.vnc_of(info("vnc=0\n")) is None
    assert hvm.vnc_of(info("nographic=1\n")) is None
    vnc = hvm.vnc_of(info('vnclisten="0.0.0.0:4"\nvncunused=0\nvncpasswd="s3cret"\n'))
    assert vnc == hvm.Vnc("0.0.0.0", 4, False, "s3cret")
    assert vnc.option() == "0.0.0.0:4,password=on"  # the password itself goes through QMP
    assert hvm.Vnc("::1", 2, True, None).option() == "[::1]:2,to=99"
    with pytest.raises(ConfigError, match="vnclisten"):
        hvm.vnc_of(info('vnclisten="127.0.0.1:x"\n'))
    assert "s3cret" not in " ".join(argv_of('vncpasswd="s3cret"\n'))


def test_vga_kinds_and_sdl() -> None:
    assert "VGA" in after(argv_of("stdvga=1\n"), "-device")
    argv = argv_of('vga="none"\n')
    assert not {"VGA", "cirrus-vga"} & set(after(argv, "-device"))
    assert hvm.vga_device(info("nographic=1\n")) is None
    with pytest.raises(Unsupported, match="sdl"):
        argv_of("sdl=1\n")


def test_usb() -> None:
    devices = after(argv_of('usb=1\nusbdevice="tablet"\n'), "-device")
    assert [d for d in devices if "usb" in d] == ["piix3-usb-uhci,id=usb", "usb-tablet,bus=usb.0"]
    assert hvm.usb_devices(info("usbversion=2\n")) == [{"driver": "usb-ehci", "id": "usb"}]
    with pytest.raises(ConfigError, match="USB bus"):
        hvm.usb_devices(info('usbdevice="tablet"\n'))
    with pytest.raises(ConfigError, match="usbversion"):
        hvm.usb_devices(info("usb=1\nusbversion=2\n"))
    with pytest.raises(Unsupported, match="host:"):
        hvm.usb_devices(info('usb=1\nusbdevice="host:8.2"\n'))


def test_platform_switches() -> None:
    argv = argv_of('acpi=0\nhpet=0\npae=0\nacpi_s3=0\nkeymap="de"\n')
    assert after(argv, "-machine") == ["pc,acpi=off,hpet=off"]
    assert after(argv, "-cpu") == ["max,-pae"]
    assert after(argv, "-global") == ["PIIX4_PM.disable_s3=1"]
    assert after(argv, "-k") == ["de"]
    with pytest.raises(Unsupported, match="nestedhvm"):
        argv_of("nestedhvm=1\n")


def test_rtc_offset_starts_the_clock_that_far_from_now() -> None:
    cfg = config(HVM + "rtc_timeoffset=3600\n").b_info
    now = time.mktime((2026, 12, 7, 12, 0, 0, 0, 0, -1))
    assert _rtc_option(cfg, now) == "base=" + time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(now + 3600)
    )
    assert _rtc_option(dataclasses.replace(cfg, rtc_timeoffset=0, localtime=True)) == (
        "base=localtime"
    )


def test_disk_index_of_every_vdev_form() -> None:
    for vdev, index in [("hda", 0), ("hdb", 1), ("hdc", 2), ("hdd", 3), ("xvda", 0),
                        ("xvdd", 3), ("sdb", 1), ("xvdq", 16)]:  # fmt: skip
        assert hvm.disk_index(vdev_to_devid(vdev)) == index, vdev
