"""Lifecycle states, QMP event mapping, on_* action choice and xl's state flags."""

from __future__ import annotations

import pytest

from xenlite.base.errors import DomainStateError
from xenlite.config.domain.choices import Action
from xenlite.config.domain.model import DomainConfig
from xenlite.domain.state import (
    DomainState,
    action_for,
    reason_from_qmp,
    require,
    state_after,
    xl_flags,
)
from xenlite.rpc.contract import ShutdownReason


@pytest.mark.parametrize(
    ("event", "data", "reason"),
    [
        ("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"}, ShutdownReason.POWEROFF),
        ("SHUTDOWN", {"guest": True, "reason": "guest-reset"}, ShutdownReason.REBOOT),
        ("SHUTDOWN", {"guest": False, "reason": "host-qmp-system-reset"}, ShutdownReason.REBOOT),
        ("SHUTDOWN", {"guest": True, "reason": "guest-panic"}, ShutdownReason.CRASH),
        ("GUEST_PANICKED", {"action": "pause"}, ShutdownReason.CRASH),
        ("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"}, None),
        ("SHUTDOWN", {"guest": False, "reason": "host-signal"}, None),
        ("STOP", {}, None),
        ("RESUME", {}, None),
    ],
)
def test_qmp_events_map_to_xen_shutdown_reasons(
    event: str, data: dict[str, object], reason: ShutdownReason | None
) -> None:
    assert reason_from_qmp(event, data) is reason


def test_actions_follow_the_config() -> None:
    cfg = DomainConfig(
        on_poweroff=Action.DESTROY,
        on_reboot=Action.RESTART,
        on_crash=Action.PRESERVE,
        on_watchdog=Action.RESTART_RENAME,
        on_soft_reset=Action.SOFT_RESET,
    )
    assert action_for(cfg, ShutdownReason.POWEROFF) is Action.DESTROY
    assert action_for(cfg, ShutdownReason.REBOOT) is Action.RESTART
    assert action_for(cfg, ShutdownReason.CRASH) is Action.PRESERVE
    assert action_for(cfg, ShutdownReason.WATCHDOG) is Action.RESTART_RENAME
    assert action_for(cfg, ShutdownReason.SOFT_RESET) is Action.SOFT_RESET
    # xl leaves a suspended domain alone.
    assert action_for(cfg, ShutdownReason.SUSPEND) is Action.PRESERVE


def test_crash_shows_as_crashed_others_as_shutdown() -> None:
    assert state_after(ShutdownReason.CRASH) is DomainState.CRASHED
    assert state_after(ShutdownReason.POWEROFF) is DomainState.SHUTDOWN
    assert state_after(ShutdownReason.REBOOT) is DomainState.SHUTDOWN


@pytest.mark.parametrize(
    ("state", "on_cpu", "flags"),
    [
        (DomainState.RUNNING, True, "r-----"),
        (DomainState.RUNNING, False, "-b----"),
        (DomainState.PAUSED, False, "--p---"),
        (DomainState.SHUTDOWN, False, "---s--"),
        (DomainState.CRASHED, False, "---sc-"),
        (DomainState.DYING, False, "-----d"),
    ],
)
def test_xl_list_flags(state: DomainState, on_cpu: bool, flags: str) -> None:
    assert xl_flags(state, on_cpu=on_cpu) == flags


def test_require_names_the_state_and_what_is_needed() -> None:
    require("web01", DomainState.RUNNING, DomainState.RUNNING, doing="pause it")
    with pytest.raises(DomainStateError) as info:
        require("web01", DomainState.PAUSED, DomainState.RUNNING, doing="pause it")
    err = info.value
    assert err.state == "paused"
    assert err.required == ["running"]
    assert "web01" in str(err)
    assert err.fix is not None
    assert "unpause" in err.fix
