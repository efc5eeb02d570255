"""``xl create``: read a domain config as xl does, then have xenlited start the domain.

xl(1) "create": ``-n``/``-N`` print libxl's JSON instead; ``-p`` leaves the domain paused;
``-F`` stays in the foreground until the domain is gone; ``-e`` is accepted with xl's meaning
("do not wait in the background"), which is always true here because xenlited, not a
per-domain xl process, supervises every domain; ``-q`` drops "Parsing config from";
``-d`` also prints the config to stderr. ``-c`` attaches to the console as ``xl console``
does: the domain is created paused, the console taken, and only then is it unpaused (unless
``-p``), so the console shows the guest from its first word, as xl's early-attaching
xenconsole does. ``-V``/``-A`` start a VNC viewer (cli/commands/vnc.py).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions
from xenlite.rpc.contract import VERSION_SKEW_FIX, Method

CREATE_TIMEOUT_S = 300.0  # the first create on a host may probe the accelerator (a short boot)

if TYPE_CHECKING:
    from xenlite.config.domain.build import HostFacts
    from xenlite.config.domain.model import DomainConfig
    from xenlite.rpc.client import RpcClient
    from xenlite.rpc.contract import DomainInfo


def host_facts() -> HostFacts:
    """This host as the domain builder sees it. ``XENLITE_NR_CPUS`` overrides the CPU count
    (for conformance runs against a reference host of another size)."""
    from xenlite.config.domain.build import HostFacts

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
    quiet = paused = debug = foreground = no_wait = console = vnc = autopass = False
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
        elif flag == "-p":
            paused = True
        elif flag == "-c":
            console = True
        elif flag == "-d":
            debug = True
        elif flag == "-F":
            foreground = True
        elif flag in ("-V", "--vncviewer"):
            vnc = True
        elif flag in ("-A", "--vncviewer-autopass"):
            vnc = autopass = True
        elif flag == "-e":
            # xl: do not keep a process waiting for the domain's death. xenlited supervises
            # every domain (on_poweroff/on_reboot/on_crash), so nothing waits here anyway;
            # as in xl, -e also cancels -F wherever it stands.
            no_wait = True
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

    from xenlite.config.domain.build import load_domain_config
    from xenlite.config.domain.libxl_json import domain_config_to_json, dumps_domain_config
    from xenlite.config.hostconf.xlconf import load_xlconf_with_warnings

    xlconf, xlconf_warnings = load_xlconf_with_warnings(None)
    loaded = load_domain_config(config_file, overrides, xlconf=xlconf, host=host_facts())
    for warning in (*xlconf_warnings, *loaded.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if dryrun:
        # What the create would say, beyond xl's own warnings: the settings without effect
        # here, and those a create refuses (the JSON is still xl's).
        from xenlite.config.settings import domain_reports

        reported, refused = domain_reports(loaded.config)
        for report in reported:
            print(f"warning: {report.message()}", file=sys.stderr)
        for report in refused:
            print(f"warning: {report.key}: xl create would refuse it here: "
                  f"{report.setting.explanation}", file=sys.stderr)  # fmt: skip
        sys.stdout.write(dumps_domain_config(loaded.config))
        return EXIT_SUCCESS
    if debug:
        sys.stderr.write(dumps_domain_config(loaded.config))
        sys.stderr.flush()

    from xenlite.cli.commands.domains import log
    from xenlite.rpc.client import RpcClient

    with RpcClient(timeout=CREATE_TIMEOUT_S) as client:
        answer = client.call(
            Method.DOMAIN_CREATE,
            config=domain_config_to_json(_local_disk_paths(loaded.config)),
            config_text=config_text(config_file, overrides),
            source=os.path.abspath(config_file),
            paused=paused or console,
            parser_warnings=list(loaded.warnings),
        )
        domid, name, warnings = _created(answer)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if vnc:
            # xl forks the viewer before it attaches a console (or waits) itself.
            from xenlite.base.errors import XenliteError
            from xenlite.cli.commands.vnc import start_viewer

            try:
                start_viewer(domid, autopass=autopass, wait=False)
            except XenliteError as exc:  # the domain is made all the same, as under xl
                print(f"warning: no VNC viewer: {exc}", file=sys.stderr)
        if console:
            _attach_console(client, domid, leave_paused=paused)
        if foreground and not no_wait:
            log(opts, f"Waiting for domain {name} (domid {domid}) to die [pid {os.getpid()}]")
            _follow_until_gone(opts, client, domid)
    return EXIT_SUCCESS


def _attach_console(client: RpcClient, domid: int, *, leave_paused: bool) -> None:
    """``xl create -c``: hold the new (paused) domain's console, then let it run."""
    from xenlite.cli.commands.console import attach_console
    from xenlite.cli.commands.domains import connect

    unpaused = leave_paused

    def unpause() -> None:
        nonlocal unpaused
        if not unpaused:
            unpaused = True
            # ``client`` carries the console stream; the unpause needs its own connection.
            with connect() as other:
                other.call(Method.DOMAIN_UNPAUSE, dom=str(domid))

    try:
        attach_console(client, domid, attached=unpause)
    finally:
        unpause()  # the console could not be had: the domain runs all the same, as asked


