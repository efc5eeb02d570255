"""Pure formatters of the xl lifecycle verbs: the exact text xl prints, from daemon data.

xl(1) "list", "vm-list", "uptime", "info" and "domid"/"domname"; the layouts follow the printf
formats of Xen 4.17's tools/xl/xl_info.c (ANCHORS.md section c). Nothing here does I/O: the
verbs in ``cli/commands`` fetch the data over RPC and write these strings.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from xenlite.rpc.contract import DomainInfo

# xl_info.c list_domains(): "-rscwS" indexed by libxl_shutdown_reason.
SHUTDOWN_REASON_LETTERS = "-rscwS"
LIST_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
LIST_VERBOSE_HEADER = "   UUID                            Reason-Code\tSecurity Label"
LIST_CONTEXT_HEADER = "   Security Label"
LIST_CPUPOOL_HEADER = "         Cpupool"
VM_LIST_HEADER = "UUID                                  ID    name"
NO_LABEL = "-"  # xl's column for a domain without an XSM security label (no FLASK here)


def _reason_code(info: DomainInfo) -> int:
    # xl reads the reason only of a domain that is shut down; 0 (poweroff) otherwise.
    if not info.shutdown or info.shutdown_reason is None:
        return 0
    return info.shutdown_reason.code


def state_flags(info: DomainInfo) -> str:
    """The six State characters: r b p s, the shutdown-reason letter, d."""
    code = _reason_code(info)
    letter = SHUTDOWN_REASON_LETTERS[code] if 0 <= code < len(SHUTDOWN_REASON_LETTERS) else "?"
    return "".join(
        (
            "r" if info.running else "-",
            "b" if info.blocked else "-",
            "p" if info.paused else "-",
            "s" if info.shutdown else "-",
            letter,
            "d" if info.dying else "-",
        )
    )


def cpu_seconds(cpu_time_ns: int) -> float:
    """xl's ``(float)cpu_time / 1e9``: the nanoseconds pass through a C float first."""
    (as_float32,) = struct.unpack("f", struct.pack("f", float(cpu_time_ns)))
    return float(as_float32) / 1e9


def list_header(*, verbose: bool = False, context: bool = False, cpupool: bool = False) -> str:
    """The header line of ``xl list`` (literal TABs, as xl prints it)."""
    header = LIST_HEADER
    if verbose:
        header += LIST_VERBOSE_HEADER
    elif context:
        header += LIST_CONTEXT_HEADER
    if cpupool:
        header += LIST_CPUPOOL_HEADER
    return header


def list_row(
    info: DomainInfo, *, verbose: bool = False, context: bool = False, cpupool: bool = False
) -> str:
    """One domain's line of ``xl list`` ("%-40s %5d %5lu %5d     %s  %8.1f" + extras)."""
    mem_mib = (info.current_memkb + info.outstanding_memkb) // 1024
    row = (
        f"{info.name:<40} {info.domid:5d} {mem_mib:5d} {info.vcpu_online:5d}     "
        f"{state_flags(info)}  {cpu_seconds(info.cpu_time_ns):8.1f}"
    )
    if verbose:
        row += f" {info.uuid}"
        row += f" {_reason_code(info):8x}" if info.shutdown else f" {'-':>8}"
    if verbose or context:
        row += f" {NO_LABEL:>16}"
    if cpupool:
        row += f"{info.cpupool:>16}"
    return row


def format_list(
    infos: Iterable[DomainInfo],
    *,
    verbose: bool = False,
    context: bool = False,
    cpupool: bool = False,
) -> str:
    """The whole ``xl list`` [-v|-Z] [-c] output, final newline included."""
    lines = [list_header(verbose=verbose, context=context, cpupool=cpupool)]
    lines += [list_row(i, verbose=verbose, context=context, cpupool=cpupool) for i in infos]
    return "\n".join(lines) + "\n"


