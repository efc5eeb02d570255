"""Memory sizes as xl and the Xen command line read and write them.

xl(1) "mem-set"/"mem-max" sizes (xl_parse.c ``parse_mem_size_kb``) and
xen-command-line(7) "Types: Size" (``parse_size_and_unit``). Errors are ValueError with a
message that names the text, the cause and the accepted forms; callers wrap them in their
own error type (base cannot depend on config).
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

# int64_t in xl: sizes beyond it overflow in C; here they are refused.
_INT64_MAX = (1 << 63) - 1

# Shift (in powers of 1024) from KiB for each xl suffix; "b" shifts down by one step.
_MEM_SUFFIX_KIB_SHIFT = {"t": 3, "g": 2, "m": 1, "": 1, "k": 0}

# xen-command-line(7): the suffix letters and their size in bytes.
_SIZE_SUFFIX_BYTES = {"t": TIB, "g": GIB, "m": MIB, "k": KIB, "b": 1}

_MEM_FORMS = "a number of MiB, or a number with a suffix b, k, m, g or t (e.g. 512, 512m, 2G)"
_SIZE_FORMS = "an integer with an optional suffix B, K, M, G or T (e.g. 1024M, 2G, 512K)"


def _split_digits(text: str) -> tuple[str, str]:
    """Leading decimal digits (after blanks and an optional '+') and the rest."""
    body = text.lstrip(" \t\n\v\f\r")
    if body.startswith("+"):
        body = body[1:]
    end = 0
    while end < len(body) and body[end] in "0123456789":
        end += 1
    return body[:end], body[end:]


def parse_mem_size_kb(text: str) -> int:
    """A memory size as ``xl mem-set``/``mem-max`` read it, in KiB.

    A bare number is MiB (that is what xl's code does; the man page's "kb" is wrong), the
    suffixes b, k, m, g, t (either case) give bytes, KiB, MiB, GiB, TiB. Bytes are rounded
    down to whole KiB as xl does.

    Unlike xl, text without any digit (``""``, ``"m"``) and negative sizes are refused instead
    of being read as 0 or as a negative amount.

    :raise ValueError: when the text is not such a size.
    """
    if text.lstrip(" \t\n\v\f\r").startswith("-"):
        raise ValueError(f"memory size {text!r}: sizes cannot be negative; use {_MEM_FORMS}")
    digits, suffix = _split_digits(text)
    if not digits:
        raise ValueError(f"memory size {text!r}: no number found; use {_MEM_FORMS}")
    unit = suffix.lower()
    if len(unit) > 1 or (unit not in _MEM_SUFFIX_KIB_SHIFT and unit != "b"):
        raise ValueError(f"memory size {text!r}: unknown unit {suffix!r}; use {_MEM_FORMS}")
    value = int(digits)
    kib = value >> 10 if unit == "b" else value << (10 * _MEM_SUFFIX_KIB_SHIFT[unit])
    if kib > _INT64_MAX:
        raise ValueError(f"memory size {text!r}: too large (more than 2^63 KiB)")
    return kib


def format_kib(kib: int) -> str:
    """A KiB amount in the largest unit that states it exactly, as xl reads it back.

    ``format_kib(524288) == "512M"``, ``format_kib(1536) == "1536K"``, ``0 -> "0K"``.
    :raise ValueError: for a negative amount.
    """
    if kib < 0:
        raise ValueError(f"memory size {kib} KiB: negative sizes cannot be written")
    if kib == 0:
        return "0K"
    for suffix, size in (("T", GIB), ("G", MIB), ("M", KIB)):
        if kib % size == 0:
            return f"{kib // size}{suffix}"
    return f"{kib}K"


def format_bytes_human(size: int) -> str:
    """A byte count for people: ``"512 MiB"``, ``"1.5 GiB"``, ``"100 B"`` (one decimal)."""
    if size < 0:
        raise ValueError(f"size {size}: negative sizes cannot be written")
    for name, unit in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= unit:
            text = f"{size / unit:.1f}".removesuffix(".0")
            return f"{text} {name}"
    return f"{size} B"


def _c_strtoull_base0(text: str) -> tuple[int, str] | None:
    """strtoull(text, &end, 0) on an unsigned magnitude: value and the unread rest."""
    if text[:2].lower() == "0x" and len(text) > 2 and text[2] in "0123456789abcdefABCDEF":
        end = 2
        while end < len(text) and text[end] in "0123456789abcdefABCDEF":
            end += 1
        return int(text[2:end], 16), text[end:]
    if text.startswith("0"):
        end = 1
        while end < len(text) and text[end] in "01234567":
            end += 1
        return int(text[:end], 8), text[end:]
    end = 0
    while end < len(text) and text[end] in "0123456789":
        end += 1
    if end == 0:
        return None
    return int(text[:end]), text[end:]


def parse_size_with_unit(text: str, default_unit: str = "K") -> int:
    """A xen-command-line(7) size (``dom0_mem=1024M``, ``2G``, ``512K``, ``4096B``) in bytes.

    The number is read as Xen does (decimal, ``0x`` hex or ``0`` octal), followed by at most
    one suffix T, G, M, K or B in either case; without a suffix ``default_unit`` applies
    (Xen's own default is K; an option's documentation may say otherwise).

    :raise ValueError: when the text is not such a size or ``default_unit`` is not a unit.
    """
    unit_default = default_unit.lower()
    if unit_default not in _SIZE_SUFFIX_BYTES:
        raise ValueError(f"size unit {default_unit!r}: not one of B, K, M, G, T")
    parsed = _c_strtoull_base0(text.strip())
    if parsed is None:
        raise ValueError(f"size {text!r}: no number found; use {_SIZE_FORMS}")
    value, rest = parsed
    unit = rest.lower()
    if unit == "":
        unit = unit_default
    elif unit not in _SIZE_SUFFIX_BYTES:
        raise ValueError(f"size {text!r}: unknown unit {rest!r}; use {_SIZE_FORMS}")
    return value * _SIZE_SUFFIX_BYTES[unit]
