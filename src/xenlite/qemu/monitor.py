"""Talk to a domain's QEMU over QMP: commands under timeouts, and a bounded event stream.

Not a Xen man page: libxl's ``libxl_qmp.c`` role, for ../shared/DESIGN.md's QMP socket per
domain. This is the only module that imports ``qemu.qmp`` (QEMU's own QMP library); its
errors become :class:`QemuError` / :class:`QemuCommandError` here.

``qemu.qmp`` puts every event in its default listener's unbounded queue and also appends it
to the listener's ``_history`` list, which nothing ever trims (STYLE.md §1). A monitor kept
for the life of a domain would grow by every event QEMU sends. That listener cannot be
removed, so :class:`Monitor` gives it a name filter no event matches (its public ``names``)
and registers its own listener, which hands each event synchronously to a bounded queue: the
oldest event is dropped, and counted, when nobody reads. Draining the default listener from
a task instead would still let a burst pile up in it before the task runs.

:func:`qmp_command` is a small blocking client for CLI-side use (no asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any

from qemu.qmp import (
    EventListener,
    ExecInterruptedError,
    ExecuteError,
    Message,
    QMPClient,
    QMPError,
    Runstate,
    StateError,
)

from xenlite.base.errors import QemuCommandError, QemuError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_EVENTS = 256
# Not a QEMU event name (they are upper case), so a listener filtering on it hears nothing.
_NO_EVENT = "xenlite: no event"
_RECONNECT_FIX = "check that the domain's QEMU still runs (xl list) and its QMP socket exists"


@dataclass(frozen=True, slots=True)
class QmpEvent:
    """One QMP event: its name, its data and QEMU's timestamp (seconds since the epoch)."""

    name: str
    data: Mapping[str, object]
    timestamp: float


@dataclass(frozen=True, slots=True)
class RunStatus:
    """``query-status``: QEMU's run state (running, paused, shutdown, guest-panicked, ...)."""

    status: str
    running: bool


@dataclass(frozen=True, slots=True)
class VcpuThread:
    """``query-cpus-fast``: one vCPU and the host thread that runs it."""

    cpu_index: int
    thread_id: int
    qom_path: str


@dataclass(frozen=True, slots=True)
class CpuSlot:
    """``query-hotpluggable-cpus``: one place a vCPU can be, plugged (``qom_path``) or not."""

    type: str
    props: tuple[tuple[str, int], ...]  # socket-id, core-id, thread-id (and die-id...)
    qom_path: str | None


class _BoundedListener(EventListener):
    """Hands each event straight to the monitor's bounded queue: no history, no backlog."""

    def __init__(self, offer: Callable[[Message], None]) -> None:
        super().__init__()
        self._offer = offer

    async def put(self, event: Message) -> None:
        self._offer(event)


