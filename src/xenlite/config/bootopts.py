"""The Xen hypervisor command line (dom0_mem=, sched=, loglvl=, ...) as a typed model.

Implements xen-command-line.pandoc: "Types of parameter" (boolean, integer, size, list) and
the options dom0_mem (x86), dom0_max_vcpus, dom0_vcpus_pin, sched, sched_credit_tslice_ms,
sched_ratelimit_us, loglvl, guest_loglvl, console_to_ring, noreboot, mem, com1/com2,
console, conring_size, maxcpus and nosmp, read as xen/common/kernel.c and
xen/arch/x86/dom0_build.c read them. Every other option is kept raw so the host can report it
as ignored. Also reads GRUB_CMDLINE_XEN(_DEFAULT) out of /etc/default/grub, as
grub-mkconfig's 20_linux_xen does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from xenlite.base.errors import ConfigError

DEFAULT_SOURCE = "<xen command line>"

PAGE_SIZE = 4096  # x86 PAGE_SIZE: Xen counts dom0 memory in 4 KiB pages
_U64 = 2**64  # dom0_build.c does its "all but" arithmetic in unsigned long
_LONG_MAX = 2**63 - 1  # dom0_max_size defaults to LONG_MAX pages: no maximum
_DEFAULT_RESERVE_CAP_PAGES = (128 * 2**20) // PAGE_SIZE  # the 128 MB reserve cap


class Scheduler(StrEnum):
    """``sched=``: the schedulers Xen 4.17 can be built with."""

    CREDIT = "credit"
    CREDIT2 = "credit2"
    RTDS = "rtds"
    NULL = "null"
    ARINC653 = "arinc653"


class LogLevel(StrEnum):
    """A ``loglvl=`` level, least to most verbose."""

    NONE = "none"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    ALL = "all"

    @property
    def rank(self) -> int:
        """Verbosity: a message is shown when its level's rank is at most this one's."""
        return list(LogLevel).index(self)


@dataclass(frozen=True, slots=True)
class LogLevels:
    """``<level>[/<rate-limited level>]``: messages up to ``level`` always print; those up to
    ``rate_limited`` print under a rate limit."""

    level: LogLevel
    rate_limited: LogLevel

    def __str__(self) -> str:
        if self.level == self.rate_limited:
            return str(self.level)
        return f"{self.level}/{self.rate_limited}"


@dataclass(frozen=True, slots=True)
class MemSize:
    """One dom0_mem amount: ``[-]<size>``, ``[-]<frac>%`` or ``[-]<size>+<frac>%``.

    ``minus`` means "all available memory but this much".
    """

    size_bytes: int = 0
    percent: int = 0
    minus: bool = False

    def pages(self, avail_pages: int) -> int:
        """The amount in pages for a host with ``avail_pages`` free, as Xen computes it.

        Xen subtracts in unsigned arithmetic, so "all but more than the host has" wraps to
        a huge value that the later clamping turns into "all memory"; kept for fidelity.
        """
        pages = self.size_bytes // PAGE_SIZE + self.percent * avail_pages // 100
        if self.minus:
            return (avail_pages - pages) % _U64
        return pages

    def __str__(self) -> str:
        parts: list[str] = []
        if self.size_bytes or not self.percent:
            parts.append(format_size(self.size_bytes))
        if self.percent:
            parts.append(f"{self.percent}%")
        return ("-" if self.minus else "") + "+".join(parts)


@dataclass(frozen=True, slots=True)
class Dom0Mem:
    """``dom0_mem=`` (x86): the exact amount and its min:/max: limits, each optional."""

    amount: MemSize | None = None
    minimum: MemSize | None = None
    maximum: MemSize | None = None

    def __str__(self) -> str:
        items: list[str] = []
        if self.amount is not None:
            items.append(str(self.amount))
        if self.minimum is not None:
            items.append(f"min:{self.minimum}")
        if self.maximum is not None:
            items.append(f"max:{self.maximum}")
        return ",".join(items)


@dataclass(frozen=True, slots=True)
class VcpuRange:
    """``dom0_max_vcpus=``: N (exactly N), or min-max with either end optional."""

    minimum: int = 1
    maximum: int | None = None

    def __str__(self) -> str:
        if self.maximum == self.minimum:
            return str(self.minimum)
        return f"{self.minimum}-{'' if self.maximum is None else self.maximum}"


@dataclass(frozen=True, slots=True)
class SerialPort:
    """``com1=``/``com2=``: the UART settings Xen reads (None where left to probing)."""

    text: str
    baud: int | None = None  # None: "auto", or not given
    base_baud: int | None = None
    data_bits: int | None = None
    parity: str | None = None
    stop_bits: int | None = None
    io_base: int | None = None
    device: str | None = None  # "pci" or "amt": scan the PCI bus for the UART
    irq: int | None = None
    msi: bool = False
    port_bdf: str | None = None
    bridge_bdf: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # clock-hz, reg-shift, reg-width


def _default_loglvl() -> LogLevels:
    return LogLevels(LogLevel.INFO, LogLevel.INFO)


def _default_guest_loglvl() -> LogLevels:
    return LogLevels(LogLevel.NONE, LogLevel.WARNING)


@dataclass(frozen=True, slots=True)
class XenBootOptions:
    """A parsed Xen command line. Defaults are Xen 4.17's documented ones.

    ``None`` means "not given": Xen then derives the value from the hardware.
    ``given`` lists the recognised options in the order written; ``unrecognised`` keeps
    every other option as (name, value or None when written without ``=``).
    """

    cmdline: str = ""
    dom0_mem: Dom0Mem | None = None
    dom0_max_vcpus: VcpuRange | None = None
    dom0_vcpus_pin: bool = False
    sched: Scheduler = Scheduler.CREDIT2
    sched_credit_tslice_ms: int = 30
    sched_ratelimit_us: int = 1000
    loglvl: LogLevels = field(default_factory=_default_loglvl)
    guest_loglvl: LogLevels = field(default_factory=_default_guest_loglvl)
    console_to_ring: bool = False
    noreboot: bool = False
    mem: int | None = None  # bytes
    com1: SerialPort | None = None
    com2: SerialPort | None = None
    console: tuple[str, ...] = ("com1", "vga")
    conring_size: int = 16 * 1024  # bytes
    maxcpus: int | None = None
    nosmp: bool = False
    given: tuple[str, ...] = ()
    unrecognised: tuple[tuple[str, str | None], ...] = ()

    @property
    def dom0_mem_set(self) -> bool:
        """Whether dom0_mem was given (what xl.conf's autoballoon="auto" looks at)."""
        return self.dom0_mem is not None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view; sizes in bytes, amounts in Xen's own notation."""
        return {
            "cmdline": self.cmdline,
            "dom0_mem": None if self.dom0_mem is None else str(self.dom0_mem),
            "dom0_max_vcpus": (
                None
                if self.dom0_max_vcpus is None
                else {"min": self.dom0_max_vcpus.minimum, "max": self.dom0_max_vcpus.maximum}
            ),
            "dom0_vcpus_pin": self.dom0_vcpus_pin,
            "sched": str(self.sched),
            "sched_credit_tslice_ms": self.sched_credit_tslice_ms,
            "sched_ratelimit_us": self.sched_ratelimit_us,
            "loglvl": str(self.loglvl),
            "guest_loglvl": str(self.guest_loglvl),
            "console_to_ring": self.console_to_ring,
            "noreboot": self.noreboot,
            "mem": self.mem,
            "com1": None if self.com1 is None else self.com1.text,
            "com2": None if self.com2 is None else self.com2.text,
            "console": list(self.console),
            "conring_size": self.conring_size,
            "maxcpus": self.maxcpus,
            "nosmp": self.nosmp,
            "given": list(self.given),
            "unrecognised": [[name, value] for name, value in self.unrecognised],
        }


# --- value readers -------------------------------------------------------------------------


class _ValueError(Exception):
    """A bad value: ``offset`` is where in the value the problem starts."""

    def __init__(self, cause: str, fix: str, offset: int = 0) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        self.offset = offset


_SIZE_FIX = "write a number with an optional unit B, K, M, G or T (no unit means KiB), e.g. 512M"


def _strtoull(text: str, start: int) -> tuple[int, int]:
    """C strtoull(base 0) on text[start:]: the value and where the digits end."""
    i = start
    if text.startswith(("0x", "0X"), i) and i + 2 < len(text) and text[i + 2] in _HEX:
        j = i + 2
        while j < len(text) and text[j] in _HEX:
            j += 1
        return int(text[i + 2 : j], 16), j
    if text.startswith("0", i):
        j = i + 1
        while j < len(text) and text[j] in "01234567":
            j += 1
        return int(text[i:j], 8), j
    j = i
    while j < len(text) and text[j].isascii() and text[j].isdigit():
        j += 1
    if j == i:
        return 0, i
    return int(text[i:j]), j


_HEX = frozenset("0123456789abcdefABCDEF")
_UNIT_SHIFT = {"T": 40, "t": 40, "G": 30, "g": 30, "M": 20, "m": 20, "K": 10, "k": 10}


def _size_and_unit(text: str, start: int, *, allow_percent: bool) -> tuple[int, int]:
    """xen/lib/parse-size.c: a number and its unit; no unit means KiB."""
    if start >= len(text) or not (text[start].isascii() and text[start].isdigit()):
        raise _ValueError("expected a size", _SIZE_FIX, start)
    value, end = _strtoull(text, start)
    unit = text[end] if end < len(text) else ""
    if unit in _UNIT_SHIFT:
        value <<= _UNIT_SHIFT[unit]
        end += 1
    elif unit in ("B", "b"):
        end += 1
    elif unit == "%" and allow_percent:
        pass  # a percentage stays a bare number
    else:
        value <<= 10
    if value >= _U64:
        raise _ValueError("size is too large", "use a size below 16 EiB", start)
    return value, end


def parse_size(text: str) -> int:
    """A ``<size>`` option value in bytes.

    :raise ValueError: when it is not a size (callers locate the error).
    """
    try:
        value, end = _size_and_unit(text, 0, allow_percent=False)
    except _ValueError as exc:
        raise ValueError(exc.cause) from None
    if end != len(text):
        raise ValueError(f"unexpected {text[end:]!r} after the size")
    return value


def format_size(size_bytes: int) -> str:
    """The shortest exact Xen spelling of a size: 512M, 1G, 4096K, 100B."""
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if size_bytes and size_bytes % (1 << shift) == 0:
            return f"{size_bytes >> shift}{unit}"
    return f"{size_bytes}B" if size_bytes else "0"


def _read_size(value: str) -> int:
    size, end = _size_and_unit(value, 0, allow_percent=False)
    if end != len(value):
        raise _ValueError(f"unexpected {value[end:]!r} after the size", _SIZE_FIX, end)
    return size


def _read_int(value: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """xen-command-line.pandoc "Integer": decimal, 0x hex or 0 octal, optionally negative."""
    fix = "write a whole number (decimal, 0x hex or 0 octal)"
    negative = value.startswith("-")
    start = 1 if negative else 0
    if start >= len(value) or not (value[start].isascii() and value[start].isdigit()):
        raise _ValueError("expected an integer", fix, start)
    number, end = _strtoull(value, start)
    if end != len(value):
        raise _ValueError(f"unexpected {value[end:]!r} after the number", fix, end)
    number = -number if negative else number
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" and {maximum}"
        raise _ValueError(f"{number} is out of range", f"use a value between {minimum}{upper}", 0)
    return number


# parse_bool() in xen/common/kernel.c: exact, case-sensitive spellings.
_TRUE = frozenset({"1", "on", "yes", "true", "enable"})
_FALSE = frozenset({"0", "no", "off", "false", "disable"})
_BOOL_FIX = "use one of yes, on, true, enable, 1 or no, off, false, disable, 0"


def _read_bool(value: str | None) -> bool:
    if value is None:
        return True  # the option's bare name enables it
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _ValueError(f"invalid boolean {value!r}", _BOOL_FIX)


def _read_memsize(text: str, start: int) -> tuple[MemSize, int]:
    """dom0_build.c parse_amt(): ``[-]<size>`` | ``[-][<size>+]<frac>%``; returns the end."""
    pos = start
    minus = text.startswith("-", pos)
    if minus:
        pos += 1
    size_bytes = 0
    percent = 0
    items = 0
    fix = "write <size>, <frac>% or <size>+<frac>% (e.g. 512M, -1G, 1G+25%)"
    while True:
        if pos >= len(text) or not (text[pos].isascii() and text[pos].isdigit()):
            raise _ValueError("expected an amount of memory", fix, pos)
        item_start = pos
        value, pos = _size_and_unit(text, pos, allow_percent=True)
        if text.startswith("%", pos):
            if value >= 100:
                raise _ValueError(
                    f"{value}% is not below 100%", "use a percentage below 100", item_start
                )
            percent = value
            pos += 1
            items += 1  # nothing may follow a percentage
        elif items:
            raise _ValueError("only one size may come before the percentage", fix, item_start)
        else:
            size_bytes = value
        items += 1
        if text.startswith("+", pos) and items < 2:
            pos += 1
            continue
        break
    if pos < len(text) and text[pos] != ",":
        raise _ValueError(f"unexpected {text[pos:]!r} in the amount", fix, pos)
    return MemSize(size_bytes=size_bytes, percent=percent, minus=minus), pos


def _read_dom0_mem(value: str, previous: Dom0Mem | None) -> Dom0Mem:
    """dom0_build.c parse_dom0_mem(): a comma list; a repeated option updates the last one."""
    current = previous or Dom0Mem()
    amount, minimum, maximum = current.amount, current.minimum, current.maximum
    pos = 0
    while True:
        if value.startswith("min:", pos):
            minimum, pos = _read_memsize(value, pos + 4)
        elif value.startswith("max:", pos):
            maximum, pos = _read_memsize(value, pos + 4)
        else:
            amount, pos = _read_memsize(value, pos)
        if pos < len(value):  # _read_memsize stopped at a comma
            pos += 1
            if pos == len(value):
                raise _ValueError(
                    "trailing comma",
                    "remove the comma; items are separated by commas without spaces, "
                    "e.g. dom0_mem=512M,max:512M",
                    pos - 1,
                )
            continue
        return Dom0Mem(amount=amount, minimum=minimum, maximum=maximum)


def _read_vcpu_range(value: str) -> VcpuRange:
    """dom0_build.c parse_dom0_max_vcpus(): N, N-, -M or N-M."""
    fix = "write N, min-max, min- or -max (e.g. 2 or 2-4)"
    number = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
    pos = 0
    if value.startswith("-"):
        match = number.match(value, 1)
        if match is None or match.end() != len(value):
            raise _ValueError("expected a number after '-'", fix, 1)
        return VcpuRange(minimum=1, maximum=_strtoull(value, 1)[0])
    match = number.match(value, pos)
    if match is None:
        raise _ValueError("expected a number of vCPUs", fix, 0)
    # Xen turns a minimum of 0 into 1: dom0 always has a vCPU.
    low = max(_strtoull(value, 0)[0], 1)
    pos = match.end()
    if pos == len(value):
        return VcpuRange(minimum=low, maximum=low)
    if value[pos] != "-":
        raise _ValueError(f"unexpected {value[pos:]!r}", fix, pos)
    pos += 1
    if pos == len(value):
        return VcpuRange(minimum=low, maximum=None)
    match = number.match(value, pos)
    if match is None or match.end() != len(value):
        raise _ValueError(f"unexpected {value[pos:]!r} as the maximum", fix, pos)
    high = _strtoull(value, pos)[0]
    if high < low:
        raise _ValueError(
            f"maximum {high} is below minimum {low}", "make the maximum at least the minimum", pos
        )
    return VcpuRange(minimum=low, maximum=high)


def _read_loglvl(value: str) -> LogLevels:
    """console.c _parse_loglvl(): a too-low rate-limited level is raised to the level."""
    valid = ", ".join(str(level) for level in LogLevel)
    fix = f"write <level>[/<rate-limited level>] with levels from: {valid}"
    first, slash, second = value.partition("/")
    try:
        level = LogLevel(first)
    except ValueError:
        raise _ValueError(f"unknown log level {first!r}", fix, 0) from None
    limited = level
    if slash:
        try:
            limited = LogLevel(second)
        except ValueError:
            raise _ValueError(f"unknown log level {second!r}", fix, len(first) + 1) from None
    if limited.rank < level.rank:
        limited = level
    return LogLevels(level=level, rate_limited=limited)


_CONSOLE_ITEM = re.compile(r"vga|com[12][HL]?|pv|dbgp|ehci|xhci|none")


def _read_console(value: str) -> tuple[str, ...]:
    items = tuple(value.split(","))
    offset = 0
    for item in items:
        if not _CONSOLE_ITEM.fullmatch(item):
            raise _ValueError(
                f"unknown console {item!r}",
                "use a comma list of vga, com1, com2 (optionally with H or L), pv, dbgp, "
                "ehci, xhci or none",
                offset,
            )
        offset += len(item) + 1
    return items


_BDF = re.compile(r"[0-9a-fA-F]{1,2}:[0-9a-fA-F]{1,2}\.[0-7]")
_SERIAL_FIX = (
    "write <baud>[/<base-baud>][,DPS[,<io-base>|pci|amt[,<irq>|msi[,<port-bdf>"
    "[,<bridge-bdf>]]]]] or name=value pairs, e.g. com1=115200,8n1,0x3f8,4"
)
_SERIAL_NAMES = frozenset(
    {
        "baud",
        "bridge",
        "clock-hz",
        "data-bits",
        "dev",
        "io-base",
        "irq",
        "parity",
        "port",
        "reg-shift",
        "reg-width",
        "stop-bits",
    }
)


def _read_serial(value: str) -> SerialPort:
    """ns16550.c: positional fields first, then name=value pairs."""
    fields_: dict[str, object] = {}
    extra: list[tuple[str, str]] = []
    offset = 0
    positional = 0
    named_seen = False

    def number(text: str, at: int) -> int:
        try:
            return _read_int(text, minimum=0)
        except _ValueError as exc:
            raise _ValueError(exc.cause, _SERIAL_FIX, at) from None

    def set_baud(text: str, at: int) -> None:
        baud, slash, base = text.partition("/")
        if baud != "auto":
            fields_["baud"] = number(baud, at)
        if slash:
            fields_["base_baud"] = number(base, at + len(baud) + 1)

    def set_dps(text: str, at: int) -> None:
        match = re.fullmatch(r"([5-8])([noems])([12])", text)
        if match is None:
            raise _ValueError(
                f"invalid data/parity/stop bits {text!r}",
                "write DPS as data bits 5-8, parity n/o/e/m/s, stop bits 1 or 2, e.g. 8n1",
                at,
            )
        fields_["data_bits"] = int(match[1])
        fields_["parity"] = match[2]
        fields_["stop_bits"] = int(match[3])

    def set_io(text: str, at: int) -> None:
        if text in ("pci", "amt"):
            fields_["device"] = text
        else:
            fields_["io_base"] = number(text, at)

    def set_irq(text: str, at: int) -> None:
        if text == "msi":
            fields_["msi"] = True
        else:
            fields_["irq"] = number(text, at)

    def set_bdf(name: str) -> Callable[[str, int], None]:
        def setter(text: str, at: int) -> None:
            if not _BDF.fullmatch(text):
                raise _ValueError(
                    f"invalid PCI location {text!r}", "write <bus>:<device>.<function>", at
                )
            fields_[name] = text

        return setter

    order: tuple[Callable[[str, int], None], ...] = (
        set_baud,
        set_dps,
        set_io,
        set_irq,
        set_bdf("port_bdf"),
        set_bdf("bridge_bdf"),
    )
    for item in value.split(","):
        if "=" in item:
            named_seen = True
            name, _, text = item.partition("=")
            at = offset + len(name) + 1
            if name not in _SERIAL_NAMES:
                raise _ValueError(f"unknown serial setting {name!r}", _SERIAL_FIX, offset)
            if name == "baud":
                set_baud(text, at)
            elif name == "data-bits":
                fields_["data_bits"] = number(text, at)
            elif name == "parity":
                if text not in ("n", "o", "e", "m", "s"):
                    raise _ValueError(f"invalid parity {text!r}", "use n, o, e, m or s", at)
                fields_["parity"] = text
            elif name == "stop-bits":
                fields_["stop_bits"] = number(text, at)
            elif name == "io-base":
                fields_["io_base"] = number(text, at)
            elif name == "irq":
                set_irq(text, at)
            elif name == "dev":
                if text not in ("pci", "amt"):
                    raise _ValueError(f"invalid dev {text!r}", "use dev=pci or dev=amt", at)
                fields_["device"] = text
            elif name == "port":
                set_bdf("port_bdf")(text, at)
            elif name == "bridge":
                set_bdf("bridge_bdf")(text, at)
            else:
                number(text, at)
                extra.append((name, text))
        else:
            if named_seen:
                raise _ValueError(
                    f"positional field {item!r} after name=value pairs", _SERIAL_FIX, offset
                )
            if positional >= len(order):
                raise _ValueError(f"too many fields at {item!r}", _SERIAL_FIX, offset)
            if item:  # an empty field keeps the default
                order[positional](item, offset)
            positional += 1
        offset += len(item) + 1
    return SerialPort(
        text=value,
        baud=_opt_int(fields_.get("baud")),
        base_baud=_opt_int(fields_.get("base_baud")),
        data_bits=_opt_int(fields_.get("data_bits")),
        parity=_opt_str(fields_.get("parity")),
        stop_bits=_opt_int(fields_.get("stop_bits")),
        io_base=_opt_int(fields_.get("io_base")),
        device=_opt_str(fields_.get("device")),
        irq=_opt_int(fields_.get("irq")),
        msi=bool(fields_.get("msi", False)),
        port_bdf=_opt_str(fields_.get("port_bdf")),
        bridge_bdf=_opt_str(fields_.get("bridge_bdf")),
        extra=tuple(extra),
    )


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --- the command line ----------------------------------------------------------------------

_BOOLEAN_OPTIONS = frozenset({"dom0_vcpus_pin", "console_to_ring", "noreboot", "nosmp"})
_VALUE_OPTIONS = frozenset(
    {
        "dom0_mem",
        "dom0_max_vcpus",
        "sched",
        "sched_credit_tslice_ms",
        "sched_ratelimit_us",
        "loglvl",
        "guest_loglvl",
        "mem",
        "com1",
        "com2",
        "console",
        "conring_size",
        "maxcpus",
    }
)
KNOWN_OPTIONS: frozenset[str] = _BOOLEAN_OPTIONS | _VALUE_OPTIONS

# XEN_SYSCTL_CSCHED_TSLICE_{MIN,MAX} and XEN_SYSCTL_SCHED_RATELIMIT_MAX (public/sysctl.h).
_TSLICE_MIN, _TSLICE_MAX = 1, 1000
_RATELIMIT_MAX = 500000


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    line: int
    col: int


def _tokens(text: str) -> list[_Token]:
    """Whitespace-separated options with their 1-based line and column.

    Xen splits on spaces only; tabs and newlines are accepted too because a command line
    kept in a host config file may be wrapped.
    """
    out: list[_Token] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        for match in re.finditer(r"[^\s]+", line):
            out.append(_Token(match.group(), line_no, match.start() + 1))
    return out


def parse_xen_cmdline(text: str, *, source: str = DEFAULT_SOURCE) -> XenBootOptions:
    """Parse a Xen command line into :class:`XenBootOptions`.

    A repeated option: the last one wins (dom0_mem items accumulate, as in Xen). A first
    word starting with ``/`` is the hypervisor image (a GRUB legacy ``kernel`` line) and is
    skipped, as Xen skips its own image name.

    :raise ConfigError: for a bad value of a recognised option, located at line:col of
        ``source`` with the option as key.
    """
    tokens = _tokens(text)
    if tokens and tokens[0].text.startswith("/"):
        tokens = tokens[1:]
    # Options are applied one by one onto a mutable copy of the defaults.
    state: dict[str, object] = {}
    given: list[str] = []
    unrecognised: list[tuple[str, str | None]] = []
    for token in tokens:
        raw_name, eq, raw_value = token.text.partition("=")
        value: str | None = raw_value if eq else None
        name = raw_name
        # pandoc "Boolean": a no- prefix disables; stacked with a value it inverts it,
        # as kernel.c does (the pandoc calls that undefined).
        negated = name.startswith("no-") and name[3:] in KNOWN_OPTIONS
        if negated:
            name = name[3:]
        if name not in KNOWN_OPTIONS:
            unrecognised.append((raw_name, value))
            continue
        value_col = token.col + len(raw_name) + 1
        try:
            if negated and name not in _BOOLEAN_OPTIONS:
                raise _ValueError(
                    "the no- prefix only applies to boolean options",
                    f"remove 'no-' and give {name} a value",
                    -len(raw_name) - 1,
                )
            if name in _BOOLEAN_OPTIONS:
                state[name] = _read_bool(value) != negated
            elif value is None:
                raise _ValueError(
                    "needs a value",
                    f"write {name}=<value> (see xen-command-line(7))",
                    -len(raw_name) - 1,
                )
            elif name == "dom0_mem":
                previous = state.get(name)
                state[name] = _read_dom0_mem(
                    value, previous if isinstance(previous, Dom0Mem) else None
                )
            else:
                state[name] = _VALUE_READERS[name](value)
        except _ValueError as exc:
            raise ConfigError(
                f"invalid value {value!r}: {exc.cause}" if value is not None else exc.cause,
                path=source,
                line=token.line,
                col=max(value_col + exc.offset, token.col),
                key=raw_name,
                fix=exc.fix,
            ) from None
        if name not in given:
            given.append(name)
    return XenBootOptions(
        cmdline=text.strip(),
        given=tuple(given),
        unrecognised=tuple(unrecognised),
        **state,  # type: ignore[arg-type]  # each reader returns its field's type
    )


def _read_sched(value: str) -> Scheduler:
    try:
        return Scheduler(value)
    except ValueError:
        raise _ValueError(
            f"unknown scheduler {value!r}",
            "use one of " + ", ".join(str(s) for s in Scheduler),
        ) from None


# Option name -> reader; each returns the type of the XenBootOptions field of that name.
_VALUE_READERS: dict[str, Callable[[str], object]] = {
    "dom0_max_vcpus": _read_vcpu_range,
    "sched": _read_sched,
    "sched_credit_tslice_ms": lambda v: _read_int(v, minimum=_TSLICE_MIN, maximum=_TSLICE_MAX),
    "sched_ratelimit_us": lambda v: _read_int(v, minimum=0, maximum=_RATELIMIT_MAX),
    "loglvl": _read_loglvl,
    "guest_loglvl": _read_loglvl,
    "mem": _read_size,
    "conring_size": _read_size,
    "com1": _read_serial,
    "com2": _read_serial,
    "console": _read_console,
    "maxcpus": lambda v: _read_int(v, minimum=0),
}


# --- what the options mean for a given host --------------------------------------------------


def resolve_dom0_mem(opts: XenBootOptions, host_total_kib: int) -> int:
    """Dom0's memory in KiB on a host with ``host_total_kib`` available, as Xen computes it.

    dom0_build.c dom0_compute_nr_pages(): no amount (or an amount of 0) means all memory
    but a reserve of 1/16 capped at 128 MB; then min: raises it, max: lowers it (max wins),
    and it never exceeds what the host has. Counted in whole 4 KiB pages.
    """
    avail = max(host_total_kib, 0) * 1024 // PAGE_SIZE
    mem = opts.dom0_mem or Dom0Mem()
    nr_pages = mem.amount.pages(avail) if mem.amount is not None else 0
    min_pages = mem.minimum.pages(avail) if mem.minimum is not None else 0
    max_pages = mem.maximum.pages(avail) if mem.maximum is not None else _LONG_MAX
    if nr_pages == 0:
        nr_pages = avail - min(avail // 16, _DEFAULT_RESERVE_CAP_PAGES)
    nr_pages = max(nr_pages, min_pages)
    nr_pages = min(nr_pages, max_pages)
    nr_pages = min(nr_pages, avail)
    return nr_pages * PAGE_SIZE // 1024


def resolve_dom0_mem_max(opts: XenBootOptions, host_total_kib: int) -> int | None:
    """Dom0's maximum reservation in KiB (how far it may balloon up); None if unlimited."""
    if opts.dom0_mem is None or opts.dom0_mem.maximum is None:
        return None
    avail = max(host_total_kib, 0) * 1024 // PAGE_SIZE
    return min(opts.dom0_mem.maximum.pages(avail), avail) * PAGE_SIZE // 1024


def resolve_dom0_vcpus(opts: XenBootOptions, host_cpus: int) -> int:
    """Dom0's vCPU count: one per host CPU, bounded by dom0_max_vcpus's min and max."""
    count = host_cpus
    if opts.dom0_max_vcpus is not None:
        count = max(count, opts.dom0_max_vcpus.minimum)
        if opts.dom0_max_vcpus.maximum is not None:
            count = min(count, opts.dom0_max_vcpus.maximum)
    return max(count, 1)


# --- /etc/default/grub -----------------------------------------------------------------------

GRUB_XEN_VARIABLES = ("GRUB_CMDLINE_XEN", "GRUB_CMDLINE_XEN_DEFAULT")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
# Words that start a compound command; the command proper follows them.
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})
_DECLARERS = frozenset({"export", "readonly", "declare", "typeset", "local"})
_WORD_END = frozenset(" \t\n;&|()<>")


@dataclass(frozen=True, slots=True)
class _Unknown:
    """A shell value this reader cannot compute (command substitution), and where it is."""

    what: str
    line: int
    col: int


_Part = str | _Unknown  # a literal, or something unknowable
_Ref = tuple[str, int, int]  # a $NAME reference: name, line, col


@dataclass(slots=True)
class _Word:
    parts: list[_Part | _Ref]
    prefix: str  # the leading unquoted literal text, to recognise NAME=
    line: int
    col: int


class _ShellReader:
    """Just enough POSIX shell to evaluate the assignments of a grub defaults file.

    Commands other than assignments (echo, tests, ...) are skipped; assignments inside
    if-blocks are applied unconditionally, which is what a default install needs.
    """

    def __init__(self, text: str, path: str, env: dict[str, str | _Unknown]) -> None:
        self.text = text
        self.path = path
        self.env = env
        self.pos = 0
        self.line = 1
        self.line_start = 0

    def error(
        self, cause: str, fix: str, line: int | None = None, col: int | None = None
    ) -> NoReturn:
        raise ConfigError(
            cause,
            path=self.path,
            line=self.line if line is None else line,
            col=(self.pos - self.line_start + 1) if col is None else col,
            fix=fix,
        )

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.text[at] if at < len(self.text) else ""

    def advance(self) -> str:
        char = self.text[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
            self.line_start = self.pos
        return char

    def col(self) -> int:
        return self.pos - self.line_start + 1

    def run(self) -> None:
        command: list[_Word] = []
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t":
                self.advance()
            elif char == "\\" and self.peek(1) == "\n":
                self.advance()
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            elif char in _WORD_END:
                self.advance()
                self.execute(command)
                command = []
            else:
                command.append(self.word())
        self.execute(command)

    def word(self) -> _Word:
        word = _Word(parts=[], prefix="", line=self.line, col=self.col())
        literal_prefix = True
        while self.pos < len(self.text) and self.peek() not in _WORD_END:
            char = self.peek()
            if char == "\\":
                self.advance()
                if self.pos < len(self.text):
                    escaped = self.advance()
                    if escaped != "\n":
                        word.parts.append(escaped)
                literal_prefix = False
            elif char == "'":
                word.parts.append(self.single_quoted())
                literal_prefix = False
            elif char == '"':
                word.parts.extend(self.double_quoted())
                literal_prefix = False
            elif char == "$":
                word.parts.append(self.dollar())
                literal_prefix = False
            elif char == "`":
                word.parts.append(self.backquoted())
                literal_prefix = False
            else:
                self.advance()
                word.parts.append(char)
                if literal_prefix:
                    word.prefix += char
        return word

    def single_quoted(self) -> str:
        line, col = self.line, self.col()
        self.advance()
        end = self.text.find("'", self.pos)
        if end < 0:
            self.error("unterminated single-quoted string", "close the string with '", line, col)
        chunk = self.text[self.pos : end]
        while self.pos <= end:
            self.advance()
        return chunk

    def double_quoted(self) -> list[_Part | _Ref]:
        line, col = self.line, self.col()
        self.advance()
        parts: list[_Part | _Ref] = []
        while True:
            if self.pos >= len(self.text):
                self.error(
                    "unterminated double-quoted string", 'close the string with "', line, col
                )
            char = self.peek()
            if char == '"':
                self.advance()
                return parts
            if char == "\\" and self.peek(1) in ('"', "\\", "$", "`", "\n"):
                self.advance()
                escaped = self.advance()
                if escaped != "\n":
                    parts.append(escaped)
            elif char == "$":
                parts.append(self.dollar())
            elif char == "`":
                parts.append(self.backquoted())
            else:
                parts.append(self.advance())

    def dollar(self) -> _Part | _Ref:
        line, col = self.line, self.col()
        self.advance()
        char = self.peek()
        if char == "(":
            self.skip_balanced("(", ")", line, col)
            return _Unknown("a $(...) command substitution", line, col)
        if char == "{":
            self.advance()
            end = self.text.find("}", self.pos)
            if end < 0:
                self.error("unterminated ${...}", "close the expansion with }", line, col)
            inner = self.text[self.pos : end]
            while self.pos <= end:
                self.advance()
            match = _NAME.match(inner)
            if match is None:
                return _Unknown(f"the expansion ${{{inner}}}", line, col)
            rest = inner[match.end() :]
            if not rest:
                return (match.group(), line, col)
            # ${NAME:-word} / ${NAME-word}: the default applies when NAME is unset (or empty).
            default = re.fullmatch(r"(:?)-(.*)", rest, re.DOTALL)
            if default is None:
                return _Unknown(f"the expansion ${{{inner}}}", line, col)
            current = self.env.get(match.group())
            if current is None or (default[1] and current == ""):
                return default[2]
            return (match.group(), line, col)
        match = _NAME.match(self.text, self.pos)
        if match is not None:
            while self.pos < match.end():
                self.advance()
            return (match.group(), line, col)
        if char and char in "0123456789@*#?$!-":
            self.advance()
            return ""  # positional and special parameters are empty when sourced
        return "$"

    def backquoted(self) -> _Unknown:
        line, col = self.line, self.col()
        self.advance()
        end = self.text.find("`", self.pos)
        if end < 0:
            self.error("unterminated `...` command substitution", "close it with `", line, col)
        while self.pos <= end:
            self.advance()
        return _Unknown("a `...` command substitution", line, col)

    def skip_balanced(self, opening: str, closing: str, line: int, col: int) -> None:
        depth = 0
        quote = ""
        while self.pos < len(self.text):
            char = self.advance()
            if quote:
                if char == "\\" and quote == '"' and self.pos < len(self.text):
                    self.advance()
                elif char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "\\" and self.pos < len(self.text):
                self.advance()
            elif char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return
        self.error(
            "unterminated $(...)", f"close the command substitution with {closing}", line, col
        )

    def evaluate(self, parts: list[_Part | _Ref]) -> str | _Unknown:
        out: list[str] = []
        for part in parts:
            if isinstance(part, tuple):
                name, line, col = part
                value = self.env.get(name, "")
                if isinstance(value, _Unknown):
                    return _Unknown(f"${name}, which was set from {value.what}", line, col)
                out.append(value)
            elif isinstance(part, _Unknown):
                return part
            else:
                out.append(part)
        return "".join(out)

    def execute(self, command: list[_Word]) -> None:
        while (
            command
            and command[0].prefix in _RESERVED
            and len(command[0].parts) == len(command[0].prefix)
        ):
            command = command[1:]
        if not command:
            return
        words = command
        declarer = words[0].prefix in _DECLARERS and len(words[0].parts) == len(words[0].prefix)
        if declarer:
            words = words[1:]
        assignments: list[tuple[str, bool, str | _Unknown]] = []
        for word in words:
            match = _ASSIGNMENT.match(word.prefix)
            if match is None:
                if declarer:
                    continue  # `export NAME` without a value
                return  # a command: NAME=value before it only sets its environment
            name, append = match.group(1), bool(match.group(2))
            value_parts = word.parts[match.end() :]
            assignments.append((name, append, self.evaluate(value_parts)))
        for name, append, value in assignments:
            if append:
                current = self.env.get(name, "")
                if isinstance(current, _Unknown):
                    continue
                value = value if isinstance(value, _Unknown) else current + value
            self.env[name] = value


def read_grub_default(path: str | os.PathLike[str], *, drop_ins: bool = True) -> str:
    """The Xen command line that grub-mkconfig puts on the default Xen entry.

    Evaluates the shell assignments of ``path`` (e.g. /etc/default/grub) and, when it is
    named ``grub`` and ``drop_ins`` is true, of ``grub.d/*.cfg`` next to it in order, as
    grub-mkconfig sources them; then joins GRUB_CMDLINE_XEN and GRUB_CMDLINE_XEN_DEFAULT
    as 20_linux_xen does. Quotes, escapes, ``$VAR``/``${VAR}`` expansion and ``+=`` work.

    :raise ConfigError: when a file cannot be read, a quote is unterminated, or one of the
        two variables depends on a command substitution.
    """
    first = Path(os.fspath(path))
    files = [first]
    drop_in_dir = first.parent / "grub.d"
    if drop_ins and first.name == "grub" and drop_in_dir.is_dir():
        files.extend(sorted(drop_in_dir.glob("*.cfg")))
    env: dict[str, str | _Unknown] = {}
    for file in files:
        name = os.fspath(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                "grub defaults file not found",
                path=name,
                fix="give the path of /etc/default/grub or /etc/default/grub.d/xen.cfg",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the grub defaults file: {exc}",
                path=name,
                fix="make it a readable UTF-8 text file",
            ) from None
        _ShellReader(text, name, env).run()
    parts: list[str] = []
    for variable in GRUB_XEN_VARIABLES:
        value = env.get(variable, "")
        if isinstance(value, _Unknown):
            raise ConfigError(
                f"{variable} depends on {value.what}, which xenlite does not run",
                path=os.fspath(first),
                line=value.line,
                col=value.col,
                key=variable,
                fix=f"write {variable} as a plain quoted string",
            )
        if value.strip():
            parts.append(value.strip())
    return " ".join(parts)
