"""xend-config.sxp: the S-expression reader, the typed model and the xl.conf translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.xend import (
    XenApiListener,
    XendConfig,
    load_xend_config,
    parse_sxp,
    parse_xend_config,
    render_sxp,
    xend_to_xlconf,
    xend_to_xlconf_text,
)
from xenlite.config.hostconf.xlconf import Autoballoon, XlConf, parse_xlconf
from xenlite.config.xlcfg.values import Atom, ListValue, Pos

# tools/examples/xend-config.sxp from the Xen tree (origin noted in the file's header).
FIXTURE = Path(__file__).parent / "data" / "xend-config.sxp"


# --- the S-expression reader -----------------------------------------------------------------


def test_sxp_atoms_strings_lists_and_positions() -> None:
    values = parse_sxp("# c\n(a 'b c' \"d\\te\" (f (g)))\n  x", "f.sxp")
    assert values == [
        ListValue(
            (
                Atom("a", Pos("f.sxp", 2, 2), quoted=False),
                Atom("b c", Pos("f.sxp", 2, 4), quoted=True),
                Atom("d\te", Pos("f.sxp", 2, 10), quoted=True),
                ListValue(
                    (
                        Atom("f", Pos("f.sxp", 2, 18), quoted=False),
                        ListValue(
                            (Atom("g", Pos("f.sxp", 2, 21), quoted=False),), Pos("f.sxp", 2, 20)
                        ),
                    ),
                    Pos("f.sxp", 2, 17),
                ),
            ),
            Pos("f.sxp", 2, 1),
        ),
        Atom("x", Pos("f.sxp", 3, 3), quoted=False),
    ]


def test_sxp_escapes_as_sxp_py() -> None:
    (value,) = parse_sxp(r"'\x41\101\n\q\'\"'")
    assert isinstance(value, Atom)
    assert value.text == "AA\n\\q'\""


def test_sxp_hash_ends_an_atom_and_starts_a_comment() -> None:
    (value,) = parse_sxp("(a#comment )\n)")
    assert isinstance(value, ListValue)
    assert [item.text for item in value.items if isinstance(item, Atom)] == ["a"]


def test_sxp_separators_end_atoms() -> None:
    (value,) = parse_sxp("(a;b c[d)")
    assert isinstance(value, ListValue)
    assert [i.text for i in value.items if isinstance(i, Atom)] == ["a", ";b", "c", "[d"]


@pytest.mark.parametrize(
    ("text", "line", "col", "needle"),
    [
        ("(a b", 1, 1, "never closed"),
        ("\n  (a (b c)\n", 2, 3, "never closed"),
        ("(a))", 1, 4, "unexpected ')'"),
        ("(a 'b)", 1, 4, "never closed"),
        ('(a "b\\', 1, 4, "never closed"),
        ("(a \x01)", 1, 4, "invalid character (code 1)"),
        ("(a '\\xZZ')", 1, 5, "\\x must be followed"),
        ("(a '\\777')", 1, 5, "above \\377"),
    ],
)
def test_sxp_errors_are_located(text: str, line: int, col: int, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sxp(text, "x.sxp")
    err = info.value
    assert (err.path, err.line, err.col) == ("x.sxp", line, col)
    assert needle in err.cause
    assert err.fix


def test_render_sxp() -> None:
    (value,) = parse_sxp("(network-script 'network-bridge netdev=eth1' '' a/b:c)")
    assert render_sxp(value) == "(network-script 'network-bridge netdev=eth1' '' a/b:c)"


# --- the model -------------------------------------------------------------------------------


def test_defaults_are_xends() -> None:
    x = parse_xend_config("", "empty.sxp")
    assert x == XendConfig(path="empty.sxp")
    assert x.xen_api_server == (XenApiListener("unix"),)
    assert x.xend_http_server is False
    assert x.xend_unix_xmlrpc_server is True
    assert x.xend_port == 8000
    assert x.xend_relocation_port == 8002
    assert x.xend_relocation_ssl_port == 8003
    assert x.xend_unix_path == "/var/lib/xend/xend-socket"
    assert x.vif_script == "vif-bridge"
    assert x.network_script is None
    assert x.dom0_min_mem == 0
    # xend: ballooning defaults to on only when dom0-min-mem is not 0.
    assert x.enable_dom0_ballooning is False
    assert x.dom0_cpus == 0
    assert x.vnc_listen == "127.0.0.1"
    assert x.vncpasswd is None
    assert x.keymap is None


def test_real_example_file() -> None:
    x = load_xend_config(FIXTURE)
    assert x.path == str(FIXTURE)
    assert [e.name for e in x.entries] == [
        "xend-relocation-server",
        "xend-relocation-hosts-allow",
        "network-script",
        "vif-script",
        "dom0-min-mem",
        "enable-dom0-ballooning",
        "total_available_memory",
        "dom0-cpus",
        "vncpasswd",
    ]
    assert x.xend_relocation_server is True
    assert x.xend_relocation_hosts_allow == ("^localhost$", "^localhost\\.localdomain$")
    assert x.network_script == "network-bridge"
    assert x.vif_script == "vif-bridge"
    assert x.dom0_min_mem == 196
    assert x.enable_dom0_ballooning is True
    assert x.total_available_memory == 0
    assert x.dom0_cpus == 0
    assert x.vncpasswd == ""
    assert x.xen_api_server == (XenApiListener("unix"),)
    entry = x.find("dom0-min-mem")
    assert entry is not None
    assert (entry.pos.line, entry.pos.col) == (209, 1)
    assert x.others == ()


def test_every_typed_setting() -> None:
    x = parse_xend_config(
        """
        (logfile /tmp/xend.log) (loglevel INFO)
        (xen-api-server ((9363 pam '^localhost$ example\\\\.com$')
                         (127.0.0.1:9367 pam '' xen-api.key xen-api.crt)
                         (unix none)))
        (xend-http-server yes) (xend-unix-server Y) (xend-tcp-xmlrpc-server on)
        (xend-unix-xmlrpc-server no) (xend-port 8001) (xend-address localhost)
        (xend-unix-path /run/xend.sock) (xend-relocation-server true)
        (xend-relocation-ssl-server t) (xend-relocation-port 9002)
        (xend-relocation-ssl-port 9003) (xend-relocation-address eth0)
        (xend-relocation-ssl 1) (network-script 'network-bridge netdev=eth1 bridge=br1')
        (vif-script vif-route) (dom0-min-mem 512) (enable-dom0-ballooning no)
        (dom0-cpus 2) (total_available_memory 4) (console-limit 2048) (enable-dump yes)
        (vnc-listen 0.0.0.0) (vncpasswd secret) (keymap de)
        (xsm_module_name flask) (pscsi-device-mask ('16:0:0:0' '15:0'))
        """,
        "all.sxp",
    )
    assert x.logfile == "/tmp/xend.log"
    assert x.loglevel == "INFO"
    assert x.xen_api_server == (
        XenApiListener("9363", "pam", ("^localhost$", "example\\.com$")),
        XenApiListener("127.0.0.1:9367", "pam", (), "xen-api.key", "xen-api.crt"),
        XenApiListener("unix", "none"),
    )
    assert [listener.port for listener in x.xen_api_server] == [9363, 9367, None]
    assert [listener.address for listener in x.xen_api_server] == ["", "127.0.0.1", ""]
    assert x.xend_http_server
    assert x.xend_unix_server
    assert x.xend_tcp_xmlrpc_server
    assert x.xend_unix_xmlrpc_server is False
    assert (x.xend_port, x.xend_address, x.xend_unix_path) == (8001, "localhost", "/run/xend.sock")
    assert x.xend_relocation_server
    assert x.xend_relocation_ssl_server
    assert x.xend_relocation_ssl
    assert (x.xend_relocation_port, x.xend_relocation_ssl_port) == (9002, 9003)
    assert x.xend_relocation_address == "eth0"
    assert x.network_script == "network-bridge netdev=eth1 bridge=br1"
    assert x.vif_script == "vif-route"
    assert (x.dom0_min_mem, x.enable_dom0_ballooning, x.dom0_cpus) == (512, False, 2)
    assert (x.total_available_memory, x.console_limit, x.enable_dump) == (4, 2048, True)
    assert (x.vnc_listen, x.vncpasswd, x.keymap) == ("0.0.0.0", "secret", "de")
    assert [e.name for e in x.others] == ["xsm_module_name", "pscsi-device-mask"]
    data = x.to_json()
    assert data["other"] == {"xsm_module_name": "flask", "pscsi-device-mask": "(16:0:0:0 15:0)"}
    assert data["xend-port"] == 8001
    assert data["xen-api-server"] == [
        {
            "endpoint": "9363",
            "auth": "pam",
            "hosts_allow": ["^localhost$", "example\\.com$"],
            "ssl_key_file": None,
            "ssl_cert_file": None,
        },
        {
            "endpoint": "127.0.0.1:9367",
            "auth": "pam",
            "hosts_allow": [],
            "ssl_key_file": "xen-api.key",
            "ssl_cert_file": "xen-api.crt",
        },
        {
            "endpoint": "unix",
            "auth": "none",
            "hosts_allow": [],
            "ssl_key_file": None,
            "ssl_cert_file": None,
        },
    ]


def test_first_occurrence_wins_as_in_xend() -> None:
    x = parse_xend_config("(dom0-min-mem 256)\n(dom0-min-mem 512)\n", "d.sxp")
    assert x.dom0_min_mem == 256
    assert x.enable_dom0_ballooning is True
    _, notes = xend_to_xlconf(x)
    assert "d.sxp:2:1: dom0-min-mem: repeated; xend used the first one, so does this" in notes


def test_value_less_string_keeps_default() -> None:
    assert parse_xend_config("(keymap)").keymap is None


@pytest.mark.parametrize(
    ("text", "line", "col", "key", "needle"),
    [
        ("(xend-http-server maybe)", 1, 19, "xend-http-server", "expected a boolean"),
        ("\n(dom0-min-mem lots)", 2, 15, "dom0-min-mem", "expected a whole number"),
        ("(dom0-min-mem 1.5)", 1, 15, "dom0-min-mem", "expected a whole number"),
        ("(xend-port)", 1, 1, "xend-port", "needs a value"),
        ("(vif-script (a b))", 1, 13, "vif-script", "is a list"),
        ("(xen-api-server unix)", 1, 17, "xen-api-server", "expected a list of listeners"),
        ("(xen-api-server (unix))", 1, 18, "xen-api-server", "expected a listener list"),
        ("(xen-api-server ((http)))", 1, 19, "xen-api-server", "invalid listener"),
        ("(xen-api-server ((99999)))", 1, 19, "xen-api-server", "out of range"),
        ("(xen-api-server ((unix kerberos)))", 1, 24, "xen-api-server", "authentication"),
        ("(enable-dom0-ballooning perhaps)", 1, 25, "enable-dom0-ballooning", "boolean"),
    ],
)
def test_bad_values_are_located(text: str, line: int, col: int, key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xend_config(text, "x.sxp")
    err = info.value
    assert (err.path, err.line, err.col, err.key) == ("x.sxp", line, col, key)
    assert needle in err.cause
    assert err.fix


@pytest.mark.parametrize(("text", "col"), [("dom0-min-mem 1", 1), ("()", 1), ("((a) b)", 2)])
def test_forms_that_are_not_settings(text: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xend_config(text, "x.sxp")
    assert (info.value.line, info.value.col) == (1, col)
    assert info.value.fix is not None


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_xend_config(tmp_path / "xend-config.sxp")
    assert info.value.path == str(tmp_path / "xend-config.sxp")
    assert "not found" in info.value.cause


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_xend_config(tmp_path)
    assert "cannot read" in info.value.cause


def test_load_latin1_file(tmp_path: Path) -> None:
    path = tmp_path / "x.sxp"
    path.write_bytes(b"(vncpasswd '\xe9t\xe9')\n")
    assert load_xend_config(path).vncpasswd == "\xe9t\xe9"


# --- translation -----------------------------------------------------------------------------


def test_example_file_translation() -> None:
    x = load_xend_config(FIXTURE)
    conf, notes = xend_to_xlconf(x)
    assert conf == XlConf(autoballoon=Autoballoon.ON, vif_default_script="vif-bridge")
    names = [note.split(": ")[1] for note in notes]
    assert names == [
        "xend-relocation-server",
        "xend-relocation-hosts-allow",
        "network-script",
        "dom0-min-mem",
        "total_available_memory",
        "dom0-cpus",
        "vncpasswd",
    ]
    assert all(note.startswith(f"{FIXTURE}:") for note in notes)
    network = notes[2]
    assert "`xenlite network-bridge start`" in network
    assert "read by xenlited from /etc/xen/xend-config.sxp" in notes[3]


def test_example_file_text_is_valid_xl_conf_with_origins() -> None:
    x = load_xend_config(FIXTURE)
    text = xend_to_xlconf_text(x)
    assert text.startswith(f"# xl.conf translated by xenlite from {FIXTURE}\n")
    assert f"# (vif-script vif-bridge) at {FIXTURE}:192\n" in text
    assert 'vif.default.script="vif-bridge"\n' in text
    assert f"# (enable-dom0-ballooning yes) at {FIXTURE}:213\n" in text
    assert 'autoballoon="on"\n' in text
    assert f"# (network-script network-bridge) at {FIXTURE}:176\n" in text
    assert "`xenlite network-bridge start`" in text
    assert f"# (dom0-min-mem 196) at {FIXTURE}:209\n" in text
    assert "xl migrate" in text
    for line in text.splitlines():
        assert line == "" or line.startswith("#") or "=" in line
        assert len(line) <= 100 or line.startswith("# (")
    conf, warnings = parse_xlconf(text, "xl.conf")
    assert warnings == []
    assert conf == xend_to_xlconf(x)[0]


def test_ballooning_off_and_bridge_from_scripts() -> None:
    x = parse_xend_config(
        "(enable-dom0-ballooning no)\n"
        "(network-script 'network-bridge netdev=eth1 bridge=br1')\n"
        "(vif-script 'vif-bridge bridge=br2')\n",
        "n.sxp",
    )
    conf, notes = xend_to_xlconf(x)
    assert conf.autoballoon is Autoballoon.OFF
    # network-script comes first in the file, so its bridge wins.
    assert conf.vif_default_bridge == "br1"
    assert conf.vif_default_script == "vif-bridge"
    assert notes == [
        "n.sxp:2:1: network-script: no xl.conf equivalent: xl never sets up host networking;"
        " create it once at host start with `xenlite network-bridge start netdev=eth1"
        " bridge=br1` (or your distribution's network configuration); its bridge= argument"
        " became vif.default.bridge"
    ]
    text = xend_to_xlconf_text(x)
    assert 'autoballoon="off"\n' in text
    assert 'vif.default.bridge="br1"\n' in text
    assert "# (vif.default.bridge is already set above; the first setting wins)\n" in text
    assert parse_xlconf(text, "xl.conf")[0] == conf


def test_empty_config_translates_to_xends_no_ballooning() -> None:
    x = parse_xend_config("", "e.sxp")
    conf, notes = xend_to_xlconf(x)
    assert conf == XlConf(autoballoon=Autoballoon.OFF)
    assert notes == []
    text = xend_to_xlconf_text(x)
    assert text.endswith('autoballoon="off"\n')
    assert parse_xlconf(text, "xl.conf")[0] == conf


def test_dom0_min_mem_alone_turns_ballooning_on() -> None:
    conf, notes = xend_to_xlconf(parse_xend_config("(dom0-min-mem 256)", "m.sxp"))
    assert conf.autoballoon is Autoballoon.ON
    assert "256 MiB" in notes[0]


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("(xen-api-server ((9363 none) (unix none)))", "XenAPI endpoint (TCP 9363, unix socket)"),
        ("(dom0-cpus 2)", "dom0_max_vcpus=2"),
        ("(vnc-listen 0.0.0.0)", "vnclisten="),
        ("(keymap de)", "keymap="),
        ("(enable-dump yes)", 'on_crash="coredump-destroy"'),
        ("(xend-http-server yes)", "xenlited"),
        ("(xend-domains-path /var/lib/xend/domains)", "/etc/xen/auto"),
        ("(logfile /var/log/x.log)", "stderr"),
        ("(xsm_module_name flask)", "not carried over"),
        ("(network-script network-route)", "`xenlite network-route start`"),
    ],
)
def test_settings_without_an_xl_conf_equivalent_say_where_they_live(
    setting: str, needle: str
) -> None:
    x = parse_xend_config(setting, "s.sxp")
    conf, notes = xend_to_xlconf(x)
    assert conf.vif_default_script is None
    assert len(notes) == 1
    assert needle in notes[0]
    assert needle.split()[0] in xend_to_xlconf_text(x)
