"""Debian's xenstore-utils against xenlite's daemon, and ``xenlite xenstore-*`` against the tools.

Each scenario step runs twice on the same daemon: with the real tool under /real and with
``xenlite xenstore-<tool>`` under /ours; stdout, stderr and the exit status must be byte for
byte the same once the prefix is swapped. The real tools' transcript is also compared between
xenlite's daemon and the reference C xenstored.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

XENLITE = Path(sys.executable).with_name("xenlite")
pytestmark = pytest.mark.slow

LONG = "v" * 120
# (tool, args) with {P} for the prefix. Covers every tool, its options, escapes and errors.
SCENARIO: list[tuple[str, list[str]]] = [
    ("write", ["{P}/a", "hello", "{P}/b/x", "tab\\there", "{P}/b/y", "nul\\000x"]),
    ("write", ["{P}/bin", "\\x01\\x7f\\xff\\\\", "{P}/empty", "", "{P}/long", LONG]),
    ("write", ["{P}/esc", "a\\x4", "{P}/esc2", "\\777\\9\\q", "{P}/trail", "tr\\"]),
    ("write", ["-R", "{P}/raw", "a\\n"]),
    ("write", ["-s", "{P}/deep/er/est/leaf", "x"]),
    ("read", ["{P}/a"]),
    ("read", ["{P}/a", "{P}/b/x", "{P}/b/y", "{P}/bin", "{P}/esc", "{P}/esc2", "{P}/trail"]),
    ("read", ["-p", "{P}/a", "{P}/raw"]),
    ("read", ["-R", "{P}/b/y"]),
    ("read", ["-Rp", "{P}/b/x", "{P}/a"]),
    ("read", ["{P}/a", "{P}/missing", "{P}/b/x"]),
    ("read", ["--pre", "{P}/a"]),
    ("read", ["-x", "{P}/a"]),
    ("read", ["--r", "{P}/a"]),
    ("read", ["--prefix=1", "{P}/a"]),
    ("read", ["-h"]),
    ("read", []),
    ("list", ["{P}"]),
    ("list", ["-p", "{P}", "{P}/b"]),
    ("list", ["{P}/missing"]),
    ("list", ["-t", "{P}"]),
    ("exists", ["{P}/a"]),
    ("exists", ["{P}/a", "{P}/missing"]),
    ("exists", ["-p", "{P}/a"]),
    ("ls", ["{P}"]),
    ("ls", ["-p", "{P}"]),
    ("ls", ["-f", "{P}"]),
    ("ls", ["-fp", "{P}"]),
    ("ls", ["{P}/missing"]),
    ("ls", ["{P}/b", "{P}/deep"]),
    ("chmod", ["{P}/b", "b0", "r5", "w3"]),
    ("chmod", ["-u", "-r", "{P}/deep/er", "n0", "r7"]),
    ("chmod", ["{P}/a", "r-1", "n5x"]),
    ("chmod", ["{P}/missing", "n0"]),
    ("chmod", ["{P}/a", "x1"]),
    ("chmod", ["{P}/a"]),
    ("ls", ["-p", "{P}"]),
    ("rm", ["{P}/missing/deeper"]),
    ("rm", ["-t", "{P}/deep/er/est/leaf"]),
    ("rm", ["{P}/b/x", "{P}/bin"]),
    ("ls", ["{P}"]),
    ("watch", ["-n", "1", "{P}"]),
    ("watch", ["--number=2", "{P}/a", "{P}/empty"]),
    ("watch", ["-n"]),
    ("write", ["{P}/odd"]),
]


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    result = subprocess.run(argv, capture_output=True, env=env, timeout=30, check=False)
    return result.returncode, result.stdout, result.stderr


def _transcript(
    tools: dict[str, str], daemon: Any, prefix: str, *, ours: bool
) -> list[tuple[str, int, bytes, bytes]]:
    env = daemon.env()
    lines = []
    for tool, args in SCENARIO:
        real_args = [a.replace("{P}", prefix) for a in args]
        if ours:
            argv = [str(XENLITE), f"xenstore-{tool}", *real_args]
        else:
            argv = [tools[tool], *real_args]
        rc, out, err = _run(argv, env)
        # Messages name the program: make both spell it as the installed tool does.
        err = err.replace(tools[tool].encode(), f"xenstore-{tool}".encode())
        lines.append(
            (
                f"{tool} {' '.join(args)}",
                rc,
                out.replace(prefix.encode(), b"{P}"),
                err.replace(prefix.encode(), b"{P}"),
            )
        )
    return lines


def _assert_same(expected: list[Any], got: list[Any]) -> None:
    for want, have in zip(expected, got, strict=True):
        assert have == want, f"step '{want[0]}' differs"


def test_xenlite_tools_match_xenstore_utils(xenstored: Any, xenstore_utils: dict[str, str]) -> None:
    real = _transcript(xenstore_utils, xenstored, "/real", ours=False)
    ours = _transcript(xenstore_utils, xenstored, "/ours", ours=True)
    _assert_same(real, ours)
    # The scenario really exercised the daemon: values, errors and perms show up.
    by_step = {step: (rc, out, err) for step, rc, out, err in real}
    assert by_step["read {P}/a"] == (0, b"hello\n", b"")
    assert by_step["read -R {P}/b/y"][1] == b"nul\0x"
    assert b"(n0,r7)" in by_step["ls -p {P}"][1]
    assert by_step["exists {P}/a {P}/missing"][0] == 1


def test_xenstore_utils_see_the_same_on_both_daemons(
    xenlite_xenstored: Any, reference_xenstored: Any, xenstore_utils: dict[str, str]
) -> None:
    on_xenlite = _transcript(xenstore_utils, xenlite_xenstored, "/t", ours=False)
    on_reference = _transcript(xenstore_utils, reference_xenstored, "/t", ours=False)
    _assert_same(on_reference, on_xenlite)


@pytest.mark.parametrize("columns", [0, 30, 60, 100])
def test_ls_width_on_a_terminal(
    xenstored: Any, xenstore_utils: dict[str, str], tmp_path: Path, columns: int
) -> None:
    """xenstore-ls cuts lines to the terminal's width - 2 (run under a pty via script(1))."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("script(1) (bsdutils) is needed to give the tools a terminal")
    env = xenstored.env()
    _run(
        [xenstore_utils["write"], "/w/name-that-is-rather-long", LONG, "/w/short", "x"],
        env,
    )
    outputs = []
    for argv in ([xenstore_utils["ls"]], [str(XENLITE), "xenstore-ls"]):
        for flags in ("", "-p", "-f", "-fp"):
            cmd = f"stty cols {columns}; {' '.join(argv)} {flags} /w"
            rc, out, _ = _run([script, "-qc", cmd, "/dev/null"], env)
            assert rc == 0
            outputs.append(out)
    assert outputs[:4] == outputs[4:]
    if columns == 30:
        assert b'\\..."' in outputs[0]
