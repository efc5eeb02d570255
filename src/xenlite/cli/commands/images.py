"""``xenlite create-image``, ``delete-image`` and ``list-images``: xen-tools' xen-create-image,
xen-delete-image and xen-list-images, with their options and their output."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from xenlite.base.errors import DaemonNotRunning, ProvisionError
from xenlite.base.paths import under_root
from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions

if TYPE_CHECKING:
    from xenlite.provision.create import MadeImage
    from xenlite.provision.request import ImageRequest

_E = TypeVar("_E", bound=StrEnum)

_CREATE_LONG = [
    "hostname=", "size=", "swap=", "noswap", "memory=", "vcpus=", "ip=", "gateway=",
    "netmask=", "nameserver=", "dhcp", "mac=", "bridge=", "dir=", "lvm=", "dist=", "pygrub",
    "image=", "fs=", "force", "output=", "mirror=", "cache=", "cachedir=", "password=",
    "help",
]  # fmt: skip


def _fix(verb: str) -> str:
    return f"see 'xenlite help {verb}'"


def _config_dir(values: dict[str, str]) -> Path:
    return Path(values["--output"]) if "--output" in values else under_root("/etc/xen")


def main_create_image(opts: GlobalOptions, args: list[str]) -> int:
    """``xenlite create-image --hostname NAME (--dir DIR | --lvm VG) [options]``."""
    from xenlite.cli.main import print_command_help
    from xenlite.cli.progress import StepDisplay
    from xenlite.cli.table import BY_NAME

    pairs, rest = parse_options("create-image", args, "", _CREATE_LONG)
    if rest:
        raise UsageError("xenlite create-image", f"unexpected '{rest[0]}'", _fix("create-image"))
    if ("--help", "") in pairs:
        print_command_help(opts.program, BY_NAME["create-image"])
        return EXIT_SUCCESS
    request = _request(_with_tools_defaults(pairs))
    from xenlite.provision.create import create_image

    out = sys.stdout
    out.write(_general_information(request) + "\n")
    out.flush()
    made = create_image(request, StepDisplay(out))
    out.write("\n" + _summary(made) + "\n")
    return EXIT_SUCCESS


def _with_tools_defaults(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The command line's options after the defaults of /etc/xen-tools/xen-tools.conf."""
    from xenlite.provision import toolsconf

    source = under_root(toolsconf.CONF)
    defaults = toolsconf.read_defaults(source)
    for note in defaults.notes:
        print(f"xenlite create-image: {note}", file=sys.stderr)
    return toolsconf.merged(defaults, source, pairs)


def _request(pairs: list[tuple[str, str]]) -> ImageRequest:
    from xenlite.provision import request as rq

    values = dict(pairs)
    flags = {name for name, _ in pairs}
    if "--hostname" not in values:
        raise UsageError("xenlite create-image", "--hostname is required", _fix("create-image"))
    hostname = rq.check_hostname(values["--hostname"])
    if ("--dir" in values) == ("--lvm" in values):
        raise UsageError(
            "xenlite create-image",
            "give one of --dir DIR (image files) or --lvm VG (logical volumes)",
            _fix("create-image"),
        )
    storage: rq.DirStorage | rq.LvmStorage = (
        rq.DirStorage(Path(values["--dir"]).absolute())
        if "--dir" in values
        else rq.LvmStorage(values["--lvm"])
    )
    addresses = [v for k, v in pairs if k == "--ip"]
    if addresses and "--dhcp" in flags:
        raise UsageError(
            "xenlite create-image", "--ip and --dhcp exclude each other", _fix("create-image")
        )
    network: rq.StaticNetwork | rq.DhcpNetwork
    if addresses:
        network = rq.static_network(
            addresses,
            values.get("--netmask"),
            values.get("--gateway"),
            [v for k, v in pairs if k == "--nameserver"],
        )
    else:
        network = rq.DhcpNetwork()
    dist = _choice("--dist", values.get("--dist", "busybox"), rq.Dist)
    fs = _choice("--fs", values.get("--fs", "ext4"), rq.Filesystem)
    image = values.get("--image", "sparse")
    if image not in ("sparse", "full"):
        raise ProvisionError(
            f"create-image --image {image!r}", "is not an image type", "give sparse or full"
        )
    vcpus_text = values.get("--vcpus", "1")
    if not vcpus_text.isdigit():
        raise ProvisionError(
            f"create-image --vcpus {vcpus_text!r}", "is not a number", "give --vcpus 2"
        )
    request = rq.ImageRequest(
        hostname=hostname,
        dist=dist,
        storage=storage,
        network=network,
        root_bytes=rq.parse_size("--size", values.get("--size", "4G")),
        swap_bytes=0
        if "--noswap" in flags
        else rq.parse_size("--swap", values.get("--swap", "128M")),
        memory_mib=rq.parse_size("--memory", values.get("--memory", "256M")) >> 20,
        vcpus=int(vcpus_text),
        filesystem=fs,
        sparse=image == "sparse",
        pygrub="--pygrub" in flags,
        mac=rq.check_mac(values["--mac"]) if "--mac" in values else None,
        bridge=values.get("--bridge"),
        mirror=values.get("--mirror", rq.DEFAULT_MIRROR),
        cache_dir=_cache_dir(values),
        password=values.get("--password"),
        config_dir=_config_dir(values),
        force="--force" in flags,
    )
    rq.check_request(request)
    return request


def _cache_dir(values: dict[str, str]) -> Path | None:
    """xen-tools' --cache yes|no (default yes) and --cachedir DIR."""
    from xenlite.provision.request import DEFAULT_CACHE_DIR

    cache = values.get("--cache", "yes")
    if cache not in ("yes", "no"):
        raise ProvisionError(f"create-image --cache {cache!r}", "is not yes or no", "give one")
    if cache == "no":
        return None
    return (
        Path(values["--cachedir"]).absolute()
        if "--cachedir" in values
        else under_root(DEFAULT_CACHE_DIR)
    )