class Monitor:
    """An asyncio QMP connection to one QEMU.

    Every request runs under a timeout. :meth:`events` yields events until QEMU hangs up.
    """

    def __init__(self, name: str = "qemu", *, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.name = name
        self.max_events = max_events
        self.dropped_events = 0
        self._qmp = QMPClient(name)
        # qemu.qmp's default listener cannot be removed; an impossible name filter makes it
        # accept nothing, so neither its queue nor its _history ever holds an event.
        self._qmp.events.names = {_NO_EVENT}
        self._qmp.register_listener(_BoundedListener(self._offer))
        self._queue: asyncio.Queue[QmpEvent | None] = asyncio.Queue(maxsize=max_events)
        self._watch_task: asyncio.Task[None] | None = None
        self._ended = False
        self._path = ""

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    @property
    def connected(self) -> bool:
        """True while the QMP session is up."""
        return self._qmp.runstate is Runstate.RUNNING

    @property
    def pending_events(self) -> int:
        """Events waiting in the bounded queue (at most ``max_events``)."""
        return self._queue.qsize()

    async def connect(
        self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Connect to QEMU's QMP socket and negotiate capabilities.

        :raise QemuError: when the socket does not answer as QMP within ``timeout``
        """
        self._path = os.fspath(path)
        try:
            async with asyncio.timeout(timeout):
                await self._qmp.connect(self._path)
        except TimeoutError:
            raise QemuError(
                f"QMP socket {self._path}", f"no QMP greeting within {timeout:g} s", _RECONNECT_FIX
            ) from None
        except QMPError as exc:
            raise QemuError(
                f"QMP socket {self._path}", f"cannot connect: {exc}", _RECONNECT_FIX
            ) from exc
        self._ended = False
        self._watch_task = asyncio.create_task(self._watch(), name=f"qmp-watch-{self.name}")

    async def disconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Close the connection (QEMU keeps running); idempotent."""
        try:
            async with asyncio.timeout(timeout):
                await self._qmp.disconnect()
        except (QMPError, EOFError, OSError, TimeoutError) as exc:
            # The peer went away first (QEMU quit or was killed): that ends the session too.
            log.debug("QMP %s: disconnect: %r", self._path, exc)
        if self._watch_task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._watch_task
            self._watch_task = None

    async def execute(
        self,
        cmd: str,
        args: Mapping[str, object] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """Run one QMP command and return its ``return`` value (a QMP payload).

        :raise QemuCommandError: when QEMU answers with an error (class and description)
        :raise QemuError: when not connected, the connection drops, or no answer in time
        """
        what = f"QMP command '{cmd}' on {self._path or self.name}"
        try:
            async with asyncio.timeout(timeout):
                return await self._qmp.execute(cmd, args)
        except ExecuteError as exc:
            raise QemuCommandError(what, exc.error_class, str(exc)) from exc
        except ExecInterruptedError as exc:
            raise QemuError(
                what, "QEMU closed the monitor before answering", _RECONNECT_FIX
            ) from exc
        except StateError as exc:
            raise QemuError(what, "the monitor is not connected", _RECONNECT_FIX) from exc
        except TimeoutError:
            raise QemuError(what, f"no answer within {timeout:g} s", _RECONNECT_FIX) from None
        except QMPError as exc:
            raise QemuError(what, f"failed: {exc}", _RECONNECT_FIX) from exc

    async def events(self) -> AsyncIterator[QmpEvent]:
        """Events in arrival order; the iteration ends when QEMU closes the connection."""
        while True:
            item = await self._queue.get()
            if item is None:
                # Leave the end marker for any other reader.
                self._queue.put_nowait(None)
                return
            yield item

    async def wait_event(self, *names: str, timeout: float) -> QmpEvent:
        """Consume events until one named in ``names`` arrives; the others are discarded.

        :raise QemuError: on timeout, or when QEMU hangs up first
        """
        what = f"QMP events on {self._path or self.name}"
        try:
            async with asyncio.timeout(timeout):
                async for event in self.events():
                    if event.name in names:
                        return event
        except TimeoutError:
            raise QemuError(what, f"no {'/'.join(names)} within {timeout:g} s", None) from None
        raise QemuError(what, f"QEMU closed the monitor before {'/'.join(names)}", None)

    async def wait_guest_reset(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a RESET the guest itself made (``guest: true``), such
        as the one SeaBIOS makes right after a warm reset; other events are consumed.

        :return: whether one came in time (False also when QEMU hung up)
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for event in self.events():
                    if event.name == "RESET" and event.data.get("guest") is True:
                        return True
        return False

    # ------------------------------------------------------------ typed commands

    async def query_status(self, *, timeout: float = DEFAULT_TIMEOUT) -> RunStatus:
        reply = await self.execute("query-status", timeout=timeout)
        return RunStatus(status=str(reply["status"]), running=bool(reply["running"]))

    async def stop(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Pause the vCPUs (xl pause)."""
        await self.execute("stop", timeout=timeout)

    async def cont(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Run the vCPUs (xl unpause, and the end of xl create)."""
        await self.execute("cont", timeout=timeout)

    async def system_powerdown(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Press the ACPI power button."""
        await self.execute("system_powerdown", timeout=timeout)

    async def system_reset(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Reset the machine (a SHUTDOWN event under ``-action reboot=shutdown``)."""
        await self.execute("system_reset", timeout=timeout)

    async def quit(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Make QEMU exit; QEMU hanging up before it answers counts as done."""
        try:
            await self.execute("quit", timeout=timeout)
        except QemuCommandError:
            raise
        except QemuError:
            if self.connected:
                raise

    async def query_cpus_fast(self, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[VcpuThread, ...]:
        """Each vCPU with the host thread id that runs it (for vcpu-pin and cgroups)."""
        reply = await self.execute("query-cpus-fast", timeout=timeout)
        return tuple(
            VcpuThread(int(cpu["cpu-index"]), int(cpu["thread-id"]), str(cpu["qom-path"]))
            for cpu in reply
        )

    async def query_hotpluggable_cpus(
        self, *, timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[CpuSlot, ...]:
        """Every vCPU slot of the machine up to maxcpus, in QEMU's order."""
        reply = await self.execute("query-hotpluggable-cpus", timeout=timeout)
        return tuple(
            CpuSlot(
                str(slot["type"]),
                tuple(sorted((str(k), int(v)) for k, v in slot["props"].items())),
                str(slot["qom-path"]) if "qom-path" in slot else None,
            )
            for slot in reply
        )

    async def balloon(self, target_bytes: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Ask the balloon driver to bring the guest to ``target_bytes`` (xl mem-set)."""
        await self.execute("balloon", {"value": int(target_bytes)}, timeout=timeout)

    async def query_balloon(self, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        """The guest's memory as the balloon reports it, in bytes."""
        reply = await self.execute("query-balloon", timeout=timeout)
        return int(reply["actual"])

    async def base_memory_bytes(self, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        """The RAM QEMU gave the guest at start (``-m``), without hotplugged memory."""
        reply = await self.execute("query-memory-size-summary", timeout=timeout)
        return int(reply["base-memory"])

    async def set_vnc_password(self, password: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Set the VNC server's password (QEMU started it with ``password=on``)."""
        await self.execute("set_password", {"protocol": "vnc", "password": password},
                           timeout=timeout)  # fmt: skip

    async def vnc_address(self, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, int] | None:
        """The (host, port) the VNC server listens on, None when it has none."""
        reply = await self.execute("query-vnc", timeout=timeout)
        if not reply.get("enabled") or "service" not in reply:
            return None
        return str(reply["host"]), int(reply["service"])

    async def inject_nmi(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send an NMI to the guest (xl trigger nmi)."""
        await self.execute("inject-nmi", timeout=timeout)

    async def send_key(
        self,
        keys: Sequence[str],
        *,
        hold_time_ms: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Press ``keys`` together, by QEMU qcode (e.g. ``["ctrl", "alt", "delete"]``)."""
        args: dict[str, object] = {"keys": [{"type": "qcode", "data": key} for key in keys]}
        if hold_time_ms is not None:
            args["hold-time"] = hold_time_ms
        await self.execute("send-key", args, timeout=timeout)

    async def human_monitor_command(self, command: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run a human-monitor (HMP) command and return what it printed."""
        reply = await self.execute(
            "human-monitor-command", {"command-line": command}, timeout=timeout
        )
        return str(reply)

    async def dump_guest_memory(self, path: str | os.PathLike[str], *, timeout: float) -> None:
        """Write the guest's memory to ``path`` as an ELF core (xl dump-core, coredump-*).

        QEMU pauses the guest while it dumps and restores its run state afterwards.
        """
        args = {"paging": False, "protocol": f"file:{os.fspath(path)}", "detach": False}
        await self.execute("dump-guest-memory", args, timeout=timeout)

    # ------------------------------------------------------------ the event stream

    async def _watch(self) -> None:
        """Put the end marker once the session leaves RUNNING (QEMU hung up or we did)."""
        try:
            while self._qmp.runstate is Runstate.RUNNING:
                await self._qmp.runstate_changed()
        finally:
            self._end()

    def _offer(self, message: Message) -> None:
        stamp = message.get("timestamp")
        seconds = 0.0
        if isinstance(stamp, dict):
            seconds = float(stamp.get("seconds", 0)) + float(stamp.get("microseconds", 0)) / 1e6
        data = message.get("data")
        payload: dict[str, object] = dict(data) if isinstance(data, dict) else {}
        event = QmpEvent(str(message.get("event")), MappingProxyType(payload), seconds)
        if self._queue.full():
            dropped = self._queue.get_nowait()
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning(
                    "QMP %s: event queue full (%d); dropped %d events so far, latest %s",
                    self._path,
                    self.max_events,
                    self.dropped_events,
                    dropped.name if dropped is not None else "end",
                )
        self._queue.put_nowait(event)

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped_events += 1
        self._queue.put_nowait(None)


def qmp_command(
    path: str | os.PathLike[str],
    cmd: str,
    args: Mapping[str, object] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Connect, run one QMP command, hang up: a blocking client for the CLI side.

    :raise QemuCommandError: when QEMU answers with an error
    :raise QemuError: when the socket cannot be reached or does not answer in time
    """
    where = os.fspath(path)
    what = f"QMP command '{cmd}' on {where}"
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(where)
            reader = _LineReader(sock, deadline)
            greeting = reader.message()
            if "QMP" not in greeting:
                raise QemuError(what, f"no QMP greeting, got {greeting!r:.200}", _RECONNECT_FIX)
            _exchange(sock, reader, {"execute": "qmp_capabilities", "id": "caps"}, what)
            request: dict[str, object] = {"execute": cmd, "id": "cmd"}
            if args is not None:
                request["arguments"] = dict(args)
            return _exchange(sock, reader, request, what)
    except TimeoutError:
        raise QemuError(what, f"no answer within {timeout:g} s", _RECONNECT_FIX) from None
    except OSError as exc:
        raise QemuError(
            what, f"cannot talk to QEMU: {exc.strerror or exc}", _RECONNECT_FIX
        ) from None


class _LineReader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = b""

    def message(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("QEMU closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise OSError(f"QEMU sent something that is not a QMP message: {line[:200]!r}")
        return message


def _exchange(
    sock: socket.socket, reader: _LineReader, request: dict[str, object], what: str
) -> Any:
    sock.sendall(json.dumps(request).encode() + b"\n")
    while True:
        message = reader.message()
        if message.get("id") != request["id"]:
            continue  # an event, or a reply to nothing of ours
        if "error" in message:
            error = message["error"]
            raise QemuCommandError(what, str(error.get("class")), str(error.get("desc")))
        return message.get("return")


__all__ = [
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_TIMEOUT",
    "Monitor",
    "QmpEvent",
    "RunStatus",
    "VcpuThread",
    "qmp_command",
]
