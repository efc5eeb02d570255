"""Crash-only, step by step (issue 14): xenlited dies by SIGKILL at each step of ``xl create``
and of ``xl destroy`` (base/crashpoint.py picks the instant), and the next xenlited leaves the
host exactly as the interrupted operation promised: a create that did not report success
leaves nothing (no QEMU, record, run directory, socket, cgroup or XenStore node), and a
destroy that was asked for finishes. A bystander domain runs on untouched throughout.

The state is read from outside the daemon (tests/hoststate.py), never from the daemon's own
answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import pytest

from hoststate import HostState, host_state

if TYPE_CHECKING:
    from tests.integration.conftest import LiveHost

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

CREATE_POINTS = [
    "create:record-saved",
    "create:qemu-spawned",
    "create:qemu-launched",
    "create:cgroup-joined",
    "create:qmp-connected",
    "create:nodes-written",
    "create:introduced",
    "create:unpaused",
]
DESTROY_POINTS = [
    "destroy:dying-saved",
    "destroy:qemu-stopped",
    "destroy:nodes-removed",
    "destroy:run-dir-removed",
]
SETTLE_TIMEOUT = 30.0

HostFactory = Callable[[], AbstractContextManager["LiveHost"]]


@pytest.fixture(scope="module")
def host(live_host_factory: HostFactory) -> Iterator[LiveHost]:
    with live_host_factory() as live:
        result = live.xl("create", "-p", str(live.write_config("bystander")))
        assert result.returncode == 0, result.stderr
        yield live


def _listed(host: LiveHost) -> list[str]:
    result = host.xl("list")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()[1:]]


def _settles_to(host: LiveHost, expected: HostState) -> None:
    """The restarted daemon brings the host to ``expected`` (its rebuild runs before it
    serves, so this holds at once; the loop only reports what differs)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    state = host_state(host.root)
    while state != expected:
        assert time.monotonic() < deadline, (state, expected)
        time.sleep(0.1)
        state = host_state(host.root)


def _crash_during(host: LiveHost, point: str, *xl_args: str) -> None:
    host.stop_xenlited()
    host.start(crash_at=point)
    dead = host.xenlited_pid()
    result = host.xl(*xl_args)
    assert result.returncode != 0, (point, result.stdout)
    assert "Traceback" not in result.stderr, result.stderr
    assert not _pid_alive(dead), f"xenlited did not reach {point}"
    host.start()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_a_create_cut_short_leaves_nothing(host: LiveHost, point: str) -> None:
    before = host_state(host.root)
    _crash_during(host, point, "create", str(host.write_config("halfway")))
    _settles_to(host, before)
    assert _listed(host) == ["Domain-0", "bystander"]


@pytest.mark.parametrize("point", DESTROY_POINTS)
def test_a_destroy_cut_short_is_finished(host: LiveHost, point: str) -> None:
    before = host_state(host.root)
    created = host.xl("create", "-p", str(host.write_config("doomed")))
    assert created.returncode == 0, created.stderr
    _crash_during(host, point, "destroy", "doomed")
    _settles_to(host, before)
    assert _listed(host) == ["Domain-0", "bystander"]
