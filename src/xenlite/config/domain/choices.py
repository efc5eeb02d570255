"""The choices of the typed domain model: libxl's enumerations as StrEnums, by JSON name.

Implements the ``Enumeration`` types of Xen 4.17's ``tools/libs/light/libxl_types.idl``
that ``xl create`` fills from an xl.cfg(5) file (libxl_domain_type, libxl_action_on_shutdown,
libxl_tsc_mode, libxl_disk_format, ...). A member's value is its name in libxl's JSON;
the ``*_ORDER`` tuples give libxl's numbering where xl.cfg(5) still accepts numbers. The
structures that use them are :mod:`xenlite.config.domain.model`, which re-exports every name here.
"""

from __future__ import annotations

from enum import StrEnum


class DomainType(StrEnum):
    HVM = "hvm"
    PV = "pv"
    PVH = "pvh"


class Action(StrEnum):
    """libxl_action_on_shutdown. JSON uses these names; xl.cfg uses hyphens (``xl_name``)."""

    DESTROY = "destroy"
    RESTART = "restart"
    RESTART_RENAME = "restart_rename"
    PRESERVE = "preserve"
    COREDUMP_DESTROY = "coredump_destroy"
    COREDUMP_RESTART = "coredump_restart"
    SOFT_RESET = "soft_reset"

    @property
    def xl_name(self) -> str:
        """The spelling xl.cfg(5) uses ("rename-restart", "coredump-destroy", ...)."""
        return _ACTION_XL_NAMES[self]

    @classmethod
    def from_xl_name(cls, name: str) -> Action | None:
        """The action xl.cfg's ``on_*=`` names, or None when xl does not know it."""
        for action, xl_name in _ACTION_XL_NAMES.items():
            if xl_name == name:
                return action
        return None


_ACTION_XL_NAMES: dict[Action, str] = {
    Action.DESTROY: "destroy",
    Action.RESTART: "restart",
    Action.RESTART_RENAME: "rename-restart",
    Action.PRESERVE: "preserve",
    Action.COREDUMP_DESTROY: "coredump-destroy",
    Action.COREDUMP_RESTART: "coredump-restart",
    Action.SOFT_RESET: "soft-reset",
}


class TscMode(StrEnum):
    DEFAULT = "default"
    ALWAYS_EMULATE = "always_emulate"
    NATIVE = "native"
    NATIVE_PARAVIRT = "native_paravirt"


TSC_MODE_ORDER: tuple[TscMode, ...] = tuple(TscMode)


class TimerMode(StrEnum):
    DELAY_FOR_MISSED_TICKS = "delay_for_missed_ticks"
    NO_DELAY_FOR_MISSED_TICKS = "no_delay_for_missed_ticks"
    NO_MISSED_TICKS_PENDING = "no_missed_ticks_pending"
    ONE_MISSED_TICK_PENDING = "one_missed_tick_pending"


TIMER_MODE_ORDER: tuple[TimerMode, ...] = tuple(TimerMode)


class BiosType(StrEnum):
    ROMBIOS = "rombios"
    SEABIOS = "seabios"
    OVMF = "ovmf"


class VgaKind(StrEnum):
    CIRRUS = "cirrus"
    STD = "std"
    NONE = "none"
    QXL = "qxl"


class DeviceModelVersion(StrEnum):
    QEMU_XEN_TRADITIONAL = "qemu_xen_traditional"
    QEMU_XEN = "qemu_xen"


class HdType(StrEnum):
    IDE = "ide"
    AHCI = "ahci"


class VendorDevice(StrEnum):
    NONE = "none"
    XENSERVER = "xenserver"


class GfxPassthruKind(StrEnum):
    DEFAULT = "default"
    IGD = "igd"


class Passthrough(StrEnum):
    DEFAULT = "default"
    DISABLED = "disabled"
    ENABLED = "enabled"
    SYNC_PT = "sync_pt"
    SHARE_PT = "share_pt"


class AltP2mMode(StrEnum):
    DISABLED = "disabled"
    MIXED = "mixed"
    EXTERNAL = "external"
    LIMITED = "limited"


ALTP2M_ORDER: tuple[AltP2mMode, ...] = tuple(AltP2mMode)


class TeeType(StrEnum):
    NONE = "none"
    OPTEE = "optee"
    FFA = "ffa"


class GicVersion(StrEnum):
    DEFAULT = "default"
    V2 = "v2"
    V3 = "v3"


class VuartType(StrEnum):
    UNKNOWN = "unknown"
    SBSA_UART = "sbsa_uart"


