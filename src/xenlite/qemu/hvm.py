"""An HVM domain's platform on QEMU: firmware, boot order, emulated disks and NICs, display,
VNC, serial port and USB (pure, but for the copy of a UEFI variable store).

xl.cfg(5) "Fully-virtualised (HVM) Guest Specific Options" says what each key is; libxl's
qemu-xen device model is the reference for how it reaches QEMU. Choices, and why:

- Machine ``pc`` (i440FX + PIIX3), the chipset of Xen's own ``xenfv`` machine: guests
  installed on Xen find the same IDE controller, and ``hdtype=ahci`` adds an ICH9 AHCI
  controller as libxl does. PV-style devices (virtio disks beyond the IDE positions, NICs
  of ``type=vif``, hot-plugged devices) sit on PCI-to-PCI bridges as a PV domain's do.
- Firmware: SeaBIOS is QEMU's own default BIOS (Debian's seabios package), as it is
  qemu-xen's; ``bios="ovmf"`` (or ``firmware="uefi"``) maps Debian's OVMF (package ovmf)
  as flash, code read-only and a per-domain copy of the variable store in the run
  directory, so an OVMF guest keeps its boot entries across its own reboots but not
  across a destroy, as under Xen, where OVMF keeps no variables at all.
- ``boot=`` (c disk, d cdrom, n network; default ``cda`` as libxl) becomes ``bootindex``
  properties in that order rather than ``-boot order=``: OVMF ignores the legacy order,
  both firmwares read boot indexes. Devices of a letter not given boot only after these.
- The serial port exists only with ``serial="pty"`` (or a list starting with it), as on
  Xen: it is the domain's console (the same logged socket ``xl console`` reads for PV).
- VNC is on by default (xl.cfg: ``vnc=1``) on 127.0.0.1, display 0, searching the next
  free display up to 99 (``vncunused=1``, libxl's ``to=99``); the password is set through
  QMP after launch, never on the command line that ``ps`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import ConfigError, HostError, Unsupported
from xenlite.base.files import write_atomic
from xenlite.config.domain.choices import BiosType, HdType, VgaKind
from xenlite.config.domain.model import BuildInfo, HvmBuildInfo
from xenlite.qemu.options import opt

MACHINE = "pc"
DEFAULT_BOOT = "cda"
# c disk, d cdrom, n network; a and b are floppies, in libxl's default order too: xl.cfg has
# no floppy drive to boot.
BOOT_LETTERS = "abcdn"
IDE_POSITIONS = 4  # hda..hdd: two channels, master and slave
AHCI_PORTS = 6
AHCI_ID = "ahci0"
DEFAULT_NIC_MODEL = "rtl8139"  # xl-network-configuration(5): model's default
OVMF_DIR = Path("/usr/share/OVMF")
OVMF_CODE = OVMF_DIR / "OVMF_CODE_4M.fd"
OVMF_VARS = OVMF_DIR / "OVMF_VARS_4M.fd"
OVMF_PACKAGE = "ovmf"
UEFI_VARS_FILE = "uefi-vars.fd"
VGA_DEVICES: Mapping[VgaKind, str | None] = {
    VgaKind.CIRRUS: "cirrus-vga",
    VgaKind.STD: "VGA",
    VgaKind.QXL: "qxl-vga",
    VgaKind.NONE: None,
}
USB_CONTROLLERS = {1: "piix3-usb-uhci", 2: "usb-ehci", 3: "qemu-xhci"}
USB_ID = "usb"
USB_DEVICES = {"tablet": "usb-tablet", "mouse": "usb-mouse", "keyboard": "usb-kbd"}
VNC_PORT_BASE = 5900
VNC_LAST_DISPLAY = 99
VNC_DEFAULT_LISTEN = "127.0.0.1"


def is_hvm(b_info: BuildInfo) -> bool:
    return isinstance(b_info.u, HvmBuildInfo)


def hvm_info(b_info: BuildInfo) -> HvmBuildInfo:
    return b_info.u if isinstance(b_info.u, HvmBuildInfo) else HvmBuildInfo()


# ---------------------------------------------------------------------------- firmware


def uses_ovmf(hvm: HvmBuildInfo) -> bool:
    return hvm.bios is BiosType.OVMF


def firmware_args(hvm: HvmBuildInfo, run_dir: Path) -> list[str]:
    """The options that load the guest's firmware; none for QEMU's own SeaBIOS.

    :raise Unsupported: for ROMBIOS (qemu-xen-traditional's BIOS)
    """
    if hvm.bios is BiosType.ROMBIOS:
        raise Unsupported(
            'bios="rombios"',
            "ROMBIOS is the BIOS of qemu-xen-traditional; xenlite runs upstream QEMU",
            'use bios="seabios" (the default) or bios="ovmf"',
        )
    if not uses_ovmf(hvm):
        return ["-bios", hvm.system_firmware] if hvm.system_firmware else []
    code = _ovmf_code(hvm)
    vars_path = run_dir / UEFI_VARS_FILE
    return [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={opt(code)}",
        "-drive", f"if=pflash,format=raw,unit=1,file={opt(vars_path)}",
    ]  # fmt: skip


def _ovmf_code(hvm: HvmBuildInfo) -> Path:
    """OVMF's code image: bios_path_override= or Debian's."""
    return Path(hvm.system_firmware) if hvm.system_firmware else OVMF_CODE


def prepare_firmware(hvm: HvmBuildInfo, run_dir: Path) -> None:
    """Check the firmware files exist and give an OVMF domain its own variable store.

    :raise HostError: when the firmware is not installed
    """
    if uses_ovmf(hvm):
        for path in (_ovmf_code(hvm), OVMF_VARS):
            if not path.is_file():
                raise HostError(
                    f"UEFI firmware {path}",
                    "is not there",
                    f"install OVMF: apt-get install {OVMF_PACKAGE}"
                    if path.is_relative_to(OVMF_DIR)
                    else "check bios_path_override=",
                )
        target = run_dir / UEFI_VARS_FILE
        if not target.exists():
            write_atomic(target, OVMF_VARS.read_bytes())
    elif hvm.system_firmware and not Path(hvm.system_firmware).is_file():
        raise HostError(
            f"BIOS image {hvm.system_firmware}",
            "is not there",
            "check bios_path_override=, or remove it to boot QEMU's SeaBIOS",
        )


# ---------------------------------------------------------------------------- boot order


def boot_order(hvm: HvmBuildInfo) -> str:
    """``boot=`` checked: the letters a-d and n, each at most once (libxl's default cda).

    :raise ConfigError: for another letter
    """
    order = hvm.boot or DEFAULT_BOOT
    for letter in order:
        if letter not in BOOT_LETTERS:
            raise ConfigError(
                f'boot="{order}": "{letter}" is not a boot device here',
                key="boot",
                fix="give c (hard disk), d (cdrom) and n (network) in the order to try",
            )
    if len(set(order)) != len(order):
        raise ConfigError(
            f'boot="{order}" names a device twice', key="boot", fix="give each letter once"
        )
    return order


def boot_indexes(
    order: str, *, disks: Sequence[str], cdroms: Sequence[str], nics: Sequence[str]
) -> dict[str, int]:
    """QEMU device id -> bootindex, the classes of ``order`` in turn, each class's devices
    in the order given (vbd order for disks, devid order for NICs)."""
    classes = {"c": disks, "d": cdroms, "n": nics}
    indexes: dict[str, int] = {}
    for letter in order:
        for device in classes.get(letter, ()):
            indexes[device] = len(indexes) + 1
    return indexes


# ---------------------------------------------------------------------------- disks


def disk_index(number: int) -> int:
    """The disk index of vbd ``number`` (xen-vbd-interface(7)): hda/xvda/sda are 0."""
    if number & (1 << 28):
        return (number >> 8) & 0xFFFFF
    major, minor = number >> 8, number & 0xFF
    if major == 202 or major == 8:
        return minor >> 4
    if major == 3:
        return minor >> 6
    if major == 22:
        return 2 + (minor >> 6)
    return -1


@dataclass(frozen=True, slots=True)
class EmulatedDrive:
    """Where an emulated disk or cdrom drive sits: its bus and unit."""

    bus: str
    unit: int | None


def emulated_position(number: int, *, cdrom: bool, hdtype: HdType) -> EmulatedDrive | None:
    """The IDE or AHCI position of disk ``number``, or None when it is beyond them (a PV
    disk only, as on Xen, where xvde and later are never emulated)."""
    index = disk_index(number)
    if index < 0:
        return None
    if hdtype is HdType.AHCI and not cdrom:
        return EmulatedDrive(f"{AHCI_ID}.{index}", None) if index < AHCI_PORTS else None
    if index >= IDE_POSITIONS:
        return None
    return EmulatedDrive(f"ide.{index // 2}", index % 2)


def emulated_device(
    node: str, serial: str, position: EmulatedDrive, *, cdrom: bool, empty: bool
) -> dict[str, str]:
    """The ``-device`` properties of an emulated IDE/AHCI disk or cdrom drive."""
    props = {"driver": "ide-cd" if cdrom else "ide-hd", "id": node, "bus": position.bus}
    if position.unit is not None:
        props["unit"] = str(position.unit)
    if not empty:
        props["drive"] = node
    if not cdrom:
        props["serial"] = serial
    return props


def ahci_controller() -> dict[str, str]:
    return {"driver": "ich9-ahci", "id": AHCI_ID}


# ---------------------------------------------------------------------------- display


@dataclass(frozen=True, slots=True)
class Vnc:
    """The domain's VNC server as xl.cfg's vnc* keys describe it."""

    listen: str
    display: int
    find_unused: bool
    password: str | None

    def option(self) -> str:
        """``-vnc``'s argument; the password itself goes through QMP."""
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        text = f"{host}:{self.display}"
        if self.find_unused:
            text += f",to={VNC_LAST_DISPLAY}"
        if self.password:
            text += ",password=on"
        return text


def vnc_of(hvm: HvmBuildInfo) -> Vnc | None:
    """The VNC server the domain has (xl.cfg: on unless vnc=0 or nographic=1).

    :raise ConfigError: for a listen address with a display that is not a number
    """
    vnc = hvm.vnc
    if vnc.enable is False or hvm.nographic:
        return None
    listen = vnc.listen or VNC_DEFAULT_LISTEN
    display = vnc.display
    host, sep, number = listen.rpartition(":")
    if sep and "]" not in number and listen.count(":") == 1:
        if not number.isdigit():
            raise ConfigError(
                f'vnclisten="{listen}": the display after ":" is not a number',
                key="vnclisten",
                fix='write vnclisten="ADDRESS" or "ADDRESS:DISPLAY"',
            )
        listen, display = host, int(number)
    if not 0 <= display <= VNC_LAST_DISPLAY:
        raise ConfigError(
            f"vncdisplay={display} is out of range",
            key="vncdisplay",
            fix=f"give a display from 0 to {VNC_LAST_DISPLAY} (port 5900 + display)",
        )
    find_unused = vnc.findunused is not False
    return Vnc(listen.strip("[]"), display, find_unused, vnc.passwd or None)


def vga_device(hvm: HvmBuildInfo) -> str | None:
    """The emulated graphics card's QEMU device (libxl's default Cirrus), None for none."""
    if hvm.nographic:
        return None
    return VGA_DEVICES[hvm.vga.kind or VgaKind.CIRRUS]


def check_display(hvm: HvmBuildInfo) -> None:
    """:raise Unsupported: for sdl=1 (a window on the host's X display)"""
    if hvm.sdl.enable:
        raise Unsupported(
            "sdl=1",
            "xenlite's QEMU runs detached from any terminal or X display, so it has no window "
            "to show the guest in",
            "set sdl=0 and watch the guest over VNC (vnc=1; xl vncviewer DOMAIN)",
        )
    if hvm.spice.enable:
        raise Unsupported("spice=1", "SPICE displays are not in xenlite yet", "use vnc=1")


# ---------------------------------------------------------------------------- serial


def has_serial_console(hvm: HvmBuildInfo) -> bool:
    """Whether the guest has its serial port, which is then the domain's console.

    :raise Unsupported: for a serial device other than pty (or more than one)
    """
    devices = list(hvm.serial_list) or ([hvm.serial] if hvm.serial else [])
    if not devices or devices == ["none"]:
        return False
    if devices[0] != "pty" or any(d not in ("pty", "none", "null") for d in devices[1:]):
        raise Unsupported(
            f"serial={devices if len(devices) > 1 else devices[0]!r}",
            'xenlite gives an HVM guest one serial port, the domain\'s console ("pty"), '
            "which xenlited logs and xl console reads",
            'write serial="pty"',
        )
    return True


# ---------------------------------------------------------------------------- platform


def machine_option(b_info: BuildInfo, hvm: HvmBuildInfo) -> str:
    options = [MACHINE]
    if b_info.acpi is False:
        options.append("acpi=off")
    if hvm.hpet is False:
        options.append("hpet=off")
    return ",".join(options)


def cpu_flags(hvm: HvmBuildInfo) -> list[str]:
    """The -cpu feature switches of pae=0 and nx=0."""
    return [flag for flag, key in (("-pae", hvm.pae), ("-nx", hvm.nx)) if key is False]


def usb_devices(hvm: HvmBuildInfo) -> list[dict[str, str]]:
    """The USB controller and devices of usb=, usbversion= and usbdevice=.

    :raise ConfigError: for a combination xl.cfg(5) forbids or a device xenlite lacks
    """
    wanted = list(hvm.usbdevice_list) or ([hvm.usbdevice] if hvm.usbdevice else [])
    version = hvm.usbversion
    if version and (hvm.usb or wanted):
        raise ConfigError(
            "usbversion= cannot be given with usb= or usbdevice= (xl.cfg(5))",
            key="usbversion",
            fix="give usbversion= alone, or usb=1 with usbdevice=",
        )
    if wanted and not hvm.usb:
        raise ConfigError(
            "usbdevice= needs the USB bus, which is off",
            key="usbdevice",
            fix="add usb=1",
        )
    if not (hvm.usb or version):
        return []
    if version not in (0, *USB_CONTROLLERS):
        raise ConfigError(
            f"usbversion={version} is not 1, 2 or 3", key="usbversion", fix="give 1, 2 or 3"
        )
    devices = [{"driver": USB_CONTROLLERS[version or 1], "id": USB_ID}]
    for name in wanted:
        if name not in USB_DEVICES:
            raise Unsupported(
                f'usbdevice="{name}"',
                "xenlite emulates the tablet, mouse and keyboard (host pass-through and the "
                "other QEMU usbdevice kinds are not in xenlite yet)",
                'use "tablet", "mouse" or "keyboard"',
            )
        devices.append({"driver": USB_DEVICES[name], "bus": f"{USB_ID}.0"})
    return devices


def platform_args(hvm: HvmBuildInfo) -> list[str]:
    """Keymap, ACPI sleep states and firmware tables."""
    argv: list[str] = []
    if hvm.keymap:
        argv += ["-k", hvm.keymap]
    if hvm.acpi_s3 is False:
        argv += ["-global", "PIIX4_PM.disable_s3=1"]
    if hvm.acpi_s4 is False:
        argv += ["-global", "PIIX4_PM.disable_s4=1"]
    if hvm.smbios_firmware:
        argv += ["-smbios", f"file={opt(hvm.smbios_firmware)}"]
    if hvm.acpi_firmware:
        argv += ["-acpitable", f"file={opt(hvm.acpi_firmware)}"]
    return argv


def check_nested(b_info: BuildInfo, *, kvm: bool) -> None:
    """:raise Unsupported: for nestedhvm=1 without KVM (TCG emulates no VMX/SVM)"""
    if b_info.nested_hvm and not kvm:
        raise Unsupported(
            "nestedhvm=1",
            "the guest would need VMX or SVM, which only KVM gives it; this host runs guests "
            "under TCG",
            "remove nestedhvm= (or run xenlite where KVM works)",
        )


__all__ = [
    "AHCI_ID",
    "DEFAULT_NIC_MODEL",
    "MACHINE",
    "OVMF_CODE",
    "OVMF_VARS",
    "UEFI_VARS_FILE",
    "VNC_PORT_BASE",
    "EmulatedDrive",
    "Vnc",
    "ahci_controller",
    "boot_indexes",
    "boot_order",
    "check_display",
    "check_nested",
    "cpu_flags",
    "disk_index",
    "emulated_device",
    "emulated_position",
    "firmware_args",
    "has_serial_console",
    "hvm_info",
    "is_hvm",
    "machine_option",
    "platform_args",
    "prepare_firmware",
    "usb_devices",
    "uses_ovmf",
    "vga_device",
    "vnc_of",
]
