"""``cpuid=``: libxl's CPUID policy from either of xl.cfg(5)'s syntaxes, and the QEMU ``-cpu``
switches that give a guest that policy.

xl.cfg(5) "cpuid": the libxl form ``"host,tm=0,sse3=0,family=6"`` names feature bits and a
few numeric fields; the xend form ``["1:ecx=xxx...0,edx=...", "0x80000001:ecx=..."]`` spells
registers bit by bit (32 characters, bit 31 first). libxl turns both into one list of
(leaf, subleaf, register bit strings), which is what ``xl create -n`` prints and what the
model keeps. Each character is '1' (force on), '0' (force off), or 'x'/'k'/'s' (the default
policy's value). A forced bit reaches QEMU as ``+flag``/``-flag`` of the CPU model, and
family/model/stepping as its properties; a forced bit QEMU has no name for is an error that
names it, never dropped.

The feature table gives each bit's place (the processor manuals' CPUID layout, Xen's
lower-case names) and QEMU's name for it; tests check both against Xen's own xl and
QEMU's ``-cpu help``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xenlite.config.domain.model import CpuidLeaf

REGISTERS = ("eax", "ebx", "ecx", "edx")
BITS = 32
DEFAULT = "x"
FORCED = "01"
KEEP = "xks"


@dataclass(frozen=True, slots=True)
class Feature:
    """One CPUID feature bit: Xen's name, where it is, and QEMU's name (None: QEMU has none)."""

    name: str
    leaf: int
    subleaf: int | None
    register: str
    bit: int
    qemu: str | None


def _word(leaf: int, subleaf: int | None, register: str, names: str) -> list[Feature]:
    """Features of one register from "bit:xen[=qemu]" items (qemu defaults to xen's name,
    '-' for a bit QEMU does not model)."""
    found: list[Feature] = []
    for item in names.split():
        bit_text, _, names_text = item.partition(":")
        xen, _, qemu = names_text.partition("=")
        qemu_name = None if qemu == "-" else (qemu or xen)
        found.append(Feature(xen, leaf, subleaf, register, int(bit_text), qemu_name))
    return found


FEATURES: tuple[Feature, ...] = (
    *_word(1, None, "edx", "0:fpu 1:vme 2:de 3:pse 4:tsc 5:msr 6:pae 7:mce 8:cx8 9:apic "
           "11:sep 12:mtrr 13:pge 14:mca 15:cmov 16:pat 17:pse36 19:clfsh=clflush 21:ds "
           "22:acpi 23:mmx 24:fxsr 25:sse 26:sse2 27:ss 28:htt=ht 29:tm1=tm 31:pbe"),
    *_word(1, None, "ecx", "0:sse3=pni 1:pclmulqdq 2:dtes64 3:monitor 4:dscpl=ds-cpl 5:vmx "
           "6:smx 7:eist=est 8:tm2 9:ssse3 12:fma 13:cx16 14:xtpr 15:pdcm 17:pcid 18:dca "
           "19:sse4-1=sse4.1 20:sse4-2=sse4.2 21:x2apic 22:movbe 23:popcnt "
           "24:tsc-deadline 25:aesni=aes 26:xsave 27:osxsave=- 28:avx 29:f16c 30:rdrand "
           "31:hypervisor"),
    *_word(0x80000001, None, "edx", "11:syscall 20:nx 22:mmxext 25:ffxsr=fxsr-opt "
           "26:page1gb=pdpe1gb 27:rdtscp 29:lm 30:3dnowext 31:3dnow"),
    *_word(0x80000001, None, "ecx", "0:lahf-lm 1:cmp-legacy 2:svm 3:extapic "
           "4:cr8-legacy=cr8legacy 5:abm 6:sse4a 7:misalignsse 8:3dnowprefetch 9:osvw 10:ibs "
           "11:xop 12:skinit 13:wdt 15:lwp 16:fma4 19:nodeid-msr 21:tbm 22:topoext "
           "26:dbext=- 29:monitorx=-"),
    *_word(0xD, 1, "eax", "0:xsaveopt 1:xsavec 2:xgetbv1 3:xsaves"),
    *_word(7, 0, "ebx", "0:fsgsbase 1:tsc-adjust 2:sgx 3:bmi1 4:hle 5:avx2 "
           "6:fdp-excp-only=- 7:smep 8:bmi2 9:erms 10:invpcid 11:rtm 12:pqm=- "
           "13:no-fpu-sel=- 14:mpx 15:pqe=- 16:avx512f 17:avx512dq 18:rdseed 19:adx 20:smap "
           "21:avx512-ifma=avx512ifma 23:clflushopt 24:clwb 26:avx512pf 27:avx512er "
           "28:avx512cd 29:sha=sha-ni 30:avx512bw 31:avx512vl"),
    *_word(7, 0, "ecx", "0:prefetchwt1=- 1:avx512-vbmi=avx512vbmi 2:umip 3:pku 4:ospke=- "
           "6:avx512-vbmi2=avx512vbmi2 7:cet-ss=- 8:gfni 9:vaes 10:vpclmulqdq "
           "11:avx512-vnni=avx512vnni 12:avx512-bitalg=avx512bitalg "
           "14:avx512-vpopcntdq=avx512-vpopcntdq 22:rdpid 25:cldemote 27:movdiri "
           "28:movdir64b"),
)  # fmt: skip
# The older names libxl still accepts for some features.
ALIASES = {"aes": "aesni", "tm": "tm1", "sse4.1": "sse4-1", "sse4_1": "sse4-1", "sse4.2": "sse4-2",
           "sse4_2": "sse4-2", "lahfsahf": "lahf-lm", "cmplegacy": "cmp-legacy",
           "altmovcr8": "cr8-legacy", "nodeid": "nodeid-msr", "est": "eist"}  # fmt: skip
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
BY_NAME |= {alias: BY_NAME[name] for alias, name in ALIASES.items()}
BY_PLACE: dict[tuple[int, int | None, str, int], Feature] = {
    (f.leaf, f.subleaf, f.register, f.bit): f for f in FEATURES
}
# The processor signature in leaf 1 eax, which QEMU takes as CPU properties: each libxl key's
# parts, (first bit, width), the extended field second.
SIGNATURE: dict[str, tuple[tuple[int, int], ...]] = {
    "stepping": ((0, 4),),
    "model": ((4, 4), (16, 4)),
    "family": ((8, 4), (20, 8)),
}
# libxl's other numeric keys: (leaf, register, first bit, width); QEMU has no property for them.
NUMERIC: dict[str, tuple[int, str, int, int]] = {
    "brandid": (1, "ebx", 0, 8),
    "clflush": (1, "ebx", 8, 8),
    "proccount": (1, "ebx", 16, 8),
    "localapicid": (1, "ebx", 24, 8),
    "maxleaf": (0, "eax", 0, 32),
    "nc": (0x80000008, "ecx", 0, 8),
    "apicidsize": (0x80000008, "ecx", 12, 4),
    "procpkg": (4, "eax", 26, 6),
    "maxhvleaf": (0x40000000, "eax", 0, 8),
}


def _encode_signature(key: str, number: int) -> tuple[int, ...]:
    """The parts of signature field ``key`` holding ``number`` (the extended ones second)."""
    if key == "family":
        return (number, 0) if number <= 0xF else (0xF, number - 0xF)
    if key == "model":
        return number & 0xF, (number >> 4) & 0xF
    return (number,)


def _decode_signature(key: str, parts: Sequence[int]) -> int:
    if key == "family":
        return parts[0] + (parts[1] if parts[0] == 0xF else 0)
    if key == "model":
        return parts[0] | (parts[1] << 4)
    return parts[0]


class CpuidError(ValueError):
    """A cpuid= text that libxl would not accept, or that QEMU cannot express."""


def _set_bits(current: str | None, first: int, width: int, value: str) -> str:
    """``current`` (or all-default) with bits first..first+width-1 set from ``value`` (a
    string of ``width`` characters, most significant first)."""
    chars = list(current or DEFAULT * BITS)
    for offset, char in enumerate(reversed(value)):
        chars[BITS - 1 - (first + offset)] = char
    return "".join(chars)


class _Policy:
    """Leaves being built, in the order libxl adds them."""

    def __init__(self) -> None:
        self.leaves: dict[tuple[int, int | None], dict[str, str | None]] = {}

    def set(self, leaf: int, subleaf: int | None, register: str, first: int, width: int,
            value: str) -> None:  # fmt: skip
        regs = self.leaves.setdefault((leaf, subleaf), dict.fromkeys(REGISTERS))
        regs[register] = _set_bits(regs[register], first, width, value)

    def result(self) -> tuple[CpuidLeaf, ...]:
        return tuple(
            CpuidLeaf(leaf, subleaf, **regs) for (leaf, subleaf), regs in self.leaves.items()
        )


def parse_libxl(text: str) -> tuple[CpuidLeaf, ...]:
    """The libxl form: ``host`` then ``key=value`` pairs.

    :raise CpuidError: naming the key libxl would not accept
    """
    items = text.split(",")
    if items[0] != "host":
        raise CpuidError(f'"{text}" does not start with "host"')
    policy = _Policy()
    for item in items[1:]:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise CpuidError(f'"{item}" is not KEY=VALUE')
        if key in NUMERIC or key in SIGNATURE:
            try:
                number = int(value, 0)
            except ValueError:
                raise CpuidError(f"{key}={value}: {key} takes a number") from None
            _set_number(policy, key, number)
            continue
        feature = BY_NAME.get(key)
        if feature is None:
            raise CpuidError(f'"{key}" is not a CPUID feature xenlite knows')
        if len(value) != 1 or value not in FORCED + KEEP:
            raise CpuidError(f"{key}={value}: a feature takes one of 0, 1, x, k, s")
        policy.set(feature.leaf, feature.subleaf, feature.register, feature.bit, 1, value)
    return policy.result()


def _set_number(policy: _Policy, key: str, number: int) -> None:
    if key in SIGNATURE:
        places = [(1, "eax", first, width) for first, width in SIGNATURE[key]]
        values: tuple[int, ...] = _encode_signature(key, number)
    else:
        places, values = [NUMERIC[key]], (number,)
    for (leaf, register, first, width), value in zip(places, values, strict=True):
        if not 0 <= value < (1 << width):
            raise CpuidError(f"{key}={number} does not fit its bits")
        policy.set(leaf, None, register, first, width, f"{value:0{width}b}")


def parse_xend(items: Sequence[str]) -> tuple[CpuidLeaf, ...]:
    """The xend form: each item ``LEAF[,SUBLEAF]:REG=BITS,...``.

    :raise CpuidError: naming the item libxl would not accept
    """
    policy = _Policy()
    for item in items:
        head, sep, body = item.partition(":")
        if not sep:
            raise CpuidError(f'"{item}" has no ":" after its leaf')
        leaf_text, _, subleaf_text = head.partition(",")
        try:
            leaf = int(leaf_text, 0)
            subleaf = int(subleaf_text, 0) if subleaf_text else None
        except ValueError:
            raise CpuidError(f'"{head}" is not LEAF or LEAF,SUBLEAF') from None
        for part in body.split(","):
            register, eq, bits = part.partition("=")
            if not eq or register not in REGISTERS:
                raise CpuidError(f'"{part}" is not eax=, ebx=, ecx= or edx= and 32 bits')
            if len(bits) != BITS or any(c not in FORCED + KEEP for c in bits):
                raise CpuidError(f"{register}={bits}: give 32 characters of 0, 1, x, k, s")
            policy.set(leaf, subleaf, register, 0, BITS, bits)
    return policy.result()


def qemu_cpu_options(leaves: Iterable[CpuidLeaf]) -> list[str]:
    """The ``-cpu`` switches (``+aes``, ``-pni``, ``family=6``) of a policy.

    :raise CpuidError: naming every forced bit QEMU has no switch for
    """
    options: list[str] = []
    unknown: list[str] = []
    for leaf in leaves:
        for register in REGISTERS:
            bits: str | None = getattr(leaf, register)
            if bits is None:
                continue
            if leaf.leaf == 1 and register == "eax":
                options += _signature(bits, unknown)
                continue
            named = _numeric_fields(leaf, register, bits, unknown)
            for index, char in enumerate(bits):
                bit = BITS - 1 - index
                if char not in FORCED or bit in named:
                    continue
                feature = BY_PLACE.get((leaf.leaf, leaf.subleaf, register, bit))
                if feature is None or feature.qemu is None:
                    name = feature.name if feature is not None else None
                    unknown.append(_place(leaf, register, bit, name))
                    continue
                options.append(("+" if char == "1" else "-") + feature.qemu)
    if unknown:
        raise CpuidError("QEMU's CPU model has no switch for " + ", ".join(unknown))
    return options


def _numeric_fields(leaf: CpuidLeaf, register: str, bits: str, unknown: list[str]) -> set[int]:
    """The bits of libxl's numeric keys forced in this register (named in ``unknown``:
    QEMU has no property for them)."""
    covered: set[int] = set()
    for key, (number_leaf, number_register, first, width) in NUMERIC.items():
        if (number_leaf, number_register) != (leaf.leaf, register):
            continue
        span = range(first, first + width)
        if any(bits[BITS - 1 - bit] in FORCED for bit in span):
            unknown.append(f"{key} ({_place(leaf, register, first, None)})")
            covered |= set(span)
    return covered


def _signature(bits: str, unknown: list[str]) -> list[str]:
    """family=, model=, stepping= from leaf 1 eax; other forced bits there are unknown."""

    def field(first: int, width: int) -> str:
        return bits[BITS - first - width : BITS - first]

    options: list[str] = []
    covered: set[int] = set()
    for name, parts in SIGNATURE.items():
        texts = [field(first, width) for first, width in parts]
        if all(c in KEEP for text in texts for c in text):
            continue
        if any(c not in FORCED for text in texts for c in text):
            unknown.append(f"{name} (leaf 0x1 eax) given in part")
            continue
        options.append(f"{name}={_decode_signature(name, [int(text, 2) for text in texts])}")
        covered |= {b for first, width in parts for b in range(first, first + width)}
    for index, char in enumerate(bits):
        bit = BITS - 1 - index
        if char in FORCED and bit not in covered:
            unknown.append(f"leaf 0x1 eax bit {bit}")
    return options


def _place(leaf: CpuidLeaf, register: str, bit: int, name: str | None) -> str:
    where = f"leaf {leaf.leaf:#x}" + (f",{leaf.subleaf}" if leaf.subleaf is not None else "")
    return f"{name} ({where} {register} bit {bit})" if name else f"{where} {register} bit {bit}"


__all__ = [
    "BY_NAME",
    "FEATURES",
    "NUMERIC",
    "SIGNATURE",
    "CpuidError",
    "CpuidLeaf",
    "Feature",
    "parse_libxl",
    "parse_xend",
    "qemu_cpu_options",
]
