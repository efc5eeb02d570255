"""The typed domain model: libxl's ``libxl_domain_config`` as frozen dataclasses.

Implements the structures of Xen 4.17's ``tools/libs/light/libxl_types.idl`` that
``xl create`` fills from an xl.cfg(5) file: ``libxl_domain_create_info``,
``libxl_domain_build_info`` (with its ``type.hvm`` / ``type.pv`` / ``type.pvh`` union) and
the device structures. Fields keep the IDL's names and order, and every default is libxl's
"unset" value, so that the JSON that ``libxl_json.py`` derives from field metadata omits
exactly what libxl omits.

Each field carries a ``kind`` in its metadata telling the JSON codec how libxl encodes it:
``str``, ``int``, ``bool`` (JSON true/false), ``defbool`` ("True"/"False"), ``enum``,
``bitmap`` (index array), ``bitmaps``, ``struct`` (always emitted), ``array``,
``string_list``, ``kv_list`` (JSON object) and ``union`` (``"<key>.<member>": {...}``).
The enumerations the fields use are defined in ``choices`` and re-exported here.
"""

# The field helpers below (string(), integer(), enum(), ...) return dataclasses.field()s
# carrying the JSON kind; RUF009 cannot see that.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from xenlite.config.domain.choices import (
    ALTP2M_ORDER,
    TIMER_MODE_ORDER,
    TSC_MODE_ORDER,
    VIRIDIAN_ORDER,
    Action,
    AltP2mMode,
    BiosType,
    ChannelConnection,
    DeviceModelVersion,
    DiskBackend,
    DiskFormat,
    DiskSpecification,
    DiskTransport,
    DomainType,
    GfxPassthruKind,
    GicVersion,
    HdType,
    NicType,
    Passthrough,
    RdmPolicy,
    RdmStrategy,
    Scheduler,
    TeeType,
    TimerMode,
    TscMode,
    UsbctrlType,
    VendorDevice,
    VgaKind,
    ViridianEnlightenment,
    VkbBackend,
    VsndPcmFormat,
    VsndStreamType,
    VuartType,
)

# The choices are re-exported: the model's users import them from here.
__all__ = [
    "ALTP2M_ORDER",
    "DEVID_AUTO",
    "INVALID_GFN",
    "SCHED_PARAM_DEFAULT",
    "TIMER_MODE_ORDER",
    "TSC_MODE_ORDER",
    "VIRIDIAN_ORDER",
    "Action",
    "AltP2mMode",
    "ArchArm",
    "ArchX86",
    "BiosType",
    "BuildInfo",
    "ChannelConnection",
    "ChannelPty",
    "ChannelSocket",
    "ConnectorParam",
    "CreateInfo",
    "DeviceChannel",
    "DeviceDisk",
    "DeviceDtdev",
    "DeviceModelVersion",
    "DeviceNic",
    "DeviceP9",
    "DevicePci",
    "DevicePvcallsif",
    "DeviceUsbctrl",
    "DeviceUsbdev",
    "DeviceVdispl",
    "DeviceVfb",
    "DeviceVkb",
    "DeviceVsnd",
    "DeviceVtpm",
    "DiskBackend",
    "DiskFormat",
    "DiskSpecification",
    "DiskTransport",
    "DomainConfig",
    "DomainType",
    "GfxPassthruKind",
    "GicVersion",
    "HdType",
    "HvmBuildInfo",
    "IomemRange",
    "IoportRange",
    "NicType",
    "Passthrough",
    "PvBuildInfo",
    "PvhBuildInfo",
    "RdmPolicy",
    "RdmReserve",
    "RdmStrategy",
    "SchedParams",
    "Scheduler",
    "SdlInfo",
    "SpiceInfo",
    "TeeType",
    "TimerMode",
    "TscMode",
    "UsbHostdev",
    "UsbctrlType",
    "VendorDevice",
    "VgaInfo",
    "VgaKind",
    "ViridianEnlightenment",
    "VkbBackend",
    "VncInfo",
    "VnodeInfo",
    "VsndParams",
    "VsndPcm",
    "VsndPcmFormat",
    "VsndStream",
    "VsndStreamType",
    "VuartType",
    "array",
    "bitmap",
    "bitmaps",
    "boolean",
    "defbool",
    "enum",
    "integer",
    "kv_list",
    "string",
    "string_list",
    "struct",
    "union",
]

