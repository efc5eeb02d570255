"""GRUB_CMDLINE_XEN(_DEFAULT) out of /etc/default/grub, as grub-mkconfig's 20_linux_xen.

The Xen command line of a host that boots Xen through GRUB 2 (xen-command-line.pandoc,
"Command line options" are given on the hypervisor's GRUB entry) lives in shell variables
that grub-mkconfig sources; this reads them with just enough POSIX shell. The options
themselves are read by :mod:`xenlite.config.hostconf.bootopts`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.cursor import TextCursor

GRUB_XEN_VARIABLES = ("GRUB_CMDLINE_XEN", "GRUB_CMDLINE_XEN_DEFAULT")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
# Words that start a compound command; the command proper follows them.
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})
_DECLARERS = frozenset({"export", "readonly", "declare", "typeset", "local"})
_WORD_END = frozenset(" \t\n;&|()<>")


@dataclass(frozen=True, slots=True)
class _Unknown:
    """A shell value this reader cannot compute (command substitution), and where it is."""

    what: str
    line: int
    col: int


_Part = str | _Unknown  # a literal, or something unknowable
_Ref = tuple[str, int, int]  # a $NAME reference: name, line, col


@dataclass(slots=True)
class _Word:
    parts: list[_Part | _Ref]
    prefix: str  # the leading unquoted literal text, to recognise NAME=
    line: int
    col: int


class _ShellReader(TextCursor):
    """Just enough POSIX shell to evaluate the assignments of a grub defaults file.

    Commands other than assignments (echo, tests, ...) are skipped; assignments inside
    if-blocks are applied unconditionally, which is what a default install needs.
    """

    def __init__(self, text: str, path: str, env: dict[str, str | _Unknown]) -> None:
        super().__init__(text, path)
        self.env = env

    def error(
        self, cause: str, fix: str, line: int | None = None, col: int | None = None
    ) -> NoReturn:
        raise ConfigError(
            cause,
            path=self.path,
            line=self.line if line is None else line,
            col=self.col() if col is None else col,
            fix=fix,
        )

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.text[at] if at < len(self.text) else ""

    def run(self) -> None:
        command: list[_Word] = []
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t":
                self.advance()
            elif char == "\\" and self.peek(1) == "\n":
                self.advance()
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            elif char in _WORD_END:
                self.advance()
                self.execute(command)
                command = []
            else:
                command.append(self.word())
        self.execute(command)

    def word(self) -> _Word:
        word = _Word(parts=[], prefix="", line=self.line, col=self.col())
        literal_prefix = True
        while self.pos < len(self.text) and self.peek() not in _WORD_END:
            char = self.peek()
            if char == "\\":
                self.advance()
                if self.pos < len(self.text):
                    escaped = self.advance()
                    if escaped != "\n":
                        word.parts.append(escaped)
                literal_prefix = False
            elif char == "'":
                word.parts.append(self.single_quoted())
                literal_prefix = False
            elif char == '"':
                word.parts.extend(self.double_quoted())
                literal_prefix = False
            elif char == "$":
                word.parts.append(self.dollar())
                literal_prefix = False
            elif char == "`":
                word.parts.append(self.backquoted())
                literal_prefix = False
            else:
                self.advance()
                word.parts.append(char)
                if literal_prefix:
                    word.prefix += char
        return word

    def single_quoted(self) -> str:
        line, col = self.line, self.col()
        self.advance()
        end = self.text.find("'", self.pos)
        if end < 0:
            self.error("unterminated single-quoted string", "close the string with '", line, col)
        chunk = self.text[self.pos : end]
        while self.pos <= end:
            self.advance()
        return chunk

    def double_quoted(self) -> list[_Part | _Ref]:
        line, col = self.line, self.col()
        self.advance()
        parts: list[_Part | _Ref] = []
        while True:
            if self.pos >= len(self.text):
                self.error(
                    "unterminated double-quoted string", 'close the string with "', line, col
                )
            char = self.peek()
            if char == '"':
                self.advance()
                return parts
            if char == "\\" and self.peek(1) in ('"', "\\", "$", "`", "\n"):
                self.advance()
                escaped = self.advance()
                if escaped != "\n":
                    parts.append(escaped)
            elif char == "$":
                parts.append(self.dollar())
            elif char == "`":
                parts.append(self.backquoted())
            else:
                parts.append(self.advance())

    def dollar(self) -> _Part | _Ref:
        line, col = self.line, self.col()
        self.advance()
        char = self.peek()
        if char == "(":
            self.skip_balanced("(", ")", line, col)
            return _Unknown("a $(...) command substitution", line, col)
        if char == "{":
            self.advance()
            end = self.text.find("}", self.pos)
            if end < 0:
                self.error("unterminated ${...}", "close the expansion with }", line, col)
            inner = self.text[self.pos : end]
            while self.pos <= end:
                self.advance()
            match = _NAME.match(inner)
            if match is None:
                return _Unknown(f"the expansion ${{{inner}}}", line, col)
            rest = inner[match.end() :]
            if not rest:
                return (match.group(), line, col)
            # ${NAME:-word} / ${NAME-word}: the default applies when NAME is unset (or empty).
            default = re.fullmatch(r"(:?)-(.*)", rest, re.DOTALL)
            if default is None:
                return _Unknown(f"the expansion ${{{inner}}}", line, col)
            current = self.env.get(match.group())
            if current is None or (default[1] and current == ""):
                return default[2]
            return (match.group(), line, col)
        match = _NAME.match(self.text, self.pos)
        if match is not None:
            while self.pos < match.end():
                self.advance()
            return (match.group(), line, col)
        if char and char in "0123456789@*#?$!-":
            self.advance()
            return ""  # positional and special parameters are empty when sourced
        return "$"

    def backquoted(self) -> _Unknown:
        line, col = self.line, self.col()
        self.advance()
        end = self.text.find("`", self.pos)
        if end < 0:
            self.error("unterminated `...` command substitution", "close it with `", line, col)
        while self.pos <= end:
            self.advance()
        return _Unknown("a `...` command substitution", line, col)

    def skip_balanced(self, opening: str, closing: str, line: int, col: int) -> None:
        depth = 0
        quote = ""
        while self.pos < len(self.text):
            char = self.advance()
            if quote:
                if char == "\\" and quote == '"' and self.pos < len(self.text):
                    self.advance()
                elif char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "\\" and self.pos < len(self.text):
                self.advance()
            elif char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return
        self.error(
            "unterminated $(...)", f"close the command substitution with {closing}", line, col
        )

    def evaluate(self, parts: list[_Part | _Ref]) -> str | _Unknown:
        out: list[str] = []
        for part in parts:
            if isinstance(part, tuple):
                name, line, col = part
                value = self.env.get(name, "")
                if isinstance(value, _Unknown):
                    return _Unknown(f"${name}, which was set from {value.what}", line, col)
                out.append(value)
            elif isinstance(part, _Unknown):
                return part
            else:
                out.append(part)
        return "".join(out)

    def execute(self, command: list[_Word]) -> None:
        while (
            command
            and command[0].prefix in _RESERVED
            and len(command[0].parts) == len(command[0].prefix)
        ):
            command = command[1:]
        if not command:
            return
        words = command
        declarer = words[0].prefix in _DECLARERS and len(words[0].parts) == len(words[0].prefix)
        if declarer:
            words = words[1:]
        assignments: list[tuple[str, bool, str | _Unknown]] = []
        for word in words:
            match = _ASSIGNMENT.match(word.prefix)
            if match is None:
                if declarer:
                    continue  # `export NAME` without a value
                return  # a command: NAME=value before it only sets its environment
            name, append = match.group(1), bool(match.group(2))
            value_parts = word.parts[match.end() :]
            assignments.append((name, append, self.evaluate(value_parts)))
        for name, append, value in assignments:
            if append:
                current = self.env.get(name, "")
                if isinstance(current, _Unknown):
                    continue
                value = value if isinstance(value, _Unknown) else current + value
            self.env[name] = value


def read_grub_default(path: str | os.PathLike[str], *, drop_ins: bool = True) -> str:
    """The Xen command line that grub-mkconfig puts on the default Xen entry.

    Evaluates the shell assignments of ``path`` (e.g. /etc/default/grub) and, when it is
    named ``grub`` and ``drop_ins`` is true, of ``grub.d/*.cfg`` next to it in order, as
    grub-mkconfig sources them; then joins GRUB_CMDLINE_XEN and GRUB_CMDLINE_XEN_DEFAULT
    as 20_linux_xen does. Quotes, escapes, ``$VAR``/``${VAR}`` expansion and ``+=`` work.

    :raise ConfigError: when a file cannot be read, a quote is unterminated, or one of the
        two variables depends on a command substitution.
    """
    first = Path(os.fspath(path))
    files = [first]
    drop_in_dir = first.parent / "grub.d"
    if drop_ins and first.name == "grub" and drop_in_dir.is_dir():
        files.extend(sorted(drop_in_dir.glob("*.cfg")))
    env: dict[str, str | _Unknown] = {}
    for file in files:
        name = os.fspath(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                "grub defaults file not found",
                path=name,
                fix="give the path of /etc/default/grub or /etc/default/grub.d/xen.cfg",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the grub defaults file: {exc}",
                path=name,
                fix="make it a readable UTF-8 text file",
            ) from None
        _ShellReader(text, name, env).run()
    parts: list[str] = []
    for variable in GRUB_XEN_VARIABLES:
        value = env.get(variable, "")
        if isinstance(value, _Unknown):
            raise ConfigError(
                f"{variable} depends on {value.what}, which xenlite does not run",
                path=os.fspath(first),
                line=value.line,
                col=value.col,
                key=variable,
                fix=f"write {variable} as a plain quoted string",
            )
        if value.strip():
            parts.append(value.strip())
    return " ".join(parts)
