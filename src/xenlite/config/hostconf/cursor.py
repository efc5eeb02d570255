"""A reading position in config text that keeps its 1-based line and column.

Shared by the hand-written readers of files whose man page gives no grammar of its own:
/etc/default/grub (:mod:`xenlite.config.hostconf.grub_default`, POSIX shell) and xend-config.sxp
(:mod:`xenlite.config.hostconf.xend`, S-expressions), so both locate errors as path:line:col.
"""

from __future__ import annotations

from xenlite.config.xlcfg.values import Pos


class TextCursor:
    """``text`` read from ``pos`` on; ``advance`` keeps ``line`` and the line's start."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1
        self.line_start = 0

    def advance(self) -> str:
        """The character at ``pos``, stepping past it (and onto the next line after \\n)."""
        char = self.text[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
            self.line_start = self.pos
        return char

    def col(self) -> int:
        """The 1-based column of ``pos``."""
        return self.pos - self.line_start + 1

    def here(self) -> Pos:
        """Where ``pos`` is, as a Pos."""
        return Pos(self.path, self.line, self.col())