# ---------------------------------------------------------------- field helpers


def _meta(kind: str, **extra: object) -> dict[str, object]:
    return {"kind": kind, **extra}


def string() -> Any:
    """An optional libxl string (NULL when unset)."""
    return dataclasses.field(default=None, metadata=_meta("str"))


def integer(default: int | None = 0) -> Any:
    """A libxl integer; omitted from JSON while it equals its IDL init value."""
    return dataclasses.field(default=default, metadata=_meta("int"))


def boolean() -> Any:
    """A plain C bool (JSON true/false), false by default."""
    return dataclasses.field(default=False, metadata=_meta("bool"))


def defbool() -> Any:
    """A libxl_defbool: None is "default", else JSON "True"/"False"."""
    return dataclasses.field(default=None, metadata=_meta("defbool"))


def enum(cls: type[StrEnum], default: StrEnum | None = None) -> Any:
    """A libxl enumeration; JSON is the lower-case name."""
    return dataclasses.field(default=default, metadata=_meta("enum", cls=cls))


def bitmap() -> Any:
    """A libxl_bitmap, as the set of its set bits."""
    return dataclasses.field(default=frozenset(), metadata=_meta("bitmap"))


def bitmaps() -> Any:
    """An array of bitmaps (per-vCPU affinity)."""
    return dataclasses.field(default=(), metadata=_meta("bitmaps"))


def struct(cls: type) -> Any:
    """A nested struct: always present in libxl's JSON, even when all default."""
    return dataclasses.field(default_factory=cls, metadata=_meta("struct", cls=cls))


def array(item: type) -> Any:
    """An IDL Array of structs or integers; omitted from JSON when empty."""
    return dataclasses.field(default=(), metadata=_meta("array", item=item))


def string_list() -> Any:
    """A libxl_string_list; omitted when empty."""
    return dataclasses.field(default=(), metadata=_meta("string_list"))


def kv_list() -> Any:
    """A libxl_key_value_list, as ordered pairs; omitted when empty."""
    return dataclasses.field(default=(), metadata=_meta("kv_list"))


def cpuid_policy() -> Any:
    """A libxl_cpuid_policy_list, as its leaves; JSON ``{"cpuid": [...], "msr": []}``,
    omitted when empty."""
    return dataclasses.field(default=(), metadata=_meta("cpuid"))


def union(key: str, members: tuple[type, ...]) -> Any:
    """A KeyedUnion: JSON ``"<key>.<member>"`` holding the member struct."""
    return dataclasses.field(default=None, metadata=_meta("union", key=key, members=members))


@dataclass(frozen=True, slots=True)
class CpuidLeaf:
    """One leaf of a CPUID policy (config/domain/cpuid.py): each register's 32 characters,
    bit 31 first, each 0, 1, x, k or s; None where the policy leaves the register alone."""

    leaf: int = integer()
    subleaf: int | None = integer(None)
    eax: str | None = string()
    ebx: str | None = string()
    ecx: str | None = string()
    edx: str | None = string()


@dataclass(frozen=True, slots=True)
class IoportRange:
    first: int = integer()
    number: int = integer()


# LIBXL_INVALID_GFN: ~0ULL, the "no guest frame given" marker of iomem ranges.
INVALID_GFN = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class IomemRange:
    start: int = integer()
    number: int = integer()
    gfn: int = integer(INVALID_GFN)


@dataclass(frozen=True, slots=True)
class VgaInfo:
    kind: VgaKind | None = enum(VgaKind)


@dataclass(frozen=True, slots=True)
class VncInfo:
    enable: bool | None = defbool()
    listen: str | None = string()
    passwd: str | None = string()
    display: int = integer()
    findunused: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class SpiceInfo:
    enable: bool | None = defbool()
    port: int = integer()
    tls_port: int = integer()
    host: str | None = string()
    disable_ticketing: bool | None = defbool()
    passwd: str | None = string()
    agent_mouse: bool | None = defbool()
    vdagent: bool | None = defbool()
    clipboard_sharing: bool | None = defbool()
    usbredirection: int = integer()
    image_compression: str | None = string()
    streaming_video: str | None = string()


