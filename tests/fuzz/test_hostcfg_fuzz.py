"""Fuzz the host configuration readers: any text gives a model or a ConfigError, nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.bootopts import (
    KNOWN_OPTIONS,
    XenBootOptions,
    parse_xen_cmdline,
    read_grub_default,
    resolve_dom0_mem,
    resolve_dom0_vcpus,
)
from xenlite.config.hostconf.xend import parse_xend_config, xend_to_xlconf_text
from xenlite.config.hostconf.xlconf import XlConf, parse_xlconf


def _check_path(exc: ConfigError, path: str) -> None:
    """A user-facing error names its file and says how to fix it."""
    assert exc.path == path
    assert exc.fix


def _check_located(exc: ConfigError, path: str) -> None:
    _check_path(exc, path)
    assert exc.line is not None
    assert exc.line >= 1


def _pieces(alphabet: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    """Text joined from pieces biased towards a grammar's interesting tokens."""
    return st.lists(alphabet, max_size=max_size).map("".join)


_CMDLINE_ALPHABET = st.sampled_from(
    [*"0123456789abcdefgkmtxGKMTB%+-,:=/ _.\n", "no-", "min:", "max:", "com1"]
)
_cmdline_words = st.lists(
    st.one_of(
        st.sampled_from(sorted(KNOWN_OPTIONS)).flatmap(
            lambda name: _pieces(_CMDLINE_ALPHABET, 20).map(lambda v: f"{name}={v}")
        ),
        _pieces(_CMDLINE_ALPHABET, 20),
        st.text(max_size=10),
    ),
    max_size=6,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_cmdline_words)
def test_xen_cmdline_only_raises_config_error(text: str) -> None:
    try:
        opts = parse_xen_cmdline(text)
    except ConfigError as exc:
        _check_located(exc, "<xen command line>")
        return
    assert isinstance(opts, XenBootOptions)
    kib = resolve_dom0_mem(opts, 8 * 1024 * 1024)
    assert 0 <= kib <= 8 * 1024 * 1024
    assert resolve_dom0_vcpus(opts, 4) >= 1
    assert isinstance(opts.to_json(), dict)


_SXP_ALPHABET = st.sampled_from([*"()'\"\\#;[] \n\tabx0179-:", "(dom0-min-mem ", "yes"])


@settings(max_examples=200, deadline=None)
@given(st.one_of(_pieces(_SXP_ALPHABET, 60), st.text(max_size=40)))
def test_xend_config_only_raises_config_error(text: str) -> None:
    try:
        x = parse_xend_config(text, "fuzz.sxp")
    except ConfigError as exc:
        _check_located(exc, "fuzz.sxp")
        return
    translated = xend_to_xlconf_text(x)
    assert translated.endswith("\n")


_XLCONF_ALPHABET = st.sampled_from(
    [*"=\"'[],;#\n 0123456789xabc.", "autoballoon", "claim_mode", "vif.default.script"]
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_pieces(_XLCONF_ALPHABET, 60), st.text(max_size=40)))
def test_xlconf_only_raises_config_error(text: str) -> None:
    try:
        conf, warnings = parse_xlconf(text, "fuzz.conf")
    except ConfigError as exc:
        _check_located(exc, "fuzz.conf")
        return
    assert isinstance(conf, XlConf)
    assert all(w.startswith("fuzz.conf:") for w in warnings)


_SHELL_ALPHABET = st.sampled_from(
    [*"\"'\\$`(){}#;&|=+- \n:", "GRUB_CMDLINE_XEN=", "${", "$(", "export ", "x"]
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_pieces(_SHELL_ALPHABET, 40), st.text(max_size=30)))
def test_grub_reader_only_raises_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grub"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            line = read_grub_default(path)
        except ConfigError as exc:
            _check_path(exc, str(path))
            return
    assert isinstance(line, str)
