"""An xl.cfg file -> the typed DomainConfig, key by key as xl's ``parse_config_data()``.

Implements xl.cfg(5) as Xen 4.17's ``tools/xl/xl_parse.c`` reads it for ``xl create``:
every key it knows, its defaults (from xl.conf(5) too), its warnings and its refusals, each
refusal located at file:line:col. Where xl crashes or silently drops something (nested lists
in ``cpus=``, unknown keys) xenlite says so instead.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xenlite.base.errors import ConfigError
from xenlite.config import grammar
from xenlite.config.cpus import parse_cpu_list
from xenlite.config.disk import parse_disk_spec
from xenlite.config.grammar import XlConfig
from xenlite.config.libxl_json import struct_from_json
from xenlite.config.model import (
    ALTP2M_ORDER,
    TIMER_MODE_ORDER,
    TSC_MODE_ORDER,
    VIRIDIAN_ORDER,
    Action,
    AltP2mMode,
    ArchArm,
    ArchX86,
    BiosType,
    BuildInfo,
    ChannelConnection,
    ChannelPty,
    ChannelSocket,
    ConnectorParam,
    CreateInfo,
    DeviceChannel,
    DeviceDisk,
    DeviceDtdev,
    DeviceModelVersion,
    DeviceNic,
    DeviceP9,
    DevicePci,
    DevicePvcallsif,
    DeviceUsbctrl,
    DeviceUsbdev,
    DeviceVdispl,
    DeviceVfb,
    DeviceVkb,
    DeviceVsnd,
    DeviceVtpm,
    DomainConfig,
    DomainType,
    GfxPassthruKind,
    GicVersion,
    HdType,
    HvmBuildInfo,
    IomemRange,
    IoportRange,
    Passthrough,
    PvBuildInfo,
    PvhBuildInfo,
    RdmPolicy,
    RdmReserve,
    RdmStrategy,
    SchedParams,
    SdlInfo,
    SpiceInfo,
    TeeType,
    TimerMode,
    TscMode,
    UsbctrlType,
    UsbHostdev,
    VendorDevice,
    VgaInfo,
    VgaKind,
    ViridianEnlightenment,
    VkbBackend,
    VncInfo,
    VsndParams,
    VsndPcm,
    VsndPcmFormat,
    VsndStream,
    VsndStreamType,
    VuartType,
)
from xenlite.config.pci import RdmPolicy as PciRdmPolicy
from xenlite.config.pci import parse_pci_spec
from xenlite.config.values import Atom, ListValue, Pos, Setting
from xenlite.config.vif import parse_vif_spec
from xenlite.config.xlconf import DEFAULT_BLKDEV_START, XlConf

# libxl's default when neither memory= nor maxmem= is given (LIBXL_MEMKB_DEFAULT resolved
# by libxl__domain_build_info_setdefault): 32 MiB.
DEFAULT_MEMKB = 32 * 1024

# XENFIRMWAREDIR of Debian's Xen 4.17 build: where firmware="pvgrub64" points.
XENFIRMWAREDIR = "/usr/lib/xen-4.17/boot"

# HVM_BELOW_4G_MMIO_LENGTH / HVM_BELOW_4G_MMIO_START (xen/include/public/hvm/e820.h).
_MMIO_HOLE_MIN = 256 << 20
_MMIO_HOLE_MAX = 0xF0000000

_INT_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What parsing needs to know about the host (xl asks the hypervisor)."""

    nr_cpus: int
    nr_nodes: int = 1


@dataclass(frozen=True, slots=True)
class LoadedDomain:
    """A built domain config and the warnings xl (or xenlite) gave while reading it."""

    config: DomainConfig
    warnings: tuple[str, ...]


def effective_target_memkb(b_info: BuildInfo) -> int:
    """The memory the domain starts with: libxl's 32 MiB when the file gives none."""
    return b_info.target_memkb if b_info.target_memkb is not None else DEFAULT_MEMKB


def effective_max_memkb(b_info: BuildInfo) -> int:
    """The maximum memory: maxmem, else memory, else libxl's 32 MiB."""
    return b_info.max_memkb if b_info.max_memkb is not None else effective_target_memkb(b_info)