@dataclass(frozen=True, slots=True)
class SdlInfo:
    enable: bool | None = defbool()
    opengl: bool | None = defbool()
    display: str | None = string()
    xauthority: str | None = string()


@dataclass(frozen=True, slots=True)
class RdmReserve:
    strategy: RdmStrategy = enum(RdmStrategy, RdmStrategy.IGNORE)
    policy: RdmPolicy = enum(RdmPolicy, RdmPolicy.INVALID)


# LIBXL_DOMAIN_SCHED_PARAM_*_DEFAULT: -1 for every scheduler parameter.
SCHED_PARAM_DEFAULT = -1


@dataclass(frozen=True, slots=True)
class SchedParams:
    """libxl_domain_sched_params: every parameter -1 ("scheduler's default") when unset."""

    sched: Scheduler = enum(Scheduler, Scheduler.UNKNOWN)
    weight: int = integer(SCHED_PARAM_DEFAULT)
    cap: int = integer(SCHED_PARAM_DEFAULT)
    period: int = integer(SCHED_PARAM_DEFAULT)
    budget: int = integer(SCHED_PARAM_DEFAULT)
    extratime: int = integer(SCHED_PARAM_DEFAULT)
    slice: int = integer(SCHED_PARAM_DEFAULT)
    latency: int = integer(SCHED_PARAM_DEFAULT)


@dataclass(frozen=True, slots=True)
class VnodeInfo:
    memkb: int | None = integer(None)
    distances: tuple[int, ...] = array(int)
    pnode: int = integer()
    vcpus: frozenset[int] = bitmap()


# ---------------------------------------------------------------- create info


@dataclass(frozen=True, slots=True)
class CreateInfo:
    """libxl_domain_create_info."""

    type: DomainType | None = enum(DomainType)
    hap: bool | None = defbool()
    oos: bool | None = defbool()
    ssidref: int = integer()
    ssid_label: str | None = string()
    name: str | None = string()
    domid: int = integer()
    uuid: str | None = string()
    xsdata: tuple[tuple[str, str], ...] = kv_list()
    platformdata: tuple[tuple[str, str], ...] = kv_list()
    poolid: int = integer()
    pool_name: str | None = string()
    run_hotplug_scripts: bool | None = defbool()
    driver_domain: bool | None = defbool()
    passthrough: Passthrough = enum(Passthrough, Passthrough.DEFAULT)
    xend_suspend_evtchn_compat: bool | None = defbool()


# ---------------------------------------------------------------- build info


@dataclass(frozen=True, slots=True)
class HvmBuildInfo:
    """The ``type.hvm`` member of libxl_domain_build_info."""

    TAG: ClassVar[str] = "hvm"

    firmware: str | None = string()
    bios: BiosType | None = enum(BiosType)
    pae: bool | None = defbool()
    apic: bool | None = defbool()
    acpi: bool | None = defbool()
    acpi_s3: bool | None = defbool()
    acpi_s4: bool | None = defbool()
    acpi_laptop_slate: bool | None = defbool()
    nx: bool | None = defbool()
    viridian: bool | None = defbool()
    viridian_enable: frozenset[int] = bitmap()
    viridian_disable: frozenset[int] = bitmap()
    timeoffset: str | None = string()
    hpet: bool | None = defbool()
    vpt_align: bool | None = defbool()
    mmio_hole_memkb: int | None = integer(None)
    timer_mode: TimerMode | None = enum(TimerMode)
    nested_hvm: bool | None = defbool()
    altp2m: bool | None = defbool()
    system_firmware: str | None = string()
    smbios_firmware: str | None = string()
    acpi_firmware: str | None = string()
    hdtype: HdType = enum(HdType, HdType.IDE)
    nographic: bool | None = defbool()
    vga: VgaInfo = struct(VgaInfo)
    vnc: VncInfo = struct(VncInfo)
    keymap: str | None = string()
    sdl: SdlInfo = struct(SdlInfo)
    spice: SpiceInfo = struct(SpiceInfo)
    gfx_passthru: bool | None = defbool()
    gfx_passthru_kind: GfxPassthruKind = enum(GfxPassthruKind, GfxPassthruKind.DEFAULT)
    serial: str | None = string()
    boot: str | None = string()
    usb: bool | None = defbool()
    usbversion: int = integer()
    usbdevice: str | None = string()
    vkb_device: bool | None = defbool()
    soundhw: str | None = string()
    xen_platform_pci: bool | None = defbool()
    usbdevice_list: tuple[str, ...] = string_list()
    vendor_device: VendorDevice = enum(VendorDevice, VendorDevice.NONE)
    serial_list: tuple[str, ...] = string_list()
    rdm: RdmReserve = struct(RdmReserve)
    rdm_mem_boundary_memkb: int | None = integer(None)
    mca_caps: int = integer()
    pirq: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class PvBuildInfo:
    """The ``type.pv`` member (its kernel/ramdisk/cmdline live at b_info level since 4.10)."""

    TAG: ClassVar[str] = "pv"

    slack_memkb: int | None = integer(None)
    features: str | None = string()
    e820_host: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class PvhBuildInfo:
    """The ``type.pvh`` member."""

    TAG: ClassVar[str] = "pvh"

    pvshim: bool | None = defbool()
    pvshim_path: str | None = string()
    pvshim_cmdline: str | None = string()
    pvshim_extra: str | None = string()


