"""The QEMU argv builder: options from the model, and an honest refusal for every field it
cannot honour yet."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from xenlite.base.errors import ConfigError, HostError, Unsupported
from xenlite.config.domain import build_domain_config
from xenlite.config.grammar import parse_with_overrides
from xenlite.config.model import (
    BuildInfo,
    CreateInfo,
    DeviceDisk,
    DomainConfig,
    PvBuildInfo,
    PvhBuildInfo,
)
from xenlite.qemu.accel import Accel
from xenlite.qemu.argv import (
    BUILD_INFO_RULES,
    CREATE_INFO_RULES,
    DOMAIN_RULES,
    PV_RULES,
    PVH_RULES,
    FieldRule,
    Handling,
    QemuHost,
    balloon_target_bytes,
    build_argv,
    check_supported,
    ignored_settings,
    opt,
)
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.runpaths import RunPaths

BINARY = QemuBinary(
    path=Path("/usr/bin/qemu-system-x86_64"),
    version=(7, 2, 0),
    version_text="QEMU emulator version 7.2.0",
    machines=frozenset({"q35", "pc", "microvm"}),
    devices=frozenset({"pvpanic", "virtio-balloon-pci"}),
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
    assert value_after(argv, "-device") == ["pvpanic", "virtio-balloon-pci,id=balloon0"]
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


def test_hvm_is_refused() -> None:
    with pytest.raises(Unsupported, match="hvm"):
        argv_of(config('name="h"\ntype="hvm"\nmemory=128\n'))


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


# ---------------------------------------------------------------- every refused field


def _non_default(default: Any, field: dataclasses.Field[Any]) -> Any:
    """A value different from ``default`` of the field's libxl kind."""
    kind = field.metadata.get("kind")
    if kind in ("array", "string_list", "kv_list", "bitmaps"):
        item = field.metadata.get("item")
        if item is not None and dataclasses.is_dataclass(item):
            return (item(),)
        if kind == "kv_list":
            return (("k", "v"),)
        if kind == "bitmaps":
            return (frozenset({0}),)
        return ("x",) if kind == "string_list" else (1,)
    if kind == "bitmap":
        return frozenset({0, 5})
    if kind == "str":
        return "x"
    if kind in ("bool", "defbool"):
        return True
    if kind == "int":
        return 1 if default != 1 else 2
    if kind == "enum":
        cls: type[StrEnum] = field.metadata["cls"]
        return next(member for member in cls if member != default)
    if kind == "struct":
        inner = default
        for sub in dataclasses.fields(inner):
            return dataclasses.replace(
                inner, **{sub.name: _non_default(getattr(inner, sub.name), sub)}
            )
    raise AssertionError(f"no non-default value for {field.name} ({kind})")


def _refused(rules: dict[str, FieldRule]) -> list[str]:
    return [
        name for name, rule in rules.items() if rule.handling in (Handling.LATER, Handling.NEVER)
    ]


BASE = config(PV)


def _with_b_info(**changes: Any) -> DomainConfig:
    return dataclasses.replace(BASE, b_info=dataclasses.replace(BASE.b_info, **changes))


@pytest.mark.parametrize("name", _refused(DOMAIN_RULES))
def test_refused_domain_field(name: str) -> None:
    field = next(f for f in dataclasses.fields(DomainConfig) if f.name == name)
    cfg = dataclasses.replace(BASE, **{name: _non_default(getattr(BASE, name), field)})
    with pytest.raises(Unsupported) as info:
        argv_of(cfg)
    rule = DOMAIN_RULES[name]
    assert info.value.what == rule.key
    assert rule.why in info.value.cause
    if rule.handling is Handling.LATER:
        assert "later issue" in str(info.value)


