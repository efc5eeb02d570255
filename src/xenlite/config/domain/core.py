"""The domain-wide xl.cfg keys -> CreateInfo and BuildInfo, in xl_parse.c's order.

Implements xl.cfg(5) "Selecting Guest Type", "General Options" (name, uuid, pool,
seclabel, memory, vcpus, cpus, scheduling, on_* events), "Direct Kernel Boot",
"Non-emulated, non-guest-type-specific features" and the device-model, resource
(ioports, irqs, iomem) and architecture keys; the HVM-only keys are ``hvm``'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any, TypeVar

from xenlite.base.errors import ConfigError
from xenlite.config.domain import cpuid
from xenlite.config.domain.hvm import hvm_info
from xenlite.config.domain.model import (
    ALTP2M_ORDER,
    TIMER_MODE_ORDER,
    TSC_MODE_ORDER,
    Action,
    AltP2mMode,
    ArchArm,
    ArchX86,
    BuildInfo,
    CpuidLeaf,
    CreateInfo,
    DeviceModelVersion,
    DomainConfig,
    DomainType,
    GicVersion,
    IomemRange,
    IoportRange,
    Passthrough,
    PvBuildInfo,
    PvhBuildInfo,
    SchedParams,
    TeeType,
    TimerMode,
    TscMode,
    VuartType,
)
from xenlite.config.domain.reader import (
    INT_MAX,
    UINT32_MAX,
    KeyReader,
    prefix_of,
    split,
    strtoul,
    valid_uuid,
    whole_number,
)
from xenlite.config.hostconf.xlconf import DEFAULT_BLKDEV_START
from xenlite.config.specs.cpus import parse_cpu_list
from xenlite.config.xlcfg.values import Atom, Pos

_E = TypeVar("_E", bound=StrEnum)

# XENFIRMWAREDIR of Debian's Xen 4.17 build: where firmware="pvgrub64" points.
XENFIRMWAREDIR = "/usr/lib/xen-4.17/boot"

# The on_* keys and xl's default action for each, in the order xl reads them.
_ACTION_DEFAULTS = (
    ("on_poweroff", "destroy"),
    ("on_reboot", "restart"),
    ("on_watchdog", "destroy"),
    ("on_crash", "destroy"),
    ("on_soft_reset", "soft-reset"),
)

# ------------------------------------------------------------------ c_info


def seclabels(r: KeyReader) -> tuple[str | None, str | None]:
    """(ssid_label, exec_ssid_label) from init_seclabel= and seclabel=."""
    ssid_label = None
    exec_label = None
    if r.string("init_seclabel") is not None:
        ssid_label = r.string("init_seclabel")
    seclabel = r.string("seclabel")
    if seclabel is not None:
        if ssid_label is not None:
            exec_label = seclabel
        else:
            ssid_label = seclabel
    return ssid_label, exec_label


def create_info(r: KeyReader, ssid_label: str | None) -> CreateInfo:
    """libxl_domain_create_info: type, name, uuid, pool and the c_info flags."""
    dtype = _domain_type(r)
    name = r.string("name")
    if name is None:
        raise r.missing(
            "name", "Domain name must be specified.", 'add a line such as name = "guest1"'
        )
    uuid = _uuid(r)
    passthrough = Passthrough.DEFAULT
    buf = r.string("passthrough")
    if buf is not None:
        passthrough = r.enum_value("passthrough", Passthrough, buf)

    return CreateInfo(
        type=dtype,
        hap=r.defbool("hap"),
        oos=r.defbool("oos"),
        ssid_label=ssid_label,
        name=name,
        uuid=uuid,
        pool_name=r.string("pool"),
        run_hotplug_scripts=r.xlconf.run_hotplug_scripts,
        driver_domain=r.defbool("driver_domain"),
        passthrough=passthrough,
        xend_suspend_evtchn_compat=r.defbool("xend_suspend_evtchn_compat"),
    )


def _domain_type(r: KeyReader) -> DomainType:
    dtype: DomainType | None = None
    buf = r.string("type")
    if buf is not None:
        for candidate in (DomainType.HVM, DomainType.PV, DomainType.PVH):
            if prefix_of(buf, candidate.value):
                dtype = candidate
                break
        else:
            raise r.fail("type", f"Invalid domain type {buf}.", 'use type = "pv", "pvh" or "hvm"')
    buf = r.string("builder")
    if buf is not None:
        if prefix_of(buf, "hvm"):
            builder_type = DomainType.HVM
        elif prefix_of(buf, "generic"):
            builder_type = DomainType.PV
        else:
            raise r.fail(
                "builder",
                f"Invalid domain type {buf}.",
                'use type = "pv", "pvh" or "hvm" (builder= is deprecated)',
            )
        if dtype is not None and dtype != builder_type:
            raise r.fail(
                "builder",
                'Contradicting "builder" and "type" options specified.',
                "remove builder= and keep type=",
            )
        dtype = builder_type
    return DomainType.PV if dtype is None else dtype  # PV: x86's default


def _uuid(r: KeyReader) -> str | None:
    buf = r.string("uuid")
    if buf is None:
        return None
    uuid = valid_uuid(buf)
    if uuid is None:
        raise r.fail(
            "uuid",
            f"Failed to parse UUID: {buf}",
            'write it as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in hex (see uuidgen)',
        )
    if uuid == "00000000-0000-0000-0000-000000000000":
        # libxl omits the nil UUID (libxl_uuid_is_nil): it means "generate one".
        return None
    return uuid


# ------------------------------------------------------------------ b_info


def build_info(r: KeyReader, c_info: CreateInfo, exec_ssid_label: str | None) -> BuildInfo:
    """libxl_domain_build_info, each key read where xl reads it (so errors come in its order)."""
    dtype = c_info.type
    b: dict[str, Any] = {}
    if exec_ssid_label is not None:
        b["exec_ssid_label"] = exec_ssid_label
    if r.xlconf.blkdev_start != DEFAULT_BLKDEV_START:
        b["blkdev_start"] = r.xlconf.blkdev_start

    b["sched_params"] = _sched_params(r)
    _memory(r, b)
    max_vcpus = _vcpus(r, b)
    buf = r.string("vuart")
    if buf is not None:
        b["arch_arm"] = ArchArm(vuart=r.enum_value("vuart", VuartType, buf))
    _affinity(r, b, max_vcpus)
    _limits_and_clock(r, b)
    _boot(r, b, dtype)

    if dtype == DomainType.HVM:
        hvm = hvm_info(r, b["kernel"])
        b["kernel"], b["apic"], b["u"] = hvm.kernel, hvm.apic, hvm.info
    else:
        b["u"] = _pv_info(r, dtype, b)

    b["altp2m"] = _altp2m(r)
    vmtrace = r.long("vmtrace_buf_kb")
    if vmtrace:
        b["vmtrace_buf_kb"] = vmtrace
    b["ioports"] = _ioports(r)
    b["irqs"] = _irqs(r)
    b["iomem"] = _iomem(r)
    b.update(_device_model(r))
    b["dm_restrict"] = r.defbool("dm_restrict")
    _arch(r, b)
    return BuildInfo(**b)


def _sched_params(r: KeyReader) -> SchedParams:
    sched: dict[str, Any] = {}
    for key, fname in (
        ("cpu_weight", "weight"),
        ("cap", "cap"),
        ("period", "period"),
        ("slice", "slice"),
        ("latency", "latency"),
        ("extratime", "extratime"),
    ):
        value = r.long(key)
        if value is not None:
            sched[fname] = value
    return SchedParams(**sched)


def _memory(r: KeyReader, b: dict[str, Any]) -> None:
    memory = r.long("memory")
    maxmem = r.long("maxmem")
    if memory is not None:
        b["target_memkb"] = memory * 1024
    if maxmem is not None:
        b["max_memkb"] = maxmem * 1024
    elif memory is not None:
        b["max_memkb"] = memory * 1024
    if memory is not None and maxmem is not None and maxmem < memory:
        raise r.fail(
            "maxmem",
            f"maxmem ({maxmem} MiB) is smaller than memory ({memory} MiB); libxl "
            "refuses to create such a domain",
            "make maxmem at least as large as memory, or remove it",
        )


def _vcpus(r: KeyReader, b: dict[str, Any]) -> int:
    """vcpus= and maxvcpus= into ``b``; returns max_vcpus, which the affinities need."""
    vcpus = r.long("vcpus", lo=0, hi=INT_MAX)
    if vcpus is not None:
        b["avail_vcpus"] = frozenset(range(vcpus))
    max_vcpus = r.long("maxvcpus", lo=0, hi=INT_MAX) or 0
    if r.setting("vnuma") is not None:
        raise r.fail(
            "vnuma",
            "virtual NUMA topologies are not supported by xenlite",
            "remove vnuma= (the guest then sees one NUMA node)",
        )
    if max_vcpus == 0:
        max_vcpus = vcpus or 0
    if vcpus is not None and max_vcpus < vcpus:
        raise r.fail("maxvcpus", "xl: maxvcpus < vcpus", "make maxvcpus >= vcpus")
    b["max_vcpus"] = max_vcpus
    return max_vcpus


def _affinity(r: KeyReader, b: dict[str, Any], max_vcpus: int) -> None:
    numa_placement: bool | None = None
    for key, fname in (("cpus", "vcpu_hard_affinity"), ("cpus_soft", "vcpu_soft_affinity")):
        affinity = r.string_or_list(key)
        if affinity is None:
            continue
        if max_vcpus == 0:
            # xl 4.17 pins only the vCPUs vcpus= gives it, and libxl makes the one vCPU
            # later: the affinity is lost without a word from xl (fixed in a later Xen).
            r.warn.add(
                r.pos(key),
                f"{key}: xl gives the domain's vCPU no affinity from it: xl sets {key}= only "
                "for the vCPUs that vcpus= gives, and this config gives none (add vcpus = 1)",
            )
        for text, where in _cpu_list_texts(r, key, affinity):
            _warn_beyond_host(r, key, text, where)
        if isinstance(affinity, str):
            cpus = parse_cpu_list(
                affinity,
                r.host.nr_cpus,
                where=r.pos(key),
                nr_nodes=r.host.nr_nodes,
                key=key,
            )
            b[fname] = tuple(cpus for _ in range(max_vcpus))
            if key == "cpus_soft":
                numa_placement = False
        else:
            b[fname] = tuple(
                parse_cpu_list(
                    atom.text,
                    r.host.nr_cpus,
                    where=atom.pos,
                    nr_nodes=r.host.nr_nodes,
                    key=key,
                )
                for atom in affinity[:max_vcpus]
            )
            numa_placement = False
    b["numa_placement"] = numa_placement


def _cpu_list_texts(
    r: KeyReader, key: str, affinity: str | Sequence[Atom]
) -> list[tuple[str, Pos]]:
    if isinstance(affinity, str):
        return [(affinity, r.pos(key))]
    return [(atom.text, atom.pos) for atom in affinity]


def _warn_beyond_host(r: KeyReader, key: str, text: str, where: Pos) -> None:
    """Beyond xl: a CPU the host does not have is dropped from the affinity, as xl drops it,
    but not without a word."""
    try:
        parse_cpu_list(text, r.host.nr_cpus, nr_nodes=r.host.nr_nodes, key=key, strict=True)
    except ConfigError as exc:
        if "does not exist" in exc.cause:
            r.warn.add(where, f"{key}: {exc.cause.split(': ', 1)[-1]}; xl drops it")


def _limits_and_clock(r: KeyReader, b: dict[str, Any]) -> None:
    """Grant/event-channel limits, xl.conf's claim and bootloader policy, shadow, clocks."""
    for key, default in (
        ("max_grant_frames", r.xlconf.max_grant_frames),
        ("max_maptrack_frames", r.xlconf.max_maptrack_frames),
        ("max_grant_version", r.xlconf.max_grant_version),
    ):
        value = r.long(key, lo=0, hi=INT_MAX)
        b[key] = default if value is None else value

    b["claim_mode"] = r.xlconf.claim_mode
    if r.xlconf.bootloader_restrict:
        b["bootloader_restrict"] = True

    shadow = r.long("shadow_memory")
    if shadow is not None:
        b["shadow_memkb"] = shadow * 1024
    b["disable_migrate"] = r.defbool("nomigrate")
    b["tsc_mode"] = _tsc_mode(r)
    rtc = r.long("rtc_timeoffset")
    if rtc is not None:
        b["rtc_timeoffset"] = rtc & UINT32_MAX
    if r.setting("vncviewer") is not None and r.long("vncviewer") is not None:
        r.warn.add(
            r.pos("vncviewer"),
            'WARNING: ignoring "vncviewer" option. Use "-V" option of "xl create" to '
            "automatically spawn vncviewer.",
        )
    b["localtime"] = r.defbool("localtime")
    videoram = r.long("videoram")
    if videoram is not None:
        b["video_memkb"] = videoram * 1024
    evtchn = r.long("max_event_channels")
    if evtchn is not None:
        b["event_channels"] = evtchn


