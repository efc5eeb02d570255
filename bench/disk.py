"""Disk benchmark: what xenlite's disk path costs next to QEMU alone, and hot-plug latency.

Prints one JSON object (issue 16 "Tests and benchmark"):

- ``sequential_read``: MB/s of ``dd`` reading a raw file disk end to end inside a freshly
  booted guest (cold guest cache), under ``xl create`` with ``disk=['FILE,raw,xvda,r']``
  and on a bare ``qemu-system-x86_64`` of the same kernel, initramfs, memory, machine,
  accelerator and image (``-drive if=virtio``); medians over ``--repeats`` pairs, taken in
  turns so both read the image from the host's page cache alike; and their ratio (target
  at least 0.95);
- ``block_attach``: seconds from starting ``xl block-attach`` to the disk's device in the
  guest's /sys/block, median of ``--attach-runs`` attach/detach rounds.

Everything runs on a private host under a fresh root in /tmp, removed on the way out with
every QEMU process of this run.

    .venv/bin/python bench/disk.py [--repeats 5] [--size-mib 256] [--attach-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchhost import (
    XENLITE,
    XL,
    BareGuest,
    BenchError,
    GuestHost,
    close_console,
    tear_down,
)
from xenlite.base.errors import XenliteError
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import GuestKit, build_guest_kit
from xenlite.qemu.accel import Accel, probe_accel
from xenlite.qemu.process import qemu_pids_under

TARGET_RATIO = 0.95


def make_image(path: Path, size_mib: int) -> None:
    """A raw image of real (non-zero, non-sparse) data, so reads are not of holes."""
    block = (bytes(range(256)) * 4096)[: 1 << 20]
    with open(path, "wb") as out:
        for _ in range(size_mib):
            out.write(block)


def bare_read(kit: GuestKit, accel: Accel, image: Path, scratch: Path, size_mib: int) -> float:
    """Seconds of the guest's dd on QEMU alone."""
    drive = ["-drive", f"file={image},format=raw,if=virtio,readonly=on"]
    guest = BareGuest(kit, accel, scratch / "bare-serial.sock", drive)
    try:
        guest.console.read_until(READY_MARKER.encode())
        return guest.console.run(f"dd if=/dev/vda of=/dev/null bs=1M count={size_mib}")
    finally:
        guest.close()


def engine_read(host: GuestHost, image: Path, size_mib: int, name: str) -> float:
    host.create(name, f'disk = [ "{image},raw,xvda,r" ]')
    proc, console = host.console(name)
    try:
        return console.run(f"dd if=/dev/vda of=/dev/null bs=1M count={size_mib}")
    finally:
        close_console(proc)
        host.run(XL, "destroy", name)


def attach_latency(host: GuestHost, image: Path, extra: Path, runs: int) -> list[float]:
    host.create("hot", f'disk = [ "{image},raw,xvda,r" ]')
    proc, console = host.console("hot")
    times = []
    try:
        for _ in range(runs):
            marker = console.start("while [ ! -e /sys/block/vdb ]; do sleep 0.01; done")
            time.sleep(0.2)  # the loop is running in the guest
            started = time.monotonic()
            host.run(XL, "block-attach", "hot", f"{extra},raw,xvdb,r")
            console.read_until(marker)
            times.append(time.monotonic() - started)
            host.run(XL, "block-detach", "hot", "xvdb")
            console.run("while [ -e /sys/block/vdb ]; do sleep 0.01; done")
    finally:
        close_console(proc)
        host.run(XL, "destroy", "hot")
    return times


def measure(host: GuestHost, args: argparse.Namespace, report: dict[str, object]) -> None:
    accel = Accel(host.env["XENLITE_ACCEL"])
    image = host.root / "read.img"
    make_image(image, args.size_mib)
    host.run(XENLITE, "start")
    bare, engine = [], []
    for i in range(args.repeats):
        bare.append(bare_read(host.kit, accel, image, host.root, args.size_mib))
        engine.append(engine_read(host, image, args.size_mib, f"read{i}"))
    megabytes = args.size_mib * 1.048576
    bare_mbs = megabytes / statistics.median(bare)
    engine_mbs = megabytes / statistics.median(engine)
    ratio = engine_mbs / bare_mbs
    report["sequential_read"] = {
        "size_mib": args.size_mib,
        "xenlite_seconds": [round(s, 3) for s in engine],
        "bare_qemu_seconds": [round(s, 3) for s in bare],
        "xenlite_mb_per_s": round(engine_mbs, 1),
        "bare_qemu_mb_per_s": round(bare_mbs, 1),
        "ratio": round(ratio, 3),
        "target": f">= {TARGET_RATIO}",
        "met": ratio >= TARGET_RATIO,
    }
    extra = host.root / "extra.img"
    make_image(extra, 8)
    times = attach_latency(host, image, extra, args.attach_runs)
    report["block_attach"] = {
        "runs": len(times),
        "seconds": [round(t, 3) for t in times],
        "median_seconds": round(statistics.median(times), 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="xenlite/bare pairs (5)")
    parser.add_argument("--size-mib", type=int, default=256, help="MiB read per run (256)")
    parser.add_argument("--attach-runs", type=int, default=5, help="block-attach rounds (5)")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"benchmark": "disk"}
    status = 0
    host: GuestHost | None = None
    try:
        kit = build_guest_kit()
        probe = probe_accel()
        report["accel"] = str(probe.accel)
        report["nr_cpus"] = os.cpu_count()
        root = Path(tempfile.mkdtemp(prefix="xlk", dir="/tmp"))
        host = GuestHost(root, kit, probe.accel)
        measure(host, args, report)
    except (XenliteError, BenchError, OSError, subprocess.SubprocessError) as exc:
        report["error"] = str(exc)
        status = 1
    finally:
        if host is not None:
            tear_down(host.root, host.env)
            report["left_behind_qemu"] = len(qemu_pids_under(host.root))
    print(json.dumps(report))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
