"""What xenlite does with every setting a Xen host can be given: one row per xl.cfg key, per
Xen boot option, per xl.conf key, and per libxl model field that only libxl's JSON can set.

Not a Xen man page: ../shared/DESIGN.md "Nothing is silently ignored". Each row says how
xenlite treats the setting:

- ``QEMU``: turned into QEMU options (``qemu.argv``);
- ``ENGINE``: honoured by the domain engine or the daemon; ``by`` names the functions that
  read it (a test checks that they do);
- ``XEN_ONLY``: meaningless without Xen's hypervisor; a create that sets it says so on stderr
  and in ``xl dmesg``, and goes on;
- ``LATER``: not yet; a create that sets it fails with a clear error saying what is missing;
- ``REFUSED``: cannot be done on a QEMU host; a create that sets it fails;
- ``XL_WARNS``: xl 4.17 itself ignores the key and says so (the parser gives xl's warning).

The parser's list of known keys (``config.domain.KNOWN_KEYS``), the QEMU layer's refusals
(``qemu.argv.check_supported``), the create-time reports and dmesg's list of boot options
without effect all come from this table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from xenlite.config.domain.model import (
    DomainConfig,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
)
from xenlite.config.hostconf.xlconf import XlConf


class Treatment(StrEnum):
    QEMU = "qemu"
    ENGINE = "engine"
    XEN_ONLY = "xen-only"
    LATER = "later"
    REFUSED = "refused"
    XL_WARNS = "xl-warns"


class Source(StrEnum):
    XL_CFG = "xl.cfg"
    BOOT = "xen command line"
    XL_CONF = "xl.conf"
    LIBXL = "libxl JSON"  # a model field no xl.cfg key sets, reachable through domain JSON


@dataclass(frozen=True, slots=True)
class Setting:
    """One row: the setting, the model fields it sets, how it is treated, and why.

    ``fields`` are dotted paths into the model: ``c_info.hap``, ``b_info.tsc_mode``,
    ``b_info.sched_params.weight``, ``pv.slack_memkb`` (the type-specific part of b_info),
    ``config.disks`` (DomainConfig itself), or a XenBootOptions / XlConf field name for the
    host settings. ``by`` names the honouring functions as ``module:qualname``. ``unset`` lists
    values that xl fills in when the user sets nothing (they are not reported).
    """

    name: str
    source: Source
    treatment: Treatment
    fields: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    why: str = ""
    unset: tuple[object, ...] = ()
    in_xl: bool = True  # False: a key of a newer Xen's manual that xl 4.17 does not read

    @property
    def explanation(self) -> str:
        """Why it takes no effect: ``not in xenlite yet (cpupools)``, or the row's why."""
        return f"{LATER_WORDS} ({self.why})" if self.treatment is Treatment.LATER else self.why


LATER_WORDS = "not in xenlite yet"
_BUILD = "xenlite.config.domain.build"
_BOOTOPTS = "xenlite.config.hostconf.bootopts"
_MANAGER = "xenlite.domain.manager:DomainManager"
_DISKS = "xenlite.domain.disks"
_NIC_DEFAULTS = "xenlite.config.domain.devices:nic_with_defaults"
_ARGV = ("xenlite.qemu.argv:build_argv",)
_CHECK = ("xenlite.qemu.argv:check_supported",)
_AFFINITY = (
    "xenlite.domain.resources:DomainResources._place_vcpus",
    "xenlite.domain.resources:DomainResources._apply_hard_affinity",
    "xenlite.domain.resources:DomainResources.vcpu_list",
)
_ACTIONS = ("xenlite.domain.state:action_for",)
_SCHED = ("xenlite.domain.resources:DomainResources._join_cgroup",)
_POOL = ("xenlite.domain.cpupools:DomainPools.config_in_pool",)
_SEC = "Xen security labels (XSM/FLASK) have no counterpart on a QEMU host"
_STUB = "stub domains are a Xen construct; QEMU runs as a process on the host here"
_GRANT = "Xen grant tables do not exist here"
_HVMP = "xenlite.qemu.hvm"
_HVMF = ("xenlite.config.domain.hvm:hvm_info",)  # folded into another key by xl
_VNC_KEYS = ("vnclisten", "vncdisplay", "vncunused", "vncpasswd")
_SPICE = "SPICE displays of HVM guests"
_ARM = "Arm settings do not apply to an x86 host"
_BOOTLOADER_BY = (
    "xenlite.domain.bootloader:run_bootloader",
    "xenlite.domain.bootloader:bootloader_argv",
)
_RESTRICT = "running the bootloader as an unprivileged user (pygrub --runas)"
_SHIM = "the PV shim runs PV guests inside Xen PVH domains"
_PCI = "PCI pass-through"
_NEWER = "a key of a Xen newer than 4.17: xl 4.17 warns that it does not know it"


