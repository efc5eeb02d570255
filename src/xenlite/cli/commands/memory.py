"""``xl mem-set`` and ``xl mem-max``: a domain's balloon target and its ceiling.

xl(1) "mem-set", "mem-max" (tools/xl/xl_mem.c): sizes are read by ``parse_mem_size_kb``
(a bare number is MiB; b, k, m, g, t suffixes), an unreadable size prints
"invalid memory size: SIZE" and exits 1, and success prints nothing. Domain-0 is the host:
its reservation moves within the host's memory book.
"""

from __future__ import annotations

from xenlite.base.units import parse_mem_size_kb
from xenlite.cli.commands.domains import (
    connect,
    find_domain,
    show_help,
    want_args,
)
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import Method


def _size_kb(text: str) -> int:
    try:
        return parse_mem_size_kb(text)
    except ValueError as exc:
        raise VerbExit(f"invalid memory size: {text}\n", hint=str(exc)) from None


def _memory_verb(opts: GlobalOptions, args: list[str], verb: str, method: str) -> int:
    pairs, operands = parse_options(verb, args, "h", ["help"])
    if pairs:
        return show_help(opts, verb)
    want_args(verb, operands, 2, "a domain and a memory size")
    size_kb = _size_kb(operands[1])
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        client.call(method, dom=str(domid), memkb=size_kb)
    return EXIT_SUCCESS


def main_mem_set(opts: GlobalOptions, args: list[str]) -> int:
    """``xl mem-set <Domain> <Size>``."""
    return _memory_verb(opts, args, "mem-set", Method.DOMAIN_MEM_SET)


def main_mem_max(opts: GlobalOptions, args: list[str]) -> int:
    """``xl mem-max <Domain> <Size>``."""
    return _memory_verb(opts, args, "mem-max", Method.DOMAIN_MEM_MAX)
