"""``xenlite xenstored`` and the xenstore-* tools, with the options and output of xenstore-utils.

Implements xenstore.1 and xenstore-ls.1 as Xen 4.17's tools/xenstore/xenstore_client.c behaves:
GNU getopt_long parsing (unknown options are reported and skipped), one transaction around
read/write with several keys and around rm/list/exists/chmod (retried on EAGAIN), value
escaping, xenstore-ls' layout truncated to the terminal width (80 columns when not a tty).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions, VerbExit

if TYPE_CHECKING:
    from xenlite.xenstore.client import XenStore

# Constants of xenstore_client.c.
_XENSTORE_ABS_PATH_MAX = 3072
_STRING_MAX = _XENSTORE_ABS_PATH_MAX + 1024
_MAX_PATH_LEN = 256  # xenstore-chmod -r builds child paths in a buffer this size
_TAG_LEN = len(' = "..."')
_INT_MAX = 2**31 - 1


class Mode(StrEnum):
    READ = "read"
    WRITE = "write"
    RM = "rm"
    LIST = "list"
    LS = "ls"
    EXISTS = "exists"
    CHMOD = "chmod"
    WATCH = "watch"


_USAGE = {
    Mode.READ: "[-h] [-p] [-s] [-R] key [...]",
    Mode.WRITE: "[-h] [-s] [-R] key value [...]",
    Mode.RM: "[-h] [-s] [-t] key [...]",
    Mode.LIST: "[-h] [-p] [-s] key [...]",
    Mode.EXISTS: "[-h] [-p] [-s] key [...]",
    Mode.LS: "[-h] [-f] [-p] [-s] [path]",
    Mode.CHMOD: "[-h] [-u] [-r] [-s] key <mode [modes...]>",
    Mode.WATCH: "[-h] [-n NR] key",
}

# Which option letters each tool accepts (any other known letter is a usage error).
_ALLOWED = {
    Mode.READ: "psR",
    Mode.WRITE: "sR",
    Mode.RM: "st",
    Mode.LIST: "ps",
    Mode.EXISTS: "s",
    Mode.LS: "fps",
    Mode.CHMOD: "urs",
    Mode.WATCH: "ns",
}

_SHORT_OPTS = "hfspturn:R"
# getopt_long's table in xenstore_client.c, in its order (matters for ambiguity messages).
_LONG_OPTS: tuple[tuple[str, bool, str], ...] = (
    ("help", False, "h"),
    ("flat", False, "f"),
    ("prefix", False, "p"),
    ("tidy", False, "t"),
    ("upto", False, "u"),
    ("recurse", False, "r"),
    ("number", True, "n"),
    ("raw", False, "R"),
)


def _exit(status: int, message: str | None = None) -> VerbExit:
    """The end of a tool as err()/errx() end the C one: a message line (maybe none) and a
    status; ``cli.main`` prints it."""
    return VerbExit(f"{message}\n" if message is not None else "", status=status)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# --- GNU getopt_long, as glibc reports problems ------------------------------------------------


def gnu_getopt(
    prog: str, args: Sequence[str], report: Callable[[str], None] = _stderr
) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse ``args`` as glibc's getopt_long does with xenstore_client.c's option table.

    Options and operands may be mixed; ``--`` ends the options. Problems are reported
    through ``report`` with glibc's wording and yield a ``("?", "")`` entry, as getopt
    returns '?' (which the C tool then ignores).
    """
    options: list[tuple[str, str]] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            exact = [o for o in _LONG_OPTS if o[0] == name]
            matches = exact or [o for o in _LONG_OPTS if o[0].startswith(name)]
            if not matches:
                report(f"{prog}: unrecognized option '{arg}'")
                options.append(("?", ""))
                continue
            if len(matches) > 1:
                names = " ".join(f"'--{o[0]}'" for o in matches)
                report(f"{prog}: option '--{name}' is ambiguous; possibilities: {names}")
                options.append(("?", ""))
                continue
            long_name, has_arg, letter = matches[0]
            if has_arg:
                if not eq:
                    if i >= len(args):
                        report(f"{prog}: option '--{long_name}' requires an argument")
                        options.append(("?", ""))
                        continue
                    value = args[i]
                    i += 1
                options.append((letter, value))
            elif eq:
                report(f"{prog}: option '--{long_name}' doesn't allow an argument")
                options.append(("?", ""))
            else:
                options.append((letter, ""))
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                j += 1
                spec = _SHORT_OPTS.find(letter)
                if spec < 0 or letter == ":":
                    report(f"{prog}: invalid option -- '{letter}'")
                    options.append(("?", ""))
                    continue
                if _SHORT_OPTS[spec + 1 : spec + 2] == ":":
                    if j < len(arg):
                        options.append((letter, arg[j:]))
                    elif i < len(args):
                        options.append((letter, args[i]))
                        i += 1
                    else:
                        report(f"{prog}: option requires an argument -- '{letter}'")
                        options.append(("?", ""))
                    break
                options.append((letter, ""))
            continue
        operands.append(arg)
    return options, operands


