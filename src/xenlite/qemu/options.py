"""QEMU's ``key=value,...`` option lists: how a value is spelled inside one."""

from __future__ import annotations

import os


def opt(value: str | os.PathLike[str]) -> str:
    """``value`` escaped for a QEMU ``key=value,...`` option list (``,`` -> ``,,``)."""
    return os.fspath(value).replace(",", ",,")


__all__ = ["opt"]
