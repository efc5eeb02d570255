"""Entry point of ``xl`` and ``xenlite``: global options, dispatch, errors -> exit codes.

This is the only module that exits the process. It imports nothing heavy: a verb's
module is imported only when that verb runs, so ``xl --version`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xenlite.cli.table import BY_NAME, COMMANDS, XL_VERBS_NOT_YET, Command

EXIT_SUCCESS = 0
EXIT_FAILURE = 1


class VerbExit(Exception):
    """A verb ends in its tool's own words rather than xenlite's "prog: what: cause" (xl's
    messages, the C xenstore tools' err()): ``main`` writes ``message`` to stderr as it is,
    then the fix hint, and exits with ``status``. Every other failure is a XenliteError."""

    def __init__(
        self, message: str = "", *, status: int = EXIT_FAILURE, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.hint = hint


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """xl's global options (``xl [-vfNtT] <subcommand>``)."""

    program: str
    verbose: int = 0
    force: bool = False
    dryrun: bool = False
    progress: bool = False
    timestamps: bool = False


Handler = Callable[[GlobalOptions, list[str]], int]


# xen-tools' programs, installed as names of xenlite: each runs its verb.
XEN_TOOLS = {
    "xen-create-image": "create-image",
    "xen-delete-image": "delete-image",
    "xen-list-images": "list-images",
}


def _program_name(argv0: str) -> str:
    name = os.path.basename(argv0)
    return name if name in ("xl", "xenlite") else "xl"


def _version() -> str:
    from xenlite import XEN_COMPAT_VERSION, __version__

    return f"xenlite {__version__} (xl-compatible toolstack; Xen {XEN_COMPAT_VERSION} formats)"


def _usage_line(prog: str) -> str:
    return f"Usage {prog} [-vfNtT] <subcommand> [args]"


def print_summary(prog: str, *, long: bool = False) -> None:
    """``xl help``: the usage line and one line per subcommand, as xl prints them."""
    print(_usage_line(prog))
    print()
    print(f"{prog} full list of subcommands:")
    print()
    for cmd in COMMANDS:
        if long:
            print_command_help(prog, cmd)
        else:
            print(f" {cmd.name:<19} {cmd.summary}")
    print()
    print(f"xl verbs arriving in later xenlite releases: {len(XL_VERBS_NOT_YET)}")
    print(f"(run '{prog} <verb>' to see whether one is available yet)")


def print_command_help(prog: str, cmd: Command) -> None:
    """``xl help <verb>``: usage, description and options as xl's help() lays them out."""
    flags = "v" + ("f" if cmd.modifies else "") + ("N" if cmd.can_dryrun else "")
    print(f"Usage: {prog} [-{flags}] {cmd.name} {cmd.usage}")
    print()
    print(f"{cmd.summary}.")
    print()
    if cmd.options:
        print("Options:")
        print()
        print(cmd.options)
        print()


def main_help(opts: GlobalOptions, args: list[str]) -> int:
    """``xl help [--long] [<subcommand>]``."""
    long = "--long" in args
    names = [a for a in args if a != "--long"]
    if not names:
        print_summary(opts.program, long=long)
        return EXIT_SUCCESS
    cmd = BY_NAME.get(names[0])
    if cmd is None:
        return _unknown_command(opts.program, names[0])
    print_command_help(opts.program, cmd)
    return EXIT_SUCCESS


def _unknown_command(prog: str, name: str) -> int:
    if name in XL_VERBS_NOT_YET:
        print(
            f"{prog}: '{name}' is an xl command that this xenlite release does not provide yet.\n"
            f"It arrives with the domain engine; '{prog} help' lists what works today.",
            file=sys.stderr,
        )
    else:
        print(f"command not implemented: {name}", file=sys.stderr)
        print(f"'{prog} help' lists the subcommands.", file=sys.stderr)
    return EXIT_FAILURE


def _parse_global(prog: str, argv: list[str]) -> tuple[GlobalOptions, list[str]] | int:
    verbose = 0
    force = dryrun = progress = timestamps = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print_summary(prog)
            return EXIT_SUCCESS
        if arg == "--version":
            print(_version())
            return EXIT_SUCCESS
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        for flag in arg[1:]:
            if flag == "v":
                verbose += 1
            elif flag == "f":
                force = True
            elif flag == "N":
                dryrun = True
            elif flag == "t":
                progress = True
            elif flag == "T":
                timestamps = True
            else:
                print(f"{prog}: invalid option -- '{flag}'", file=sys.stderr)
                print(_usage_line(prog), file=sys.stderr)
                return EXIT_FAILURE
        i += 1
    opts = GlobalOptions(prog, verbose, force, dryrun, progress, timestamps)
    return opts, argv[i:]


def _load_handler(cmd: Command) -> Handler:
    module_name, _, func = cmd.handler.partition(":")
    module = importlib.import_module(module_name)
    handler: Handler = getattr(module, func)
    return handler


def _report_error(prog: str, exc: Exception) -> None:
    from xenlite.base.errors import XenliteError

    assert isinstance(exc, XenliteError)
    print(f"{prog}: {exc}", file=sys.stderr)
    more = getattr(exc, "more", None)
    if isinstance(more, list):
        for extra in more[:10]:
            print(f"{prog}: {extra}", file=sys.stderr)
    if exc.fix:
        print(f"  fix: {exc.fix}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used by the console scripts)."""
    args = list(sys.argv if argv is None else argv)
    tool = XEN_TOOLS.get(os.path.basename(args[0])) if args else None
    if tool is not None:
        args = ["xenlite", tool, *args[1:]]
    prog = _program_name(args[0] if args else "xl")
    parsed = _parse_global(prog, args[1:])
    if isinstance(parsed, int):
        return parsed
    opts, rest = parsed
    if not rest:
        print_summary(prog)
        return EXIT_FAILURE
    name, cmd_args = rest[0], rest[1:]
    cmd = BY_NAME.get(name)
    if cmd is None:
        return _unknown_command(prog, name)
    if opts.dryrun and not cmd.can_dryrun:
        print(f"{prog}: {name} does not support dry-run (-N)", file=sys.stderr)
        return EXIT_FAILURE
    from xenlite.base.errors import XenliteError

    # The one mapping from how a verb ends to the exit status.
    try:
        return _load_handler(cmd)(opts, cmd_args)
    except VerbExit as stop:
        sys.stderr.write(stop.message)
        if stop.hint:
            sys.stderr.write(f"  fix: {stop.hint}\n")
        return stop.status
    except XenliteError as exc:
        _report_error(prog, exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (`xl help | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def entry() -> None:
    """Console-script entry: exit with main()'s status."""
    sys.exit(main())  # noqa: TID251 - the one place that exits
