"""Reading a file descriptor until some bytes arrive, under a deadline (console tests)."""

from __future__ import annotations

import os
import select
import time


def read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    """Everything read from ``fd`` up to and including ``wanted``; fails the test on EOF
    (a pty whose other side closed reads as EOF too) or when ``timeout`` runs out."""
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} in {data[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"EOF before {wanted!r}; got {data[-2000:]!r}"
            data += chunk
    return data
