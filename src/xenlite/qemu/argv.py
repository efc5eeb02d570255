"""A DomainConfig -> the qemu-system-x86_64 command line that runs the domain (pure).

Implements, for the domain engine of issue 4, what xl.cfg(5) "Direct Kernel Boot" (kernel,
ramdisk, cmdline/root/extra), "Memory Allocation" (memory, maxmem), "CPU Allocation" (vcpus,
maxvcpus), "name", "uuid", "device_model_args" and the on_* "Event Actions" need from QEMU;
../shared/DESIGN.md's Xen-to-QEMU table gives the mapping. Every other field of the model is
either owned by another layer (scheduling, affinity, pools, memory admission), a Xen-internal
knob with no QEMU meaning (reported by :func:`ignored_settings`), or refused with
:class:`Unsupported` naming its xl.cfg key: nothing a config asks for is silently dropped.

Choices, and why:

- Machine ``q35`` for PV and PVH alike: the guest's virtio devices sit on PCI and xl shutdown
  presses the ACPI power button, which microvm lacks. The kernel boots through QEMU's Linux
  loader (``-kernel/-initrd/-append``), the closest thing to Xen's PV direct boot.
- ``-action reboot=shutdown,shutdown=pause,panic=pause`` rather than ``-no-reboot`` or
  ``-no-shutdown`` alone: under Xen a guest's poweroff, reboot and crash all *shut the domain
  down with a reason*, and the toolstack then applies on_poweroff/on_reboot/on_crash. These
  actions make QEMU do the same: poweroff and reboot arrive as a QMP SHUTDOWN event (reason
  ``guest-shutdown`` or ``guest-reset``) and a panic as GUEST_PANICKED, and QEMU stays, paused,
  so the toolstack can destroy, restart in place (``system_reset`` + ``cont``), preserve or
  dump the guest's memory first. ``-no-reboot`` would make QEMU exit on reboot (nothing left
  to preserve or dump), and the default in-place reset would hide reboots from the toolstack.
  QMP ``system_reset`` (xl trigger reset) also becomes a shutdown, as a reset trigger shuts a
  Xen domain down with reason reboot.
- Memory: ``-m`` is the domain's maximum (maxmem, else memory) and the balloon brings the guest
  down to its target after launch (:func:`balloon_target_bytes`), as Xen builds a domain with
  static-max and lets the balloon driver reach the target. QEMU's own ``maxmem=`` is DIMM
  hotplug, which Xen does not model, so it is not used.
- Paused start (``-S``) by default: libxl builds every domain paused and unpauses it only at
  the end of creation (after vCPU pinning, cgroups, balloon target), or never with ``xl -p``.
- No ``-daemonize``: process.py starts QEMU in its own session and knows its pid at once.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from enum import StrEnum

from xenlite.base.errors import ConfigError, Unsupported
from xenlite.config.domain import effective_max_memkb, effective_target_memkb
from xenlite.config.model import (
    BuildInfo,
    CreateInfo,
    DeviceModelVersion,
    DomainConfig,
    DomainType,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
)
from xenlite.qemu.accel import Accel
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.runpaths import RunPaths

MACHINE = "q35"
BALLOON_DEVICE = "virtio-balloon-pci"
BALLOON_ID = "balloon0"
PANIC_DEVICE = "pvpanic"
SERIAL_CHARDEV = "serial0"
QMP_CHARDEV = "qmp"
LATER = "arrives with a later issue"


@dataclass(frozen=True, slots=True)
class QemuHost:
    """What argv needs to know about the host: the binary, the accelerator and the CPUs."""

    binary: QemuBinary
    accel: Accel
    nr_cpus: int


class Handling(StrEnum):
    """How this layer treats a field of the model when it differs from libxl's default."""

    ARGV = "argv"  # turned into QEMU options here
    ELSEWHERE = "elsewhere"  # another layer honours it (domain engine, host cgroups, memory)
    XEN_ONLY = "xen_only"  # a Xen-internal knob without QEMU meaning: reported, then ignored
    LATER = "later"  # refused until a later issue implements it
    NEVER = "never"  # refused: no way to do it on a QEMU host


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The xl.cfg key a model field comes from, how it is handled and, if refused, why."""

    key: str
    handling: Handling
    why: str = ""


def _r(key: str, handling: Handling, why: str = "") -> FieldRule:
    return FieldRule(key, handling, why)


A, E, X, L, N = Handling.ARGV, Handling.ELSEWHERE, Handling.XEN_ONLY, Handling.LATER, Handling.NEVER
_DEV = "device support " + LATER
_SEC = "Xen security labels (XSM/FLASK) have no counterpart on a QEMU host"
_STUB = "stub domains are a Xen construct; QEMU runs as a process on the host here"

CREATE_INFO_RULES: dict[str, FieldRule] = {
    "type": _r("type", A),
    "hap": _r("hap", X, "hardware-assisted paging is chosen by KVM/TCG, not per domain"),
    "oos": _r("oos", X, "shadow page table out-of-sync is a Xen shadow-paging detail"),
    "ssidref": _r("seclabel", N, _SEC),
    "ssid_label": _r("seclabel", N, _SEC),
    "name": _r("name", A),
    "domid": _r("domid", E),
    "uuid": _r("uuid", A),
    "xsdata": _r("xsdata", E),
    "platformdata": _r("platformdata", E),
    "poolid": _r("pool", E),
    "pool_name": _r("pool", E),
    "run_hotplug_scripts": _r("run_hotplug_scripts", E),
    "driver_domain": _r("driver_domain", N, "xenlite runs every backend in the host"),
    "passthrough": _r("passthrough", X, "IOMMU page-table sharing is a Xen detail"),
    "xend_suspend_evtchn_compat": _r("xend_suspend_evtchn_compat", X, "xend compatibility"),
}

BUILD_INFO_RULES: dict[str, FieldRule] = {
    "max_vcpus": _r("maxvcpus", A),
    "avail_vcpus": _r("vcpus", A),
    "cpumap": _r("cpus", E),
    "nodemap": _r("cpus", E),
    "vcpu_hard_affinity": _r("cpus", E),
    "vcpu_soft_affinity": _r("cpus_soft", E),
    "numa_placement": _r("cpus", E),
    "tsc_mode": _r("tsc_mode", X, "Xen's TSC emulation modes have no QEMU counterpart"),
    "max_memkb": _r("maxmem", A),
    "target_memkb": _r("memory", A),
    "video_memkb": _r("videoram", L, "emulated graphics " + LATER),
    "shadow_memkb": _r("shadow_memory", X, "Xen's shadow page-table pool"),
    "iommu_memkb": _r("iommu_memkb", X, "Xen's IOMMU page-table pool"),
    "rtc_timeoffset": _r("rtc_timeoffset", L, "an RTC offset " + LATER),
    "exec_ssidref": _r("seclabel", N, _SEC),
    "exec_ssid_label": _r("init_seclabel", N, _SEC),
    "localtime": _r("localtime", A),
    "disable_migrate": _r("nomigrate", E),
    "blkdev_start": _r("blkdev_start", X, "xl's first free block device for bootloaders"),
    "vnuma_nodes": _r("vnuma", L, "virtual NUMA topologies " + LATER),
    "max_grant_frames": _r("max_grant_frames", X, "Xen grant tables do not exist here"),
    "max_maptrack_frames": _r("max_maptrack_frames", X, "Xen grant tables do not exist here"),
    "max_grant_version": _r("max_grant_version", X, "Xen grant tables do not exist here"),
    "device_model_version": _r("device_model_version", A),
    "device_model_stubdomain": _r("device_model_stubdomain_override", N, _STUB),
    "stubdomain_memkb": _r("stubdomain_memory", N, _STUB),
    "stubdomain_kernel": _r("stubdomain_kernel", N, _STUB),
    "stubdomain_cmdline": _r("stubdomain_cmdline", N, _STUB),
    "stubdomain_ramdisk": _r("stubdomain_ramdisk", N, _STUB),
    "device_model": _r("device_model_override", A),
    "device_model_ssidref": _r("device_model_stubdomain_seclabel", N, _SEC),
    "device_model_ssid_label": _r("device_model_stubdomain_seclabel", N, _SEC),
    "device_model_user": _r("device_model_user", L, "running QEMU as another user " + LATER),
    "extra": _r("device_model_args", A),
    "extra_pv": _r("device_model_args_pv", A),
    "extra_hvm": _r("device_model_args_hvm", X, "xl passes it to HVM guests only"),
    "sched_params": _r("sched", E),
    "ioports": _r("ioports", N, "raw host I/O port pass-through is not possible under QEMU"),
    "irqs": _r("irqs", N, "raw host IRQ pass-through is not possible under QEMU"),
    "iomem": _r("iomem", N, "raw host memory pass-through is not possible under QEMU"),
    "claim_mode": _r("claim_mode", E),
    "event_channels": _r("max_event_channels", X, "Xen event channels do not exist here"),
    "kernel": _r("kernel", A),
    "cmdline": _r("cmdline", A),
    "ramdisk": _r("ramdisk", A),
    "device_tree": _r("device_tree", N, "device trees are for Arm guests; this host runs x86"),
    "acpi": _r("acpi", A),
    "bootloader": _r("bootloader", L, "bootloaders (pygrub) " + LATER),
    "bootloader_args": _r("bootloader_args", L, "bootloaders (pygrub) " + LATER),
    "bootloader_restrict": _r("bootloader_restrict", L, "bootloaders (pygrub) " + LATER),
    "bootloader_user": _r("bootloader_user", L, "bootloaders (pygrub) " + LATER),
    "timer_mode": _r("timer_mode", X, "Xen's virtual timer modes have no QEMU counterpart"),
    "nested_hvm": _r("nestedhvm", L, "nested virtualization " + LATER),
    "apic": _r("apic", X, "the guest always has a local APIC under QEMU"),
    "dm_restrict": _r("dm_restrict", L, "QEMU privilege restriction " + LATER),
    "tee": _r("tee", N, "TEE mediators are for Arm guests; this host runs x86"),
    "u": _r("type", A),
    "arch_arm": _r("gic_version", N, "Arm settings do not apply to an x86 host"),
    "arch_x86": _r("msr_relaxed", X, "Xen's MSR access policy has no QEMU counterpart"),
    "altp2m": _r("altp2m", N, "alternate p2m views are a Xen feature"),
    "vmtrace_buf_kb": _r("vmtrace_buf_kb", N, "Xen's processor-trace buffers do not exist here"),
    "vpmu": _r("vpmu", X, "the guest's PMU follows the QEMU CPU model"),
}

PV_RULES: dict[str, FieldRule] = {
    "slack_memkb": _r("slack_memkb", X, "Xen's PV memory slack"),
    "features": _r("pv_features", X, "Xen PV kernel features"),
    "e820_host": _r("e820_host", N, "the host's memory map cannot be given to a QEMU guest"),
}

PVH_RULES: dict[str, FieldRule] = {
    "pvshim": _r("pvshim", N, "the PV shim runs PV guests inside Xen PVH domains"),
    "pvshim_path": _r("pvshim_path", N, "the PV shim runs PV guests inside Xen PVH domains"),
    "pvshim_cmdline": _r("pvshim_cmdline", N, "the PV shim runs PV guests inside Xen PVH domains"),
    "pvshim_extra": _r("pvshim_extra", N, "the PV shim runs PV guests inside Xen PVH domains"),
}

DOMAIN_RULES: dict[str, FieldRule] = {
    "c_info": _r("c_info", A),
    "b_info": _r("b_info", A),
    "disks": _r("disk", L, "virtual disks: " + _DEV),
    "nics": _r("vif", L, "virtual network interfaces: " + _DEV),
    "pcidevs": _r("pci", L, "PCI pass-through: " + _DEV),
    "dtdevs": _r("dtdev", N, "device-tree pass-through is for Arm guests"),
    "vfbs": _r("vfb", L, "virtual framebuffers and VNC: " + _DEV),
    "vkbs": _r("vkb", L, "virtual keyboards: " + _DEV),
    "vtpms": _r("vtpm", L, "virtual TPMs: " + _DEV),
    "p9s": _r("p9", L, "9pfs shares: " + _DEV),
    "pvcallsifs": _r("pvcalls", N, "PV calls are a Xen paravirtual protocol"),
    "vdispls": _r("vdispl", L, "virtual displays: " + _DEV),
    "vsnds": _r("vsnd", L, "virtual sound cards: " + _DEV),
    "channels": _r("channel", L, "guest channels: " + _DEV),
    "usbctrls": _r("usbctrl", L, "USB controllers: " + _DEV),
    "usbdevs": _r("usbdev", L, "USB devices: " + _DEV),
    "on_poweroff": _r("on_poweroff", E),
    "on_reboot": _r("on_reboot", E),
    # Xen's watchdog is a hypercall a guest can arm; no such thing exists under QEMU, so the
    # action can never fire: accepted, nothing to honour.
    "on_watchdog": _r("on_watchdog", E),
    "on_crash": _r("on_crash", E),
    "on_soft_reset": _r("on_soft_reset", E),
}


def opt(value: str | os.PathLike[str]) -> str:
    """``value`` escaped for a QEMU ``key=value,...`` option list (``,`` -> ``,,``)."""
    return os.fspath(value).replace(",", ",,")


def build_argv(
    cfg: DomainConfig,
    *,
    domid: int,
    host: QemuHost,
    paths: RunPaths,
    paused: bool = True,
) -> list[str]:
    """The full QEMU command line (``argv[0]`` is the binary) for domain ``domid``.

    ``cfg.c_info.uuid`` should be set (the domain engine generates one when the config has
    none); without it QEMU is given no ``-uuid``.

    :param paused: start with the vCPUs stopped (``-S``); the toolstack sends ``cont``
    :raise Unsupported: for anything the config asks for that this layer cannot honour yet
    :raise ConfigError: when a PV/PVH config has no kernel to boot
    :raise HostError: when a socket path is too long
    :raise ValueError: when ``host.binary`` is not the config's device_model_override
    """
    check_supported(cfg)
    paths.check_socket_paths()
    b_info = cfg.b_info
    binary = host.binary
    if b_info.device_model is not None and os.path.abspath(b_info.device_model) != os.fspath(
        binary.path
    ):
        raise ValueError(
            f"host.binary is {binary.path} but the config's device_model_override is "
            f"{b_info.device_model}"
        )
    if b_info.kernel is None:
        raise ConfigError(
            "no kernel to boot: a PV or PVH guest needs kernel= (or a bootloader)",
            key="kernel",
            fix='add kernel="/path/to/vmlinuz" (and ramdisk=, root= or extra=)',
        )
    binary.require_machine(MACHINE)
    binary.require_device(BALLOON_DEVICE)
    binary.require_device(PANIC_DEVICE)
    if str(host.accel) not in binary.accels:
        raise Unsupported(
            f"accelerator {host.accel}",
            f"{binary.path} ({binary.version_text}) does not offer it",
            "unset XENLITE_ACCEL to let xenlite choose",
        )

    name = cfg.c_info.name or f"domain-{domid}"
    machine = MACHINE if b_info.acpi is not False else f"{MACHINE},acpi=off"
    argv = [
        os.fspath(binary.path),
        "-name", f"guest={opt(name)},process=qemu-dm-{domid},debug-threads=on",
        "-no-user-config", "-nodefaults", "-nographic", "-display", "none",
        "-machine", machine,
        "-accel", _accel_option(host, _vcpus(b_info)[0]),
        "-cpu", "host" if host.accel is Accel.KVM else "max",
        "-m", f"size={_mib(effective_max_memkb(b_info))}M",
        "-smp", _smp_option(b_info),
    ]  # fmt: skip
    if cfg.c_info.uuid is not None:
        argv += ["-uuid", cfg.c_info.uuid]
    if b_info.localtime:
        argv += ["-rtc", "base=localtime"]
    argv += ["-kernel", b_info.kernel]
    if b_info.ramdisk is not None:
        argv += ["-initrd", b_info.ramdisk]
    if b_info.cmdline:
        argv += ["-append", b_info.cmdline]
    argv += [
        "-chardev", f"socket,id={QMP_CHARDEV},path={opt(paths.qmp_socket)},server=on,wait=off",
        "-mon", f"chardev={QMP_CHARDEV},mode=control",
        "-chardev", _serial_chardev(paths),
        "-serial", f"chardev:{SERIAL_CHARDEV}",
        "-device", PANIC_DEVICE,
        "-device", f"{BALLOON_DEVICE},id={BALLOON_ID}",
        "-action", "reboot=shutdown,shutdown=pause,panic=pause",
    ]  # fmt: skip
    if paused:
        argv.append("-S")
    # device_model_args go last, as libxl appends them after its own options.
    argv += b_info.extra
    if isinstance(b_info.u, PvBuildInfo):
        argv += b_info.extra_pv
    return argv


def balloon_target_bytes(cfg: DomainConfig) -> int | None:
    """The balloon target to set right after launch, or None when the guest starts at its
    maximum (memory == maxmem)."""
    target = effective_target_memkb(cfg.b_info)
    if target >= effective_max_memkb(cfg.b_info):
        return None
    return target * 1024


def check_supported(cfg: DomainConfig) -> None:
    """Refuse every field this layer cannot honour yet.

    :raise Unsupported: naming the xl.cfg key, why, and whether it arrives later
    """
    if cfg.c_info.type is DomainType.HVM or isinstance(cfg.b_info.u, HvmBuildInfo):
        raise Unsupported(
            'type="hvm"',
            f"HVM guests (firmware boot, emulated devices) {LATER}",
            'boot the guest as type="pvh" or "pv" with kernel= for now',
        )
    if cfg.b_info.device_model_version is DeviceModelVersion.QEMU_XEN_TRADITIONAL:
        raise Unsupported(
            'device_model_version="qemu-xen-traditional"',
            "xenlite runs upstream QEMU only",
            'remove device_model_version (or set it to "qemu-xen")',
        )
    _check_struct(cfg, DomainConfig(), DOMAIN_RULES)
    _check_struct(cfg.c_info, CreateInfo(), CREATE_INFO_RULES)
    _check_struct(cfg.b_info, BuildInfo(), BUILD_INFO_RULES)
    if isinstance(cfg.b_info.u, PvBuildInfo):
        _check_struct(cfg.b_info.u, PvBuildInfo(), PV_RULES)
    elif isinstance(cfg.b_info.u, PvhBuildInfo):
        _check_struct(cfg.b_info.u, PvhBuildInfo(), PVH_RULES)


def ignored_settings(cfg: DomainConfig) -> tuple[str, ...]:
    """One warning per Xen-internal setting the config changes that has no effect here."""
    notes: list[str] = []
    pairs: list[tuple[object, object, dict[str, FieldRule]]] = [
        (cfg.c_info, CreateInfo(), CREATE_INFO_RULES),
        (cfg.b_info, BuildInfo(), BUILD_INFO_RULES),
    ]
    if isinstance(cfg.b_info.u, PvBuildInfo):
        pairs.append((cfg.b_info.u, PvBuildInfo(), PV_RULES))
    for value, default, rules in pairs:
        for field in dataclasses.fields(value):  # type: ignore[arg-type]
            rule = rules[field.name]
            if rule.handling is not Handling.XEN_ONLY:
                continue
            if getattr(value, field.name) != getattr(default, field.name):
                notes.append(f"{rule.key}: ignored on a QEMU host ({rule.why})")
    return tuple(notes)


def _check_struct(value: object, default: object, rules: dict[str, FieldRule]) -> None:
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        rule = rules.get(field.name)
        if rule is None:
            # A model field this table does not know: refuse rather than drop it.
            raise Unsupported(
                f"{type(value).__name__}.{field.name}",
                "is not known to xenlite's QEMU layer",
                "report this: the QEMU argv builder needs a rule for the field",
            )
        if rule.handling not in (Handling.LATER, Handling.NEVER):
            continue
        if getattr(value, field.name) == getattr(default, field.name):
            continue
        if rule.handling is Handling.LATER:
            fix = f"remove {rule.key}= from the config for now; it {LATER}"
        else:
            fix = f"remove {rule.key}= from the config"
        raise Unsupported(f"{rule.key}", f"not supported by xenlite: {rule.why}", fix)


def _vcpus(b_info: BuildInfo) -> tuple[int, int]:
    """(vCPUs online at boot, maximum) as libxl resolves them."""
    maximum = b_info.max_vcpus or 1
    if not b_info.avail_vcpus:
        return maximum, maximum
    online = len(b_info.avail_vcpus)
    if b_info.avail_vcpus != frozenset(range(online)):
        raise Unsupported(
            "vcpus",
            f"QEMU brings up vCPUs 0..n-1 at boot, not {sorted(b_info.avail_vcpus)}",
            "give vcpus=N (the first N vCPUs online)",
        )
    return online, max(maximum, online)


def _smp_option(b_info: BuildInfo) -> str:
    online, maximum = _vcpus(b_info)
    return f"cpus={online},maxcpus={maximum}"


def _accel_option(host: QemuHost, vcpus: int) -> str:
    if host.accel is Accel.KVM:
        return "kvm"
    # Multi-threaded TCG only pays off with several host CPUs to run the vCPU threads on.
    thread = "multi" if host.nr_cpus > 1 and vcpus > 1 else "single"
    return f"tcg,thread={thread}"


def _mib(kib: int) -> int:
    return max(1, -(-kib // 1024))


def _serial_chardev(paths: RunPaths) -> str:
    chardev = f"socket,id={SERIAL_CHARDEV},path={opt(paths.serial_socket)},server=on,wait=off"
    if paths.console_log is not None:
        chardev += f",logfile={opt(paths.console_log)},logappend=on"
    return chardev


__all__ = [
    "BUILD_INFO_RULES",
    "CREATE_INFO_RULES",
    "DOMAIN_RULES",
    "PVH_RULES",
    "PV_RULES",
    "FieldRule",
    "Handling",
    "QemuHost",
    "balloon_target_bytes",
    "build_argv",
    "check_supported",
    "ignored_settings",
    "opt",
]
