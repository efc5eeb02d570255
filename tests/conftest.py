"""Shared test helpers: ../shared (an honest skip when absent) and xenlite's XenStore daemon.

``shared_dir`` is the corpus/oracles/specs tree. ``start_xenstored`` runs the daemon from this
checkout in a child process and ``xs_client`` opens raw xs_wire connections to it; the unit tests
(tests/unit/xenstore) and the integration tests both use them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from xenlite.xenstore.wire import Packet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XENLITE_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared tree (corpus, oracles, specs); skips the test when it is absent."""
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"../shared is not present at {SHARED} (set XENLITE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def xen_oracle_root(shared_dir: Path) -> Path:
    """The root of Debian's unpacked Xen packages (pygrub, the hotplug scripts): the
    oracle cache, made with ../shared's setup.sh when it is not there yet (a few MB of
    Debian packages, unpacked, never installed); skips when that cannot be done here."""
    cache = Path(os.environ.get("XEN_ORACLE_CACHE", Path.home() / ".cache" / "xen-oracles"))
    if not (cache / ".extracted").exists():
        setup = shared_dir / "tools/xen-oracles/setup.sh"
        made = subprocess.run(["sh", str(setup), str(cache)], capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        if made.returncode != 0:
            pytest.skip(f"Debian's Xen packages could not be unpacked under {cache}: "
                        f"{made.stderr.strip()[-300:]}")  # fmt: skip
    return cache / "root"


# -- xenlite's XenStore daemon in a child process, and a minimal wire client ---------------------

XENSTORED_RUN = (
    "import sys; from xenlite.xenstore.main import run; raise SystemExit(run(sys.argv[1:]))"
)
XENSTORED_START_TIMEOUT = 20.0


class WireClient:
    """One connection speaking raw xs_wire frames; replies are matched to requests by req_id."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        # Imported here, not at the top: every test loads this conftest, few speak xs_wire.
        from xenlite.xenstore import wire

        self.wire = wire
        self.sock = sock
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.decoder = wire.Decoder()
        self.queue: list[Packet] = []
        self.req = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, op: int, payload: bytes, tx: int = 0) -> int:
        self.req += 1
        self.sock.sendall(self.wire.Packet(op, self.req, tx, payload).encode())
        return self.req

    def recv(self) -> Packet:
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the daemon")
            self.queue += self.decoder.feed(data)
        return self.queue.pop(0)

    def reply(self, op: int, payload: bytes, tx: int = 0) -> tuple[int, bytes]:
        """Send one request and return its reply ``(op, payload)``, skipping watch events."""
        req = self.send(op, payload, tx)
        while True:
            p = self.recv()
            if p.op != self.wire.Op.WATCH_EVENT:
                assert p.req_id == req
                return p.op, p.payload


@pytest.fixture
def xs_client() -> Iterator[Callable[[Path], WireClient]]:
    """``xs_client(path)`` connects a WireClient; every one is closed at teardown.

    Safe to call from other threads (a list append is atomic).
    """
    opened: list[socket.socket] = []

    def connect(path: Path) -> WireClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        opened.append(sock)  # before connecting: a failed connect is closed too
        return WireClient(sock, path)

    yield connect
    while opened:
        opened.pop().close()


@pytest.fixture
def xenstored_argv() -> list[str]:
    """The command line that runs ``xenlite.xenstore.main`` from this checkout (add options)."""
    return [sys.executable, "-c", XENSTORED_RUN]


@pytest.fixture
def start_xenstored(
    xenstored_argv: list[str], xs_client: Callable[[Path], WireClient]
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``start_xenstored(sock, *options, log=None)`` runs the daemon in the foreground.

    It returns once a client can connect; its stderr goes to ``sock.stderr`` (shown when it
    dies at start), its log to ``log`` (default ``sock.log``). The test stops it; one still
    running at teardown is killed.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(sock: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        log = log or sock.with_suffix(".log")
        stderr = sock.with_suffix(".stderr")
        with open(stderr, "wb") as err:
            proc = subprocess.Popen(
                [*xenstored_argv, "--no-fork", "--socket", str(sock), "--log-file", str(log),
                 *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )  # fmt: skip
        started.append(proc)
        deadline = time.monotonic() + XENSTORED_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(stderr.read_text())
            try:
                xs_client(sock).close()
                return proc
            except OSError:
                time.sleep(0.02)
        proc.kill()
        raise AssertionError("daemon did not start")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