TypeInfo = HvmBuildInfo | PvBuildInfo | PvhBuildInfo


@dataclass(frozen=True, slots=True)
class ArchArm:
    gic_version: GicVersion = enum(GicVersion, GicVersion.DEFAULT)
    vuart: VuartType = enum(VuartType, VuartType.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ArchX86:
    msr_relaxed: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """libxl_domain_build_info. Memory is in KiB; None is LIBXL_MEMKB_DEFAULT."""

    max_vcpus: int = integer()
    avail_vcpus: frozenset[int] = bitmap()
    cpumap: frozenset[int] = bitmap()
    nodemap: frozenset[int] = bitmap()
    vcpu_hard_affinity: tuple[frozenset[int], ...] = bitmaps()
    vcpu_soft_affinity: tuple[frozenset[int], ...] = bitmaps()
    numa_placement: bool | None = defbool()
    tsc_mode: TscMode = enum(TscMode, TscMode.DEFAULT)
    max_memkb: int | None = integer(None)
    target_memkb: int | None = integer(None)
    video_memkb: int | None = integer(None)
    shadow_memkb: int | None = integer(None)
    iommu_memkb: int | None = integer(None)
    rtc_timeoffset: int = integer()
    exec_ssidref: int = integer()
    exec_ssid_label: str | None = string()
    localtime: bool | None = defbool()
    disable_migrate: bool | None = defbool()
    cpuid: tuple[CpuidLeaf, ...] = cpuid_policy()
    blkdev_start: str | None = string()
    vnuma_nodes: tuple[VnodeInfo, ...] = array(VnodeInfo)
    # LIBXL_MAX_GRANT_DEFAULT (-1): Xen's command-line limits apply.
    max_grant_frames: int | None = integer(None)
    max_maptrack_frames: int | None = integer(None)
    max_grant_version: int | None = integer(None)
    device_model_version: DeviceModelVersion | None = enum(DeviceModelVersion)
    device_model_stubdomain: bool | None = defbool()
    stubdomain_memkb: int | None = integer(None)
    stubdomain_kernel: str | None = string()
    stubdomain_cmdline: str | None = string()
    stubdomain_ramdisk: str | None = string()
    device_model: str | None = string()
    device_model_ssidref: int = integer()
    device_model_ssid_label: str | None = string()
    device_model_user: str | None = string()
    extra: tuple[str, ...] = string_list()
    extra_pv: tuple[str, ...] = string_list()
    extra_hvm: tuple[str, ...] = string_list()
    sched_params: SchedParams = struct(SchedParams)
    ioports: tuple[IoportRange, ...] = array(IoportRange)
    irqs: tuple[int, ...] = array(int)
    iomem: tuple[IomemRange, ...] = array(IomemRange)
    claim_mode: bool | None = defbool()
    event_channels: int = integer()
    kernel: str | None = string()
    cmdline: str | None = string()
    ramdisk: str | None = string()
    device_tree: str | None = string()
    acpi: bool | None = defbool()
    bootloader: str | None = string()
    bootloader_args: tuple[str, ...] = string_list()
    bootloader_restrict: bool | None = defbool()
    bootloader_user: str | None = string()
    timer_mode: TimerMode | None = enum(TimerMode)
    nested_hvm: bool | None = defbool()
    apic: bool | None = defbool()
    dm_restrict: bool | None = defbool()
    tee: TeeType = enum(TeeType, TeeType.NONE)
    u: TypeInfo | None = union("type", (HvmBuildInfo, PvBuildInfo, PvhBuildInfo))
    arch_arm: ArchArm = struct(ArchArm)
    arch_x86: ArchX86 = struct(ArchX86)
    altp2m: AltP2mMode = enum(AltP2mMode, AltP2mMode.DISABLED)
    vmtrace_buf_kb: int = integer()
    vpmu: bool | None = defbool()

    @property
    def hvm(self) -> HvmBuildInfo:
        """The HVM member; an all-default one for other types (xl reads it for pci too)."""
        return self.u if isinstance(self.u, HvmBuildInfo) else HvmBuildInfo()


# ---------------------------------------------------------------- devices

# libxl_devid's init value: "pick the next free devid at create time".
DEVID_AUTO = -1


@dataclass(frozen=True, slots=True)
class DeviceDisk:
    """libxl_device_disk (docs/misc/xl-disk-configuration)."""

    backend_domid: int = integer()
    backend_domname: str | None = string()
    pdev_path: str | None = string()
    vdev: str | None = string()
    backend: DiskBackend = enum(DiskBackend, DiskBackend.UNKNOWN)
    format: DiskFormat = enum(DiskFormat, DiskFormat.UNKNOWN)
    script: str | None = string()
    removable: int = integer()
    readwrite: int = integer()
    is_cdrom: int = integer()
    direct_io_safe: bool = boolean()
    discard_enable: bool | None = defbool()
    specification: DiskSpecification = enum(DiskSpecification, DiskSpecification.UNKNOWN)
    transport: DiskTransport = enum(DiskTransport, DiskTransport.UNKNOWN)
    irq: int = integer()
    base: int = integer()
    colo_enable: bool | None = defbool()
    colo_restore_enable: bool | None = defbool()
    colo_host: str | None = string()
    colo_port: int = integer()
    colo_export: str | None = string()
    active_disk: str | None = string()
    hidden_disk: str | None = string()
    trusted: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class DeviceNic:
    """libxl_device_nic (docs/misc/xl-network-configuration); COLO fields kept as strings."""

    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    mtu: int = integer()
    model: str | None = string()
    mac: str | None = string()
    ip: str | None = string()
    bridge: str | None = string()
    ifname: str | None = string()
    script: str | None = string()
    nictype: NicType = enum(NicType, NicType.UNKNOWN)
    rate_bytes_per_interval: int = integer()
    rate_interval_usecs: int = integer()
    gatewaydev: str | None = string()
    coloft_forwarddev: str | None = string()
    colo_sock_mirror_id: str | None = string()
    colo_sock_mirror_ip: str | None = string()
    colo_sock_mirror_port: str | None = string()
    colo_sock_compare_pri_in_id: str | None = string()
    colo_sock_compare_pri_in_ip: str | None = string()
    colo_sock_compare_pri_in_port: str | None = string()
    colo_sock_compare_sec_in_id: str | None = string()
    colo_sock_compare_sec_in_ip: str | None = string()
    colo_sock_compare_sec_in_port: str | None = string()
    colo_sock_compare_notify_id: str | None = string()
    colo_sock_compare_notify_ip: str | None = string()
    colo_sock_compare_notify_port: str | None = string()
    colo_sock_redirector0_id: str | None = string()
    colo_sock_redirector0_ip: str | None = string()
    colo_sock_redirector0_port: str | None = string()
    colo_sock_redirector1_id: str | None = string()
    colo_sock_redirector1_ip: str | None = string()
    colo_sock_redirector1_port: str | None = string()
    colo_sock_redirector2_id: str | None = string()
    colo_sock_redirector2_ip: str | None = string()
    colo_sock_redirector2_port: str | None = string()
    colo_filter_mirror_queue: str | None = string()
    colo_filter_mirror_outdev: str | None = string()
    colo_filter_redirector0_queue: str | None = string()
    colo_filter_redirector0_indev: str | None = string()
    colo_filter_redirector0_outdev: str | None = string()
    colo_filter_redirector1_queue: str | None = string()
    colo_filter_redirector1_indev: str | None = string()
    colo_filter_redirector1_outdev: str | None = string()
    colo_compare_pri_in: str | None = string()
    colo_compare_sec_in: str | None = string()
    colo_compare_out: str | None = string()
    colo_compare_notify_dev: str | None = string()
    colo_sock_sec_redirector0_id: str | None = string()
    colo_sock_sec_redirector0_ip: str | None = string()
    colo_sock_sec_redirector0_port: str | None = string()
    colo_sock_sec_redirector1_id: str | None = string()
    colo_sock_sec_redirector1_ip: str | None = string()
    colo_sock_sec_redirector1_port: str | None = string()
    colo_filter_sec_redirector0_queue: str | None = string()
    colo_filter_sec_redirector0_indev: str | None = string()
    colo_filter_sec_redirector0_outdev: str | None = string()
    colo_filter_sec_redirector1_queue: str | None = string()
    colo_filter_sec_redirector1_indev: str | None = string()
    colo_filter_sec_redirector1_outdev: str | None = string()
    colo_filter_sec_rewriter0_queue: str | None = string()
    colo_checkpoint_host: str | None = string()
    colo_checkpoint_port: str | None = string()
    trusted: bool | None = defbool()


@dataclass(frozen=True, slots=True)
class DevicePci:
    """libxl_device_pci (xl-pci-configuration(5))."""

    func: int = integer()
    dev: int = integer()
    bus: int = integer()
    domain: int = integer()
    vdevfn: int = integer()
    vfunc_mask: int = integer()
    msitranslate: bool = boolean()
    power_mgmt: bool = boolean()
    permissive: bool = boolean()
    seize: bool = boolean()
    rdm_policy: RdmPolicy = enum(RdmPolicy, RdmPolicy.INVALID)
    name: str | None = string()


@dataclass(frozen=True, slots=True)
class DeviceDtdev:
    path: str | None = string()


@dataclass(frozen=True, slots=True)
class DeviceVfb:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    vnc: VncInfo = struct(VncInfo)
    sdl: SdlInfo = struct(SdlInfo)
    keymap: str | None = string()


@dataclass(frozen=True, slots=True)
class DeviceVkb:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    backend_type: VkbBackend = enum(VkbBackend, VkbBackend.UNKNOWN)
    unique_id: str | None = string()
    feature_disable_keyboard: bool = boolean()
    feature_disable_pointer: bool = boolean()
    feature_abs_pointer: bool = boolean()
    feature_raw_pointer: bool = boolean()
    feature_multi_touch: bool = boolean()
    width: int = integer()
    height: int = integer()
    multi_touch_width: int = integer()
    multi_touch_height: int = integer()
    multi_touch_num_contacts: int = integer()


@dataclass(frozen=True, slots=True)
class DeviceVtpm:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    uuid: str | None = string()


@dataclass(frozen=True, slots=True)
class DeviceP9:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    tag: str | None = string()
    path: str | None = string()
    security_model: str | None = string()
    devid: int = integer(DEVID_AUTO)


@dataclass(frozen=True, slots=True)
class DevicePvcallsif:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)


