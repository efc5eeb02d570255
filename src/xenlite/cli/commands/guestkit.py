"""``xenlite guest-kit``: build the test/demo guest, or boot it once to show it works."""

from __future__ import annotations

from pathlib import Path

from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions

_FIX = "see 'xenlite help guest-kit'"


def main_guest_kit(opts: GlobalOptions, args: list[str]) -> int:
    if not args or args[0] not in ("build", "boot"):
        raise UsageError("xenlite guest-kit", "expects 'build' or 'boot'", _FIX)
    from xenlite.guestkit.build import build_guest_kit

    if args[0] == "build":
        pairs, rest = parse_options("guest-kit build", args[1:], "", ["out=", "force"])
        if rest:
            raise UsageError("xenlite guest-kit build", f"unexpected '{rest[0]}'", _FIX)
        values = dict(pairs)
        out = Path(values["--out"]) if "--out" in values else None
        kit = build_guest_kit(out, force="--force" in values)
        print(f"kernel:  {kit.kernel}")
        print(f"initrd:  {kit.initrd}")
        print(f"version: {kit.kernel_version}")
        print(f"cache:   {'reused' if kit.cached else 'built'} ({kit.key[:16]})")
        return EXIT_SUCCESS
    from xenlite.guestkit.boot import boot_to_ready

    pairs, rest = parse_options("guest-kit boot", args[1:], "", ["timeout=", "append="])
    if rest:
        raise UsageError("xenlite guest-kit boot", f"unexpected '{rest[0]}'", _FIX)
    values = dict(pairs)
    try:
        timeout = float(values.get("--timeout", "60"))
    except ValueError as exc:
        raise UsageError("xenlite guest-kit boot", "--timeout needs seconds", _FIX) from exc
    kit = build_guest_kit()
    result = boot_to_ready(kit, timeout=timeout, cmdline_extra=values.get("--append", ""))
    print(f"booted to 'xenlite-guest: ready' in {result.seconds_to_ready:.2f} s ({result.accel})")
    return EXIT_SUCCESS
