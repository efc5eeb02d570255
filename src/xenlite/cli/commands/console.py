"""``xl console``, ``xl sysrq`` and ``xl trigger``: the guest's console and its buttons.

xl(1) "console", "sysrq", "trigger". ``xl console`` does what xl's exec of xenconsole does:
xenlited hands over QEMU's serial socket as a descriptor (one interactive client per domain,
as xenconsole's lock file allows), and this process relays the bytes between it and the
terminal in raw mode until the escape character (Ctrl-] or ``-e``). Without a terminal (a
pipe) it relays the same way, with no raw mode, until its input ends. The terminal settings
are restored on every way out. The RPC client is imported inside the verbs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING

from xenlite.base.errors import DomainError, RpcError, Unsupported
from xenlite.cli.commands.domains import (
    connect,
    find_domain,
    show_help,
    want_args,
)
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import VERSION_SKEW_FIX, Method

if TYPE_CHECKING:
    from xenlite.rpc.client import RpcClient

ESCAPE_CHARACTER = 0x1D  # Ctrl-], xenconsole's ESCAPE_CHARACTER
# xenconsole's exits: err(ENOLCK, "Could not lock ...") for a console already attached,
# exit(EINVAL) for a bad --escape.
EXIT_CONSOLE_LOCKED = errno.ENOLCK
EXIT_INVALID = errno.EINVAL
_CONSOLE_TYPES = "pv, serial, vuart"  # xl_console.c's console_names
_READ_SIZE = 4096
_INPUT_SIZE = 1024


class Detach(StrEnum):
    """Why the relay ended."""

    ESCAPE = "escape"  # the user typed the escape character
    INPUT_CLOSED = "input-closed"  # our input ended (a pipe's EOF)
    CONSOLE_CLOSED = "console-closed"  # QEMU closed the serial port: the domain is gone
    OUTPUT_CLOSED = "output-closed"  # nobody reads our output any more
    SIGNAL = "signal"  # SIGTERM or SIGHUP


class _Stop(Exception):
    """Raised by the signal handler to leave the relay (and restore the terminal)."""


def parse_escape(text: str) -> int | None:
    """xenconsole's ``--escape``: ``^X`` is Ctrl-X, one character is itself; else None."""
    if len(text) == 2 and text[0] == "^" and ord(text[1]) < 0x80:
        return ord(text[1]) & 0x1F  # termios CTRL(): ^] -> 0x1d, ^a and ^A -> 0x01
    if len(text) == 1 and ord(text) < 0x100:
        return ord(text)
    return None


# --------------------------------------------------------------------------- console


def main_console(opts: GlobalOptions, args: list[str]) -> int:
    """``xl console [-t pv|serial] [-n N] [-e ESC] <Domain>``."""
    pairs, operands = parse_options("console", args, "n:t:e:h", ["help"])
    console_type = "serial"
    num = 0
    escape = ESCAPE_CHARACTER
    for flag, value in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "console")
        if flag == "-t":
            if value not in ("pv", "serial", "vuart"):
                raise VerbExit(f"console type supported are: {_CONSOLE_TYPES}\n")
            if value == "vuart":
                raise Unsupported(
                    "xl console -t vuart",
                    "xenlite domains have no virtual UART console (that is an Arm Xen device)",
                    "attach to the serial console: xl console DOMAIN",
                )
            # xenlite's PV console is the serial port: pv and serial attach to the same one.
            console_type = "serial"
        elif flag == "-n":
            num = _atoi(value)
            if num != 0:
                raise Unsupported(
                    f"xl console -n {value}",
                    "a xenlite domain has one console (number 0), its serial port",
                    "attach without -n: xl console DOMAIN",
                )
        elif flag == "-e":
            parsed = parse_escape(value)
            if parsed is None:
                raise VerbExit(
                    "Invalid escape argument\n",
                    hint="give one character, or ^ and a character (-e '^]', the default)",
                    status=EXIT_INVALID,
                )
            escape = parsed
    want_args("console", operands, 1, "a domain (name or id)")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        attach_console(client, domid, escape=escape, console_type=console_type)
    return EXIT_SUCCESS


def _atoi(text: str) -> int:
    """C's atoi(): leading blanks, a sign and digits; whatever follows is ignored."""
    return _strtol(text)[0]


def attach_console(
    client: RpcClient,
    domid: int,
    *,
    escape: int = ESCAPE_CHARACTER,
    console_type: str = "serial",
    attached: Callable[[], None] | None = None,
    in_fd: int | None = None,
    out_fd: int | None = None,
) -> Detach:
    """Take domain ``domid``'s console from xenlited and relay it until detached.

    ``attached`` runs once the console is held (``xl create -c`` unpauses the guest there,
    so its first words are seen). ``client`` stays busy until the relay ends.

    :raise VerbExit: with xenconsole's message when another client holds the console
    :raise XenliteError: what xenlited says when the console cannot be had
    """
    stream = client.stream(Method.DOMAIN_CONSOLE_ATTACH, dom=str(domid), console_type=console_type)
    with contextlib.closing(stream):
        try:
            event = next(stream)
        except StopIteration:
            raise RpcError(
                "xenlited domain.console_attach",
                "ended without handing over the console",
                VERSION_SKEW_FIX,
                code="protocol",
            ) from None
        except DomainError as exc:
            if getattr(exc, "console_busy", False):
                lock = getattr(exc, "lock_path", f"/var/lock/xenconsole.{domid}")
                raise VerbExit(
                    f"xenconsole: Could not lock {lock}: Resource temporarily unavailable\n",
                    hint=exc.fix,
                    status=EXIT_CONSOLE_LOCKED,
                ) from None
            raise
        if event.name != "attached" or len(event.fds) != 1:
            for fd in event.fds:
                os.close(fd)
            raise RpcError(
                "xenlited domain.console_attach",
                f"sent {event.name!r} with {len(event.fds)} descriptors, not the console",
                VERSION_SKEW_FIX,
                code="protocol",
            )
        console_fd = event.fds[0]
        try:
            # The descriptor shares its file status flags with xenlited's socket, which
            # Python left non-blocking; the relay wants plain blocking reads.
            os.set_blocking(console_fd, True)
            if attached is not None:
                attached()
            sys.stdout.flush()
            return relay(
                console_fd,
                sys.stdin.fileno() if in_fd is None else in_fd,
                sys.stdout.fileno() if out_fd is None else out_fd,
                escape=escape,
            )
        finally:
            os.close(console_fd)


