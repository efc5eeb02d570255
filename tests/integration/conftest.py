"""Fixtures for the XenStore integration tests: xenlite's daemon and Xen's reference daemon.

``xenlite_xenstored`` runs ``xenlite xenstored --no-fork --socket <tmp>``; ``reference_xenstored``
runs Debian's real C xenstored through ../shared/tools/xenstore-reference. Each skips with the
reason when its part is missing. ``xenstored`` is parametrised over both, so a test written once
checks xenlite and, on the same machine, what Xen itself does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

XENLITE = Path(sys.executable).with_name("xenlite")
START_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Daemon:
    """A running XenStore daemon: what it is, its socket and its pid."""

    kind: str  # "xenlite" or "reference"
    socket: Path
    pid: int

    def env(self) -> dict[str, str]:
        """The environment under which libxenstore clients and xenlite's tools find it."""
        env = dict(os.environ)
        env["XENSTORED_PATH"] = str(self.socket)
        env.pop("XENSTORED_RUNDIR", None)
        return env


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes] | None, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"xenlite xenstored exited with {proc.returncode}: {out[-2000:]}")
        if path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                return
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.02)
    raise RuntimeError(f"no daemon listening on {path} after {START_TIMEOUT} s")


def xenlite_daemon_missing() -> str | None:
    """Why xenlite's daemon cannot run here, or None."""
    if importlib.util.find_spec("xenlite.xenstore.main") is None:
        return "xenlite.xenstore.main (the daemon) is not there yet"
    if not XENLITE.exists():
        return f"the xenlite console script is not installed at {XENLITE}"
    return None


