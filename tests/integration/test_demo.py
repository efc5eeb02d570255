"""`make demo` runs `xenlite demo`: a whole private host, a real domain, a clean stop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

XENLITE = Path(sys.executable).with_name("xenlite")


@pytest.mark.qemu
@pytest.mark.slow
def test_demo_runs_a_domain_and_leaves_nothing_behind() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    before = set(Path("/tmp").glob("xldemo*"))
    result = subprocess.run([XENLITE, "demo"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "guest printed 'xenlite-guest: ready'" in out
    listing = out.split("$ xl list\n")[1]
    assert any(line.startswith("demo ") for line in listing.splitlines())
    assert "Linux version" in out  # first console lines are shown
    final_list = out.split("$ xl list\n")[2]
    assert not any(line.startswith("demo ") for line in final_list.splitlines())
    assert set(Path("/tmp").glob("xldemo*")) == before  # the private host root is removed
    leftovers = subprocess.run(
        ["pgrep", "-f", "xldemo"], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], "demo left processes running"
