"""The xl.cfg of a made image, laid out as xen-tools' xl.tmpl lays it out (the sections,
``name``, ``disk``, ``vif`` with ``ip=``, and ``dhcp = 'dhcp'`` for a DHCP guest, which
xen-list-images and tools like it read back), checked by xenlite's own xl.cfg reader before it
is written."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from xenlite import __version__
from xenlite.base.errors import ConfigError, ProvisionError
from xenlite.base.files import write_atomic
from xenlite.config.domain.build import build_domain_config
from xenlite.config.xlcfg.grammar import parse, render_value
from xenlite.provision.request import DhcpNetwork, ImageRequest, StaticNetwork


@dataclass(frozen=True, slots=True)
class DirectBoot:
    """Without --pygrub: the kernel and initramfs copied beside the image, booted directly."""

    kernel: Path
    ramdisk: Path
    cmdline: str


def _key(name: str, value: str | int | list[str]) -> str:
    return f"{name} = {render_value(value)}"


def _vif(request: ImageRequest) -> str:
    parts: list[str] = []
    if isinstance(request.network, StaticNetwork):
        parts.append("ip=" + " ".join(request.network.addresses))
    if request.mac:
        parts.append(f"mac={request.mac}")
    if request.bridge:
        parts.append(f"bridge={request.bridge}")
    return ",".join(parts)


def render(request: ImageRequest, disk_target: str, boot: DirectBoot | None) -> str:
    """The config text: pygrub when ``boot`` is None, else kernel/ramdisk/cmdline."""
    stamp = time.strftime("%a %b %e %H:%M:%S %Y")
    lines = [
        "#",
        f"# Configuration file for the Xen instance {request.hostname}, created",
        f"# by xenlite create-image {__version__} on {stamp}.",
        "#",
        "",
        "#",
        "#  Kernel + memory size",
        "#",
    ]
    if boot is None:
        lines.append(_key("bootloader", "pygrub"))
    else:
        lines += [
            _key("kernel", str(boot.kernel)),
            _key("ramdisk", str(boot.ramdisk)),
            _key("cmdline", boot.cmdline),
        ]
    lines += [
        _key("vcpus", request.vcpus),
        _key("memory", request.memory_mib),
        _key("type", "pv"),
        "",
        "#",
        "#  Disk device(s).",
        "#",
        "disk = [",
        f"    {render_value(f'format=raw, vdev=xvda, access=rw, target={disk_target}')},",
        "]",
        "",
        "#",
        "#  Hostname",
        "#",
        _key("name", request.hostname),
        "",
        "#",
        "#  Networking",
        "#",
    ]
    if isinstance(request.network, DhcpNetwork):
        lines.append(_key("dhcp", "dhcp"))
    lines.append(f"vif = [ {render_value(_vif(request))} ]")
    return "\n".join(lines) + "\n"


def write_config(request: ImageRequest, path: Path, text: str) -> None:
    """Check ``text`` as ``xl create -n`` would read it, then write it atomically.

    :raise ProvisionError: when xl would refuse it (a --bridge or --mac it cannot take)
    """
    try:
        build_domain_config(parse(text, str(path)))
    except ConfigError as exc:
        raise ProvisionError(
            f"configuration {path}",
            f"xl would refuse it: {exc}",
            "correct the create-image option it names",
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode(), 0o644)
