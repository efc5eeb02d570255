"""``xenlite demo`` (``make demo``): the built-in demo domain, from config to a running guest.

The demo runs a whole private host: it builds (or reuses) the guest kit, shows the demo config
as ``xl create -n`` reads it, starts xenstored and xenlited under a temporary host root, creates
the demo domain with ``xl create``, waits for the guest's ready marker on its console, shows
``xl list`` and the first console lines, then shuts the domain down with ``xl shutdown -w`` and
stops the services. Every step is the real program a user would run.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from xenlite.base.errors import XenliteError
from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions


def demo_config_text() -> str:
    return (resources.files("xenlite.config") / "demo.cfg").read_text(encoding="utf-8")


def _run(env: dict[str, str], *args: str, show: bool = True, timeout: float = 120) -> str:
    """Run ``xl ...`` or ``xenlite ...`` (args[0]) from this installation, as a user would."""
    from xenlite.base.proc import run_sync

    if show:
        print(f"$ {' '.join(args)}")
    program = os.fspath(Path(sys.executable).with_name(args[0]))
    result = run_sync([program, *args[1:]], env=env, timeout=timeout)
    out = result.stdout.decode(errors="replace")
    if show and out:
        print(out, end="" if out.endswith("\n") else "\n")
    return out


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc|[\x00-\x08\x0b-\x1f\x7f]")


def _printable(line: str) -> str:
    """A console line without the terminal control sequences firmware and the kernel send."""
    return _ANSI.sub("", line)


def _ready_marker() -> str:
    # The guest kit's own marker (the demo builds the kit, so it may load that package).
    from xenlite.guestkit.boot import READY_MARKER

    return READY_MARKER


def _wait_for_marker(log: Path, timeout: float) -> float:
    marker = _ready_marker()
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if log.exists() and marker in log.read_text(errors="replace"):
            return time.monotonic() - start
        time.sleep(0.1)
    raise XenliteError(
        "demo guest",
        f"no '{marker}' on its console within {timeout:g} s",
        f"look at {log} and the xenlited log",
    )


def _dry_run(kit_overrides: Sequence[str]) -> None:
    from xenlite.cli.commands.create import host_facts
    from xenlite.config.domain.build import load_domain_config
    from xenlite.config.domain.libxl_json import dumps_domain_config

    cfg_path = resources.files("xenlite.config") / "demo.cfg"
    print(f"\n== 2. xl create -n demo.cfg {' '.join(kit_overrides)}")
    loaded = load_domain_config(str(cfg_path), list(kit_overrides), host=host_facts())
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(dumps_domain_config(loaded.config))


def _run_domain(cfg: Path, kit_overrides: Sequence[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="xldemo", dir="/tmp"))
    env = dict(os.environ, XENLITE_ROOT=os.fspath(root))
    env.pop("XENLITED_SOCKET", None)
    env.pop("XENSTORED_PATH", None)
    print(f"\n== 3. a private xenlite host under {root}")
    started = False
    try:
        _run(env, "xenlite", "start")
        started = True
        begin = time.monotonic()
        _run(env, "xl", "create", os.fspath(cfg), *kit_overrides)
        log = root / "var/log/xenlite/console/guest-demo.log"
        seconds = _wait_for_marker(log, 120)
        print(f"   guest printed '{_ready_marker()}' {seconds:.2f} s after xl create returned")
        print(f"   (create + boot: {time.monotonic() - begin:.2f} s)")
        _run(env, "xl", "list")
        console = log.read_text(errors="replace").splitlines()
        print(f"-- first lines of {log.name} --")
        for line in console[:8]:
            print(f"   {_printable(line)}")
        _run(env, "xl", "shutdown", "-w", "demo")
        _run(env, "xl", "list")
    finally:
        if started:
            try:
                _run(env, "xenlite", "stop")
            except XenliteError as exc:
                print(f"warning: stopping the demo host: {exc}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


def main_demo(opts: GlobalOptions, args: list[str]) -> int:
    pairs, rest = parse_options("demo", args, "", ["print-config", "no-boot"])
    if rest:
        raise UsageError("xenlite demo", f"unexpected '{rest[0]}'", "see 'xenlite help demo'")
    flags = {flag for flag, _ in pairs}
    if "--print-config" in flags:
        print(demo_config_text(), end="")
        return EXIT_SUCCESS

    from xenlite.guestkit.build import build_guest_kit

    print("== 1. guest kit (Debian cloud kernel + busybox initramfs, cached)")
    kit = build_guest_kit()
    print(f"   kernel {kit.kernel_version}: {kit.kernel}")
    print(f"   initrd: {kit.initrd} ({'from cache' if kit.cached else 'built now'})")
    overrides = [f'kernel="{kit.kernel}"', f'ramdisk="{kit.initrd}"']
    _dry_run(overrides)
    if "--no-boot" in flags:
        return EXIT_SUCCESS
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "demo.cfg"
        cfg.write_text(demo_config_text(), encoding="utf-8")
        _run_domain(cfg, overrides)
    print("\nDone: the demo host was stopped and removed. See README.md for the tour.")
    return EXIT_SUCCESS
