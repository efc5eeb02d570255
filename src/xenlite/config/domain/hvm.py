"""The HVM-only xl.cfg keys -> HvmBuildInfo: firmware, platform features, display, USB.

Implements xl.cfg(5) "Fully-virtualised (HVM) Guest Specific Options" (firmware, bios,
pae/acpi/hpet, viridian, mmio_hole, rdm, mca_caps, ms_vm_genid) and "Emulated VGA Graphics
Device", "Spice Graphics Support", "Miscellaneous Emulated Hardware", plus the vnc/sdl
keys PV framebuffers reuse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from xenlite.config.domain.model import (
    VIRIDIAN_ORDER,
    BiosType,
    GfxPassthruKind,
    HdType,
    HvmBuildInfo,
    RdmPolicy,
    RdmReserve,
    RdmStrategy,
    SdlInfo,
    SpiceInfo,
    VendorDevice,
    VgaInfo,
    VgaKind,
    ViridianEnlightenment,
    VncInfo,
)
from xenlite.config.domain.reader import KeyReader, prefix_of, split, whole_number
from xenlite.config.xlcfg.values import Atom

# HVM_BELOW_4G_MMIO_LENGTH / HVM_BELOW_4G_MMIO_START (xen/include/public/hvm/e820.h).
_MMIO_HOLE_MIN = 256 << 20
_MMIO_HOLE_MAX = 0xF0000000

_VGA_KINDS = {
    "stdvga": VgaKind.STD,
    "cirrus": VgaKind.CIRRUS,
    "none": VgaKind.NONE,
    "qxl": VgaKind.QXL,
}


@dataclass(frozen=True, slots=True)
class HvmKeys:
    """What the HVM keys give b_info: its ``u`` plus the two top-level fields they set."""

    info: HvmBuildInfo
    apic: bool | None
    kernel: str | None


def hvm_info(r: KeyReader, kernel: str | None) -> HvmKeys:
    """The HVM keys in xl's order; ``kernel`` is b_info's, dropped when it is hvmloader."""
    h: dict[str, Any] = {}
    if kernel is not None and os.path.basename(kernel) == "hvmloader":
        r.warn.add(
            r.pos("kernel"),
            'WARNING: you seem to be using "kernel" directive to override HVM guest '
            'firmware. Ignore that. Use "firmware_override" instead if you really want a '
            "non-default firmware",
        )
        kernel = None
    _bios(r, h)
    for key in ("pae", "acpi_s3", "acpi_s4", "acpi_laptop_slate", "nx", "hpet", "vpt_align"):
        h[key] = r.defbool(key)
    apic = r.defbool("apic")
    h.update(_viridian(r))
    _mmio_hole(r, h)
    altp2mhvm = r.defbool("altp2mhvm")
    if altp2mhvm is not None:
        h["altp2m"] = altp2mhvm
        r.warn.add(
            r.pos("altp2mhvm"),
            'WARNING: Specifying "altp2mhvm" is deprecated. Please use "altp2m" instead.',
        )
    h["smbios_firmware"] = r.string("smbios_firmware")
    h["acpi_firmware"] = r.string("acpi_firmware")
    _ms_vm_genid(r)
    boundary = r.long("rdm_mem_boundary")
    if boundary is not None:
        h["rdm_mem_boundary_memkb"] = boundary * 1024
    _mca_caps(r, h)
    _firmware(r, h)
    rdm = _rdm(r)
    if rdm is not None:
        h["rdm"] = rdm
    h.update(_display(r))
    return HvmKeys(info=HvmBuildInfo(**h), apic=apic, kernel=kernel)


def _string_or_list(r: KeyReader, h: dict[str, Any], key: str, list_field: str) -> None:
    """A key xl takes as one string (into the field of its name) or as a list of strings
    (into ``list_field``)."""
    value = r.string_or_list(key)
    if isinstance(value, str):
        h[key] = value
    elif value is not None:
        h[list_field] = tuple(a.text for a in value)


def _bios(r: KeyReader, h: dict[str, Any]) -> None:
    h["firmware"] = r.string("firmware_override")
    h["system_firmware"] = r.string("bios_path_override")
    buf = r.string("bios")
    if buf is not None:
        h["bios"] = r.enum_value("bios", BiosType, buf)
    elif h["system_firmware"] is not None:
        r.warn.add(
            r.pos("bios_path_override"),
            "WARNING: bios_path_override given without specific bios name",
        )


def _firmware(r: KeyReader, h: dict[str, Any]) -> None:
    """firmware=: a BiosType name, a "uefi"/"bios" prefix, else a firmware file."""
    buf = r.string("firmware")
    if buf is None:
        return
    try:
        h["bios"] = BiosType(buf)
    except ValueError:
        if prefix_of(buf, "uefi"):
            h["bios"] = BiosType.OVMF
        elif not prefix_of(buf, "bios"):
            h["firmware"] = buf


def _mmio_hole(r: KeyReader, h: dict[str, Any]) -> None:
    hole = r.long("mmio_hole")
    if hole is None:
        return
    if not _MMIO_HOLE_MIN <= hole * 1024 * 1024 <= _MMIO_HOLE_MAX:
        raise r.fail(
            "mmio_hole",
            f'ERROR: invalid value {hole} for "mmio_hole"',
            "give a size in MiB between 256 and 3840",
        )
    h["mmio_hole_memkb"] = hole * 1024


def _ms_vm_genid(r: KeyReader) -> None:
    buf = r.string("ms_vm_genid")
    if buf is None or buf == "none":
        return
    if buf == "generate":
        raise r.fail(
            "ms_vm_genid",
            "VM generation IDs are not supported by xenlite",
            'remove ms_vm_genid= or set it to "none"',
        )
    raise r.fail(
        "ms_vm_genid",
        'ERROR: "ms_vm_genid" option must be "generate" or "none"',
        'write ms_vm_genid = "none"',
    )


def _mca_caps(r: KeyReader, h: dict[str, Any]) -> None:
    caps = r.string_items("mca_caps") if r.setting("mca_caps") is not None else None
    for atom in caps or []:
        if atom.text != "lmce":
            raise r.fail(
                "mca_caps",
                f"ERROR: unrecognized MCA capability '{atom.text}'.",
                'the only capability is "lmce"',
                atom.pos,
            )
        h["mca_caps"] = 1  # XEN_HVM_MCA_CAP_LMCE


def _viridian(r: KeyReader) -> dict[str, Any]:
    s = r.setting("viridian")
    if s is None:
        return {}
    if isinstance(s.value, Atom):
        return {"viridian": r.defbool("viridian")}
    enable: set[int] = set()
    disable: set[int] = set()
    out: dict[str, Any] = {}
    for atom in r.string_items("viridian") or []:
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
                raise r.fail(
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


def _rdm(r: KeyReader) -> RdmReserve | None:
    """``rdm="strategy=host[,policy=strict|relaxed]"``; the policy defaults to strict.

    Beyond xl 4.17: its parser drops the whole setting as soon as ``policy=`` appears
    (and only reports bad strategies), so the documented form did nothing; xenlite
    honours it and refuses what it cannot read.
    """
    buf = r.string("rdm")
    if buf is None:
        return None
    strategy = RdmStrategy.IGNORE
    policy = RdmPolicy.STRICT
    for token in split(buf, ","):
        key, sep, value = token.strip().partition("=")
        if key == "strategy" and sep and value == "host":
            strategy = RdmStrategy.HOST
        elif key == "policy" and sep and value in ("strict", "relaxed"):
            policy = RdmPolicy(value)
        else:
            raise r.fail(
                "rdm",
                f"Unknown RDM option '{token.strip()}'",
                'write rdm = "strategy=host,policy=strict" (or policy=relaxed)',
            )
    return RdmReserve(strategy=strategy, policy=policy)


# ------------------------------------------------------------------ display and devices


def _display(r: KeyReader) -> dict[str, Any]:
    """The emulated display, spice, serial, USB and platform-device keys."""
    h: dict[str, Any] = {"vnc": vnc_info(r), "sdl": sdl_info(r)}
    vga = _vga(r)
    if vga is not None:
        h["vga"] = vga
    buf = r.string("hdtype")
    if buf is not None:
        h["hdtype"] = r.enum_value("hdtype", HdType, buf)
    h["keymap"] = r.string("keymap")
    h["spice"] = _spice(r)
    h["nographic"] = r.defbool("nographic")
    _gfx_passthru(r, h)
    _string_or_list(r, h, "serial", "serial_list")
    h["boot"] = r.string("boot")
    h["usb"] = r.defbool("usb")
    usbversion = r.long("usbversion")
    if usbversion is not None:
        h["usbversion"] = usbversion
    _string_or_list(r, h, "usbdevice", "usbdevice_list")
    h["vkb_device"] = r.defbool("vkb_device")
    h["soundhw"] = r.string("soundhw")
    h["xen_platform_pci"] = r.defbool("xen_platform_pci")
    vnc = h["vnc"]
    if vnc.listen and vnc.display and ":" in vnc.listen:
        raise r.fail(
            "vnclisten",
            "ERROR: Display specified both in vnclisten and vncdisplay!",
            "give the display either as vnclisten=ADDR:DISPLAY or as vncdisplay=",
        )
    buf = r.string("vendor_device")
    if buf is not None:
        try:
            h["vendor_device"] = VendorDevice(buf)
        except ValueError:
            raise r.fail(
                "vendor_device",
                f"xl: unknown vendor_device '{buf}'",
                'use "xenserver" or "none"',
            ) from None
    return h


def _vga(r: KeyReader) -> VgaInfo | None:
    buf = r.string("vga")
    if buf is not None:
        if buf not in _VGA_KINDS:
            raise r.fail(
                "vga",
                f'Unknown vga "{buf}" specified',
                'use "stdvga", "cirrus", "none" or "qxl"',
            )
        return VgaInfo(kind=_VGA_KINDS[buf])
    std = r.long("stdvga")
    if std is not None:
        return VgaInfo(kind=VgaKind.STD if std else VgaKind.CIRRUS)
    return None


def _spice(r: KeyReader) -> SpiceInfo:
    spice: dict[str, Any] = {"enable": r.defbool("spice")}
    for key, fname in (("spiceport", "port"), ("spicetls_port", "tls_port")):
        value = r.long(key)
        if value is not None:
            spice[fname] = value
    spice["host"] = r.string("spicehost")
    spice["disable_ticketing"] = r.defbool("spicedisable_ticketing")
    spice["passwd"] = r.string("spicepasswd")
    spice["agent_mouse"] = r.defbool("spiceagent_mouse")
    spice["vdagent"] = r.defbool("spicevdagent")
    spice["clipboard_sharing"] = r.defbool("spice_clipboard_sharing")
    redir = r.long("spiceusbredirection")
    if redir is not None:
        spice["usbredirection"] = redir
    spice["image_compression"] = r.string("spice_image_compression")
    spice["streaming_video"] = r.string("spice_streaming_video")
    return SpiceInfo(**spice)


def _gfx_passthru(r: KeyReader, h: dict[str, Any]) -> None:
    """gfx_passthru= as a number (on/off) or a kind name (which also turns it on)."""
    if r.setting("gfx_passthru") is None:
        return
    text = r.string("gfx_passthru") or ""
    number = whole_number(text)
    if number is not None:
        h["gfx_passthru"] = number != 0
    else:
        h["gfx_passthru_kind"] = r.enum_value("gfx_passthru", GfxPassthruKind, text)
        h["gfx_passthru"] = True


def vnc_info(r: KeyReader) -> VncInfo:
    """The top-level vnc* keys (also the PV framebuffer xl adds for ``vnc=1``)."""
    display = r.long("vncdisplay")
    return VncInfo(
        enable=r.defbool("vnc"),
        listen=r.string("vnclisten"),
        passwd=r.string("vncpasswd"),
        display=display if display is not None else 0,
        findunused=r.defbool("vncunused"),
    )


def sdl_info(r: KeyReader) -> SdlInfo:
    """The top-level sdl keys (also the PV framebuffer xl adds for ``vnc=1``)."""
    return SdlInfo(
        enable=r.defbool("sdl"),
        opengl=r.defbool("opengl"),
        display=r.string("display"),
        xauthority=r.string("xauthority"),
    )
