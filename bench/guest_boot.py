"""Guest kit benchmark: build time (cold or warm cache) and boot-to-ready time.

Prints one JSON object: how long build_guest_kit took and whether the cache was warm, the
median seconds from QEMU start to "xenlite-guest: ready" over --boots boots (each powered off
through the ACPI button), the accelerator used and why, and the kernel version.

    .venv/bin/python bench/guest_boot.py [--boots 3] [--force-build]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from xenlite.base.errors import XenliteError
from xenlite.guestkit.boot import boot_to_ready
from xenlite.guestkit.build import build_guest_kit
from xenlite.qemu.accel import probe_accel


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3, help="boots to time (default 3)")
    parser.add_argument(
        "--force-build", action="store_true", help="rebuild the kit even when it is cached"
    )
    args = parser.parse_args(argv)
    report: dict[str, object] = {"benchmark": "guest_boot"}
    try:
        started = time.monotonic()
        kit = build_guest_kit(force=args.force_build)
        report["build_seconds"] = round(time.monotonic() - started, 3)
        report["build_cache"] = "warm" if kit.cached else "cold"
        report["kernel_version"] = kit.kernel_version
        report["kit_key"] = kit.key
        probe = probe_accel()
        report["accel"] = str(probe.accel)
        report["accel_reason"] = probe.reason
        boots = [boot_to_ready(kit, accel=probe.accel).seconds_to_ready for _ in range(args.boots)]
        report["boot_to_ready_seconds"] = [round(s, 3) for s in boots]
        report["boot_to_ready_median_seconds"] = round(statistics.median(boots), 3)
    except XenliteError as exc:
        report["error"] = str(exc)
        report["fix"] = exc.fix
        print(json.dumps(report))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
