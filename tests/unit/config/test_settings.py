"""The settings table: a row for every xl.cfg key of the manual, every boot option and xl.conf
key and every model field; each honoured row read by the code it names; each other row
reported or refused at create."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

from model_values import paths_treated, with_changed
from xenlite.config.domain.build import build_domain_config
from xenlite.config.domain.model import (
    BuildInfo,
    CreateInfo,
    DomainConfig,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
    SchedParams,
)
from xenlite.config.hostconf.bootopts import KNOWN_OPTIONS, XenBootOptions
from xenlite.config.hostconf.xlconf import XlConf
from xenlite.config.settings import (
    BOOT,
    BY_FIELD,
    KNOWN_KEYS,
    TABLE,
    XL_CFG,
    XL_CONF,
    Setting,
    Source,
    Treatment,
    boot_reports,
    domain_reports,
    xlconf_reports,
)
from xenlite.config.xlcfg.grammar import parse_with_overrides

PV = 'name="web01"\nkernel="/boot/vmlinuz"\nmemory=256\n'


def config(text: str) -> DomainConfig:
    return build_domain_config(parse_with_overrides(text, "test.cfg", [])).config


def _manual_keys(manual: Path) -> set[str]:
    """The top-level keys of xl.cfg(5): ``=item B<key...>`` at the first list level."""
    depth = 0
    keys: set[str] = set()
    for line in manual.read_text().splitlines():
        if line.startswith("=over"):
            depth += 1
        elif line.startswith("=back"):
            depth -= 1
        elif depth == 1 and (found := re.match(r"=item B<([a-z_0-9]+)", line)):
            keys.add(found.group(1))
    return keys


def test_every_key_of_the_manual_has_a_row(shared_dir: Path) -> None:
    keys = _manual_keys(shared_dir / "specs" / "xen" / "xl.cfg.5.pod.in")
    assert len(keys) > 150  # the walk found the manual's keys, not a stray list
    assert keys - {row.name for row in XL_CFG} == set()


def test_rows_are_unique_per_source() -> None:
    seen = [(row.source, row.name) for row in TABLE]
    assert len(seen) == len(set(seen))


def test_known_keys_are_the_xl_cfg_rows_xl_reads() -> None:
    assert "tsc_mode" in KNOWN_KEYS
    assert "vpmu" not in KNOWN_KEYS  # newer than xl 4.17: xl warns it does not know it
    assert {row.name for row in XL_CFG} - KNOWN_KEYS == {
        row.name for row in XL_CFG if row.treatment is Treatment.XL_WARNS
    } - {"device_model", "vncviewer", "vif2", "dhcp"}


def _model_paths() -> set[str]:
    def fields_of(prefix: str, cls: type) -> set[str]:
        return {f"{prefix}.{f.name}" for f in dataclasses.fields(cls)}

    paths = fields_of("config", DomainConfig) - {"config.c_info", "config.b_info"}
    paths |= fields_of("c_info", CreateInfo)
    paths |= fields_of("b_info", BuildInfo) - {"b_info.sched_params"}
    paths |= fields_of("b_info.sched_params", SchedParams)
    paths |= fields_of("pv", PvBuildInfo) | fields_of("pvh", PvhBuildInfo)
    paths |= fields_of("hvm", HvmBuildInfo)
    return paths


def test_every_model_field_has_exactly_one_row() -> None:
    assert _model_paths() - set(BY_FIELD) == set()
    assert set(BY_FIELD) - _model_paths() == set()
    owners = [path for row in TABLE if row.source is not Source.BOOT for path in row.fields
              if "." in path]  # fmt: skip
    assert len(owners) == len(set(owners))


def test_every_boot_option_and_xl_conf_key_has_a_row() -> None:
    assert {row.name for row in BOOT} == KNOWN_OPTIONS
    boot_fields = {f.name for f in dataclasses.fields(XenBootOptions)}
    assert {path for row in BOOT for path in row.fields} <= boot_fields
    assert {row.name for row in XL_CONF} == set(XlConf().to_json())


def _honoured() -> list[tuple[Setting, str]]:
    return [
        (row, path)
        for row in TABLE
        if row.treatment in (Treatment.QEMU, Treatment.ENGINE)
        for path in row.fields
    ]


@pytest.mark.parametrize(
    ("row", "path"), _honoured(), ids=[f"{r.source}:{r.name}:{p}" for r, p in _honoured()]
)
def test_an_honoured_setting_is_read_by_the_code_the_row_names(row: Setting, path: str) -> None:
    # Fails when someone marks a row honoured and forgets (or later removes) the code.
    assert row.by, f"{row.name}: an honoured row names the functions that honour it"
    field = path.rsplit(".", 1)[-1]
    sources = []
    for target in row.by:
        module_name, qualname = target.split(":")
        obj: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        sources.append(inspect.getsource(obj))  # type: ignore[arg-type]
    reads = re.compile(rf"[.\"']{re.escape(field)}\b")
    assert any(reads.search(text) for text in sources), (row.name, field, row.by)


def test_a_plain_config_has_nothing_to_report_or_refuse() -> None:
    assert domain_reports(config(PV)) == ((), ())


def test_xen_only_settings_are_reported_once_each_with_why() -> None:
    reported, refused = domain_reports(
        config(PV + 'tsc_mode="native"\nmax_grant_frames=64\nhap=0\n')
    )
    assert refused == ()
    messages = [report.message() for report in reported]
    assert messages == [
        "hap: has no effect on a QEMU host (hardware-assisted paging is chosen by KVM/TCG)",
        "tsc_mode: has no effect on a QEMU host (Xen's TSC emulation modes have no QEMU "
        "counterpart)",
        "max_grant_frames: has no effect on a QEMU host (Xen grant tables do not exist here)",
    ]


@pytest.mark.parametrize("path", paths_treated(Treatment.XEN_ONLY))
def test_every_xen_only_field_is_reported_not_refused(path: str) -> None:
    reported, refused = domain_reports(with_changed(config(PV), path))
    assert refused == ()
    assert [report.key for report in reported] == [BY_FIELD[path].name]


def test_values_xl_fills_in_by_itself_are_not_reported() -> None:
    # xl copies xl.conf's claim_mode and run_hotplug_scripts (both on by default) into every
    # domain; only an xl.conf that turns one off is worth a word.
    cfg = config(PV)
    assert cfg.b_info.claim_mode is True
    off = dataclasses.replace(cfg, b_info=dataclasses.replace(cfg.b_info, claim_mode=False))
    reported, _ = domain_reports(off)
    assert [r.message() for r in reported] == [
        "claim_mode (xl.conf): has no effect on a QEMU host (xenlite always reserves a "
        "domain's memory before building it)"
    ]


def test_hvm_keys_are_honoured_reported_or_refused_each() -> None:
    honoured = 'name="h"\ntype="hvm"\nvnc=1\nstdvga=1\nboot="dc"\nserial="pty"\nhdtype="ahci"\n'
    assert domain_reports(config(honoured)) == ((), ())
    reported, refused = domain_reports(config(honoured + "viridian=1\nsoundhw='hda'\n"))
    assert [r.key for r in reported] == ["viridian"]
    assert [r.key for r in refused] == ["soundhw"]


def test_boot_options_without_effect_are_reported() -> None:
    rows = boot_reports(["dom0_mem", "loglvl", "dom0_max_vcpus", "dom0_vcpus_pin", "sched"])
    assert [row.name for row in rows] == ["loglvl"]


def test_xl_conf_settings_without_effect_are_reported() -> None:
    conf = dataclasses.replace(XlConf(), lockfile="/run/x.lock", autoballoon=XlConf().autoballoon)
    assert [row.name for row in xlconf_reports(conf)] == ["lockfile"]
    assert xlconf_reports(XlConf()) == ()