def load_domain_config(
    path: str,
    overrides: Sequence[str] = (),
    *,
    xlconf: XlConf | None = None,
    host: HostFacts | None = None,
) -> LoadedDomain:
    """Read an xl.cfg file plus ``xl create`` style ``key=value`` overrides and build it.

    :raise ConfigError: when the file cannot be read or xl would refuse it (located).
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the domain config: {exc.strerror or exc}",
            path=path,
            fix="give the path of an existing, readable xl.cfg file",
        ) from None
    cfg = grammar.parse_with_overrides(text, path, list(overrides))
    return build_domain_config(cfg, xlconf=xlconf, host=host)


def build_domain_config(
    cfg: XlConfig, *, xlconf: XlConf | None = None, host: HostFacts | None = None
) -> LoadedDomain:
    """The DomainConfig ``xl create -n`` would print for ``cfg``, with xl's warnings.

    :raise ConfigError: where xl refuses the config, located at the offending value.
    """
    builder = _Builder(cfg, xlconf or XlConf(), host or HostFacts(nr_cpus=os.cpu_count() or 1))
    return builder.build()


# ---------------------------------------------------------------- known keys

# Every top-level key xl 4.17's parse_config_data() reads, plus xl.cfg(5) keys read
# elsewhere by xl (e.g. vncviewer, the xm-era keys xl ignores on purpose).
KNOWN_KEYS: frozenset[str] = frozenset(
    """
    acpi acpi_firmware acpi_laptop_slate acpi_s3 acpi_s4 altp2m altp2mhvm apic bios
    bios_path_override boot bootloader bootloader_args bootloader_restrict
    bootloader_user builder cap channel cmdline cpu_weight cpuid cpus cpus_soft
    device_model device_model_args device_model_args_hvm device_model_args_pv
    device_model_override device_model_stubdomain_override
    device_model_stubdomain_seclabel device_model_user device_model_version device_tree
    disk display dm_restrict driver_domain dtdev e820_host extra extratime firmware
    firmware_override gfx_passthru gic_version hap hdtype hpet init_seclabel iomem
    ioports irqs kernel keymap latency localtime max_event_channels max_grant_frames
    max_grant_version max_maptrack_frames maxmem maxvcpus mca_caps memory mmio_hole
    ms_vm_genid msr_relaxed name nestedhvm nographic nomigrate nx on_crash on_poweroff
    on_reboot on_soft_reset on_watchdog oos opengl p9 pae passthrough pci
    pci_msitranslate pci_permissive pci_power_mgmt pci_seize period pool pvcalls pvshim
    pvshim_cmdline pvshim_extra pvshim_path ramdisk rdm rdm_mem_boundary root
    rtc_timeoffset sdl seclabel serial shadow_memory slice smbios_firmware soundhw spice
    spice_clipboard_sharing spice_image_compression spice_streaming_video
    spiceagent_mouse spicedisable_ticketing spicehost spicepasswd spiceport
    spicetls_port spiceusbredirection spicevdagent stdvga stubdomain_kernel
    stubdomain_memory stubdomain_ramdisk tee timer_mode tsc_mode type usb usbctrl usbdev
    usbdevice usbversion uuid vcpus vdispl vendor_device vfb vga videoram vif vif2
    viridian vkb vkb_device vmtrace_buf_kb vnc vncconsole vncdisplay vnclisten vncpasswd
    vncunused vncviewer vnuma vpt_align vsnd vtpm vuart xauthority xen_platform_pci
    xend_suspend_evtchn_compat
    """.split()  # noqa: SIM905 - a word list reads better than 180 quoted lines
)


# ---------------------------------------------------------------- helpers


def _strtoul(text: str, base: int) -> tuple[int, str]:
    """C strtoul: skip blanks, optional sign, digits in ``base`` (0 = auto); rest returned."""
    s = text.lstrip(" \t\n\r\f\v")
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if base in (0, 16) and s[:2].lower() == "0x" and len(s) > 2 and _digit(s[2], 16):
        s, base = s[2:], 16
    elif base == 0:
        base = 8 if s[:1] == "0" else 10
    i = 0
    value = 0
    while i < len(s) and _digit(s[i], base):
        value = value * base + int(s[i], 16)
        i += 1
    if i == 0:
        return 0, text
    return (-value if neg else value), s[i:]


def _digit(ch: str, base: int) -> bool:
    return ch.lower() in "0123456789abcdef"[:base]


def _atoi(text: str) -> int:
    value, _ = _strtoul(text, 10)
    return value


def _prefix_of(buf: str, word: str) -> bool:
    # xl compares with strncmp(buf, word, strlen(buf)): any prefix (even "") matches.
    return word.startswith(buf)


def _split(text: str, delims: str) -> list[str]:
    """strtok: split at any of ``delims``, dropping empty pieces."""
    return [p for p in re.split("[" + re.escape(delims) + "]", text) if p]


def _valid_uuid(text: str) -> str | None:
    if re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", text):
        return text.lower()
    return None


@dataclass
class _Warnings:
    items: list[str] = field(default_factory=list)

    def add(self, pos: Pos | None, text: str) -> None:
        where = f"{pos.path}:{pos.line}:{pos.col}: " if pos is not None else ""
        self.items.append(where + text)


class _Builder:
    """One run of parse_config_data(): reads ``cfg``, accumulates the libxl structures."""

    def __init__(self, cfg: XlConfig, xlconf: XlConf, host: HostFacts) -> None:
        self.cfg = cfg
        self.xlconf = xlconf
        self.host = host
        self.warn = _Warnings()

    # ------------------------------------------------------------ typed reads

    def setting(self, key: str) -> Setting | None:
        return self.cfg.find(key)

    def pos(self, key: str) -> Pos:
        return self.cfg.pos_of(key)

    def string(self, key: str) -> str | None:
        """An atom's text; a list where xl wants one value is a located error."""
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, ListValue):
            raise s.pos.error(
                "is a list but should be a single value",
                key=key,
                fix=f'write {key} = "value" without brackets',
            )
        return s.value.text

    def long(self, key: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
        return self.cfg.get_long(key, min=lo, max=hi)

    def defbool(self, key: str) -> bool | None:
        value = self.long(key)
        return None if value is None else value != 0

    def string_items(self, key: str) -> list[Atom] | None:
        """The atoms of a list key. xl stops at a nested list; xenlite says so instead."""
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, Atom):
            raise s.pos.error(
                "should be a list",
                key=key,
                fix=f"write {key} = [ '...', ... ]",
            )
        atoms: list[Atom] = []
        for item in s.value.items:
            if isinstance(item, ListValue):
                raise item.pos.error(
                    "a nested list is not allowed here (xl would stop reading the list "
                    "at this item, or crash)",
                    key=key,
                    fix="write each entry as a quoted string",
                )
            atoms.append(item)
        return atoms

    def string_or_list(self, key: str) -> str | list[Atom] | None:
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, Atom):
            return s.value.text
        return self.string_items(key)

    def fail(self, key: str, cause: str, fix: str, pos: Pos | None = None) -> ConfigError:
        return (pos or self.pos(key)).error(cause, key=key, fix=fix)

    def enum_value(self, key: str, cls: Any, text: str, pos: Pos | None = None) -> Any:
        try:
            return cls(text.lower())
        except ValueError:
            names = ", ".join(f'"{m.value}"' for m in cls)
            raise self.fail(
                key, f'invalid value "{text}" for "{key}"', f"use one of {names}", pos
            ) from None

    # ------------------------------------------------------------ the run

    def build(self) -> LoadedDomain:
        self.check_unknown_keys()
        c_info = self.create_info()
        b_info = self.build_info(c_info)
        devices = self.devices(c_info, b_info)
        b_info = devices.pop("b_info")
        actions = self.actions()
        config = DomainConfig(c_info=c_info, b_info=b_info, **devices, **actions)
        return LoadedDomain(config=config, warnings=tuple(self.warn.items))

    def check_unknown_keys(self) -> None:
        for key in list(self.cfg.keys()):
            if key in KNOWN_KEYS:
                continue
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.warn.add(self.pos(key), f"unknown key '{key}' ignored by xl{hint}")

    def create_info(self) -> CreateInfo:
        ssid_label = None
        exec_label = None
        if self.string("init_seclabel") is not None:
            ssid_label = self.string("init_seclabel")
        seclabel = self.string("seclabel")
        if seclabel is not None:
            if ssid_label is not None:
                exec_label = seclabel
            else:
                ssid_label = seclabel
        self._exec_ssid_label = exec_label

        dtype: DomainType | None = None
        buf = self.string("type")
        if buf is not None:
            for candidate in (DomainType.HVM, DomainType.PV, DomainType.PVH):
                if _prefix_of(buf, candidate.value):
                    dtype = candidate
                    break
            else:
                raise self.fail(
                    "type", f"Invalid domain type {buf}.", 'use type = "pv", "pvh" or "hvm"'
                )
        buf = self.string("builder")
        if buf is not None:
            if _prefix_of(buf, "hvm"):
                builder_type = DomainType.HVM
            elif _prefix_of(buf, "generic"):
                builder_type = DomainType.PV
            else:
                raise self.fail(
                    "builder",
                    f"Invalid domain type {buf}.",
                    'use type = "pv", "pvh" or "hvm" (builder= is deprecated)',
                )
            if dtype is not None and dtype != builder_type:
                raise self.fail(
                    "builder",
                    'Contradicting "builder" and "type" options specified.',
                    "remove builder= and keep type=",
                )
            dtype = builder_type
        if dtype is None:
            dtype = DomainType.PV  # x86 default

        name = self.string("name")
        if name is None:
            raise ConfigError(
                "Domain name must be specified.",
                path=self._path(),
                line=1,
                col=1,
                key="name",
                fix='add a line such as name = "guest1"',
            )
        uuid: str | None = None
        buf = self.string("uuid")
        if buf is not None:
            uuid = _valid_uuid(buf)
            if uuid is None:
                raise self.fail(
                    "uuid",
                    f"Failed to parse UUID: {buf}",
                    'write it as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in hex (see uuidgen)',
                )
            if uuid == "00000000-0000-0000-0000-000000000000":
                # libxl omits the nil UUID (libxl_uuid_is_nil): it means "generate one".
                uuid = None

        passthrough = Passthrough.DEFAULT
        buf = self.string("passthrough")
        if buf is not None:
            passthrough = self.enum_value("passthrough", Passthrough, buf)

        return CreateInfo(
            type=dtype,
            hap=self.defbool("hap"),
            oos=self.defbool("oos"),
            ssid_label=ssid_label,
            name=name,
            uuid=uuid,
            pool_name=self.string("pool"),
            run_hotplug_scripts=self.xlconf.run_hotplug_scripts,
            driver_domain=self.defbool("driver_domain"),
            passthrough=passthrough,
            xend_suspend_evtchn_compat=self.defbool("xend_suspend_evtchn_compat"),
        )

    def _path(self) -> str:
        return self.cfg.path

    # ------------------------------------------------------------ b_info

    def build_info(self, c_info: CreateInfo) -> BuildInfo:
        dtype = c_info.type
        b: dict[str, Any] = {}
        if self._exec_ssid_label is not None:
            b["exec_ssid_label"] = self._exec_ssid_label

        if self.xlconf.blkdev_start != DEFAULT_BLKDEV_START:
            b["blkdev_start"] = self.xlconf.blkdev_start

        sched: dict[str, Any] = {}
        for key, fname in (
            ("cpu_weight", "weight"),
            ("cap", "cap"),
            ("period", "period"),
            ("slice", "slice"),
            ("latency", "latency"),
            ("extratime", "extratime"),
        ):
            value = self.long(key)
            if value is not None:
                sched[fname] = value
        b["sched_params"] = SchedParams(**sched)

        memory = self.long("memory")
        maxmem = self.long("maxmem")
        if memory is not None:
            b["target_memkb"] = memory * 1024
        if maxmem is not None:
            b["max_memkb"] = maxmem * 1024
        elif memory is not None:
            b["max_memkb"] = memory * 1024
        if memory is not None and maxmem is not None and maxmem < memory:
            raise self.fail(
                "maxmem",
                f"maxmem ({maxmem} MiB) is smaller than memory ({memory} MiB); libxl "
                "refuses to create such a domain",
                "make maxmem at least as large as memory, or remove it",
            )

        vcpus = self.long("vcpus", lo=0, hi=_INT_MAX)
        if vcpus is not None:
            b["avail_vcpus"] = frozenset(range(vcpus))
        max_vcpus = self.long("maxvcpus", lo=0, hi=_INT_MAX) or 0
        if self.setting("vnuma") is not None:
            raise self.fail(
                "vnuma",
                "virtual NUMA topologies are not supported by xenlite",
                "remove vnuma= (the guest then sees one NUMA node)",
            )
        if max_vcpus == 0:
            max_vcpus = vcpus or 0
        if vcpus is not None and max_vcpus < vcpus:
            raise self.fail("maxvcpus", "xl: maxvcpus < vcpus", "make maxvcpus >= vcpus")
        b["max_vcpus"] = max_vcpus

        buf = self.string("vuart")
        if buf is not None:
            b["arch_arm"] = ArchArm(vuart=self.enum_value("vuart", VuartType, buf))

        numa_placement: bool | None = None
        for key, fname in (("cpus", "vcpu_hard_affinity"), ("cpus_soft", "vcpu_soft_affinity")):
            affinity = self.string_or_list(key)
            if affinity is None:
                continue
            if isinstance(affinity, str):
                cpus = parse_cpu_list(
                    affinity,
                    self.host.nr_cpus,
                    where=self.pos(key),
                    nr_nodes=self.host.nr_nodes,
                    key=key,
                )
                b[fname] = tuple(cpus for _ in range(max_vcpus))
                if key == "cpus_soft":
                    numa_placement = False
            else:
                b[fname] = tuple(
                    parse_cpu_list(
                        atom.text,
                        self.host.nr_cpus,
                        where=atom.pos,
                        nr_nodes=self.host.nr_nodes,
                        key=key,
                    )
                    for atom in affinity[:max_vcpus]
                )
                numa_placement = False
        b["numa_placement"] = numa_placement

        for key, default in (
            ("max_grant_frames", self.xlconf.max_grant_frames),
            ("max_maptrack_frames", self.xlconf.max_maptrack_frames),
        ):
            value = self.long(key, lo=0, hi=_INT_MAX)
            b[key] = default if value is None else value

        b["claim_mode"] = self.xlconf.claim_mode
        if self.xlconf.bootloader_restrict:
            b["bootloader_restrict"] = True

        shadow = self.long("shadow_memory")
        if shadow is not None:
            b["shadow_memkb"] = shadow * 1024
        b["disable_migrate"] = self.defbool("nomigrate")
        b["tsc_mode"] = self.tsc_mode()
        rtc = self.long("rtc_timeoffset")
        if rtc is not None:
            b["rtc_timeoffset"] = rtc & _UINT32_MAX
        if self.setting("vncviewer") is not None and self.long("vncviewer") is not None:
            self.warn.add(
                self.pos("vncviewer"),
                'WARNING: ignoring "vncviewer" option. Use "-V" option of "xl create" to '
                "automatically spawn vncviewer.",
            )
        b["localtime"] = self.defbool("localtime")
        videoram = self.long("videoram")
        if videoram is not None:
            b["video_memkb"] = videoram * 1024
        evtchn = self.long("max_event_channels")
        if evtchn is not None:
            b["event_channels"] = evtchn

        b["kernel"] = self.string("kernel")
        b["ramdisk"] = self.string("ramdisk")
        b["device_tree"] = self.string("device_tree")
        b["cmdline"] = self.cmdline()
        b["acpi"] = self.defbool("acpi")
        b["bootloader"] = self.string("bootloader")
        b["bootloader_args"] = self.bootloader_args()
        b["timer_mode"] = self.timer_mode(dtype)
        b["nested_hvm"] = self.defbool("nestedhvm")

        if dtype == DomainType.HVM:
            b["u"] = self.hvm_info(b)
        else:
            b["u"] = self.pv_info(dtype, b)

        b["altp2m"] = self.altp2m()
        vmtrace = self.long("vmtrace_buf_kb")
        if vmtrace:
            b["vmtrace_buf_kb"] = vmtrace
        b["ioports"] = self.ioports()
        b["irqs"] = self.irqs()
        b["iomem"] = self.iomem()
        b.update(self.device_model())
        b["dm_restrict"] = self.defbool("dm_restrict")

        buf = self.string("gic_version")
        if buf is not None:
            arm = b.get("arch_arm", ArchArm())
            gic = self.enum_value("gic_version", GicVersion, buf)
            b["arch_arm"] = replace(arm, gic_version=gic)
        buf = self.string("tee")
        if buf is not None:
            b["tee"] = self.enum_value("tee", TeeType, buf)
        msr_relaxed = self.defbool("msr_relaxed")
        if msr_relaxed is not None:
            b["arch_x86"] = ArchX86(msr_relaxed=msr_relaxed)
            self.warn.add(
                self.pos("msr_relaxed"),
                "WARNING: msr_relaxed will be removed in future versions.",
            )
        if self.setting("cpuid") is not None:
            raise self.fail(
                "cpuid",
                "CPUID policies are not supported by xenlite (QEMU's -cpu model decides "
                "what the guest sees)",
                "remove cpuid=",
            )
        return BuildInfo(**b)

    def tsc_mode(self) -> TscMode:
        s = self.setting("tsc_mode")
        if s is None:
            return TscMode.DEFAULT
        text = self.string("tsc_mode") or ""
        number, rest = _strtoul(text, 0)
        if text and not rest and text.lstrip()[:1].isdigit():
            name = TSC_MODE_ORDER[number].value if 0 <= number < len(TSC_MODE_ORDER) else None
            hint = f' e.g. tsc_mode="{name}"' if name else ""
            self.warn.add(
                s.pos,
                'WARNING: specifying "tsc_mode" as an integer is deprecated. Please use the '
                f"named parameter variant.{hint}",
            )
            if name is None:
                raise self.fail(
                    "tsc_mode",
                    f'ERROR: invalid value {number} for "tsc_mode"',
                    "use tsc_mode = " + ", ".join(f'"{m.value}"' for m in TscMode),
                )
            return TSC_MODE_ORDER[number]
        return self.enum_value("tsc_mode", TscMode, text)  # type: ignore[no-any-return]

    def timer_mode(self, dtype: DomainType | None) -> TimerMode | None:
        s = self.setting("timer_mode")
        if s is None:
            return None
        if dtype == DomainType.PV:
            raise self.fail(
                "timer_mode",
                'ERROR: "timer_mode" option is not supported for PV guests.',
                'remove timer_mode= or use type = "hvm"',
            )
        text = self.string("timer_mode") or ""
        number, rest = _strtoul(text, 0)
        if text and not rest and text.lstrip()[:1].isdigit():
            name = TIMER_MODE_ORDER[number].value if 0 <= number < 4 else None
            hint = f' e.g. timer_mode="{name}"' if name else ""
            self.warn.add(
                s.pos,
                'WARNING: specifying "timer_mode" as an integer is deprecated. Please use '
                f"the named parameter variant.{hint}",
            )
            if name is None:
                raise self.fail(
                    "timer_mode",
                    f'ERROR: invalid value {number} for "timer_mode"',
                    "use one of " + ", ".join(f'"{m.value}"' for m in TimerMode),
                )
            return TIMER_MODE_ORDER[number]
        return self.enum_value("timer_mode", TimerMode, text)  # type: ignore[no-any-return]

    def altp2m(self) -> AltP2mMode:
        text = self.string("altp2m")
        if text is None:
            return AltP2mMode.DISABLED
        number, rest = _strtoul(text, 0)
        if text and not rest and text.lstrip()[:1].isdigit():
            if not 0 <= number < len(ALTP2M_ORDER):
                raise self.fail(
                    "altp2m",
                    f'ERROR: invalid value {number} for "altp2m"',
                    "use one of " + ", ".join(f'"{m.value}"' for m in AltP2mMode),
                )
            return ALTP2M_ORDER[number]
        return self.enum_value("altp2m", AltP2mMode, text)  # type: ignore[no-any-return]

    def cmdline(self) -> str | None:
        buf = self.string("cmdline")
        root = self.string("root")
        extra = self.string("extra")
        if buf is not None:
            if root is not None or extra is not None:
                self.warn.add(
                    self.pos("cmdline"), "Warning: ignoring root= and extra= in favour of cmdline="
                )
            return buf
        if root is not None and extra is not None:
            return f"root={root} {extra}"
        if root is not None:
            return f"root={root}"
        return extra

    def bootloader_args(self) -> tuple[str, ...]:
        value = self.string_or_list("bootloader_args")
        if value is None:
            return ()
        if isinstance(value, str):
            self.warn.add(
                self.pos("bootloader_args"),
                'WARNING: Specifying "bootloader_args" as a string is deprecated. Please use a '
                "list of arguments.",
            )
            return tuple(_split(value, " \t\n"))
        return tuple(a.text for a in value)

    def hvm_info(self, b: dict[str, Any]) -> HvmBuildInfo:
        h: dict[str, Any] = {}
        kernel = b.get("kernel")
        if kernel is not None and os.path.basename(kernel) == "hvmloader":
            self.warn.add(
                self.pos("kernel"),
                'WARNING: you seem to be using "kernel" directive to override HVM guest '
                'firmware. Ignore that. Use "firmware_override" instead if you really want a '
                "non-default firmware",
            )
            b["kernel"] = None
        h["firmware"] = self.string("firmware_override")
        h["system_firmware"] = self.string("bios_path_override")
        buf = self.string("bios")
        if buf is not None:
            h["bios"] = self.enum_value("bios", BiosType, buf)
        elif h["system_firmware"] is not None:
            self.warn.add(
                self.pos("bios_path_override"),
                "WARNING: bios_path_override given without specific bios name",
            )
        for key in ("pae", "acpi_s3", "acpi_s4", "acpi_laptop_slate", "nx", "hpet", "vpt_align"):
            h[key] = self.defbool(key)
        b["apic"] = self.defbool("apic")
        h.update(self.viridian())
        hole = self.long("mmio_hole")
        if hole is not None:
            if not _MMIO_HOLE_MIN <= hole * 1024 * 1024 <= _MMIO_HOLE_MAX:
                raise self.fail(
                    "mmio_hole",
                    f'ERROR: invalid value {hole} for "mmio_hole"',
                    "give a size in MiB between 256 and 3840",
                )
            h["mmio_hole_memkb"] = hole * 1024
        altp2mhvm = self.defbool("altp2mhvm")
        if altp2mhvm is not None:
            h["altp2m"] = altp2mhvm
            self.warn.add(
                self.pos("altp2mhvm"),
                'WARNING: Specifying "altp2mhvm" is deprecated. Please use "altp2m" instead.',
            )
        h["smbios_firmware"] = self.string("smbios_firmware")
        h["acpi_firmware"] = self.string("acpi_firmware")
        buf = self.string("ms_vm_genid")
        if buf is not None and buf != "none":
            if buf == "generate":
                raise self.fail(
                    "ms_vm_genid",
                    "VM generation IDs are not supported by xenlite",
                    'remove ms_vm_genid= or set it to "none"',
                )
            raise self.fail(
                "ms_vm_genid",
                'ERROR: "ms_vm_genid" option must be "generate" or "none"',
                'write ms_vm_genid = "none"',
            )
        boundary = self.long("rdm_mem_boundary")
        if boundary is not None:
            h["rdm_mem_boundary_memkb"] = boundary * 1024
        caps = self.string_items("mca_caps") if self.setting("mca_caps") is not None else None
        if caps is not None:
            for atom in caps:
                if atom.text != "lmce":
                    raise self.fail(
                        "mca_caps",
                        f"ERROR: unrecognized MCA capability '{atom.text}'.",
                        'the only capability is "lmce"',
                        atom.pos,
                    )
                h["mca_caps"] = 1  # XEN_HVM_MCA_CAP_LMCE
        buf = self.string("firmware")
        if buf is not None:
            try:
                h["bios"] = BiosType(buf)
            except ValueError:
                if _prefix_of(buf, "uefi"):
                    h["bios"] = BiosType.OVMF
                elif not _prefix_of(buf, "bios"):
                    h["firmware"] = buf
        rdm = self.rdm()
        if rdm is not None:
            h["rdm"] = rdm
        h.update(self.hvm_display())
        return HvmBuildInfo(**h)

    def viridian(self) -> dict[str, Any]:
        s = self.setting("viridian")
        if s is None:
            return {}
        if isinstance(s.value, Atom):
            return {"viridian": self.defbool("viridian")}
        enable: set[int] = set()
        disable: set[int] = set()
        out: dict[str, Any] = {}
        for atom in self.string_items("viridian") or []:
            buf = atom.text
            if buf == "all":
                # libxl_bitmap_set_any on the 64-bit enable/disable width.
                enable |= set(range(64))
            elif buf == "defaults":
                out["viridian"] = True
            else:
                on, off = enable, disable
                if buf.startswith("!"):
                    on, off = disable, enable
                    buf = buf[1:]
                try:
                    bit = VIRIDIAN_ORDER.index(ViridianEnlightenment(buf))
                except ValueError:
                    raise self.fail(
                        "viridian",
                        f"xl: unknown viridian enlightenment '{buf}'",
                        "use names from xl.cfg(5), e.g. base, freq, time_ref_count, all, defaults",
                        atom.pos,
                    ) from None
                on.add(bit)
                off.discard(bit)
        out["viridian_enable"] = frozenset(enable)
        out["viridian_disable"] = frozenset(disable)
        return out

    def rdm(self) -> RdmReserve | None:
        """``rdm="strategy=host[,policy=strict|relaxed]"``; the policy defaults to strict.

        Beyond xl 4.17: its parser drops the whole setting as soon as ``policy=`` appears
        (and only reports bad strategies), so the documented form did nothing; xenlite
        honours it and refuses what it cannot read.
        """
        buf = self.string("rdm")
        if buf is None:
            return None
        strategy = RdmStrategy.IGNORE
        policy = RdmPolicy.STRICT
        for token in _split(buf, ","):
            key, sep, value = token.strip().partition("=")
            if key == "strategy" and sep and value == "host":
                strategy = RdmStrategy.HOST
            elif key == "policy" and sep and value in ("strict", "relaxed"):
                policy = RdmPolicy(value)
            else:
                raise self.fail(
                    "rdm",
                    f"Unknown RDM option '{token.strip()}'",
                    'write rdm = "strategy=host,policy=strict" (or policy=relaxed)',
                )
        return RdmReserve(strategy=strategy, policy=policy)

    def pv_info(self, dtype: DomainType | None, b: dict[str, Any]) -> PvBuildInfo | PvhBuildInfo:
        buf = self.string("firmware")
        if buf is not None:
            if b.get("kernel") is not None:
                raise self.fail(
                    "firmware",
                    "ERROR: both kernel and firmware specified",
                    "remove either kernel= or firmware=",
                )
            if not (_prefix_of(buf, "pvgrub32") or _prefix_of(buf, "pvgrub64")):
                raise self.fail(
                    "firmware",
                    "ERROR: only pvgrub{32|64} supported as firmware options",
                    'use firmware = "pvgrub64" or "pvgrub32", or kernel=',
                )
            b["kernel"] = f"{XENFIRMWAREDIR}/{buf}.bin"
        if b.get("bootloader") is None and b.get("kernel") is None:
            raise ConfigError(
                "Neither kernel nor bootloader specified",
                path=self._path(),
                line=1,
                col=1,
                key="kernel",
                fix='add kernel = "/path/to/vmlinuz" or bootloader = "pygrub"',
            )
        if dtype == DomainType.PVH:
            return PvhBuildInfo(
                pvshim=self.defbool("pvshim"),
                pvshim_path=self.string("pvshim_path"),
                pvshim_cmdline=self.string("pvshim_cmdline"),
                pvshim_extra=self.string("pvshim_extra"),
            )
        return PvBuildInfo(e820_host=self.defbool("e820_host"))

    def hvm_display(self) -> dict[str, Any]:
        h: dict[str, Any] = {"vnc": self.vnc_info(), "sdl": self.sdl_info()}
        buf = self.string("vga")
        if buf is not None:
            kinds = {"stdvga": VgaKind.STD, "cirrus": VgaKind.CIRRUS, "none": VgaKind.NONE}
            kinds["qxl"] = VgaKind.QXL
            if buf not in kinds:
                raise self.fail(
                    "vga",
                    f'Unknown vga "{buf}" specified',
                    'use "stdvga", "cirrus", "none" or "qxl"',
                )
            h["vga"] = VgaInfo(kind=kinds[buf])
        else:
            std = self.long("stdvga")
            if std is not None:
                h["vga"] = VgaInfo(kind=VgaKind.STD if std else VgaKind.CIRRUS)
        buf = self.string("hdtype")
        if buf is not None:
            h["hdtype"] = self.enum_value("hdtype", HdType, buf)
        h["keymap"] = self.string("keymap")
        spice: dict[str, Any] = {"enable": self.defbool("spice")}
        for key, fname in (("spiceport", "port"), ("spicetls_port", "tls_port")):
            value = self.long(key)
            if value is not None:
                spice[fname] = value
        spice["host"] = self.string("spicehost")
        spice["disable_ticketing"] = self.defbool("spicedisable_ticketing")
        spice["passwd"] = self.string("spicepasswd")
        spice["agent_mouse"] = self.defbool("spiceagent_mouse")
        spice["vdagent"] = self.defbool("spicevdagent")
        spice["clipboard_sharing"] = self.defbool("spice_clipboard_sharing")
        redir = self.long("spiceusbredirection")
        if redir is not None:
            spice["usbredirection"] = redir
        spice["image_compression"] = self.string("spice_image_compression")
        spice["streaming_video"] = self.string("spice_streaming_video")
        h["spice"] = SpiceInfo(**spice)
        h["nographic"] = self.defbool("nographic")
        gfx = self.setting("gfx_passthru")
        if gfx is not None:
            text = self.string("gfx_passthru") or ""
            number, rest = _strtoul(text, 0)
            if text and not rest and text.lstrip()[:1].isdigit():
                h["gfx_passthru"] = number != 0
            else:
                h["gfx_passthru_kind"] = self.enum_value("gfx_passthru", GfxPassthruKind, text)
                h["gfx_passthru"] = True
        serial = self.string_or_list("serial")
        if isinstance(serial, str):
            h["serial"] = serial
        elif serial is not None:
            h["serial_list"] = tuple(a.text for a in serial)
        h["boot"] = self.string("boot")
        h["usb"] = self.defbool("usb")
        usbversion = self.long("usbversion")
        if usbversion is not None:
            h["usbversion"] = usbversion
        usbdevice = self.string_or_list("usbdevice")
        if isinstance(usbdevice, str):
            h["usbdevice"] = usbdevice
        elif usbdevice is not None:
            h["usbdevice_list"] = tuple(a.text for a in usbdevice)
        h["vkb_device"] = self.defbool("vkb_device")
        h["soundhw"] = self.string("soundhw")
        h["xen_platform_pci"] = self.defbool("xen_platform_pci")
        vnc = h["vnc"]
        if vnc.listen and vnc.display and ":" in vnc.listen:
            raise self.fail(
                "vnclisten",
                "ERROR: Display specified both in vnclisten and vncdisplay!",
                "give the display either as vnclisten=ADDR:DISPLAY or as vncdisplay=",
            )
        buf = self.string("vendor_device")
        if buf is not None:
            try:
                h["vendor_device"] = VendorDevice(buf)
            except ValueError:
                raise self.fail(
                    "vendor_device",
                    f"xl: unknown vendor_device '{buf}'",
                    'use "xenserver" or "none"',
                ) from None
        return h

    def vnc_info(self) -> VncInfo:
        display = self.long("vncdisplay")
        return VncInfo(
            enable=self.defbool("vnc"),
            listen=self.string("vnclisten"),
            passwd=self.string("vncpasswd"),
            display=display if display is not None else 0,
            findunused=self.defbool("vncunused"),
        )

    def sdl_info(self) -> SdlInfo:
        return SdlInfo(
            enable=self.defbool("sdl"),
            opengl=self.defbool("opengl"),
            display=self.string("display"),
            xauthority=self.string("xauthority"),
        )

    def device_model(self) -> dict[str, Any]:
        b: dict[str, Any] = {}
        buf = self.string("device_model")
        if buf is not None:
            pos = self.pos("device_model")
            self.warn.add(pos, "WARNING: ignoring device_model directive.")
            self.warn.add(
                pos,
                'WARNING: Use "device_model_override" instead if you really want a '
                "non-default device_model",
            )
        b["device_model"] = self.string("device_model_override")
        buf = self.string("device_model_version")
        if buf is not None:
            versions = {
                "qemu-xen-traditional": DeviceModelVersion.QEMU_XEN_TRADITIONAL,
                "qemu-xen": DeviceModelVersion.QEMU_XEN,
            }
            if buf not in versions:
                raise self.fail(
                    "device_model_version",
                    f'Unknown device_model_version "{buf}" specified',
                    'use device_model_version = "qemu-xen"',
                )
            b["device_model_version"] = versions[buf]
        elif b["device_model"] is not None:
            self.warn.add(
                self.pos("device_model_override"),
                "WARNING: device model override given without specific DM version",
            )
        b["device_model_stubdomain"] = self.defbool("device_model_stubdomain_override")
        b["device_model_ssid_label"] = self.string("device_model_stubdomain_seclabel")
        b["device_model_user"] = self.string("device_model_user")
        b["stubdomain_kernel"] = self.string("stubdomain_kernel")
        b["stubdomain_ramdisk"] = self.string("stubdomain_ramdisk")
        mem = self.long("stubdomain_memory")
        if mem is not None:
            b["stubdomain_memkb"] = mem * 1024
        for key, fname in (
            ("device_model_args", "extra"),
            ("device_model_args_pv", "extra_pv"),
            ("device_model_args_hvm", "extra_hvm"),
        ):
            items = self.string_items(key) if self.setting(key) is not None else None
            if items is not None:
                b[fname] = tuple(a.text for a in items)
        return b

    def ioports(self) -> tuple[IoportRange, ...]:
        out = []
        for atom in self.list_or_empty("ioports"):
            first, rest = _strtoul(atom.text, 16)
            end = first
            bad = rest == atom.text
            if not bad and rest.startswith("-"):
                end, tail = _strtoul(rest[1:], 16)
                bad = tail == rest[1:] or tail != "" or first > end
            elif rest:
                bad = True
            if bad or end >= _UINT32_MAX:
                raise self.fail(
                    "ioports",
                    f"xl: Invalid argument parsing ioport: {atom.text}",
                    "write ioports as hex ranges such as '2f8-2ff'",
                    atom.pos,
                )
            out.append(IoportRange(first=first, number=end - first + 1))
        return tuple(out)

    def irqs(self) -> tuple[int, ...]:
        out = []
        for atom in self.list_or_empty("irqs"):
            value, rest = _strtoul(atom.text, 10)
            if rest == atom.text or rest or value >= _UINT32_MAX:
                raise self.fail(
                    "irqs",
                    f"xl: Invalid argument parsing irq: {atom.text}",
                    "write each IRQ as a decimal number",
                    atom.pos,
                )
            out.append(value)
        return tuple(out)

    def iomem(self) -> tuple[IomemRange, ...]:
        out = []
        for atom in self.list_or_empty("iomem"):
            m = re.fullmatch(
                r"\s*(?:0[xX])?([0-9a-fA-F]+),\s*(?:0[xX])?([0-9a-fA-F]+)"
                r"(?:@\s*(?:0[xX])?([0-9a-fA-F]+))?",
                atom.text,
            )
            if m is None:
                raise self.fail(
                    "iomem",
                    f"xl: Invalid argument parsing iomem: {atom.text}",
                    "write IOMEM_START,NUM_PAGES[@GFN] in hex",
                    atom.pos,
                )
            start, number, gfn = m.groups()
            rng = IomemRange(start=int(start, 16), number=int(number, 16))
            if gfn is not None:
                rng = replace(rng, gfn=int(gfn, 16))
            out.append(rng)
        return tuple(out)

    def list_or_empty(self, key: str) -> list[Atom]:
        if self.setting(key) is None:
            return []
        return self.string_items(key) or []

    # ------------------------------------------------------------ on_*

    def actions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, default in (
            ("on_poweroff", "destroy"),
            ("on_reboot", "restart"),
            ("on_watchdog", "destroy"),
            ("on_crash", "destroy"),
            ("on_soft_reset", "soft-reset"),
        ):
            buf = self.string(key)
            action = Action.from_xl_name(default if buf is None else buf)
            if action is None:
                names = ", ".join(a.xl_name for a in Action)
                raise self.fail(
                    key, f'Unknown {key} action "{buf}" specified', f"use one of: {names}"
                )
            out[key] = action
        return out

    # ------------------------------------------------------------ devices

    def devices(self, c_info: CreateInfo, b_info: BuildInfo) -> dict[str, Any]:
        d: dict[str, Any] = {}
        pv = c_info.type == DomainType.PV
        # xl starts each device from the pci_* globals and b_info->u.hvm.rdm.policy. For
        # PV/PVH that union member overlaps zeroed PV fields, so their devices read 0, i.e.
        # "strict"; HVM devices get the rdm= policy (unset: omitted).
        rdm_policy = b_info.hvm.rdm.policy if c_info.type == DomainType.HVM else RdmPolicy.STRICT
        pcis = []
        for atom in self.list_or_empty("pci"):
            spec = parse_pci_spec(atom.text, where=atom.pos)
            obj = spec.to_libxl_json(
                msitranslate=bool(self.long("pci_msitranslate") or 0),
                power_mgmt=bool(self.long("pci_power_mgmt") or 0),
                permissive=bool(self.long("pci_permissive") or 0),
                seize=bool(self.long("pci_seize") or 0),
                rdm_policy=PciRdmPolicy(rdm_policy.value),
            )
            pcis.append(self.from_spec_json(DevicePci, obj, "pci", atom.pos))
        d["pcidevs"] = tuple(pcis)
        if pcis and pv and isinstance(b_info.u, PvBuildInfo):
            b_info = replace(b_info, u=replace(b_info.u, e820_host=True))

        d["dtdevs"] = tuple(DeviceDtdev(path=a.text) for a in self.list_or_empty("dtdev"))
        d["disks"] = tuple(
            self.from_spec_json(
                DeviceDisk, parse_disk_spec(a.text, where=a.pos).to_libxl_json(), "disk", a.pos
            )
            for a in self.list_or_empty("disk")
        )
        d["p9s"] = tuple(self.p9(a) for a in self.list_or_empty("p9"))
        d["vtpms"] = tuple(self.vtpm(i, a) for i, a in enumerate(self.list_or_empty("vtpm")))
        d["vdispls"] = tuple(self.vdispl(i, a) for i, a in enumerate(self.list_or_empty("vdispl")))
        d["pvcallsifs"] = tuple(
            self.pvcalls(i, a) for i, a in enumerate(self.list_or_empty("pvcalls"))
        )
        d["vsnds"] = self.vsnds()
        d["channels"] = tuple(
            self.channel(i, a) for i, a in enumerate(self.list_or_empty("channel"))
        )
        d["nics"] = tuple(self.nic(i, a) for i, a in enumerate(self.list_or_empty("vif")))
        if self.setting("vif2") is not None:
            self.warn.add(
                self.pos("vif2"), "WARNING: vif2: netchannel2 is deprecated and not supported by xl"
            )
        vfbs: list[DeviceVfb] = []
        vkbs: list[DeviceVkb] = []
        for atom in self.list_or_empty("vfb"):
            vfbs.append(self.vfb(len(vfbs), atom))
            vkbs.append(DeviceVkb(devid=len(vkbs)))
        d["usbctrls"] = tuple(
            self.usbctrl(i, a) for i, a in enumerate(self.list_or_empty("usbctrl"))
        )
        d["usbdevs"] = tuple(self.usbdev(a) for a in self.list_or_empty("usbdev"))

        if pv and not vfbs and self.long("vnc"):
            keymap = self.string("keymap")
            vfbs.append(DeviceVfb(devid=0, vnc=self.vnc_info(), sdl=self.sdl_info(), keymap=keymap))
            vkbs.append(DeviceVkb(devid=len(vkbs)))
        for atom in self.list_or_empty("vkb"):
            vkbs.append(self.vkb(len(vkbs), atom))
        d["vfbs"] = tuple(vfbs)
        d["vkbs"] = tuple(vkbs)
        d["b_info"] = b_info
        return d

    def from_spec_json(self, cls: type[Any], obj: dict[str, object], key: str, pos: Pos) -> Any:
        try:
            return struct_from_json(cls, obj, source=pos.path)
        except ConfigError as exc:
            raise pos.error(exc.cause, key=key, fix=exc.fix) from None

    def nic(self, devid: int, atom: Atom) -> DeviceNic:
        spec, warnings = parse_vif_spec(atom.text, devid, where=atom.pos)
        for text in warnings:
            self.warn.add(atom.pos, text)
        obj = dict(spec.to_libxl_json())
        defaults = {
            "script": self.xlconf.vif_default_script,
            "bridge": self.xlconf.vif_default_bridge,
            "backend_domname": self.xlconf.vif_default_backend,
            "gatewaydev": self.xlconf.vif_default_gatewaydev,
        }
        for fname, value in defaults.items():
            if value is not None and fname not in obj:
                obj[fname] = value
        nic: DeviceNic = self.from_spec_json(DeviceNic, obj, "vif", atom.pos)
        return nic

    def _pairs(self, key: str, atom: Atom, allowed: Sequence[str]) -> dict[str, str]:
        """``k=v,k=v`` as xl's p9/vtpm/pvcalls loops read it (a token without '=' ends it)."""
        out: dict[str, str] = {}
        for token in _split(atom.text, ","):
            name, sep, value = token.lstrip(" ").partition("=")
            if not sep:
                break
            if name not in allowed:
                raise self.fail(
                    key,
                    f"Unknown string `{name}' in {key} spec",
                    "known keys: " + ", ".join(allowed),
                    atom.pos,
                )
            out[name] = value
        return out

    def p9(self, atom: Atom) -> DeviceP9:
        kv = self._pairs("9pfs", atom, ("security_model", "path", "tag", "backend"))
        if not all(k in kv for k in ("path", "security_model", "tag")):
            raise self.fail(
                "p9",
                "9pfs spec missing required field!",
                "give tag=, path= and security_model=",
                atom.pos,
            )
        return DeviceP9(
            backend_domname=kv.get("backend"),
            tag=kv["tag"],
            path=kv["path"],
            security_model=kv["security_model"],
            # xl numbers the p9 device, then re-initialises it: its devid stays -1 (auto).
        )

    def vtpm(self, devid: int, atom: Atom) -> DeviceVtpm:
        kv = self._pairs("vtpm", atom, ("backend", "uuid"))
        uuid = None
        if "uuid" in kv:
            uuid = _valid_uuid(kv["uuid"])
            if uuid is None:
                raise self.fail(
                    "vtpm",
                    f"Failed to parse vtpm UUID: {kv['uuid']}",
                    "give a valid UUID",
                    atom.pos,
                )
        if "backend" not in kv:
            raise self.fail(
                "vtpm",
                "vtpm spec missing required backend field!",
                "add backend=<domain name>",
                atom.pos,
            )
        return DeviceVtpm(backend_domname=kv["backend"], devid=devid, uuid=uuid)

    def pvcalls(self, devid: int, atom: Atom) -> DevicePvcallsif:
        kv = self._pairs("pvcalls", atom, ("backend",))
        return DevicePvcallsif(backend_domname=kv.get("backend"), devid=devid)

    def vdispl(self, devid: int, atom: Atom) -> DeviceVdispl:
        backend = None
        be_alloc = False
        connectors: list[ConnectorParam] = []
        for token in _split(atom.text, ","):
            token = token.lstrip(" ")
            if token.startswith("backend="):
                backend = token[len("backend=") :]
            elif token.startswith("be-alloc="):
                be_alloc = _strtoul(token[len("be-alloc=") :], 0)[0] != 0
            elif token.startswith("connectors="):
                connectors = []
                for conn in _split(token[len("connectors=") :], ";"):
                    parts = _split(conn, ":")
                    m = re.match(r"\s*(\d+)x\s*(\d+)", parts[1]) if len(parts) >= 2 else None
                    if m is None:
                        raise self.fail(
                            "vdispl",
                            "Can't parse connector resolution",
                            "write connectors=ID:WIDTHxHEIGHT;ID:WIDTHxHEIGHT",
                            atom.pos,
                        )
                    connectors.append(
                        ConnectorParam(unique_id=parts[0], width=int(m[1]), height=int(m[2]))
                    )
            else:
                raise self.fail(
                    "vdispl",
                    f'Unknown string "{token}" in vdispl spec',
                    "known keys: backend=, be-alloc=, connectors=",
                    atom.pos,
                )
        if not connectors:
            raise self.fail(
                "vdispl",
                "At least one connector should be specified.",
                "add connectors=ID:WIDTHxHEIGHT",
                atom.pos,
            )
        return DeviceVdispl(
            backend_domname=backend,
            devid=devid,
            be_alloc=be_alloc,
            connectors=tuple(connectors),
        )

    def vsnds(self) -> tuple[DeviceVsnd, ...]:
        s = self.setting("vsnd")
        if s is None:
            return ()
        if isinstance(s.value, Atom):
            raise s.pos.error("should be a list of cards", key="vsnd", fix="see xl.cfg(5) vsnd=")
        cards = []
        for devid, card in enumerate(s.value.items):
            if isinstance(card, Atom):
                raise card.pos.error(
                    "Failed to get vsnd card list: each card is a list of items",
                    key="vsnd",
                    fix="write vsnd = [ [ 'card, ...', 'pcm, ...' ] ]",
                )
            cards.append(_VsndBuilder(self, devid).card(card))
        return tuple(cards)

    def channel(self, devid: int, atom: Atom) -> DeviceChannel:
        backend = name = path = None
        connection = ChannelConnection.UNKNOWN
        for pair in _split(atom.text, ","):
            parts = _split(pair, "=")
            if len(parts) < 2:
                raise self.fail(
                    "channel",
                    f"failed to parse channel configuration: {pair}",
                    "write key=value pairs",
                    atom.pos,
                )
            key, value = parts[0].strip(), parts[1].strip()
            if key == "backend":
                backend = value
            elif key == "name":
                name = value
            elif key == "path":
                path = value
            elif key == "connection":
                if value not in ("pty", "socket"):
                    raise self.fail(
                        "channel",
                        f"unknown channel connection '{value}'",
                        "use connection=pty or connection=socket",
                        atom.pos,
                    )
                connection = ChannelConnection(value)
            else:
                self.warn.add(atom.pos, f"unknown channel parameter '{key}', ignoring")
        u: ChannelPty | ChannelSocket
        if connection == ChannelConnection.UNKNOWN:
            raise self.fail(
                "channel", "channel has unknown 'connection'", "add connection=pty", atom.pos
            )
        if connection == ChannelConnection.SOCKET:
            if path is None:
                raise self.fail(
                    "channel",
                    "channel connection 'socket' requires path=..",
                    "add path=/run/...sock",
                    atom.pos,
                )
            u = ChannelSocket(path=path)
        else:
            u = ChannelPty()
        return DeviceChannel(backend_domname=backend, devid=devid, name=name, u=u)

    def vfb(self, devid: int, atom: Atom) -> DeviceVfb:
        vnc: dict[str, Any] = {}
        sdl: dict[str, Any] = {}
        keymap = None
        for token in _split(atom.text, ","):
            key, sep, value = token.lstrip(" ").partition("=")
            if not sep:
                break
            if key == "vnc":
                vnc["enable"] = _atoi(value) != 0
            elif key == "vnclisten":
                vnc["listen"] = value
            elif key == "vncpasswd":
                vnc["passwd"] = value
            elif key == "vncdisplay":
                vnc["display"] = _atoi(value)
            elif key == "vncunused":
                vnc["findunused"] = _atoi(value) != 0
            elif key == "keymap":
                keymap = value
            elif key == "sdl":
                sdl["enable"] = _atoi(value) != 0
            elif key == "opengl":
                sdl["opengl"] = _atoi(value) != 0
            elif key == "display":
                sdl["display"] = value
            elif key == "xauthority":
                sdl["xauthority"] = value
            else:
                self.warn.add(atom.pos, f"vfb: unknown option '{key}' ignored by xl")
        return DeviceVfb(devid=devid, vnc=VncInfo(**vnc), sdl=SdlInfo(**sdl), keymap=keymap)

    def vkb(self, devid: int, atom: Atom) -> DeviceVkb:
        v: dict[str, Any] = {"devid": devid}
        numeric = {
            "feature-disable-keyboard": "feature_disable_keyboard",
            "feature-disable-pointer": "feature_disable_pointer",
            "feature-abs-pointer": "feature_abs_pointer",
            "feature-raw-pointer": "feature_raw_pointer",
            "feature-multi-touch": "feature_multi_touch",
            "multi-touch-width": "multi_touch_width",
            "multi-touch-height": "multi_touch_height",
            "multi-touch-num-contacts": "multi_touch_num_contacts",
            "width": "width",
            "height": "height",
        }
        for token in _split(atom.text, ","):
            token = token.lstrip(" ")
            key, sep, value = token.partition("=")
            if sep and key == "backend":
                v["backend_domname"] = value
            elif sep and key == "backend-type":
                try:
                    v["backend_type"] = VkbBackend(value.lower())
                except ValueError:
                    raise self.fail(
                        "vkb",
                        f'Unknown backend_type "{value}" in vkb spec',
                        "use backend-type=qemu or backend-type=linux",
                        atom.pos,
                    ) from None
            elif sep and key == "unique-id":
                v["unique_id"] = value
            elif sep and key in numeric:
                number = _strtoul(value, 0)[0]
                fname = numeric[key]
                v[fname] = (number != 0) if fname.startswith("feature") else number
            else:
                raise self.fail(
                    "vkb", f'Unknown string "{token}" in vkb spec', "see xl.cfg(5) vkb=", atom.pos
                )
        if v.get("backend_type", VkbBackend.UNKNOWN) == VkbBackend.UNKNOWN:
            raise self.fail(
                "vkb", "backend-type should be set in vkb spec", "add backend-type=linux", atom.pos
            )
        touch = ("multi_touch_height", "multi_touch_width", "multi_touch_num_contacts")
        if any(v.get(k) for k in touch):
            v["feature_multi_touch"] = True
        if v.get("feature_multi_touch") and not any(v.get(k) for k in touch):
            raise self.fail(
                "vkb",
                "multi-touch-width, multi-touch-height, multi-touch-num-contacts should be set "
                "for multi touch in vkb spec",
                "give the multi-touch sizes",
                atom.pos,
            )
        return DeviceVkb(**v)

    def usbctrl(self, devid: int, atom: Atom) -> DeviceUsbctrl:
        u: dict[str, Any] = {"devid": devid}
        for token in _split(atom.text, ","):
            token = token.lstrip(" ")
            key, sep, value = token.partition("=")
            if sep and key == "type":
                try:
                    u["type"] = UsbctrlType(value.lower())
                except ValueError:
                    raise self.fail(
                        "usbctrl",
                        f"Invalid usb controller type '{value}'",
                        "use type=auto, pv, devicemodel or qusb",
                        atom.pos,
                    ) from None
            elif sep and key in ("version", "ports"):
                u[key] = _atoi(value)
            else:
                raise self.fail(
                    "usbctrl",
                    f"Unknown string `{token}' in usbctrl spec",
                    "known keys: type=, version=, ports=",
                    atom.pos,
                )
        return DeviceUsbctrl(**u)

    def usbdev(self, atom: Atom) -> DeviceUsbdev:
        ctrl = -1
        port = 0
        typed = False
        hostbus = hostaddr = 0
        for token in _split(atom.text, ","):
            token = token.lstrip(" ")
            key, sep, value = token.partition("=")
            if sep and key == "type":
                if value != "hostdev":
                    raise self.fail(
                        "usbdev",
                        f"Invalid usb device type: {value}",
                        "use type=hostdev",
                        atom.pos,
                    )
                typed = True
            elif sep and key == "hostbus":
                hostbus = _strtoul(value, 0)[0] & 0xFF
            elif sep and key == "hostaddr":
                hostaddr = _strtoul(value, 0)[0] & 0xFF
            elif sep and key == "controller":
                ctrl = _atoi(value)
            elif sep and key == "port":
                port = _atoi(value)
            else:
                raise self.fail(
                    "usbdev",
                    f"Unknown string `{token}' in usbdev spec",
                    "known keys: type=, hostbus=, hostaddr=, controller=, port=",
                    atom.pos,
                )
        # Without an explicit type=hostdev xl's union stays unkeyed and libxl drops
        # hostbus/hostaddr from the config; xenlite keeps xl's result.
        u = UsbHostdev(hostbus=hostbus, hostaddr=hostaddr) if typed else None
        return DeviceUsbdev(ctrl=ctrl, port=port, u=u)