@pytest.mark.parametrize("name", _refused(CREATE_INFO_RULES))
def test_refused_create_info_field(name: str) -> None:
    field = next(f for f in dataclasses.fields(CreateInfo) if f.name == name)
    c_info = dataclasses.replace(
        BASE.c_info, **{name: _non_default(getattr(BASE.c_info, name), field)}
    )
    with pytest.raises(Unsupported) as info:
        argv_of(dataclasses.replace(BASE, c_info=c_info))
    assert info.value.what == CREATE_INFO_RULES[name].key


@pytest.mark.parametrize("name", _refused(BUILD_INFO_RULES))
def test_refused_build_info_field(name: str) -> None:
    field = next(f for f in dataclasses.fields(BuildInfo) if f.name == name)
    with pytest.raises(Unsupported) as info:
        argv_of(_with_b_info(**{name: _non_default(getattr(BASE.b_info, name), field)}))
    assert info.value.what == BUILD_INFO_RULES[name].key


@pytest.mark.parametrize("name", _refused(PV_RULES))
def test_refused_pv_field(name: str) -> None:
    field = next(f for f in dataclasses.fields(PvBuildInfo) if f.name == name)
    u = dataclasses.replace(PvBuildInfo(), **{name: _non_default(None, field)})
    with pytest.raises(Unsupported) as info:
        argv_of(_with_b_info(u=u))
    assert info.value.what == PV_RULES[name].key


@pytest.mark.parametrize("name", _refused(PVH_RULES))
def test_refused_pvh_field(name: str) -> None:
    field = next(f for f in dataclasses.fields(PvhBuildInfo) if f.name == name)
    u = dataclasses.replace(PvhBuildInfo(), **{name: _non_default(None, field)})
    with pytest.raises(Unsupported) as info:
        argv_of(_with_b_info(u=u))
    assert info.value.what == PVH_RULES[name].key


@pytest.mark.parametrize(
    ("rules", "cls"),
    [
        (DOMAIN_RULES, DomainConfig),
        (CREATE_INFO_RULES, CreateInfo),
        (BUILD_INFO_RULES, BuildInfo),
        (PV_RULES, PvBuildInfo),
        (PVH_RULES, PvhBuildInfo),
    ],
)
def test_every_model_field_has_a_rule(rules: dict[str, FieldRule], cls: type) -> None:
    assert set(rules) == {f.name for f in dataclasses.fields(cls)}


def test_devices_from_xl_cfg_text_are_refused_by_key() -> None:
    for text, key in [
        ('disk=["/img,raw,xvda,w"]\n', "disk"),
        ('vif=["bridge=xenbr0"]\n', "vif"),
        ('vfb=["vnc=1"]\n', "vfb"),
        ('bootloader="pygrub"\n', "bootloader"),
        ('channel=["name=org.qemu.guest_agent.0,connection=pty"]\n', "channel"),
    ]:
        with pytest.raises(Unsupported) as info:
            check_supported(config(PV + text))
        assert info.value.what == key, text


def test_a_field_unknown_to_the_tables_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    trimmed = {k: v for k, v in BUILD_INFO_RULES.items() if k != "kernel"}
    monkeypatch.setattr("xenlite.qemu.argv.BUILD_INFO_RULES", trimmed)
    with pytest.raises(Unsupported, match=r"BuildInfo\.kernel"):
        check_supported(BASE)


def test_default_config_refuses_nothing_and_ignores_nothing() -> None:
    check_supported(BASE)
    assert ignored_settings(BASE) == ()


def test_xen_only_settings_are_reported_not_refused() -> None:
    cfg = config(PV + 'tsc_mode="native"\nmax_grant_frames=64\n')
    argv_of(cfg)
    notes = ignored_settings(cfg)
    assert any(note.startswith("tsc_mode: ignored") for note in notes)
    assert any(note.startswith("max_grant_frames: ignored") for note in notes)


def test_disk_device_default_is_itself_a_change() -> None:
    # A single default-valued disk still asks for a disk: it must be refused.
    with pytest.raises(Unsupported, match="disk"):
        argv_of(dataclasses.replace(BASE, disks=(DeviceDisk(),)))
