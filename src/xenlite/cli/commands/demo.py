"""``xenlite demo`` (``make demo``): the built-in demo domain, from config to a booted guest.

Until the domain engine lands this shows what exists, honestly: the demo config read as
``xl create -n`` reads it, then the same kernel, initrd, command line and memory booted
under QEMU by the guest kit to its ready marker, then powered off by the ACPI button.
"""

from __future__ import annotations

import sys
from importlib import resources

from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions


def demo_config_text() -> str:
    return (resources.files("xenlite.config") / "demo.cfg").read_text(encoding="utf-8")


def main_demo(opts: GlobalOptions, args: list[str]) -> int:
    from xenlite.cli.commands.create import host_facts
    from xenlite.config.domain import load_domain_config
    from xenlite.config.libxl_json import domain_config_to_json, dumps_domain_config

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

    cfg_path = resources.files("xenlite.config") / "demo.cfg"
    overrides = [f'kernel="{kit.kernel}"', f'ramdisk="{kit.initrd}"']
    print(f"\n== 2. xl create -n demo.cfg {' '.join(overrides)}")
    loaded = load_domain_config(str(cfg_path), overrides, host=host_facts())
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(dumps_domain_config(loaded.config))
    if "--no-boot" in flags:
        return EXIT_SUCCESS

    from xenlite.guestkit.boot import boot_to_ready
    from xenlite.qemu.accel import probe_accel

    b_info = domain_config_to_json(loaded.config)["b_info"]
    assert isinstance(b_info, dict)
    memory_mb = int(b_info.get("target_memkb", 262144)) // 1024
    cmdline = str(b_info.get("cmdline", ""))
    print(f"\n== 3. boot the demo guest under QEMU ({memory_mb} MiB, cmdline '{cmdline}')")
    probe = probe_accel()
    print(f"   accelerator: {probe.accel} ({probe.reason})")
    result = boot_to_ready(kit, memory_mb=memory_mb, cmdline_extra=cmdline, timeout=120)
    print(f"   'xenlite-guest: ready' after {result.seconds_to_ready:.2f} s ({result.accel})")
    print("   powered off through the ACPI power button; QEMU exited cleanly")
    print(
        "\nThe domain engine (xenlited, `xl create` for real, `xl list`, consoles) comes next;"
        "\nsee README.md for what works today."
    )
    return EXIT_SUCCESS
