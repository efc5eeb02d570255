"""``xenlite pygrub``: pygrub's command line, options and output formats, so that scripts
and toolstacks written for Xen's pygrub work unchanged.

Where pygrub 4.17 misbehaves xenlite says so instead: ``-n`` prints the paths inside the
guest (pygrub prints ``kernel None``), ``-l`` prints ``None`` for an entry without a kernel
(pygrub raises), and the interactive menu is a plain numbered prompt (not curses), refused
clearly when there is no terminal.
"""

from __future__ import annotations

import getopt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.paths import under_root
from xenlite.boot.disk import BootloaderError, Disk
from xenlite.boot.extlinux import parse_extlinux
from xenlite.boot.grubmenu import parse_grub2, parse_grub_legacy
from xenlite.boot.loader import Extracted, Found, extract, opened, search
from xenlite.boot.menu import BootMenu, boot_choice, choose

USAGE = (
    "Usage: {prog} [-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] "
    "[--output=] [--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] "
    "[--output-format=sxp|simple|simple0] [--runas=] [--offset=] <image>"
)
_LONG = [
    "quiet", "interactive", "list-entries", "not-really", "help", "output=", "output-format=",
    "output-directory=", "offset=", "runas=", "entry=", "kernel=", "ramdisk=", "args=",
    "isconfig", "debug",
]  # fmt: skip
DEFAULT_OUTPUT_DIRECTORY = "/var/run/xen/pygrub"


class UsageError(Exception):
    """pygrub's own words on a bad command line; exit status 1."""


@dataclass(slots=True)
class Options:
    image: str = ""
    interactive: bool = True
    list_entries: bool = False
    not_really: bool = False
    output: str | None = None
    output_format: str = "sxp"
    output_directory: Path | None = None
    offset: int | None = None
    entry: str | None = None
    kernel: str | None = None
    ramdisk: str | None = None
    args: str = ""
    isconfig: bool = False
    debug: bool = False


def parse_options(argv: list[str]) -> Options:
    try:
        pairs, rest = getopt.gnu_getopt(argv, "qilnh::", _LONG)
    except getopt.GetoptError as error:
        raise UsageError(str(error)) from error
    options = Options()
    for name, value in pairs:
        if name in ("-q", "--quiet"):
            options.interactive = False
        elif name in ("-i", "--interactive"):
            options.interactive = True
        elif name in ("-l", "--list-entries"):
            options.list_entries = True
        elif name in ("-n", "--not-really"):
            options.not_really = True
        elif name in ("-h", "--help"):
            raise UsageError("")
        elif name == "--output":
            options.output = None if value == "-" else value
        elif name == "--runas":
            raise UsageError(
                "--runas is not supported: xenlite reads the image in this process without "
                "mounting it or running guest code; run xenlite pygrub as that user instead"
            )
        elif name == "--kernel":
            options.kernel = value
        elif name == "--ramdisk":
            options.ramdisk = value
        elif name == "--args":
            options.args = value
        elif name == "--offset":
            if not value.lstrip("-").isdigit():
                raise UsageError("offset value must be an integer")
            options.offset = int(value)
        elif name == "--entry":
            options.entry = value
            options.interactive = False
        elif name == "--isconfig":
            options.isconfig = True
        elif name == "--debug":
            options.debug = True
        elif name == "--output-format":
            if value not in ("sxp", "simple", "simple0"):
                raise UsageError(f"unknown output format {value}")
            options.output_format = value
        elif name == "--output-directory":
            if not os.path.isdir(value):
                raise UsageError(f"{value} is not an existing directory")
            options.output_directory = Path(value)
    if not rest:
        raise UsageError("")
    options.image = rest[0]
    return options


def format_sxp(kernel: str | None, ramdisk: str | None, args: str | None) -> str:
    text = f"linux (kernel {kernel!r})"
    if ramdisk:
        text += f"(ramdisk {ramdisk!r})"
    if args:
        text += f"(args {args!r})"
    return text


def format_simple(kernel: str | None, ramdisk: str | None, args: str | None, sep: str) -> str:
    for value in (kernel, ramdisk, args):
        if value is not None and sep in value:
            raise BootloaderError(
                "--output-format",
                "the simple format cannot hold a value containing its separator",
                fix="use --output-format=sxp",
            )
    text = f"kernel {kernel}{sep}"
    if ramdisk:
        text += f"ramdisk {ramdisk}{sep}"
    if args:
        text += f"args {args}{sep}"
    return text + sep


def render(fmt: str, kernel: str | None, ramdisk: str | None, args: str) -> str:
    """The result in pygrub's --output-format; no args when the command line is empty."""
    if fmt == "sxp":
        return format_sxp(kernel, ramdisk, args or None)
    return format_simple(kernel, ramdisk, args or None, "\n" if fmt == "simple" else "\0")


def list_entries(menu: BootMenu) -> str:
    """pygrub -l: each entry's title, root, kernel, args and initrd."""
    lines = []
    for entry in menu.entries:
        lines += [
            f"title: {entry.title}",
            f"  root: {entry.root}",
            f"  kernel: {entry.kernel}",
            f"  args: {entry.args}",
            f"  initrd: {entry.initrd}",
        ]
    return "".join(line + "\n" for line in lines)


