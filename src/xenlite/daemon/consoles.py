"""Guest consoles: every byte each guest writes to its serial port, kept in
/var/log/xenlite/console/guest-NAME.log, and where ``xl console`` attaches.

xl.1 "console" and xenconsoled(8) ``--log=guest``. The log is written by QEMU itself: the
serial chardev gets ``logfile=`` (see ``xenlite.qemu.argv``), so output is logged from the
first byte of the kernel, while no client is attached, and also while xenlited is down or
restarting (crash-only: a daemon-side reader would lose what the guest printed between a
``kill -9`` and the restart). The serial socket itself is left free for the one interactive
client, as xenconsoled serves one ``xl console`` at a time: :class:`ConsoleBroker` hands
that socket to one ``xl console`` (xenconsole's lock, kept here) and refuses a second.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import DomainError
from xenlite.base.sockets import connect_unix
from xenlite.domain.live import Domain
from xenlite.rpc.protocol import Event, JsonObject, Reply

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


# xenconsole's lock file (tools/console/client/main.c, console_lock()): xl names it when a
# second client tries to attach, and so does xenlite, which keeps the lock in xenlited.
XENCONSOLE_LOCK = "/var/lock/xenconsole.{domid}"
SERIAL_CONNECT_TIMEOUT = 5.0


class ConsoleBusy(DomainError):
    """Another ``xl console`` holds the domain's console (xenconsole's lock is taken).

    ``console_busy`` and ``lock_path`` travel to the CLI with the error, which prints
    xenconsole's own words for it.
    """

    def __init__(self, domain: Domain) -> None:
        self.console_busy = True
        self.lock_path = XENCONSOLE_LOCK.format(domid=domain.domid)
        super().__init__(
            f"console of domain '{domain.name}' ({domain.domid})",
            "another 'xl console' is attached to it (one interactive client at a time)",
            "detach the other client (Ctrl-] in its terminal), or read the console log "
            f"{console_info(domain).log}",
        )


class ConsoleBroker:
    """Hands out each domain's serial console to one interactive client at a time.

    The client gets a connected descriptor of QEMU's serial socket (SCM_RIGHTS) and relays
    the bytes itself, so no byte goes through xenlited. The stream that carried the
    descriptor stays open while the client is attached: when the client goes away (detach,
    exit or kill -9), the RPC server cancels it and the console is free again. QEMU serves one
    client per serial socket; a second one would wait unseen in its listen backlog, which is
    why the daemon says "busy" instead.
    """

    def __init__(self) -> None:
        self._attached: set[int] = set()

    def attached(self, domid: int) -> bool:
        return domid in self._attached

    async def attach(self, domain: Domain) -> AsyncIterator[Event | Reply]:
        """Yield one ``attached`` event carrying the console descriptor, then wait until the
        domain is gone (or the client leaves, which cancels this stream).

        :raise ConsoleBusy: when another client is attached
        :raise DomainError: when the domain's QEMU is not running
        """
        if domain.domid in self._attached:
            raise ConsoleBusy(domain)
        if domain.process is None or domain.gone.is_set():
            raise DomainError(
                f"console of domain '{domain.name}' ({domain.domid})",
                "its device model (QEMU) is not running, so there is no console to attach to",
                f"read what it printed in {console_info(domain).log}; xl destroy removes it",
            )
        info = console_info(domain)
        # Claimed before the first await: two attaches racing on the loop cannot both pass.
        self._attached.add(domain.domid)
        try:
            sock = await _connect_serial(domain, Path(info.serial_socket))
            yield Event("attached", _info_json(info), (sock.detach(),))
            await domain.gone.wait()
            yield Reply({"reason": "domain-gone", "domid": domain.domid})
        finally:
            self._attached.discard(domain.domid)


async def _connect_serial(domain: Domain, path: Path) -> socket.socket:
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(connect_unix, path, SERIAL_CONNECT_TIMEOUT),
            SERIAL_CONNECT_TIMEOUT + 1,
        )
    except OSError as exc:  # TimeoutError included
        reason = exc.strerror or "no connection within the timeout"
        raise DomainError(
            f"console of domain '{domain.name}' ({domain.domid})",
            f"cannot connect to QEMU's serial socket {path}: {reason}",
            "check that the domain's QEMU still runs (xl list); its output is also in "
            f"{console_info(domain).log}",
        ) from None


def _info_json(info: ConsoleInfo) -> JsonObject:
    return {
        "domid": info.domid,
        "name": info.name,
        "serial_socket": info.serial_socket,
        "log": info.log,
    }