# XENSND_FIELD_* names (xen/include/public/io/sndif.h).
_SND_PARAMS = ("sample-rates", "sample-formats", "channels-min", "channels-max", "buffer-size")


class _VsndBuilder:
    """One ``vsnd=`` card: items "card, ...", "pcm, ...", "stream, ..." as xl reads them."""

    def __init__(self, owner: _Builder, devid: int) -> None:
        self.owner = owner
        self.devid = devid
        self.card_kv: dict[str, Any] = {"params": VsndParams()}
        self.pcms: list[dict[str, Any]] = []

    def error(self, cause: str, pos: Pos) -> ConfigError:
        return pos.error(cause, key="vsnd", fix="see xl.cfg(5) vsnd= for the item syntax")

    def params(self, params: VsndParams, token: str, pos: Pos) -> VsndParams | None:
        key, sep, value = token.partition("=")
        if not sep or key not in _SND_PARAMS:
            return None
        if key == "sample-rates":
            rates = tuple(_strtoul(r, 0)[0] for r in _split(value, ";"))
            return replace(params, sample_rates=rates)
        if key == "sample-formats":
            formats = []
            for name in _split(value, ";"):
                try:
                    formats.append(VsndPcmFormat(name.lower()))
                except ValueError:
                    raise self.error(f"Invalid pcm format: {name}", pos) from None
            return replace(params, sample_formats=tuple(formats))
        changes: dict[str, Any] = {key.replace("-", "_"): _strtoul(value, 0)[0]}
        return replace(params, **changes)

    def card(self, items: ListValue) -> DeviceVsnd:
        for item in items.items:
            if isinstance(item, ListValue):
                raise self.error("a vsnd item must be a string", item.pos)
            self.item(item)
        pcms = []
        for pcm in self.pcms:
            streams = tuple(VsndStream(**s) for s in pcm.pop("streams"))
            pcms.append(VsndPcm(streams=streams, **pcm))
        return DeviceVsnd(devid=self.devid, pcms=tuple(pcms), **self.card_kv)

    def item(self, atom: Atom) -> None:
        tokens = [t.lstrip(" ") for t in _split(atom.text, ",")]
        if not tokens:
            return
        kind = tokens[0].lower()
        if kind == "pcm":
            self.pcms.append({"params": VsndParams(), "streams": []})
        elif kind == "stream":
            if not self.pcms:
                self.pcms.append({"params": VsndParams(), "streams": []})
            self.pcms[-1]["streams"].append({"params": VsndParams()})
        elif kind != "card":
            raise self.error(f"Invalid key: {tokens[0]}", atom.pos)
        for token in tokens[1:]:
            if kind == "card":
                target = self.card_kv
                extra = {"backend": "backend_domname", "short-name": "short_name"}
                extra["long-name"] = "long_name"
            elif kind == "pcm":
                target = self.pcms[-1]
                extra = {"name": "name"}
            else:
                target = self.pcms[-1]["streams"][-1]
                extra = {"unique-id": "unique_id", "type": "type"}
            new = self.params(target["params"], token, atom.pos)
            if new is not None:
                target["params"] = new
                continue
            key, sep, value = token.partition("=")
            if not sep or key not in extra:
                raise self.error(f"Invalid parameter: {token}", atom.pos)
            if key == "type":
                try:
                    target["type"] = VsndStreamType(value.lower())
                except ValueError:
                    raise self.error(f"Invalid stream type: {value}", atom.pos) from None
            else:
                target[extra[key]] = value