# --- value escaping (xenstore_client.c sanitise_value / unsanitise_value) ----------------------


def sanitise_value(value: bytes) -> bytes:
    """Printable ASCII as is; ``\\t \\n \\r \\\\``; other bytes as ``\\ooo`` (< 8) or ``\\xhh``."""
    out = bytearray()
    for c in value:
        if 0x20 <= c <= 0x7E and c != 0x5C:
            out.append(c)
        elif c == 0x09:
            out += b"\\t"
        elif c == 0x0A:
            out += b"\\n"
        elif c == 0x0D:
            out += b"\\r"
        elif c == 0x5C:
            out += b"\\\\"
        elif c < 0o10:
            out += b"\\%03o" % c
        else:
            out += b"\\x%02x" % c
    return bytes(out)


_HEX = b"0123456789abcdefABCDEF"
_SPACE = b" \t\n\v\f\r"


def unsanitise_value(spec: bytes) -> bytes:
    """The inverse escaping xenstore-write applies to its values (unless ``-R``).

    Follows the C code's edges: ``\\xZZ`` keeps ``x``, an unknown escape keeps the character,
    a trailing backslash becomes a NUL byte, octal values wrap to one byte.
    """
    out = bytearray()
    n = len(spec)
    i = 0
    while i < n:
        c = spec[i]
        i += 1
        if c != 0x5C:
            out.append(c)
            continue
        if i >= n:
            out.append(0)  # "case 0": the terminating NUL is copied, then the loop ends
            break
        c = spec[i]
        i += 1
        if c == ord("t"):
            out.append(0x09)
        elif c == ord("n"):
            out.append(0x0A)
        elif c == ord("r"):
            out.append(0x0D)
        elif c == ord("x"):
            # sscanf("%2x"): skips white space, then up to two hex digits (after the spaces).
            j = i
            while j < n and spec[j] in _SPACE:
                j += 1
            k = j
            while k < n and k - j < 2 and spec[k] in _HEX:
                k += 1
            if k > j:
                out.append(int(spec[j:k], 16) & 0xFF)
                i = k
            else:
                out.append(c)
        elif ord("0") <= c <= ord("7"):
            k = i - 1
            while k < n and k - (i - 1) < 3 and ord("0") <= spec[k] <= ord("7"):
                k += 1
            out.append(int(spec[i - 1 : k], 8) & 0xFF)
            i = k
        else:
            out.append(c)
    return bytes(out)