class RdmStrategy(StrEnum):
    IGNORE = "ignore"
    HOST = "host"


class RdmPolicy(StrEnum):
    """libxl_rdm_reserve_policy by its JSON name (``rdm_policy=`` of rdm= and pci specs)."""

    INVALID = "invalid"
    STRICT = "strict"
    RELAXED = "relaxed"


class Scheduler(StrEnum):
    UNKNOWN = "unknown"
    SEDF = "sedf"
    CREDIT = "credit"
    CREDIT2 = "credit2"
    ARINC653 = "arinc653"
    RTDS = "rtds"
    NULL = "null"


class ViridianEnlightenment(StrEnum):
    """Bit numbers are the positions in this order (libxl_viridian_enlightenment)."""

    BASE = "base"
    FREQ = "freq"
    TIME_REF_COUNT = "time_ref_count"
    REFERENCE_TSC = "reference_tsc"
    HCALL_REMOTE_TLB_FLUSH = "hcall_remote_tlb_flush"
    APIC_ASSIST = "apic_assist"
    CRASH_CTL = "crash_ctl"
    SYNIC = "synic"
    STIMER = "stimer"
    HCALL_IPI = "hcall_ipi"
    EX_PROCESSOR_MASKS = "ex_processor_masks"
    NO_VP_LIMIT = "no_vp_limit"
    CPU_HOTPLUG = "cpu_hotplug"


VIRIDIAN_ORDER: tuple[ViridianEnlightenment, ...] = tuple(ViridianEnlightenment)


class DiskBackend(StrEnum):
    """libxl_disk_backend (``backendtype=``); UNKNOWN lets libxl choose."""

    UNKNOWN = "unknown"
    PHY = "phy"
    TAP = "tap"
    QDISK = "qdisk"
    STANDALONE = "standalone"


class DiskFormat(StrEnum):
    """libxl_disk_format, by its JSON name. No disk spec gives UNKNOWN (libxl's unset value):
    a spec without ``format=`` is RAW."""

    UNKNOWN = "unknown"
    QCOW = "qcow"
    QCOW2 = "qcow2"
    VHD = "vhd"
    RAW = "raw"
    EMPTY = "empty"
    QED = "qed"


class DiskSpecification(StrEnum):
    """libxl_disk_specification (``specification=``); UNKNOWN lets libxl choose (xen)."""

    UNKNOWN = "unknown"
    XEN = "xen"
    VIRTIO = "virtio"


class DiskTransport(StrEnum):
    UNKNOWN = "unknown"
    MMIO = "mmio"


class NicType(StrEnum):
    """libxl_nic_type by its JSON name (``type=ioemu`` -> vif_ioemu, ``type=vif`` -> vif).
    No vif spec gives UNKNOWN (libxl's unset value): one without ``type=`` leaves it None."""

    UNKNOWN = "unknown"
    VIF_IOEMU = "vif_ioemu"
    VIF = "vif"


class VkbBackend(StrEnum):
    UNKNOWN = "unknown"
    QEMU = "qemu"
    LINUX = "linux"


class ChannelConnection(StrEnum):
    UNKNOWN = "unknown"
    PTY = "pty"
    SOCKET = "socket"


class UsbctrlType(StrEnum):
    AUTO = "auto"
    PV = "pv"
    DEVICEMODEL = "devicemodel"
    QUSB = "qusb"


class VsndPcmFormat(StrEnum):
    S8 = "s8"
    U8 = "u8"
    S16_LE = "s16_le"
    S16_BE = "s16_be"
    U16_LE = "u16_le"
    U16_BE = "u16_be"
    S24_LE = "s24_le"
    S24_BE = "s24_be"
    U24_LE = "u24_le"
    U24_BE = "u24_be"
    S32_LE = "s32_le"
    S32_BE = "s32_be"
    U32_LE = "u32_le"
    U32_BE = "u32_be"
    F32_LE = "f32_le"
    F32_BE = "f32_be"
    F64_LE = "f64_le"
    F64_BE = "f64_be"
    IEC958_SUBFRAME_LE = "iec958_subframe_le"
    IEC958_SUBFRAME_BE = "iec958_subframe_be"
    MU_LAW = "mu_law"
    A_LAW = "a_law"
    IMA_ADPCM = "ima_adpcm"
    MPEG = "mpeg"
    GSM = "gsm"


class VsndStreamType(StrEnum):
    P = "p"
    C = "c"


# ---------------------------------------------------------------- small structs