@dataclass(frozen=True, slots=True)
class ConnectorParam:
    unique_id: str | None = string()
    width: int = integer()
    height: int = integer()


@dataclass(frozen=True, slots=True)
class DeviceVdispl:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    be_alloc: bool = boolean()
    connectors: tuple[ConnectorParam, ...] = array(ConnectorParam)


@dataclass(frozen=True, slots=True)
class VsndParams:
    sample_rates: tuple[int, ...] = array(int)
    sample_formats: tuple[VsndPcmFormat, ...] = array(VsndPcmFormat)
    channels_min: int = integer()
    channels_max: int = integer()
    buffer_size: int = integer()


@dataclass(frozen=True, slots=True)
class VsndStream:
    unique_id: str | None = string()
    type: VsndStreamType | None = enum(VsndStreamType)
    params: VsndParams = struct(VsndParams)


@dataclass(frozen=True, slots=True)
class VsndPcm:
    name: str | None = string()
    params: VsndParams = struct(VsndParams)
    streams: tuple[VsndStream, ...] = array(VsndStream)


@dataclass(frozen=True, slots=True)
class DeviceVsnd:
    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    short_name: str | None = string()
    long_name: str | None = string()
    params: VsndParams = struct(VsndParams)
    pcms: tuple[VsndPcm, ...] = array(VsndPcm)


