"""The xl.cfg language: parser, typed getters, overrides and rendering.

Implements xl.cfg(5) "SYNTAX" exactly as Xen 4.17's libxlutil reads it (libxlu_cfg_l.l,
libxlu_cfg_y.y, libxlu_cfg.c): ``KEY = VALUE`` and ``KEY += VALUE`` statements separated by
newlines or ``;``, quoted strings, numbers kept as text, nested ``[ ... ]`` lists, ``#``
comments, last-assignment-wins, and ``xl create FILE KEY=VALUE...`` overrides (xl.1 "create").

Where libxlu is plainly broken xenlite gives the sensible answer and says so here:

- ``\\xHH`` escapes are always rejected by 4.17 (its dequote skips a digit and then demands
  three) and octal escapes are silently dropped; xenlite decodes both as C does.
- A NUL byte inside a string makes libxlu abort (assertion); xenlite reports it.
- A syntax error at the end of a line is reported by libxlu one line too early; xenlite
  names the line that holds it.

Every other answer is libxlu's, checked with Xen's own code (../shared/tools/xen-oracles):
values, settings and lines for the whole corpus, and the line of every error libxlu reports
(``ConfigSyntaxError.more`` follows its lexerrlineno and bison's error recovery).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, Unpack

from xenlite.base.errors import ConfigError, ConfigLocation
from xenlite.config.cnum import LONG_MAX, LONG_MIN, NumberRangeError, strtol
from xenlite.config.xlcfg.lexer import (
    NO_FINAL_NEWLINE_FIX,
    PYTHON_FIX,
    PYTHON_WIKI,
    Locator,
    Report,
    Tokens,
    decode_config_bytes,
    lex,
)
from xenlite.config.xlcfg.values import Atom, ListValue, Operator, Pos, Setting, Value

__all__ = [
    "PYTHON_WIKI",
    "ConfigSyntaxError",
    "NumberRangeError",
    "XlConfig",
    "decode_config_bytes",
    "parse",
    "parse_file",
    "parse_with_overrides",
    "render_config",
    "render_value",
    "strtol",
]

COMMAND_LINE = "<command line>"
# Bison's default YYMAXDEPTH (10000 stack entries) is what limits libxlu's list nesting:
# `a = [[...]]` fails with "memory exhausted" from 4997 levels on.
MAX_LIST_DEPTH = 4996
IDENT_RE = re.compile(r"[a-z][._0-9a-z]*\Z")
NUMBER_RE = re.compile(r"[0-9][0-9a-fx]*\Z")


class ConfigSyntaxError(ConfigError):
    """The first error in an xl.cfg file; ``more`` holds the further ones libxlu reports."""

    def __init__(
        self, cause: str, *, more: Sequence[ConfigError] = (), **where: Unpack[ConfigLocation]
    ) -> None:
        super().__init__(cause, **where)
        self.more: list[ConfigError] = list(more)


# --------------------------------------------------------------------------- the config


@dataclass(frozen=True, slots=True)
class XlConfig:
    """A parsed xl.cfg file: every assignment in file order, looked up as libxlu does.

    The assignment that wins for a key holds its effective value: for a chain of ``+=`` the
    joined string or list. An earlier link of such a chain keeps only its own operand, so
    that joining stays linear (libxlu, too, moves list items out of the earlier links).
    """

    path: str
    settings: tuple[Setting, ...]
    _last: dict[str, Setting] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        last: dict[str, Setting] = {}
        for setting in self.settings:
            last.pop(setting.name, None)
            last[setting.name] = setting
        object.__setattr__(self, "_last", last)

    def find(self, name: str) -> Setting | None:
        """The assignment that wins for ``name`` (the last one), or None."""
        return self._last.get(name)

    def keys(self) -> list[str]:
        """Distinct setting names in the order of their first appearance."""
        return list(dict.fromkeys(s.name for s in self.settings))

    def has(self, name: str) -> bool:
        """Whether ``name`` is assigned anywhere."""
        return name in self._last

    def pos_of(self, name: str) -> Pos:
        """Where the winning assignment of ``name`` is written.

        :raise KeyError: when ``name`` is not set (callers ask only after :meth:`has`).
        """
        return self._last[name].pos

    def _atom(self, name: str) -> tuple[Setting, Atom] | None:
        setting = self._last.get(name)
        if setting is None:
            return None
        if isinstance(setting.value, ListValue):
            raise setting.value.pos.error(
                "is a list but should be a single value",
                key=name,
                fix=f'write a single value, e.g. {name} = "..." (without [ ])',
            )
        return setting, setting.value

    def get_string(self, name: str) -> str | None:
        """The text of a single value; None when absent.

        :raise ConfigError: when the value is a list.
        """
        found = self._atom(name)
        return None if found is None else found[1].text

    def get_long(self, name: str, *, min: int | None = None, max: int | None = None) -> int | None:
        """A number read with C strtol semantics (decimal, 0x hex, 0 octal); None when absent.

        :raise ConfigError: for a list, a ``+=`` setting, text that is not a whole number, a
            number outside C long, or outside ``[min, max]``.
        """
        found = self._atom(name)
        if found is None:
            return None
        setting, atom = found
        if setting.op == "+=":
            raise setting.pos.error(
                "can't use += with numbers",
                key=name,
                fix=f"set the number with '=': {name} = {render_value(atom)}",
            )
        try:
            number = strtol(atom.text)
        except NumberRangeError:
            raise atom.pos.error(
                f"the number {atom.text!r} is out of range (it must fit in a signed 64-bit long)",
                key=name,
                fix=f"use a value between {LONG_MIN} and {LONG_MAX}",
            ) from None
        except ValueError:
            raise atom.pos.error(
                f"{atom.text!r} is not a valid number",
                key=name,
                fix="write a whole number: decimal (512), hexadecimal (0x200) or octal (01000)",
            ) from None
        if min is not None and number < min:
            raise atom.pos.error(
                f"value {number} is smaller than the minimum {min}",
                key=name,
                fix=f"use a value of at least {min}",
            )
        if max is not None and number > max:
            raise atom.pos.error(
                f"value {number} is greater than the maximum {max}",
                key=name,
                fix=f"use a value of at most {max}",
            )
        return number

    def get_bool(self, name: str) -> bool | None:
        """A BOOLEAN: a number, 0 is false and anything else true; None when absent.

        :raise ConfigError: as :meth:`get_long`.
        """
        number = self.get_long(name)
        return None if number is None else number != 0

    def get_list(self, name: str) -> ListValue | None:
        """A ``[ ... ]`` value; None when absent.

        :raise ConfigError: when the value is a single value.
        """
        setting = self._last.get(name)
        if setting is None:
            return None
        if not isinstance(setting.value, ListValue):
            raise setting.value.pos.error(
                "is a single value but should be a list",
                key=name,
                fix=f"write a list: {name} = [ {render_value(setting.value)} ]",
            )
        return setting.value

    def get_string_list(self, name: str) -> list[str] | None:
        """A list whose items are all single values, as their texts; None when absent.

        :raise ConfigError: when the value is not a list or an item is a nested list.
        """
        value = self.get_list(name)
        return None if value is None else _list_texts(name, value)

    def get_string_or_list(self, name: str) -> str | list[str] | None:
        """For keys xl accepts both as ``"a"`` and ``["a", "b"]``; None when absent.

        :raise ConfigError: when a list item is itself a list.
        """
        setting = self._last.get(name)
        if setting is None:
            return None
        if isinstance(setting.value, Atom):
            return setting.value.text
        return _list_texts(name, setting.value)


def _list_texts(name: str, value: ListValue) -> list[str]:
    texts: list[str] = []
    for index, item in enumerate(value.items):
        if not isinstance(item, Atom):
            raise item.pos.error(
                f"item {index + 1} of the list is a list but should be a string",
                key=name,
                fix="remove the inner [ ] so every item is a single value",
            )
        texts.append(item.text)
    return texts


# --------------------------------------------------------------------------- parser


class _SyntaxFailure(Exception):
    """A syntax error at token ``at``; the statement loop reports it and recovers as bison does."""

    def __init__(
        self, at: int, cause: str, fix: str, key: str | None, *, aborts: bool = False
    ) -> None:
        super().__init__(cause)
        self.at = at
        self.cause = cause
        self.fix = fix
        self.key = key
        self.aborts = aborts


class _StackExhausted(Exception):
    """Bison's "memory exhausted": the parse stops at once."""

    def __init__(self, at: int) -> None:
        super().__init__("memory exhausted")
        self.at = at


