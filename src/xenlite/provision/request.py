"""What ``xenlite create-image`` is asked to make, checked before anything is made.

The options are xen-create-image's (xen-tools 4.9): sizes as it writes them (``4G``, ``512M``,
a bare number is MiB), one or more ``--ip`` with ``--netmask``/``--gateway``, or ``--dhcp``;
images in ``--dir DIR`` (``DIR/domains/NAME``) or on LVM (``--lvm VG``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from xenlite.base.errors import ProvisionError
from xenlite.base.paths import under_root
from xenlite.base.units import MIB

DEFAULT_NETMASK = "255.255.255.0"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SWAP = 128 * MIB
# Kernels of LVM guests that boot directly, and debootstrap's package cache.
IMAGES_DIR = "/var/lib/xenlite/images"
DEFAULT_CACHE_DIR = "/var/cache/xenlite/debootstrap"
# Room for the guest kit's kernel (~8 MiB) and initramfs (~15 MiB) on the root filesystem,
# with ext4's own metadata and journal.
MIN_ROOT_BYTES = 64 * MIB
# A hostname is one DNS label (RFC 1123), and the domain's name and file names follow it.
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$")
_SIZE = re.compile(r"^\s*(\d+)\s*([bBkKmMgGtT]?)[bB]?\s*$")
_SHIFT = {"b": 0, "k": 10, "m": 20, "g": 30, "t": 40}


class Dist(StrEnum):
    """What system goes on the image."""

    BUSYBOX = "busybox"
    BOOKWORM = "bookworm"
    TRIXIE = "trixie"


class Filesystem(StrEnum):
    """Filesystems for the root partition: the ones mke2fs makes and xenlite's pygrub reads."""

    EXT2 = "ext2"
    EXT3 = "ext3"
    EXT4 = "ext4"


@dataclass(frozen=True, slots=True)
class StaticNetwork:
    addresses: tuple[str, ...]
    netmask: str
    gateway: str | None
    nameservers: tuple[str, ...] = ()

    @property
    def prefix(self) -> int:
        return ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen


@dataclass(frozen=True, slots=True)
class DhcpNetwork:
    """The guest asks for its address by DHCP (--dhcp, the default): nothing to carry."""


@dataclass(frozen=True, slots=True)
class DirStorage:
    """Images as files in ``dir/domains/<hostname>/``, as xen-tools' ``--dir``."""

    dir: Path

    def home(self, hostname: str) -> Path:
        """The image's directory: its disk, and the kernel it boots without pygrub."""
        return self.dir / "domains" / hostname


@dataclass(frozen=True, slots=True)
class LvmStorage:
    """Images as logical volumes ``<hostname>-disk`` in volume group ``group``."""

    group: str

    def home(self, hostname: str) -> Path:
        """Where the kernel of a volume's guest that boots without pygrub is kept."""
        return under_root(IMAGES_DIR) / hostname


@dataclass(frozen=True, slots=True)
class ImageRequest:
    hostname: str
    dist: Dist
    storage: DirStorage | LvmStorage
    network: StaticNetwork | DhcpNetwork
    root_bytes: int
    swap_bytes: int = DEFAULT_SWAP
    memory_mib: int = 256
    vcpus: int = 1
    filesystem: Filesystem = Filesystem.EXT4
    sparse: bool = True
    pygrub: bool = False
    mac: str | None = None
    bridge: str | None = None
    mirror: str = DEFAULT_MIRROR
    # Debian: debootstrap keeps the packages it fetched here and takes them from here
    # the next time (xen-tools' --cache/--cachedir); None: no cache.
    cache_dir: Path | None = None
    # Debian: root's password; None: one is made up and shown (xen-tools' --genpass).
    password: str | None = None
    config_dir: Path = field(default=Path("/etc/xen"))
    force: bool = False

    @property
    def config_path(self) -> Path:
        return self.config_dir / f"{self.hostname}.cfg"

    @property
    def home(self) -> Path:
        return self.storage.home(self.hostname)


def _bad(option: str, value: str, cause: str, fix: str) -> ProvisionError:
    return ProvisionError(f"create-image {option} {value!r}", cause, fix)


def parse_size(option: str, text: str) -> int:
    """A size as xen-create-image reads it, in bytes: ``4G``, ``512M``, ``512Mb``; a bare
    number is MiB."""
    match = _SIZE.match(text)
    if match is None:
        raise _bad(option, text, "is not a size", "give a number with M or G, e.g. 4G or 512M")
    number, unit = int(match.group(1)), match.group(2).lower() or "m"
    return number << _SHIFT[unit]


def check_hostname(text: str) -> str:
    if not _HOSTNAME.match(text):
        raise _bad(
            "--hostname",
            text,
            "is not a host name (letters, digits and '-', at most 63, not starting or ending "
            "with '-')",
            "choose a name such as web1",
        )
    return text


def check_address(option: str, text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise _bad(option, text, "is not an IPv4 address", "write it as 192.168.1.10") from None


def check_netmask(text: str) -> str:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        raise _bad("--netmask", text, "is not a netmask", "write it as 255.255.255.0") from None
    return text


def check_mac(text: str) -> str:
    if not _MAC.match(text):
        raise _bad("--mac", text, "is not a MAC address", "write it as 00:16:3e:12:34:56")
    return text.lower()


def static_network(
    addresses: list[str], netmask: str | None, gateway: str | None, nameservers: list[str]
) -> StaticNetwork:
    """--ip (one or more), --netmask (default 255.255.255.0), --gateway, --nameserver."""
    mask = check_netmask(netmask or DEFAULT_NETMASK)
    ips = tuple(check_address("--ip", a) for a in addresses)
    gw = check_address("--gateway", gateway) if gateway else None
    if gw is not None:
        network = ipaddress.IPv4Network(f"{ips[0]}/{mask}", strict=False)
        if ipaddress.IPv4Address(gw) not in network:
            raise _bad(
                "--gateway",
                gw,
                f"is not on the guest's network {network} (--ip {ips[0]} --netmask {mask})",
                "give a gateway on that network, or correct --ip/--netmask",
            )
    dns = tuple(check_address("--nameserver", n) for n in nameservers)
    return StaticNetwork(ips, mask, gw, dns)


def check_request(request: ImageRequest) -> None:
    """The checks that need the whole request.

    :raise ProvisionError: naming the option, the cause and the fix
    """
    if request.root_bytes < MIN_ROOT_BYTES:
        raise _bad(
            "--size",
            f"{request.root_bytes >> 20}M",
            f"is too small for the kernel, initramfs and system (at least {MIN_ROOT_BYTES >> 20}M)",
            "give --size 128M or more",
        )
    if request.memory_mib < 32:
        raise _bad("--memory", f"{request.memory_mib}M", "is below 32M", "give --memory 128M")
    if request.vcpus < 1:
        raise _bad("--vcpus", str(request.vcpus), "must be at least 1", "give --vcpus 1")
    if request.dist is not Dist.BUSYBOX and request.root_bytes < 1024 * MIB:
        raise _bad(
            "--size",
            f"{request.root_bytes >> 20}M",
            f"is too small for Debian {request.dist.value} (at least 1G)",
            "give --size 2G",
        )
