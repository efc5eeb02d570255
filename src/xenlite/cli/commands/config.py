"""``xenlite config``: read and translate host configuration files."""

from __future__ import annotations

import json
import sys

from xenlite.cli.getopt import UsageError
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions

_FIX = "see 'xenlite help config'"


def main_config(opts: GlobalOptions, args: list[str]) -> int:
    if not args:
        raise UsageError("xenlite config", "no action given", _FIX)
    action, rest = args[0], args[1:]
    if action == "import-xend":
        from xenlite.config.hostconf.xend import load_xend_config, xend_to_xlconf_text

        if len(rest) != 1:
            raise UsageError("xenlite config import-xend", "expects one file", _FIX)
        print(xend_to_xlconf_text(load_xend_config(rest[0])), end="")
        return EXIT_SUCCESS
    if action == "xlconf":
        from xenlite.config.hostconf.xlconf import load_xlconf_with_warnings

        if len(rest) > 1:
            raise UsageError("xenlite config xlconf", "expects at most one file", _FIX)
        conf, warnings = load_xlconf_with_warnings(rest[0] if rest else None)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(json.dumps(conf.to_json(), indent=2))
        return EXIT_SUCCESS
    if action == "bootopts":
        from xenlite.config.hostconf.bootopts import parse_xen_cmdline, read_grub_default

        if len(rest) == 2 and rest[0] == "--grub":
            cmdline, source = read_grub_default(rest[1]), rest[1]
        elif len(rest) == 1 and rest[0] != "--grub":
            cmdline, source = rest[0], "<command line>"
        else:
            raise UsageError(
                "xenlite config bootopts", "expects a command line or --grub FILE", _FIX
            )
        print(json.dumps(parse_xen_cmdline(cmdline, source=source).to_json(), indent=2))
        return EXIT_SUCCESS
    if action == "settings":
        return _print_settings(rest)
    raise UsageError("xenlite config", f"unknown action '{action}'", _FIX)


def _print_settings(args: list[str]) -> int:
    """``xenlite config settings [--json] [NAME...]``: the settings table, or some rows."""
    from xenlite.config.settings import TABLE

    as_json = "--json" in args
    names = [arg for arg in args if arg != "--json"]
    rows = [row for row in TABLE if not names or row.name in names]
    missing = [name for name in names if all(row.name != name for row in TABLE)]
    if missing:
        raise UsageError(
            "xenlite config settings",
            f"no setting is called {', '.join(repr(name) for name in missing)}",
            "run 'xenlite config settings' for the whole table",
        )
    if as_json:
        print(json.dumps([
            {"name": row.name, "source": str(row.source), "treatment": str(row.treatment),
             "fields": list(row.fields), "by": list(row.by), "why": row.why}
            for row in rows
        ], indent=2))  # fmt: skip
        return EXIT_SUCCESS
    width = max(len(row.name) for row in rows)
    print(f"{'SETTING':<{width}}  {'SOURCE':<16}  {'TREATMENT':<9}  WHY / HONOURED BY")
    for row in rows:
        note = row.explanation or ", ".join(target.split(":")[1] for target in row.by)
        print(f"{row.name:<{width}}  {row.source!s:<16}  {row.treatment!s:<9}  {note}".rstrip())
    return EXIT_SUCCESS