def _config_menu(path: Path) -> BootMenu:
    """--isconfig: the file itself is the boot config; its kind from its name or content."""
    text = path.read_text(encoding="utf-8", errors="replace")
    name = path.name.lower()
    if "extlinux" in name or "syslinux" in name or "isolinux" in name:
        return parse_extlinux(text, str(path))
    if name.endswith((".lst", "grub.conf")) or (
        "menuentry" not in text and "\ntitle" in "\n" + text
    ):
        return parse_grub_legacy(text, str(path))
    return parse_grub2(text, str(path))


def ask(menu: BootMenu, default: int) -> int:
    """The interactive menu: numbered entries, a number typed on the terminal, the default
    after the config's timeout (none: wait)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise BootloaderError(
            "pygrub", "the interactive menu needs a terminal", fix="use -q or --entry=N"
        )
    for index, entry in enumerate(menu.entries):
        mark = "*" if index == default else " "
        sys.stderr.write(f"{mark}{index:3d}  {entry.title}\n")
    timeout = None
    if menu.timeout and menu.timeout.strip().lstrip("-").isdigit():
        timeout = int(menu.timeout) if int(menu.timeout) >= 0 else None
    sys.stderr.write(
        f"Boot which entry [{default}]"
        + (f" (booting it in {timeout} s)" if timeout is not None else "")
        + "? "
    )
    sys.stderr.flush()
    import select

    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        sys.stderr.write("\n")
        return default
    answer = sys.stdin.readline().strip()
    if answer.isdigit() and int(answer) < len(menu.entries):
        return int(answer)
    return default


def _write(options: Options, text: str) -> None:
    if options.output is None:
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), text.encode())
        return
    fd = os.open(options.output, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Chosen:
    """What pygrub boots from an image: the files by their paths inside the guest, the
    command line, and where the menu was; ``entry`` is None when --kernel named the files."""

    found: Found
    kernel: str
    ramdisk: str | None
    args: str
    entry: int | None

    def extract(self, directory: Path) -> Extracted:
        """Copy the kernel and ramdisk out into new files in ``directory``."""
        return extract(self.found.fs, self.kernel, self.ramdisk, self.found.config, directory)


def _look(options: Options, disk: Disk, name: str, *, need_kernel: bool) -> Found:
    looked = search(
        disk,
        name,
        entry=options.entry,
        extra_args=options.args,
        offset=options.offset,
        need_kernel=need_kernel,
    )
    if options.debug:
        for reason in looked.tried:
            sys.stderr.write(f"pygrub: {reason}\n")
    if looked.found is None:
        raise looked.failure()
    return looked.found


def choose_boot(options: Options, disk: Disk, name: str) -> Chosen:
    """pygrub's choice on ``disk`` (called ``name`` in messages) for these options: the
    menu's entry (asked on the terminal when interactive), or the files --kernel names."""
    given_kernel = options.kernel is not None
    found = _look(options, disk, name, need_kernel=not given_kernel)
    if given_kernel:
        kernel, ramdisk, args, index = str(options.kernel), options.ramdisk, options.args, None
    else:
        index = choose(found.menu, options.entry)
        if options.interactive:
            index = ask(found.menu, index)
        choice = boot_choice(found.menu, str(index), options.args)
        kernel, ramdisk, args = choice.kernel, choice.ramdisk, choice.args
    return Chosen(found, kernel, ramdisk, args, index)


def run(options: Options) -> int:
    if options.isconfig:
        menu = _config_menu(Path(options.image))
        choice = boot_choice(menu, options.entry, options.args)
        sys.stdout.write(f"  kernel: {choice.kernel}\n")
        if choice.ramdisk:
            sys.stdout.write(f"  initrd: {choice.ramdisk}\n")
        sys.stdout.write(f"  args: {choice.args}\n")
        return 0
    output_directory = options.output_directory or under_root(DEFAULT_OUTPUT_DIRECTORY)
    output_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    image = Path(options.image)
    with opened(image) as disk:
        if options.list_entries:
            found = _look(options, disk, str(image), need_kernel=False)
            _say_where(image, found)
            sys.stdout.write(list_entries(found.menu))
            return 0
        chosen = choose_boot(options, disk, str(image))
        _say_where(image, chosen.found)
        if options.not_really:
            for path in (chosen.kernel, *(chosen.ramdisk or "").split()):
                if not chosen.found.fs.exists(path):
                    raise BootloaderError(
                        f"{image}: {path}", "no such file in the guest", fix="check the path"
                    )
            text = render(options.output_format, chosen.kernel, chosen.ramdisk, chosen.args)
            _write(options, text)
            return 0
        files = chosen.extract(output_directory)
        try:
            ramdisk = str(files.ramdisk) if files.ramdisk else None
            _write(options, render(options.output_format, str(files.kernel), ramdisk, chosen.args))
        except BaseException:
            files.remove()
            raise
    return 0


def _say_where(image: Path, found: Found) -> None:
    sys.stderr.write(
        f"Using {found.menu.kind} config {found.config} on {image}: "
        f"{found.partition.describe()} ({found.fs.label})\n"
    )


def main(argv: list[str]) -> int:
    """Run pygrub with its command line; 0 when done. A bad command line raises UsageError
    (pygrub's words; the caller adds the usage line), a failure a XenliteError."""
    return run(parse_options(argv))
