"""The xl command line as a user meets it: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

XL = Path(sys.executable).with_name("xl")
XENLITE = Path(sys.executable).with_name("xenlite")


def run(*args: str, program: Path = XL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], capture_output=True, text=True, timeout=60)


def test_version_names_xenlite_and_xen_formats() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("xenlite ")
    assert "Xen 4.17" in result.stdout


def test_help_lists_subcommands_in_xl_layout() -> None:
    result = run("help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage xl [-vfNtT] <subcommand> [args]"
    assert " create              Create a domain from config file <filename>" in lines


def test_xenlite_and_xl_are_the_same_program() -> None:
    as_xenlite = run("help", program=XENLITE).stdout.splitlines()
    as_xl = run("help").stdout.splitlines()
    assert as_xenlite[0] == "Usage xenlite [-vfNtT] <subcommand> [args]"
    assert [line for line in as_xenlite if line.startswith(" ")] == [
        line for line in as_xl if line.startswith(" ")
    ]


def test_help_for_a_verb_shows_usage_and_options() -> None:
    result = run("help", "create")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: xl [-vfN] create <ConfigFile> [options] [vars]\n")
    assert "-n, --dryrun" in result.stdout


def test_an_xl_verb_not_yet_provided_says_so_honestly() -> None:
    result = run("pci-list")
    assert result.returncode == 1
    assert "does not provide yet" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_verb_and_bad_global_option_fail() -> None:
    unknown = run("frobnicate")
    assert unknown.returncode == 1
    assert "command not implemented: frobnicate" in unknown.stderr
    bad = run("-Q", "help")
    assert bad.returncode == 1
    assert "invalid option -- 'Q'" in bad.stderr


def test_create_without_a_file_is_a_usage_error() -> None:
    result = run("create")
    assert result.returncode == 1
    assert "no config file given" in result.stderr
    assert "fix:" in result.stderr


@pytest.mark.parametrize("verb", ["help", "guest-kit", "config", "demo"])
def test_dryrun_flag_is_refused_where_xl_refuses_it(verb: str) -> None:
    result = run("-N", verb)
    assert result.returncode == 1
    assert "does not support dry-run" in result.stderr


def test_config_settings_prints_the_table_and_single_rows() -> None:
    result = run("config", "settings", "tsc_mode", "cpus", program=XENLITE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SETTING", "SOURCE", "TREATMENT", "WHY", "/", "HONOURED", "BY"]
    # Rows in the table's order.
    assert lines[1].split()[:3] == ["cpus", "xl.cfg", "engine"]
    assert "DomainResources._place_vcpus" in lines[1]
    assert lines[2].split()[:3] == ["tsc_mode", "xl.cfg", "xen-only"]
    rows = json.loads(run("config", "settings", "--json", program=XENLITE).stdout)
    pool = next(row for row in rows if row["name"] == "pool")
    assert (pool["source"], pool["treatment"], pool["fields"]) == (
        "xl.cfg",
        "engine",
        ["c_info.pool_name"],
    )
    missing = run("config", "settings", "no_such_key", program=XENLITE)
    assert missing.returncode != 0
    assert "no setting is called 'no_such_key'" in missing.stderr
