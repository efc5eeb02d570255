"""``xl vcpu-list``, ``xl vcpu-pin`` and ``xl vcpu-set``: where each vCPU runs, where it may
run, and how many a domain has.

xl(1) "vcpu-list", "vcpu-pin" (tools/xl/xl_vcpu.c): the rows are
``"%-32s %5u %5u"`` (name, domid, vCPU), then ``"%5u %3c%c- "`` (CPU, running, blocked) or
``"%5c %3c%cp "`` for an offline vCPU, ``"%9.1f  "`` (seconds of CPU time) and the hard and
soft affinity as xl's ``print_bitmap`` writes them (``config.cpus.format_cpumap``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from xenlite.cli.commands.domains import (
    connect,
    find_domain,
    show_help,
)
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.config.specs.cpus import format_cpumap, parse_cpu_list
from xenlite.rpc.contract import Method, bool_field, int_field, int_list, objects, str_field

_SOURCE = Method.DOMAIN_VCPU_LIST
HEADER = (
    f"{'Name':<32} {'ID':>5} {'VCPU':>5} {'CPU':>5} {'State':>5} {'Time(s)':>9} "
    "Affinity (Hard / Soft)\n"
)


def vcpu_row(name: str, domid: int, row: Mapping[str, object], nr_cpus: int) -> str:
    """One line as xl_vcpu.c's print_vcpuinfo() prints it.

    :raise RpcError: ``protocol`` when xenlited's row lacks a field or has the wrong type
    """
    line = f"{name:<32} {domid:5d} {int_field(row, 'vcpuid', _SOURCE):5d}"
    if bool_field(row, "online", _SOURCE):
        running = "r" if bool_field(row, "running", _SOURCE) else "-"
        blocked = "b" if bool_field(row, "blocked", _SOURCE) else "-"
        line += f"{int_field(row, 'cpu', _SOURCE):5d} {running:>3}{blocked}- "
    else:
        line += f"{'-':>5} {'-':>3}-p "
    line += f"{int_field(row, 'time_ns', _SOURCE) / 1e9:9.1f}  "
    hard, soft = int_list(row, "hard", _SOURCE), int_list(row, "soft", _SOURCE)
    return line + f"{_cpumap(hard, nr_cpus)} / {_cpumap(soft, nr_cpus)}\n"


def _cpumap(cpus: list[int], nr_cpus: int) -> str:
    return format_cpumap([c for c in cpus if 0 <= c < nr_cpus], nr_cpus)


def main_vcpu_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl vcpu-list [Domain, ...]``."""
    pairs, operands = parse_options("vcpu-list", args, "h", ["help"])
    if pairs:
        return show_help(opts, "vcpu-list")
    nr_cpus = os.cpu_count() or 1
    answers: list[Mapping[str, object]] = []
    with connect() as client:
        if not operands:
            answers += objects(client.call(Method.DOMAIN_VCPU_LIST), "[]", _SOURCE)
        for operand in operands:
            domid, _ = find_domain(client, operand)
            answers += objects(client.call(Method.DOMAIN_VCPU_LIST, dom=str(domid)), "[]", _SOURCE)
    out = [HEADER]
    for domain in answers:
        name, domid = str_field(domain, "name", _SOURCE), int_field(domain, "domid", _SOURCE)
        for row in objects(domain.get("vcpus"), "vcpus", _SOURCE):
            out.append(vcpu_row(name, domid, row, nr_cpus))
    sys.stdout.write("".join(out))
    return EXIT_SUCCESS


def _affinity(text: str, nr_cpus: int) -> list[int] | None:
    """``-`` keeps the affinity as it is (None); otherwise a CPU list as cpus= reads it."""
    if text == "-":
        return None
    return sorted(parse_cpu_list(text, nr_cpus, key="affinity"))


def main_vcpu_pin(opts: GlobalOptions, args: list[str]) -> int:
    """``xl vcpu-pin [-f] <Domain> <VCPU|all> <Hard affinity|-|all> [<Soft affinity|-|all>]``."""
    pairs, operands = parse_options("vcpu-pin", args, "fh", ["force", "help"])
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "vcpu-pin")
        # -f/--force lets xl pin dom0 vCPUs against dom0_vcpus_pin; Domain-0 is refused here.
    if len(operands) not in (3, 4):
        raise VerbExit(
            "'xl vcpu-pin' requires a domain, a vCPU and a hard affinity\n",
            hint="xl vcpu-pin DOMAIN VCPU|all HARD|-|all [SOFT|-|all]",
        )
    nr_cpus = os.cpu_count() or 1
    vcpu_text = operands[1]
    if vcpu_text == "all":
        vcpu: int | None = None
    elif vcpu_text.isdigit():
        vcpu = int(vcpu_text)
    else:
        raise VerbExit(f"Invalid vcpu {vcpu_text!r}\n", hint="give a vCPU number or all")
    hard = _affinity(operands[2], nr_cpus)
    soft = _affinity(operands[3], nr_cpus) if len(operands) == 4 else None
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        client.call(Method.DOMAIN_VCPU_PIN, dom=str(domid), vcpu=vcpu, hard=hard, soft=soft)
    return EXIT_SUCCESS


def main_vcpu_set(opts: GlobalOptions, args: list[str]) -> int:
    """``xl vcpu-set [-i|--ignore-host] <Domain> <vCPUs>``: xl_vcpu.c's vcpuset(), whose
    overcommit check counts the host's CPUs against the vCPUs asked for."""
    from xenlite.cli.commands.domains import list_domains, want_args

    pairs, operands = parse_options("vcpu-set", args, "ih", ["ignore-host", "help"])
    flags = {flag for flag, _ in pairs}
    if flags & {"-h", "--help"}:
        return show_help(opts, "vcpu-set")
    want_args("vcpu-set", operands, 2, "a domain and a number of vCPUs")
    digits = re.match(r"\d+", operands[1])  # strtoul: the leading digits
    if digits is None or int(digits[0]) > 0x7FFFFFFF:
        raise VerbExit("Error: Invalid argument.\n")
    count = int(digits[0])
    with connect() as client:
        domains = list_domains(client)
        domid, _ = find_domain(client, operands[0], domains)
        if not flags & {"-i", "--ignore-host"}:
            host_cpus = os.cpu_count() or 1
            online = next((d.vcpu_online for d in domains if d.domid == domid), 0)
            if count > online and count > host_cpus:
                raise VerbExit(
                    f"You are overcommmitting! You have {host_cpus} physical CPUs and want "
                    f"{count} vCPUs! Aborting, use --ignore-host to continue\n"
                )
        client.call(Method.DOMAIN_VCPU_SET, dom=str(domid), count=count)
    return EXIT_SUCCESS