def _atoi(text: str) -> int:
    """C atoi(): leading white space, a sign, digits; anything after is ignored."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not ("0" <= ch <= "9"):
            break
        digits += ch
    value = sign * int(digits) if digits else 0
    return (value + 2**31) % 2**32 - 2**31  # the int that C ends up holding


# --- the tools -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tool:
    mode: Mode
    prog: str
    prefix: bool = False
    tidy: bool = False
    upto: bool = False
    recurse: bool = False
    raw: bool = False
    flat: bool = False
    nr_watches: int = -1
    out: bytearray = field(default_factory=bytearray)

    def usage(self) -> NoReturn:
        raise _exit(1, f"{self.prog}: Usage: {self.prog} {_USAGE[self.mode]}")

    def warnx(self, message: str) -> None:
        _stderr(f"{self.prog}: {message}")


def _strerror(wire_name: str) -> str:
    from xenlite.xenstore.client import errno_of

    return os.strerror(errno_of(wire_name))


def _parse(mode: Mode, args: list[str]) -> tuple[_Tool, list[str]]:
    tool = _Tool(mode, f"xenstore-{mode.value}")
    options, operands = gnu_getopt(tool.prog, args)
    for letter, value in options:
        if letter == "?":
            continue  # reported already; xenstore_client.c's switch has no default case
        if letter == "h" or letter not in _ALLOWED[mode]:
            tool.usage()
        if letter == "f":
            tool.flat = True
        elif letter == "p":
            tool.prefix = True
        elif letter == "t":
            tool.tidy = True
        elif letter == "u":
            tool.upto = True
        elif letter == "r":
            tool.recurse = True
        elif letter == "n":
            tool.nr_watches = _atoi(value)
        elif letter == "R":
            tool.raw = True
    if mode == Mode.WRITE and len(operands) % 2 == 1:
        tool.usage()
    if mode != Mode.LS and not operands:
        tool.usage()
    return tool, operands


def _connect(tool: _Tool) -> XenStore:
    from xenlite.base.errors import XenStoreConnectionError
    from xenlite.xenstore.client import XenStore

    try:
        return XenStore.open()
    except XenStoreConnectionError as exc:
        message = f"{tool.prog}: xs_open: {exc.cause} ({exc.what})"
        if exc.fix:
            message += f"\n  fix: {exc.fix}"
        raise _exit(1, message) from exc


def _arg_bytes(arg: str) -> bytes:
    return os.fsencode(arg)


def _perform(tool: _Tool, xs: XenStore, tx: int, operands: list[str]) -> int:
    from xenlite.base.errors import XenStoreError
    from xenlite.xenstore.wire import Op

    mode = tool.mode
    if mode == Mode.READ:
        for path in operands:
            try:
                value = xs.read(path, tx=tx)
            except XenStoreError:
                tool.warnx(f"couldn't read path {path}")
                return 1
            if tool.prefix:
                tool.out += _arg_bytes(path) + b": "
            tool.out += value if tool.raw else sanitise_value(value) + b"\n"
    elif mode == Mode.WRITE:
        for path, spec in zip(operands[::2], operands[1::2], strict=True):
            raw = _arg_bytes(spec)
            try:
                xs.write(path, raw if tool.raw else unsanitise_value(raw), tx=tx)
            except XenStoreError:
                tool.warnx(f"could not write path {path}")
                return 1
    elif mode == Mode.RM:
        for path in operands:
            if _rm(tool, xs, tx, path):
                return 1
    elif mode == Mode.EXISTS:
        for path in operands:
            try:
                xs.read(path, tx=tx)
            except XenStoreError:
                return 1
    elif mode == Mode.LIST:
        for path in operands:
            try:
                names = xs.directory(path, tx=tx)
            except XenStoreError:
                tool.warnx(f"could not list path {path}")
                return 1
            pref = _arg_bytes(path)  # 4.17 prints "//name" for "/"; later Xen drops a slash
            for name in names:
                if tool.prefix:
                    tool.out += pref + b"/"
                tool.out += _arg_bytes(name) + b"\n"
    elif mode == Mode.CHMOD:
        path, specs = operands[0], operands[1:]
        perms: list[bytes] = []
        for spec in specs:
            letter = spec[:1]
            if letter not in ("n", "r", "w", "b"):
                raise _exit(1, f"{tool.prog}: Invalid permission specification: '{letter}'")
            perms.append(f"{letter}{_atoi(spec[1:])}".encode())
        _chmod(tool, xs, tx, Op.SET_PERMS, path, perms, upto=tool.upto, recurse=tool.recurse)
    return 0


def _rm(tool: _Tool, xs: XenStore, tx: int, path: str) -> int:
    from xenlite.base.errors import XenStoreError

    while True:
        try:
            xs.rm(path, tx=tx)
        except XenStoreError:
            tool.warnx(f"could not remove path {path}")
            return 1
        if not tool.tidy or "/" not in path:
            return 0
        # -t: also remove parents left empty and without a value, up to the root.
        path = path[: path.rindex("/")]
        try:
            if xs.read(path, tx=tx) != b"" or xs.directory(path, tx=tx):
                return 0
        except XenStoreError:
            return 0


def _chmod(
    tool: _Tool,
    xs: XenStore,
    tx: int,
    op: int,
    path: str,
    perms: list[bytes],
    *,
    upto: bool,
    recurse: bool,
) -> None:
    from xenlite.base.errors import XenStoreError
    from xenlite.xenstore.wire import Op

    if not path:
        return
    payload = _arg_bytes(path) + b"\0" + b"".join(p + b"\0" for p in perms)
    try:
        xs.request(Op(op), payload, tx=tx, subject=path)
    except XenStoreError as exc:
        raise _exit(
            1,
            f"{tool.prog}: Error occurred setting permissions on '{path}': "
            f"{_strerror(exc.wire_name)}",
        ) from exc
    if upto:
        if "/" not in path:
            raise _exit(1, f"{tool.prog}: Unable to locate path separator '/' in '{path}'")
        parent = path[: path.rindex("/")]
        _chmod(tool, xs, tx, op, parent, perms, upto=True, recurse=False)
    if recurse:
        try:
            names = xs.directory(path, tx=tx)
        except XenStoreError:
            names = []
        for name in names:
            child = f"{path}/{name}"[: _MAX_PATH_LEN - 1]
            _chmod(tool, xs, tx, op, child, perms, upto=False, recurse=True)


# --- xenstore-ls ---------------------------------------------------------------------------------


def _ls_width(flat: bool) -> int:
    """xenstore_client.c: ``ws_col - 2`` when stdout is a terminal (even with ``-f``), else 80,
    or no limit (INT_MAX/2) with ``-f``."""
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns - 2
    except (OSError, ValueError, AttributeError):
        return _INT_MAX // 2 if flat else 80


def _precision(text: bytes, precision: int) -> bytes:
    """printf's ``%.*s``: a negative precision means no limit."""
    return text if precision < 0 else text[:precision]