def _boot(r: KeyReader, b: dict[str, Any], dtype: DomainType | None) -> None:
    b["kernel"] = r.string("kernel")
    b["ramdisk"] = r.string("ramdisk")
    b["device_tree"] = r.string("device_tree")
    b["cmdline"] = _cmdline(r)
    b["acpi"] = r.defbool("acpi")
    b["bootloader"] = r.string("bootloader")
    b["bootloader_args"] = _bootloader_args(r)
    b["timer_mode"] = _timer_mode(r, dtype)
    b["nested_hvm"] = r.defbool("nestedhvm")


def _arch(r: KeyReader, b: dict[str, Any]) -> None:
    """gic_version, tee, msr_relaxed and cpuid=."""
    buf = r.string("gic_version")
    if buf is not None:
        arm = b.get("arch_arm", ArchArm())
        gic = r.enum_value("gic_version", GicVersion, buf)
        b["arch_arm"] = replace(arm, gic_version=gic)
    buf = r.string("tee")
    if buf is not None:
        b["tee"] = r.enum_value("tee", TeeType, buf)
    msr_relaxed = r.defbool("msr_relaxed")
    if msr_relaxed is not None:
        b["arch_x86"] = ArchX86(msr_relaxed=msr_relaxed)
        r.warn.add(
            r.pos("msr_relaxed"),
            "WARNING: msr_relaxed will be removed in future versions.",
        )
    b["cpuid"] = _cpuid(r)


