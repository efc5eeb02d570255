"""Crash-only, step by step (issue 14): xenlited dies by SIGKILL at each step of ``xl create``
and of ``xl destroy`` (base/crashpoint.py picks the instant), and the next xenlited leaves the
host exactly as the interrupted operation promised: a create that did not report success
leaves nothing (no QEMU, record, run directory, socket, cgroup or XenStore node), and a
destroy that was asked for finishes. The same when xenstored dies (kill -9) under a create or
before a destroy: the create fails with a clear error and leaves nothing, the destroy finishes
without XenStore, and once xenstored is back xenlited reconnects by itself and sweeps the
nodes of domains that went away. A bystander domain runs on untouched throughout.

The state is read from outside the daemon (tests/hoststate.py), never from the daemon's own
answers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hoststate import HostState, host_state
from xenlite.base.crashpoint import ATTACH_POINTS, CREATE_POINTS, DESTROY_POINTS
from xenlite.base.proc import pid_alive

if TYPE_CHECKING:
    from tests.integration.conftest import LiveHost

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

SETTLE_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def host(bystander_host: LiveHost) -> LiveHost:
    return bystander_host


def _settles_to(host: LiveHost, expected: HostState) -> None:
    """The restarted daemon brings the host to ``expected`` (its rebuild runs before it
    serves, so this holds at once; the loop only reports what differs)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    state = host_state(host.root)
    while state != expected:
        assert time.monotonic() < deadline, (state, expected)
        time.sleep(0.1)
        state = host_state(host.root)


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_a_create_cut_short_leaves_nothing(host: LiveHost, point: str) -> None:
    before = host_state(host.root)
    host.crash_during(point, "create", str(host.write_config("halfway")))
    _settles_to(host, before)
    assert host.listed() == ["Domain-0", "bystander"]


@pytest.mark.parametrize("point", DESTROY_POINTS)
def test_a_destroy_cut_short_is_finished(host: LiveHost, point: str) -> None:
    before = host_state(host.root)
    created = host.xl("create", "-p", str(host.write_config("doomed")))
    assert created.returncode == 0, created.stderr
    host.crash_during(point, "destroy", "doomed")
    _settles_to(host, before)
    assert host.listed() == ["Domain-0", "bystander"]


def test_a_reboot_cut_short_between_old_and_new_domain_restarts(host: LiveHost) -> None:
    # on_reboot=restart tears the old domain down and builds a new one; a daemon killed in
    # between finds the restart note and builds it at its next start.
    before = host_state(host.root)
    created = host.xl("create", str(host.write_config("phoenix")))
    assert created.returncode == 0, created.stderr
    old = int(host.xl("domid", "phoenix").stdout)
    host.stop_xenlited()
    host.start(crash_at="restart:torn-down")
    dead = host.xenlited_pid()
    assert host.xl("reboot", "phoenix").returncode == 0
    deadline = time.monotonic() + 60
    while pid_alive(dead):
        assert time.monotonic() < deadline, "xenlited never reached restart:torn-down"
        time.sleep(0.05)
    host.start()
    assert host.listed() == ["Domain-0", "bystander", "phoenix"]
    assert int(host.xl("domid", "phoenix").stdout) > old
    assert host_state(host.root).restart_notes == ()
    assert host.xl("destroy", "phoenix").returncode == 0
    _settles_to(host, before)


# ---------------------------------------------------------------------- disks


def _disks(host: LiveHost, name: str) -> list[str]:
    listed = json.loads(host.xl("list", "-l", name).stdout)
    return [d["vdev"] for d in listed[0]["config"].get("disks", [])]


def _hot_image(tmp_path: Path) -> Path:
    image = tmp_path / "hot.img"
    with image.open("wb") as stream:
        stream.truncate(8 * 1024 * 1024)
    return image


@pytest.mark.parametrize("point", ATTACH_POINTS)
def test_a_block_attach_cut_short_is_undone(host: LiveHost, point: str, tmp_path: Path) -> None:
    # The record names the disk before QEMU has it: the next daemon finds no device for it
    # and detaches it (QEMU's nodes, XenStore's, the record entry), saying so in xl dmesg.
    start = host_state(host.root)
    assert host.xl("create", "-p", str(host.write_config("plugged"))).returncode == 0
    before = host_state(host.root)
    spec = f"{_hot_image(tmp_path)},raw,xvdb,w"
    host.crash_during(point, "block-attach", "plugged", spec)
    _settles_to(host, before)
    assert _disks(host, "plugged") == []
    assert "its attach or detach was cut short" in host.xl("dmesg").stdout
    # Nothing of it is left in QEMU either: the same disk attaches again (a node of its
    # name still there would make blockdev-add fail).
    again = host.xl("block-attach", "plugged", spec)
    assert again.returncode == 0, again.stderr
    assert _disks(host, "plugged") == ["xvdb"]
    assert host.xl("destroy", "plugged").returncode == 0
    _settles_to(host, start)


def test_a_block_detach_cut_short_after_the_guest_let_go_finishes(
    host: LiveHost, tmp_path: Path
) -> None:
    start = host_state(host.root)
    assert host.xl("create", str(host.write_config("unplugged"))).returncode == 0
    host.wait_ready("unplugged")
    before = host_state(host.root)
    spec = f"{_hot_image(tmp_path)},raw,xvdb,w"
    assert host.xl("block-attach", "unplugged", spec).returncode == 0
    host.crash_during("detach:device-deleted", "block-detach", "unplugged", "xvdb")
    _settles_to(host, before)
    assert _disks(host, "unplugged") == []
    again = host.xl("block-attach", "unplugged", spec)
    assert again.returncode == 0, again.stderr
    assert host.xl("destroy", "unplugged").returncode == 0
    _settles_to(host, start)


# ---------------------------------------------------------------------- xenstored dies


def _kill_xenstored(host: LiveHost) -> None:
    pid = int((host.root / "run/xenlite/xenstored.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "xenstored survived SIGKILL"
        time.sleep(0.01)


def test_xenstored_killed_during_create_then_back(host: LiveHost) -> None:
    before = host_state(host.root)
    creator = host.create_under_way(host.write_config("orphaned"))
    _kill_xenstored(host)
    _, err = creator.communicate(timeout=120)
    assert creator.returncode != 0, err
    assert "XenStore" in err, err
    assert "xenlite start" in err, err
    assert "Traceback" not in err, err
    # xenstored again, on its persisted store; xenlite start has xenlited reconnect at once
    # and returns when it has: a create right after must work.
    host.start()
    _settles_to(host, before)
    assert host.listed() == ["Domain-0", "bystander"]
    # The link is back: a create works again, and so does its destroy.
    created = host.xl("create", "-p", str(host.write_config("after")))
    assert created.returncode == 0, created.stderr
    assert host.xl("destroy", "after").returncode == 0
    _settles_to(host, before)


def test_destroy_while_xenstored_is_gone_finishes(host: LiveHost) -> None:
    before = host_state(host.root)
    created = host.xl("create", "-p", str(host.write_config("lonely")))
    assert created.returncode == 0, created.stderr
    _kill_xenstored(host)
    destroyed = host.xl("destroy", "lonely")
    assert destroyed.returncode == 0, destroyed.stderr
    host.start()
    _settles_to(host, before)  # its nodes, left in the persisted store, are swept
    assert host.listed() == ["Domain-0", "bystander"]
