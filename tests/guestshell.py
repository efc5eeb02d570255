"""Commands typed into a guest-kit domain's shell through the real ``xl console``.

The guest kit keeps a busybox shell on the serial console. The session turns the terminal's
echo and the prompt off, so the console carries only what commands print; ``run`` sends a
command followed by ``echo`` of its status and an arithmetic marker (the typed expression
never matches its value), so the output is known to be complete without waiting.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from fdwait import read_until

XL = Path(sys.executable).with_name("xl")
_COUNTER = itertools.count(1000)


class GuestShell:
    """``xl console NAME`` of ``host``'s domain, held open for several commands."""

    def __init__(self, host: Any, name: str, login: tuple[str, str] | None = None) -> None:
        """``login``: the user and password to give a getty on the console first (an
        installed system's, such as a Debian image's), not the kit's open shell."""
        self._pending = b""
        self._proc = subprocess.Popen(
            [str(XL), "console", name],
            env=host.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if login is not None:
            user, password = login
            self._exchange("", "login: ", 30.0)
            self._exchange(user, "Password: ", 30.0)
            # Typed-ahead lines are flushed by login: wait for root's prompt.
            self._exchange(password, "# ", 60.0)
            # bash's readline wraps each command line in bracketed-paste escapes.
            self._exchange("bind 'set enable-bracketed-paste off'", "# ", 30.0)
        # No echo of typed lines, no prompt and no kernel messages on the console (a hot-plug
        # makes the kernel log): what the shell prints is the commands' output.
        n = next(_COUNTER)
        setup = f'stty -echo; PS1=; dmesg -n 1; echo "@@$(({n} + 1))@@"'
        self._exchange(setup, f"@@{n + 1}@@\r\n", 30.0)

    def __enter__(self) -> GuestShell:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, str]:
        """``command``'s exit status and output (CR LF read as LF)."""
        n = next(_COUNTER)
        tail = f" {n + 1}@@\r\n"
        text = self._exchange(f'{command}; echo "@@$? $(({n} + 1))@@"', tail, timeout)
        output, _, status = text.removesuffix(tail).rpartition("@@")
        assert status.isdigit(), f"no exit status before {tail!r} in {text[-500:]!r}"
        return int(status), output.replace("\r\n", "\n")

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{line}\n".encode())
        self._proc.stdin.flush()

    def _exchange(self, line: str, until: str, timeout: float) -> str:
        """Send ``line``; what the console says up to and including ``until``. Bytes read
        past it (a message that came in the same read) are kept for the next exchange."""
        assert self._proc.stdout is not None
        self._send(line)
        wanted = until.encode()
        data = self._pending
        if wanted not in data:
            data += read_until(self._proc.stdout.fileno(), wanted, timeout)
        end = data.index(wanted) + len(wanted)
        self._pending = data[end:]
        return data[:end].decode(errors="replace")

    def close(self) -> None:
        """Detach (Ctrl-]); the domain keeps running."""
        proc = self._proc
        if proc.poll() is None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(b"\x1d")
                proc.stdin.flush()
                proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
