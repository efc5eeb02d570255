"""The QEMU argv builder: options from the model, and an honest refusal for every field it
cannot honour yet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from model_values import refused_paths, with_changed
from xenlite.base.errors import ConfigError, HostError, Unsupported
from xenlite.config.domain.build import build_domain_config
from xenlite.config.domain.model import (
    DomainConfig,
)
from xenlite.config.settings import BY_FIELD, LATER_WORDS, Treatment
from xenlite.config.xlcfg.grammar import parse_with_overrides
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import (
    QemuHost,
    balloon_target_bytes,
    build_argv,
    check_supported,
)
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.blockdev import (
    BlockDisk,
    free_disk_slot,
    has_cdrom_controller,
    medium_node,
    next_medium_node,
)
from xenlite.qemu.netdev import GuestNic
from xenlite.qemu.options import opt
from xenlite.qemu.runpaths import RunPaths

BINARY = QemuBinary(
    path=Path("/usr/bin/qemu-system-x86_64"),
    version=(7, 2, 0),
    version_text="QEMU emulator version 7.2.0",
    machines=frozenset({"q35", "pc", "microvm"}),
    devices=frozenset(
        {
            "pvpanic",
            "virtio-balloon-pci",
            "virtio-blk-pci",
            "pcie-pci-bridge",
            "virtio-scsi-pci",
            "scsi-cd",
            "virtio-net-pci",
        }
    ),
    accels=frozenset({"kvm", "tcg"}),
)
TCG_HOST = QemuHost(BINARY, Accel.TCG, nr_cpus=4)
PATHS = RunPaths.in_directory(Path("/run/xenlite/qemu/7"))


def config(text: str, *overrides: str) -> DomainConfig:
    return build_domain_config(parse_with_overrides(text, "test.cfg", list(overrides))).config


PV = 'name="web01"\nkernel="/boot/vmlinuz"\nmemory=256\n'


def argv_of(cfg: DomainConfig, **kwargs: Any) -> list[str]:
    return build_argv(cfg, domid=7, host=kwargs.pop("host", TCG_HOST), paths=PATHS, **kwargs)


def value_after(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_minimal_pv_guest() -> None:
    argv = argv_of(config(PV + 'extra="console=ttyS0"\nramdisk="/boot/initrd.img"\n'))
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert value_after(argv, "-machine") == ["q35"]
    assert value_after(argv, "-accel") == ["tcg,thread=single"]
    assert value_after(argv, "-cpu") == ["max"]
    assert value_after(argv, "-m") == ["size=256M"]
    assert value_after(argv, "-smp") == ["cpus=1,maxcpus=1"]
    assert value_after(argv, "-kernel") == ["/boot/vmlinuz"]
    assert value_after(argv, "-initrd") == ["/boot/initrd.img"]
    assert value_after(argv, "-append") == ["console=ttyS0"]
    assert value_after(argv, "-name") == ["guest=web01,process=qemu-dm-7,debug-threads=on"]
    assert value_after(argv, "-device") == [
        "pcie-pci-bridge,id=vbdbridge,bus=pcie.0,addr=0x10",
        "pcie-pci-bridge,id=vifbridge,bus=pcie.0,addr=0x11",
        "pvpanic",
        "virtio-balloon-pci,id=balloon0",
    ]
    assert value_after(argv, "-action") == ["reboot=shutdown,shutdown=pause,panic=pause"]
    assert {"-no-user-config", "-nodefaults", "-nographic", "-S"} <= set(argv)
    assert "-no-reboot" not in argv
    assert "-daemonize" not in argv
    assert value_after(argv, "-mon") == ["chardev=qmp,mode=control"]
    assert value_after(argv, "-serial") == ["chardev:serial0"]
    chardevs = value_after(argv, "-chardev")
    assert chardevs == [
        "socket,id=qmp,path=/run/xenlite/qemu/7/qmp.sock,server=on,wait=off",
        "socket,id=serial0,path=/run/xenlite/qemu/7/serial.sock,server=on,wait=off",
    ]


def test_running_start_kvm_and_vcpus() -> None:
    cfg = config(PV + "vcpus=2\nmaxvcpus=4\n")
    argv = argv_of(cfg, host=QemuHost(BINARY, Accel.KVM, nr_cpus=8), paused=False)
    assert "-S" not in argv
    assert value_after(argv, "-accel") == ["kvm"]
    assert value_after(argv, "-cpu") == ["host"]
    assert value_after(argv, "-smp") == ["cpus=2,maxcpus=4"]
    multi = argv_of(cfg)
    assert value_after(multi, "-accel") == ["tcg,thread=multi"]


def test_memory_is_maxmem_and_the_balloon_takes_the_guest_to_its_target() -> None:
    cfg = config(PV + "maxmem=1024\n")
    assert value_after(argv_of(cfg), "-m") == ["size=1024M"]
    assert balloon_target_bytes(cfg) == 256 * 1024 * 1024
    assert balloon_target_bytes(config(PV)) is None


def test_commas_are_escaped_in_option_values() -> None:
    assert opt("a,b,,c") == "a,,b,,,,c"
    paths = RunPaths.in_directory(Path("/run/a,b"), console_log=True)
    argv = build_argv(config('name="x,y"\nkernel="/k"\n'), domid=1, host=TCG_HOST, paths=paths)
    assert value_after(argv, "-name")[0].startswith("guest=x,,y,")
    assert "path=/run/a,,b/qmp.sock" in value_after(argv, "-chardev")[0]
    assert value_after(argv, "-chardev")[1].endswith("logfile=/run/a,,b/console.log,logappend=on")


def test_uuid_localtime_acpi_and_device_model_args() -> None:
    text = (
        PV + 'uuid="6e3bd1b2-3c6d-4f7e-9b11-2f0d3b9ce001"\nlocaltime=1\nacpi=0\n'
        'device_model_args=["-msg","timestamp=on"]\ndevice_model_args_pv=["-boot","strict=on"]\n'
    )
    argv = argv_of(config(text))
    assert value_after(argv, "-uuid") == ["6e3bd1b2-3c6d-4f7e-9b11-2f0d3b9ce001"]
    assert value_after(argv, "-rtc") == ["base=localtime"]
    assert value_after(argv, "-machine") == ["q35,acpi=off"]
    assert argv[-4:] == ["-msg", "timestamp=on", "-boot", "strict=on"]


def test_pvh_boots_the_same_way() -> None:
    argv = argv_of(config(PV + 'type="pvh"\n'))
    assert value_after(argv, "-kernel") == ["/boot/vmlinuz"]


def test_missing_kernel_is_a_config_error() -> None:
    cfg = config(PV)
    cfg = dataclasses.replace(cfg, b_info=dataclasses.replace(cfg.b_info, kernel=None))
    with pytest.raises(ConfigError, match="kernel"):
        argv_of(cfg)


def test_qemu_traditional_is_refused() -> None:
    with pytest.raises(Unsupported, match="qemu-xen-traditional"):
        argv_of(config(PV + 'device_model_version="qemu-xen-traditional"\n'))


def test_missing_device_or_accel_in_the_binary_is_refused() -> None:
    bare = dataclasses.replace(BINARY, devices=frozenset({"virtio-balloon-pci"}))
    with pytest.raises(Unsupported, match="pvpanic") as info:
        argv_of(config(PV), host=QemuHost(bare, Accel.TCG, 1))
    assert "qemu-system-x86" in (info.value.fix or "")
    no_kvm = dataclasses.replace(BINARY, accels=frozenset({"tcg"}))
    with pytest.raises(Unsupported, match="kvm"):
        argv_of(config(PV), host=QemuHost(no_kvm, Accel.KVM, 1))


def test_device_model_override_must_be_the_binary_used() -> None:
    cfg = config(PV + 'device_model_override="/opt/qemu/bin/qemu-system-x86_64"\n')
    with pytest.raises(ValueError, match="device_model_override"):
        argv_of(cfg)
    other = dataclasses.replace(BINARY, path=Path("/opt/qemu/bin/qemu-system-x86_64"))
    assert argv_of(cfg, host=QemuHost(other, Accel.TCG, 1))[0] == "/opt/qemu/bin/qemu-system-x86_64"


def test_long_socket_paths_are_refused() -> None:
    paths = RunPaths.in_directory(Path("/run/" + "x" * 120))
    with pytest.raises(HostError, match="unix sockets"):
        build_argv(config(PV), domid=1, host=TCG_HOST, paths=paths)


def test_sparse_vcpu_sets_are_refused() -> None:
    cfg = config(PV + "maxvcpus=4\n")
    cfg = dataclasses.replace(
        cfg, b_info=dataclasses.replace(cfg.b_info, avail_vcpus=frozenset({1, 3}))
    )
    with pytest.raises(Unsupported, match="vcpus"):
        argv_of(cfg)


# ---------------------------------------------------------------- every refused setting


BASE = config(PV)


@pytest.mark.parametrize("path", refused_paths())
def test_a_refused_setting_is_refused_by_its_key(path: str) -> None:
    row = BY_FIELD[path]
    with pytest.raises(Unsupported) as info:
        argv_of(with_changed(BASE, path))
    assert info.value.what == row.name
    assert row.why in info.value.cause
    if row.treatment is Treatment.LATER:
        assert LATER_WORDS in info.value.cause
        assert "for now" in str(info.value.fix)


def test_devices_from_xl_cfg_text_are_refused_by_key() -> None:
    for text, key in [
        ('vfb=["vnc=1"]\n', "vfb"),
        ('channel=["name=org.qemu.guest_agent.0,connection=pty"]\n', "channel"),
    ]:
        with pytest.raises(Unsupported) as info:
            check_supported(config(PV + text))
        assert info.value.what == key, text


def test_a_field_unknown_to_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    trimmed = {k: v for k, v in BY_FIELD.items() if k != "b_info.kernel"}
    monkeypatch.setattr("xenlite.config.settings.BY_FIELD", trimmed)
    with pytest.raises(Unsupported, match=r"b_info\.kernel") as info:
        check_supported(BASE)
    assert "settings table" in str(info.value.fix)


def test_xen_only_settings_are_not_refused() -> None:
    argv_of(config(PV + 'tsc_mode="native"\nmax_grant_frames=64\n'))


def test_disks_become_blockdev_nodes_and_virtio_blk_devices_on_the_bridge() -> None:
    disks = [
        BlockDisk(51712, "xvda", "/srv/a,b.qcow2", False, "qcow2", False, True, False),
        BlockDisk(51728, "xvdb", "/dev/loop3", True, "raw", True, False, True),
    ]
    argv = argv_of(BASE, disks=disks)
    nodes = [json.loads(v) for v in value_after(argv, "-blockdev")]
    assert nodes == [
        {"driver": "file", "filename": "/srv/a,b.qcow2", "node-name": "vbd51712-file",
         "cache": {"direct": False}, "read-only": False, "discard": "unmap"},
        {"driver": "qcow2", "file": "vbd51712-file", "node-name": "vbd51712",
         "read-only": False, "discard": "unmap"},
        {"driver": "host_device", "filename": "/dev/loop3", "node-name": "vbd51728-file",
         "cache": {"direct": True}, "read-only": True, "discard": "ignore"},
        {"driver": "raw", "file": "vbd51728-file", "node-name": "vbd51728",
         "read-only": True, "discard": "ignore"},
    ]  # fmt: skip
    devices = value_after(argv, "-device")
    assert devices[0] == "pcie-pci-bridge,id=vbdbridge,bus=pcie.0,addr=0x10"
    assert [d for d in devices if d.startswith("virtio-blk-pci,")] == [
        "virtio-blk-pci,drive=vbd51712,id=vbd51712,serial=xvda,bus=vbdbridge,addr=0x1",
        "virtio-blk-pci,drive=vbd51728,id=vbd51728,serial=xvdb,bus=vbdbridge,addr=0x2",
    ]


def test_free_disk_slot_is_the_lowest_empty_slot_of_the_bridge() -> None:
    def bridge(*slots: int) -> dict[str, object]:
        behind = [{"slot": n, "qdev_id": f"vbd{n}"} for n in slots]
        return {"qdev_id": "vbdbridge", "pci_bridge": {"bus": {}, "devices": behind}}

    assert free_disk_slot([{"bus": 0, "devices": [{"qdev_id": "x"}, bridge(1, 3)]}]) == 2
    assert free_disk_slot([{"bus": 0, "devices": [bridge(*range(1, 32))]}]) is None
    assert free_disk_slot([{"bus": 0, "devices": [{"qdev_id": "balloon0"}]}]) is None
    assert free_disk_slot("nonsense") is None


def test_disks_need_their_devices_in_the_binary() -> None:
    disks = [
        BlockDisk(51712, "xvda", "/srv/a.img", False, "raw", False, True, False),
        BlockDisk(5632, "hdc", "", False, "raw", True, False, False, cdrom=True),
    ]
    for device in ("virtio-blk-pci", "pcie-pci-bridge", "virtio-scsi-pci", "scsi-cd"):
        binary = dataclasses.replace(BINARY, devices=BINARY.devices - {device})
        with pytest.raises(HostError, match=device):
            argv_of(BASE, host=QemuHost(binary, Accel.TCG, 4), disks=disks)
    # Without disks only the bridge is needed (it is always there, for hot-plug).
    binary = dataclasses.replace(BINARY, devices=BINARY.devices - {"virtio-blk-pci", "scsi-cd"})
    argv_of(BASE, host=QemuHost(binary, Accel.TCG, 4))


def test_cdroms_are_scsi_cd_drives_on_one_controller_after_the_disks() -> None:
    disks = [
        BlockDisk(768, "hda", "/srv/root.img", False, "raw", False, True, False),
        BlockDisk(5632, "hdc", "/srv/debian.iso", False, "raw", True, False, False, cdrom=True),
        BlockDisk(5696, "hdd", "", False, "raw", True, False, False, cdrom=True),
        BlockDisk(51712, "xvda", "/srv/data.img", False, "raw", False, True, False),
    ]
    argv = argv_of(BASE, disks=disks)
    nodes = [json.loads(v)["node-name"] for v in value_after(argv, "-blockdev")]
    assert nodes == ["vbd768-file", "vbd768", "vbd51712-file", "vbd51712", "vbd5632-file",
                     "vbd5632"]  # fmt: skip
    devices = value_after(argv, "-device")[:6]
    assert devices == [
        "pcie-pci-bridge,id=vbdbridge,bus=pcie.0,addr=0x10",
        "virtio-blk-pci,drive=vbd768,id=vbd768,serial=hda,bus=vbdbridge,addr=0x1",
        "virtio-blk-pci,drive=vbd51712,id=vbd51712,serial=xvda,bus=vbdbridge,addr=0x2",
        "virtio-scsi-pci,id=cdscsi,bus=vbdbridge,addr=0x3",
        "scsi-cd,id=vbd5632,bus=cdscsi.0,serial=hdc,drive=vbd5632",
        "scsi-cd,id=vbd5696,bus=cdscsi.0,serial=hdd",  # empty: no drive
    ]


def test_the_medium_of_a_drive_and_the_name_of_the_next() -> None:
    blocks = [
        {"qdev": "vbd5632", "removable": True, "inserted": {"node-name": "vbd5632.1"}},
        {"qdev": "vbd5696", "removable": True, "tray_open": False},
    ]
    assert medium_node(blocks, "vbd5632") == "vbd5632.1"
    assert medium_node(blocks, "vbd5696") is None
    assert medium_node(blocks, "vbd1") is None
    assert medium_node("nonsense", "vbd5632") is None
    drive = BlockDisk(5632, "hdc", "/x.iso", False, "raw", True, False, False, cdrom=True)
    assert next_medium_node(drive, None) == "vbd5632"
    assert next_medium_node(drive, "vbd5632.1") == "vbd5632"
    assert next_medium_node(drive, "vbd5632") == "vbd5632.1"


def test_the_cdrom_controller_is_found_in_the_bridge() -> None:
    behind = [{"slot": 3, "qdev_id": "cdscsi"}]
    bridge = {"qdev_id": "vbdbridge", "pci_bridge": {"bus": {}, "devices": behind}}
    assert has_cdrom_controller([{"bus": 0, "devices": [bridge]}])
    assert not has_cdrom_controller([{"bus": 0, "devices": [{"qdev_id": "cdscsi"}]}])
    assert not has_cdrom_controller(None)


def test_nics_attach_to_their_taps_on_their_own_bridge() -> None:
    nics = [
        GuestNic(devid=0, tap="vif7.0", mac="00:16:3e:01:02:03", mtu=1500),
        GuestNic(devid=1, tap="web,01", mac="00:16:3e:0a:0b:0c", mtu=9000),
    ]
    argv = argv_of(BASE, nics=nics)
    assert value_after(argv, "-netdev") == [
        "tap,id=vif0,ifname=vif7.0,script=no,downscript=no",
        "tap,id=vif1,ifname=web,,01,script=no,downscript=no",  # the comma escaped
    ]
    devices = value_after(argv, "-device")
    assert "pcie-pci-bridge,id=vifbridge,bus=pcie.0,addr=0x11" in devices
    assert [d for d in devices if d.startswith("virtio-net-pci,")] == [
        "virtio-net-pci,id=nic0,netdev=vif0,mac=00:16:3e:01:02:03,host_mtu=1500,"
        "bus=vifbridge,addr=0x1",
        "virtio-net-pci,id=nic1,netdev=vif1,mac=00:16:3e:0a:0b:0c,host_mtu=9000,"
        "bus=vifbridge,addr=0x2",
    ]
    # No NICs: their bridge all the same, for network-attach.
    assert "pcie-pci-bridge,id=vifbridge,bus=pcie.0,addr=0x11" in value_after(
        argv_of(BASE), "-device"
    )
