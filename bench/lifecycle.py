"""Domain lifecycle benchmark: what the toolstack costs on top of QEMU.

Prints one JSON object (issue 4 "Demo, tests, benchmarks"):

- ``create_to_ready``: seconds from starting ``xl create`` to the guest kit's
  ``xenlite-guest: ready`` line in the domain's console log, next to a bare
  ``qemu-system-x86_64`` boot of the same kernel, initramfs, command line, memory, vCPUs,
  machine and accelerator (its serial console to a file); medians over ``--repeats`` pairs,
  taken in turns, and their ratio (target at most 1.10);
- ``xl_list``: the median wall time of the ``xl list`` command with 1 and with ``--domains``
  running domains (target at most 100 ms with 20);
- ``xenlited_rss``: xenlited's VmRSS with 1 and with ``--domains`` running domains and the
  growth per domain (target at most 1 MiB);
- ``create_at_once``: ``--at-once`` ``xl create`` commands started together: how many
  domains reached the ready marker, how many creates failed, and the total seconds.

Everything runs on a private host (``xenlite start`` under a fresh root in /tmp); on the way
out, whatever happened, this host's QEMU processes are killed, the daemons stopped and the
root removed.

    .venv/bin/python bench/lifecycle.py [--repeats 3] [--domains 20] [--at-once 10]
        [--memory 96] [--list-runs 20]
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
from collections.abc import Sequence
from pathlib import Path

from benchhost import XENLITE, XL, private_env, tear_down
from xenlite.base.errors import XenliteError
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import GuestKit, build_guest_kit
from xenlite.qemu.accel import Accel, probe_accel
from xenlite.qemu.process import qemu_pids_under

QEMU = "qemu-system-x86_64"
CMDLINE = "console=ttyS0"
READY_TIMEOUT = 180.0
POLL = 0.01
TARGETS = {
    "create_to_ready_ratio": ("<=", 1.10),
    "xl_list_median_ms_many": ("<=", 100.0),
    "rss_growth_kib_per_domain": ("<=", 1024.0),
}


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


class Host:
    """A private xenlite host under ``root``."""

    def __init__(self, root: Path, kit: GuestKit, accel: Accel, memory: int) -> None:
        self.root = root
        self.kit = kit
        self.memory = memory
        self.env = private_env(root, str(accel))

    def run(self, *argv: str | os.PathLike[str], timeout: float = 300.0) -> str:
        result = subprocess.run(
            [os.fspath(a) for a in argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"{Path(argv[0]).name} {argv[1]} failed: {result.stderr.strip()}")
        return result.stdout

    def config(self, name: str) -> Path:
        path = self.root / f"{name}.cfg"
        path.write_text(
            f'name = "{name}"\n'
            f'kernel = "{self.kit.kernel}"\n'
            f'ramdisk = "{self.kit.initrd}"\n'
            f"memory = {self.memory}\n"
            "vcpus = 1\n"
            f'extra = "{CMDLINE}"\n'
        )
        return path

    def console_log(self, name: str) -> Path:
        return self.root / f"var/log/xenlite/console/guest-{name}.log"

    def create(self, name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [os.fspath(XL), "create", "-q", os.fspath(self.config(name))],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def xenlited_pid(self) -> int:
        return int((self.root / "run/xenlite/xenlited.pid").read_text())

    def qemu_pids(self) -> list[int]:
        return qemu_pids_under(self.root)


def has_marker(path: Path) -> bool:
    try:
        return READY_MARKER.encode() in path.read_bytes()
    except FileNotFoundError:
        return False


def wait_ready(paths: Sequence[Path], deadline: float) -> None:
    waiting = list(paths)
    while waiting:
        waiting = [p for p in waiting if not has_marker(p)]
        if time.monotonic() > deadline:
            raise BenchError(f"no ready marker after {READY_TIMEOUT:g} s in {waiting[0]}")
        time.sleep(POLL)


def bare_argv(kit: GuestKit, accel: Accel, memory: int, console: Path) -> list[str]:
    """The same guest on QEMU alone: same machine, accelerator, CPU model, memory, vCPUs."""
    return [
        QEMU,
        "-no-user-config", "-nodefaults", "-nographic", "-display", "none",
        "-machine", "q35",
        "-accel", "kvm" if accel is Accel.KVM else "tcg,thread=single",
        "-cpu", "host" if accel is Accel.KVM else "max",
        "-m", f"{memory}M",
        "-smp", "1",
        "-kernel", os.fspath(kit.kernel),
        "-initrd", os.fspath(kit.initrd),
        "-append", CMDLINE,
        "-chardev", f"file,id=con,path={console}",
        "-serial", "chardev:con",
    ]  # fmt: skip


def bare_boot(kit: GuestKit, accel: Accel, memory: int, scratch: Path) -> float:
    console = scratch / "bare-console.log"
    console.unlink(missing_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(
        bare_argv(kit, accel, memory, console),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = started + READY_TIMEOUT
        while not has_marker(console):
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise BenchError(f"bare QEMU exited with {process.returncode}: {stderr}")
            if time.monotonic() > deadline:
                raise BenchError("bare QEMU: no ready marker")
            time.sleep(POLL)
        return time.monotonic() - started
    finally:
        process.kill()
        process.wait(30)
        if process.stderr:
            process.stderr.close()


def engine_boot(host: Host, name: str) -> float:
    started = time.monotonic()
    creator = host.create(name)
    wait_ready([host.console_log(name)], started + READY_TIMEOUT)
    elapsed = time.monotonic() - started
    _, err = creator.communicate(timeout=60)
    if creator.returncode != 0:
        raise BenchError(f"xl create {name} failed: {err.strip()}")
    host.run(XL, "destroy", name)
    return elapsed


def xl_list_ms(host: Host, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        host.run(XL, "list")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def create_at_once(host: Host, names: Sequence[str]) -> dict[str, object]:
    started = time.monotonic()
    creators = {name: host.create(name) for name in names}
    failed = {}
    for name, creator in creators.items():
        _, err = creator.communicate(timeout=READY_TIMEOUT)
        if creator.returncode != 0:
            failed[name] = err.strip()
    live = [n for n in names if n not in failed]
    wait_ready([host.console_log(n) for n in live], started + READY_TIMEOUT)
    total = time.monotonic() - started
    return {
        "domains": len(names),
        "ready": sum(has_marker(host.console_log(n)) for n in names),
        "failed": len(failed),
        "errors": failed,
        "total_seconds": round(total, 3),
    }


def check(report: dict[str, object], key: str, value: float) -> None:
    op, limit = TARGETS[key]
    targets = report.setdefault("targets", {})
    assert isinstance(targets, dict)
    met = value <= limit if op == "<=" else value >= limit
    targets[key] = {"value": round(value, 3), "target": f"{op} {limit:g}", "met": met}


def measure(host: Host, args: argparse.Namespace, report: dict[str, object]) -> None:
    accel = Accel(host.env["XENLITE_ACCEL"])
    started = time.monotonic()
    host.run(XENLITE, "start")
    report["host_start_seconds"] = round(time.monotonic() - started, 3)

    bare: list[float] = []
    engine: list[float] = []
    for i in range(args.repeats):
        # In turns, so a slow patch of the machine hurts both sides alike.
        bare.append(bare_boot(host.kit, accel, args.memory, host.root))
        engine.append(engine_boot(host, f"lat{i}"))
    bare_median, engine_median = statistics.median(bare), statistics.median(engine)
    report["create_to_ready"] = {
        "xl_create_seconds": [round(s, 3) for s in engine],
        "bare_qemu_seconds": [round(s, 3) for s in bare],
        "xl_create_median_seconds": round(engine_median, 3),
        "bare_qemu_median_seconds": round(bare_median, 3),
        "ratio": round(engine_median / bare_median, 3),
    }
    check(report, "create_to_ready_ratio", engine_median / bare_median)

    first = host.create("list0")
    wait_ready([host.console_log("list0")], time.monotonic() + READY_TIMEOUT)
    first.communicate(timeout=60)
    time.sleep(1.0)
    pid = host.xenlited_pid()
    rss_one = rss_kib(pid)
    list_one = xl_list_ms(host, args.list_runs)

    names = [f"many{i}" for i in range(args.at_once)]
    at_once = create_at_once(host, names)
    report["create_at_once"] = at_once
    rest = [f"more{i}" for i in range(args.domains - 1 - args.at_once)]
    for name in rest:
        creator = host.create(name)
        _, err = creator.communicate(timeout=READY_TIMEOUT)
        if creator.returncode != 0:
            raise BenchError(f"xl create {name} failed: {err.strip()}")
    wait_ready([host.console_log(n) for n in rest], time.monotonic() + READY_TIMEOUT)
    running = host.run(XL, "list").splitlines()[2:]
    time.sleep(1.0)
    rss_many = rss_kib(pid)
    list_many = xl_list_ms(host, args.list_runs)
    report["xl_list"] = {
        "runs": args.list_runs,
        "median_ms_1_domain": round(list_one, 2),
        f"median_ms_{len(running)}_domains": round(list_many, 2),
        "domains": len(running),
    }
    check(report, "xl_list_median_ms_many", list_many)
    growth = (rss_many - rss_one) / max(1, len(running) - 1)
    report["xenlited_rss"] = {
        "kib_1_domain": rss_one,
        f"kib_{len(running)}_domains": rss_many,
        "growth_kib_per_domain": round(growth, 1),
    }
    check(report, "rss_growth_kib_per_domain", growth)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="create/bare pairs (3)")
    parser.add_argument("--domains", type=int, default=20, help="domains for xl list (20)")
    parser.add_argument("--at-once", type=int, default=10, help="creates started together")
    parser.add_argument("--memory", type=int, default=96, help="MiB per guest (96)")
    parser.add_argument("--list-runs", type=int, default=20, help="xl list runs per median")
    args = parser.parse_args(argv)
    if args.domains < args.at_once + 1:
        parser.error("--domains must exceed --at-once (one domain runs before them)")
    report: dict[str, object] = {"benchmark": "lifecycle"}
    status = 0
    host: Host | None = None
    try:
        kit = build_guest_kit()
        probe = probe_accel()
        report["accel"] = str(probe.accel)
        report["accel_reason"] = probe.reason
        report["nr_cpus"] = os.cpu_count()
        report["memory_mib"] = args.memory
        root = Path(tempfile.mkdtemp(prefix="xlb", dir="/tmp"))
        host = Host(root, kit, probe.accel, args.memory)
        measure(host, args, report)
    except (XenliteError, BenchError, OSError, subprocess.SubprocessError) as exc:
        report["error"] = str(exc)
        status = 1
    finally:
        if host is not None:
            tear_down(host.root, host.env)
            report["left_behind_qemu"] = len(host.qemu_pids())
    print(json.dumps(report))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
