"""Source positions and the value tree of an xl.cfg file (libxlu's XLU_ConfigValue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xenlite.base.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Pos:
    """Where something was written: file (or ``<command line>``), 1-based line and column."""

    path: str
    line: int
    col: int

    def error(self, cause: str, *, key: str | None = None, fix: str | None = None) -> ConfigError:
        """A ConfigError located here."""
        return ConfigError(cause, path=self.path, line=self.line, col=self.col, key=key, fix=fix)


@dataclass(frozen=True, slots=True)
class Atom:
    """A single value. libxlu keeps numbers as their text too; ``quoted`` tells them apart."""

    text: str
    pos: Pos
    quoted: bool = True


@dataclass(frozen=True, slots=True)
class ListValue:
    """A ``[ ... ]`` list; items may be atoms or nested lists."""

    items: tuple[Value, ...]
    pos: Pos


Value = Atom | ListValue

Operator = Literal["=", "+="]


@dataclass(frozen=True, slots=True)
class Setting:
    """One assignment. ``value`` is already the effective value after ``+=`` joining."""

    name: str
    op: Operator
    value: Value
    pos: Pos