@dataclass(slots=True)
class _Ls:
    tool: _Tool
    xs: XenStore
    show_perms: bool
    max_width: int
    desired_width: int
    whole_path: bool

    def walk(self, path: str, depth: int) -> None:
        from xenlite.base.errors import XenStoreError

        out = self.tool.out
        try:
            names = self.xs.directory(path)
        except XenStoreError as exc:
            if depth and exc.wire_name == "ENOENT":
                return  # a node removed while we walk: move on, as the C tool does
            raise _exit(
                1,
                f"{self.tool.prog}: xs_directory ({path}): {_strerror(exc.wire_name)}",
            ) from exc
        sep = "" if path.endswith("/") else "/"
        for name in names:
            full = f"{path}{sep}{name}"
            newpath = full[: _STRING_MAX - 1]
            name_b = _arg_bytes(name)
            linewid = 0
            if self.whole_path:
                out += _arg_bytes(newpath)
            else:
                out += b" " * depth
                linewid = depth
                shown = _precision(name_b, self.max_width - _TAG_LEN - linewid)
                out += shown
                linewid += len(shown)
            value: bytes | None = None
            if len(_arg_bytes(full)) < _STRING_MAX:
                try:
                    value = self.xs.read(newpath)
                except XenStoreError:
                    value = None
            if value is None:
                out += b":\n"
            elif 0 <= self.max_width < linewid + len(value) + _TAG_LEN:
                # C compares against an unsigned sum: a negative width (ws_col 0) never cuts.
                shown = _precision(sanitise_value(value), self.max_width - _TAG_LEN - linewid)
                out += b' = "' + shown + b'\\..."'
            else:
                piece = b' = "' + sanitise_value(value) + b'"'
                out += piece
                linewid += len(piece)
                if self.show_perms:
                    out += b" "
                    linewid += 1
                    while linewid < min(self.desired_width, self.max_width):
                        out += b"." if linewid & 1 else b" "
                        linewid += 1
            if self.show_perms:
                try:
                    perms = self.xs.get_perms(newpath)
                except XenStoreError as exc:
                    # warn(): the message, then ": strerror"; it starts with a newline in C.
                    self.tool.warnx(
                        f"\ncould not access permissions for {name}: {_strerror(exc.wire_name)}"
                    )
                else:
                    out += b"  (" + ",".join(perms.to_strings()).encode() + b")"
            out += b"\n"
            self.walk(newpath, depth + 1)


# --- running a tool -------------------------------------------------------------------------------


