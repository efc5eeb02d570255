"""The xl.cfg lexer: tokens with positions, string unescaping, the Python-code detection.

Implements the tokens of xl.cfg(5) "SYNTAX" exactly as Xen 4.17's libxlutil scans them
(libxlu_cfg_l.l, and xlu__cfgl_dequote in libxlu_cfg.c): identifiers, numbers kept as text,
quoted strings with C escapes, ``,[]=;`` and ``+=``, newlines and ``#`` comments, and the
errors flex reports (with the line libxlu compares, its ``lexerrlineno``). A character in
``+-.():`` outside a string marks the file as likely xm-era Python. The parser is in
:mod:`xenlite.config.xlcfg.grammar`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import is_hex
from xenlite.config.xlcfg.values import Pos

PYTHON_WIKI = "https://wiki.xen.org/wiki/PythonInXlConfig"
PYTHON_FIX = (
    "write plain KEY = VALUE settings (strings in quotes, lists in [ ]) instead of Python; "
    f"see {PYTHON_WIKI}"
)
NO_FINAL_NEWLINE_FIX = "add a newline at the end of the file"

# One alternative per flex rule of libxlu_cfg_l.l, ordered so that Python's first match is
# flex's longest match. `bad` is the catch-all that enters flex's `lexerr` start condition;
# `tail` is what that condition swallows before it reports: a run of non-blanks, one
# blank, or the newline (which is still returned as NEWLINE). At end of file libxlu's lexer
# reports nothing for a pending `lexerr`, so neither do we. (`bad` encloses the other two
# so that it is the match's lastgroup.)
_TOKEN_RE = re.compile(
    r"""
     (?P<IDENT>[a-z][._0-9a-z]*)
    |(?P<NUMBER>[0-9][0-9a-fx]*)
    |(?P<blank>[ \t]+)
    |(?P<P>\+=|[,\[\]=;])
    |(?P<NEWLINE>\n|\#[^\n]*\n)
    |(?P<STRING>'(?:[^'\\\n]|\\[^\n])*'|"(?:[^"\\\n]|\\[^\n])*")
    |(?P<bad>(?P<trigger>[^\n])(?P<tail>[^ \t\n]+|[ \t]|\n|))
    """,
    re.VERBOSE,
)
_PYTHON_CHARS = frozenset("+-.():")  # libxlu_cfg_l.l: [+-.():] sets likely_python
_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_ESCAPE_HELP = (
    "use one of \\\" \\' \\\\ \\a \\b \\f \\n \\r \\t \\v \\xHH \\OOO, "
    "and write a literal backslash as \\\\"
)


class Report(NamedTuple):
    """One libxlu error report: what we show, and the line libxlu compares (lexerrlineno)."""

    error: ConfigError
    check_line: int
    lexical: bool  # False: found while building a value, skipped once ctx->err is set


Locator: TypeAlias = Callable[[int, int], Pos]


class Tokens:
    """The token stream in parallel lists (a tuple per token costs too much on 1 MB files).

    ``kinds``: IDENT NUMBER STRING NEWLINE EOF or the punctuation itself; ``texts``: the
    dequoted value of a STRING, else the source text; ``checks``: yylloc.first_line as
    libxlu's scanner sets it; ``reports``: errors libxlu prints while scanning up to token i.
    """

    __slots__ = ("checks", "cols", "kinds", "likely_python", "lines", "reports", "texts")

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.texts: list[str] = []
        self.lines: list[int] = []
        self.cols: list[int] = []
        self.checks: list[int] = []
        self.reports: dict[int, list[Report]] = {}
        self.likely_python = False


def decode_config_bytes(data: bytes) -> str:
    """Config bytes as text: UTF-8 when valid, else Latin-1 (libxlu itself is 8-bit clean)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def lex(text: str, locate: Locator) -> Tokens:
    """Tokens as libxlu's flex scanner returns them."""
    out = Tokens()
    kinds, texts, lines, cols, checks = out.kinds, out.texts, out.lines, out.cols, out.checks
    line, line_start = 1, 0
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or ""
        if kind == "blank":
            continue
        start = m.start()
        col = start - line_start + 1
        value = m.group()
        if kind == "P":
            kind = value
        elif kind == "NEWLINE":
            col += len(value) - 1  # a comment's token is where its newline is
            line_start = m.end()
        elif kind == "STRING":
            value = value[1:-1]
            if "\\" in value or "\0" in value:
                errors = out.reports.setdefault(len(kinds), [])
                value = _dequote(value, locate(line, col), errors)
        elif kind == "bad":
            trigger, tail = m.group("trigger"), m.group("tail")
            python = trigger in _PYTHON_CHARS
            out.likely_python = out.likely_python or python
            if tail != "\n":
                if tail:  # a pending lexerr at end of file is never reported by libxlu
                    cause, fix = _lexical_cause(trigger, tail, python)
                    report = Report(locate(line, col).error(cause, fix=fix), line, True)
                    out.reports.setdefault(len(kinds), []).append(report)
                continue
            cause, fix = _lexical_cause(trigger, tail, python)
            # flex has counted the newline already: libxlu's line for it is the next one.
            report = Report(locate(line, col).error(cause, fix=fix), line + 1, True)
            out.reports.setdefault(len(kinds), []).append(report)
            kinds.append("NEWLINE")
            texts.append("\n")
            lines.append(line)
            cols.append(m.end() - line_start)
            checks.append(line + 1)
            line, line_start = line + 1, m.end()
            continue
        kinds.append(kind)
        texts.append(value)
        lines.append(line)
        cols.append(col)
        checks.append(line)
        if kind == "NEWLINE":
            line += 1
    # bison's yylloc keeps the previous token's location at end of file, so libxlu names
    # that token's line: after a final newline, the end of the last line rather than a
    # line past the end of the file.
    if kinds and kinds[-1] == "NEWLINE":
        eof_line, eof_col = checks[-1], cols[-1] if checks[-1] == lines[-1] else 1
    else:
        eof_line, eof_col = line, len(text) - line_start + 1
    kinds.append("EOF")
    texts.append("")
    lines.append(eof_line)
    cols.append(eof_col)
    checks.append(checks[-1] if checks else 1)
    return out


