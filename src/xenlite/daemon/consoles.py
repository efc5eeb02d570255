"""Guest consoles: every byte each guest writes to its serial port, kept in
/var/log/xenlite/console/guest-NAME.log, and where ``xl console`` attaches.

xl.1 "console" and xenconsoled(8) ``--log=guest``. The log is written by QEMU itself: the
serial chardev gets ``logfile=`` (see ``xenlite.qemu.argv``), so output is logged from the
first byte of the kernel, while no client is attached, and also while xenlited is down or
restarting (crash-only: a daemon-side reader would lose what the guest printed between a
``kill -9`` and the restart). The serial socket itself is left free for the one interactive
client, as xenconsoled serves one ``xl console`` at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xenlite.domain.manager import Domain

_TAIL_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConsoleInfo:
    """Where a domain's console is: the serial socket to attach to and the log of it."""

    domid: int
    name: str
    serial_socket: str
    log: str


def console_info(domain: Domain) -> ConsoleInfo:
    paths = domain.paths
    log = paths.console_log if paths.console_log is not None else Path(domain.record.console_log)
    return ConsoleInfo(
        domid=domain.domid,
        name=domain.name,
        serial_socket=os.fspath(paths.serial_socket),
        log=os.fspath(log),
    )


def read_tail(path: Path, max_bytes: int = _TAIL_LIMIT) -> bytes:
    """The last ``max_bytes`` of a console log (b"" when there is none yet)."""
    limit = min(max_bytes, _TAIL_LIMIT)
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - limit))
            return stream.read()
    except OSError:
        return b""
