"""Start a domain's QEMU detached, find it again after a daemon restart, and stop it.

Not a Xen man page: ../shared/DESIGN.md "domU: one QEMU process per domain, started detached
(own session), so it outlives the daemon" and STYLE.md 7.4 "QEMU processes". This is the one
place that starts QEMU. It is spawned with ``os.posix_spawn`` (``setsid``), stdin on /dev/null
and stdout/stderr appended to the domain's log file, and a pid file is written. Launch is
done when QEMU answers a command on its QMP socket, which it only does from its main loop,
after the kernel and every device were set up; if QEMU exits first, its own message from the log
becomes the :class:`QemuLaunchError` and nothing is left behind.

A process is tracked through a pidfd, so a signal never reaches a recycled pid: on re-attach
the pidfd is opened first and then ``/proc/PID/cmdline`` must name this domain's QMP socket.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import select
import shlex
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from xenlite.base.crashpoint import crash_point
from xenlite.base.errors import HostError, QemuError, QemuLaunchError
from xenlite.base.files import write_atomic
from xenlite.qemu.binary import QEMU_PACKAGE
from xenlite.qemu.options import opt
from xenlite.qemu.runpaths import RunPaths

log = logging.getLogger(__name__)

_TAIL_CHARS = 2000
_POLL_INTERVAL = 0.02


class QemuProcess:
    """A running (or exited) QEMU, launched here or re-attached from its pid file."""

    def __init__(
        self, pid: int, pidfd: int, paths: RunPaths, *, is_child: bool, argv: Sequence[str] = ()
    ) -> None:
        self.pid = pid
        self.paths = paths
        self.argv = tuple(argv)
        self.is_child = is_child
        self._pidfd: int | None = pidfd
        self._exitcode: int | None = None

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "exited"
        return f"QemuProcess(pid={self.pid}, {state}, qmp={self.paths.qmp_socket})"

    @property
    def pidfd(self) -> int:
        """A pidfd that becomes readable when QEMU exits (for an event loop's add_reader).

        :raise QemuError: after :meth:`close`
        """
        if self._pidfd is None:
            raise QemuError(f"QEMU pid {self.pid}", "this handle was closed", None)
        return self._pidfd

    @property
    def exitcode(self) -> int | None:
        """QEMU's exit status once reaped (only known for a child of this process);
        negative for a signal, as in :mod:`subprocess`."""
        return self._exitcode

    def is_alive(self) -> bool:
        """True while QEMU runs (a zombie counts as exited)."""
        if self._pidfd is None:
            return False
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        if readable:
            self._reap()
            return False
        return True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL) to QEMU; nothing happens when it has exited."""
        if self._pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, sig)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait until QEMU has exited; return its status when known (see :attr:`exitcode`).

        :raise QemuError: when it still runs after ``timeout`` seconds
        """
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], max(0.0, timeout))
            if not readable:
                raise QemuError(
                    f"QEMU pid {self.pid}",
                    f"still running {timeout:g} s later",
                    "kill it (xl destroy) or wait longer",
                )
            self._reap()
        return self._exitcode

    def remove_run_files(self) -> None:
        """Remove the pid file and sockets; only once QEMU has exited.

        :raise QemuError: while QEMU still runs
        """
        if self.is_alive():
            raise QemuError(
                f"QEMU pid {self.pid}", "still runs; its sockets are in use", "stop it first"
            )
        _remove_run_files(self.paths)

    def close(self) -> None:
        """Forget the process (QEMU keeps running); reaps it first if it is our exited child."""
        if self._pidfd is not None:
            self.is_alive()
            os.close(self._pidfd)
            self._pidfd = None

    def __del__(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)

    def _reap(self) -> None:
        if not self.is_child or self._exitcode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == self.pid:
            self._exitcode = os.waitstatus_to_exitcode(status)


def launch(argv: Sequence[str], paths: RunPaths, *, timeout: float = 30.0) -> QemuProcess:
    """Start QEMU detached and wait until it answers on its QMP socket.

    :param timeout: how long QEMU may take to greet on QMP (it is killed after that)
    :raise QemuLaunchError: when QEMU exits during start-up or does not answer in time; the
        message carries QEMU's own words and no process, socket or pid file is left
    :raise QemuError: when a live QEMU already uses these paths
    :raise HostError: when the binary cannot be started or the run files cannot be written
    """
    existing = attach(paths)
    if existing is not None:
        existing.close()
        raise QemuError(
            f"QEMU for {paths.qmp_socket}",
            f"already running as pid {existing.pid}",
            "destroy the running domain first",
        )
    paths.check_socket_paths()
    for directory in {paths.qmp_socket.parent, paths.serial_socket.parent, paths.pid_file.parent}:
        directory.mkdir(parents=True, exist_ok=True)
    paths.log_file.parent.mkdir(parents=True, exist_ok=True)
    if paths.console_log is not None:
        paths.console_log.parent.mkdir(parents=True, exist_ok=True)
    _remove_run_files(paths)

    log_fd = os.open(paths.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    try:
        os.write(log_fd, f"# xenlite: {time.strftime('%F %T')} + {shlex.join(argv)}\n".encode())
        start_offset = os.fstat(log_fd).st_size
        log.debug("+ %s", shlex.join(argv))
        try:
            pid = os.posix_spawn(
                argv[0],
                list(argv),
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
            )
        except OSError as exc:
            raise HostError(
                f"command '{argv[0]}'",
                f"cannot be started: {exc.strerror or exc}",
                f"install QEMU: apt-get install {QEMU_PACKAGE}",
            ) from None
    finally:
        os.close(log_fd)

    pidfd = os.pidfd_open(pid)
    process = QemuProcess(pid, pidfd, paths, is_child=True, argv=argv)
    try:
        crash_point("create:qemu-spawned")
        write_atomic(paths.pid_file, f"{pid}\n".encode(), 0o644)
        _wait_for_greeting(process, timeout, start_offset)
    except BaseException:
        process.kill()
        with contextlib.suppress(QemuError):
            process.wait_exit(10.0)
        process.close()
        _remove_run_files(paths)
        raise
    return process


def attach(paths: RunPaths) -> QemuProcess | None:
    """The QEMU that runs with these paths, or None.

    Found through its pid file; without one (the launcher was killed between starting QEMU
    and writing it) through ``/proc``: the one process whose command line names this exact
    QMP socket. The socket lies in the domain's own run directory under the host root, so it
    names one domain of one host and never matches another program by its name. A pid is
    trusted only when ``/proc/PID/cmdline`` names this QMP socket, checked after its pidfd is
    open, so a pid recycled by another program is never touched.
    """
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    process = _attach_pid(pid, paths) if pid > 1 else None
    if process is not None:
        return process
    for candidate in _pids_naming(paths.qmp_socket):
        process = _attach_pid(candidate, paths)
        if process is not None:
            return process
    return None


def _attach_pid(pid: int, paths: RunPaths) -> QemuProcess | None:
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    # Checked after the pidfd is open: the pidfd now names exactly the process we check.
    if not _runs_with_socket(pid, paths.qmp_socket):
        os.close(pidfd)
        return None
    process = QemuProcess(pid, pidfd, paths, is_child=False)
    if not process.is_alive():
        process.close()
        return None
    return process


def _pids_naming(qmp_socket: Path) -> list[int]:
    """Pids whose command line holds ``qmp_socket`` (a cheap byte test; the caller checks
    each option exactly)."""
    wanted = os.fsencode(opt(qmp_socket))  # as QEMU's option list spells it
    return [pid for pid, cmdline in _command_lines() if wanted in cmdline]


def qemu_pids_under(root: str | os.PathLike[str]) -> list[int]:
    """The pids of the QEMU processes of host root ``root`` (their command lines name it),
    for cleaning a host up after a test or benchmark without its daemon's help."""
    wanted = os.fsencode(root)
    return sorted(
        pid for pid, cmdline in _command_lines() if b"qemu-system" in cmdline and wanted in cmdline
    )