_VALUE_KINDS = frozenset(("STRING", "NUMBER"))
_END_KINDS = frozenset(("NEWLINE", ";"))


class _Joined:
    """The running value of a key built with ``+=``, kept in parts so joining stays linear."""

    __slots__ = ("count", "index", "is_list", "items", "pos", "quoted", "texts")

    def __init__(self, index: int, value: Value) -> None:
        self.index = index  # in the settings list: the assignment that holds the value
        self.is_list = isinstance(value, ListValue)
        self.texts: list[str] = []
        self.items: list[Value] = []
        self.quoted = False
        self.pos = value.pos
        self.count = 0
        self.add(value)

    def add(self, value: Value) -> None:
        self.count += 1
        self.pos = value.pos
        if isinstance(value, ListValue):
            self.items.extend(value.items)
        else:
            self.texts.append(value.text)
            self.quoted = self.quoted or value.quoted

    def value(self) -> Value:
        if self.is_list:
            return ListValue(tuple(self.items), self.pos)
        return Atom("".join(self.texts), self.pos, self.quoted)


class _Parser:
    """libxlu_cfg_y.y as a hand-written parser with bison's error recovery and reporting.

    Error reporting follows libxlu: every lexical error is printed unless an earlier one was
    on the same or a later line (``lexerrlineno``); a syntax error is printed only when the
    parser has shifted three tokens since the last one (bison's ``yyerrstatus``) and it is
    past ``lexerrlineno``; errors found while building values (bad escapes, ``+=`` of mixed
    kinds) only while no error has been printed (``ctx->err``).
    """

    def __init__(self, tokens: Tokens, locate: Locator) -> None:
        self.tokens = tokens
        self.kinds = tokens.kinds
        self.locate = locate
        self.index = 0
        self.pending = tokens.reports  # errors still to print, by the token they precede
        self.reports: list[ConfigError] = []
        self.lexerrlineno = -1
        self.errstatus = 0
        self.settings: list[Setting] = []
        self.current: dict[str, int] = {}  # key -> index of the setting with its value
        self.joined: dict[str, _Joined] = {}  # keys whose value is being built with +=

    # -- token stream ------------------------------------------------------------------

    def fetch(self, index: int) -> None:
        """Print what libxlu's scanner reports on its way to token ``index``.

        Called when the token is shifted or fails: both happen before anything the parser
        does after reading it, which keeps libxlu's order of reports.
        """
        for report in self.pending.pop(index, ()):
            self.lexical(report)

    def shift(self) -> int:
        index = self.index
        if self.pending:
            self.fetch(index)
        self.index = index + 1
        if self.errstatus:
            self.errstatus -= 1
        return index

    def lexical(self, report: Report) -> None:
        """xlu__cfgl_lexicalerror: print unless suppressed, then move lexerrlineno."""
        if not report.lexical and self.reports:
            return  # libxlu skips dequoting and joining once ctx->err is set
        if report.check_line > self.lexerrlineno:
            self.reports.append(report.error)
        self.lexerrlineno = report.check_line

    def pos(self, index: int) -> Pos:
        return self.locate(self.tokens.lines[index], self.tokens.cols[index])

    def describe(self, index: int) -> str:
        kind, text = self.kinds[index], self.tokens.texts[index]
        if kind == "IDENT":
            return f"the word {text!r}"
        if kind == "NUMBER":
            return f"the number {text}"
        if kind == "STRING":
            return f"the string {render_value(text)}"
        if kind == "NEWLINE":
            return "the end of the line"
        if kind == "EOF":
            return "the end of the file"
        return f"{kind!r}"

    # -- grammar -----------------------------------------------------------------------

    def run(self) -> None:
        while True:
            try:
                if not self.statement():
                    self.fetch(self.index)
                    return
            except _StackExhausted as exhausted:
                self.fetch(exhausted.at)
                if self.tokens.checks[exhausted.at] > self.lexerrlineno:
                    cause = f"lists are nested more than {MAX_LIST_DEPTH} deep"
                    fix = "flatten the list: Xen's parser runs out of stack space"
                    self.reports.append(self.pos(exhausted.at).error(cause, fix=fix))
                return
            except _SyntaxFailure as failure:
                at = failure.at
                self.fetch(at)
                if self.errstatus == 0 and self.tokens.checks[at] > self.lexerrlineno:
                    self.reports.append(
                        self.pos(at).error(failure.cause, key=failure.key, fix=failure.fix)
                    )
                if failure.aborts:
                    return
                # Bison pops to `stmts`, shifts `error` and discards tokens up to NEWLINE
                # (rule `stmt: error NEWLINE`); end of file aborts the parse.
                self.errstatus = 3
                while True:
                    kind = self.kinds[self.index]
                    if kind == "NEWLINE":
                        self.shift()
                        break
                    self.fetch(self.index)
                    if kind == "EOF":
                        return
                    self.index += 1

    def statement(self) -> bool:
        """One `stmt` (or the file's final `assignment`); False at end of file."""
        kind = self.kinds[self.index]
        if kind == "EOF":
            return False
        if kind in _END_KINDS:
            self.shift()
            return True
        if kind != "IDENT":
            raise _SyntaxFailure(
                self.index,
                f"expected a setting (KEY = VALUE) but found {self.describe(self.index)}",
                "start each setting with a lower-case key name, e.g. memory = 512",
                None,
            )
        name_at = self.shift()
        name = self.tokens.texts[name_at]
        op = self.kinds[self.index]
        if op != "=" and op != "+=":
            raise _SyntaxFailure(
                self.index,
                f"expected '=' or '+=' after {name!r} but found {self.describe(self.index)}",
                f"write {name} = VALUE (key names have no spaces or '-')",
                name,
            )
        self.shift()
        value = self.value(name, op)
        self.store(name_at, "+=" if op == "+=" else "=", value)
        kind = self.kinds[self.index]
        if kind in _END_KINDS:
            self.shift()
            return True
        if kind == "EOF":
            return False
        raise _SyntaxFailure(
            self.index,
            f"expected the end of the line or ';' after the value of {name!r} "
            f"but found {self.describe(self.index)}",
            "put each setting on its own line (or separate settings with ';'), "
            "and put several values in a list: [ 1, 2 ]",
            name,
            # Bison's default reduction to `file` has already happened here, so no state
            # on the stack can shift `error`: libxlu stops parsing at this error.
            aborts=True,
        )

    def skip_newlines(self) -> None:
        while self.kinds[self.index] == "NEWLINE":
            self.shift()

    def atom(self) -> Atom:
        at = self.shift()
        return Atom(self.tokens.texts[at], self.pos(at), self.kinds[at] == "STRING")

    def value(self, name: str, op: str) -> Value:
        kind = self.kinds[self.index]
        if kind in _VALUE_KINDS:
            return self.atom()
        if kind != "[":
            if kind == "IDENT":
                fix = f'quote text values: {name} {op} "{self.tokens.texts[self.index]}"'
            else:
                fix = f'give {name} a value on the same line, e.g. {name} {op} "..."'
            raise _SyntaxFailure(
                self.index,
                f"expected a value (a quoted string, a number or a [ list ]) after "
                f"'{name} {op}' but found {self.describe(self.index)}",
                fix,
                name,
            )
        # Lists are parsed with an explicit stack: they may nest thousands deep.
        stack: list[tuple[Pos, list[Value]]] = []
        expect_item = True  # after '[' or ',': an item or ']' may follow
        while True:
            kind = self.kinds[self.index]
            if kind == "[" and expect_item:
                if len(stack) >= MAX_LIST_DEPTH:
                    raise _StackExhausted(self.index)
                stack.append((self.pos(self.shift()), []))
                self.skip_newlines()
            elif kind == "]":
                self.shift()
                list_pos, items = stack.pop()
                done = ListValue(tuple(items), list_pos)
                if not stack:
                    return done
                stack[-1][1].append(done)
                self.skip_newlines()
                expect_item = False
            elif expect_item and kind in _VALUE_KINDS:
                stack[-1][1].append(self.atom())
                self.skip_newlines()
                expect_item = False
            elif not expect_item and kind == ",":
                self.shift()
                self.skip_newlines()
                expect_item = True
            else:
                raise self.list_failure(name, expect_item, stack[-1][0])

    def list_failure(self, name: str, expect_item: bool, opened: Pos) -> _SyntaxFailure:
        at, kind = self.index, self.kinds[self.index]
        if kind == "EOF":
            cause = f"the file ends inside the list of {name!r} opened at line {opened.line}"
            return _SyntaxFailure(at, cause, "close the list with ']'", name)
        found = self.describe(at)
        if expect_item:
            return _SyntaxFailure(
                at,
                f"expected a list item or ']' in the list of {name!r} but found {found}",
                'list items are quoted strings, numbers or lists: [ "a", 1, [ "b" ] ]'
                + ("; remove the extra ','" if kind == "," else ""),
                name,
            )
        return _SyntaxFailure(
            at,
            f"expected ',' or ']' after an item of the list of {name!r} but found {found}",
            "separate list items with ',' and close the list with ']'",
            name,
        )

    def store(self, name_at: int, op: Operator, value: Value) -> None:
        """xlu__cfg_set_store: `+=` joins with the current value of the same key."""
        name = self.tokens.texts[name_at]
        index = len(self.settings)
        previous = self.current.get(name) if op == "+=" else None
        if previous is not None:
            joined = self.joined.get(name)
            if joined is None:
                joined = self.joined[name] = _Joined(previous, self.settings[previous].value)
            if joined.is_list != isinstance(value, ListValue):
                self.mixed_join(name, name_at, joined)
                return
            joined.add(value)
            joined.index = index
        elif op == "=":
            self.joined.pop(name, None)
        self.current[name] = index
        self.settings.append(Setting(name, op, value, self.pos(name_at)))

    def mixed_join(self, name: str, name_at: int, joined: _Joined) -> None:
        was, now = ("a list", "a single value") if joined.is_list else ("a single value", "a list")
        # libxlu reports it where its lexer is: at the last token of the value.
        last = self.index - 1
        error = self.pos(last).error(
            'can\'t add [list] to "string" or vice versa: '
            f"{name!r} is {was} (line {self.settings[joined.index].pos.line}) and the += at "
            f"line {self.tokens.lines[name_at]} gives {now}",
            key=name,
            fix="use += with the same kind of value, or '=' to replace the value",
        )
        self.lexical(Report(error, self.tokens.lines[last], False))

    def finish(self) -> tuple[Setting, ...]:
        """The settings, each key's winning `+=` holding the joined value."""
        for joined in self.joined.values():
            if joined.count > 1:
                setting = self.settings[joined.index]
                joined_value = joined.value()
                self.settings[joined.index] = Setting(
                    setting.name, setting.op, joined_value, setting.pos
                )
        return tuple(self.settings)


