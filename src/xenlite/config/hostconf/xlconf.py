"""/etc/xen/xl.conf: the host-wide xl toolstack options as a typed model.

Implements xl.conf(5) ("OPTIONS") as xl's ``parse_global_config()`` (tools/xl/xl.c) reads it.
The file uses the xl.cfg language, so it is parsed by :mod:`xenlite.config.xlcfg.grammar`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from xenlite.base.errors import ConfigError
from xenlite.base.paths import host_root
from xenlite.config.xlcfg import grammar

# xl.conf(5) "@XEN_CONFIG_DIR@/xl.conf"
DEFAULT_XLCONF_PATH = "/etc/xen/xl.conf"
# tools/xl/xl.h XL_LOCK_FILE, documented as the lockfile default in xl.conf(5)
DEFAULT_LOCKFILE = "/var/lock/xl"
# xl.conf(5) "blkdev_start": libxl starts temporary block devices at xvda when unset
DEFAULT_BLKDEV_START = "xvda"


class Autoballoon(StrEnum):
    """xl.conf ``autoballoon=``."""

    OFF = "off"
    ON = "on"
    AUTO = "auto"


class OutputFormat(StrEnum):
    """xl.conf ``output_format=``: how xl prints machine-readable information."""

    JSON = "json"
    SXP = "sxp"


class DomidPolicy(StrEnum):
    """xl.conf ``domid_policy=``: sequential domids from Xen, or random ones."""

    XEN = "xen"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class XlConf:
    """Everything xl.conf can set; ``XlConf()`` is xl's built-in defaults.

    ``None`` means "not set in xl.conf": xl then leaves the choice to libxl or Xen
    (vif script ``vif-bridge``, bridge ``xenbr0``, backend domain 0, grant limits from the
    Xen command line, all CPUs allowed), exactly as xl passes NULL/-1 down.
    """

    autoballoon: Autoballoon = Autoballoon.AUTO
    run_hotplug_scripts: bool = True
    lockfile: str = DEFAULT_LOCKFILE
    vif_default_script: str | None = None
    vif_default_bridge: str | None = None
    vif_default_backend: str | None = None
    vif_default_gatewaydev: str | None = None
    remus_default_netbufscript: str | None = None
    colo_default_proxyscript: str | None = None
    output_format: OutputFormat = OutputFormat.JSON
    blkdev_start: str = DEFAULT_BLKDEV_START
    claim_mode: bool = True
    bootloader_restrict: bool = False
    max_grant_frames: int | None = None
    max_maptrack_frames: int | None = None
    max_grant_version: int | None = None
    vm_cpumask: str | None = None
    vm_pv_cpumask: str | None = None
    vm_hvm_cpumask: str | None = None
    domid_policy: DomidPolicy = DomidPolicy.XEN

    def to_json(self) -> dict[str, object]:
        """Every setting under its xl.conf key, ``None`` for unset ones."""
        out: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            out[_KEY_OF_FIELD[field.name]] = str(value) if isinstance(value, StrEnum) else value
        return out

    def render(self) -> str:
        """xl.conf text holding every setting that differs from xl's default."""
        default = XlConf()
        lines: list[str] = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value == getattr(default, field.name):
                continue
            lines.append(f"{_KEY_OF_FIELD[field.name]}={render_value(value)}")
        return "".join(line + "\n" for line in lines)


