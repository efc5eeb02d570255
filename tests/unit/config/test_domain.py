"""config.domain.build: xl.cfg keys -> DomainConfig, key by key, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.domain.build import (
    HostFacts,
    LoadedDomain,
    effective_max_memkb,
    effective_target_memkb,
    load_domain_config,
)
from xenlite.config.domain.libxl_json import (
    domain_config_from_json,
    domain_config_to_json,
    dumps_domain_config,
)
from xenlite.config.domain.model import (
    Action,
    BiosType,
    DomainType,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
    TimerMode,
    TscMode,
    VgaKind,
)
from xenlite.config.hostconf.xlconf import XlConf

PV = 'name = "g"\nkernel = "/boot/vmlinuz"\n'
HOST = HostFacts(nr_cpus=8)


def load(tmp_path: Path, text: str, *, xlconf: XlConf | None = None) -> LoadedDomain:
    path = tmp_path / "g.cfg"
    path.write_text(text)
    return load_domain_config(str(path), xlconf=xlconf, host=HOST)


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


# ---------------------------------------------------------------- identity and type


def test_minimal_pv_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV).config
    assert cfg.c_info.type == DomainType.PV
    assert cfg.c_info.name == "g"
    assert cfg.c_info.uuid is None
    assert cfg.c_info.run_hotplug_scripts is True
    assert cfg.b_info.claim_mode is True
    assert isinstance(cfg.b_info.u, PvBuildInfo)
    assert cfg.b_info.kernel == "/boot/vmlinuz"
    assert (cfg.on_poweroff, cfg.on_reboot, cfg.on_watchdog, cfg.on_crash) == (
        Action.DESTROY,
        Action.RESTART,
        Action.DESTROY,
        Action.DESTROY,
    )
    assert cfg.on_soft_reset == Action.SOFT_RESET
    # libxl leaves memory unset in the config; 32 MiB applies at create time
    assert cfg.b_info.target_memkb is None
    assert effective_target_memkb(cfg.b_info) == 32 * 1024
    assert effective_max_memkb(cfg.b_info) == 32 * 1024


def test_missing_name_is_xl_message(tmp_path: Path) -> None:
    err = error(tmp_path, 'kernel = "/k"\n')
    assert "Domain name must be specified." in str(err)
    assert err.path == str(tmp_path / "g.cfg")
    assert err.line == 1
    assert err.key == "name"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('type = "hvm"', DomainType.HVM),
        ('type = "pvh"', DomainType.PVH),
        ('type = "pv"', DomainType.PV),
        ('builder = "hvm"', DomainType.HVM),
        ('builder = "generic"', DomainType.PV),
    ],
)
def test_type_and_builder(tmp_path: Path, text: str, want: DomainType) -> None:
    cfg = load(tmp_path, PV + text + "\n").config
    assert cfg.c_info.type == want


def test_invalid_type_located(tmp_path: Path) -> None:
    err = error(tmp_path, PV + 'type = "xen"\n')
    assert (err.line, err.col, err.key) == (3, 1, "type")
    assert "Invalid domain type xen." in str(err)


def test_contradicting_builder_and_type(tmp_path: Path) -> None:
    err = error(tmp_path, PV + 'type = "pv"\nbuilder = "hvm"\n')
    assert 'Contradicting "builder" and "type" options specified.' in str(err)
    assert err.line == 4


def test_uuid_is_normalised_and_checked(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'uuid = "2C474D2E-28BA-4730-A5BA-88DE9D25652A"\n').config
    assert cfg.c_info.uuid == "2c474d2e-28ba-4730-a5ba-88de9d25652a"
    err = error(tmp_path, PV + 'uuid = "nope"\n')
    assert "Failed to parse UUID: nope" in str(err)
    assert (err.line, err.col) == (3, 1)


def test_pv_needs_kernel_or_bootloader(tmp_path: Path) -> None:
    err = error(tmp_path, 'name = "g"\n')
    assert "Neither kernel nor bootloader specified" in str(err)
    cfg = load(tmp_path, 'name = "g"\nbootloader = "pygrub"\n').config
    assert cfg.b_info.bootloader == "pygrub"


# ---------------------------------------------------------------- memory and vcpus


def test_memory_and_maxmem(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + "memory = 512\nmaxmem = 1024\n").config
    assert cfg.b_info.target_memkb == 512 * 1024
    assert cfg.b_info.max_memkb == 1024 * 1024
    cfg = load(tmp_path, PV + "memory = 0x100\n").config
    assert cfg.b_info.target_memkb == cfg.b_info.max_memkb == 256 * 1024


def test_maxmem_below_memory_refused(tmp_path: Path) -> None:
    err = error(tmp_path, PV + "memory = 512\nmaxmem = 256\n")
    assert err.key == "maxmem"
    assert err.line == 4


def test_vcpus_and_maxvcpus(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + "vcpus = 2\nmaxvcpus = 4\n").config
    assert cfg.b_info.avail_vcpus == frozenset({0, 1})
    assert cfg.b_info.max_vcpus == 4
    err = error(tmp_path, PV + "vcpus = 4\nmaxvcpus = 2\n")
    assert "maxvcpus < vcpus" in str(err)


def test_cpus_string_list_and_soft(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'vcpus = 3\ncpus = "0-3,^1"\n').config
    assert cfg.b_info.vcpu_hard_affinity == (frozenset({0, 2, 3}),) * 3
    assert cfg.b_info.numa_placement is None
    cfg = load(tmp_path, PV + 'vcpus = 2\ncpus = ["1", "2-3", "5"]\ncpus_soft = "all"\n').config
    assert cfg.b_info.vcpu_hard_affinity == (frozenset({1}), frozenset({2, 3}))
    assert cfg.b_info.vcpu_soft_affinity == (frozenset(range(8)),) * 2
    assert cfg.b_info.numa_placement is False


def test_nested_cpus_list_is_an_error_not_a_crash(tmp_path: Path) -> None:
    # xl 4.17 segfaults on this (corpus notes); xenlite points at the nested list
    err = error(tmp_path, PV + 'vcpus = 8\ncpus = ["0-1", ["nested"]]\n')
    assert err.key == "cpus"
    assert (err.line, err.col) == (4, 16)


def test_bad_cpu_range_located(tmp_path: Path) -> None:
    err = error(tmp_path, PV + 'vcpus = 1\ncpus = "DOMF_ALLOWED_PCPUS"\n')
    assert "Invalid pcpu range" in str(err)
    assert err.line == 4


def test_sched_params_and_pool(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'cpu_weight = 512\ncap = 50\npool = "Pool-1"\n').config
    assert cfg.b_info.sched_params.weight == 512
    assert cfg.b_info.sched_params.cap == 50
    assert cfg.c_info.pool_name == "Pool-1"


# ---------------------------------------------------------------- boot


def test_cmdline_from_root_and_extra(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'root = "/dev/xvda1"\nextra = "ro quiet"\n').config
    assert cfg.b_info.cmdline == "root=/dev/xvda1 ro quiet"
    cfg = load(tmp_path, PV + 'root = "/dev/xvda1"\n').config
    assert cfg.b_info.cmdline == "root=/dev/xvda1"
    loaded = load(tmp_path, PV + 'cmdline = "a"\nextra = "b"\n')
    assert loaded.config.b_info.cmdline == "a"
    assert any("ignoring root= and extra= in favour of cmdline=" in w for w in loaded.warnings)


def test_bootloader_args_string_is_split_with_warning(tmp_path: Path) -> None:
    loaded = load(tmp_path, 'name = "g"\nbootloader = "pygrub"\nbootloader_args = "-q  --x"\n')
    assert loaded.config.b_info.bootloader_args == ("-q", "--x")
    assert any("bootloader_args" in w and "deprecated" in w for w in loaded.warnings)


def test_pv_firmware_pvgrub(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name = "g"\nfirmware = "pvgrub64"\n').config
    assert cfg.b_info.kernel is not None
    assert cfg.b_info.kernel.endswith("/pvgrub64.bin")
    err = error(tmp_path, 'name = "g"\nfirmware = "ovmf"\n')
    assert "only pvgrub{32|64} supported" in str(err)


# ---------------------------------------------------------------- actions


@pytest.mark.parametrize("action", list(Action))
def test_every_action(tmp_path: Path, action: Action) -> None:
    cfg = load(tmp_path, PV + f'on_crash = "{action.xl_name}"\n').config
    assert cfg.on_crash == action


def test_unknown_action_lists_valid_ones(tmp_path: Path) -> None:
    err = error(tmp_path, PV + 'on_reboot = "reboot"\n')
    assert 'Unknown on_reboot action "reboot" specified' in str(err)
    assert err.fix is not None
    assert "rename-restart" in err.fix
    assert "coredump-destroy" in err.fix
    assert (err.line, err.col) == (3, 1)


# ---------------------------------------------------------------- HVM


def test_hvm_platform_keys(tmp_path: Path) -> None:
    text = (
        'name = "h"\ntype = "hvm"\nacpi = 1\napic = 0\npae = 1\nhap = 0\nnx = 1\n'
        'viridian = 1\nstdvga = 1\nvideoram = 16\nusb = 1\nusbdevice = "tablet"\n'
        'localtime = 1\nrtc_timeoffset = 3600\ntimer_mode = "no_delay_for_missed_ticks"\n'
        'hpet = 1\nboot = "dc"\nfirmware = "ovmf"\nserial = "pty"\nvnc = 1\n'
        'vnclisten = "0.0.0.0"\nvncdisplay = 1\nsdl = 0\nnomigrate = 1\n'
    )
    cfg = load(tmp_path, text).config
    b = cfg.b_info
    assert isinstance(b.u, HvmBuildInfo)
    assert (b.acpi, b.apic, cfg.c_info.hap, b.localtime, b.disable_migrate) == (
        True,
        False,
        False,
        True,
        True,
    )
    assert (b.u.pae, b.u.nx, b.u.viridian, b.u.hpet, b.u.usb) == (True, True, True, True, True)
    assert b.u.vga.kind == VgaKind.STD
    assert b.video_memkb == 16 * 1024
    assert b.u.usbdevice == "tablet"
    assert b.rtc_timeoffset == 3600
    assert b.timer_mode == TimerMode.NO_DELAY_FOR_MISSED_TICKS
    assert (b.u.boot, b.u.bios, b.u.serial) == ("dc", BiosType.OVMF, "pty")
    assert (b.u.vnc.enable, b.u.vnc.listen, b.u.vnc.display) == (True, "0.0.0.0", 1)
    assert b.u.sdl.enable is False


def test_hvm_hvmloader_kernel_is_ignored_with_warning(tmp_path: Path) -> None:
    loaded = load(tmp_path, 'name = "h"\ntype = "hvm"\nkernel = "/usr/lib/xen/boot/hvmloader"\n')
    assert loaded.config.b_info.kernel is None
    assert any("firmware_override" in w for w in loaded.warnings)


def test_device_model_warning_kept(tmp_path: Path) -> None:
    loaded = load(tmp_path, 'name = "h"\ntype = "hvm"\ndevice_model = "qemu-dm"\n')
    assert any("WARNING: ignoring device_model directive." in w for w in loaded.warnings)
    assert any(w.startswith(f"{tmp_path / 'g.cfg'}:3:1: ") for w in loaded.warnings)


def test_viridian_list(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name = "h"\ntype = "hvm"\nviridian = ["defaults", "!hcall_ipi"]\n')
    u = cfg.config.b_info.u
    assert isinstance(u, HvmBuildInfo)
    assert u.viridian is True
    assert u.viridian_disable == frozenset({9})
    err = error(tmp_path, 'name = "h"\ntype = "hvm"\nviridian = ["bogus"]\n')
    assert "unknown viridian enlightenment 'bogus'" in str(err)
    assert (err.line, err.col) == (3, 13)


def test_tsc_mode_integer_deprecated(tmp_path: Path) -> None:
    loaded = load(tmp_path, PV + "tsc_mode = 2\n")
    assert loaded.config.b_info.tsc_mode == TscMode.NATIVE
    assert any('e.g. tsc_mode="native"' in w for w in loaded.warnings)
    err = error(tmp_path, PV + 'tsc_mode = "sometimes"\n')
    assert err.key == "tsc_mode"
    assert err.fix is not None
    assert "native_paravirt" in err.fix


def test_timer_mode_refused_for_pv(tmp_path: Path) -> None:
    err = error(tmp_path, PV + "timer_mode = 1\n")
    assert "not supported for PV guests" in str(err)


def test_pvh_info(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'type = "pvh"\npvshim = 1\n').config
    assert isinstance(cfg.b_info.u, PvhBuildInfo)
    assert cfg.b_info.u.pvshim is True


# ---------------------------------------------------------------- devices


def test_disks_and_vifs_with_xlconf_defaults(tmp_path: Path) -> None:
    conf = XlConf(vif_default_bridge="br9", vif_default_script="vif-route")
    text = PV + "disk = ['phy:/dev/vg/x,xvda,w']\nvif = ['mac=00:16:3e:00:00:01', 'bridge=b1']\n"
    cfg = load(tmp_path, text, xlconf=conf).config
    assert cfg.disks[0].pdev_path == "/dev/vg/x"
    assert cfg.disks[0].vdev == "xvda"
    assert cfg.disks[0].readwrite == 1
    assert [n.devid for n in cfg.nics] == [0, 1]
    assert cfg.nics[0].bridge == "br9"
    assert cfg.nics[0].script == "vif-route"
    assert cfg.nics[0].mac == "00:16:3e:00:00:01"
    assert cfg.nics[1].bridge == "b1"


def test_pci_globals_apply(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + "pci = ['01:00.0']\npci_permissive = 1\n").config
    assert cfg.pcidevs[0].bus == 1
    assert cfg.pcidevs[0].permissive is True
    assert isinstance(cfg.b_info.u, PvBuildInfo)
    assert cfg.b_info.u.e820_host is True


def test_pv_vnc_makes_vfb_and_vkb(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + 'vnc = 1\nvnclisten = "0.0.0.0"\nkeymap = "de"\n').config
    assert len(cfg.vfbs) == 1
    assert cfg.vfbs[0].vnc.listen == "0.0.0.0"
    assert cfg.vfbs[0].keymap == "de"
    assert [k.devid for k in cfg.vkbs] == [0]


def test_channel_and_vdispl_errors(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + "channel = ['name=a,connection=socket,path=/s']\n").config
    assert cfg.channels[0].name == "a"
    err = error(tmp_path, PV + "channel = ['name=a']\n")
    assert "channel has unknown 'connection'" in str(err)
    assert (err.line, err.col) == (3, 12)
    err = error(tmp_path, PV + "vdispl = ['backend=D,beAlloc=0,connectors=a:1x1']\n")
    assert 'Unknown string "beAlloc=0" in vdispl spec' in str(err)


# ---------------------------------------------------------------- keys and overrides


def test_unknown_key_warning_suggests(tmp_path: Path) -> None:
    loaded = load(tmp_path, PV + "memroy = 256\n")
    [warning] = loaded.warnings
    assert (
        warning
        == f"{tmp_path / 'g.cfg'}:3:1: unknown key 'memroy' ignored by xl; did you mean 'memory'?"
    )


def test_overrides_win(tmp_path: Path) -> None:
    path = tmp_path / "g.cfg"
    path.write_text(PV + "memory = 128\n")
    cfg = load_domain_config(str(path), ["memory=256", 'name="h"'], host=HOST).config
    assert cfg.b_info.target_memkb == 256 * 1024
    assert cfg.c_info.name == "h"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_domain_config(str(tmp_path / "none.cfg"))
    assert info.value.path == str(tmp_path / "none.cfg")


def test_unsupported_keys_refused_clearly(tmp_path: Path) -> None:
    err = error(tmp_path, 'name = "g"\ntype = "hvm"\nms_vm_genid = "generate"\n')
    assert "not supported by xenlite" in str(err)
    assert err.line == 3


def test_a_cpuid_libxl_would_not_read_is_located(tmp_path: Path) -> None:
    err = error(tmp_path, PV + 'cpuid = "host,tm=2"\n')
    assert "tm=2" in str(err)
    assert err.line == 3
    assert load(tmp_path, PV + 'cpuid = "host,tm=0"\n').config.b_info.cpuid


def test_demo_cfg_builds() -> None:
    demo = Path(__file__).resolve().parents[3] / "src" / "xenlite" / "config" / "demo.cfg"
    loaded = load_domain_config(str(demo), ['kernel="/kit/vmlinuz"'], host=HOST)
    cfg = loaded.config
    assert loaded.warnings == ()
    assert cfg.c_info.name == "demo"
    assert cfg.b_info.target_memkb == 256 * 1024
    assert cfg.b_info.avail_vcpus == frozenset({0})
    assert cfg.b_info.kernel == "/kit/vmlinuz"
    assert cfg.b_info.cmdline == "console=ttyS0"
    assert cfg.nics == ()
    assert (cfg.on_poweroff, cfg.on_reboot, cfg.on_crash) == (
        Action.DESTROY,
        Action.RESTART,
        Action.DESTROY,
    )


# ---------------------------------------------------------------- JSON text


def test_json_text_layout(tmp_path: Path) -> None:
    cfg = load(tmp_path, PV + "memory = 128\nvcpus = 1\n").config
    text = dumps_domain_config(cfg)
    assert text.startswith('{\n    "c_info": {\n        "type": "pv",\n')
    assert '        "sched_params": {\n\n        },\n' in text
    assert text.endswith('    "on_soft_reset": "soft_reset"\n}\n')
    assert domain_config_from_json(domain_config_to_json(cfg)) == cfg


def test_from_json_rejects_garbage() -> None:
    with pytest.raises(ConfigError) as info:
        domain_config_from_json({"c_info": {"type": "xen"}}, source="saved.json")
    assert info.value.path == "saved.json"
    assert info.value.key == "c_info.type"


def test_cpus_without_vcpus_and_cpus_beyond_the_host_are_said(tmp_path: Path) -> None:
    # xl 4.17 pins only the vCPUs vcpus= gives: without vcpus= the affinity is lost, silently
    # in xl; xenlite prints the same JSON and says so.
    lost = load(tmp_path, PV + 'cpus = "1"\n')
    assert lost.config.b_info.vcpu_hard_affinity == ()
    assert any(
        w.startswith(f"{tmp_path / 'g.cfg'}:3:1: cpus: xl gives the domain's vCPU no affinity")
        and "add vcpus = 1" in w
        for w in lost.warnings
    )
    # A CPU the host lacks is dropped, as xl drops it, with a word (HOST has 8 CPUs).
    wide = load(tmp_path, PV + 'vcpus = 2\ncpus = ["0-9", "3"]\n')
    assert wide.config.b_info.vcpu_hard_affinity == (frozenset(range(8)), frozenset({3}))
    assert [w for w in wide.warnings if "does not exist" in w] == [
        f"{tmp_path / 'g.cfg'}:4:9: cpus: CPU 8 does not exist (this host has CPUs 0-7); "
        "xl drops it"
    ]
    quiet = load(tmp_path, PV + 'vcpus = 2\ncpus = "all,^9"\n')
    assert not [w for w in quiet.warnings if "cpus" in w]