def _cpuid(r: KeyReader) -> tuple[CpuidLeaf, ...]:
    """cpuid= in the libxl form (one string) or the xend form (a list), as libxl reads it."""
    value = r.string_or_list("cpuid")
    if value is None:
        return ()
    try:
        if isinstance(value, str):
            return cpuid.parse_libxl(value)
        return cpuid.parse_xend([atom.text for atom in value])
    except cpuid.CpuidError as exc:
        raise r.fail(
            "cpuid",
            str(exc),
            'write cpuid="host,FEATURE=0|1,..." or cpuid=["LEAF:REG=32 bits of 0/1/x", ...] '
            "(xl.cfg(5))",
        ) from None


def _deprecated_number(
    r: KeyReader, key: str, text: str, order: tuple[_E, ...], fix: str
) -> _E | None:
    """xl's old integer form of a named key: warned about, then the name at that position;
    None when ``text`` is not a number (it is then a name)."""
    number = whole_number(text)
    if number is None:
        return None
    name = order[number].value if 0 <= number < len(order) else None
    hint = f' e.g. {key}="{name}"' if name else ""
    r.warn.add(
        r.pos(key),
        f'WARNING: specifying "{key}" as an integer is deprecated. Please use the '
        f"named parameter variant.{hint}",
    )
    if name is None:
        raise r.fail(key, f'ERROR: invalid value {number} for "{key}"', fix)
    return order[number]


