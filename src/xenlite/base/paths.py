"""Per-user and host-root paths."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/xenlite`` (default ``~/.cache/xenlite``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xenlite"


def host_root() -> Path:
    """The root every host path hangs off: ``$XENLITE_ROOT``, default ``/``.

    Tests and benchmarks run several independent hosts on one machine this way.
    """
    return Path(os.environ.get("XENLITE_ROOT") or "/")


def under_root(path: str, root: Path | None = None) -> Path:
    """``path`` (absolute, as on a real Xen host) placed under the host root."""
    base = host_root() if root is None else root
    return base / path.lstrip("/")
