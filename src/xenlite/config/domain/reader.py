"""Typed, located reads of xl.cfg keys and the C string helpers xl's parser leans on.

Shared by the ``domain_*`` modules that implement xl.cfg(5) as Xen 4.17's
``tools/xl/xl_parse.c`` reads it: libxlu's ``xlu_cfg_get_*`` reads, strtoul/atoi/strtok
semantics, and warnings located at file:line:col.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.xlconf import XlConf
from xenlite.config.xlcfg.grammar import XlConfig
from xenlite.config.xlcfg.values import Atom, ListValue, Pos, Setting

INT_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What parsing needs to know about the host (xl asks the hypervisor)."""

    nr_cpus: int
    nr_nodes: int = 1


def strtoul(text: str, base: int) -> tuple[int, str]:
    """C strtoul: skip blanks, optional sign, digits in ``base`` (0 = auto); rest returned."""
    s = text.lstrip(" \t\n\r\f\v")
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if base in (0, 16) and s[:2].lower() == "0x" and len(s) > 2 and _digit(s[2], 16):
        s, base = s[2:], 16
    elif base == 0:
        base = 8 if s[:1] == "0" else 10
    i = 0
    value = 0
    while i < len(s) and _digit(s[i], base):
        value = value * base + int(s[i], 16)
        i += 1
    if i == 0:
        return 0, text
    return (-value if neg else value), s[i:]


def whole_number(text: str) -> int | None:
    """``text`` as a number when xl takes it for one (strtoul base 0 reads all of it and it
    starts with a digit), for keys that accept a number or a name; None otherwise."""
    number, rest = strtoul(text, 0)
    if text and not rest and text.lstrip()[:1].isdigit():
        return number
    return None


def _digit(ch: str, base: int) -> bool:
    return ch.lower() in "0123456789abcdef"[:base]


def atoi(text: str) -> int:
    """C atoi as xl uses it: the leading decimal number, 0 when there is none."""
    value, _ = strtoul(text, 10)
    return value


def prefix_of(buf: str, word: str) -> bool:
    """xl's ``strncmp(buf, word, strlen(buf))``: any prefix of ``word`` (even "") matches."""
    return word.startswith(buf)


def split(text: str, delims: str) -> list[str]:
    """strtok: split at any of ``delims``, dropping empty pieces."""
    return [p for p in re.split("[" + re.escape(delims) + "]", text) if p]


def valid_uuid(text: str) -> str | None:
    """``text`` in lower case if it is a UUID libxl_uuid_from_string accepts, else None."""
    if re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", text):
        return text.lower()
    return None


@dataclass
class Warnings:
    """The warnings of one build, in the order xl prints them."""

    items: list[str] = field(default_factory=list)

    def add(self, pos: Pos | None, text: str) -> None:
        where = f"{pos.path}:{pos.line}:{pos.col}: " if pos is not None else ""
        self.items.append(where + text)


class KeyReader:
    """One run of parse_config_data(): the parsed file, xl.conf, the host and the warnings."""

    def __init__(self, cfg: XlConfig, xlconf: XlConf, host: HostFacts) -> None:
        self.cfg = cfg
        self.xlconf = xlconf
        self.host = host
        self.warn = Warnings()
        self.read: set[str] = set()  # the keys this run looked at, set or not

    @property
    def path(self) -> str:
        return self.cfg.path

    def setting(self, key: str) -> Setting | None:
        self.read.add(key)
        return self.cfg.find(key)

    def pos(self, key: str) -> Pos:
        return self.cfg.pos_of(key)

    def string(self, key: str) -> str | None:
        """An atom's text; a list where xl wants one value is a located error."""
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, ListValue):
            raise s.pos.error(
                "is a list but should be a single value",
                key=key,
                fix=f'write {key} = "value" without brackets',
            )
        return s.value.text

    def long(self, key: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
        self.read.add(key)
        return self.cfg.get_long(key, min=lo, max=hi)

    def defbool(self, key: str) -> bool | None:
        value = self.long(key)
        return None if value is None else value != 0

    def string_items(self, key: str) -> list[Atom] | None:
        """The atoms of a list key. xl stops at a nested list; xenlite says so instead."""
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, Atom):
            raise s.pos.error(
                "should be a list",
                key=key,
                fix=f"write {key} = [ '...', ... ]",
            )
        atoms: list[Atom] = []
        for item in s.value.items:
            if isinstance(item, ListValue):
                raise item.pos.error(
                    "a nested list is not allowed here (xl would stop reading the list "
                    "at this item, or crash)",
                    key=key,
                    fix="write each entry as a quoted string",
                )
            atoms.append(item)
        return atoms

    def string_or_list(self, key: str) -> str | list[Atom] | None:
        s = self.setting(key)
        if s is None:
            return None
        if isinstance(s.value, Atom):
            return s.value.text
        return self.string_items(key)

    def list_or_empty(self, key: str) -> list[Atom]:
        if self.setting(key) is None:
            return []
        return self.string_items(key) or []

    def fail(self, key: str, cause: str, fix: str, pos: Pos | None = None) -> ConfigError:
        return (pos or self.pos(key)).error(cause, key=key, fix=fix)

    def missing(self, key: str, cause: str, fix: str) -> ConfigError:
        """A failure for a key that is not set at all: located at the file's start."""
        return Pos(self.path, 1, 1).error(cause, key=key, fix=fix)

    def enum_value(
        self,
        key: str,
        cls: type[_E],
        text: str,
        pos: Pos | None = None,
        *,
        cause: str | None = None,
        fix: str | None = None,
    ) -> _E:
        """``text`` (any case) as a member of ``cls``; else a failure with xl's ``cause``
        (default: "invalid value") and ``fix`` (default: the list of names)."""
        try:
            return cls(text.lower())
        except ValueError:
            names = ", ".join(f'"{m.value}"' for m in cls)
            raise self.fail(
                key,
                f'invalid value "{text}" for "{key}"' if cause is None else cause,
                f"use one of {names}" if fix is None else fix,
                pos,
            ) from None