@dataclass(frozen=True, slots=True)
class ChannelPty:
    TAG: ClassVar[str] = "pty"


@dataclass(frozen=True, slots=True)
class ChannelSocket:
    TAG: ClassVar[str] = "socket"

    path: str | None = string()


@dataclass(frozen=True, slots=True)
class DeviceChannel:
    """libxl_device_channel; ``u`` is keyed by the connection (pty or socket)."""

    backend_domid: int = integer()
    backend_domname: str | None = string()
    devid: int = integer(DEVID_AUTO)
    name: str | None = string()
    u: ChannelPty | ChannelSocket | None = union("connection", (ChannelPty, ChannelSocket))


@dataclass(frozen=True, slots=True)
class DeviceUsbctrl:
    type: UsbctrlType = enum(UsbctrlType, UsbctrlType.AUTO)
    devid: int = integer(DEVID_AUTO)
    version: int = integer()
    ports: int = integer()
    backend_domid: int = integer()
    backend_domname: str | None = string()


@dataclass(frozen=True, slots=True)
class UsbHostdev:
    TAG: ClassVar[str] = "hostdev"

    hostbus: int = integer()
    hostaddr: int = integer()


@dataclass(frozen=True, slots=True)
class DeviceUsbdev:
    """libxl_device_usbdev. ``u`` stays None unless ``type=hostdev`` was written: xl then
    loses hostbus/hostaddr from its JSON, and so does this model (see devices.py)."""

    ctrl: int = integer(DEVID_AUTO)
    port: int = integer()
    u: UsbHostdev | None = union("type", (UsbHostdev,))