def _lexical_cause(trigger: str, tail: str, python: bool) -> tuple[str, str]:
    near = (trigger + tail).rstrip(" \t\n")
    if trigger == "#":
        return (
            "the last line of the file is a comment without a newline at its end, "
            "which Xen's parser rejects",
            NO_FINAL_NEWLINE_FIX,
        )
    if trigger == "\r":
        return (
            "carriage return (Windows line ending) outside a string",
            "convert the file to Unix line endings, e.g. with dos2unix",
        )
    if python:
        return (
            f"unexpected {trigger!r} in {near!r}: outside a quoted string this looks like "
            "Python code from the old xm toolstack, which xl does not run",
            PYTHON_FIX,
        )
    if trigger in "\"'":
        return (
            f"the string {near!r} is not closed on the line where it starts",
            f"add the closing {trigger}; a string cannot span lines (write \\n for a newline)",
        )
    if trigger == "\0":
        return ("NUL byte: this is not a text file", "give xl a text configuration file")
    if "A" <= trigger <= "Z":
        word = re.match(r"[A-Za-z0-9_.]*", near)
        text = word.group() if word else trigger
        return (
            f"unexpected upper-case {trigger!r} in {near!r}: keys are lower case and text "
            "values must be quoted",
            f"write a key in lower case ({text.lower()} = ...) and a text value in quotes "
            f'("{text}")',
        )
    if trigger == "\ufeff":
        return (
            "the file starts with a byte-order mark",
            "save the file as UTF-8 without a byte-order mark",
        )
    if not trigger.isprintable():
        return (
            f"unexpected control character U+{ord(trigger):04X}",
            "remove it; only spaces and tabs may separate tokens",
        )
    return (
        f"unexpected {trigger!r} in {near!r}: xl.cfg has only KEY = VALUE settings",
        'quote text values (key = "...") and use [ ] for lists',
    )


def _dequote(body: str, pos: Pos, pending: list[Report]) -> str:
    """The value of a quoted string (without its quotes); a bad escape is reported."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\0":
            return _bad_escape(pos, i, pending, "a NUL byte inside a string", "remove it", out)
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]  # the lexer guarantees a character after a backslash
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
            continue
        if esc == "x":
            digits = body[i + 2 : i + 4]
            if len(digits) != 2 or not all(is_hex(d) for d in digits):
                cause = "\\x must be followed by two hex digits"
                return _bad_escape(pos, i, pending, cause, _ESCAPE_HELP, out)
            end = i + 4
        elif "0" <= esc <= "7":
            end = i + 2
            while end < n and end < i + 4 and "0" <= body[end] <= "7":
                end += 1
            digits = body[i + 1 : end]
        else:
            cause = f"invalid escape \\{esc} in a quoted string"
            return _bad_escape(pos, i, pending, cause, _ESCAPE_HELP, out)
        code = int(digits, 16 if esc == "x" else 8)
        if not 0 < code <= 0xFF:
            cause = f"the escape {body[i:end]} is not a character code from 1 to 255"
            return _bad_escape(pos, i, pending, cause, "a string cannot hold NUL", out)
        out.append(chr(code))
        i = end
    return "".join(out)


def _bad_escape(
    pos: Pos, offset: int, pending: list[Report], cause: str, fix: str, out: list[str]
) -> str:
    # Column of the offending character: the token's column plus the opening quote.
    where = Pos(pos.path, pos.line, pos.col + 1 + offset)
    pending.append(Report(where.error(cause, fix=fix), pos.line, False))
    return "".join(out)
