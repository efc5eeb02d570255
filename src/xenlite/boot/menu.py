"""A guest's boot menu, whichever bootloader wrote it, and pygrub's choice of entry.

The parsers (``grubmenu``, ``extlinux``) turn a config file into a ``BootMenu``; ``choose``
picks the entry pygrub would boot and ``boot_choice`` turns it into the kernel, ramdisk and
arguments that pygrub hands to the toolstack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xenlite.base.errors import XenliteError


class BootMenuError(XenliteError):
    """A boot config that names nothing bootable, or an entry that cannot be booted."""


@dataclass(frozen=True, slots=True)
class BootEntry:
    """One entry of a boot menu, as pygrub reads it: paths inside the guest's filesystem
    (a GRUB device prefix such as ``(hd0,0)`` already taken off)."""

    title: str
    kernel: str | None = None
    initrd: str | None = None
    # None when the kernel line carries no arguments (pygrub prints "args: None").
    args: str | None = None
    # The root device as pygrub shows it ("d0p1"), or the config's own words when pygrub's
    # reading of them would fail (an md or UUID root).
    root: str | None = None
    # GRUB 2: the entry's --id, and its place among submenus ("1>0" names submenu 1, entry 0).
    entry_id: str | None = None
    place: tuple[int, ...] = ()
    # The enclosing submenus' (title, id), outermost first.
    submenus: tuple[tuple[str, str], ...] = ()
    # What the entry does instead of loading a Linux kernel (chainloader +1, a COM32 module):
    # said when such an entry is chosen.
    other: str | None = None


@dataclass(slots=True)
class BootMenu:
    """A parsed boot config: ``kind`` is pygrub's name for its parser (grub, grub2,
    extlinux), ``default`` the raw default setting, ``warnings`` what was not understood."""

    kind: str
    # Where the config was read from ("/boot/grub/grub.cfg"): errors name it.
    source: str
    entries: list[BootEntry] = field(default_factory=list)
    default: str = "0"
    timeout: str | None = None
    warnings: list[str] = field(default_factory=list)
    # GRUB 2's environment block (grubenv), where saved_entry lives.
    env: dict[str, str] = field(default_factory=dict)
    # Top-level configfile/source lines: the menu GRUB would go on to (not followed).
    handovers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BootChoice:
    """The entry pygrub boots and what it hands to the toolstack."""

    index: int
    entry: BootEntry
    kernel: str
    ramdisk: str | None
    args: str


def _by_title(menu: BootMenu, title: str) -> int | None:
    for index, entry in enumerate(menu.entries):
        if entry.title == title:
            return index
    return None


def _by_place(menu: BootMenu, spec: str) -> int | None:
    """GRUB 2's "submenu>entry" default, each step an index, a title or an id."""
    steps = spec.split(">")
    candidates = list(enumerate(menu.entries))
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        matched: list[tuple[int, BootEntry]] = []
        for index, entry in candidates:
            if last and len(entry.place) != depth + 1:
                continue
            if not last and len(entry.place) <= depth + 1:
                continue
            names = (
                {str(entry.place[depth])}
                | ({entry.title, entry.entry_id or ""} if last else set(entry.submenus[depth]))
            ) - {""}
            if step in names:
                matched.append((index, entry))
        candidates = matched
    return candidates[0][0] if candidates else None


def default_index(menu: BootMenu) -> int:
    """The entry booted when nobody chooses, as GRUB would pick it.

    pygrub 4.17 agrees for an index and for a saved or next entry that is not set (it takes
    entry 0); it falls back to entry 0 for a title, an id, "submenu>entry" and a saved_entry
    set in grubenv, which GRUB boots by name: xenlite boots what GRUB boots there.
    """
    value = menu.default.strip()
    if value in ("${saved_entry}", "saved"):
        value = menu.env.get("saved_entry", "0") or "0"
    if value.isdigit():
        index = int(value)
        return index if index < len(menu.entries) else 0
    if menu.kind == "grub":
        # GRUB legacy knows only numbers ("default saved" is the number in its default file).
        return 0
    found = _by_title(menu, value)
    if found is None and menu.kind == "grub2":
        found = next(
            (i for i, e in enumerate(menu.entries) if e.entry_id and e.entry_id == value), None
        )
        if found is None and ">" in value:
            found = _by_place(menu, value)
    return 0 if found is None else found


