"""A domain's lifecycle state, its shutdown reason and the flags ``xl list`` prints.

xl.1 "list": the State column is six flags ``r b p s c d`` (running, blocked, paused,
shutdown, crashed, dying); xl.cfg(5) "Event Actions": a domain shuts down with a reason
(poweroff, reboot, suspend, crash, watchdog, soft_reset) and the toolstack applies the
matching on_* action. QEMU reports these through QMP (``SHUTDOWN`` with a reason,
``GUEST_PANICKED``), mapped here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from xenlite.base.errors import DomainStateError
from xenlite.config.domain.choices import Action
from xenlite.config.domain.model import DomainConfig
from xenlite.rpc.contract import ShutdownReason


class DomainState(StrEnum):
    """Where a domain is in its life."""

    CREATING = "creating"  # being built; not yet visible as a finished domain
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # shut down with a reason; kept when on_* says preserve
    CRASHED = "crashed"  # shut down with reason crash
    DYING = "dying"  # being destroyed


# QMP SHUTDOWN "reason" (qapi/run-state.json ShutdownCause) -> the reason Xen would give.
# host-qmp-quit and host-signal are absent: they are xenlite (or someone) stopping QEMU, which
# the engine sees as QEMU going away.
_QMP_SHUTDOWN_CAUSES: Mapping[str, ShutdownReason] = {
    "guest-shutdown": ShutdownReason.POWEROFF,
    "host-ui": ShutdownReason.POWEROFF,
    "guest-reset": ShutdownReason.REBOOT,
    "host-qmp-system-reset": ShutdownReason.REBOOT,
    "guest-panic": ShutdownReason.CRASH,
    "subsystem-reset": ShutdownReason.REBOOT,
}


def reason_from_qmp(event: str, data: Mapping[str, object]) -> ShutdownReason | None:
    """The shutdown reason a QMP event means, or None when it is not a guest shutdown."""
    if event == "GUEST_PANICKED":
        return ShutdownReason.CRASH
    if event == "SHUTDOWN":
        cause = data.get("reason")
        if isinstance(cause, str):
            return _QMP_SHUTDOWN_CAUSES.get(cause)
    return None


def action_for(config: DomainConfig, reason: ShutdownReason) -> Action:
    """The on_* action of ``config`` for ``reason`` (xl.cfg(5) "Event Actions").

    A suspend has no action of its own: xl leaves a suspended domain as it is.
    """
    if reason is ShutdownReason.POWEROFF:
        return config.on_poweroff
    if reason is ShutdownReason.REBOOT:
        return config.on_reboot
    if reason is ShutdownReason.CRASH:
        return config.on_crash
    if reason is ShutdownReason.WATCHDOG:
        return config.on_watchdog
    if reason is ShutdownReason.SOFT_RESET:
        return config.on_soft_reset
    return Action.PRESERVE


def state_after(reason: ShutdownReason) -> DomainState:
    """A crash shows as ``c``, every other reason as ``s``."""
    return DomainState.CRASHED if reason is ShutdownReason.CRASH else DomainState.SHUTDOWN


def xl_flags(state: DomainState, *, on_cpu: bool) -> str:
    """The six-character State column of ``xl list`` (``r-----``, ``-b----``, ``--p---``...).

    :param on_cpu: a vCPU is executing right now (r); otherwise a live domain is blocked (b)
    """
    running = state is DomainState.RUNNING and on_cpu
    blocked = state is DomainState.RUNNING and not on_cpu
    flags = (
        ("r", running),
        ("b", blocked),
        ("p", state is DomainState.PAUSED),
        ("s", state in (DomainState.SHUTDOWN, DomainState.CRASHED)),
        ("c", state is DomainState.CRASHED),
        ("d", state is DomainState.DYING),
    )
    return "".join(letter if on else "-" for letter, on in flags)


def require(name: str, state: DomainState, *allowed: DomainState, doing: str) -> None:
    """:raise DomainStateError: when ``state`` is not one of ``allowed``"""
    if state in allowed:
        return
    raise DomainStateError(
        f"domain '{name}' ({doing})",
        str(state),
        [str(s) for s in allowed],
        _fix_for(state, doing),
    )


def _fix_for(state: DomainState, doing: str) -> str:
    if state is DomainState.PAUSED:
        return f"unpause it first (xl unpause), then {doing}"
    if state in (DomainState.SHUTDOWN, DomainState.CRASHED):
        return "it has shut down and is kept as on_* asked; destroy it (xl destroy)"
    if state is DomainState.CREATING:
        return "wait until its creation has finished"
    if state is DomainState.DYING:
        return "it is being destroyed; wait a moment"
    return "check its state with xl list"