def format_list_long(infos: Iterable[DomainInfo]) -> str:
    """``xl list -l``: a yajl-beautified JSON array of {"domid", "config"} (and "bootloader"
    for a domain booted through one); domains without a stored config are left out, as xl
    skips those whose config it cannot retrieve."""
    from xenlite.config.domain.libxl_json import dumps_libxl_json

    entries: list[dict[str, object]] = []
    for info in infos:
        if info.config is None:
            continue
        entry: dict[str, object] = {"domid": info.domid, "config": dict(info.config)}
        if info.bootloader is not None:
            # Beyond xl: what pygrub chose at the domain's last boot.
            entry["bootloader"] = dict(info.bootloader)
        entries.append(entry)
    return dumps_libxl_json(entries) + "\n"


# --------------------------------------------------------------------------- xl vm-list


def format_vm_list(infos: Iterable[DomainInfo]) -> str:
    """``xl vm-list``: guests only (no Domain-0), "%s  %d    %-30s" per line."""
    lines = [VM_LIST_HEADER]
    lines += [f"{i.uuid}  {i.domid}    {i.name:<30}" for i in infos if i.domid != 0]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- xl uptime

UPTIME_HEADER = f"{'Name':<33} {'ID':>4} Uptime"


def uptime_to_string(seconds: int, *, short: bool = False) -> str:
    """xl's uptime text: ``D days, HH:MM:SS`` (``1 day, ``; none under a day); ``-s`` drops
    the seconds."""
    day, rest = divmod(max(0, seconds), 86400)
    hour, rest = divmod(rest, 3600)
    minute, sec = divmod(rest, 60)
    clock = f"{hour:2d}:{minute:02d}" if short else f"{hour:2d}:{minute:02d}:{sec:02d}"
    if day > 1:
        return f"{day} days, {clock}"
    if day == 1:
        return f"{day} day, {clock}"
    return clock


def uptime_row(name: str, domid: int, seconds: int) -> str:
    """One line of ``xl uptime`` ("%-33s %4d %s")."""
    return f"{name:<33} {domid:4d} {uptime_to_string(seconds)}"


def uptime_short_row(now_hms: str, name: str, domid: int, seconds: int) -> str:
    """One line of ``xl uptime -s`` (" %s up %s, %s (%d)"); ``now_hms`` is local HH:MM:SS."""
    return f" {now_hms} up {uptime_to_string(seconds, short=True)}, {name} ({domid})"


# --------------------------------------------------------------------------- xl info


def info_line(name: str, value: object) -> str:
    """One ``xl info`` line, "%-23s: %s". virt_caps is "virt_caps :" followed by one
    " word" per capability, so it has no trailing blank when the host has none."""
    text = _info_value(value)
    if name == "virt_caps":
        return f"{name:<23}:" + "".join(f" {word}" for word in text.split())
    return f"{name:<23}: {text}"


def _info_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def format_info(fields: Sequence[tuple[str, object]], only: str | None = None) -> str:
    """``xl info`` [``NAME``]: all lines, or with ``only`` the bare values of the lines whose
    text starts with ``only`` (xl's maybe_printf: ``xl info free`` prints free_memory's and
    free_cpus' values)."""
    out: list[str] = []
    for name, value in fields:
        line = info_line(name, value)
        if only is None:
            out.append(line)
            continue
        colon = line.find(":")
        if line.startswith(only) and colon >= 0 and line[colon + 1 : colon + 2] == " ":
            out.append(line[colon + 2 :])
    return "".join(f"{line}\n" for line in out)


# --------------------------------------------------------------------------- domid helpers


def parse_c_long(text: str) -> tuple[int, bool]:
    """C strtol(text, &end, 10) as ``xl domname`` uses it: (value, any digits read).

    Leading blanks and a sign are accepted and trailing text ignored, as in C.
    """
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    start = i
    while i < len(text) and text[i].isascii() and text[i].isdigit():
        i += 1
    if i == start:
        return 0, False
    return sign * int(text[start:i]), True


def is_domid_qualifier(text: str) -> bool:
    """libxl_domain_qualifier_to_domid: an all-digit string is a domid, anything else a name.
    (An empty string is all digits to libxl and means domid 0.)"""
    return all(ch.isascii() and ch.isdigit() for ch in text)