# --------------------------------------------------------------------------- entry points


def _parse_text(text: str, path: str, locate: Locator) -> XlConfig:
    tokens = lex(text, locate)
    parser = _Parser(tokens, locate)
    parser.run()
    likely_python = tokens.likely_python
    if parser.reports:
        first, *more = parser.reports
        cause, fix = first.cause, first.fix
        if likely_python and fix not in (PYTHON_FIX, NO_FINAL_NEWLINE_FIX):
            # libxlu's closing warning: any of + - . ( ) : outside a string in a file that
            # failed means it is most likely an xm-era Python config.
            cause += "; the file looks like Python code from the old xm toolstack"
            fix = PYTHON_FIX
        raise ConfigSyntaxError(
            cause,
            path=first.path,
            line=first.line,
            col=first.col,
            key=first.key,
            fix=fix,
            more=more,
        )
    return XlConfig(path, parser.finish())


def parse(text: str | bytes, path: str = "<string>") -> XlConfig:
    """Parse xl.cfg text (bytes are decoded as UTF-8, or Latin-1 when not UTF-8).

    :raise ConfigSyntaxError: for the first error, located path:line:col, with the
        further errors libxlu would report in ``more``.
    """
    if isinstance(text, bytes):
        text = decode_config_bytes(text)
    return _parse_text(text, path, lambda line, col: Pos(path, line, col))


