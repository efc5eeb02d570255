"""The xl domain lifecycle verbs, as thin clients of xenlited's ``domain.*`` operations.

xl(1) "DOMAIN SUBCOMMANDS": list, destroy, pause, unpause, shutdown, reboot, rename, domid,
domname, uptime, vm-list. Options, messages and exit codes follow Xen 4.17's xl_info.c,
xl_vmcontrol.c and xl_misc.c; the text layouts are in ``cli/output.py``. The RPC client is
imported inside the verbs so that ``xl --version`` loads neither json nor the socket code.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from xenlite.base.errors import DomainNotFound, RpcError, Unsupported
from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import VERSION_SKEW_FIX, Method

if TYPE_CHECKING:
    from xenlite.rpc.client import RpcClient
    from xenlite.rpc.contract import DomainInfo, ShutdownReason

# Polling of ``domain.list`` by ``shutdown -w`` / ``create -F``: first quickly (a guest that
# powers off at once), then at a pace that keeps xenlited idle.
POLL_FIRST_S = 0.1
POLL_MAX_S = 0.5
INVALID_DOMAIN_RC = -6  # libxl ERROR_INVAL, what xl's find_domain prints for an unknown name


def log(opts: GlobalOptions, message: str) -> None:
    """xl's LOG(): one line on stderr, prefixed with the time under the global -T."""
    if opts.timestamps:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        sys.stderr.write(f"{stamp}: {message}\n")
    else:
        sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def show_help(opts: GlobalOptions, verb: str) -> int:
    from xenlite.cli.main import print_command_help
    from xenlite.cli.table import BY_NAME

    print_command_help(opts.program, BY_NAME[verb])
    return EXIT_SUCCESS


def want_args(verb: str, operands: Sequence[str], count: int, what: str) -> None:
    """:raise UsageError: when fewer than ``count`` operands were given."""
    if len(operands) < count:
        raise UsageError(f"xl {verb}", f"requires {what}", f"see 'xl help {verb}'")


def connect() -> RpcClient:
    """A client of xenlited (DaemonNotRunning, with the fix, comes from its first call)."""
    from xenlite.rpc.client import RpcClient

    return RpcClient()


def list_domains(client: RpcClient) -> list[DomainInfo]:
    """``domain.list``: Domain-0 first, then the domains by domid.

    :raise RpcError: ``protocol`` when the answer is not a list of DomainInfo objects.
    """
    from xenlite.rpc.contract import domain_info_from_json

    answer = client.call(Method.DOMAIN_LIST)
    if not isinstance(answer, list):
        raise RpcError(
            "xenlited domain.list",
            f"answered {type(answer).__name__}, not a list of domains",
            VERSION_SKEW_FIX,
            code="protocol",
        )
    return [domain_info_from_json(item) for item in answer]


def invalid_domain(qualifier: str) -> VerbExit:
    return VerbExit(
        f"{qualifier} is an invalid domain identifier (rc={INVALID_DOMAIN_RC})\n",
        hint="'xl list' shows the domains by name and id",
    )


def find_domain(
    client: RpcClient, qualifier: str, domains: Sequence[DomainInfo] | None = None
) -> tuple[int, str | None]:
    """xl's find_domain(): (domid, name if known). An all-digit qualifier is a domid and is
    not looked up (the operation itself says when no such domain exists); a name must name a
    domain.

    :raise VerbExit: for a name no domain has, with xl's message.
    """
    from xenlite.cli.output import is_domid_qualifier

    if is_domid_qualifier(qualifier):
        domid = int(qualifier or "0") & 0xFFFFFFFF  # strtoul into a uint32_t
        known = {d.domid: d.name for d in domains} if domains is not None else {}
        return domid, known.get(domid)
    for info in list_domains(client) if domains is None else domains:
        if info.name == qualifier:
            return info.domid, info.name
    raise invalid_domain(qualifier)


# --------------------------------------------------------------------------- list


