"""The xl host verbs ``info`` and ``dmesg``, as thin clients of xenlited's ``host.*``.

xl(1) "XEN HOST SUBCOMMANDS": info [-n] [NAME] and dmesg [-c]; the ``info`` layout is
xl_info.c's "%-23s: %s" lines (``cli/output.py``).
"""

from __future__ import annotations

import sys

from xenlite.base.errors import RpcError, Unsupported
from xenlite.cli.commands.domains import connect, show_help
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions
from xenlite.rpc.contract import VERSION_SKEW_FIX, Method


def info_fields(answer: object) -> list[tuple[str, object]]:
    """``host.info``'s answer, a JSON list of [name, value] pairs in xl's order.

    :raise RpcError: ``protocol`` when it has another shape.
    """
    if isinstance(answer, dict):  # an object keeps its order through JSON too
        return [(str(k), v) for k, v in answer.items()]
    fields: list[tuple[str, object]] = []
    if isinstance(answer, list):
        for pair in answer:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                break
            fields.append((pair[0], pair[1]))
        else:
            return fields
    raise RpcError(
        "xenlited host.info",
        "the answer is not a list of [name, value] pairs",
        VERSION_SKEW_FIX,
        code="protocol",
    )


def main_info(opts: GlobalOptions, args: list[str]) -> int:
    """``xl info [-n] [NAME]``: host facts; NAME prints the values of the fields that start
    with it."""
    from xenlite.cli.output import format_info

    pairs, operands = parse_options("info", args, "nxh", ["numa", "xenstore", "help"])
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "info")
        if flag in ("-n", "--numa"):
            raise Unsupported(
                "xl info -n",
                "xenlited does not report the host's CPU and NUMA topology tables yet",
                "run 'xl info' without -n",
            )
        if flag in ("-x", "--xenstore"):
            raise Unsupported(
                "xl info -x",
                "xenlited does not report XenStore features yet",
                "run 'xl info' without -x",
            )
    with connect() as client:
        fields = info_fields(client.call(Method.HOST_INFO))
    sys.stdout.write(format_info(fields, operands[0] if operands else None))
    return EXIT_SUCCESS


def main_dmesg(opts: GlobalOptions, args: list[str]) -> int:
    """``xl dmesg [-c]``: the hypervisor-style log; -c clears it after printing."""
    pairs, _ = parse_options("dmesg", args, "ch", ["clear", "help"])
    clear = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "dmesg")
        if flag in ("-c", "--clear"):
            clear = True
    with connect() as client:
        answer = client.call(Method.HOST_DMESG, clear=clear)
    text = answer.get("text") if isinstance(answer, dict) else None
    if not isinstance(text, str):
        raise RpcError(
            "xenlited host.dmesg", "the answer carries no 'text'", VERSION_SKEW_FIX, code="protocol"
        )
    sys.stdout.write(text)
    return EXIT_SUCCESS