def config_text(path: str, overrides: list[str]) -> str:
    """The config as xl stores it for the domain: the file's text, then the command line's
    key=value settings, one per line, after an empty line (xl's "\\n%s\\n")."""
    if path == "/dev/null":  # xl: the whole config comes from the command line
        text = ""
    else:
        with open(path, "rb") as fh:
            # JSON carries text only; a byte that is not UTF-8 becomes U+FFFD in this copy.
            text = fh.read().decode("utf-8", errors="replace")
    if overrides:
        text += "\n" + "".join(f"{o}\n" for o in overrides) + "\n"
    return text


def _created(answer: object) -> tuple[int, str, list[str]]:
    """The new domain's domid and name, and what its create reported (config.settings)."""
    from xenlite.base.errors import RpcError

    if isinstance(answer, dict):
        domid, name = answer.get("domid"), answer.get("name")
        warnings = answer.get("warnings", [])
        if (
            isinstance(domid, int)
            and not isinstance(domid, bool)
            and isinstance(name, str)
            and isinstance(warnings, list)
        ):
            return domid, name, [str(w) for w in warnings]
    raise RpcError(
        "xenlited domain.create",
        f"the answer {answer!r} lacks the new domain's domid and name",
        VERSION_SKEW_FIX,
        code="protocol",
    )


def _follow_until_gone(opts: GlobalOptions, client: RpcClient, domid: int) -> None:
    """``xl create -F``: stay until the domain is gone. xenlited applies the on_* actions;
    the domain is followed by its uuid, so a restart (a new domid) is followed too, and a
    domain left shut down by a "preserve" action ends the wait as it ends xl's."""
    import time

    from xenlite.cli.commands import domains as dom

    infos = {i.domid: i for i in dom.list_domains(client)}
    first = infos.get(domid)
    if first is None:
        log_gone(opts, domid)
        return
    uuid = first.uuid
    current = domid
    reported: set[int] = set()
    delay = dom.POLL_FIRST_S
    while True:
        mine = [i for i in dom.list_domains(client) if i.uuid == uuid]
        if not mine:
            log_gone(opts, current)
            return
        info = max(mine, key=lambda i: i.domid)
        if info.domid != current:
            dom.log(opts, "Done. Rebooting now")
            current = info.domid
        if info.shutdown and info.domid not in reported:
            reported.add(info.domid)
            code = info.shutdown_reason.code if info.shutdown_reason else 0
            dom.log(opts, f"Domain {info.domid} has shut down, reason code {code} {code:#x}")
            if _action(info) == "preserve":
                dom.log(opts, "Done. Exiting now")
                return
        time.sleep(delay)
        delay = min(delay * 2, dom.POLL_MAX_S)


def log_gone(opts: GlobalOptions, domid: int) -> None:
    from xenlite.cli.commands.domains import log

    log(opts, f"Domain {domid} has been destroyed.")


# libxl's defaults for the on_* actions (libxl_types.idl), for configs that omit them.
_DEFAULT_ACTIONS = {
    "poweroff": ("on_poweroff", "destroy"),
    "reboot": ("on_reboot", "restart"),
    "suspend": ("", "preserve"),
    "crash": ("on_crash", "destroy"),
    "watchdog": ("on_watchdog", "destroy"),
    "soft_reset": ("on_soft_reset", "soft_reset"),
}


def _action(info: DomainInfo) -> str:
    """The on_* action the domain's config names for its shutdown reason."""
    reason = str(info.shutdown_reason or "poweroff")
    key, default = _DEFAULT_ACTIONS.get(reason, ("", "destroy"))
    value = info.config.get(key) if info.config is not None and key else None
    return value if isinstance(value, str) else default


def _local_disk_paths(config: DomainConfig) -> DomainConfig:
    """The config with its disk targets relative to xl's directory made absolute."""
    import dataclasses

    from xenlite.cli.commands.devices import local_disk_path

    return dataclasses.replace(config, disks=tuple(local_disk_path(d) for d in config.disks))
