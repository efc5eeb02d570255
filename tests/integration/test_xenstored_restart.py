"""--persist across kill -9: every acknowledged change survives, at any moment of the kill."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xenlite.xenstore.wire import Op

# The fixtures of tests/conftest.py: a daemon in a child process and raw wire clients.
StartXenstored = Callable[..., subprocess.Popen[bytes]]
XsClient = Callable[[Path], Any]


def writer(
    xs_client: XsClient,
    sock: Path,
    acked: list[tuple[bytes, bytes]],
    inflight: set[bytes],
    stop: threading.Event,
) -> None:
    """Write, remove and commit until the daemon dies; remember what was acknowledged.

    ``inflight`` names the paths of the request that may have been applied without its reply
    arriving before the kill: their state is read back, not predicted.
    """
    try:
        c = xs_client(sock)
        i = len(acked) * 100
        while not stop.is_set():
            path = b"/persist/d%d/n%d" % (i % 7, i)
            value = b"value-%d" % i
            inflight.add(path)
            assert c.reply(Op.WRITE, path + b"\0" + value) == (Op.WRITE, b"OK\0")
            acked.append((path, value))
            inflight.clear()
            if i % 5 == 4:
                old = acked[-3][0]
                inflight.add(old)
                assert c.reply(Op.RM, old + b"\0") == (Op.RM, b"OK\0")
                acked.append((old, b"<removed>"))
                inflight.clear()
            if i % 11 == 10:
                tx = int(c.reply(Op.TRANSACTION_START, b"\0")[1][:-1])
                c.reply(Op.WRITE, b"/persist/tx/a\0%d" % i, tx)
                c.reply(Op.WRITE, b"/persist/tx/b\0%d" % i, tx)
                inflight.update((b"/persist/tx/a", b"/persist/tx/b"))
                assert c.reply(Op.TRANSACTION_END, b"T\0", tx) == (Op.TRANSACTION_END, b"OK\0")
                acked.append((b"/persist/tx/a", b"%d" % i))
                acked.append((b"/persist/tx/b", b"%d" % i))
                inflight.clear()
            i += 1
    except (OSError, ConnectionError, ValueError):
        return


def expected_state(acked: list[tuple[bytes, bytes]]) -> dict[bytes, bytes | None]:
    state: dict[bytes, bytes | None] = {}
    for path, value in acked:
        state[path] = None if value == b"<removed>" else value
    return state


@pytest.mark.slow
def test_kill_9_at_random_moments_keeps_every_acknowledged_change(
    tmp_path: Path, start_xenstored: StartXenstored, xs_client: XsClient
) -> None:
    sock = tmp_path / "xs.sock"
    db = tmp_path / "xs.db"
    rng = random.Random(1234)
    acked: list[tuple[bytes, bytes]] = []
    inflight: set[bytes] = set()
    for _round in range(4):
        proc = start_xenstored(sock, "--persist", str(db))
        c = xs_client(sock)
        for path in inflight:  # applied or not: both are right, so learn which
            op, value = c.reply(Op.READ, path + b"\0")
            acked.append((path, value if op == Op.READ else b"<removed>"))
        inflight.clear()
        # Everything acknowledged in earlier rounds is there.
        for path, value in expected_state(acked).items():
            got = c.reply(Op.READ, path + b"\0")
            assert got == ((Op.READ, value) if value is not None else (Op.ERROR, b"ENOENT\0")), path
        c.reply(Op.SET_PERMS, b"/persist\0n0\0r5\0")
        acked_before = len(acked)
        stop = threading.Event()
        t = threading.Thread(target=writer, args=(xs_client, sock, acked, inflight, stop))
        t.start()
        time.sleep(rng.uniform(0.2, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        t.join(10)
        assert len(acked) > acked_before
    proc = start_xenstored(sock, "--persist", str(db))
    try:
        c = xs_client(sock)
        for path in inflight:
            op, value = c.reply(Op.READ, path + b"\0")
            acked.append((path, value if op == Op.READ else b"<removed>"))
        for path, value in expected_state(acked).items():
            got = c.reply(Op.READ, path + b"\0")
            assert got == ((Op.READ, value) if value is not None else (Op.ERROR, b"ENOENT\0"))
        assert c.reply(Op.GET_PERMS, b"/persist\0") == (Op.GET_PERMS, b"n0\0r5\0")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
