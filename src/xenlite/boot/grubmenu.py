"""GRUB legacy (menu.lst, grub.conf) and GRUB 2 (grub.cfg) menus, read as pygrub reads them.

pygrub does not run GRUB's script language: it reads a grub.cfg line by line, takes every
``set default=``/``set timeout=`` it meets (the last one wins, whatever ``if`` they sit
in), and takes each ``menuentry`` (also inside submenus) as a flat list of entries with
their ``linux``/``initrd`` lines. xenlite reads the same way, so it boots the same kernel,
and does better where pygrub's line matching breaks on valid files: braces are counted
(a menuentry inside a function, ``menuentry 'x'{`` without a blank), titles are read with
GRUB's quoting, an md/UUID ``set root`` is kept as text, and EFI's ``linuxefi`` counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from xenlite.boot.menu import (
    BootEntry,
    BootMenu,
    BootMenuError,
    root_label,
    split_command,
    strip_device,
)

# -- shared by both GRUBs

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(slots=True)
class _Entry:
    """An entry being read: the lines' effect so far."""

    title: str
    kernel: str | None = None
    args: str | None = None
    initrds: list[str] = field(default_factory=list)
    root: str | None = None
    other: str | None = None
    # GRUB 2's variables as the entry sees them (the top level's, then its own `set`s).
    variables: dict[str, str] = field(default_factory=dict)

    def _path(self, word: str) -> str:
        # A path that names a variable: its value, as GRUB expands it (an unset one is
        # empty). pygrub keeps "${x}/vmlinuz" literally and then finds no such file; the
        # arguments stay as written, as pygrub passes them.
        if "$" in word:
            word = _VARIABLE.sub(lambda m: self.variables.get(m[1] or m[2], ""), word)
        return strip_device(word)[1]

    def set_kernel(self, value: str) -> None:
        # pygrub: a kernel line without a blank has no arguments; a later kernel line
        # replaces both the path and the arguments.
        if " " not in value:
            path, args = value, None
        else:
            path, args = value.split(None, 1)
        self.kernel = self._path(path)
        self.args = args

    def set_initrd(self, value: str) -> None:
        # GRUB 2 loads several initrds one after the other (microcode, then the system's);
        # they are concatenated into one ramdisk, which Linux unpacks in turn.
        self.initrds = [self._path(word) for word in value.split()]

    def set_root(self, value: str) -> None:
        self.root = root_label(value)

    def done(self, **extra: object) -> BootEntry:
        initrd = " ".join(self.initrds) if self.initrds else None
        entry = BootEntry(
            title=self.title.strip(),
            kernel=self.kernel or None,
            initrd=initrd,
            args=self.args,
            root=self.root,
            other=self.other,
        )
        return replace(entry, **extra)  # type: ignore[arg-type]


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped line) for each line that is neither blank nor a comment."""
    found = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            found.append((number, line))
    return found


# -- GRUB legacy

_LEGACY_TOP = {"default", "timeout", "fallback", "hiddenmenu", "splashimage", "password"}
_LEGACY_IGNORED = {
    "bootp", "color", "device", "dhcp", "hide", "ifconfig", "pager", "partnew", "parttype",
    "rarp", "serial", "setkey", "terminal", "terminfo", "tftpserver", "unhide",
}  # fmt: skip


def parse_grub_legacy(text: str, source: str) -> BootMenu:
    """A GRUB legacy menu.lst / grub.conf."""
    menu = BootMenu("grub", source)
    current: _Entry | None = None
    lines_in_entry = 0

    def close() -> None:
        # pygrub drops a last title with no lines under it.
        if current is not None and lines_in_entry:
            menu.entries.append(current.done())

    for number, line in _lines(text):
        if line.startswith("title"):
            if current is not None:
                menu.entries.append(current.done())
            current, lines_in_entry = _Entry(line[6:]), 0
            continue
        command, arg = split_command(line)
        arg = arg.strip()
        if current is not None:
            lines_in_entry += 1
            if command in ("root", "rootnoverify"):
                current.set_root(arg)
            elif command == "kernel":
                current.set_kernel(arg)
            elif command == "initrd":
                current.initrds = [strip_device(arg)[1]]
            elif command == "chainloader":
                current.other = f"chainloader {arg}"
            elif command != "module":
                menu.warnings.append(f"line {number}: unknown entry command {command}")
            continue
        if command == "default":
            menu.default = arg
        elif command == "timeout":
            menu.timeout = arg
        elif command not in _LEGACY_TOP and command not in _LEGACY_IGNORED:
            menu.warnings.append(f"line {number}: unknown command {command}")
    close()
    return menu


# -- GRUB 2


def grub_words(line: str) -> list[str]:
    """A GRUB 2 command line split into words with GRUB's quoting: '...' is literal,
    "..." and bare words take backslash escapes."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    while i < len(line):
        char = line[i]
        if char in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif char == "'":
            end = line.find("'", i + 1)
            end = len(line) if end == -1 else end
            word.append(line[i + 1 : end])
            in_word, i = True, end
        elif char == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in '"\\$':
                    i += 1
                word.append(line[i])
                i += 1
            in_word = True
        elif char == "\\" and i + 1 < len(line):
            word.append(line[i + 1])
            in_word, i = True, i + 1
        elif char == "{" and not in_word and i == len(line) - 1:
            words.append("{")
        else:
            word.append(char)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    return words


