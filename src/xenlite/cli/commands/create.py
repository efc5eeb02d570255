"""``xl create``: read a domain config as xl does; ``-n``/``-N`` prints libxl's JSON."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from xenlite.base.errors import Unsupported
from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions

if TYPE_CHECKING:
    from xenlite.config.domain import HostFacts


def host_facts() -> HostFacts:
    """This host as the domain builder sees it. ``XENLITE_NR_CPUS`` overrides the CPU count
    (for conformance runs against a reference host of another size)."""
    from xenlite.config.domain import HostFacts

    override = os.environ.get("XENLITE_NR_CPUS")
    if override:
        try:
            return HostFacts(nr_cpus=int(override))
        except ValueError as exc:
            raise UsageError("XENLITE_NR_CPUS", f"not a number: {override!r}", "unset it") from exc
    return HostFacts(nr_cpus=os.cpu_count() or 1)


def main_create(opts: GlobalOptions, args: list[str]) -> int:
    pairs, operands = parse_options(
        "create",
        args,
        "hpcf:qndFeVA",
        ["defconfig=", "quiet", "dryrun", "vncviewer", "vncviewer-autopass", "help"],
    )
    config_file: str | None = None
    dryrun = opts.dryrun
    quiet = False
    for flag, value in pairs:
        if flag in ("-h", "--help"):
            from xenlite.cli.main import print_command_help
            from xenlite.cli.table import BY_NAME

            print_command_help(opts.program, BY_NAME["create"])
            return EXIT_SUCCESS
        if flag in ("-f", "--defconfig"):
            config_file = value
        elif flag in ("-n", "--dryrun"):
            dryrun = True
        elif flag in ("-q", "--quiet"):
            quiet = True
    # As xl: without -f, the first operand that is not key=value names the config file.
    overrides: list[str] = []
    for operand in operands:
        if config_file is None and "=" not in operand:
            config_file = operand
        else:
            overrides.append(operand)
    if config_file is None:
        raise UsageError(
            "xl create",
            "no config file given",
            "name a domain config file: xl create /etc/xen/NAME.cfg [key=value ...]",
        )
    if not quiet:
        print(f"Parsing config from {config_file}", file=sys.stderr)

    from xenlite.config.domain import load_domain_config
    from xenlite.config.libxl_json import dumps_domain_config
    from xenlite.config.xlconf import load_xlconf_with_warnings

    xlconf, xlconf_warnings = load_xlconf_with_warnings(None)
    loaded = load_domain_config(config_file, overrides, xlconf=xlconf, host=host_facts())
    for warning in (*xlconf_warnings, *loaded.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if dryrun:
        sys.stdout.write(dumps_domain_config(loaded.config))
        return EXIT_SUCCESS
    raise Unsupported(
        f"xl create {config_file}",
        "the config is valid, but starting domains needs the xenlited domain engine, "
        "which this xenlite release does not include yet",
        "use 'xl create -n' to see the domain configuration, or 'xenlite demo' to boot the "
        "demo guest under QEMU",
    )
