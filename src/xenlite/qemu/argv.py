"""A DomainConfig -> the qemu-system-x86_64 command line that runs the domain (pure).

Implements, for the domain engine of issue 4, what xl.cfg(5) "Direct Kernel Boot" (kernel,
ramdisk, cmdline/root/extra), "Memory Allocation" (memory, maxmem), "CPU Allocation" (vcpus,
maxvcpus), "name", "uuid", "device_model_args" and the on_* "Event Actions" need from QEMU;
../shared/DESIGN.md's Xen-to-QEMU table gives the mapping. Every other field of the model is
either owned by another layer (scheduling, affinity, pools, memory admission), a Xen-internal
knob with no QEMU meaning (reported at create), or refused with :class:`Unsupported` naming
its xl.cfg key: ``config.settings`` says which, for every setting.

Choices, and why:

- Machine ``q35`` for PV and PVH alike: the guest's virtio devices sit on PCI and xl shutdown
  presses the ACPI power button, which microvm lacks. The kernel boots through QEMU's Linux
  loader (``-kernel/-initrd/-append``), the closest thing to Xen's PV direct boot. An HVM
  domain boots its firmware on Xen's chipset instead (qemu/hvm.py says how and why).
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

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xenlite.base.errors import ConfigError, Unsupported
from xenlite.config.domain.build import effective_max_memkb, effective_target_memkb
from xenlite.config.domain.cpuid import CpuidError, qemu_cpu_options
from xenlite.config.domain.model import (
    BuildInfo,
    DeviceModelVersion,
    DomainConfig,
    HvmBuildInfo,
    PvBuildInfo,
)
from xenlite.config.settings import Report, Treatment, domain_reports
from xenlite.qemu import hvm as hvmp
from xenlite.qemu.accel import Accel
from xenlite.qemu.binary import QemuBinary
from xenlite.qemu.blockdev import DISK_SLOTS, SERIAL_MAX, BlockDisk, block_nodes, disk_layout
from xenlite.qemu.netdev import NIC_SLOTS, GuestNic, nic_layout
from xenlite.qemu.options import opt
from xenlite.qemu.runpaths import RunPaths

MACHINE = "q35"
BALLOON_DEVICE = "virtio-balloon-pci"
BALLOON_ID = "balloon0"
PANIC_DEVICE = "pvpanic"
SERIAL_CHARDEV = "serial0"
QMP_CHARDEV = "qmp"


@dataclass(frozen=True, slots=True)
class QemuHost:
    """What argv needs to know about the host: the binary, the accelerator and the CPUs."""

    binary: QemuBinary
    accel: Accel
    nr_cpus: int


def build_argv(
    cfg: DomainConfig,
    *,
    domid: int,
    host: QemuHost,
    paths: RunPaths,
    paused: bool = True,
    disks: Sequence[BlockDisk] = (),
    nics: Sequence[GuestNic] = (),
) -> list[str]:
    """The full QEMU command line (``argv[0]`` is the binary) for domain ``domid``.

    ``disks`` are the config's disks as the domain layer resolved them (domain/disks.py),
    in the order the guest is to see them; ``nics`` its NICs (domain/nics.py), whose taps
    exist on their bridges.

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
    hvm = b_info.u if isinstance(b_info.u, HvmBuildInfo) else None
    if hvm is None and b_info.kernel is None:
        raise ConfigError(
            "no kernel to boot: a PV or PVH guest needs kernel= (or a bootloader)",
            key="kernel",
            fix='add kernel="/path/to/vmlinuz" (and ramdisk=, root= or extra=)',
        )
    if hvm is not None:
        hvmp.check_display(hvm)
        hvmp.check_nested(b_info, kvm=host.accel is Accel.KVM)
    binary.require_machine(MACHINE if hvm is None else hvmp.MACHINE)
    binary.require_device(BALLOON_DEVICE)
    binary.require_device(PANIC_DEVICE)
    if str(host.accel) not in binary.accels:
        raise Unsupported(
            f"accelerator {host.accel}",
            f"{binary.path} ({binary.version_text}) does not offer it",
            "unset XENLITE_ACCEL to let xenlite choose",
        )

    name = cfg.c_info.name or f"domain-{domid}"
    if hvm is None:
        machine = MACHINE if b_info.acpi is not False else f"{MACHINE},acpi=off"
        display = ["-nographic", "-display", "none"]
    else:
        machine = hvmp.machine_option(b_info, hvm)
        display = ["-display", "none"]
    cpu = "host" if host.accel is Accel.KVM else "max"
    cpu = ",".join([cpu, *(hvmp.cpu_flags(hvm) if hvm is not None else []), *_cpuid(b_info)])
    argv = [
        os.fspath(binary.path),
        "-name", f"guest={opt(name)},process=qemu-dm-{domid},debug-threads=on",
        "-no-user-config", "-nodefaults", *display,
        "-machine", machine,
        "-accel", _accel_option(host, _vcpus(b_info)[1]),
        "-cpu", cpu,
        "-m", f"size={_mib(effective_max_memkb(b_info))}M",
        "-smp", _smp_option(b_info),
    ]  # fmt: skip
    if cfg.c_info.uuid is not None:
        argv += ["-uuid", cfg.c_info.uuid]
    rtc = _rtc_option(b_info)
    if rtc is not None:
        argv += ["-rtc", rtc]
    if hvm is None:
        assert b_info.kernel is not None
        argv += ["-kernel", b_info.kernel]
        if b_info.ramdisk is not None:
            argv += ["-initrd", b_info.ramdisk]
        if b_info.cmdline:
            argv += ["-append", b_info.cmdline]
    else:
        argv += hvmp.firmware_args(hvm, paths.run_dir)
    argv += [
        "-chardev", f"socket,id={QMP_CHARDEV},path={opt(paths.qmp_socket)},server=on,wait=off",
        "-mon", f"chardev={QMP_CHARDEV},mode=control",
        "-chardev", _serial_chardev(paths),
    ]  # fmt: skip
    if hvm is None or hvmp.has_serial_console(hvm):
        argv += ["-serial", f"chardev:{SERIAL_CHARDEV}"]
    bootable = _boot_indexes(hvm, disks, nics)
    pv_disks = list(disks)
    if hvm is not None:
        pv_disks = []
        emulated = []
        for disk in disks:
            place = hvmp.emulated_position(disk.number, cdrom=disk.cdrom, hdtype=hvm.hdtype)
            if place is None:
                pv_disks.append(disk)
            else:
                emulated.append((disk, place))
        if any(place.unit is None for _, place in emulated):
            binary.require_device(hvmp.ahci_controller()["driver"])
            argv += ["-device", _device_option(hvmp.ahci_controller())]
        for disk, place in emulated:
            argv += [arg for node in block_nodes(disk) for arg in ("-blockdev", json.dumps(node))]
            device = hvmp.emulated_device(
                disk.node, disk.vdev[:SERIAL_MAX], place, cdrom=disk.cdrom, empty=disk.empty
            )
            argv += ["-device", _device_option(device, bootable)]
    try:
        layout = disk_layout(pv_disks, legacy=hvm is not None)
    except ValueError:
        raise Unsupported(
            f"{len(disks)} disks",
            f"a domain has room for {len(DISK_SLOTS)} disks (its cdroms count as one)",
            "give the domain fewer disks",
        ) from None
    for _, device in layout:
        binary.require_device(device["driver"])
    for nodes, device in layout:
        argv += [arg for node in nodes for arg in ("-blockdev", json.dumps(node))]
        argv += ["-device", _device_option(device, bootable)]
    try:
        nic_devices = nic_layout(list(nics), legacy=hvm is not None)
    except ValueError:
        raise Unsupported(
            f"{len(nics)} vifs",
            f"a domain has room for {len(NIC_SLOTS)} vifs",
            "give the domain fewer vifs",
        ) from None
    for backend, device in nic_devices:
        binary.require_device(device["driver"])
        if backend is not None:
            options = [f"{k}={opt(v)}" for k, v in backend.items() if k != "type"]
            argv += ["-netdev", ",".join([backend["type"], *options])]
        argv += ["-device", _device_option(device, bootable)]
    if hvm is not None:
        argv += _hvm_display_and_platform(hvm, binary)
    argv += [
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
    if hvm is not None:
        argv += b_info.extra_hvm
    return argv


def _rtc_option(b_info: BuildInfo, now: float | None = None) -> str | None:
    """``-rtc``'s argument for localtime= and rtc_timeoffset= (None: QEMU's UTC clock).

    QEMU takes a start date rather than an offset, so the offset is added to the time of
    launch, in the guest's zone (local time or UTC)."""
    if not b_info.rtc_timeoffset:
        return "base=localtime" if b_info.localtime else None
    moment = (time.time() if now is None else now) + b_info.rtc_timeoffset
    parts = time.localtime(moment) if b_info.localtime else time.gmtime(moment)
    return "base=" + time.strftime("%Y-%m-%dT%H:%M:%S", parts)


def _cpuid(b_info: BuildInfo) -> list[str]:
    """cpuid='s forced bits as -cpu switches, with ``enforce``: QEMU then refuses to start
    rather than quietly leave out a feature the accelerator cannot give (TCG has no AVX-512)."""
    if not b_info.cpuid:
        return []
    try:
        return [*qemu_cpu_options(b_info.cpuid), "enforce"]
    except CpuidError as exc:
        raise Unsupported(
            "cpuid",
            str(exc),
            "leave those bits to QEMU's CPU model (x) or remove them from cpuid=",
        ) from None


def _boot_indexes(
    hvm: HvmBuildInfo | None, disks: Sequence[BlockDisk], nics: Sequence[GuestNic]
) -> dict[str, int]:
    """An HVM domain's device ids -> bootindex, from boot= (none for PV: no firmware)."""
    if hvm is None:
        return {}
    return hvmp.boot_indexes(
        hvmp.boot_order(hvm),
        disks=[d.node for d in disks if not d.cdrom],
        cdroms=[d.node for d in disks if d.cdrom],
        nics=[n.device_id for n in nics],
    )


def _hvm_display_and_platform(hvm: HvmBuildInfo, binary: QemuBinary) -> list[str]:
    argv: list[str] = []
    vga = hvmp.vga_device(hvm)
    if vga is not None:
        binary.require_device(vga)
        argv += ["-device", vga]
    vnc = hvmp.vnc_of(hvm)
    if vnc is not None:
        argv += ["-vnc", vnc.option()]
    for device in hvmp.usb_devices(hvm):
        binary.require_device(device["driver"])
        argv += ["-device", _device_option(device)]
    return argv + hvmp.platform_args(hvm)


def balloon_target_bytes(cfg: DomainConfig) -> int | None:
    """The balloon target to set right after launch, or None when the guest starts at its
    maximum (memory == maxmem)."""
    target = effective_target_memkb(cfg.b_info)
    if target >= effective_max_memkb(cfg.b_info):
        return None
    return target * 1024


def check_supported(cfg: DomainConfig) -> tuple[Report, ...]:
    """Refuse every setting xenlite cannot honour (yet), as ``config.settings`` rules; return
    the settings that are accepted but take no effect here (for the create to report).

    :raise Unsupported: naming the xl.cfg key, why, and whether it arrives later
    """
    if cfg.b_info.device_model_version is DeviceModelVersion.QEMU_XEN_TRADITIONAL:
        raise Unsupported(
            'device_model_version="qemu-xen-traditional"',
            "xenlite runs upstream QEMU only",
            'remove device_model_version (or set it to "qemu-xen")',
        )
    reported, refused = domain_reports(cfg)
    if refused:
        row = refused[0].setting
        if not refused[0].known:
            fix = "report this: xenlite's settings table (config/settings.py) needs a row for it"
        elif row.treatment is Treatment.LATER:
            fix = f"remove {row.name}= from the config for now"
        else:
            fix = f"remove {row.name}= from the config"
        cause = (
            row.explanation
            if row.treatment is Treatment.LATER
            else (f"not supported by xenlite: {row.why}")
        )
        raise Unsupported(row.name, cause, fix)
    return reported


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
    # Multi-threaded TCG only pays off with several host CPUs to run the vCPU threads on;
    # ``vcpus`` is the most the domain may have (maxvcpus), so that a vCPU vcpu-set plugs
    # gets its own thread too, to pin and to count.
    thread = "multi" if host.nr_cpus > 1 and vcpus > 1 else "single"
    return f"tcg,thread={thread}"


def _device_option(props: Mapping[str, str], bootable: Mapping[str, int] = {}) -> str:
    """``-device`` properties as QEMU's ``driver,key=value,...`` text, with the device's
    bootindex when ``bootable`` gives it one."""
    index = bootable.get(props.get("id", ""))
    if index is not None:
        props = {**props, "bootindex": str(index)}
    rest = (f"{key}={opt(value)}" for key, value in props.items() if key != "driver")
    return ",".join([props["driver"], *rest])


def _mib(kib: int) -> int:
    return max(1, -(-kib // 1024))


def _serial_chardev(paths: RunPaths) -> str:
    chardev = f"socket,id={SERIAL_CHARDEV},path={opt(paths.serial_socket)},server=on,wait=off"
    if paths.console_log is not None:
        chardev += f",logfile={opt(paths.console_log)},logappend=on"
    return chardev


__all__ = [
    "QemuHost",
    "balloon_target_bytes",
    "build_argv",
    "check_supported",
]