def start_xenlite(sock: Path, *extra: str) -> tuple[Daemon, subprocess.Popen[bytes]]:
    """Start ``xenlite xenstored`` in the foreground on ``sock``."""
    proc = subprocess.Popen(
        [str(XENLITE), "xenstored", "--no-fork", "--socket", str(sock), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for_socket(sock, proc, time.monotonic() + START_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return Daemon("xenlite", sock, proc.pid), proc


def stop_xenlite(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def reference_script(shared: Path) -> Path:
    return shared / "tools" / "xenstore-reference" / "start-reference-xenstored.sh"


def reference_missing(shared: Path) -> str | None:
    script = reference_script(shared)
    if not script.exists():
        return f"the reference daemon tool is not at {script}"
    for tool in ("apt-get", "dpkg-deb", "cc"):
        if shutil.which(tool) is None:
            return f"the reference daemon needs '{tool}', which is not installed"
    return None


def start_reference(shared: Path, sock: Path, *extra: str) -> Daemon:
    """Start Debian's C xenstored on ``sock`` (the script returns once it listens)."""
    script = reference_script(shared)
    argv = [str(script), "--socket", str(sock)]
    if extra:
        argv += ["--", *extra]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"the reference xenstored did not start: {result.stderr.strip()[-500:]}")
    pid = 0
    for line in result.stdout.splitlines():
        if line.startswith("pid="):
            pid = int(line[4:])
    _wait_for_socket(sock, None, time.monotonic() + START_TIMEOUT)
    return Daemon("reference", sock, pid)


def stop_reference(shared: Path, sock: Path) -> None:
    subprocess.run(
        [str(reference_script(shared)), "--socket", str(sock), "--stop"],
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def xenlite_xenstored(tmp_path: Path) -> Iterator[Daemon]:
    """A fresh xenlite daemon on a temporary socket."""
    reason = xenlite_daemon_missing()
    if reason:
        pytest.skip(reason)
    daemon, proc = start_xenlite(tmp_path / "xenlite.sock")
    try:
        yield daemon
    finally:
        stop_xenlite(proc)


@pytest.fixture
def reference_xenstored(shared_dir: Path, tmp_path: Path) -> Iterator[Daemon]:
    """A fresh C xenstored (Debian's, Xen 4.17) on a temporary socket."""
    reason = reference_missing(shared_dir)
    if reason:
        pytest.skip(reason)
    sock = tmp_path / "reference.sock"
    daemon = start_reference(shared_dir, sock)
    try:
        yield daemon
    finally:
        stop_reference(shared_dir, sock)


@pytest.fixture(params=["xenlite", "reference"])
def xenstored(request: pytest.FixtureRequest) -> Daemon:
    """Each test runs against xenlite's daemon and against the reference C xenstored."""
    name = "xenlite_xenstored" if request.param == "xenlite" else "reference_xenstored"
    daemon: Daemon = request.getfixturevalue(name)
    return daemon


@pytest.fixture(scope="session")
def xenstore_utils() -> dict[str, str]:
    """Paths of Debian's xenstore-utils tools, by short name (read, write, ls, ...)."""
    tools = {}
    for name in ("read", "write", "rm", "list", "ls", "exists", "chmod", "watch"):
        path = shutil.which(f"xenstore-{name}")
        if path is None:
            pytest.skip(f"'xenstore-{name}' is not installed (Debian package xenstore-utils)")
        tools[name] = path
    return tools


# ---------------------------------------------------------------------- the domain engine
# A private host (xenstored + xenlited under a temporary XENLITE_ROOT) for the engine's
# concurrency and failure tests; test_engine_lifecycle.py keeps its own module fixture.


@dataclass
class LiveHost:
    """A running xenlite host under ``root``, with the guest kit to boot domains from."""

    root: Path
    kernel: Path
    initrd: Path
    netns: str | None = None  # the network namespace the daemons run in (tests/netns.py)
    drop_caps: tuple[str, ...] = ()  # capabilities the daemons run without (setpriv)

    @property
    def env(self) -> dict[str, str]:
        """The environment under which ``xl`` talks to this host."""
        env = dict(os.environ)
        env["XENLITE_ROOT"] = os.fspath(self.root)
        env.pop("XENLITED_SOCKET", None)
        return env

    def write_config(self, name: str, *lines: str, memory: int = 96) -> Path:
        """A PVH config booting the guest kit; ``lines`` are extra xl.cfg lines."""
        path = self.root / f"{name}.cfg"
        body = [
            f'name = "{name}"',
            f'kernel = "{self.kernel}"',
            f'ramdisk = "{self.initrd}"',
            f"memory = {memory}",
            'extra = "console=ttyS0"',
            *lines,
        ]
        path.write_text("\n".join(body) + "\n")
        return path

    def wait_ready(self, name: str, count: int = 1, timeout: float = 60.0) -> None:
        """Until the domain's console log holds the guest kit's ready line ``count`` times
        (a reboot of the domain prints it again)."""
        from xenlite.guestkit.boot import READY_MARKER

        log = self.root / f"var/log/xenlite/console/guest-{name}.log"
        deadline = time.monotonic() + timeout
        while not (log.exists() and log.read_text(errors="replace").count(READY_MARKER) >= count):
            assert time.monotonic() < deadline, f"{name} never became ready"
            time.sleep(0.1)

    def start(self, *, crash_at: str | None = None) -> None:
        """``xenlite start``: start whichever daemon of this host is not running (TCG);
        ``crash_at``: the crash point (base/crashpoint.py) at which a new xenlited kills
        itself."""
        env = self.env
        env["XENLITE_ACCEL"] = "tcg"
        if crash_at is not None:
            env["XENLITE_CRASH_AT"] = crash_at
        argv = [str(XENLITE), "start"]
        if self.drop_caps:
            dropped = ",".join(f"-{cap}" for cap in self.drop_caps)
            argv = ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *argv]
        if self.netns is not None:  # the network namespace alone: /sys and cgroups stay
            argv = ["nsenter", f"--net=/run/netns/{self.netns}", *argv]
        started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
        if started.returncode != 0:
            raise RuntimeError(f"xenlite start failed: {started.stderr}")

    def xenlited_pid(self) -> int:
        return int((self.root / "run/xenlite/xenlited.pid").read_text())

    def stop_xenlited(self) -> None:
        """End xenlited alone (SIGTERM, as ``xenlite stop`` does); xenstored stays."""
        from xenlite.daemon.services import stop_daemon

        stop_daemon("xenlited", self.root / "run/xenlite/xenlited.pid")

    def crash_during(self, point: str, *xl_args: str) -> None:
        """Restart xenlited to die at crash point ``point``, run ``xl *xl_args`` (which
        fails: its daemon is killed mid-step), and start xenlited again, whose takeover must
        finish or undo the step."""
        from xenlite.base.proc import pid_alive

        self.stop_xenlited()
        self.start(crash_at=point)
        dead = self.xenlited_pid()
        result = self.xl(*xl_args)
        assert result.returncode != 0, (point, result.stdout)
        assert "Traceback" not in result.stderr, result.stderr
        assert not pid_alive(dead), f"xenlited did not reach {point}"
        self.start()

    def restart_with(self, files: dict[str, str]) -> None:
        """Stop xenlited, write ``files`` (a host path such as /etc/default/grub, and its
        text) under the root, and start it again: what xenlited reads only at its start."""
        self.stop_xenlited()
        for path, text in files.items():
            target = self.root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.start()

    def xl(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(XENLITE.with_name("xl")), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def listed(self) -> list[str]:
        """The names ``xl list`` shows, Domain-0 first."""
        result = self.xl("list")
        assert result.returncode == 0, result.stderr
        return [line.split()[0] for line in result.stdout.splitlines()[1:]]

    def xl_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(XENLITE.with_name("xl")), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def records(self) -> list[Path]:
        return sorted((self.root / "var/lib/xenlite/domains").glob("*.json"))

    def create_under_way(self, config: Path) -> subprocess.Popen[str]:
        """Start ``xl create config`` and return once the new domain's record exists: the
        create is then between its first step and its last."""
        known = set(self.records())
        creator = self.xl_popen("create", str(config))
        deadline = time.monotonic() + 60
        while not set(self.records()) - known:
            assert time.monotonic() < deadline, "the create never wrote its record"
            assert creator.poll() is None, creator.communicate()
            time.sleep(0.001)
        return creator

    def run_dirs(self) -> list[Path]:
        directory = self.root / "run/xenlite/qemu"
        return sorted(directory.iterdir()) if directory.is_dir() else []

    def high_water(self) -> int:
        path = self.root / "var/lib/xenlite/domains/next-domid"
        try:
            return int(path.read_text().strip() or "0")
        except (OSError, ValueError):
            return 0

    def qemu_pids(self) -> list[int]:
        """QEMU processes of this host (their command lines name the host root)."""
        from xenlite.qemu.process import qemu_pids_under

        return qemu_pids_under(self.root)

    def sockets(self) -> list[Path]:
        """Every unix socket file under the QEMU run directory."""
        directory = self.root / "run/xenlite/qemu"
        return sorted(directory.rglob("*.sock")) if directory.is_dir() else []


def live_host_missing() -> str | None:
    """Why a live host with guests cannot run here, or None."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    if not Path("/bin/busybox").is_file() or shutil.which("apt-get") is None:
        return "the guest kit needs busybox-static and apt-get"
    if not XENLITE.with_name("xl").exists():
        return f"the xl console script is not installed next to {XENLITE}"
    return None


@contextlib.contextmanager
def running_live_host(
    netns: str | None = None, drop_caps: tuple[str, ...] = ()
) -> Iterator[LiveHost]:
    """Start xenstored and xenlited under a fresh short root under /tmp (TCG guests), in
    network namespace ``netns`` when given; on leaving, kill this host's QEMU processes,
    stop both daemons and remove the root."""
    reason = live_host_missing()
    if reason:
        pytest.skip(reason)
    from xenlite.guestkit.build import build_guest_kit
    from xenlite.host.cgroups import remove_root_groups

    kit = build_guest_kit()
    # QEMU's unix sockets live under the root and unix socket paths are short.
    root = Path(tempfile.mkdtemp(prefix="xl", dir="/tmp"))
    host = LiveHost(root, Path(kit.kernel), Path(kit.initrd), netns, drop_caps)
    try:
        host.start()
        yield host
    finally:
        for pid in host.qemu_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run([str(XENLITE), "stop"], env=host.env, capture_output=True, timeout=120)
        remove_root_groups(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def live_host() -> Iterator[LiveHost]:
    """One private xenlite host for a test module."""
    with running_live_host() as host:
        yield host


@pytest.fixture(scope="session")
def live_host_factory() -> Callable[[], contextlib.AbstractContextManager[LiveHost]]:
    """``running_live_host`` itself, for tests that need a host of their own."""
    return running_live_host


@pytest.fixture(scope="module")
def bystander_host() -> Iterator[LiveHost]:
    """A private host for a module of failure tests, with one paused domain "bystander"
    that every failure must leave untouched."""
    with running_live_host() as live:
        result = live.xl("create", "-p", str(live.write_config("bystander")))
        assert result.returncode == 0, result.stderr
        yield live