# ---------------------------------------------------------------- the whole domain


@dataclass(frozen=True, slots=True)
class DomainConfig:
    """libxl_domain_config: what ``xl create -n`` prints."""

    c_info: CreateInfo = struct(CreateInfo)
    b_info: BuildInfo = struct(BuildInfo)
    disks: tuple[DeviceDisk, ...] = array(DeviceDisk)
    nics: tuple[DeviceNic, ...] = array(DeviceNic)
    pcidevs: tuple[DevicePci, ...] = array(DevicePci)
    dtdevs: tuple[DeviceDtdev, ...] = array(DeviceDtdev)
    vfbs: tuple[DeviceVfb, ...] = array(DeviceVfb)
    vkbs: tuple[DeviceVkb, ...] = array(DeviceVkb)
    vtpms: tuple[DeviceVtpm, ...] = array(DeviceVtpm)
    p9s: tuple[DeviceP9, ...] = array(DeviceP9)
    pvcallsifs: tuple[DevicePvcallsif, ...] = array(DevicePvcallsif)
    vdispls: tuple[DeviceVdispl, ...] = array(DeviceVdispl)
    vsnds: tuple[DeviceVsnd, ...] = array(DeviceVsnd)
    channels: tuple[DeviceChannel, ...] = array(DeviceChannel)
    usbctrls: tuple[DeviceUsbctrl, ...] = array(DeviceUsbctrl)
    usbdevs: tuple[DeviceUsbdev, ...] = array(DeviceUsbdev)
    on_poweroff: Action = enum(Action, Action.DESTROY)
    on_reboot: Action = enum(Action, Action.DESTROY)
    on_watchdog: Action = enum(Action, Action.DESTROY)
    on_crash: Action = enum(Action, Action.DESTROY)
    on_soft_reset: Action = enum(Action, Action.DESTROY)