def _choice(option: str, value: str, kind: type[_E]) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ProvisionError(
            f"create-image {option} {value!r}", f"is not one of {choices}", "give one of them"
        ) from None


def _size(size: int) -> str:
    return f"{size >> 30}G" if size % (1 << 30) == 0 else f"{size >> 20}M"


def _general_information(request: ImageRequest) -> str:
    """The summary xen-create-image prints before it starts."""
    from xenlite.provision.request import DirStorage, StaticNetwork

    fs = request.filesystem.value
    lines = [
        "General Information",
        "--------------------",
        f"Hostname       :  {request.hostname}",
        f"Distribution   :  {request.dist.value}",
    ]
    if request.dist.value != "busybox":
        lines.append(f"Mirror         :  {request.mirror}")
    parts = [f"/               {_size(request.root_bytes):<6}({fs})"]
    if request.swap_bytes:
        parts.insert(0, f"swap            {_size(request.swap_bytes):<6}(swap)")
    lines.append(f"Partitions     :  {parts[0]}")
    lines += [f"                  {part}" for part in parts[1:]]
    if isinstance(request.storage, DirStorage):
        lines.append(f"Image type     :  {'sparse' if request.sparse else 'full'}")
    else:
        lines.append(f"LVM group      :  {request.storage.group}")
    lines += [
        f"Memory size    :  {request.memory_mib}M",
        f"Bootloader     :  {'pygrub' if request.pygrub else 'direct kernel boot'}",
        "",
        "Networking Information",
        "----------------------",
    ]
    mac = f" [MAC: {request.mac}]" if request.mac else ""
    if isinstance(request.network, StaticNetwork):
        for number, address in enumerate(request.network.addresses, 1):
            lines.append(f"IP Address {number}   : {address}{mac}")
        lines.append(f"Netmask        : {request.network.netmask}")
        if request.network.gateway:
            lines.append(f"Gateway        : {request.network.gateway}")
        if request.network.nameservers:
            lines.append(f"Nameserver     : {' '.join(request.network.nameservers)}")
    else:
        lines.append(f"IP Address     : DHCP{mac}")
    return "\n".join(lines) + "\n"


def _summary(made: MadeImage) -> str:
    from xenlite.provision.request import StaticNetwork

    request = made.request
    network = request.network
    addresses = " ".join(network.addresses) if isinstance(network, StaticNetwork) else "DHCP"
    lines = [
        "Installation Summary",
        "---------------------",
        f"Hostname        :  {request.hostname}",
        f"Distribution    :  {request.dist.value}",
        f"MAC Address     :  {request.mac or 'chosen by xl at each create'}",
        f"IP Address(es)  :  {addresses}",
        f"Disk            :  {made.disk}",
        f"Config          :  {made.config}",
        f"Kernel          :  Linux {made.boot.release}",
    ]
    if made.password is not None:
        lines.append(f"Root Password   :  {made.password}")
    lines += [
        f"Made in         :  {made.seconds:.1f} s",
        "",
        f"Start it with 'xl create {made.config}'.",
    ]
    return "\n".join(lines)


def main_delete_image(opts: GlobalOptions, args: list[str]) -> int:
    """``xenlite delete-image [--dir DIR | --lvm VG] [--output DIR] NAME...``."""
    from xenlite.provision.catalog import delete_image
    from xenlite.provision.request import DirStorage, LvmStorage, check_hostname

    pairs, names = parse_options("delete-image", args, "", ["dir=", "lvm=", "output=", "hostname="])
    values = dict(pairs)
    names += [v for k, v in pairs if k == "--hostname"]
    if not names:
        raise UsageError(
            "xenlite delete-image", "name the image(s) to delete", _fix("delete-image")
        )
    if "--dir" in values and "--lvm" in values:
        raise UsageError(
            "xenlite delete-image", "give at most one of --dir and --lvm", _fix("delete-image")
        )
    storage: DirStorage | LvmStorage | None = None
    if "--dir" in values:
        storage = DirStorage(Path(values["--dir"]).absolute())
    elif "--lvm" in values:
        storage = LvmStorage(values["--lvm"])
    running = _running_domains()
    status = EXIT_SUCCESS
    for name in names:
        check_hostname(name)
        if name in running:
            print(f"Skipping xen guest '{name}' - it appears to be running.")
            status = EXIT_FAILURE
            continue
        for line in delete_image(name, _config_dir(values), storage):
            print(line)
    return status


def _running_domains() -> set[str]:
    """The names of the domains xenlited runs; none when it is not running."""
    from xenlite.cli.commands.domains import connect, list_domains

    try:
        with connect() as client:
            return {info.name for info in list_domains(client)}
    except DaemonNotRunning:
        return set()


def main_list_images(opts: GlobalOptions, args: list[str]) -> int:
    """``xenlite list-images [--output DIR]``: xen-list-images' lines, one block each."""
    from xenlite.provision.catalog import list_images

    pairs, rest = parse_options("list-images", args, "", ["output=", "test="])
    if rest:
        raise UsageError("xenlite list-images", f"unexpected '{rest[0]}'", _fix("list-images"))
    values = dict(pairs)
    if "--test" in values:  # xen-list-images' name for another config directory
        values["--output"] = values["--test"]
    entries, unreadable = list_images(_config_dir(values))
    if entries:
        print("\n\n".join(entry.describe() for entry in entries))
    for problem in unreadable:
        print(f"xenlite list-images: {problem}", file=sys.stderr)
    return EXIT_SUCCESS