def _opens_block(line: str, keyword: str) -> bool:
    return line.startswith(keyword) and line[len(keyword) : len(keyword) + 1] in (" ", "\t")


def _heading(line: str, keyword: str, number: int, source: str) -> tuple[str, str | None]:
    """The title and --id of a ``menuentry``/``submenu`` line."""
    text = line.rstrip()
    if text.endswith("{"):
        text = text[:-1]
    words = grub_words(text[len(keyword) :])
    if not words:
        raise BootMenuError(f"{source}:{number}", f"{keyword} without a title", fix=None)
    entry_id = None
    for i, word in enumerate(words[1:-1], start=1):
        if word in ("--id", "$menuentry_id_option", "${menuentry_id_option}"):
            entry_id = words[i + 1]
        elif word.startswith("--id="):
            entry_id = word[len("--id=") :]
    if words[-1].startswith("--id=") and len(words) > 1:
        entry_id = words[-1][len("--id=") :]
    return words[0], entry_id


def _assignment(line: str) -> tuple[str, str] | None:
    """``set name=value`` (or a bare ``name=value``) -> (name, value without its quotes)."""
    text = line[4:].lstrip() if _opens_block(line, "set") else line
    name, equals, value = text.partition("=")
    if not equals or not name or any(c in name for c in " \t\"'$"):
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return name, value


def parse_grub2(text: str, source: str, env: dict[str, str] | None = None) -> BootMenu:
    """A GRUB 2 grub.cfg; ``env`` is the grubenv beside it (saved_entry), if any."""
    menu = BootMenu("grub2", source, env=dict(env or {}))
    current: _Entry | None = None
    current_id: str | None = None
    # Each open submenu's title and its index among its siblings; one item counter per level.
    submenus: list[tuple[str, str, int]] = []
    counters = [0]
    function_depth = 0
    variables: dict[str, str] = {}
    for number, line in _lines(text):
        if function_depth:
            # A function body is not run by pygrub (nor by xenlite): only its braces count.
            if line.startswith("}"):
                function_depth -= 1
            elif line.endswith("{"):
                function_depth += 1
            continue
        if _opens_block(line, "function"):
            function_depth = 1 if line.endswith("{") else 0
            continue
        if _opens_block(line, "menuentry") or line.startswith("menuentry'"):
            if current is not None:
                raise BootMenuError(
                    f"{source}:{number}",
                    f"menuentry inside menuentry {current.title!r}",
                    fix="close the first menuentry with '}' before the next",
                )
            title, current_id = _heading(line, "menuentry", number, source)
            current = _Entry(title, variables=dict(variables))
            continue
        if _opens_block(line, "submenu"):
            title, submenu_id = _heading(line, "submenu", number, source)
            submenus.append((title, submenu_id or "", counters[-1]))
            counters.append(0)
            continue
        if line.startswith("}"):
            if current is not None:
                place = (*(index for _, _, index in submenus), counters[-1])
                counters[-1] += 1
                menu.entries.append(
                    current.done(
                        entry_id=current_id,
                        place=place,
                        submenus=tuple((title, ident) for title, ident, _ in submenus),
                    )
                )
                current = None
            elif submenus:
                submenus.pop()
                counters.pop()
                counters[-1] += 1
            else:
                raise BootMenuError(
                    f"{source}:{number}",
                    "'}' closes no menuentry, submenu or function",
                    fix="remove the stray '}' or open its block",
                )
            continue
        command, arg = split_command(line)
        if current is not None:
            _entry_line(current, command, arg.strip(), line)
            continue
        if command in ("configfile", "source"):
            menu.handovers.append(f"{command} {arg.strip()}")
        assigned = _assignment(line)
        if assigned is None:
            continue
        name, value = assigned
        variables[name] = value
        if name == "default":
            if value in ("${saved_entry}", "${next_entry}") and not menu.env.get(value[2:-1]):
                value = "0"
            elif value == "${next_entry}":
                value = menu.env["next_entry"]
            menu.default = value
        elif name == "timeout":
            menu.timeout = value
    if current is not None:
        raise BootMenuError(
            source,
            f"the file ends inside menuentry {current.title!r}",
            fix="close it with '}'",
        )
    return menu


def _entry_line(entry: _Entry, command: str, arg: str, line: str) -> None:
    if command in ("linux", "linux16", "linuxefi"):
        entry.set_kernel(arg)
    elif command in ("initrd", "initrd16", "initrdefi"):
        entry.set_initrd(arg)
    elif command in ("chainloader", "multiboot", "multiboot2", "configfile"):
        entry.other = entry.other or f"{command} {arg}".strip()
    else:
        assigned = _assignment(line)
        if assigned is not None:
            entry.variables[assigned[0]] = assigned[1]
            if assigned[0] == "root":
                entry.set_root(assigned[1])
