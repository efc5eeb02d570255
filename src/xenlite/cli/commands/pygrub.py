"""``xenlite pygrub``: the bootloader as its own program, with pygrub's command line.

Like Xen's pygrub it runs on an image without the toolstack, so it imports the boot package
itself rather than asking xenlited.
"""

from __future__ import annotations

from xenlite.cli.main import GlobalOptions, VerbExit


def main_pygrub(opts: GlobalOptions, args: list[str]) -> int:
    from xenlite.boot.pygrub import USAGE, UsageError, main

    try:
        return main(args)
    except UsageError as error:
        said = f"{error}\n" if str(error) else ""
        raise VerbExit(said + USAGE.format(prog=f"{opts.program} pygrub") + "\n") from error