def _row(
    name: str,
    treatment: Treatment,
    *fields: str,
    by: tuple[str, ...] = (),
    why: str = "",
    source: Source = Source.XL_CFG,
    unset: tuple[object, ...] = (),
    in_xl: bool = True,
) -> Setting:
    return Setting(name, source, treatment, fields, by, why, unset, in_xl)


Q, E, X, L, R, W = (
    Treatment.QEMU,
    Treatment.ENGINE,
    Treatment.XEN_ONLY,
    Treatment.LATER,
    Treatment.REFUSED,
    Treatment.XL_WARNS,
)

XL_CFG: tuple[Setting, ...] = (
    # -- the domain as a whole
    _row("name", Q, "c_info.name", by=_ARGV),
    _row("uuid", Q, "c_info.uuid", by=_ARGV),
    _row("type", Q, "c_info.type", "b_info.u", by=(*_ARGV, f"{_MANAGER}._write_nodes")),
    _row("builder", Q, by=_CHECK, why="xl reads it as type= (xm's spelling)"),
    _row("pool", E, "c_info.pool_name", by=_POOL),
    _row("seclabel", R, "c_info.ssid_label", why=_SEC),
    _row("init_seclabel", R, "b_info.exec_ssid_label", why=_SEC),
    _row("driver_domain", R, "c_info.driver_domain", why="xenlite runs every backend in the host"),
    _row("hap", X, "c_info.hap", why="hardware-assisted paging is chosen by KVM/TCG"),
    _row("oos", X, "c_info.oos", why="shadow page-table out-of-sync is a Xen shadow-paging detail"),
    _row("passthrough", X, "c_info.passthrough", why="IOMMU page-table sharing is a Xen detail"),
    _row(
        "xend_suspend_evtchn_compat",
        X,
        "c_info.xend_suspend_evtchn_compat",
        why="an event-channel quirk of xend-era guests",
    ),
    # -- CPUs
    _row("vcpus", Q, "b_info.avail_vcpus", by=("xenlite.qemu.argv:_vcpus",)),
    _row("maxvcpus", Q, "b_info.max_vcpus", by=("xenlite.qemu.argv:_vcpus",)),
    _row("cpus", E, "b_info.vcpu_hard_affinity", by=_AFFINITY),
    _row(
        "cpus_soft",
        E,
        "b_info.vcpu_soft_affinity",
        by=_AFFINITY,
        why="recorded and shown; Linux has no soft affinity to steer threads with",
    ),
    _row("cpu_weight", E, "b_info.sched_params.weight", by=_SCHED),
    _row("cap", E, "b_info.sched_params.cap", by=_SCHED),
    _row("period", X, "b_info.sched_params.period", why="RTDS/sEDF parameters; CFS has none"),
    _row("slice", X, "b_info.sched_params.slice", why="sEDF parameters; CFS has none"),
    _row("latency", X, "b_info.sched_params.latency", why="sEDF parameters; CFS has none"),
    _row("extratime", X, "b_info.sched_params.extratime", why="sEDF parameters; CFS has none"),
    _row(
        "cpuid",
        Q,
        "b_info.cpuid",
        by=("xenlite.qemu.argv:_cpuid",),
        why="forced bits become -cpu switches (enforced); QEMU's model gives the rest",
    ),
    _row("vnuma", L, "b_info.vnuma_nodes", why="virtual NUMA topologies"),
    _row(
        "nestedhvm",
        Q,
        "b_info.nested_hvm",
        by=("xenlite.qemu.hvm:check_nested",),
        why="with KVM only (TCG emulates no VMX/SVM)",
    ),
    # -- memory
    _row("memory", Q, "b_info.target_memkb", by=(f"{_BUILD}:effective_target_memkb",)),
    _row("maxmem", Q, "b_info.max_memkb", by=(f"{_BUILD}:effective_max_memkb",)),
    _row("shadow_memory", X, "b_info.shadow_memkb", why="Xen's shadow page-table pool"),
    _row("videoram", L, "b_info.video_memkb", why="emulated graphics"),
    # -- boot
    _row("kernel", Q, "b_info.kernel", by=_ARGV),
    _row("ramdisk", Q, "b_info.ramdisk", by=_ARGV),
    _row("cmdline", Q, "b_info.cmdline", by=_ARGV),
    _row("root", Q, by=_ARGV, why="xl folds it into the kernel command line"),
    _row("extra", Q, by=_ARGV, why="xl folds it into the kernel command line"),
    _row("bootloader", E, "b_info.bootloader", by=_BOOTLOADER_BY),
    _row("bootloader_args", E, "b_info.bootloader_args", by=_BOOTLOADER_BY),
    _row("bootloader_restrict", L, "b_info.bootloader_restrict", why=_RESTRICT),
    _row("bootloader_user", L, "b_info.bootloader_user", why=_RESTRICT),
    _row("device_tree", R, "b_info.device_tree", why="device trees are for Arm guests"),
    # -- clocks and platform
    _row("localtime", Q, "b_info.localtime", by=("xenlite.qemu.argv:_rtc_option",)),
    _row("rtc_timeoffset", Q, "b_info.rtc_timeoffset", by=("xenlite.qemu.argv:_rtc_option",)),
    _row(
        "tsc_mode", X, "b_info.tsc_mode", why="Xen's TSC emulation modes have no QEMU counterpart"
    ),
    _row(
        "timer_mode",
        X,
        "b_info.timer_mode",
        why="Xen's virtual timer modes have no QEMU counterpart",
    ),
    _row("acpi", Q, "b_info.acpi", by=_ARGV),
    _row("apic", X, "b_info.apic", why="the guest always has a local APIC under QEMU"),
    _row(
        "msr_relaxed", X, "b_info.arch_x86", why="Xen's MSR access policy has no QEMU counterpart"
    ),
    _row("altp2m", R, "b_info.altp2m", why="alternate p2m views are a Xen feature"),
    _row(
        "vmtrace_buf_kb",
        R,
        "b_info.vmtrace_buf_kb",
        why="Xen's processor-trace buffers do not exist here",
    ),
    _row(
        "nomigrate",
        X,
        "b_info.disable_migrate",
        why="xenlite cannot migrate domains yet, so none is migrated; the migrate verbs will "
        "honour it",
    ),
    # -- Xen internals
    _row("max_grant_frames", X, "b_info.max_grant_frames", why=_GRANT),
    _row("max_maptrack_frames", X, "b_info.max_maptrack_frames", why=_GRANT),
    _row("max_grant_version", X, "b_info.max_grant_version", why=_GRANT),
    _row(
        "max_event_channels", X, "b_info.event_channels", why="Xen event channels do not exist here"
    ),
    _row("ioports", R, "b_info.ioports", why="raw host I/O port pass-through is not possible"),
    _row("irqs", R, "b_info.irqs", why="raw host IRQ pass-through is not possible"),
    _row("iomem", R, "b_info.iomem", why="raw host memory pass-through is not possible"),
    _row("e820_host", R, "pv.e820_host", why="the host's memory map cannot be given to a guest"),
    _row("tee", R, "b_info.tee", why="TEE mediators are for Arm guests"),
    _row("gic_version", R, "b_info.arch_arm", why=_ARM),
    _row("vuart", R, why=_ARM),
    _row("pvshim", R, "pvh.pvshim", why=_SHIM),
    _row("pvshim_path", R, "pvh.pvshim_path", why=_SHIM),
    _row("pvshim_cmdline", R, "pvh.pvshim_cmdline", why=_SHIM),
    _row("pvshim_extra", R, "pvh.pvshim_extra", why=_SHIM),
    # -- the device model
    _row("device_model_version", Q, "b_info.device_model_version", by=_CHECK),
    _row("device_model_override", Q, "b_info.device_model", by=_ARGV),
    _row("device_model_args", Q, "b_info.extra", by=_ARGV),
    _row("device_model_args_pv", Q, "b_info.extra_pv", by=_ARGV),
    _row("device_model_args_hvm", X, "b_info.extra_hvm", why="xl passes it to HVM guests only"),
    _row(
        "device_model_user",
        L,
        "b_info.device_model_user",
        why="running QEMU as another user",
    ),
    _row("dm_restrict", L, "b_info.dm_restrict", why="QEMU privilege restriction"),
    _row("device_model_stubdomain_override", R, "b_info.device_model_stubdomain", why=_STUB),
    _row("device_model_stubdomain_seclabel", R, "b_info.device_model_ssid_label", why=_SEC),
    _row("stubdomain_memory", R, "b_info.stubdomain_memkb", why=_STUB),
    _row("stubdomain_kernel", R, "b_info.stubdomain_kernel", why=_STUB),
    _row("stubdomain_ramdisk", R, "b_info.stubdomain_ramdisk", why=_STUB),
    _row("device_model", W, why="xm's key; xl ignores it with a warning"),
    _row("vncviewer", W, why='xl ignores it with a warning; "xl create -V" starts a viewer'),
    _row(
        "dhcp",
        W,
        why="xen-tools marks a DHCP guest with it (xm gave the kernel ip=dhcp); xl reads "
        "nothing from it; the guest's own network config asks for the address",
    ),
    # -- event actions
    _row("on_poweroff", E, "config.on_poweroff", by=_ACTIONS),
    _row("on_reboot", E, "config.on_reboot", by=_ACTIONS),
    _row("on_crash", E, "config.on_crash", by=_ACTIONS),
    # Xen's watchdog is a hypercall a guest can arm; it never fires under QEMU.
    _row("on_watchdog", E, "config.on_watchdog", by=_ACTIONS),
    _row("on_soft_reset", E, "config.on_soft_reset", by=_ACTIONS),
    # -- devices
    _row("disk", Q, "config.disks", by=(f"{_MANAGER}._create", f"{_DISKS}:prepare_disks")),
    _row(
        "vif",
        E,
        "config.nics",
        by=(f"{_MANAGER}._build", "xenlite.domain.nics:prepare_nics"),
        why="taps wired as vif-bridge, vif-route or vif-nat do (built in), or by a script "
        "program run as libxl runs it; ip= anti-spoofing (nftables), rate= (tc)",
    ),
    _row("vif2", W, why="xm's key; xl 4.17 reads vif= only"),
    _row("pci", L, "config.pcidevs", why=_PCI),
    _row("pci_permissive", L, why=_PCI),
    _row("pci_msitranslate", L, why=_PCI),
    _row("pci_seize", L, why=_PCI),
    _row("pci_power_mgmt", L, why=_PCI),
    _row("rdm", L, "hvm.rdm", why=_PCI),
    _row("rdm_mem_boundary", L, "hvm.rdm_mem_boundary_memkb", why=_PCI),
    _row("gfx_passthru", L, "hvm.gfx_passthru", "hvm.gfx_passthru_kind", why=_PCI),
    _row("dtdev", R, "config.dtdevs", why="device-tree pass-through is for Arm guests"),
    _row("vfb", L, "config.vfbs", why="virtual framebuffers and VNC"),
    _row("vkb", L, "config.vkbs", why="virtual keyboards"),
    _row("vtpm", L, "config.vtpms", why="virtual TPMs"),
    _row("p9", L, "config.p9s", why="9pfs shares"),
    _row("pvcalls", R, "config.pvcallsifs", why="PV calls are a Xen paravirtual protocol"),
    _row("vdispl", L, "config.vdispls", why="virtual displays"),
    _row("vsnd", L, "config.vsnds", why="virtual sound cards"),
    _row("channel", L, "config.channels", why="guest channels"),
    _row("usbctrl", L, "config.usbctrls", why="USB controllers"),
    _row("usbdev", L, "config.usbdevs", why="USB devices"),
    # -- HVM guests (qemu/hvm.py)
    _row("firmware", Q, by=_HVMF, why='xl reads firmware="bios"|"uefi" as bios='),
    _row("bios", Q, "hvm.bios", by=(f"{_HVMP}:firmware_args",)),
    _row("bios_path_override", Q, "hvm.system_firmware", by=(f"{_HVMP}:firmware_args",)),
    _row(
        "firmware_override",
        R,
        "hvm.firmware",
        why="hvmloader does not exist on a QEMU host (give a BIOS image with bios_path_override=)",
    ),
    _row("boot", Q, "hvm.boot", by=(f"{_HVMP}:boot_order",)),
    _row("hdtype", Q, "hvm.hdtype", by=_ARGV),
    _row("serial", Q, "hvm.serial", "hvm.serial_list", by=(f"{_HVMP}:has_serial_console",)),
    _row("vga", Q, "hvm.vga", by=(f"{_HVMP}:vga_device",)),
    _row("stdvga", Q, by=_HVMF, why='xl reads it as vga="stdvga"'),
    _row("nographic", Q, "hvm.nographic", by=(f"{_HVMP}:vga_device", f"{_HVMP}:vnc_of")),
    _row("vnc", Q, "hvm.vnc", by=(f"{_HVMP}:vnc_of",)),
    *(_row(key, Q, by=_HVMF, why="part of vnc=") for key in _VNC_KEYS),
    _row("keymap", Q, "hvm.keymap", by=(f"{_HVMP}:platform_args",)),
    _row("sdl", Q, "hvm.sdl", by=(f"{_HVMP}:check_display",), why="sdl=1 is refused: no display"),
    *(_row(key, Q, by=_HVMF, why="part of sdl=") for key in ("display", "opengl", "xauthority")),
    _row("usb", Q, "hvm.usb", by=(f"{_HVMP}:usb_devices",)),
    _row("usbversion", Q, "hvm.usbversion", by=(f"{_HVMP}:usb_devices",)),
    _row("usbdevice", Q, "hvm.usbdevice", "hvm.usbdevice_list", by=(f"{_HVMP}:usb_devices",)),
    _row("hpet", Q, "hvm.hpet", by=(f"{_HVMP}:machine_option",)),
    _row("pae", Q, "hvm.pae", by=(f"{_HVMP}:cpu_flags",)),
    _row("nx", Q, "hvm.nx", by=(f"{_HVMP}:cpu_flags",)),
    _row("acpi_s3", Q, "hvm.acpi_s3", by=(f"{_HVMP}:platform_args",)),
    _row("acpi_s4", Q, "hvm.acpi_s4", by=(f"{_HVMP}:platform_args",)),
    _row("smbios_firmware", Q, "hvm.smbios_firmware", by=(f"{_HVMP}:platform_args",)),
    _row("acpi_firmware", Q, "hvm.acpi_firmware", by=(f"{_HVMP}:platform_args",)),
    _row("acpi_laptop_slate", X, "hvm.acpi_laptop_slate", why="QEMU's ACPI tables have no slate"),
    _row(
        "viridian",
        X,
        "hvm.viridian",
        "hvm.viridian_enable",
        "hvm.viridian_disable",
        why="Hyper-V enlightenments: a Windows guest runs without them",
    ),
    _row("vpt_align", X, "hvm.vpt_align", why="Xen's virtual platform timers"),
    _row("mmio_hole", X, "hvm.mmio_hole_memkb", why="QEMU sizes the PCI hole itself"),
    _row("mca_caps", X, "hvm.mca_caps", why="Xen's machine-check capabilities"),
    _row(
        "xen_platform_pci",
        X,
        "hvm.xen_platform_pci",
        why="the Xen platform device; an HVM guest's PV devices here are virtio",
    ),
    _row("vendor_device", X, "hvm.vendor_device", why="XenServer's PV driver device"),
    _row("vkb_device", X, "hvm.vkb_device", why="Xen's PV keyboard; the guest has PS/2 and USB"),
    _row("altp2mhvm", R, "hvm.altp2m", why="alternate p2m views are a Xen feature"),
    _row("soundhw", L, "hvm.soundhw", why="emulated sound cards"),
    _row("vncconsole", L, why="starting a viewer from the config"),
    _row("ms_vm_genid", L, why="VM generation IDs"),
    _row("spice", L, "hvm.spice", why=_SPICE),
    *(
        _row(key, L, why=_SPICE)
        for key in [
            "spice_clipboard_sharing",
            "spice_image_compression",
            "spice_streaming_video",
            "spiceagent_mouse",
            "spicedisable_ticketing",
            "spicehost",
            "spicepasswd",
            "spiceport",
            "spicetls_port",
            "spiceusbredirection",
            "spicevdagent",
        ]
    ),
    # -- in xl.cfg(5) of a newer Xen, unknown to xl 4.17
    *(
        _row(key, W, why=_NEWER, in_xl=False)
        for key in [
            "altp2m_count",
            "arm_sci",
            "hvm_pirq",
            "llc_colors",
            "nr_spis",
            "smbios",
            "stubdomain_cmdline",
            "sve",
            "trap_unmapped_accesses",
            "virtio",
            "vpmu",
            "xen_platform_pci_bar_uc",
            "xenstore_feature_mask",
            "xenstore_quota",
        ]
    ),
)

