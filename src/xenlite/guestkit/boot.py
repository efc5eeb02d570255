"""Boot the guest kit under QEMU, watch its serial console, and stop it through ACPI.

Not a Xen man page: the test/demo guest's harness (../shared/DESIGN.md "Testing"), used by
``make demo`` until the domain engine lands and by the integration tests. The serial console
is QEMU's stdio on pipes; QMP is a unix socket in a private temporary directory, spoken as raw
JSON lines (only ``qmp_capabilities`` and ``system_powerdown`` are needed here).

QEMU is started directly with :class:`subprocess.Popen` because the harness must stream the
console while the guest runs; ``qemu/process.py`` owns detached domain launches.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from xenlite.base.errors import GuestKitError
from xenlite.base.proc import require_program
from xenlite.guestkit.build import GuestKit
from xenlite.qemu.accel import QEMU_PACKAGE, QEMU_SYSTEM, Accel, probe_accel

READY_MARKER = "xenlite-guest: ready"
# panic=-1: a crashed guest reboots at once, which -no-reboot turns into QEMU exiting.
BASE_CMDLINE = "console=ttyS0 panic=-1"
_CONSOLE_LIMIT = 4 * 1024 * 1024
_TAIL_CHARS = 3000
_QMP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class BootResult:
    """How long the guest took to print its ready marker, its console, and the accelerator."""

    seconds_to_ready: float
    console: str
    accel: str


class GuestRun:
    """One QEMU process running the guest kit, with its console captured.

    Use as a context manager: leaving it kills QEMU if it still runs and removes the sockets.
    Console positions are character offsets into :attr:`console` (``\\r`` removed).
    """

    def __init__(
        self,
        kit: GuestKit,
        *,
        cmdline_extra: str = "",
        memory_mb: int = 256,
        vcpus: int = 1,
        accel: str | None = None,
        no_reboot: bool = True,
        network: bool = True,
    ) -> None:
        self.kit = kit
        self.cmdline = " ".join(p for p in (BASE_CMDLINE, cmdline_extra.strip()) if p)
        self.memory_mb = memory_mb
        self.vcpus = vcpus
        self.accel = Accel(accel) if accel is not None else probe_accel().accel
        self.no_reboot = no_reboot
        self.network = network
        self.started_at = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None
        self._qmp: socket.socket | None = None
        self._qmp_buffer = b""
        self._console = bytearray()
        self._console_dropped = 0
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> GuestRun:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def qmp_path(self) -> Path:
        if self._scratch is None:
            raise RuntimeError("GuestRun.start() was not called")
        return self._scratch / "qmp.sock"

    def argv(self) -> list[str]:
        """The QEMU command line (the accelerator decides -cpu)."""
        qemu = os.fspath(require_program(QEMU_SYSTEM, QEMU_PACKAGE))
        cpu = "host" if self.accel is Accel.KVM else "max"
        argv = [
            qemu,
            "-machine", "q35",
            "-accel", str(self.accel),
            "-cpu", cpu,
            "-m", str(self.memory_mb),
            "-smp", str(self.vcpus),
            "-nodefaults", "-display", "none",
            "-serial", "stdio",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-kernel", os.fspath(self.kit.kernel),
            "-initrd", os.fspath(self.kit.initrd),
            "-append", self.cmdline,
            "-device", "virtio-balloon-pci,id=balloon0",
        ]  # fmt: skip
        if self.network:
            # restrict=on: QEMU's DHCP server leases an address (no router, no DNS) and the
            # guest reaches nothing beyond it.
            argv += ["-netdev", "user,id=net0,restrict=on",
                     "-device", "virtio-net-pci,netdev=net0,mac=00:16:3e:00:00:01"]  # fmt: skip
        if self.no_reboot:
            argv.append("-no-reboot")
        return argv

    def start(self) -> None:
        """Launch QEMU and start collecting its serial output.

        :raise HostError: when QEMU is not installed
        :raise GuestKitError: when QEMU cannot be started
        """
        self._scratch = Path(tempfile.mkdtemp(prefix="xenlite-guest-"))
        try:
            argv = self.argv()
        except BaseException:
            self.close()
            raise
        self._stderr = (self._scratch / "qemu.stderr").open("wb")
        try:
            self._process = subprocess.Popen(  # argv, never a shell
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
            )
        except OSError as exc:
            self.close()
            raise GuestKitError(
                f"command '{argv[0]}'", f"could not start: {exc}", f"apt-get install {QEMU_PACKAGE}"
            ) from exc
        self.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read_console, name="guest-console")
        self._reader.daemon = True
        self._reader.start()

    @property
    def console(self) -> str:
        """Everything the guest printed so far (at most the last 4 MiB)."""
        with self._changed:
            return self._console.decode(errors="replace").replace("\r", "")

    def console_tail(self, chars: int = _TAIL_CHARS) -> str:
        return self.console[-chars:]

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def wait_for(self, text: str, *, timeout: float, start: int = 0) -> int:
        """Wait until ``text`` appears in the console at or after offset ``start``.

        :return: the offset just past the match
        :raise GuestKitError: when QEMU exits or the timeout passes first
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                console = self._console.decode(errors="replace").replace("\r", "")
                found = console.find(text, start)
                if found >= 0:
                    return found + len(text)
                if self._eof:
                    raise self.failure(f"QEMU exited before the guest printed {text!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self.failure(f"the guest did not print {text!r} within {timeout:g} s")
                self._changed.wait(min(remaining, 0.5))

    def count(self, text: str) -> int:
        return self.console.count(text)

    def send(self, text: str) -> None:
        """Type ``text`` on the serial console."""
        if self._process is None or self._process.stdin is None:
            raise RuntimeError("GuestRun.start() was not called")
        try:
            self._process.stdin.write(text.encode())
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise self.failure("cannot type on the console: QEMU has exited") from exc

    def powerdown(self) -> None:
        """Press the ACPI power button (QMP ``system_powerdown``)."""
        self.qmp("system_powerdown")

    def qmp(self, command: str) -> object:
        """Run one QMP command without arguments and return its ``return`` value.

        :raise GuestKitError: when QMP cannot be reached or the command fails
        """
        if self._qmp is None:
            self._qmp = self._connect_qmp()
            self._qmp_exchange("qmp_capabilities")
        return self._qmp_exchange(command)

    def wait_exit(self, *, timeout: float) -> int:
        """Wait for QEMU to exit and return its exit status.

        :raise GuestKitError: when it still runs after ``timeout`` (it is then killed)
        """
        if self._process is None:
            raise RuntimeError("GuestRun.start() was not called")
        try:
            status = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self.failure(f"QEMU did not exit within {timeout:g} s; killed it") from None
        if self._reader is not None:
            self._reader.join(5.0)
        return status

    def kill(self) -> None:
        """Kill QEMU (no-op when it has exited) and reap it."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10.0)

    def close(self) -> None:
        """Kill QEMU if needed, stop the reader, close pipes and remove the sockets."""
        self.kill()
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._reader is not None:
            self._reader.join(5.0)
            self._reader = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def stderr_tail(self) -> str:
        """The end of what QEMU wrote to stderr (empty once closed)."""
        if self._scratch is None:
            return ""
        try:
            data = (self._scratch / "qemu.stderr").read_bytes()
        except OSError:
            return ""
        return data.decode(errors="replace")[-_TAIL_CHARS:]

    def failure(self, cause: str) -> GuestKitError:
        """A GuestKitError for ``cause`` carrying QEMU's status, stderr and the console tail."""
        parts = [cause]
        status = self.returncode
        if status is not None:
            parts.append(f"QEMU exit status {status}")
        stderr = self.stderr_tail().strip()
        if stderr:
            parts.append(f"QEMU stderr:\n{stderr}")
        parts.append(f"console tail:\n{self.console_tail()}")
        return GuestKitError(
            f"guest kit boot ({self.accel}, {self.kit.kernel_version})",
            "\n".join(parts),
            "rebuild the kit with force=True; with KVM, try XENLITE_ACCEL=tcg",
        )

    def _read_console(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._changed:
                if not chunk:
                    self._eof = True
                    self._changed.notify_all()
                    return
                self._console += chunk
                excess = len(self._console) - _CONSOLE_LIMIT
                if excess > 0:
                    del self._console[:excess]
                    self._console_dropped += excess
                self._changed.notify_all()

    def _connect_qmp(self) -> socket.socket:
        deadline = time.monotonic() + _QMP_TIMEOUT
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(_QMP_TIMEOUT)
            try:
                sock.connect(os.fspath(self.qmp_path))
            except OSError as exc:
                sock.close()
                if self.returncode is not None or time.monotonic() > deadline:
                    raise self.failure(f"cannot connect to QMP at {self.qmp_path}: {exc}") from exc
                time.sleep(0.05)
                continue
            greeting = self._qmp_message(sock)
            if "QMP" not in greeting:
                sock.close()
                raise self.failure(f"QMP greeting missing, got {greeting!r}")
            return sock

    def _qmp_exchange(self, command: str) -> object:
        sock = self._qmp
        assert sock is not None
        try:
            sock.sendall(json.dumps({"execute": command}).encode() + b"\r\n")
        except OSError as exc:
            raise self.failure(f"QMP {command}: {exc}") from exc
        while True:
            message = self._qmp_message(sock)
            if "return" in message:
                return message["return"]
            if "error" in message:
                error = message["error"]
                raise self.failure(f"QMP {command} failed: {error}")
            # Anything else is an asynchronous event (e.g. POWERDOWN); not needed here.

    def _qmp_message(self, sock: socket.socket) -> dict[str, object]:
        while b"\n" not in self._qmp_buffer:
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                raise self.failure(f"QMP read failed: {exc}") from exc
            if not chunk:
                raise self.failure("QMP connection closed by QEMU")
            self._qmp_buffer += chunk
        line, _, self._qmp_buffer = self._qmp_buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise self.failure(f"QMP sent something that is not JSON: {line[:200]!r}") from exc
        if not isinstance(message, dict):
            raise self.failure(f"QMP sent a non-object: {line[:200]!r}")
        return message


def boot_to_ready(
    kit: GuestKit,
    *,
    timeout: float = 60,
    cmdline_extra: str = "",
    memory_mb: int = 256,
    accel: str | None = None,
    shutdown_timeout: float = 30.0,
) -> BootResult:
    """Boot ``kit`` until it prints ``xenlite-guest: ready``, then power it off through ACPI.

    :param accel: ``"kvm"`` or ``"tcg"``; None asks :func:`xenlite.qemu.accel.probe_accel`
    :raise GuestKitError: when the marker does not appear within ``timeout``, or QEMU does not
        exit with status 0 within ``shutdown_timeout`` of the power button (QEMU is killed)
    :raise HostError: when QEMU is not installed
    """
    with GuestRun(kit, cmdline_extra=cmdline_extra, memory_mb=memory_mb, accel=accel) as run:
        run.wait_for(READY_MARKER, timeout=timeout)
        seconds = time.monotonic() - run.started_at
        run.powerdown()
        status = run.wait_exit(timeout=shutdown_timeout)
        if status != 0:
            raise run.failure(f"QEMU exited with status {status} after the ACPI power button")
        return BootResult(seconds, run.console, str(run.accel))
