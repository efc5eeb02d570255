"""xl.conf(5): defaults, every option, warnings, errors with their location, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.xlconf import (
    DEFAULT_XLCONF_PATH,
    Autoballoon,
    DomidPolicy,
    OutputFormat,
    XlConf,
    cmdline_sets_dom0_mem,
    load_xlconf,
    load_xlconf_with_warnings,
    parse_xlconf,
    resolve_autoballoon,
)


def test_defaults_are_xls_builtin_ones() -> None:
    conf = XlConf()
    assert conf.autoballoon is Autoballoon.AUTO
    assert conf.run_hotplug_scripts is True
    assert conf.lockfile == "/var/lock/xl"
    assert conf.vif_default_script is None
    assert conf.vif_default_bridge is None
    assert conf.vif_default_backend is None
    assert conf.vif_default_gatewaydev is None
    assert conf.output_format == "json"
    assert conf.blkdev_start == "xvda"
    assert conf.claim_mode is True
    assert conf.bootloader_restrict is False
    assert conf.max_grant_frames is None
    assert conf.max_maptrack_frames is None
    assert conf.max_grant_version is None
    assert conf.vm_cpumask is None
    assert conf.vm_pv_cpumask is None
    assert conf.vm_hvm_cpumask is None
    assert conf.domid_policy == "xen"
    assert conf.render() == ""
    assert DEFAULT_XLCONF_PATH == "/etc/xen/xl.conf"


def test_empty_file_gives_defaults() -> None:
    assert parse_xlconf("", "xl.conf") == (XlConf(), [])
    assert parse_xlconf("# only a comment\n", "xl.conf") == (XlConf(), [])


FULL = """\
autoballoon="off"
run_hotplug_scripts=0
lockfile="/run/xl.lock"
vif.default.script="vif-route"
vif.default.bridge="br0"
vif.default.backend="netdom"
vif.default.gatewaydev="eth1"
remus.default.netbufscript="/etc/xen/scripts/remus-netbuf-setup"
colo.default.proxyscript="/etc/xen/scripts/colo-proxy-setup"
output_format="sxp"
blkdev_start="xvdb"
claim_mode=0
bootloader_restrict=1
max_grant_frames=64
max_maptrack_frames=1024
max_grant_version=1
vm.cpumask="0-3"
vm.pv.cpumask="0,1"
vm.hvm.cpumask="2-3"
domid_policy="random"
"""


def test_every_option_with_exact_values() -> None:
    conf, warnings = parse_xlconf(FULL, "/etc/xen/xl.conf")
    assert warnings == []
    assert conf == XlConf(
        autoballoon=Autoballoon.OFF,
        run_hotplug_scripts=False,
        lockfile="/run/xl.lock",
        vif_default_script="vif-route",
        vif_default_bridge="br0",
        vif_default_backend="netdom",
        vif_default_gatewaydev="eth1",
        remus_default_netbufscript="/etc/xen/scripts/remus-netbuf-setup",
        colo_default_proxyscript="/etc/xen/scripts/colo-proxy-setup",
        output_format=OutputFormat.SXP,
        blkdev_start="xvdb",
        claim_mode=False,
        bootloader_restrict=True,
        max_grant_frames=64,
        max_maptrack_frames=1024,
        max_grant_version=1,
        vm_cpumask="0-3",
        vm_pv_cpumask="0,1",
        vm_hvm_cpumask="2-3",
        domid_policy=DomidPolicy.RANDOM,
    )


def test_render_round_trips_every_option() -> None:
    conf, _ = parse_xlconf(FULL, "a.conf")
    text = conf.render()
    assert 'autoballoon="off"\n' in text
    assert "max_grant_frames=64\n" in text
    assert "claim_mode=0\n" in text
    assert parse_xlconf(text, "b.conf") == (conf, [])


def test_render_escapes_quotes_and_backslashes() -> None:
    conf = XlConf(lockfile='/tmp/a"b\\c')
    assert conf.render() == 'lockfile="/tmp/a\\"b\\\\c"\n'
    assert parse_xlconf(conf.render(), "x")[0] == conf


def test_to_json_uses_xl_conf_keys() -> None:
    data = XlConf(vif_default_bridge="br0").to_json()
    assert data["autoballoon"] == "auto"
    assert data["vif.default.bridge"] == "br0"
    assert data["vm.hvm.cpumask"] is None
    assert data["output_format"] == "json"
    assert len(data) == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('autoballoon="on"', Autoballoon.ON),
        ('autoballoon="off"', Autoballoon.OFF),
        ('autoballoon="auto"', Autoballoon.AUTO),
        ('autoballoon="1"', Autoballoon.ON),
        ('autoballoon="0"', Autoballoon.OFF),
        ("autoballoon=1", Autoballoon.ON),
        ("autoballoon=0", Autoballoon.OFF),
    ],
)
def test_autoballoon_spellings(text: str, expected: Autoballoon) -> None:
    assert parse_xlconf(text + "\n", "xl.conf")[0].autoballoon is expected


def test_booleans_are_numbers_any_nonzero_is_true() -> None:
    conf, _ = parse_xlconf("claim_mode=2\nrun_hotplug_scripts=0x0\n", "xl.conf")
    assert conf.claim_mode is True
    assert conf.run_hotplug_scripts is False


def test_bad_autoballoon_is_located_with_valid_values() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf('lockfile="/x"\nautoballoon="maybe"\n', "/etc/xen/xl.conf")
    err = info.value
    assert err.path == "/etc/xen/xl.conf"
    assert err.line == 2
    assert err.col == 13
    assert err.key == "autoballoon"
    assert "'maybe'" in err.cause
    assert err.fix is not None
    for valid in ('"off"', '"on"', '"auto"'):
        assert valid in err.fix


def test_bad_claim_mode_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf('claim_mode="x"\n', "xl.conf")
    assert (info.value.path, info.value.line, info.value.key) == ("xl.conf", 1, "claim_mode")
    assert info.value.fix is not None


@pytest.mark.parametrize(
    ("text", "key", "valid"),
    [
        ('output_format="xml"', "output_format", '"json", "sxp"'),
        ('domid_policy="sequential"', "domid_policy", '"xen", "random"'),
    ],
)
def test_bad_choices_list_the_valid_values(text: str, key: str, valid: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf(text + "\n", "xl.conf")
    assert info.value.key == key
    assert info.value.line == 1
    assert info.value.fix == f"use one of {valid}"


@pytest.mark.parametrize(
    "text",
    ["max_grant_version=3", "max_grant_version=0", "max_grant_frames=0x100000000"],
)
def test_out_of_range_numbers(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf(text + "\n", "xl.conf")
    assert info.value.line == 1
    assert info.value.key == text.split("=")[0]


def test_list_where_a_string_is_expected() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf('lockfile=["a"]\n', "xl.conf")
    assert info.value.key == "lockfile"


def test_deprecated_keys_warn_and_new_names_win() -> None:
    text = 'vif.default.script="new"\nvifscript="old"\ndefaultbridge="xenbr1"\n'
    conf, warnings = parse_xlconf(text, "xl.conf")
    assert conf.vif_default_script == "new"
    assert conf.vif_default_bridge == "xenbr1"
    assert warnings == [
        "xl.conf:2:1: vifscript: the global config option vifscript is deprecated, "
        "please switch to vif.default.script",
        "xl.conf:3:1: defaultbridge: the global config option defaultbridge is deprecated, "
        "please switch to vif.default.bridge",
    ]


def test_unknown_keys_are_warnings_with_location() -> None:
    conf, warnings = parse_xlconf('\nautoballon="off"\n', "xl.conf")
    assert conf == XlConf()
    assert len(warnings) == 1
    assert warnings[0].startswith("xl.conf:2:1: autoballon: unknown xl.conf option, ignored")


def test_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xlconf('autoballoon = "off\n', "xl.conf")
    assert info.value.path == "xl.conf"
    assert info.value.line == 1


def test_load_missing_default_file_gives_defaults(tmp_path: Path) -> None:
    assert load_xlconf(root=tmp_path) == XlConf()
    assert load_xlconf_with_warnings(root=tmp_path) == (XlConf(), [])


def test_load_default_file_under_root(tmp_path: Path) -> None:
    conf_file = tmp_path / "etc" / "xen" / "xl.conf"
    conf_file.parent.mkdir(parents=True)
    conf_file.write_text('autoballoon="off"\nfoo=1\n')
    conf, warnings = load_xlconf_with_warnings(root=tmp_path)
    assert conf.autoballoon is Autoballoon.OFF
    assert warnings == [
        f"{conf_file}:2:1: foo: unknown xl.conf option, ignored "
        "(see xl.conf(5) for the valid options)"
    ]


def test_load_explicit_path(tmp_path: Path) -> None:
    path = tmp_path / "xl.conf"
    path.write_text('blkdev_start="xvdz"\n')
    assert load_xlconf(path).blkdev_start == "xvdz"
    assert load_xlconf(str(path)).blkdev_start == "xvdz"


def test_load_explicit_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    with pytest.raises(ConfigError) as info:
        load_xlconf(missing)
    assert info.value.path == str(missing)
    assert "not found" in info.value.cause
    assert info.value.fix is not None


def test_load_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_xlconf(tmp_path)
    assert info.value.path == str(tmp_path)
    assert "cannot read" in info.value.cause


@pytest.mark.parametrize(
    ("mode", "dom0_mem_set", "expected"),
    [
        (Autoballoon.ON, True, True),
        (Autoballoon.ON, False, True),
        (Autoballoon.OFF, True, False),
        (Autoballoon.OFF, False, False),
        (Autoballoon.AUTO, True, False),
        (Autoballoon.AUTO, False, True),
    ],
)
def test_resolve_autoballoon(mode: Autoballoon, dom0_mem_set: bool, expected: bool) -> None:
    assert resolve_autoballoon(XlConf(autoballoon=mode), dom0_mem_set) is expected


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("dom0_mem=512M", True),
        ("noreboot dom0_mem=1G", True),
        ("dom0_mem=512M,max:1G dom0_max_vcpus=1", True),
        ("dom0_mem=min:512M", True),
        ("dom0_mem=131072", True),
        # xl's regex only knows non-negative amounts: "all but 1G" leaves auto on.
        ("dom0_mem=-1G", False),
        ("dom0_mem=1G+25%", False),
        ("xdom0_mem=1G", False),
        ("dom0_max_vcpus=1", False),
        ("", False),
    ],
)
def test_cmdline_sets_dom0_mem_as_xl_tests_it(cmdline: str, expected: bool) -> None:
    assert cmdline_sets_dom0_mem(cmdline) is expected
