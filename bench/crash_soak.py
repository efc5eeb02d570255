"""Kill -9 soak (issue 14): random lifecycle operations on real guests, with xenlited and now
and then xenstored killed at random points, and after every restart the whole host checked
against a model of what must exist.

A seeded, reproducible run of ``--ops`` operations on a private host (``xenlite start``
under a fresh root in /tmp, TCG guests): create, create -p, pause, unpause, mem-set,
vcpu-pin, sched-credit2 -w, rename, reboot, shutdown -w, destroy, and a guest that panics
(on_crash=destroy). Each operation runs as the real ``xl``; with ``--kill-rate`` chance
xenlited is SIGKILLed during it (by timing, or at a named crash point of create/destroy,
base/crashpoint.py), with ``--xenstored-rate`` chance xenstored is; then ``xenlite start``
brings the dead one back and the host is checked from outside the daemon
(tests/hoststate.py) against the model:

- every domain ``xl`` reported created is listed with its name, id and state, unless the
  operation cut short was one that may remove it (destroy, shutdown, a rename's old name);
- nothing is left that no listed domain owns: QEMU processes, records, run directories,
  cgroups, ``/local/domain``, ``/vm`` and ``/libxl`` nodes (each kind counted);
- ``xl info``'s free memory adds up: total = free + Domain-0 + every domain's target;
- a weight set with ``xl sched-credit2 -w`` is still the domain's weight.

Output: one JSON object (ops run, kills, lost domains, orphans of each kind, mismatches,
and the seed and operation of every failure). Exit status 1 when anything was lost or left.

    .venv/bin/python bench/crash_soak.py [--ops 200] [--seed 1] [--max-domains 4]
        [--kill-rate 0.25] [--xenstored-rate 0.05] [--memory 96]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# tests/hoststate.py reads a host from outside its daemon; the tests judge recovery with it too.
sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1] / "tests"))
from benchhost import XENLITE, XL, private_env, tear_down
from hoststate import HostState, host_state
from xenlite.base.crashpoint import CREATE_POINTS, DESTROY_POINTS
from xenlite.base.crashpoint import ENV as CRASH_ENV
from xenlite.base.proc import pid_alive
from xenlite.guestkit.build import GuestKit, build_guest_kit

DOM0_UUID = "00000000-0000-0000-0000-000000000000"
OP_TIMEOUT = 120.0
SETTLE_TIMEOUT = 30.0


class BenchError(Exception):
    """The soak could not go on (a daemon would not start); the message says why."""


@dataclass
class Expected:
    """What the model knows of one domain."""

    name: str
    domid: int | None  # None: it may have a new one (a reboot restarts it under a new id)
    paused: bool | None  # None: either (an interrupted pause/unpause)
    weight: int | None = None
    may_vanish: bool = False  # an interrupted destroy/shutdown, or a guest set to crash
    other_names: set[str] = field(default_factory=set)  # an interrupted rename


Apply = Callable[[bool, bool], None]  # (xl succeeded, the operation was cut short)
Follow = Callable[[Expected], None]
Op = tuple[str, list[str], Apply]


@dataclass
class Report:
    seed: int
    ops: int = 0
    kills_xenlited: int = 0
    kills_xenstored: int = 0
    crash_points: int = 0
    restarts: int = 0
    checks: int = 0
    lost: int = 0
    unreported: int = 0  # listed though xl said the create failed (killed after it finished)
    mismatches: int = 0
    orphans: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)


class Host:
    """A private xenlite host under ``root``."""

    def __init__(self, root: Path, kit: GuestKit, memory: int) -> None:
        self.root = root
        self.kit = kit
        self.memory = memory
        self.env = private_env(root)
        self.env.pop(CRASH_ENV, None)

    def start(self, crash_at: str | None = None) -> None:
        env = dict(self.env)
        if crash_at is not None:
            env[CRASH_ENV] = crash_at
        result = subprocess.run(
            [os.fspath(XENLITE), "start"], env=env, capture_output=True, text=True, timeout=180
        )
        if result.returncode != 0:
            raise BenchError(f"xenlite start failed: {result.stderr.strip()}")

    def pid(self, daemon: str) -> int | None:
        try:
            return int((self.root / f"run/xenlite/{daemon}.pid").read_text())
        except (OSError, ValueError):
            return None

    def kill(self, daemon: str) -> bool:
        pid = self.pid(daemon)
        if pid is None or not pid_alive(pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return True

    def xl(self, *args: str, timeout: float = OP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [os.fspath(XL), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [os.fspath(XL), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def config(self, name: str, *, panic: bool = False) -> Path:
        path = self.root / f"{name}.cfg"
        extra = "console=ttyS0" + (" xenlite.panic=1" if panic else "")
        path.write_text(
            f'name = "{name}"\n'
            f'kernel = "{self.kit.kernel}"\n'
            f'ramdisk = "{self.kit.initrd}"\n'
            f"memory = {self.memory}\n"
            f'extra = "{extra}"\n' + ('on_crash = "destroy"\n' if panic else "")
        )
        return path


# ---------------------------------------------------------------------- reading the host


@dataclass(frozen=True)
class Listed:
    domid: int
    name: str
    mem_mib: int
    paused: bool


def xl_list(host: Host) -> dict[str, Listed]:
    result = host.xl("list")
    if result.returncode != 0:
        raise BenchError(f"xl list failed: {result.stderr.strip()}")
    rows: dict[str, Listed] = {}
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        # Name ID Mem VCPUs State Time(s); a name has no spaces here
        rows[fields[0]] = Listed(int(fields[1]), fields[0], int(fields[2]), "p" in fields[4])
    return rows


def xl_long(host: Host) -> dict[int, dict[str, object]]:
    result = host.xl("list", "-l")
    if result.returncode != 0:
        raise BenchError(f"xl list -l failed: {result.stderr.strip()}")
    return {int(e["domid"]): e["config"] for e in json.loads(result.stdout or "[]")}


def xl_info(host: Host) -> dict[str, str]:
    result = host.xl("info")
    if result.returncode != 0:
        raise BenchError(f"xl info failed: {result.stderr.strip()}")
    info = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def orphans_of(state: HostState, domids: set[int], uuids: set[str]) -> dict[str, int]:
    """What the host holds beyond the listed domains, by kind."""
    ids = {str(d) for d in domids}
    return {
        "qemu": max(0, len(state.qemu_pids) - len(domids)),
        "records": len([r for r in state.records if not (r.endswith(".json") and r[:-5] in ids)]),
        "run_dirs": len([d for d in state.run_dirs if d not in ids]),
        "cgroups": len([d for d in state.cgroups if d not in domids]),
        "xenstore_domains": len([d for d in state.xenstore_domains if d not in ids | {"0"}]),
        "libxl": len([d for d in state.libxl_domains if d not in ids | {"0"}]),
        "vm": len([u for u in state.vm_uuids if u not in uuids | {DOM0_UUID}]),
        "restart_notes": len(state.restart_notes),
    }


# ---------------------------------------------------------------------- the soak


class Soak:
    def __init__(self, host: Host, args: argparse.Namespace) -> None:
        self.host = host
        self.args = args
        self.rng = random.Random(args.seed)
        self.report = Report(seed=args.seed)
        self.model: dict[str, Expected] = {}
        self.serial = 0
        self.op_text = ""
        self.last_error = ""

    def fresh_name(self) -> str:
        self.serial += 1
        return f"s{self.serial}"

    def pick(self, *, running: bool | None = None) -> Expected | None:
        """A domain of the model that is certainly there (and in the wanted state)."""
        choices = [
            e
            for e in self.model.values()
            if not e.may_vanish
            and not e.other_names
            and (running is None or e.paused is (not running))
        ]
        return self.rng.choice(sorted(choices, key=_by_name)) if choices else None

    def run(self) -> Report:
        for index in range(self.args.ops):
            self.report.ops = index + 1
            self.step(index)
        self.finish()
        return self.report

    # -- one operation, perhaps with a kill

    def step(self, index: int) -> None:
        op, args, apply = self.choose()
        kill = self.rng.random() < self.args.kill_rate
        kill_store = self.rng.random() < self.args.xenstored_rate
        point = None
        if kill and op in ("create", "destroy") and self.rng.random() < 0.5:
            point = self.rng.choice(CREATE_POINTS if op == "create" else DESTROY_POINTS)
        self.op_text = f"op {index}: xl {' '.join(args)}" + (
            f" (crash at {point})" if point else ""
        )
        if point is not None:
            self.restart_xenlited(point)
            self.report.crash_points += 1
        delay = self.rng.uniform(0.0, 1.5)
        process = self.host.popen(*args)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=delay)
        if kill and point is None and self.host.kill("xenlited"):
            self.report.kills_xenlited += 1
        if kill_store and self.host.kill("xenstored"):
            self.report.kills_xenstored += 1
        try:
            _, err = process.communicate(timeout=OP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            self.report.fail(f"{self.op_text}: no answer in {OP_TIMEOUT:g} s; {self.context(args)}")
        if point is not None:
            if pid_alive(self.host.pid("xenlited") or 0):
                # The operation never reached its crash point (it failed before, or took
                # another path): the armed daemon must not die at a later operation.
                self.restart_xenlited(None)
            else:
                self.report.kills_xenlited += 1
        ok = process.returncode == 0
        self.last_error = err.strip()[-300:]
        if not ok and "Traceback" in err:
            self.report.fail(f"{self.op_text}: traceback: {err.strip()[-400:]}")
        cut_short = kill or kill_store or point is not None
        apply(ok, cut_short)
        if cut_short:
            self.host.start()
            self.report.restarts += 1
        self.check()

    def context(self, args: list[str]) -> str:
        """What the host says of the operation's domain, for a failure's report."""
        name = Path(args[-1]).stem
        listed = self.host.xl("list", name).stdout.strip().splitlines()[-1:]
        console = self.host.root / f"var/log/xenlite/console/guest-{name}.log"
        try:
            tail = console.read_bytes()[-300:].decode(errors="replace")
        except OSError:
            tail = ""
        log = self.host.xl("dmesg").stdout.strip().splitlines()[-3:]
        return f"list: {listed}; dmesg: {log}; console: {tail!r}"

    def restart_xenlited(self, point: str | None) -> None:
        pid = self.host.pid("xenlited")
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while pid_alive(pid):
                if time.monotonic() > deadline:
                    raise BenchError("xenlited did not stop on SIGTERM")
                time.sleep(0.02)
        self.host.start(crash_at=point)

    def choose(self) -> tuple[str, list[str], Apply]:
        ops: list[tuple[str, float]] = [("create", 3.0), ("crash", 0.5)]
        if len(self.model) >= self.args.max_domains:
            ops = [("destroy", 3.0)]
        if self.pick() is not None:
            ops += [("destroy", 1.5), ("mem-set", 1.0), ("vcpu-pin", 1.0), ("sched", 1.0)]
            ops += [("rename", 1.0), ("reboot", 0.7)]
        if self.pick(running=True) is not None:
            ops += [("pause", 1.0), ("shutdown", 0.7)]
        if self.pick(running=False) is not None:
            ops += [("unpause", 1.5)]
        names, weights = zip(*ops, strict=True)
        op = self.rng.choices(names, weights)[0]
        return getattr(self, f"op_{op.replace('-', '_')}")()

    # -- the operations: (name, xl argv, how the model follows the outcome)

    def op_create(self) -> tuple[str, list[str], Apply]:
        name, paused = self.fresh_name(), self.rng.random() < 0.4
        args = ["create", *(["-p"] if paused else []), os.fspath(self.host.config(name))]

        def apply(ok: bool, cut: bool) -> None:
            if ok:
                self.model[name] = Expected(name, self.domid_of(name), paused)
            elif not cut:
                self.report.fail(f"{self.op_text}: failed without a kill: {self.last_error}")
            else:
                # Not reported created: it must be gone, unless the kill came after the
                # create had finished and before xl heard so (then it is a whole domain).
                self.model[name] = Expected(name, None, paused, may_vanish=True)
                self.model[name].other_names.add("?unreported")

        return "create", args, apply

    def op_crash(self) -> tuple[str, list[str], Apply]:
        name = self.fresh_name()
        args = ["create", os.fspath(self.host.config(name, panic=True))]

        def apply(ok: bool, cut: bool) -> None:
            self.model[name] = Expected(name, None, None, may_vanish=True)

        return "create", args, apply

    def _on(self, op: str, args: list[str], target: Expected, follow: Follow) -> Op:
        def apply(ok: bool, cut: bool) -> None:
            if ok:
                follow(target)
            elif cut:
                _unsure(target, op)
            else:
                self.report.fail(f"{self.op_text}: failed without a kill: {self.last_error}")

        return op, args, apply

    def op_destroy(self) -> Op:
        # At the domain limit with none certainly there (crashing, cut short), any will do.
        target = self.pick() or self.rng.choice(sorted(self.model.values(), key=_by_name))
        if target.may_vanish or target.other_names:
            name = target.name

            def apply(ok: bool, cut: bool) -> None:
                target.may_vanish = True  # gone, or going: it was not certain to be there

            return "destroy", ["destroy", name], apply

        def gone(t: Expected) -> None:
            self.model.pop(t.name, None)

        return self._on("destroy", ["destroy", target.name], target, gone)

    def op_shutdown(self) -> Op:
        target = self.pick(running=True)
        assert target is not None

        def gone(t: Expected) -> None:
            self.model.pop(t.name, None)

        return self._on("shutdown", ["shutdown", "-w", target.name], target, gone)

    def op_pause(self) -> Op:
        target = self.pick(running=True)
        assert target is not None
        return self._on("pause", ["pause", target.name], target, _set_paused(True))

    def op_unpause(self) -> Op:
        target = self.pick(running=False)
        assert target is not None
        return self._on("unpause", ["unpause", target.name], target, _set_paused(False))

    def op_mem_set(self) -> Op:
        target = self.pick()
        assert target is not None
        # Not below 3/4: a busybox guest keeps its root in RAM, and a balloon that takes more
        # starves it ("Out of puff"), under Xen as here.
        size = self.rng.choice([self.args.memory * 3 // 4, self.args.memory])
        return self._on("mem-set", ["mem-set", target.name, f"{size}m"], target, _same)

    def op_vcpu_pin(self) -> Op:
        target = self.pick()
        assert target is not None
        cpus = self.rng.choice(["all", "0", str((os.cpu_count() or 1) - 1)])
        return self._on("vcpu-pin", ["vcpu-pin", target.name, "0", cpus], target, _same)

    def op_sched(self) -> Op:
        target = self.pick()
        assert target is not None
        weight = self.rng.choice([128, 256, 512, 1024])

        def follow(t: Expected) -> None:
            t.weight = weight

        args = ["sched-credit2", "-d", target.name, "-w", str(weight)]
        return self._on("sched", args, target, follow)

    def op_rename(self) -> Op:
        target = self.pick()
        assert target is not None
        new = self.fresh_name()
        args = ["rename", target.name, new]

        def apply(ok: bool, cut: bool) -> None:
            if ok:
                self.model.pop(target.name)
                target.name = new
                self.model[new] = target
            elif cut:
                target.other_names.add(new)
            else:
                self.report.fail(f"{self.op_text}: failed without a kill: {self.last_error}")

        return "rename", args, apply

    def op_reboot(self) -> Op:
        target = self.pick()
        assert target is not None

        def follow(t: Expected) -> None:
            t.domid, t.paused = None, False  # on_reboot=restart: a new domid, running

        return self._on("reboot", ["reboot", target.name], target, follow)

    # -- checking

    def domid_of(self, name: str) -> int | None:
        result = self.host.xl("domid", name)
        return int(result.stdout) if result.returncode == 0 else None

    def check(self) -> None:
        """Compare the host with the model; wait (bounded) for what settles by itself."""
        self.report.checks += 1
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            problems, orphans = self.compare(final=False)
            if not problems and not any(orphans.values()):
                return
            time.sleep(0.25)
        problems, orphans = self.compare(final=True)
        if problems:
            problems.append(repr(self.host.xl("dmesg").stdout.strip().splitlines()[-3:]))
        for kind, count in orphans.items():
            if count:
                self.report.orphans[kind] = self.report.orphans.get(kind, 0) + count
                self.report.fail(f"{self.op_text}: {count} orphan {kind}")
        for problem in problems:
            self.report.fail(f"{self.op_text}: {problem}")
        self.resync()

    def compare(self, *, final: bool) -> tuple[list[str], dict[str, int]]:
        listed = xl_list(self.host)
        listed.pop("Domain-0", None)
        problems: list[str] = []
        for expected in list(self.model.values()):
            names = [expected.name, *sorted(n for n in expected.other_names if n[0] != "?")]
            row = next((listed[n] for n in names if n in listed), None)
            if row is None:
                if not expected.may_vanish:
                    problems.append(f"domain {expected.name} is lost")
                    if final:
                        self.report.lost += 1
                        self.model.pop(expected.name)
                elif final or not _settling(expected):
                    self.model.pop(expected.name)
                continue
            if final:
                self.settle(expected, row)
            elif expected.domid is not None and row.domid != expected.domid:
                problems.append(f"domain {row.name} has id {row.domid}, not {expected.domid}")
            elif expected.paused is not None and row.paused != expected.paused:
                problems.append(f"domain {row.name} paused={row.paused}, not {expected.paused}")
        known = {n for e in self.model.values() for n in (e.name, *e.other_names)}
        for name in listed:
            if name not in known:
                problems.append(f"domain {name} is listed but no create was made of it")
        long = xl_long(self.host)
        uuids = {str(_get(c, "c_info", "uuid")) for c in long.values()}
        state = host_state(self.host.root)
        orphans = orphans_of(state, {r.domid for r in listed.values()}, uuids)
        problems += self.memory_problems(listed, long)
        problems += self.weight_problems()
        return problems, orphans

    def settle(self, expected: Expected, row: Listed) -> None:
        """The wait is over: take what the host shows for what the model left open."""
        if "?unreported" in expected.other_names:
            self.report.unreported += 1
        if expected.domid is not None and row.domid != expected.domid:
            self.report.mismatches += 1
            self.report.fail(f"{self.op_text}: {row.name} id {row.domid} != {expected.domid}")
        if expected.paused is not None and row.paused != expected.paused:
            self.report.mismatches += 1
            self.report.fail(f"{self.op_text}: {row.name} paused={row.paused}")
        self.model.pop(expected.name)
        expected.name, expected.domid, expected.paused = row.name, row.domid, row.paused
        expected.other_names.clear()
        expected.may_vanish = expected.may_vanish and expected.domid is None
        self.model[row.name] = expected

    def memory_problems(
        self, listed: dict[str, Listed], long: dict[int, dict[str, object]]
    ) -> list[str]:
        info = xl_info(self.host)
        dom0 = xl_list_dom0(self.host)
        targets = sum(
            int(str(_get(c, "b_info", "target_memkb") or 0)) // 1024 for c in long.values()
        )
        total, free = int(info["total_memory"]), int(info["free_memory"])
        slack = 2 + len(listed)  # each figure is rounded down to MiB
        if abs(total - (free + dom0 + targets)) > slack:
            return [f"memory: total {total} != free {free} + dom0 {dom0} + domains {targets}"]
        return []

    def weight_problems(self) -> list[str]:
        problems = []
        for expected in self.model.values():
            if expected.weight is None or expected.may_vanish or expected.other_names:
                continue
            result = self.host.xl("sched-credit2", "-d", expected.name)
            if result.returncode != 0:
                continue  # gone meanwhile (a reboot in flight): the next check sees it
            weight = int(result.stdout.splitlines()[-1].split()[2])
            if weight != expected.weight:
                problems.append(f"domain {expected.name} weight {weight}, not {expected.weight}")
        return problems

    def resync(self) -> None:
        """After a reported failure, take the host as it is so later checks stay useful."""
        listed = xl_list(self.host)
        listed.pop("Domain-0", None)
        self.model = {name: Expected(name, row.domid, row.paused) for name, row in listed.items()}

    def finish(self) -> None:
        """At the end: every domain destroyed, and nothing at all left."""
        for name in list(xl_list(self.host)):
            if name != "Domain-0":
                self.host.xl("destroy", name)
        self.model.clear()
        self.op_text = "final cleanup"
        self.check()


def _by_name(expected: Expected) -> str:
    return expected.name


def _get(config: dict[str, object], section: str, key: str) -> object:
    part = config.get(section)
    return part.get(key) if isinstance(part, dict) else None


def _same(target: Expected) -> None:
    """The operation changes nothing the model tracks."""


def _set_paused(paused: bool) -> Follow:
    def follow(target: Expected) -> None:
        target.paused = paused

    return follow


def _unsure(target: Expected, op: str) -> None:
    """An operation was cut short: what it would change may or may not have happened."""
    if op in ("destroy", "shutdown"):
        target.may_vanish = True
    if op in ("pause", "unpause"):
        target.paused = None
    if op == "reboot":
        target.domid, target.paused = None, None
    if op == "sched":
        target.weight = None


def _settling(expected: Expected) -> bool:
    """A domain that may still go by itself (a crash under way): keep waiting for it."""
    return expected.may_vanish and expected.domid is None and not expected.other_names


def xl_list_dom0(host: Host) -> int:
    result = host.xl("list", "0")
    return int(result.stdout.splitlines()[1].split()[2])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-domains", type=int, default=4)
    parser.add_argument("--kill-rate", type=float, default=0.25)
    parser.add_argument("--xenstored-rate", type=float, default=0.05)
    parser.add_argument("--memory", type=int, default=96)
    args = parser.parse_args(argv)
    started = time.monotonic()
    kit = build_guest_kit()
    host = Host(Path(tempfile.mkdtemp(prefix="xs", dir="/tmp")), kit, args.memory)
    try:
        host.start()
        report = Soak(host, args).run()
    except BenchError as exc:
        print(json.dumps({"error": str(exc), "seed": args.seed}))
        return 1
    finally:
        tear_down(host.root, host.env)
    result = {
        "bench": "crash_soak",
        "seed": report.seed,
        "ops": report.ops,
        "kills": {"xenlited": report.kills_xenlited, "xenstored": report.kills_xenstored},
        "crash_points": report.crash_points,
        "restarts": report.restarts,
        "checks": report.checks,
        "lost_domains": report.lost,
        "orphans": {kind: report.orphans.get(kind, 0) for kind in ORPHAN_KINDS},
        "mismatches": report.mismatches,
        "unreported_creates": report.unreported,
        "failures": report.failures[:50],
        "seconds": round(time.monotonic() - started, 1),
        "target": {"lost_domains": 0, "orphans": 0},
        "met": report.lost == 0 and not report.orphans and not report.failures,
    }
    print(json.dumps(result, indent=1))
    return 0 if result["met"] else 1


ORPHAN_KINDS = (
    "qemu",
    "records",
    "run_dirs",
    "cgroups",
    "xenstore_domains",
    "libxl",
    "vm",
    "restart_notes",
)

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