def relay(console_fd: int, in_fd: int, out_fd: int, *, escape: int = ESCAPE_CHARACTER) -> Detach:
    """Copy ``in_fd`` to the console and the console to ``out_fd`` until one side ends or the
    escape character is typed (what precedes it on the same read is still sent).

    When ``in_fd`` is a terminal it is put in raw mode (keys go to the guest as typed, Ctrl-C
    included) and restored afterwards, whatever ends the relay; SIGTERM and SIGHUP end it too.
    """
    with _raw_terminal(in_fd), _stop_on_signals():
        try:
            return _copy_both_ways(console_fd, in_fd, out_fd, bytes([escape]))
        except _Stop:
            return Detach.SIGNAL


def _copy_both_ways(console_fd: int, in_fd: int, out_fd: int, escape: bytes) -> Detach:
    while True:
        readable, _, _ = select.select([console_fd, in_fd], [], [])
        if console_fd in readable:
            try:
                data = os.read(console_fd, _READ_SIZE)
            except OSError:
                return Detach.CONSOLE_CLOSED
            if not data:
                return Detach.CONSOLE_CLOSED
            if not _write_all(out_fd, data):
                return Detach.OUTPUT_CLOSED
        if in_fd in readable:
            try:
                typed = os.read(in_fd, _INPUT_SIZE)
            except OSError:
                return Detach.INPUT_CLOSED
            if not typed:
                return Detach.INPUT_CLOSED
            before, found, _ = typed.partition(escape)
            if before and not _write_all(console_fd, before):
                return Detach.CONSOLE_CLOSED
            if found:
                return Detach.ESCAPE


def _write_all(fd: int, data: bytes) -> bool:
    """Write every byte; False when the other end has gone."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            return False
        view = view[written:]
    return True


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """cfmakeraw() on a terminal ``fd`` for the duration, as xenconsole's init_term()."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield  # as xenconsole: a terminal that cannot be set is used as it is
        return
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the relay through its ``finally`` blocks (the default action
    would kill the process with the terminal still raw)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- sysrq


def main_sysrq(opts: GlobalOptions, args: list[str]) -> int:
    """``xl sysrq <Domain> <letter>``."""
    pairs, operands = parse_options("sysrq", args, "h", ["help"])
    if pairs:
        return show_help(opts, "sysrq")
    want_args("sysrq", operands, 2, "a domain and a SysRq letter")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        key = operands[1]
        if len(key) != 1:
            from xenlite.cli.main import print_command_help
            from xenlite.cli.table import BY_NAME

            sys.stderr.write("Invalid sysrq.\n\n")
            print_command_help(opts.program, BY_NAME["sysrq"])
            return EXIT_FAILURE
        client.call(Method.DOMAIN_SYSRQ, dom=str(domid), key=key)
    return EXIT_SUCCESS


# --------------------------------------------------------------------------- trigger

TRIGGERS = ("power", "sleep", "nmi", "init", "reset", "s3resume")


def main_trigger(opts: GlobalOptions, args: list[str]) -> int:
    """``xl trigger <Domain> <nmi|reset|init|power|sleep|s3resume> [<VCPU>]``."""
    pairs, operands = parse_options("trigger", args, "h", ["help"])
    if pairs:
        return show_help(opts, "trigger")
    want_args("trigger", operands, 2, "a domain and a trigger")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        name = operands[1]
        # libxl_trigger_from_string() compares without case.
        if name.lower() not in TRIGGERS:
            raise VerbExit(f'Invalid trigger "{name}"\n', hint="triggers: " + ", ".join(TRIGGERS))
        vcpu = 0
        if len(operands) > 2:
            vcpu, valid = _strtol(operands[2])
            if not valid:
                sys.stderr.write("Invalid vcpuid, using default vcpuid=0.\n\n")
        client.call(Method.DOMAIN_TRIGGER, dom=str(domid), trigger=name.lower(), vcpu=vcpu)
    return EXIT_SUCCESS


def _strtol(text: str) -> tuple[int, bool]:
    """strtol(text, &end, 10) as xl reads the vCPU: (value, whether any digit was read)."""
    stripped = text.lstrip(" \t\n\r\f\v")
    sign = -1 if stripped[:1] == "-" else 1
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    count = len(digits) - len(digits.lstrip("0123456789"))
    if not count:
        return 0, False
    return sign * int(digits[:count]), True