def main_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl list [-l] [-v] [-Z] [-c] [-n] [Domain...]``."""
    from xenlite.cli import output

    pairs, operands = parse_options(
        "list", args, "lvhZcn", ["long", "verbose", "context", "cpupool", "numa", "help"]
    )
    details = verbose = context = cpupool = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "list")
        if flag in ("-l", "--long"):
            details = True
        elif flag in ("-v", "--verbose"):
            verbose = True
        elif flag in ("-Z", "--context"):
            context = True
        elif flag in ("-c", "--cpupool"):
            cpupool = True
        elif flag in ("-n", "--numa"):
            raise Unsupported(
                "xl list -n",
                "xenlite does not track NUMA node affinity of domains yet",
                "run 'xl list' without -n",
            )
    if details:
        _check_json_output(opts)
    with connect() as client:
        domains = list_domains(client)
    shown = domains if not operands else [_pick(domains, q) for q in operands]
    if details:
        sys.stdout.write(output.format_list_long(shown))
    else:
        sys.stdout.write(
            output.format_list(shown, verbose=verbose, context=context, cpupool=cpupool)
        )
    return EXIT_SUCCESS


def _pick(domains: Sequence[DomainInfo], qualifier: str) -> DomainInfo:
    from xenlite.cli.output import is_domid_qualifier

    if is_domid_qualifier(qualifier):
        domid = int(qualifier or "0") & 0xFFFFFFFF
        for info in domains:
            if info.domid == domid:
                return info
        raise VerbExit(
            f"Error: Domain '{qualifier}' does not exist.\n",
            hint="'xl list' shows the domains by name and id",
        )
    for info in domains:
        if info.name == qualifier:
            return info
    raise invalid_domain(qualifier)


def _check_json_output(opts: GlobalOptions) -> None:
    """``xl list -l`` prints JSON; xl.conf's output_format="sxp" asks for xend's SXP."""
    from xenlite.config.hostconf.xlconf import OutputFormat, load_xlconf_with_warnings

    xlconf, warnings = load_xlconf_with_warnings(None)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if xlconf.output_format is OutputFormat.SXP:
        raise Unsupported(
            "xl list -l",
            'xl.conf sets output_format="sxp", and xenlite prints domain details as JSON only',
            'remove output_format="sxp" from /etc/xen/xl.conf (JSON is xl\'s default)',
        )


# --------------------------------------------------------------------------- vm-list


def main_vm_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl vm-list``: the guests, without Domain-0."""
    from xenlite.cli import output

    pairs, _ = parse_options("vm-list", args, "h", ["help"])
    if pairs:
        return show_help(opts, "vm-list")
    with connect() as client:
        domains = list_domains(client)
    sys.stdout.write(output.format_vm_list(domains))
    return EXIT_SUCCESS


# --------------------------------------------------------------------------- domid / domname


def main_domid(opts: GlobalOptions, args: list[str]) -> int:
    """``xl domid <DomainName>``."""
    pairs, operands = parse_options("domid", args, "h", ["help"])
    if pairs:
        return show_help(opts, "domid")
    want_args("domid", operands, 1, "a domain name")
    name = operands[0]
    with connect() as client:
        domains = list_domains(client)
    for info in domains:
        if info.name == name:
            print(info.domid)
            return EXIT_SUCCESS
    raise VerbExit(
        f"Can't get domid of domain name '{name}', maybe this domain does not exist.\n",
        hint="'xl list' shows the domains by name and id",
    )


def main_domname(opts: GlobalOptions, args: list[str]) -> int:
    """``xl domname <DomainId>``."""
    from xenlite.cli.output import parse_c_long

    pairs, operands = parse_options("domname", args, "h", ["help"])
    if pairs:
        return show_help(opts, "domname")
    want_args("domname", operands, 1, "a domain id")
    value, has_digits = parse_c_long(operands[0])
    if not has_digits:
        raise VerbExit("Invalid domain id.\n\n", hint="give a number: xl domname 3")
    domid = value & 0xFFFFFFFF  # strtol's long stored into a uint32_t
    with connect() as client:
        domains = list_domains(client)
    for info in domains:
        if info.domid == domid:
            print(info.name)
            return EXIT_SUCCESS
    raise VerbExit(
        f"Can't get domain name of domain id '{domid}', maybe this domain does not exist.\n",
        hint="'xl list' shows the domains by name and id",
    )


# --------------------------------------------------------------------------- pause & co


