"""``xenlite xenstore-*``: option parsing, escaping and messages as xenstore-utils 4.17 has them.

Outputs against live daemons are compared byte for byte in
tests/integration/test_xenstore_utils_compat.py; these need no daemon.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.cli.commands.xenstore import gnu_getopt, sanitise_value, unsanitise_value

XENLITE = Path(sys.executable).with_name("xenlite")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XENLITE), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_getopt_reports_like_glibc() -> None:
    messages: list[str] = []
    opts, operands = gnu_getopt(
        "xenstore-read",
        ["-p", "/a", "-x", "--r", "--pre", "--socket", "--prefix=1", "--", "-q"],
        messages.append,
    )
    assert operands == ["/a", "-q"]
    assert opts == [("p", ""), ("?", ""), ("?", ""), ("p", ""), ("?", ""), ("?", "")]
    assert messages == [
        "xenstore-read: invalid option -- 'x'",
        "xenstore-read: option '--r' is ambiguous; possibilities: '--recurse' '--raw'",
        "xenstore-read: unrecognized option '--socket'",
        "xenstore-read: option '--prefix' doesn't allow an argument",
    ]
    messages.clear()
    assert gnu_getopt("xenstore-watch", ["-n"], messages.append) == ([("?", "")], [])
    assert messages == ["xenstore-watch: option requires an argument -- 'n'"]
    assert gnu_getopt("w", ["-n5", "--number", "7", "k"], messages.append)[0] == [
        ("n", "5"),
        ("n", "7"),
    ]


def test_sanitise_matches_xenstore_client_c() -> None:
    assert sanitise_value(b"plain text~") == b"plain text~"
    assert sanitise_value(b"\t\n\r\\") == b"\\t\\n\\r\\\\"
    assert sanitise_value(b"\x00\x07\x08\x7f\xff") == b"\\000\\007\\x08\\x7f\\xff"


def test_unsanitise_matches_xenstore_client_c_edges() -> None:
    assert unsanitise_value(b"a\\x4") == b"a\x04"
    assert unsanitise_value(b"\\x zz") == b"x zz"
    assert unsanitise_value(b"tr\\") == b"tr\x00"
    assert unsanitise_value(b"\\777\\9\\q") == b"\xff9q"
    assert unsanitise_value(b"\\t\\n\\r\\\\\\101") == b"\t\n\r\\A"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_unsanitise_inverts_sanitise(value: bytes) -> None:
    assert unsanitise_value(sanitise_value(value)) == value


@pytest.mark.parametrize(
    ("tool", "usage"),
    [
        ("read", "[-h] [-p] [-s] [-R] key [...]"),
        ("write", "[-h] [-s] [-R] key value [...]"),
        ("rm", "[-h] [-s] [-t] key [...]"),
        ("list", "[-h] [-p] [-s] key [...]"),
        ("ls", "[-h] [-f] [-p] [-s] [path]"),
        ("exists", "[-h] [-p] [-s] key [...]"),
        ("chmod", "[-h] [-u] [-r] [-s] key <mode [modes...]>"),
        ("watch", "[-h] [-n NR] key"),
    ],
)
def test_help_and_wrong_options_print_the_tools_usage(tool: str, usage: str) -> None:
    expected = f"xenstore-{tool}: Usage: xenstore-{tool} {usage}\n"
    for args in (["-h"], ["-t" if tool != "rm" else "-p", "/x"]):
        result = run(f"xenstore-{tool}", *args)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", expected)


def test_missing_daemon_is_reported_without_traceback(tmp_path: Path) -> None:
    env = {"XENSTORED_PATH": str(tmp_path / "nothing.sock"), "PATH": "/usr/bin:/bin"}
    result = run("xenstore-read", "/a", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("xenstore-read: xs_open: No such file or directory")
    assert "fix: start the daemon" in result.stderr
    assert "Traceback" not in result.stderr


def test_write_needs_pairs() -> None:
    result = run("xenstore-write", "/a")
    assert result.returncode == 1
    assert "Usage: xenstore-write" in result.stderr
