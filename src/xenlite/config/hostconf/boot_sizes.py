"""Sizes on the Xen command line, and dom0_mem= with what it comes to on a host.

Implements xen-command-line.pandoc "Types of parameter" ``Size`` (xen/lib/parse-size.c,
also used by ``mem=`` and ``conring_size=``) and ``dom0_mem (x86)``, read and computed as
xen/arch/x86/dom0_build.c does (parse_amt, parse_dom0_mem, dom0_compute_nr_pages). The
other options and the command line itself are :mod:`xenlite.config.hostconf.bootopts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlite.config.cnum import LONG_MAX, simple_strtoull

PAGE_SIZE = 4096  # x86 PAGE_SIZE: Xen counts dom0 memory in 4 KiB pages
_U64 = 2**64  # dom0_build.c does its "all but" arithmetic in unsigned long
_DEFAULT_RESERVE_CAP_PAGES = (128 * 2**20) // PAGE_SIZE  # the 128 MB reserve cap


class BadOptionValue(Exception):
    """A bad option value: ``offset`` is where in the value the problem starts.

    Raised by the value readers; :func:`xenlite.config.hostconf.bootopts.parse_xen_cmdline` turns it
    into a ConfigError located on the command line.
    """

    def __init__(self, cause: str, fix: str, offset: int = 0) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        self.offset = offset


_SIZE_FIX = "write a number with an optional unit B, K, M, G or T (no unit means KiB), e.g. 512M"

_UNIT_SHIFT = {"T": 40, "t": 40, "G": 30, "g": 30, "M": 20, "m": 20, "K": 10, "k": 10}


def size_and_unit(text: str, start: int, *, allow_percent: bool) -> tuple[int, int]:
    """xen/lib/parse-size.c: a number and its unit; no unit means KiB."""
    if start >= len(text) or not (text[start].isascii() and text[start].isdigit()):
        raise BadOptionValue("expected a size", _SIZE_FIX, start)
    value, end = simple_strtoull(text, start)
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
        raise BadOptionValue("size is too large", "use a size below 16 EiB", start)
    return value, end


def parse_size(text: str) -> int:
    """A ``<size>`` option value in bytes.

    :raise ValueError: when it is not a size (callers locate the error).
    """
    try:
        value, end = size_and_unit(text, 0, allow_percent=False)
    except BadOptionValue as exc:
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


def read_size(value: str) -> int:
    size, end = size_and_unit(value, 0, allow_percent=False)
    if end != len(value):
        raise BadOptionValue(f"unexpected {value[end:]!r} after the size", _SIZE_FIX, end)
    return size


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


def read_memsize(text: str, start: int) -> tuple[MemSize, int]:
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
            raise BadOptionValue("expected an amount of memory", fix, pos)
        item_start = pos
        value, pos = size_and_unit(text, pos, allow_percent=True)
        if text.startswith("%", pos):
            if value >= 100:
                raise BadOptionValue(
                    f"{value}% is not below 100%", "use a percentage below 100", item_start
                )
            percent = value
            pos += 1
            items += 1  # nothing may follow a percentage
        elif items:
            raise BadOptionValue("only one size may come before the percentage", fix, item_start)
        else:
            size_bytes = value
        items += 1
        if text.startswith("+", pos) and items < 2:
            pos += 1
            continue
        break
    if pos < len(text) and text[pos] != ",":
        raise BadOptionValue(f"unexpected {text[pos:]!r} in the amount", fix, pos)
    return MemSize(size_bytes=size_bytes, percent=percent, minus=minus), pos


def read_dom0_mem(value: str, previous: Dom0Mem | None) -> Dom0Mem:
    """dom0_build.c parse_dom0_mem(): a comma list; a repeated option updates the last one."""
    current = previous or Dom0Mem()
    amount, minimum, maximum = current.amount, current.minimum, current.maximum
    pos = 0
    while True:
        if value.startswith("min:", pos):
            minimum, pos = read_memsize(value, pos + 4)
        elif value.startswith("max:", pos):
            maximum, pos = read_memsize(value, pos + 4)
        else:
            amount, pos = read_memsize(value, pos)
        if pos < len(value):  # _read_memsize stopped at a comma
            pos += 1
            if pos == len(value):
                raise BadOptionValue(
                    "trailing comma",
                    "remove the comma; items are separated by commas without spaces, "
                    "e.g. dom0_mem=512M,max:512M",
                    pos - 1,
                )
            continue
        return Dom0Mem(amount=amount, minimum=minimum, maximum=maximum)


def dom0_kib(mem: Dom0Mem | None, host_total_kib: int) -> int:
    """Dom0's memory in KiB on a host with ``host_total_kib`` available, as Xen computes it.

    dom0_build.c dom0_compute_nr_pages(): no amount (or an amount of 0) means all memory
    but a reserve of 1/16 capped at 128 MB; then min: raises it, max: lowers it (max wins),
    and it never exceeds what the host has. Counted in whole 4 KiB pages.
    """
    avail = max(host_total_kib, 0) * 1024 // PAGE_SIZE
    mem = mem or Dom0Mem()
    nr_pages = mem.amount.pages(avail) if mem.amount is not None else 0
    min_pages = mem.minimum.pages(avail) if mem.minimum is not None else 0
    # dom0_max_size defaults to LONG_MAX pages: no maximum.
    max_pages = mem.maximum.pages(avail) if mem.maximum is not None else LONG_MAX
    if nr_pages == 0:
        nr_pages = avail - min(avail // 16, _DEFAULT_RESERVE_CAP_PAGES)
    nr_pages = max(nr_pages, min_pages)
    nr_pages = min(nr_pages, max_pages)
    nr_pages = min(nr_pages, avail)
    return nr_pages * PAGE_SIZE // 1024


def dom0_max_kib(mem: Dom0Mem | None, host_total_kib: int) -> int | None:
    """Dom0's maximum reservation in KiB (how far it may balloon up); None if unlimited."""
    if mem is None or mem.maximum is None:
        return None
    avail = max(host_total_kib, 0) * 1024 // PAGE_SIZE
    return min(mem.maximum.pages(avail), avail) * PAGE_SIZE // 1024
