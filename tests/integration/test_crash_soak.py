"""The short kill -9 soak (issue 14): bench/crash_soak.py with 30 operations and a fixed
seed, run as it is run by hand, must lose no domain and leave no orphan of any kind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

SOAK = Path(__file__).resolve().parents[2] / "bench" / "crash_soak.py"


def test_short_soak_loses_nothing_and_leaves_nothing() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    result = subprocess.run(
        [sys.executable, str(SOAK), "--ops", "30", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(result.stdout)
    assert report["lost_domains"] == 0, report
    assert not any(report["orphans"].values()), report
    assert report["failures"] == [], report
    assert report["kills"]["xenlited"] > 0, report  # the seed does kill
    assert result.returncode == 0, result.stderr
