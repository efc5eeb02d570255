"""The guest's root tree, staged in a directory that mke2fs copies into the filesystem.

``--dist busybox``: the host's static busybox with every applet, busybox init with an
inittab and rc scripts (package data beside this module), /etc/network/interfaces for busybox
ifup, hostname, hosts, fstab; the guest kit's kernel and initramfs in /boot with a GRUB 2
menu. The kit's initramfs loads the virtio modules and switch_roots to this disk's
/sbin/init (root=UUID=...), as Debian's initramfs does.

The files every dist gets from the request (network, hostname, fstab, GRUB menu) are written
by the functions here that the Debian path (:mod:`xenlite.provision.debian`) shares.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from xenlite.base.errors import ProvisionError
from xenlite.guestkit.build import helper_script
from xenlite.provision.request import DhcpNetwork, ImageRequest, StaticNetwork

BUSYBOX = Path("/bin/busybox")
GUEST_INTERFACE = "eth0"
# The guest's console is its first serial port, as on every xenlite PV guest.
CONSOLE = "ttyS0"


@dataclass(frozen=True, slots=True)
class BootFiles:
    """Where the system's kernel and initramfs are, inside the root filesystem."""

    release: str
    kernel: str
    initrd: str
    cmdline: str


def kernel_cmdline(root_uuid: uuid.UUID) -> str:
    return f"root=UUID={root_uuid} ro console={CONSOLE}"


def _resource(name: str) -> bytes:
    return resources.files("xenlite.provision").joinpath("busybox", name).read_bytes()


