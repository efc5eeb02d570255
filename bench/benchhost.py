"""What the benchmarks that run a private xenlite host share: the programs, the host's
environment, and the tear-down that leaves no QEMU, daemon, cgroup or directory behind."""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from xenlite.base.errors import XenliteError
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import GuestKit
from xenlite.host.cgroups import remove_root_groups
from xenlite.qemu.accel import Accel
from xenlite.qemu.process import qemu_pids_under

BIN = Path(sys.executable).parent
XENLITE = BIN / "xenlite"
XL = BIN / "xl"
TIMEOUT = 300.0
QEMU = "qemu-system-x86_64"
CMDLINE = "console=ttyS0"
MEMORY_MIB = 128
_MARKERS = itertools.count(1000)


def private_env(root: Path, accel: str = "tcg") -> dict[str, str]:
    """The environment of a host under ``root``: its own sockets, the given accelerator."""
    env = dict(os.environ, XENLITE_ROOT=os.fspath(root), XENLITE_ACCEL=accel)
    env.pop("XENLITED_SOCKET", None)
    return env


def tear_down(root: Path, env: dict[str, str]) -> None:
    """Kill the host's guests, stop its services, remove its cgroups and its root."""
    for pid in qemu_pids_under(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run([os.fspath(XENLITE), "stop"], env=env, capture_output=True, timeout=120,
                       check=False)  # fmt: skip
    with contextlib.suppress(XenliteError):
        remove_root_groups(root)
    shutil.rmtree(root, ignore_errors=True)


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


class Console:
    """A guest's serial console as a byte stream: send a line, read until a marker."""

    def __init__(self, send: Callable[[bytes], None], fileno: int) -> None:
        self._send = send
        self._fileno = fileno
        self.buffer = b""

    def read_until(self, wanted: bytes, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while wanted not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"no {wanted!r} from the guest: {self.buffer[-500:]!r}")
            ready, _, _ = select.select([self._fileno], [], [], left)
            if ready:
                chunk = os.read(self._fileno, 65536)
                if not chunk:
                    raise BenchError(f"the console closed before {wanted!r}")
                self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(wanted)
        return head

    def start(self, command: str) -> bytes:
        """Send ``command`` and an echo of a marker after it; return the marker as printed
        (the shell's echo of the typed line shows it split by quotes, so never matches)."""
        n = next(_MARKERS)
        self._send(f'{command}; echo "@@""{n}@@"\n'.encode())
        return f"@@{n}@@".encode()

    def run(self, command: str, timeout: float = TIMEOUT) -> float:
        """Seconds until ``command`` (run by the guest's shell) has finished."""
        started = time.monotonic()
        self.read_until(self.start(command), timeout)
        return time.monotonic() - started


def close_console(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.write(b"\x1d")
        proc.stdin.close()
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


class GuestHost:
    """A private xenlite host under ``root`` that boots guest-kit guests."""

    def __init__(self, root: Path, kit: GuestKit, accel: Accel) -> None:
        self.root = root
        self.kit = kit
        self.env = private_env(root, str(accel))

    def run(self, *argv: str | os.PathLike[str]) -> str:
        result = subprocess.run(
            [os.fspath(a) for a in argv], env=self.env, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BenchError(f"{Path(argv[0]).name} {argv[1]} failed: {result.stderr.strip()}")
        return result.stdout

    def create(self, name: str, devices: str, *, boot: str | None = None) -> None:
        """Create domain ``name`` with the xl.cfg line ``devices`` and wait for its guest;
        ``boot`` replaces the kit's kernel=/ramdisk=/extra= lines (bootloader=...)."""
        config = self.root / f"{name}.cfg"
        if boot is None:
            boot = (
                f'kernel = "{self.kit.kernel}"\nramdisk = "{self.kit.initrd}"\nextra = "{CMDLINE}"'
            )
        config.write_text(f'name = "{name}"\n{boot}\nmemory = {MEMORY_MIB}\nvcpus = 1\n{devices}\n')
        self.run(XL, "create", "-q", config)
        log = self.root / f"var/log/xenlite/console/guest-{name}.log"
        deadline = time.monotonic() + TIMEOUT
        while not (log.exists() and READY_MARKER.encode() in log.read_bytes()):
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: no ready marker")
            time.sleep(0.01)

    def console(self, name: str) -> tuple[subprocess.Popen[bytes], Console]:
        proc = subprocess.Popen(
            [os.fspath(XL), "console", name], env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.stdin is not None
        assert proc.stdout is not None
        stdin = proc.stdin

        def send(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        return proc, Console(send, proc.stdout.fileno())


class BareGuest:
    """One guest-kit guest on bare ``qemu-system-x86_64`` (the same kernel, initramfs,
    memory and accelerator as xenlite's), its serial console on a unix socket; ``devices``
    are its extra QEMU options, ``prefix`` runs QEMU under another command (nsenter)."""

    def __init__(
        self, kit: GuestKit, accel: Accel, console: Path, devices: list[str],
        prefix: list[str] | None = None,
    ) -> None:  # fmt: skip
        console.unlink(missing_ok=True)
        argv = [
            QEMU,
            "-no-user-config", "-nodefaults", "-nographic", "-display", "none",
            "-machine", "q35",
            "-accel", "kvm" if accel is Accel.KVM else "tcg,thread=single",
            "-cpu", "host" if accel is Accel.KVM else "max",
            "-m", f"{MEMORY_MIB}M", "-smp", "1",
            "-kernel", os.fspath(kit.kernel), "-initrd", os.fspath(kit.initrd),
            "-append", CMDLINE,
            *devices,
            "-chardev", f"socket,id=con,path={console},server=on,wait=on",
            "-serial", "chardev:con",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            [*(prefix or []), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not console.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                self.close()
                raise BenchError(f"bare QEMU did not start: {err.strip()}")
            time.sleep(0.01)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.fspath(console))
        self.console = Console(self.sock.sendall, self.sock.fileno())

    def close(self) -> None:
        if hasattr(self, "sock"):
            self.sock.close()
        self.process.kill()
        self.process.wait(30)
        if self.process.stderr:
            self.process.stderr.close()
