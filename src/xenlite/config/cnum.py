"""C's number readers, exactly as Xen's C code calls them on config text.

No man page of its own: xl.cfg(5), xl-disk-configuration(5), xl-network-configuration(5),
xl-pci-configuration(5) and xen-command-line.pandoc say "a number", and what that means is
what glibc's ``strtol``/``strtoul``/``atoi``/``sscanf("%x")`` (in libxlu and xl) or Xen's
own ``simple_strtoull`` (in the hypervisor's command-line parser) accept. Each reader returns
where it stopped, as C's ``&end`` does, so callers can check what follows.
"""

from __future__ import annotations

# C locale isspace(): what strtol, strtoul, atoi and sscanf skip before a number.
C_SPACE = " \t\n\v\f\r"
HEX_DIGITS = "0123456789abcdefABCDEF"
# C `long` / `unsigned long` on the 64-bit hosts Xen's tools run on (ERANGE bounds).
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
ULONG_MAX = (1 << 64) - 1


class NumberRangeError(ValueError):
    """strtol() reported ERANGE: the number does not fit in a C long."""


def is_hex(ch: str) -> bool:
    """Whether ``ch`` is one hex digit (the empty string is not)."""
    return ch != "" and ch in HEX_DIGITS


def _space_and_sign(text: str, pos: int) -> tuple[int, bool]:
    """Past the blanks and the one optional sign glibc's readers take: (pos, negative)."""
    while pos < len(text) and text[pos] in C_SPACE:
        pos += 1
    if pos < len(text) and text[pos] in "+-":
        return pos + 1, text[pos] == "-"
    return pos, False


def _unsigned_long(value: int, negative: bool) -> int:
    """glibc's strtoul result: clamped to ULONG_MAX, a minus sign negating modulo 2**64."""
    value = min(value, ULONG_MAX)
    return (1 << 64) - value if negative and value else value


def strtol(text: str) -> int:
    """C ``strtol(text, &end, 0)`` that must consume the whole string, as libxlu uses it.

    Leading C white space and a sign are allowed; ``0x`` selects hex, a leading ``0`` octal.

    :raise NumberRangeError: when the value does not fit in a C long (ERANGE).
    :raise ValueError: when the text is not entirely a number.
    """
    n = len(text)
    i, negative = _space_and_sign(text, 0)
    base = 10
    digits = "0123456789"
    if i < n and text[i] == "0":
        if i + 2 < n + 1 and text[i + 1 : i + 2] in ("x", "X") and is_hex(text[i + 2 : i + 3]):
            base, digits = 16, HEX_DIGITS
            i += 2
        else:
            base, digits = 8, "01234567"
    start = i
    while i < n and text[i] in digits:
        i += 1
    if i == start or i != n:
        raise ValueError(f"{text!r} is not a valid number")
    value = int(text[start:i], base)
    if negative:
        value = -value
    if not LONG_MIN <= value <= LONG_MAX:
        raise NumberRangeError(f"{text!r} is out of range for a C long")
    return value


def strtoul(buf: str, start: int, base: int) -> tuple[int, int]:
    """C strtoul(buf + start, &end, base) for base 10 or 16: (value, end index).

    ``end == start`` when no digits were read; an overflow reads as ULONG_MAX and a minus
    sign negates modulo 2**64, as glibc does. ``buf`` may hold NULs (strtok's cuts).
    """
    pos, negative = _space_and_sign(buf, start)
    digits = "0123456789" if base == 10 else HEX_DIGITS
    if (
        base == 16
        and buf[pos : pos + 2] in ("0x", "0X")
        and pos + 2 < len(buf)
        and buf[pos + 2] in HEX_DIGITS
    ):
        pos += 2
    first = pos
    while pos < len(buf) and buf[pos] in digits:
        pos += 1
    if pos == first:
        return 0, start
    value = int(buf[first:pos], base)
    if value > ULONG_MAX:
        return ULONG_MAX, pos  # ERANGE: the sign is not applied
    return _unsigned_long(value, negative), pos


def scan_hex(text: str, pos: int) -> tuple[int, int] | None:
    """sscanf "%x" at pos: (value as an unsigned int, end) or None when it reads nothing."""
    pos, negative = _space_and_sign(text, pos)
    if text[pos : pos + 2] in ("0x", "0X"):
        # glibc takes the prefix even when no hex digit follows, reading 0.
        digits_start = pos + 2
        end = digits_start
        while end < len(text) and text[end] in HEX_DIGITS:
            end += 1
        value = int(text[digits_start:end], 16) if end > digits_start else 0
        pos = end
    else:
        end = pos
        while end < len(text) and text[end] in HEX_DIGITS:
            end += 1
        if end == pos:
            return None
        value = int(text[pos:end], 16)
        pos = end
    return _unsigned_long(value, negative) & 0xFFFFFFFF, pos


def c_int(value: int) -> int:
    """A long (or unsigned long) stored in a C int (libxl_devid, mtu): the low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def c_atoi(text: str) -> int:
    """C atoi: blanks, sign, digits; the long clamped and then cut to a 32-bit int."""
    n = len(text)
    i, negative = _space_and_sign(text, 0)
    start = i
    while i < n and text[i] in "0123456789":
        i += 1
    if i == start:
        return 0
    value = int(text[start:i])
    if negative:
        value = -value
    return c_int(max(LONG_MIN, min(value, LONG_MAX)))


def simple_strtoull(text: str, start: int) -> tuple[int, int]:
    """Xen's simple_strtoull(base 0) on text[start:]: the value and where the digits end.

    Unlike glibc's it skips no blanks and takes no sign; ``0x`` needs a hex digit after it.
    """
    i = start
    if text.startswith(("0x", "0X"), i) and i + 2 < len(text) and text[i + 2] in HEX_DIGITS:
        j = i + 2
        while j < len(text) and text[j] in HEX_DIGITS:
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
