"""Scheduler and balloon fidelity: do Xen's knobs take real effect on the host?

Prints one JSON object (issue 5 "Tests and benchmarks"), measured with the guest kit's
CPU-bound loop (``xenlite.cpuburn=1``) under TCG:

- ``weights``: two domains pinned to the same host CPU (cpus=) with credit weights 256 and
  512 (``xl sched-credit -w``): the ratio of the CPU time their QEMU processes get
  (target: within 10% of 2.0);
- ``cap``: one domain with ``cap = 25``: the share of one CPU it uses (target: within 10%
  of 25%);
- ``balloon``: ``xl mem-set`` from 256 MiB to 128 MiB: seconds until ``xl list`` shows the
  guest at 128 (target: at most 5 s);
- ``pool_weights``: the weights again inside a cpupool that runs credit while Pool-0 runs
  credit2 (Xen's default): ``xl cpupool-cpu-remove Pool-0 1``, ``xl cpupool-create
  name="credit-pool" sched="credit" cpus="1"``, two domains with ``pool = "credit-pool"`` and
  weights 256 and 512 (target: within 10% of 2.0);
- ``vcpu_set``: ``xl vcpu-set DOM 2`` on a domain with ``vcpus = 1``, ``maxvcpus = 2``:
  seconds from the command to the guest's line "xenlite-guest: cpu1 online" on its console
  (the guest kit onlines a plugged vCPU and says so), over ``--vcpu-runs`` domains; and
  ``xl vcpu-set DOM 1`` back, which returns once the guest let vCPU 1 go.

Runs on a private host (``xenlite start`` under a fresh root in /tmp); on the way out its
QEMU processes are killed, the daemons stopped and the root removed.

    .venv/bin/python bench/sched.py [--seconds 10] [--vcpu-runs 3]
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

from benchhost import XENLITE, XL, private_env, tear_down
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import GuestKit, build_guest_kit
from xenlite.qemu.process import cpu_time_ns, qemu_pids_under

READY_TIMEOUT = 120.0
BALLOON_TIMEOUT = 30.0
VCPU_TIMEOUT = 30.0


class BenchError(Exception):
    """A step failed; the message says which and why."""


class Host:
    def __init__(self, root: Path, kit: GuestKit) -> None:
        self.root = root
        self.kit = kit
        self.env = private_env(root)

    def run(self, *argv: str | os.PathLike[str]) -> str:
        result = subprocess.run([os.fspath(a) for a in argv], env=self.env, capture_output=True,
                                text=True, timeout=300, check=False)  # fmt: skip
        if result.returncode != 0:
            raise BenchError(f"{' '.join(map(str, argv[1:]))}: {result.stderr.strip()}")
        return result.stdout

    def create(self, name: str, *lines: str, memory: int = 96, burn: bool = True) -> None:
        path = self.root / f"{name}.cfg"
        extra = "console=ttyS0" + (" xenlite.cpuburn=1" if burn else "")
        body = [f'name = "{name}"', f'kernel = "{self.kit.kernel}"',
                f'ramdisk = "{self.kit.initrd}"', f"memory = {memory}", f'extra = "{extra}"',
                *lines]  # fmt: skip
        path.write_text("\n".join(body) + "\n")
        self.run(XL, "create", "-q", path)
        log = self.root / f"var/log/xenlite/console/guest-{name}.log"
        deadline = time.monotonic() + READY_TIMEOUT
        while not (log.exists() and READY_MARKER.encode() in log.read_bytes()):
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: no ready marker")
            time.sleep(0.05)

    def qemu_pid(self, name: str) -> int:
        domid = self.run(XL, "domid", name).strip()
        for pid in qemu_pids_under(self.root):
            if f"qemu-dm-{domid},".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise BenchError(f"no QEMU for {name}")

    def mem(self, name: str) -> int:
        return int(self.run(XL, "list", name).splitlines()[1].split()[2])


def cpu_shares(host: Host, names: list[str], seconds: float) -> dict[str, float]:
    """Seconds of CPU each domain's QEMU got over ``seconds`` of wall time."""
    pids = {name: host.qemu_pid(name) for name in names}
    start = {name: cpu_time_ns(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {name: (cpu_time_ns(pid) - start[name]) / 1e9 for name, pid in pids.items()}


def within(value: float, goal: float, tolerance: float) -> bool:
    return abs(value - goal) <= tolerance * goal


def measure(host: Host, seconds: float, runs: int, report: dict[str, object]) -> None:
    # The seeds' host: the credit scheduler on the Xen command line, and xl sched-credit.
    grub = host.root / "etc/default/grub"
    grub.parent.mkdir(parents=True)
    grub.write_text('GRUB_CMDLINE_XEN="sched=credit"\n')
    host.run(XENLITE, "start")
    # Weights: both domains on host CPU 1 only, so they compete for it.
    report["weights"] = weight_ratio(host, seconds, 'cpus = "1"')
    # Cap: 25% of one CPU.
    host.create("capped", "cap = 25")
    share = cpu_shares(host, ["capped"], seconds)["capped"] / seconds * 100
    report["cap"] = {"percent_of_one_cpu": round(share, 1), "target": "25 +/- 10%",
                     "met": within(share, 25.0, 0.10)}  # fmt: skip
    host.run(XL, "destroy", "capped")
    # Balloon: 256 MiB -> 128 MiB.
    host.create("ball", "maxmem = 256", memory=256, burn=False)
    started = time.monotonic()
    host.run(XL, "mem-set", "ball", "128m")
    while host.mem("ball") != 128:
        if time.monotonic() - started > BALLOON_TIMEOUT:
            raise BenchError(f"balloon still at {host.mem('ball')} MiB")
        time.sleep(0.05)
    took = time.monotonic() - started
    report["balloon"] = {"seconds_256_to_128": round(took, 2), "target": "<= 5 s",
                         "met": took <= 5.0}  # fmt: skip
    host.run(XL, "destroy", "ball")
    report["vcpu_set"] = vcpu_set_latency(host, runs)
    # A credit pool on CPU 1 while Pool-0 goes back to Xen's default scheduler, credit2.
    grub.write_text("")
    host.run(XENLITE, "stop")
    host.run(XENLITE, "start")
    host.run(XL, "cpupool-cpu-remove", "Pool-0", "1")
    host.run(XL, "cpupool-create", 'name="credit-pool"', 'sched="credit"', 'cpus="1"')
    in_pool = weight_ratio(host, seconds, 'pool = "credit-pool"')
    listing = host.run(XL, "cpupool-list").splitlines()
    in_pool["pools"] = [" ".join(line.split()) for line in listing]
    report["pool_weights"] = in_pool


def weight_ratio(host: Host, seconds: float, placement: str) -> dict[str, object]:
    """CPU time of a weight-512 domain over a weight-256 one, both placed by ``placement``
    on one host CPU, set with ``xl sched-credit -d DOM -w``."""
    host.create("w256", "vcpus = 1", placement)
    host.create("w512", "vcpus = 1", placement)
    host.run(XL, "sched-credit", "-d", "w512", "-w", "512")
    got = cpu_shares(host, ["w256", "w512"], seconds)
    ratio = got["w512"] / got["w256"] if got["w256"] else float("inf")
    host.run(XL, "destroy", "w256")
    host.run(XL, "destroy", "w512")
    return {"placement": placement, "cpu_seconds": {k: round(v, 2) for k, v in got.items()},
            "ratio": round(ratio, 3), "target": "2.0 +/- 10%",
            "met": within(ratio, 2.0, 0.10)}  # fmt: skip


def vcpu_set_latency(host: Host, runs: int) -> dict[str, object]:
    """Seconds from ``xl vcpu-set DOM 2`` to the guest's "cpu1 online" line, and of
    ``xl vcpu-set DOM 1`` after it; one fresh domain per run (under TCG a QEMU that had a
    vCPU unplugged takes no new one)."""
    seconds: list[float] = []
    removal: list[float] = []
    for n in range(runs):
        name = f"hot{n}"
        host.create(name, "vcpus = 1", "maxvcpus = 2", burn=False)
        log = host.root / f"var/log/xenlite/console/guest-{name}.log"
        started = time.monotonic()
        host.run(XL, "vcpu-set", name, "2")
        while b"xenlite-guest: cpu1 online" not in log.read_bytes():
            if time.monotonic() - started > VCPU_TIMEOUT:
                raise BenchError(f"{name}: vCPU 1 never came online")
            time.sleep(0.01)
        seconds.append(time.monotonic() - started)
        # And back: xl vcpu-set returns once the guest gave vCPU 1 up and ACPI ejected it.
        started = time.monotonic()
        host.run(XL, "vcpu-set", name, "1")
        removal.append(time.monotonic() - started)
        host.run(XL, "destroy", name)
    return {"runs": runs, "seconds": [round(s, 3) for s in seconds],
            "median_seconds": round(statistics.median(seconds), 3),
            "remove_seconds": [round(s, 3) for s in removal],
            "remove_median_seconds": round(statistics.median(removal), 3)}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window (10)")
    parser.add_argument("--vcpu-runs", type=int, default=3, help="vcpu-set domains (3)")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"benchmark": "sched", "nr_cpus": os.cpu_count()}
    status = 0
    root = Path(tempfile.mkdtemp(prefix="xls", dir="/tmp"))
    host = Host(root, build_guest_kit())
    try:
        measure(host, args.seconds, args.vcpu_runs, report)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        report["error"] = str(exc)
        status = 1
    finally:
        tear_down(root, host.env)
    print(json.dumps(report))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