def _tsc_mode(r: KeyReader) -> TscMode:
    if r.setting("tsc_mode") is None:
        return TscMode.DEFAULT
    text = r.string("tsc_mode") or ""
    fix = "use tsc_mode = " + ", ".join(f'"{m.value}"' for m in TscMode)
    mode = _deprecated_number(r, "tsc_mode", text, TSC_MODE_ORDER, fix)
    return r.enum_value("tsc_mode", TscMode, text) if mode is None else mode


def _timer_mode(r: KeyReader, dtype: DomainType | None) -> TimerMode | None:
    if r.setting("timer_mode") is None:
        return None
    if dtype == DomainType.PV:
        raise r.fail(
            "timer_mode",
            'ERROR: "timer_mode" option is not supported for PV guests.',
            'remove timer_mode= or use type = "hvm"',
        )
    text = r.string("timer_mode") or ""
    fix = "use one of " + ", ".join(f'"{m.value}"' for m in TimerMode)
    mode = _deprecated_number(r, "timer_mode", text, TIMER_MODE_ORDER, fix)
    return r.enum_value("timer_mode", TimerMode, text) if mode is None else mode


def _altp2m(r: KeyReader) -> AltP2mMode:
    text = r.string("altp2m")
    if text is None:
        return AltP2mMode.DISABLED
    number = whole_number(text)
    if number is not None:
        if not 0 <= number < len(ALTP2M_ORDER):
            raise r.fail(
                "altp2m",
                f'ERROR: invalid value {number} for "altp2m"',
                "use one of " + ", ".join(f'"{m.value}"' for m in AltP2mMode),
            )
        return ALTP2M_ORDER[number]
    return r.enum_value("altp2m", AltP2mMode, text)


