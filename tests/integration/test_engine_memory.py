"""Memory on real guests: admission control, xl mem-set through the virtio balloon, mem-max.

xl.1 "mem-set", "mem-max", "info"; xl's freemem(): a create that does not fit is refused
with the shortfall and leaves nothing behind; memory a balloon gives back is free memory.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BOOT_TIMEOUT = 30.0
BALLOON_TIMEOUT = 10.0


def _info(host: Any) -> dict[str, str]:
    result = host.xl("info")
    assert result.returncode == 0, result.stderr
    pairs = (line.partition(":") for line in result.stdout.splitlines())
    return {key.strip(): value.strip() for key, _, value in pairs}


def _mem(host: Any, name: str) -> int:
    result = host.xl("list", name)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.splitlines()[1].split()[2])


def test_mem_set_balloons_the_guest_and_frees_host_memory(live_host: Any) -> None:
    config = live_host.write_config("balloon", "maxmem = 256", memory=256)
    created = live_host.xl("create", "-q", str(config))
    assert created.returncode == 0, created.stderr
    live_host.wait_ready("balloon", timeout=BOOT_TIMEOUT)
    assert _mem(live_host, "balloon") == 256
    free_before = int(_info(live_host)["free_memory"])
    started = time.monotonic()
    assert live_host.xl("mem-set", "balloon", "128m").returncode == 0
    # xl list shows the balloon's actual size, which the guest's driver reports.
    while _mem(live_host, "balloon") != 128:
        assert time.monotonic() - started < BALLOON_TIMEOUT, _mem(live_host, "balloon")
        time.sleep(0.2)
    assert int(_info(live_host)["free_memory"]) == free_before + 128
    # And back up: the growth comes out of free memory again.
    assert live_host.xl("mem-set", "balloon", "192").returncode == 0
    while _mem(live_host, "balloon") != 192:
        assert time.monotonic() - started < 2 * BALLOON_TIMEOUT, _mem(live_host, "balloon")
        time.sleep(0.2)
    assert int(_info(live_host)["free_memory"]) == free_before + 64
    # Past the maximum: refused, with the maximum named.
    over = live_host.xl("mem-set", "balloon", "300")
    assert over.returncode != 0
    assert "above its maximum of 262144 KiB" in over.stderr
    # mem-max cannot grow past what QEMU was built with, nor go below the target.
    grow = live_host.xl("mem-max", "balloon", "512m")
    assert grow.returncode != 0
    assert "no memory hotplug" in grow.stderr
    low = live_host.xl("mem-max", "balloon", "100m")
    assert low.returncode != 0
    assert "below its current target" in low.stderr
    assert live_host.xl("mem-max", "balloon", "200m").returncode == 0
    bad = live_host.xl("mem-set", "balloon", "12q")
    assert bad.returncode == 1
    assert bad.stderr.startswith("invalid memory size: 12q")
    assert live_host.xl("destroy", "balloon").returncode == 0


def test_a_create_that_does_not_fit_is_refused_and_leaves_nothing(live_host: Any) -> None:
    info = _info(live_host)
    total = int(info["total_memory"])
    before = (live_host.qemu_pids(), live_host.records(), live_host.run_dirs())
    config = live_host.write_config("huge", memory=total + 1024)
    result = live_host.xl("create", "-q", str(config))
    assert result.returncode != 0
    assert "domain 'huge'" in result.stderr
    assert "short" in result.stderr
    assert (live_host.qemu_pids(), live_host.records(), live_host.run_dirs()) == before
    assert "huge" not in live_host.xl("list").stdout
    assert int(_info(live_host)["free_memory"]) == int(info["free_memory"])


def test_the_xend_floor_a_moved_host_keeps_bounds_ballooning(live_host_factory: Any) -> None:
    """Seed 003's /etc/xen/xend-config.sxp "(dom0-min-mem 1024)": xenlited reads it, says so
    in xl dmesg, and a create that would balloon dom0 below 1024 MB is refused naming that
    floor."""
    with live_host_factory() as host:
        host.restart_with({"/etc/xen/xend-config.sxp": "(dom0-min-mem 1024)\n"})
        xend = host.root / "etc/xen/xend-config.sxp"
        dmesg = host.xl("dmesg").stdout
        assert f"{xend}: dom0-min-mem: autoballoon on (xend's rule" in dmesg
        assert "dom0 balloons no lower than 1024 MB" in dmesg
        total = int(_info(host)["total_memory"])
        config = host.write_config("greedy", memory=total - 512)
        refused = host.xl("create", "-q", str(config))
        assert refused.returncode != 0
        assert "down to its floor of 1024 MiB" in refused.stderr
        assert host.qemu_pids() == []
