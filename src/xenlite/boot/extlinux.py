"""extlinux / syslinux / isolinux configs, read as pygrub reads them.

Each ``LABEL`` opens an entry; ``KERNEL`` names the kernel (and may carry arguments),
``APPEND`` the arguments, where an ``initrd=`` word names the ramdisk; a multiboot entry
through ``mboot.c32`` takes its kernel and ramdisk from APPEND's ``---`` parts. pygrub knows
only KERNEL, so the ``LINUX`` and ``INITRD`` keywords of current syslinux and U-Boot's
extlinux.conf leave it without a kernel; xenlite reads them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xenlite.boot.menu import BootEntry, BootMenu, split_command

_TOP_IGNORED = {"serial", "prompt", "display", "f1", "f2"}
# Directives of an entry that choose no kernel, initrd or arguments.
_ENTRY_IGNORED = {"menu", "fdt", "fdtdir", "devicetree", "devicetreedir", "ipappend", "sysappend"}


def _unquoted(value: str) -> str:
    match = re.fullmatch(r'"(.+)"', value.strip())
    return match.group(1) if match else value.strip()


@dataclass(slots=True)
class _Entry:
    title: str = ""
    kernel: str | None = None
    # pygrub starts an entry with empty arguments; a KERNEL line without a blank sets None.
    args: str | None = ""
    initrd: str | None = None

    def set_kernel(self, value: str) -> None:
        if " " not in value:
            self.kernel, self.args = value, None
        else:
            self.kernel, self.args = value.split(None, 1)

    def line(self, line: str, warnings: list[str], number: int) -> None:
        command, arg = split_command(line)
        command = command.lower()
        if command == "append" and self.kernel is not None:
            if self.kernel.endswith("mboot.c32"):
                self._multiboot(arg)
                return
            if "initrd=" in arg:
                for word in arg.strip().split(" "):
                    if word.lower().startswith("initrd="):
                        self.initrd = word.replace("initrd=", "")
                        arg = arg.replace(word, "")
        if command == "label":
            self.title = _unquoted(arg)
        elif command in ("kernel", "linux"):
            self.set_kernel(_unquoted(arg))
        elif command == "append":
            self.args = _unquoted(arg)
        elif command == "initrd":
            self.initrd = _unquoted(arg).split(",")[0]
        elif command not in _ENTRY_IGNORED:
            warnings.append(f"line {number}: unknown entry directive {command}")

    def _multiboot(self, arg: str) -> None:
        self.kernel = None
        parts = arg.split("---")
        kernel = initrd = None
        if len(parts) == 3:
            kernel, initrd = parts[1], parts[2]
        elif len(parts) == 2:
            kernel, initrd = parts
        if kernel:
            self.set_kernel(kernel.strip())
        if initrd:
            self.initrd = initrd.strip()

    def done(self) -> BootEntry:
        other = None
        if self.kernel is not None and self.kernel.lower().endswith(".c32"):
            other = f"the COM32 module {self.kernel}, not a Linux kernel"
        # pygrub shows an extlinux entry's root as empty: the config names no device.
        return BootEntry(
            title=self.title,
            kernel=self.kernel,
            initrd=self.initrd,
            args=self.args,
            root="",
            other=other,
        )


def parse_extlinux(text: str, source: str) -> BootMenu:
    """An extlinux.conf, syslinux.cfg or isolinux.cfg."""
    menu = BootMenu("extlinux", source)
    current: _Entry | None = None
    default = ""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("label"):
            if current is not None:
                menu.entries.append(current.done())
            current = _Entry()
        if current is not None:
            current.line(line, menu.warnings, number)
            continue
        command, arg = split_command(line)
        command = command.lower()
        if command == "default":
            default = arg.strip()
        elif command == "timeout":
            menu.timeout = arg.strip()
        elif command not in _TOP_IGNORED:
            menu.warnings.append(f"line {number}: unknown directive {command}")
    if current is not None:
        menu.entries.append(current.done())
    # DEFAULT names a label; one that names none (a menu module such as vesamenu.c32) boots
    # the first entry.
    index = next((i for i, e in enumerate(menu.entries) if e.title == default), 0)
    menu.default = str(index)
    return menu