def _write_out(data: bytes | bytearray) -> None:
    if not data:
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _run_watch(tool: _Tool, xs: XenStore, operands: list[str]) -> int:
    from xenlite.base.errors import XenStoreError

    for path in operands:
        try:
            xs.watch(path, path)  # the tool uses the path as its token
        except XenStoreError as exc:
            raise _exit(1, f"{tool.prog}: Unable to add watch on {path}\n") from exc
    count = 0
    while tool.nr_watches == -1 or count < tool.nr_watches:
        event_path, _token = xs.read_watch(None)
        _write_out(_arg_bytes(event_path) + b"\n")
        count += 1
    return 0


def _run(mode: Mode, args: list[str]) -> int:
    from xenlite.base.errors import XenStoreConnectionError, XenStoreError

    tool: _Tool | None = None
    try:
        tool, operands = _parse(mode, args)
        if mode == Mode.READ:
            transaction = len(operands) > 1
        elif mode == Mode.WRITE:
            transaction = len(operands) > 2
        else:
            transaction = mode not in (Mode.LS, Mode.WATCH)
        xs = _connect(tool)
        with xs:
            if mode == Mode.WATCH:
                return _run_watch(tool, xs, operands)
            if mode == Mode.LS:
                walker = _Ls(
                    tool,
                    xs,
                    tool.prefix,
                    _ls_width(tool.flat),
                    0 if tool.flat else 60,
                    tool.flat,
                )
                for path in operands or ["/"]:
                    walker.walk(path, 0)
                return 0
            while True:
                tx = 0
                if transaction:
                    try:
                        tx = xs.transaction_start()
                    except XenStoreError as exc:
                        raise _exit(1, f"{tool.prog}: couldn't start transaction") from exc
                ret = _perform(tool, xs, tx, operands)
                if transaction:
                    try:
                        xs.transaction_end(tx, commit=ret == 0)
                    except XenStoreError as exc:
                        if ret == 0 and exc.wire_name == "EAGAIN":
                            tool.out.clear()
                            continue
                        raise _exit(1, f"{tool.prog}: couldn't end transaction") from exc
                return ret
    except XenStoreConnectionError as exc:
        prog = tool.prog if tool is not None else f"xenstore-{mode.value}"
        _stderr(f"{prog}: {exc}")
        if exc.fix:
            _stderr(f"  fix: {exc.fix}")
        return EXIT_FAILURE
    finally:
        if tool is not None:
            _write_out(tool.out)


def main_xenstore_read(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-read [-p] [-s] [-R] key...``: print values, escaped unless ``-R``."""
    return _run(Mode.READ, args)


def main_xenstore_write(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-write [-s] [-R] key value...``: values unescaped unless ``-R``."""
    return _run(Mode.WRITE, args)


def main_xenstore_rm(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-rm [-s] [-t] key...``: ``-t`` also removes emptied parents."""
    return _run(Mode.RM, args)


def main_xenstore_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-list [-p] [-s] key...``: child names, ``-p`` with the parent path."""
    return _run(Mode.LIST, args)


def main_xenstore_ls(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-ls [-f] [-p] [-s] [path]``: the subtree with values (and ``-p`` perms)."""
    return _run(Mode.LS, args)


def main_xenstore_exists(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-exists [-s] key...``: exit 0 when every key can be read."""
    return _run(Mode.EXISTS, args)


def main_xenstore_chmod(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-chmod [-u] [-r] [-s] key perm...``: perms like ``n0 r5 b7``."""
    return _run(Mode.CHMOD, args)


def main_xenstore_watch(opts: GlobalOptions, args: list[str]) -> int:
    """``xenstore-watch [-n NR] key...``: print the path of each event, ``NR`` of them."""
    return _run(Mode.WATCH, args)


def main_xenstored(opts: GlobalOptions, args: list[str]) -> int:
    """``xenlite xenstored``: the daemon (xenlite.xenstore.main)."""
    from xenlite.xenstore.main import run

    return run(args)


__all__ = [
    "EXIT_SUCCESS",
    "gnu_getopt",
    "main_xenstore_chmod",
    "main_xenstore_exists",
    "main_xenstore_list",
    "main_xenstore_ls",
    "main_xenstore_read",
    "main_xenstore_rm",
    "main_xenstore_watch",
    "main_xenstore_write",
    "main_xenstored",
    "sanitise_value",
    "unsanitise_value",
]