_XC = Source.XL_CONF
XL_CONF: tuple[Setting, ...] = (
    _row(
        "autoballoon",
        E,
        "autoballoon",
        by=("xenlite.config.hostconf.xlconf:resolve_autoballoon",),
        source=_XC,
    ),
    _row(
        "run_hotplug_scripts",
        X,
        "c_info.run_hotplug_scripts",
        source=_XC,
        unset=(True,),
        why="xenlite has no udev path: it runs its device scripts itself",
    ),
    _row(
        "claim_mode",
        X,
        "b_info.claim_mode",
        source=_XC,
        unset=(True,),
        why="xenlite always reserves a domain's memory before building it",
    ),
    _row(
        "blkdev_start",
        X,
        "b_info.blkdev_start",
        source=_XC,
        why="xl's first free block device for bootloaders",
    ),
    _row("bootloader_restrict", L, "bootloader_restrict", source=_XC, why=_RESTRICT),
    _row(
        "output_format",
        E,
        "output_format",
        by=("xenlite.cli.commands.domains:_check_json_output",),
        source=_XC,
    ),
    _row("lockfile", X, "lockfile", source=_XC, why="xenlited serialises domain operations itself"),
    _row("max_grant_frames", X, "max_grant_frames", source=_XC, why=_GRANT),
    _row("max_maptrack_frames", X, "max_maptrack_frames", source=_XC, why=_GRANT),
    _row("max_grant_version", X, "max_grant_version", source=_XC, why=_GRANT),
    _row("vif.default.script", E, "vif_default_script", source=_XC, by=(_NIC_DEFAULTS,)),
    _row("vif.default.bridge", E, "vif_default_bridge", source=_XC, by=(_NIC_DEFAULTS,)),
    _row("vif.default.backend", E, "vif_default_backend", source=_XC, by=(_NIC_DEFAULTS,)),
    _row("vif.default.gatewaydev", E, "vif_default_gatewaydev", source=_XC, by=(_NIC_DEFAULTS,)),
    _row(
        "remus.default.netbufscript",
        R,
        "remus_default_netbufscript",
        source=_XC,
        why="Remus replication is a Xen feature",
    ),
    _row(
        "colo.default.proxyscript",
        R,
        "colo_default_proxyscript",
        source=_XC,
        why="COLO replication is a Xen feature",
    ),
    _row("vm.cpumask", L, "vm_cpumask", source=_XC, why="cpu masks"),
    _row("vm.pv.cpumask", L, "vm_pv_cpumask", source=_XC, why="cpu masks"),
    _row("vm.hvm.cpumask", L, "vm_hvm_cpumask", source=_XC, why="cpu masks"),
    _row("domid_policy", L, "domid_policy", source=_XC, why="random domids"),
)

