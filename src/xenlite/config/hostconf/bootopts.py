"""The Xen hypervisor command line (dom0_mem=, sched=, loglvl=, ...) as a typed model.

Implements xen-command-line.pandoc: "Types of parameter" (boolean, integer, size, list) and
the options dom0_mem (x86), dom0_max_vcpus, dom0_vcpus_pin, sched, sched_credit_tslice_ms,
sched_ratelimit_us, loglvl, guest_loglvl, console_to_ring, noreboot, mem, com1/com2,
console, conring_size, maxcpus and nosmp, read as xen/common/kernel.c and
xen/arch/x86/dom0_build.c read them. Every other option is kept raw so the host can report it
as ignored. This module is the public face: sizes and dom0_mem= live in ``boot_sizes``, and
GRUB_CMDLINE_XEN(_DEFAULT) is read out of /etc/default/grub by ``grub_default``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import simple_strtoull
from xenlite.config.hostconf.boot_sizes import (
    PAGE_SIZE,
    BadOptionValue,
    Dom0Mem,
    MemSize,
    dom0_kib,
    dom0_max_kib,
    format_size,
    parse_size,
    read_dom0_mem,
    read_size,
)
from xenlite.config.hostconf.grub_default import GRUB_XEN_VARIABLES, read_grub_default

__all__ = [
    "DEFAULT_SOURCE",
    "GRUB_XEN_VARIABLES",
    "KNOWN_OPTIONS",
    "PAGE_SIZE",
    "Dom0Mem",
    "LogLevel",
    "LogLevels",
    "MemSize",
    "Scheduler",
    "SerialPort",
    "VcpuRange",
    "XenBootOptions",
    "dom0_pinned_cpus",
    "format_size",
    "parse_size",
    "parse_xen_cmdline",
    "read_grub_default",
    "resolve_dom0_mem",
    "resolve_dom0_mem_max",
    "resolve_dom0_vcpus",
]

DEFAULT_SOURCE = "<xen command line>"


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


def _read_int(value: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """xen-command-line.pandoc "Integer": decimal, 0x hex or 0 octal, optionally negative."""
    fix = "write a whole number (decimal, 0x hex or 0 octal)"
    negative = value.startswith("-")
    start = 1 if negative else 0
    if start >= len(value) or not (value[start].isascii() and value[start].isdigit()):
        raise BadOptionValue("expected an integer", fix, start)
    number, end = simple_strtoull(value, start)
    if end != len(value):
        raise BadOptionValue(f"unexpected {value[end:]!r} after the number", fix, end)
    number = -number if negative else number
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" and {maximum}"
        raise BadOptionValue(
            f"{number} is out of range", f"use a value between {minimum}{upper}", 0
        )
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
    raise BadOptionValue(f"invalid boolean {value!r}", _BOOL_FIX)


def _read_vcpu_range(value: str) -> VcpuRange:
    """dom0_build.c parse_dom0_max_vcpus(): N, N-, -M or N-M."""
    fix = "write N, min-max, min- or -max (e.g. 2 or 2-4)"
    number = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
    pos = 0
    if value.startswith("-"):
        match = number.match(value, 1)
        if match is None or match.end() != len(value):
            raise BadOptionValue("expected a number after '-'", fix, 1)
        return VcpuRange(minimum=1, maximum=simple_strtoull(value, 1)[0])
    match = number.match(value, pos)
    if match is None:
        raise BadOptionValue("expected a number of vCPUs", fix, 0)
    # Xen turns a minimum of 0 into 1: dom0 always has a vCPU.
    low = max(simple_strtoull(value, 0)[0], 1)
    pos = match.end()
    if pos == len(value):
        return VcpuRange(minimum=low, maximum=low)
    if value[pos] != "-":
        raise BadOptionValue(f"unexpected {value[pos:]!r}", fix, pos)
    pos += 1
    if pos == len(value):
        return VcpuRange(minimum=low, maximum=None)
    match = number.match(value, pos)
    if match is None or match.end() != len(value):
        raise BadOptionValue(f"unexpected {value[pos:]!r} as the maximum", fix, pos)
    high = simple_strtoull(value, pos)[0]
    if high < low:
        raise BadOptionValue(
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
        raise BadOptionValue(f"unknown log level {first!r}", fix, 0) from None
    limited = level
    if slash:
        try:
            limited = LogLevel(second)
        except ValueError:
            raise BadOptionValue(f"unknown log level {second!r}", fix, len(first) + 1) from None
    if limited.rank < level.rank:
        limited = level
    return LogLevels(level=level, rate_limited=limited)


_CONSOLE_ITEM = re.compile(r"vga|com[12][HL]?|pv|dbgp|ehci|xhci|none")


def _read_console(value: str) -> tuple[str, ...]:
    items = tuple(value.split(","))
    offset = 0
    for item in items:
        if not _CONSOLE_ITEM.fullmatch(item):
            raise BadOptionValue(
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
        except BadOptionValue as exc:
            raise BadOptionValue(exc.cause, _SERIAL_FIX, at) from None

    def set_baud(text: str, at: int) -> None:
        baud, slash, base = text.partition("/")
        if baud != "auto":
            fields_["baud"] = number(baud, at)
        if slash:
            fields_["base_baud"] = number(base, at + len(baud) + 1)

    def set_dps(text: str, at: int) -> None:
        match = re.fullmatch(r"([5-8])([noems])([12])", text)
        if match is None:
            raise BadOptionValue(
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
                raise BadOptionValue(
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
                raise BadOptionValue(f"unknown serial setting {name!r}", _SERIAL_FIX, offset)
            if name == "baud":
                set_baud(text, at)
            elif name == "data-bits":
                fields_["data_bits"] = number(text, at)
            elif name == "parity":
                if text not in ("n", "o", "e", "m", "s"):
                    raise BadOptionValue(f"invalid parity {text!r}", "use n, o, e, m or s", at)
                fields_["parity"] = text
            elif name == "stop-bits":
                fields_["stop_bits"] = number(text, at)
            elif name == "io-base":
                fields_["io_base"] = number(text, at)
            elif name == "irq":
                set_irq(text, at)
            elif name == "dev":
                if text not in ("pci", "amt"):
                    raise BadOptionValue(f"invalid dev {text!r}", "use dev=pci or dev=amt", at)
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
                raise BadOptionValue(
                    f"positional field {item!r} after name=value pairs", _SERIAL_FIX, offset
                )
            if positional >= len(order):
                raise BadOptionValue(f"too many fields at {item!r}", _SERIAL_FIX, offset)
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
                raise BadOptionValue(
                    "the no- prefix only applies to boolean options",
                    f"remove 'no-' and give {name} a value",
                    -len(raw_name) - 1,
                )
            if name in _BOOLEAN_OPTIONS:
                state[name] = _read_bool(value) != negated
            elif value is None:
                raise BadOptionValue(
                    "needs a value",
                    f"write {name}=<value> (see xen-command-line(7))",
                    -len(raw_name) - 1,
                )
            elif name == "dom0_mem":
                previous = state.get(name)
                state[name] = read_dom0_mem(
                    value, previous if isinstance(previous, Dom0Mem) else None
                )
            else:
                state[name] = _VALUE_READERS[name](value)
        except BadOptionValue as exc:
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
        raise BadOptionValue(
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
    "mem": read_size,
    "conring_size": read_size,
    "com1": _read_serial,
    "com2": _read_serial,
    "console": _read_console,
    "maxcpus": lambda v: _read_int(v, minimum=0),
}


# --- what the options mean for a given host --------------------------------------------------


def resolve_dom0_mem(opts: XenBootOptions, host_total_kib: int) -> int:
    """Dom0's memory in KiB on a host with ``host_total_kib`` available, as Xen computes it.

    See :func:`xenlite.config.hostconf.boot_sizes.dom0_kib`.
    """
    return dom0_kib(opts.dom0_mem, host_total_kib)


def resolve_dom0_mem_max(opts: XenBootOptions, host_total_kib: int) -> int | None:
    """Dom0's maximum reservation in KiB (how far it may balloon up); None if unlimited."""
    return dom0_max_kib(opts.dom0_mem, host_total_kib)


def dom0_pinned_cpus(opts: XenBootOptions, cpus: Sequence[int]) -> tuple[int, ...]:
    """The host CPUs dom0's vCPUs are pinned to: with dom0_vcpus_pin, vCPU i on the i-th
    of ``cpus`` (the CPUs the host offers), for as many vCPUs as dom0 has; none without it.
    Xen pins dom0's vCPU i to pCPU i the same way."""
    if not opts.dom0_vcpus_pin:
        return ()
    ordered = sorted(cpus)
    return tuple(ordered[: resolve_dom0_vcpus(opts, len(ordered))])


def resolve_dom0_vcpus(opts: XenBootOptions, host_cpus: int) -> int:
    """Dom0's vCPU count: one per host CPU, bounded by dom0_max_vcpus's min and max."""
    count = host_cpus
    if opts.dom0_max_vcpus is not None:
        count = max(count, opts.dom0_max_vcpus.minimum)
        if opts.dom0_max_vcpus.maximum is not None:
            count = min(count, opts.dom0_max_vcpus.maximum)
    return max(count, 1)