def parse_file(path: str | os.PathLike[str]) -> XlConfig:
    """Read and parse an xl.cfg file.

    :raise ConfigError: when the file cannot be read or does not parse.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc.strerror or exc}",
            path=name,
            fix="check that the path is right and the file is readable",
        ) from None
    return parse(data, name)


def parse_with_overrides(text: str | bytes, path: str, overrides: Sequence[str]) -> XlConfig:
    """``xl create FILE KEY=VALUE...``: each override is a statement after the file.

    xl appends ``"\\n" + "KEY=VALUE\\n"... + "\\n"`` to the file's text, so an override wins
    over the file and the file's last line needs no newline of its own. Errors inside an
    override are located as ``<command line>``, line = which override (1-based), col in it.

    :raise ConfigError: when an override has no '=', or the combined text does not parse.
    """
    if isinstance(text, bytes):
        text = decode_config_bytes(text)
    if not overrides:
        return parse(text, path)
    places: list[tuple[int, int]] = []
    for index, override in enumerate(overrides, 1):
        if "=" not in override:
            raise ConfigError(
                f"{override!r} is not a KEY=VALUE setting",
                path=COMMAND_LINE,
                line=index,
                col=1,
                fix="give settings as KEY=VALUE, e.g. memory=512 or 'name=\"vm1\"'",
            )
        offset = 0
        for part in override.split("\n"):
            places.append((index, offset))
            offset += len(part) + 1
    tail = (len(overrides), len(overrides[-1]))
    file_lines = text.count("\n") + 1

    def locate(line: int, col: int) -> Pos:
        if line <= file_lines:
            return Pos(path, line, col)
        at = line - file_lines - 1
        index, offset = places[at] if at < len(places) else tail
        return Pos(COMMAND_LINE, index, offset + col)

    combined = text + "\n" + "".join(o + "\n" for o in overrides) + "\n"
    return _parse_text(combined, path, locate)


# --------------------------------------------------------------------------- rendering

Renderable: TypeAlias = "Value | str | int | Sequence[Renderable]"
_RENDER_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r\t\a\b\f\v\0]')


def _quote(text: str) -> str:
    if "\0" in text:
        raise ValueError("an xl.cfg string cannot hold a NUL character")
    # Only escapes Xen 4.17 itself reads are used, so the output works with real xl too;
    # other control characters are legal as they are inside quotes.
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _RENDER_ESCAPES[m.group()], text) + '"'


def render_value(value: Renderable) -> str:
    """xl.cfg text for a value; ``parse()`` of it gives the same value back.

    Atoms written as numbers stay bare, text is double-quoted and escaped, a negative int is
    quoted (xl.cfg has no negative NUMBER, but strtol reads the string), lists use [ ].

    :raise ValueError: for a string holding NUL, or a type xl.cfg cannot express.
    """
    if isinstance(value, Atom):
        if not value.quoted and NUMBER_RE.match(value.text):
            return value.text
        return _quote(value.text)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value) if value >= 0 else _quote(str(value))
    items = value.items if isinstance(value, ListValue) else value
    if not isinstance(items, Sequence):
        raise ValueError(f"cannot render {type(value).__name__} as an xl.cfg value")
    return "[ " + ", ".join(render_value(item) for item in items) + " ]" if items else "[ ]"


def render_config(items: Sequence[tuple[str, Renderable]]) -> str:
    """``KEY = VALUE`` lines, one per item, in order; long lists get one item per line.

    :raise ValueError: for a key that is not an xl.cfg identifier, or a value as above.
    """
    lines: list[str] = []
    for key, value in items:
        if not IDENT_RE.match(key):
            raise ValueError(f"{key!r} is not a valid xl.cfg key ([a-z][._0-9a-z]*)")
        text = render_value(value)
        entries = value.items if isinstance(value, ListValue) else value
        if (
            len(key) + len(text) > 96
            and isinstance(entries, Sequence)
            and not isinstance(entries, str)
        ):
            inner = "".join(f"    {render_value(item)},\n" for item in entries)
            text = f"[\n{inner}]"
        lines.append(f"{key} = {text}\n")
    return "".join(lines)