_B = Source.BOOT
_DMESG = "xenlite's xl dmesg keeps every message"
BOOT: tuple[Setting, ...] = (
    _row("dom0_mem", E, "dom0_mem", by=(f"{_BOOTOPTS}:resolve_dom0_mem",), source=_B),
    _row("mem", E, "mem", by=("xenlite.daemon.main:host_memory_book",), source=_B),
    _row("sched", E, "sched", by=("xenlite.daemon.main:_serve",), source=_B),
    _row(
        "dom0_max_vcpus",
        E,
        "dom0_max_vcpus",
        by=("xenlite.daemon.main:dom0_placement",),
        source=_B,
    ),
    _row(
        "dom0_vcpus_pin",
        E,
        "dom0_vcpus_pin",
        by=(
            "xenlite.daemon.main:dom0_placement",
            "xenlite.domain.resources:DomainResources.default_cpus",
        ),
        source=_B,
    ),
    _row(
        "sched_credit_tslice_ms",
        X,
        "sched_credit_tslice_ms",
        source=_B,
        why="shown by xl sched-credit; Linux's CFS has no time slice to set",
    ),
    _row(
        "sched_ratelimit_us",
        X,
        "sched_ratelimit_us",
        source=_B,
        why="shown by xl sched-credit; Linux's CFS has no rate limit to set",
    ),
    _row("loglvl", X, "loglvl", source=_B, why=_DMESG),
    _row("guest_loglvl", X, "guest_loglvl", source=_B, why=_DMESG),
    _row(
        "console_to_ring",
        X,
        "console_to_ring",
        source=_B,
        why="guest consoles are logged per domain, not into the hypervisor's ring",
    ),
    _row("conring_size", X, "conring_size", source=_B, why="xl dmesg keeps a ring of lines"),
    _row("noreboot", X, "noreboot", source=_B, why="there is no hypervisor to reboot"),
    _row("com1", X, "com1", source=_B, why="there is no hypervisor console"),
    _row("com2", X, "com2", source=_B, why="there is no hypervisor console"),
    _row("console", X, "console", source=_B, why="there is no hypervisor console"),
    _row("maxcpus", X, "maxcpus", source=_B, why="the host kernel brings up the CPUs"),
    _row("nosmp", X, "nosmp", source=_B, why="the host kernel brings up the CPUs"),
)