def entry_index(menu: BootMenu, entry: str) -> int | None:
    """pygrub's ``--entry``: a number, else an exact title; None when neither matches."""
    if re.fullmatch(r"[+-]?\d+", entry.strip()):
        return int(entry)
    return _by_title(menu, entry)


def choose(menu: BootMenu, entry: str | None = None) -> int:
    """The index of the entry pygrub boots: ``entry`` when it names one, else the default."""
    if not menu.entries:
        handover = ""
        if menu.handovers:
            handover = (
                f" (it hands over to {menu.handovers[0]}, which pygrub does not follow either)"
            )
        raise BootMenuError(
            menu.source,
            f"no boot entries{handover}",
            fix="add a menuentry/title/LABEL with a kernel, or boot with kernel= directly",
        )
    index = default_index(menu)
    if entry is not None:
        asked = entry_index(menu, entry)
        if asked is not None and 0 <= asked < len(menu.entries):
            index = asked
    return index


def boot_choice(menu: BootMenu, entry: str | None = None, extra_args: str = "") -> BootChoice:
    """The kernel, ramdisk and command line pygrub hands over for the chosen entry;
    ``extra_args`` (pygrub's --args) is appended after the entry's own."""
    index = choose(menu, entry)
    chosen = menu.entries[index]
    if not chosen.kernel or chosen.kernel.lower().endswith(".c32"):
        does = f" (it runs {chosen.other})" if chosen.other else ""
        raise BootMenuError(
            menu.source,
            f"boot entry {index} {chosen.title!r} loads no Linux kernel{does}",
            fix="choose an entry with a kernel line (--entry or bootloader_args), "
            "or make that entry the default",
        )
    args = chosen.args or ""
    if extra_args:
        args += " " + extra_args
    return BootChoice(index, chosen, chosen.kernel, chosen.initrd or None, args)


# -- pygrub's way of splitting a config line into command and argument


def split_command(line: str) -> tuple[str, str]:
    """A line's command and the rest, as pygrub splits them: at the first '=' when it comes
    before the first blank ("default=0"), else at the first run of blanks."""
    blank = min((i for i in (line.find(" "), line.find("\t")) if i != -1), default=-1)
    equals = line.find("=")
    if equals != -1 and (blank == -1 or equals < blank):
        command, _, rest = line.partition("=")
        return command, rest
    parts = line.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def strip_device(path: str) -> tuple[str | None, str]:
    """``(hd0,0)/boot/vmlinuz`` -> ("(hd0,0)", "/boot/vmlinuz"); a path without a device
    prefix comes back as it is."""
    if not path.startswith("("):
        return None, path
    close = path.find(")")
    if close == -1:
        raise BootMenuError(path, "unmatched '(' in its device", fix="write it as (hd0,0)/path")
    return path[: close + 1], path[close + 1 :]


def root_label(device: str) -> str:
    """A GRUB device as pygrub prints it: ``(hd0,msdos1)`` -> d0p1, ``hd0`` -> d0,
    ``/dev/xvdb`` -> d1; anything else (an md or UUID root) stays as written."""
    text = device.replace("(", "").replace(")", "")
    disk, comma, part = text.partition(",")
    try:
        if disk.startswith("/dev/xvd") and len(disk) > len("/dev/xvd"):
            number = ord(disk[len("/dev/xvd")]) - ord("a")
        else:
            number = int(disk[2:])
        if not comma:
            return f"d{number}"
        for prefix in ("msdos", "gpt"):
            part = part.removeprefix(prefix)
        return f"d{number}p{int(part)}"
    except ValueError:
        return device
