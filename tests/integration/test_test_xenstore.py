"""Xen's own XenStore test suite, ``test-xenstore`` (Debian's xen-utils-4.17), against the daemon.

All tests once, every test 100 times (``-i 100``) and 10 s of random mode (``-r 10``), each
against xenlite's daemon and, for reference, Debian's C xenstored. The binary and its
libraries come from ../shared/tools/xenstore-reference (``--env`` prepares them).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def test_xenstore(shared_dir: Path) -> tuple[Path, str]:
    """(path of test-xenstore, LD_LIBRARY_PATH for it)."""
    script = shared_dir / "tools" / "xenstore-reference" / "start-reference-xenstored.sh"
    if not script.exists():
        pytest.skip(f"the reference tool is not at {script}")
    result = subprocess.run(
        [str(script), "--socket", "/nonexistent/for-env-only", "--env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.skip(f"the reference packages could not be prepared: {result.stderr[-500:]}")
    env: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        env[name] = value.strip("'")
    binary = Path(env.get("XS_REF_BIN", "")) / "test-xenstore"
    if not binary.exists():
        pytest.skip(f"test-xenstore is not in the reference packages ({binary})")
    return binary, env.get("XS_REF_LD_LIBRARY_PATH", "")


@pytest.mark.parametrize(
    "args",
    [[], ["-i", "100"], ["-r", "10"]],
    ids=["all-tests", "iterations-100", "random-10s"],
)
def test_test_xenstore_passes(
    xenstored: Any, test_xenstore: tuple[Path, str], args: list[str]
) -> None:
    binary, libs = test_xenstore
    env = xenstored.env()
    env["LD_LIBRARY_PATH"] = libs + (
        ":" + os.environ["LD_LIBRARY_PATH"] if "LD_LIBRARY_PATH" in os.environ else ""
    )
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, (
        f"test-xenstore {' '.join(args)} failed ({result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    if not args:
        # Every one of the suite's tests ran and reported a time.
        for name in ("read 1", "write 1", "dir", "rm node", "rm dir", "ta empty", "ta err"):
            assert name in result.stdout
