"""Crash points: inert unless named, fatal (SIGKILL) where named, and a typo is an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from xenlite.base.crashpoint import ENV, POINTS, crash_point


def test_unset_is_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    for point in POINTS:
        crash_point(point)


def test_another_point_is_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "create:record-saved")
    crash_point("destroy:dying-saved")


def test_an_unknown_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "create:recrod-saved")
    with pytest.raises(ValueError, match="names no crash point"):
        crash_point("create:record-saved")


def test_the_named_point_kills_the_process() -> None:
    code = (
        "from xenlite.base.crashpoint import crash_point as c; c('create:introduced'); print('x')"
    )
    env = dict(os.environ, **{ENV: "create:introduced"})
    result = subprocess.run(
        [sys.executable, "-c", code + "; print('lived')"], env=env, capture_output=True, timeout=30
    )
    assert result.returncode == -signal.SIGKILL
    assert result.stdout == b""