def _write(root: Path, path: str, content: str | bytes, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    target.chmod(mode)


def interfaces(request: ImageRequest) -> str:
    """/etc/network/interfaces in ifupdown's format (busybox ifup and Debian's read it)."""
    lines = ["# Written by xenlite create-image.", "auto lo", "iface lo inet loopback", ""]
    lines.append(f"auto {GUEST_INTERFACE}")
    network = request.network
    if isinstance(network, DhcpNetwork):
        lines += [f"iface {GUEST_INTERFACE} inet dhcp", f"\thostname {request.hostname}"]
    else:
        lines += [
            f"iface {GUEST_INTERFACE} inet static",
            f"\taddress {network.addresses[0]}",
            f"\tnetmask {network.netmask}",
        ]
        if network.gateway:
            lines.append(f"\tgateway {network.gateway}")
        for extra in network.addresses[1:]:
            lines.append(f"\tup ip addr add {extra}/{network.prefix} dev {GUEST_INTERFACE}")
    return "\n".join(lines) + "\n"


def hosts(request: ImageRequest) -> str:
    name = request.hostname
    own = "127.0.1.1"
    if isinstance(request.network, StaticNetwork):
        own = request.network.addresses[0]
    return f"127.0.0.1\tlocalhost\n{own}\t{name}\n"


def fstab(
    request: ImageRequest,
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
    *,
    api_mounts: bool = True,
) -> str:
    """/etc/fstab by UUID; ``api_mounts``: also /dev/pts, /dev/shm, /tmp and /run, which
    busybox's ``mount -a`` mounts and systemd mounts by itself."""
    lines = [
        "# <file system> <mount point> <type> <options> <dump> <pass>",
        f"UUID={root_uuid} / {request.filesystem.value} errors=remount-ro 0 1",
    ]
    if swap_uuid is not None:
        lines.append(f"UUID={swap_uuid} none swap sw 0 0")
    if api_mounts:
        lines += [
            "devpts /dev/pts devpts gid=5,mode=0620,ptmxmode=0666 0 0",
            "tmpfs /dev/shm tmpfs mode=1777,nosuid,nodev 0 0",
            "tmpfs /tmp tmpfs mode=1777,nosuid,nodev 0 0",
            "tmpfs /run tmpfs mode=0755,nosuid,nodev 0 0",
        ]
    return "\n".join(lines) + "\n"


def grub_menu(request: ImageRequest, boot: BootFiles, root_uuid: uuid.UUID, title: str) -> str:
    """/boot/grub/grub.cfg: the one entry pygrub (or a GRUB) boots."""
    return (
        f"# GRUB 2 menu of {request.hostname}, written by xenlite create-image.\n"
        "set default=0\n"
        "set timeout=5\n"
        "\n"
        f"menuentry '{title}, with Linux {boot.release}' --class gnu-linux {{\n"
        "\tinsmod ext2\n"  # GRUB's ext2 module reads ext2, ext3 and ext4
        f"\tsearch --no-floppy --fs-uuid --set=root {root_uuid}\n"
        f"\tlinux {boot.kernel} {boot.cmdline}\n"
        f"\tinitrd {boot.initrd}\n"
        "}\n"
    )


def write_identity(
    root: Path,
    request: ImageRequest,
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
    *,
    api_mounts: bool = True,
) -> None:
    """The files every dist takes from the request: names, network, mounts."""
    _write(root, "/etc/hostname", f"{request.hostname}\n")
    _write(root, "/etc/hosts", hosts(request))
    _write(root, "/etc/network/interfaces", interfaces(request))
    _write(root, "/etc/fstab", fstab(request, root_uuid, swap_uuid, api_mounts=api_mounts))
    if isinstance(request.network, StaticNetwork) and request.network.nameservers:
        servers = "".join(f"nameserver {n}\n" for n in request.network.nameservers)
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink():  # a link into /run (systemd-resolved's) is the system's
            resolv.unlink()
        _write(root, "/etc/resolv.conf", servers)


def stage_busybox(
    root: Path,
    request: ImageRequest,
    *,
    kernel: Path,
    initrd: Path,
    release: str,
    applets: list[str],
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
) -> BootFiles:
    """Lay out a busybox system under ``root`` (an empty directory).

    :raise ProvisionError: when the host has no static busybox
    """
    if not BUSYBOX.is_file():
        raise ProvisionError(
            f"busybox {BUSYBOX}", "does not exist", "apt-get install busybox-static"
        )
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "proc", "sys",
                      "dev", "run", "mnt", "home", "lib", "var/log", "boot/grub"):  # fmt: skip
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "root").mkdir(mode=0o700)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "var/run").symlink_to("/run")
    shutil.copyfile(BUSYBOX, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    for applet in sorted(set(applets)):
        link = root / applet
        if applet and "/" in applet and applet != "bin/busybox" and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    _write(root, "/etc/inittab", _resource("inittab"))
    _write(root, "/etc/init.d/rcS", _resource("rcS"), 0o755)
    _write(root, "/etc/init.d/rcK", _resource("rcK"), 0o755)
    _write(root, "/usr/share/udhcpc/default.script", helper_script("udhcpc.script"), 0o755)
    _write(root, "/etc/cpu-hotplug", helper_script("cpu-hotplug"), 0o755)
    _write(root, "/etc/wait-for-fd", helper_script("wait-for-fd"), 0o755)
    # busybox acpid runs this on the ACPI power button; poweroff asks init to stop cleanly.
    _write(root, "/etc/acpi/PWRF/00000080", "#!/bin/sh\nexec poweroff\n", 0o755)
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(root, "/etc/shadow", "root::19000:0:99999:7:::\n", 0o600)
    _write(root, "/etc/group", "root:x:0:\n")
    _write(root, "/etc/profile", "export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n"
           "PS1='\\h:\\w\\$ '\n")  # fmt: skip
    _write(root, "/etc/os-release", 'NAME="busybox"\nID=busybox\n'
           'PRETTY_NAME="busybox system (xenlite create-image)"\n')  # fmt: skip
    write_identity(root, request, root_uuid, swap_uuid)
    boot = BootFiles(
        release=release,
        kernel=f"/boot/vmlinuz-{release}",
        initrd=f"/boot/initrd.img-{release}",
        cmdline=kernel_cmdline(root_uuid),
    )
    shutil.copyfile(kernel, root / boot.kernel.lstrip("/"))
    shutil.copyfile(initrd, root / boot.initrd.lstrip("/"))
    _write(root, "/boot/grub/grub.cfg", grub_menu(request, boot, root_uuid, "busybox"))
    return boot