# Model fields no xl.cfg key sets: libxl's JSON (a tool sending domain.create) can.
_J = Source.LIBXL
LIBXL_ONLY: tuple[Setting, ...] = (
    _row(
        "c_info.domid",
        E,
        "c_info.domid",
        source=_J,
        by=("xenlite.domain.manager:DomainManager.create",),
        why="the engine chooses each domid",
    ),
    _row("c_info.ssidref", R, "c_info.ssidref", source=_J, why=_SEC),
    _row(
        "c_info.xsdata",
        L,
        "c_info.xsdata",
        source=_J,
        why="extra XenStore nodes from the config",
    ),
    _row(
        "c_info.platformdata",
        L,
        "c_info.platformdata",
        source=_J,
        why="extra XenStore nodes from the config",
    ),
    _row("c_info.poolid", E, "c_info.poolid", source=_J, by=_POOL),
    _row(
        "b_info.cpumap",
        L,
        "b_info.cpumap",
        source=_J,
        why="a domain-wide CPU map; xl gives vcpu_hard_affinity",
    ),
    _row(
        "b_info.numa_placement",
        X,
        "b_info.numa_placement",
        source=_J,
        unset=(False,),
        why="xenlite never places domains on NUMA nodes itself",
    ),
    _row("b_info.nodemap", X, "b_info.nodemap", source=_J, why="this host has one NUMA node"),
    _row(
        "b_info.iommu_memkb", X, "b_info.iommu_memkb", source=_J, why="Xen's IOMMU page-table pool"
    ),
    _row("b_info.exec_ssidref", R, "b_info.exec_ssidref", source=_J, why=_SEC),
    _row("b_info.device_model_ssidref", R, "b_info.device_model_ssidref", source=_J, why=_SEC),
    _row("b_info.stubdomain_cmdline", R, "b_info.stubdomain_cmdline", source=_J, why=_STUB),
    _row(
        "b_info.sched_params.sched",
        X,
        "b_info.sched_params.sched",
        source=_J,
        why="every domain runs under the host's one scheduler (sched= on the command line)",
    ),
    _row(
        "b_info.sched_params.budget",
        X,
        "b_info.sched_params.budget",
        source=_J,
        why="RTDS parameters; CFS has none",
    ),
    _row(
        "b_info.vpmu", X, "b_info.vpmu", source=_J, why="the guest's PMU follows the QEMU CPU model"
    ),
    *(
        _row(f"hvm.{name}", X, f"hvm.{name}", source=_J, why=f"libxl's old place of {key}=")
        for name, key in (
            ("apic", "apic"),
            ("acpi", "acpi"),
            ("timer_mode", "timer_mode"),
            ("nested_hvm", "nestedhvm"),
        )
    ),
    _row("hvm.timeoffset", X, "hvm.timeoffset", source=_J, why="qemu-xen-traditional's clock"),
    _row("hvm.pirq", X, "hvm.pirq", source=_J, why="Xen's PIRQ event channels"),
    _row("pv.slack_memkb", X, "pv.slack_memkb", source=_J, why="Xen's PV memory slack"),
    _row("pv.features", X, "pv.features", source=_J, why="Xen PV kernel features"),
)