def _cmdline(r: KeyReader) -> str | None:
    buf = r.string("cmdline")
    root = r.string("root")
    extra = r.string("extra")
    if buf is not None:
        if root is not None or extra is not None:
            r.warn.add(r.pos("cmdline"), "Warning: ignoring root= and extra= in favour of cmdline=")
        return buf
    if root is not None and extra is not None:
        return f"root={root} {extra}"
    if root is not None:
        return f"root={root}"
    return extra


def _bootloader_args(r: KeyReader) -> tuple[str, ...]:
    value = r.string_or_list("bootloader_args")
    if value is None:
        return ()
    if isinstance(value, str):
        r.warn.add(
            r.pos("bootloader_args"),
            'WARNING: Specifying "bootloader_args" as a string is deprecated. Please use a '
            "list of arguments.",
        )
        return tuple(split(value, " \t\n"))
    return tuple(a.text for a in value)


def _pv_info(
    r: KeyReader, dtype: DomainType | None, b: dict[str, Any]
) -> PvBuildInfo | PvhBuildInfo:
    buf = r.string("firmware")
    if buf is not None:
        if b.get("kernel") is not None:
            raise r.fail(
                "firmware",
                "ERROR: both kernel and firmware specified",
                "remove either kernel= or firmware=",
            )
        if not (prefix_of(buf, "pvgrub32") or prefix_of(buf, "pvgrub64")):
            raise r.fail(
                "firmware",
                "ERROR: only pvgrub{32|64} supported as firmware options",
                'use firmware = "pvgrub64" or "pvgrub32", or kernel=',
            )
        b["kernel"] = f"{XENFIRMWAREDIR}/{buf}.bin"
    if b.get("bootloader") is None and b.get("kernel") is None:
        raise r.missing(
            "kernel",
            "Neither kernel nor bootloader specified",
            'add kernel = "/path/to/vmlinuz" or bootloader = "pygrub"',
        )
    if dtype == DomainType.PVH:
        return PvhBuildInfo(
            pvshim=r.defbool("pvshim"),
            pvshim_path=r.string("pvshim_path"),
            pvshim_cmdline=r.string("pvshim_cmdline"),
            pvshim_extra=r.string("pvshim_extra"),
        )
    return PvBuildInfo(e820_host=r.defbool("e820_host"))


