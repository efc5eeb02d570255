"""Every xl.cfg of the real-world corpus parses exactly as Xen 4.17's libxlutil parses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.xlcfg.grammar import ConfigSyntaxError, XlConfig, parse, parse_file
from xenlite.config.xlcfg.values import Atom, ListValue

pytestmark = pytest.mark.shared

# libxlu's report lines: "FILE:LINE: config parsing error near ...: CAUSE".
_REPORT_LINE = re.compile(r"^[^\n]*?:(\d+): config parsing error near (.*)$", re.MULTILINE)


def _plain(value: Atom | ListValue) -> object:
    if isinstance(value, Atom):
        return value.text
    return [_plain(item) for item in value.items]


def _corpus(shared_dir: Path) -> list[tuple[Path, dict[str, object]]]:
    files = []
    for path in sorted((shared_dir / "corpus" / "xlcfg").iterdir()):
        expected = shared_dir / "corpus" / "expected" / "xlcfg" / f"{path.name}.json"
        data = json.loads(expected.read_text())
        files.append((path, data["libxlutil"]))
    assert len(files) >= 50, "the corpus holds the xl.cfg files"
    return files


def _check_accepted(cfg: XlConfig, expected: dict[str, object]) -> list[str]:
    problems = []
    keys = expected["keys"]
    assert isinstance(keys, dict)
    if sorted(cfg.keys()) != sorted(keys):
        problems.append(f"keys {cfg.keys()} != {list(keys)}")
    for name, want in keys.items():
        setting = cfg.find(name)
        if setting is None:
            continue
        if _plain(setting.value) != want["value"]:
            problems.append(f"{name}: {_plain(setting.value)!r} != {want['value']!r}")
        if want["type"] != "string":
            continue
        if "long" in want:
            if cfg.get_long(name) != want["long"]:
                problems.append(f"{name}: long {cfg.get_long(name)} != {want['long']}")
        else:
            # no long: EINVAL or ERANGE in libxlu, a located ConfigError here
            with pytest.raises(ConfigError) as info:
                cfg.get_long(name)
            if want.get("long_error") == "ERANGE" and "out of range" not in info.value.cause:
                problems.append(f"{name}: expected an out-of-range error: {info.value}")
    settings = [(s.name, s.op, s.pos.line) for s in cfg.settings]
    want_settings = [(s["name"], s["op"], s["line"]) for s in expected["settings"]]  # type: ignore[attr-defined]
    if settings != want_settings:
        problems.append(f"settings {settings} != {want_settings}")
    return problems


def test_corpus_accepted_files_match_libxlutil(shared_dir: Path) -> None:
    checked = 0
    problems: dict[str, list[str]] = {}
    for path, expected in _corpus(shared_dir):
        if expected["rc"] != 0:
            continue
        found = _check_accepted(parse_file(path), expected)
        if found:
            problems[path.name] = found
        checked += 1
    assert checked >= 40
    assert problems == {}


def test_corpus_rejected_files_fail_on_libxlus_line(shared_dir: Path) -> None:
    checked = 0
    for path, expected in _corpus(shared_dir):
        if expected["rc"] == 0:
            continue
        report = expected["report"]
        assert isinstance(report, str)
        lines = [int(m.group(1)) for m in _REPORT_LINE.finditer(report)]
        with pytest.raises(ConfigSyntaxError) as info:
            parse_file(path)
        err = info.value
        assert err.path == str(path)
        assert err.line == lines[0], (path.name, str(err))
        assert err.col is not None
        assert err.fix, path.name
        # libxlu's further reports too (none of these is at a newline, where libxlu's
        # line number is one too small)
        assert [err.line] + [e.line for e in err.more] == lines, path.name
        python = "looks like it contains Python code" in report
        if python:
            assert "Python" in err.cause or "comment without a newline" in err.cause, str(err)
        checked += 1
    assert checked >= 8


def test_corpus_comment_on_last_line_says_how_to_fix(shared_dir: Path) -> None:
    path = shared_dir / "corpus" / "xlcfg" / "Babrakov_xen__infoza.cfg"
    with pytest.raises(ConfigSyntaxError) as info:
        parse_file(path)
    err = info.value
    assert (err.line, err.col) == (26, 1)
    assert "comment without a newline" in err.cause
    assert err.fix == "add a newline at the end of the file"


def test_corpus_xl_conf_with_every_setting_enabled(shared_dir: Path) -> None:
    # Xen's example xl.conf with its commented-out defaults switched on (libxlutil accepts
    # this text and returns these keys, dotted ones included: checked with the oracle).
    example = shared_dir / "corpus" / "xlcfg" / "xen-project_xen__tools_examples_xl.conf"
    text = re.sub(r"(?m)^#([a-z][a-z._]*=)", r"\1", example.read_text())
    cfg = parse(text, "xl.conf")
    assert cfg.keys() == [
        "domid_policy",
        "autoballoon",
        "lockfile",
        "output_format",
        "blkdev_start",
        "run_hotplug_scripts",
        "vif.default.backend",
        "vif.default.gatewaydev",
        "vif.default.script",
        "vif.default.bridge",
        "claim_mode",
        "vm.cpumask",
        "vm.pv.cpumask",
        "vm.hvm.cpumask",
    ]
    assert cfg.get_string("vif.default.bridge") == "xenbr0"
    assert cfg.get_long("run_hotplug_scripts") == 1