# Field name -> xl.conf key; the dotted keys are xl's "<device>.default.<option>" names.
_KEY_OF_FIELD: dict[str, str] = {
    "autoballoon": "autoballoon",
    "run_hotplug_scripts": "run_hotplug_scripts",
    "lockfile": "lockfile",
    "vif_default_script": "vif.default.script",
    "vif_default_bridge": "vif.default.bridge",
    "vif_default_backend": "vif.default.backend",
    "vif_default_gatewaydev": "vif.default.gatewaydev",
    "remus_default_netbufscript": "remus.default.netbufscript",
    "colo_default_proxyscript": "colo.default.proxyscript",
    "output_format": "output_format",
    "blkdev_start": "blkdev_start",
    "claim_mode": "claim_mode",
    "bootloader_restrict": "bootloader_restrict",
    "max_grant_frames": "max_grant_frames",
    "max_maptrack_frames": "max_maptrack_frames",
    "max_grant_version": "max_grant_version",
    "vm_cpumask": "vm.cpumask",
    "vm_pv_cpumask": "vm.pv.cpumask",
    "vm_hvm_cpumask": "vm.hvm.cpumask",
    "domid_policy": "domid_policy",
}

FIELD_OF_KEY: dict[str, str] = {key: name for name, key in _KEY_OF_FIELD.items()}

# Keys xl still reads but warns about (tools/xl/xl.c), with their replacement.
DEPRECATED_KEYS: dict[str, str] = {
    "vifscript": "vif.default.script",
    "defaultbridge": "vif.default.bridge",
}

KNOWN_KEYS: frozenset[str] = frozenset(_KEY_OF_FIELD.values()) | frozenset(DEPRECATED_KEYS)

_E = TypeVar("_E", bound=StrEnum)

# Grant table frames are uint32 in libxl_domain_build_info.
_UINT32_MAX = 2**32 - 1


