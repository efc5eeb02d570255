"""Steps of a long command on the terminal: on a tty each step's line ticks (a spinner and
the seconds so far) until it ends; elsewhere (a pipe, a log, CI) one plain line per step,
written when it ends."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

_SPINNER = "|/-\\"
_TICK = 0.1


class StepDisplay:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        stop = threading.Event()
        ticker = None
        if self.live:
            ticker = threading.Thread(target=self._tick, args=(title, started, stop), daemon=True)
            ticker.start()
        outcome = "failed"
        try:
            yield
            outcome = "done"
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
            seconds = time.monotonic() - started
            prefix = "\r\033[K" if self.live else ""
            self.stream.write(f"{prefix}{title} ... {outcome} ({seconds:.1f} s)\n")
            self.stream.flush()

    def _tick(self, title: str, started: float, stop: threading.Event) -> None:
        turn = 0
        while not stop.wait(_TICK if turn else 0):
            seconds = time.monotonic() - started
            spin = _SPINNER[turn % len(_SPINNER)]
            self.stream.write(f"\r\033[K{title} ... {spin} {seconds:.1f} s")
            self.stream.flush()
            turn += 1