def _simple_domain_verb(opts: GlobalOptions, args: list[str], verb: str) -> tuple[str, bool]:
    """Parse ``xl <verb> [-h] <Domain>``: (the domain qualifier, help was shown)."""
    pairs, operands = parse_options(verb, args, "h", ["help"])
    if pairs:
        show_help(opts, verb)
        return "", True
    want_args(verb, operands, 1, "a domain (name or id)")
    return operands[0], False


def main_pause(opts: GlobalOptions, args: list[str]) -> int:
    """``xl pause <Domain>``."""
    qualifier, helped = _simple_domain_verb(opts, args, "pause")
    if helped:
        return EXIT_SUCCESS
    with connect() as client:
        domid, _ = find_domain(client, qualifier)
        client.call(Method.DOMAIN_PAUSE, dom=str(domid))
    return EXIT_SUCCESS


def main_unpause(opts: GlobalOptions, args: list[str]) -> int:
    """``xl unpause <Domain>``."""
    qualifier, helped = _simple_domain_verb(opts, args, "unpause")
    if helped:
        return EXIT_SUCCESS
    with connect() as client:
        domid, _ = find_domain(client, qualifier)
        client.call(Method.DOMAIN_UNPAUSE, dom=str(domid))
    return EXIT_SUCCESS


def main_destroy(opts: GlobalOptions, args: list[str]) -> int:
    """``xl destroy [-f] <Domain>``."""
    pairs, operands = parse_options("destroy", args, "fh", ["help"])
    force = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "destroy")
        if flag == "-f":
            force = True
    want_args("destroy", operands, 1, "a domain (name or id)")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        if domid == 0:
            if not force:
                raise VerbExit(
                    "Not destroying domain 0; use -f to force.\n"
                    "This can only be done when using a disaggregated hardware domain and "
                    "toolstack.\n\n"
                )
            raise Unsupported(
                "xl destroy -f 0",
                "Domain-0 is this host itself; xenlite has no disaggregated hardware domain "
                "that could destroy it",
                "stop the host services with 'xenlite stop', or shut the host down",
            )
        try:
            client.call(Method.DOMAIN_DESTROY, dom=str(domid))
        except DomainNotFound:
            # Gone between the lookup and the destroy (another xl destroy won the race): say
            # it of the name the user gave, as xl does of a name that names no domain.
            from xenlite.cli.output import is_domid_qualifier

            if is_domid_qualifier(operands[0]):
                raise
            raise invalid_domain(operands[0]) from None
    return EXIT_SUCCESS


def main_rename(opts: GlobalOptions, args: list[str]) -> int:
    """``xl rename <Domain> <NewDomainName>``."""
    pairs, operands = parse_options("rename", args, "h", ["help"])
    if pairs:
        return show_help(opts, "rename")
    want_args("rename", operands, 2, "a domain and its new name")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        client.call(Method.DOMAIN_RENAME, dom=str(domid), name=operands[1])
    return EXIT_SUCCESS


# --------------------------------------------------------------------------- shutdown/reboot


def main_shutdown(opts: GlobalOptions, args: list[str]) -> int:
    """``xl shutdown [-a] [-w[w]] [-F] <-a|Domain>``."""
    return _shutdown_or_reboot(opts, args, reboot=False)


def main_reboot(opts: GlobalOptions, args: list[str]) -> int:
    """``xl reboot [-a] [-w[w]] [-F] <-a|Domain>``."""
    return _shutdown_or_reboot(opts, args, reboot=True)


def _shutdown_or_reboot(opts: GlobalOptions, args: list[str], *, reboot: bool) -> int:
    verb = "reboot" if reboot else "shutdown"
    pairs, operands = parse_options(verb, args, "awFh", ["all", "wait", "help"])
    everything = False
    waits = 0
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, verb)
        if flag in ("-a", "--all"):
            everything = True
        elif flag in ("-w", "--wait"):
            waits += 1
        # -F (fall back to the ACPI event when the guest has no PV control) needs nothing
        # here: xenlited always presses the ACPI button / resets next to control/shutdown.
    if not operands and not everything:
        raise VerbExit(
            "You must specify -a or a domain id.\n\n",
            hint=f"xl {verb} NAME, or xl {verb} -a for every guest",
        )
    with connect() as client:
        if everything:
            targets = [d.domid for d in list_domains(client) if d.domid != 0]
        else:
            targets = [find_domain(client, operands[0])[0]]
        for domid in targets:
            log(opts, f"{'Rebooting' if reboot else 'Shutting down'} domain {domid}")
            client.call(Method.DOMAIN_SHUTDOWN, dom=str(domid), reboot=reboot)
        if waits:
            wait_for_domains(opts, client, targets, death_only=waits > 1)
    return EXIT_SUCCESS