def _command_lines() -> Iterator[tuple[int, bytes]]:
    """(pid, raw /proc/PID/cmdline) of every process that is still there when read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                yield int(entry), stream.read()
        except OSError:
            continue


def vcpu_on_cpu(pid: int) -> bool:
    """True when one of QEMU's vCPU threads (named "CPU n/KVM", "CPU n/TCG" or "ALL CPUs/TCG"
    with debug-threads=on) is runnable right now (xl list's r flag)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stream:
                stat = stream.read()
        except OSError:
            continue
        comm = stat[stat.find(b"(") + 1 : stat.rfind(b")")]
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        if b"CPU" in comm and state == b"R":
            return True
    return False


def thread_stat(pid: int, tid: int) -> tuple[str, int, int] | None:
    """One thread of a process: (state letter, the CPU it last ran on, its CPU time in ns),
    from /proc/PID/task/TID/stat; None when it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    # Field 39 of proc(5), "processor", is the 37th after the command name.
    return fields[0].decode(), int(fields[36]), ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def cpu_time_ns(pid: int) -> int:
    """utime + stime of QEMU in nanoseconds (its vCPU threads do the guest's work); 0 when
    the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def log_tail(path: Path, start: int = 0, chars: int = _TAIL_CHARS) -> str:
    """The end of the log file from byte ``start`` on (QEMU's last words), stripped."""
    try:
        with path.open("rb") as stream:
            stream.seek(start)
            data = stream.read()
    except OSError:
        return ""
    return data.decode(errors="replace")[-chars:].strip()


def _runs_with_socket(pid: int, qmp_socket: Path) -> bool:
    """The process's command line has ``-chardev`` with ``path=`` this QMP socket: QEMU's own
    option, not merely the text somewhere (a launcher's arguments may carry the same path)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    args = raw.decode(errors="surrogateescape").split("\0")
    wanted = {f"path={opt(qmp_socket)}", f"path={qmp_socket}"}
    return any(
        flag == "-chardev" and any(part in wanted for part in _option_parts(value))
        for flag, value in itertools.pairwise(args)
    )


def _option_parts(arg: str) -> list[str]:
    """Split a QEMU ``k=v,k=v`` option on single commas (``,,`` is an escaped comma)."""
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(arg):
        char = arg[index]
        if char == ",":
            if arg[index + 1 : index + 2] == ",":
                current += ",,"
                index += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def _wait_for_greeting(process: QemuProcess, timeout: float, log_start: int) -> None:
    deadline = time.monotonic() + timeout
    path = os.fspath(process.paths.qmp_socket)
    while True:
        if not process.is_alive():
            raise _launch_failure(process, "QEMU exited while starting", log_start)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _launch_failure(
                process, f"QEMU did not answer on QMP within {timeout:g} s", log_start
            )
        if _greets(path, remaining):
            return
        time.sleep(_POLL_INTERVAL)


def _greets(path: str, timeout: float) -> bool:
    """Connect, and get QMP's greeting and an answer to ``qmp_capabilities``; then hang up
    (QEMU accepts the next client).

    The greeting alone proves little: QEMU's monitor I/O thread sends it while the main
    thread may still be loading the kernel (and about to fail). Commands run in the main
    loop, so an answer means start-up is over.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN):
                return False
            raise
        buffer = b""
        try:
            greeting, buffer = _read_line(sock, buffer)
            if b'"QMP"' not in greeting:
                return False
            sock.sendall(b'{"execute": "qmp_capabilities"}\n')
            while True:
                reply, buffer = _read_line(sock, buffer)
                if b'"return"' in reply and b'"event"' not in reply:
                    return True
        except (OSError, EOFError):
            return False


def _read_line(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    while b"\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line, rest


def _launch_failure(process: QemuProcess, cause: str, log_start: int) -> QemuLaunchError:
    if process.is_alive():
        process.kill()
        with contextlib.suppress(QemuError):
            process.wait_exit(10.0)
        exitcode = None
    else:
        exitcode = process.exitcode
    tail = log_tail(process.paths.log_file, log_start)
    if exitcode is not None:
        cause += f" (exit status {exitcode})" if exitcode >= 0 else f" (signal {-exitcode})"
    if tail:
        cause += f": {tail}"
    return QemuLaunchError(
        f"QEMU for {process.paths.qmp_socket}",
        cause,
        argv=process.argv,
        exitcode=exitcode,
        log_tail=tail,
        fix=f"read QEMU's message above; the full log is {process.paths.log_file}",
    )


def _remove_run_files(paths: RunPaths) -> None:
    for path in (paths.qmp_socket, paths.serial_socket, paths.pid_file):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