TABLE: tuple[Setting, ...] = XL_CFG + XL_CONF + BOOT + LIBXL_ONLY
KNOWN_KEYS: frozenset[str] = frozenset(row.name for row in XL_CFG if row.in_xl)

# Model field path -> its row (xl.cfg, xl.conf and libxl rows: the domain's own settings).
BY_FIELD: dict[str, Setting] = {
    path: row for row in XL_CFG + XL_CONF + LIBXL_ONLY for path in row.fields if "." in path
}
BOOT_BY_FIELD: dict[str, Setting] = {path: row for row in BOOT for path in row.fields}

# Structs the walk goes into rather than comparing whole; the type-specific b_info.u by kind.
_NESTED = {"c_info", "b_info", "u", "sched_params"}
_KIND = {PvBuildInfo: "pv", PvhBuildInfo: "pvh", HvmBuildInfo: "hvm"}


@dataclass(frozen=True, slots=True)
class Report:
    """A setting that a domain's config changes, with the row that says what xenlite does."""

    path: str
    setting: Setting
    known: bool = True  # False: no row knows the field (a bug of the table, not the user's)

    @property
    def key(self) -> str:
        return self.setting.name

    def message(self) -> str:
        """The line a user reads: ``tsc_mode: has no effect on a QEMU host (...)``."""
        where = "" if self.setting.source is Source.XL_CFG else f" ({self.setting.source})"
        return f"{self.key}{where}: has no effect on a QEMU host ({self.setting.why})"