# ---------------------------------------------------------------- rendering


def _quote(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + esc.replace("\r", "\\r").replace("\t", "\\t") + '"'


def render_domain_config(cfg: DomainConfig) -> str:
    """xl.cfg text for the part of ``cfg`` that xl.cfg keys can express.

    Covers type, name, uuid, memory/maxmem, vcpus/maxvcpus, cpus, cpu_weight/cap, pool,
    kernel/ramdisk/cmdline, bootloader(_args) and the on_* actions. Building the rendered
    text gives back ``cfg`` for configs in that subset.

    :raise ValueError: for memory not a whole number of MiB, which xl.cfg cannot express.
    """
    c, b = cfg.c_info, cfg.b_info
    lines: list[str] = []

    def emit(key: str, value: str) -> None:
        lines.append(f"{key} = {value}")

    if c.type is not None:
        emit("type", _quote(c.type.value))
    if c.name is not None:
        emit("name", _quote(c.name))
    if c.uuid is not None:
        emit("uuid", _quote(c.uuid))
    if c.pool_name is not None:
        emit("pool", _quote(c.pool_name))
    for key, kb in (("memory", b.target_memkb), ("maxmem", b.max_memkb)):
        if kb is not None:
            if kb % 1024:
                raise ValueError(f"{key} of {kb} KiB is not a whole number of MiB")
            emit(key, str(kb // 1024))
    if b.avail_vcpus:
        emit("vcpus", str(len(b.avail_vcpus)))
    if b.max_vcpus:
        emit("maxvcpus", str(b.max_vcpus))
    if b.vcpu_hard_affinity:
        items = ", ".join(_quote(_cpulist(bits)) for bits in b.vcpu_hard_affinity)
        emit("cpus", f"[ {items} ]")
    if b.sched_params.weight != -1:
        emit("cpu_weight", str(b.sched_params.weight))
    if b.sched_params.cap != -1:
        emit("cap", str(b.sched_params.cap))
    for key in ("kernel", "ramdisk", "cmdline", "bootloader"):
        value = getattr(b, key)
        if value is not None:
            emit(key, _quote(value))
    if b.bootloader_args:
        emit("bootloader_args", "[ " + ", ".join(_quote(a) for a in b.bootloader_args) + " ]")
    for key in ("on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset"):
        emit(key, _quote(getattr(cfg, key).xl_name))
    return "\n".join(lines) + "\n"


def _cpulist(bits: frozenset[int]) -> str:
    return ",".join(str(i) for i in sorted(bits)) if bits else ""
