"""Shared test helpers: where ../shared lives, and an honest skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XENLITE_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared tree (corpus, oracles, specs); skips the test when it is absent."""
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"../shared is not present at {SHARED} (set XENLITE_SHARED)")
    return SHARED