def changed_fields(config: DomainConfig) -> Iterator[tuple[str, object]]:
    """Every model field whose value differs from libxl's default, as (path, value)."""
    yield from _walk("config", config, DomainConfig())


def _walk(prefix: str, value: object, default: object) -> Iterator[tuple[str, object]]:
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        current = getattr(value, field.name)
        base = getattr(default, field.name)
        if field.name == "u":
            if type(current) is not type(base):
                yield f"{prefix}.u", current
            yield from _walk(_KIND[type(current)], current, type(current)())
        elif field.name in _NESTED:
            yield from _walk(
                field.name if prefix == "config" else f"{prefix}.{field.name}", current, base
            )
        elif current != base:
            yield f"{prefix}.{field.name}", current


def domain_reports(config: DomainConfig) -> tuple[tuple[Report, ...], tuple[Report, ...]]:
    """The settings ``config`` changes that xenlite does not honour: (reported, refused).

    ``reported`` are XEN_ONLY rows (a create goes on and says so); ``refused`` are LATER and
    REFUSED rows, and fields no row knows (a create fails). Each key is named once.
    """
    reported: dict[str, Report] = {}
    refused: dict[str, Report] = {}
    for path, value in changed_fields(config):
        row = BY_FIELD.get(path)
        if row is None:
            unknown = Setting(
                path,
                Source.LIBXL,
                Treatment.REFUSED,
                (path,),
                why="a model field no row of config.settings knows",
            )
            refused.setdefault(path, Report(path, unknown, known=False))
            continue
        if value in row.unset:
            continue
        if row.treatment is Treatment.XEN_ONLY:
            reported.setdefault(row.name, Report(path, row))
        elif row.treatment in (Treatment.LATER, Treatment.REFUSED):
            refused.setdefault(row.name, Report(path, row))
    return tuple(reported.values()), tuple(refused.values())