def _device_model(r: KeyReader) -> dict[str, Any]:
    b: dict[str, Any] = {}
    buf = r.string("device_model")
    if buf is not None:
        pos = r.pos("device_model")
        r.warn.add(pos, "WARNING: ignoring device_model directive.")
        r.warn.add(
            pos,
            'WARNING: Use "device_model_override" instead if you really want a '
            "non-default device_model",
        )
    b["device_model"] = r.string("device_model_override")
    buf = r.string("device_model_version")
    if buf is not None:
        versions = {
            "qemu-xen-traditional": DeviceModelVersion.QEMU_XEN_TRADITIONAL,
            "qemu-xen": DeviceModelVersion.QEMU_XEN,
        }
        if buf not in versions:
            raise r.fail(
                "device_model_version",
                f'Unknown device_model_version "{buf}" specified',
                'use device_model_version = "qemu-xen"',
            )
        b["device_model_version"] = versions[buf]
    elif b["device_model"] is not None:
        r.warn.add(
            r.pos("device_model_override"),
            "WARNING: device model override given without specific DM version",
        )
    b["device_model_stubdomain"] = r.defbool("device_model_stubdomain_override")
    b["device_model_ssid_label"] = r.string("device_model_stubdomain_seclabel")
    b["device_model_user"] = r.string("device_model_user")
    b["stubdomain_kernel"] = r.string("stubdomain_kernel")
    b["stubdomain_ramdisk"] = r.string("stubdomain_ramdisk")
    mem = r.long("stubdomain_memory")
    if mem is not None:
        b["stubdomain_memkb"] = mem * 1024
    for key, fname in (
        ("device_model_args", "extra"),
        ("device_model_args_pv", "extra_pv"),
        ("device_model_args_hvm", "extra_hvm"),
    ):
        items = r.string_items(key) if r.setting(key) is not None else None
        if items is not None:
            b[fname] = tuple(a.text for a in items)
    return b


def _ioports(r: KeyReader) -> tuple[IoportRange, ...]:
    out = []
    for atom in r.list_or_empty("ioports"):
        first, rest = strtoul(atom.text, 16)
        end = first
        bad = rest == atom.text
        if not bad and rest.startswith("-"):
            end, tail = strtoul(rest[1:], 16)
            bad = tail == rest[1:] or tail != "" or first > end
        elif rest:
            bad = True
        if bad or end >= UINT32_MAX:
            raise r.fail(
                "ioports",
                f"xl: Invalid argument parsing ioport: {atom.text}",
                "write ioports as hex ranges such as '2f8-2ff'",
                atom.pos,
            )
        out.append(IoportRange(first=first, number=end - first + 1))
    return tuple(out)


def _irqs(r: KeyReader) -> tuple[int, ...]:
    out = []
    for atom in r.list_or_empty("irqs"):
        value, rest = strtoul(atom.text, 10)
        if rest == atom.text or rest or value >= UINT32_MAX:
            raise r.fail(
                "irqs",
                f"xl: Invalid argument parsing irq: {atom.text}",
                "write each IRQ as a decimal number",
                atom.pos,
            )
        out.append(value)
    return tuple(out)


def _iomem(r: KeyReader) -> tuple[IomemRange, ...]:
    out = []
    for atom in r.list_or_empty("iomem"):
        m = re.fullmatch(
            r"\s*(?:0[xX])?([0-9a-fA-F]+),\s*(?:0[xX])?([0-9a-fA-F]+)"
            r"(?:@\s*(?:0[xX])?([0-9a-fA-F]+))?",
            atom.text,
        )
        if m is None:
            raise r.fail(
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


# ------------------------------------------------------------------ on_*


def actions(r: KeyReader, config: DomainConfig) -> DomainConfig:
    """``config`` with the five on_* keys' actions, xl's defaults where a key is unset."""
    poweroff, reboot, watchdog, crash, soft_reset = (
        _action(r, key, default) for key, default in _ACTION_DEFAULTS
    )
    return replace(
        config,
        on_poweroff=poweroff,
        on_reboot=reboot,
        on_watchdog=watchdog,
        on_crash=crash,
        on_soft_reset=soft_reset,
    )


def _action(r: KeyReader, key: str, default: str) -> Action:
    buf = r.string(key)
    action = Action.from_xl_name(default if buf is None else buf)
    if action is None:
        names = ", ".join(a.xl_name for a in Action)
        raise r.fail(key, f'Unknown {key} action "{buf}" specified', f"use one of: {names}")
    return action