def render_value(value: object) -> str:
    """One xl.conf value: booleans as 0/1, integers bare, everything else double-quoted."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    # libxlu's quoted strings take C escapes, so backslash and quote must be escaped.
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


# tools/xl/xl.c auto_autoballoon(): xl's own test of the Xen command line. It only
# recognises non-negative amounts, so "dom0_mem=-1G" leaves autoballoon on, as in Xen.
_XL_DOM0_MEM_RE = re.compile(r"(^| )dom0_mem=((|min:|max:)[0-9]+[bBkKmMgG]?,?)+($| )")


def cmdline_sets_dom0_mem(cmdline: str) -> bool:
    """Whether xl would consider ``dom0_mem`` given on this Xen command line."""
    return _XL_DOM0_MEM_RE.search(cmdline) is not None


def resolve_autoballoon(conf: XlConf, dom0_mem_set: bool) -> bool:
    """Whether xl balloons dom0 down: ``auto`` means on unless dom0_mem was given to Xen."""
    if conf.autoballoon is Autoballoon.AUTO:
        return not dom0_mem_set
    return conf.autoballoon is Autoballoon.ON


def parse_xlconf(text: str, path: str = DEFAULT_XLCONF_PATH) -> tuple[XlConf, list[str]]:
    """Parse xl.conf text; return the model and warnings (deprecated or unknown keys).

    :raise ConfigError: on a syntax error or a bad value, located in ``path``.
    """
    cfg = grammar.parse(text, path)
    warnings: list[str] = []
    default = XlConf()

    def where(key: str) -> str:
        pos = cfg.pos_of(key)
        return f"{pos.path}:{pos.line}:{pos.col}"

    def string(field_name: str) -> str | None:
        return cfg.get_string(_KEY_OF_FIELD[field_name])

    def flag(field_name: str) -> bool:
        # xl reads these with xlu_cfg_get_long: 0 is false, any other number true.
        value = cfg.get_long(_KEY_OF_FIELD[field_name])
        if value is None:
            return bool(getattr(default, field_name))
        return value != 0

    def choice(key: str, valid: dict[str, _E], fallback: _E) -> _E:
        raw = cfg.get_string(key)
        if raw is None:
            return fallback
        if raw in valid:
            return valid[raw]
        setting = cfg.find(key)
        pos = setting.value.pos if setting is not None else cfg.pos_of(key)
        raise pos.error(
            f"invalid value {raw!r}",
            key=key,
            fix="use one of " + ", ".join(f'"{v}"' for v in valid),
        )

    for old, new in DEPRECATED_KEYS.items():
        if cfg.has(old):
            warnings.append(
                f"{where(old)}: {old}: the global config option {old} is deprecated, "
                f"please switch to {new}"
            )
    written = cfg.keys()
    for key in written:
        if key not in KNOWN_KEYS:
            warnings.append(
                f"{where(key)}: {key}: unknown xl.conf option, ignored "
                "(see xl.conf(5) for the valid options)"
            )

    # The new names win over the deprecated ones, whatever their order in the file.
    vif_script = string("vif_default_script")
    if vif_script is None:
        vif_script = cfg.get_string("vifscript")
    vif_bridge = string("vif_default_bridge")
    if vif_bridge is None:
        vif_bridge = cfg.get_string("defaultbridge")

    conf = XlConf(
        # xl accepts 1 and 0 as spellings of on and off.
        autoballoon=choice(
            "autoballoon",
            {**{str(m): m for m in Autoballoon}, "1": Autoballoon.ON, "0": Autoballoon.OFF},
            default.autoballoon,
        ),
        run_hotplug_scripts=flag("run_hotplug_scripts"),
        lockfile=_or_default(string("lockfile"), default.lockfile),
        vif_default_script=vif_script,
        vif_default_bridge=vif_bridge,
        vif_default_backend=string("vif_default_backend"),
        vif_default_gatewaydev=string("vif_default_gatewaydev"),
        remus_default_netbufscript=string("remus_default_netbufscript"),
        colo_default_proxyscript=string("colo_default_proxyscript"),
        output_format=choice(
            "output_format", {str(m): m for m in OutputFormat}, default.output_format
        ),
        blkdev_start=_or_default(string("blkdev_start"), default.blkdev_start),
        claim_mode=flag("claim_mode"),
        bootloader_restrict=flag("bootloader_restrict"),
        max_grant_frames=cfg.get_long("max_grant_frames", min=0, max=_UINT32_MAX),
        max_maptrack_frames=cfg.get_long("max_maptrack_frames", min=0, max=_UINT32_MAX),
        # Xen implements grant table versions 1 and 2 only.
        max_grant_version=cfg.get_long("max_grant_version", min=1, max=2),
        vm_cpumask=string("vm_cpumask"),
        vm_pv_cpumask=string("vm_pv_cpumask"),
        vm_hvm_cpumask=string("vm_hvm_cpumask"),
        domid_policy=choice("domid_policy", {str(m): m for m in DomidPolicy}, default.domid_policy),
    )
    return conf, warnings


def _or_default(value: str | None, default: str) -> str:
    return default if value is None else value


def load_xlconf_with_warnings(
    path: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> tuple[XlConf, list[str]]:
    """Read xl.conf; return the model and the warnings to show the operator.

    With no ``path`` the default ``/etc/xen/xl.conf`` is read (under ``root``, by default
    the host root ``$XENLITE_ROOT``), and its absence means xl's defaults, as for xl.
    An explicit ``path`` must exist.

    :raise ConfigError: when an explicit path is missing, the file is unreadable, or a
        setting is invalid.
    """
    explicit = path is not None
    if path is None:
        base = Path(os.fspath(root)) if root is not None else host_root()
        file = base / DEFAULT_XLCONF_PATH.lstrip("/")
    else:
        file = Path(os.fspath(path))
    name = os.fspath(file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if not explicit:
            return XlConf(), []
        raise ConfigError(
            "xl.conf file not found",
            path=name,
            fix="check the path, or omit it to use /etc/xen/xl.conf",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read xl.conf: {exc.strerror or exc}",
            path=name,
            fix="make the file readable (permissions, not a directory)",
        ) from None
    # libxlu reads bytes; grammar decodes them the same way for every xl.cfg-language file.
    text = grammar.decode_config_bytes(data)
    return parse_xlconf(text, name)


def load_xlconf(
    path: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> XlConf:
    """Read xl.conf (see :func:`load_xlconf_with_warnings`), dropping the warnings."""
    return load_xlconf_with_warnings(path, root=root)[0]