def boot_reports(given: Iterable[str]) -> tuple[Setting, ...]:
    """The rows of the boot options ``given`` (recognised names) that take no effect here."""
    return tuple(
        row
        for name in given
        if (row := BOOT_BY_FIELD.get(name)) is not None
        and row.treatment in (Treatment.XEN_ONLY, Treatment.LATER, Treatment.REFUSED)
    )


def xlconf_reports(conf: XlConf) -> tuple[Setting, ...]:
    """The xl.conf settings ``conf`` changes that take no effect here. Those xl copies into
    each domain (claim_mode, ...) are reported by each create instead."""
    default = XlConf()
    return tuple(
        row
        for row in XL_CONF
        for name in row.fields
        if "." not in name
        and row.treatment in (Treatment.XEN_ONLY, Treatment.LATER, Treatment.REFUSED)
        and getattr(conf, name) != getattr(default, name)
    )


__all__ = [
    "BOOT",
    "BY_FIELD",
    "KNOWN_KEYS",
    "LATER_WORDS",
    "LIBXL_ONLY",
    "TABLE",
    "XL_CFG",
    "XL_CONF",
    "Report",
    "Setting",
    "Source",
    "Treatment",
    "boot_reports",
    "changed_fields",
    "domain_reports",
    "xlconf_reports",
]
