"""``xenlite start`` / ``xenlite stop``: bring the host services up and down, as Xen's
xencommons init script does, and write dom0's XenStore nodes.

Not a Xen man page: xencommons starts xenstored, then writes dom0's name and domid
(``xen-init-dom0``), then the toolstack runs. Here: ``xenlite xenstored`` (its socket at
/run/xenstored/socket under the host root, its store kept in /var/lib/xenlite/xenstore.db),
dom0's nodes, then ``xenlite xenlited``. Both detach, write pid files in /run/xenlite and log
under /var/log/xenlite. ``stop`` ends xenlited, then xenstored; running guests are left alone
(their QEMU processes run on, and a later ``start`` takes them over), as stopping xencommons
does not destroy domains. A ``start`` that brings xenstored back under a running xenlited
returns once xenlited has reconnected and rewritten its domains' nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from xenlite.base.errors import HostError, XenliteError
from xenlite.base.paths import under_root
from xenlite.base.proc import pid_alive, run_sync
from xenlite.base.sockets import connect_unix
from xenlite.daemon.xenstore_link import BACK_WAIT
from xenlite.domain import xspaths
from xenlite.host import facts as host_facts
from xenlite.rpc.client import RpcClient
from xenlite.rpc.contract import Method
from xenlite.rpc.protocol import socket_path as xenlited_socket
from xenlite.xenstore.client import XenStoreClient
from xenlite.xenstore.location import default_socket

XENSTORED_PID = "/run/xenlite/xenstored.pid"
XENSTORED_LOG = "/var/log/xenlite/xenstored.log"
XENSTORED_STORE = "/var/lib/xenlite/xenstore.db"
XENLITED_PID = "/run/xenlite/xenlited.pid"
XENLITED_LOG = "/var/log/xenlite/xenlited.log"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0

_XENSTORED_RUN = (
    "import sys; from xenlite.xenstore.main import run; raise SystemExit(run(sys.argv[1:]))"
)
_XENLITED_RUN = (
    "import sys; from xenlite.daemon.main import run; raise SystemExit(run(sys.argv[1:]))"
)
_USAGE_FIX = "usage: xenlite start [--no-xenstored]; xenlite stop"


def main_start(opts: object, args: list[str]) -> int:
    """``xenlite start [--no-xenstored]``: start what is not running yet."""
    start_xenstored = True
    for arg in args:
        if arg == "--no-xenstored":
            start_xenstored = False
        else:
            raise XenliteError("xenlite start", f"unknown argument '{arg}'", _USAGE_FIX)
    for directory in ("/run/xenlite", "/run/xenstored", "/var/log/xenlite", "/var/lib/xenlite"):
        _make_directory(under_root(directory))
    xenstored_started = start_xenstored and not _answers(default_socket())
    if xenstored_started:
        _spawn_daemon(
            "xenstored",
            [
                _XENSTORED_RUN,
                "--socket", os.fspath(default_socket()),
                "--pid-file", os.fspath(under_root(XENSTORED_PID)),
                "--log-file", os.fspath(under_root(XENSTORED_LOG)),
                "--persist", os.fspath(under_root(XENSTORED_STORE)),
            ],
        )  # fmt: skip
    asyncio.run(_write_dom0(default_socket()))
    if _answers(xenlited_socket()):
        if xenstored_started:
            # xenlited ran on without XenStore: have it reconnect now and repair its
            # domains' nodes, so the host is usable when this returns.
            with RpcClient(timeout=BACK_WAIT + 5) as client:
                client.call(Method.HOST_XENSTORE_WAIT, timeout=BACK_WAIT)
    else:
        _spawn_daemon(
            "xenlited",
            [
                _XENLITED_RUN,
                "--pid-file", os.fspath(under_root(XENLITED_PID)),
                "--log-file", os.fspath(under_root(XENLITED_LOG)),
            ],
        )  # fmt: skip
    return 0


def main_stop(opts: object, args: list[str]) -> int:
    """``xenlite stop``: end xenlited, then xenstored (guests keep running)."""
    if args:
        raise XenliteError("xenlite stop", f"unknown argument '{args[0]}'", _USAGE_FIX)
    stop_daemon("xenlited", under_root(XENLITED_PID))
    stop_daemon("xenstored", under_root(XENSTORED_PID))
    return 0


def stop_daemon(name: str, pid_file: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the daemon named by ``pid_file`` and wait until it has gone; False when it
    was not running.

    :raise HostError: when it is still there after ``timeout`` seconds
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    if not _is_python_daemon(pid):
        with contextlib.suppress(OSError):
            pid_file.unlink()
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                raise HostError(
                    f"{name} (pid {pid})",
                    f"still runs {timeout:g} s after SIGTERM",
                    f"look at its log; kill -9 {pid} if it hangs",
                )
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)
    with contextlib.suppress(OSError):
        pid_file.unlink()
    return True


async def write_dom0_nodes(xs: XenStoreClient, *, memory_kib: int, nr_cpus: int) -> None:
    """dom0's nodes, as xen-init-dom0 writes them (idempotent)."""
    await xspaths.write_nodes(xs, xspaths.dom0_nodes(memory_kib=memory_kib, nr_cpus=nr_cpus))


async def _write_dom0(path: Path) -> None:
    xs = await XenStoreClient.connect(path)
    try:
        await write_dom0_nodes(
            xs, memory_kib=host_facts.memory_total_kib(), nr_cpus=host_facts.nr_cpus()
        )
    finally:
        await xs.close()


def _spawn_daemon(name: str, args: list[str]) -> None:
    # Both daemons fork and return once they serve (or with the reason they could not).
    run_sync(
        [sys.executable, "-c", *args],
        timeout=START_TIMEOUT,
        fix=f"read {under_root('/var/log/xenlite')} for {name}'s log",
    )


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostError(
            f"directory {path}",
            f"cannot be created: {exc.strerror or exc}",
            "run xenlite start as root (or set XENLITE_ROOT to a writable directory)",
        ) from None


def _answers(path: Path) -> bool:
    try:
        connect_unix(path, 2.0).close()
    except OSError:
        return False
    return True


def _is_python_daemon(pid: int) -> bool:
    """The pid still belongs to one of our daemons (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"xenlite" in cmdline