def wait_for_domains(
    opts: GlobalOptions, client: RpcClient, domids: Sequence[int], *, death_only: bool
) -> None:
    """xl's wait_for_domain_deaths(), by polling ``domain.list``: each domain counts once it
    is gone or, unless ``death_only`` (``-ww``), once it has shut down."""
    log(opts, f"Waiting for {len(domids)} domains")
    remaining = list(domids)
    seen_shutdown: set[int] = set()
    delay = POLL_FIRST_S
    while remaining:
        current = {d.domid: d for d in list_domains(client)}
        for domid in list(remaining):
            info = current.get(domid)
            if info is None:
                # An on_* action may have destroyed it between two polls: xl's event loop
                # never misses the shutdown before, so ask the daemon how it ended.
                reason = _ended_reason(client, domid) if domid not in seen_shutdown else None
                if reason is not None:
                    log(opts, f"Domain {domid} has been shut down, reason code {reason.code}")
                    if not death_only:
                        remaining.remove(domid)
                        continue
                    log(opts, f"Domain {domid} continue waiting for death")
                log(opts, f"Domain {domid} has been destroyed")
                remaining.remove(domid)
            elif info.shutdown and domid not in seen_shutdown:
                seen_shutdown.add(domid)
                code = info.shutdown_reason.code if info.shutdown_reason else 0
                log(opts, f"Domain {domid} has been shut down, reason code {code}")
                if death_only:
                    log(opts, f"Domain {domid} continue waiting for death")
                else:
                    remaining.remove(domid)
        if remaining:
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)


def _ended_reason(client: RpcClient, domid: int) -> ShutdownReason | None:
    """The reason a domain that is gone had shut down with, when the daemon saw it."""
    from xenlite.rpc.contract import ShutdownReason

    answer = client.call(Method.DOMAIN_ENDED, domid=domid)
    raw = answer.get("shutdown_reason") if isinstance(answer, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return ShutdownReason(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------- uptime


def main_uptime(opts: GlobalOptions, args: list[str]) -> int:
    """``xl uptime [-s] [Domain...]``."""
    from xenlite.cli import output

    pairs, operands = parse_options("uptime", args, "sh", ["help"])
    short = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "uptime")
        if flag == "-s":
            short = True
    with connect() as client:
        domains = list_domains(client)
        if operands:
            wanted = [find_domain(client, q, domains)[0] for q in operands]
        else:
            wanted = [0] + [d.domid for d in domains if d.domid != 0]
    now = time.time()
    now_hms = time.strftime("%H:%M:%S", time.localtime(now))
    by_id = {d.domid: d for d in domains}
    lines = [] if short else [output.UPTIME_HEADER]
    for domid in wanted:
        info = by_id.get(domid)
        if domid == 0:
            # Domain-0 is the host: its uptime is the host's, as xl reads /proc/uptime.
            seconds = host_uptime()
            name = info.name if info is not None else "Domain-0"
        elif info is None or info.start_time <= 0:
            continue  # xl skips a domain whose start time it cannot read
        else:
            seconds = int(now) - int(info.start_time)
            name = info.name
        if short:
            lines.append(output.uptime_short_row(now_hms, name, domid, seconds))
        else:
            lines.append(output.uptime_row(name, domid, seconds))
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return EXIT_SUCCESS


def host_uptime(path: str = "/proc/uptime") -> int:
    """Whole seconds since the host booted.

    :raise Unsupported: when /proc/uptime cannot be read (xl: "Can not get Dom0 uptime.").
    """
    try:
        with open(path, encoding="ascii") as fh:
            first = fh.read().split()[0]
        return int(float(first))
    except (OSError, ValueError, IndexError) as exc:
        raise Unsupported(
            "Domain-0 uptime",
            f"cannot read {path}: {exc}",
            "mount /proc (the host's uptime comes from there)",
        ) from None
