"""Host facts from this machine's own /proc and /sys, and a clear error where Linux's own
files cannot be read (no made-up numbers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from xenlite.base.errors import HostError
from xenlite.host import facts


def test_the_facts_of_this_host_are_plausible() -> None:
    assert facts.memory_total_kib() > 64 * 1024
    assert 0 < facts.boot_time() < time.time()
    busy = facts.per_cpu_busy_ns()
    assert 0 in busy  # CPU 0 is always online
    assert len(busy) <= (os.cpu_count() or 1)
    assert all(ns >= 0 for ns in busy.values())
    assert facts.cpu_time_ns() > 0
    assert facts.threads_per_core() >= 1
    assert facts.nr_nodes() >= 1
    assert facts.cpu_mhz() >= 0


def test_an_unreadable_proc_file_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "stat"
    monkeypatch.setattr(facts, "PROC_STAT", missing)
    with pytest.raises(HostError) as info:
        facts.boot_time()
    assert str(missing) in str(info.value)
    assert "/proc" in str(info.value.fix)
    empty = tmp_path / "meminfo"
    empty.write_text("MemFree: 1 kB\n")
    monkeypatch.setattr(facts, "PROC_MEMINFO", empty)
    with pytest.raises(HostError, match="no MemTotal line"):
        facts.memory_total_kib()
