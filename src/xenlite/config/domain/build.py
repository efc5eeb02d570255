"""An xl.cfg file -> the typed DomainConfig, key by key as xl's ``parse_config_data()``.

Implements xl.cfg(5) as Xen 4.17's ``tools/xl/xl_parse.c`` reads it for ``xl create``:
every key it knows, its defaults (from xl.conf(5) too), its warnings and its refusals, each
refusal located at file:line:col. Where xl crashes or silently drops something (nested lists
in ``cpus=``, unknown keys) xenlite says so instead.

This module is the public face and runs the keys in xl's order; the keys themselves are
read by ``core`` (c_info and the domain-wide b_info keys, on_*), ``hvm`` (HVM
keys), ``devices`` (device lists) through ``reader``'s typed reads, and
``render`` writes a DomainConfig back as xl.cfg text.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from xenlite.base.errors import ConfigError
from xenlite.config.domain import core, devices
from xenlite.config.domain.core import XENFIRMWAREDIR
from xenlite.config.domain.model import BuildInfo, DomainConfig, DomainType
from xenlite.config.domain.reader import HostFacts, KeyReader
from xenlite.config.domain.render import render_domain_config
from xenlite.config.hostconf.xlconf import XlConf
from xenlite.config.settings import KNOWN_KEYS
from xenlite.config.xlcfg import grammar
from xenlite.config.xlcfg.grammar import XlConfig

__all__ = [
    "DEFAULT_MEMKB",
    "KNOWN_KEYS",
    "XENFIRMWAREDIR",
    "HostFacts",
    "LoadedDomain",
    "build_domain_config",
    "effective_max_memkb",
    "effective_target_memkb",
    "load_domain_config",
    "render_domain_config",
]

# libxl's default when neither memory= nor maxmem= is given (LIBXL_MEMKB_DEFAULT resolved
# by libxl__domain_build_info_setdefault): 32 MiB.
DEFAULT_MEMKB = 32 * 1024


@dataclass(frozen=True, slots=True)
class LoadedDomain:
    """A built domain config and the warnings xl (or xenlite) gave while reading it."""

    config: DomainConfig
    warnings: tuple[str, ...]


def effective_target_memkb(b_info: BuildInfo) -> int:
    """The memory the domain starts with: libxl's 32 MiB when the file gives none."""
    return b_info.target_memkb if b_info.target_memkb is not None else DEFAULT_MEMKB


def effective_max_memkb(b_info: BuildInfo) -> int:
    """The maximum memory: maxmem, else memory, else libxl's 32 MiB."""
    return b_info.max_memkb if b_info.max_memkb is not None else effective_target_memkb(b_info)


def load_domain_config(
    path: str,
    overrides: Sequence[str] = (),
    *,
    xlconf: XlConf | None = None,
    host: HostFacts | None = None,
) -> LoadedDomain:
    """Read an xl.cfg file plus ``xl create`` style ``key=value`` overrides and build it.

    :raise ConfigError: when the file cannot be read or xl would refuse it (located).
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the domain config: {exc.strerror or exc}",
            path=path,
            fix="give the path of an existing, readable xl.cfg file",
        ) from None
    cfg = grammar.parse_with_overrides(text, path, list(overrides))
    return build_domain_config(cfg, xlconf=xlconf, host=host)


def build_domain_config(
    cfg: XlConfig, *, xlconf: XlConf | None = None, host: HostFacts | None = None
) -> LoadedDomain:
    """The DomainConfig ``xl create -n`` would print for ``cfg``, with xl's warnings.

    :raise ConfigError: where xl refuses the config, located at the offending value.
    """
    r = KeyReader(cfg, xlconf or XlConf(), host or HostFacts(nr_cpus=os.cpu_count() or 1))
    # One run of parse_config_data(): the parts in xl's order, so that the first refusal
    # and the order of the warnings are xl's.
    _warn_unknown_keys(r)
    ssid_label, exec_ssid_label = core.seclabels(r)
    c_info = core.create_info(r, ssid_label)
    b_info = core.build_info(r, c_info, exec_ssid_label)
    config = devices.devices(r, c_info, b_info)
    config = core.actions(r, config)
    assert c_info.type is not None  # create_info always chooses one
    _warn_unread_keys(r, c_info.type)
    return LoadedDomain(config=config, warnings=tuple(r.warn.items))


# ---------------------------------------------------------------- known keys

# Every top-level key xl 4.17's parse_config_data() reads, plus xl.cfg(5) keys read elsewhere
# by xl (vncviewer, the xm-era keys xl ignores on purpose): the rows of the settings table.


def _warn_unknown_keys(r: KeyReader) -> None:
    for key in list(r.cfg.keys()):
        if key in KNOWN_KEYS:
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        r.warn.add(r.pos(key), f"unknown key '{key}' ignored by xl{hint}")


def _warn_unread_keys(r: KeyReader, dtype: DomainType) -> None:
    # Keys of xl.cfg(5) that xl's parser skips for this config (an HVM key in a PV domain,
    # vncdisplay= with vnc=0, pci_seize= without pci=): xl says nothing, the key does nothing.
    for key in list(r.cfg.keys()):
        if key in KNOWN_KEYS and key not in r.read:
            r.warn.add(
                r.pos(key),
                f"'{key}' ignored by xl: a {dtype.value.upper()} domain with this config "
                "does not use it",
            )
