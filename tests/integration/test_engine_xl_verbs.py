"""xl's daily verbs as a user types them, on real guest-kit domains under TCG.

The seeds' lifecycle through the real ``xl`` program against a private host: create (-p, -q,
-F, key=value overrides), list (plain, -v, -l, filters), domid, domname, uptime (-s),
vm-list, pause/unpause, rename, dmesg (-c), info, shutdown (-w, -a, right after create),
reboot -w and destroy, each checked against xl's output formats (xl.1, ANCHORS.md).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xenlite.guestkit.boot import READY_MARKER

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BOOT_TIMEOUT = 30.0
LIST_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
# xl list's row: "%-40s %5d %5lu %5d     %s %8.1f"
LIST_ROW = re.compile(r"^(?P<name>\S.{39}) +(?P<id>\d+) +(?P<mem>\d+) +(?P<vcpus>\d+) {5}"
                      r"(?P<state>[r-][b-][p-][s-][c-][d-]) +(?P<time>\d+\.\d)$")  # fmt: skip


def _ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def _rows(host: Any) -> dict[str, dict[str, str]]:
    lines = _ok(host.xl("list")).splitlines()
    assert lines[0] == LIST_HEADER
    rows = {}
    for line in lines[1:]:
        match = LIST_ROW.match(line)
        assert match is not None, line
        rows[match["name"].strip()] = match.groupdict()
    return rows


def _wait_console(host: Any, name: str, count: int = 1) -> None:
    log = host.root / f"var/log/xenlite/console/guest-{name}.log"
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count(READY_MARKER) >= count:
            return
        assert time.monotonic() < deadline, f"{name}: no ready marker in\n{text}"
        time.sleep(0.1)


@pytest.fixture
def web(live_host: Any) -> Iterator[str]:
    """A running two-vCPU guest named web01, destroyed afterwards whatever happened."""
    config = live_host.write_config("web01", "vcpus = 2", memory=128)
    _ok(live_host.xl("create", "-q", str(config)))
    _wait_console(live_host, "web01")
    yield "web01"
    live_host.xl("destroy", "web01")


def test_list_forms_and_the_lookup_verbs(live_host: Any, web: str) -> None:
    rows = _rows(live_host)
    assert next(iter(rows)) == "Domain-0"
    assert rows["Domain-0"]["id"] == "0"
    row = rows[web]
    assert (row["mem"], row["vcpus"]) == ("128", "2")
    assert row["state"][2:] == "----"  # running or blocked, not paused/shut down/dying
    domid = row["id"]
    assert _ok(live_host.xl("domid", web)).strip() == domid
    assert _ok(live_host.xl("domname", domid)).strip() == web
    # A filter prints the header and that domain only.
    assert len(_ok(live_host.xl("list", web)).splitlines()) == 2
    verbose = _ok(live_host.xl("list", "-v", web)).splitlines()
    assert verbose[0].startswith(LIST_HEADER + "   UUID")
    uuid = verbose[1].split()[6]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", uuid)
    long = json.loads(_ok(live_host.xl("list", "-l", web)))
    assert long[0]["domid"] == int(domid)
    assert long[0]["config"]["c_info"]["name"] == web
    assert long[0]["config"]["b_info"]["max_memkb"] == 128 * 1024
    vm_list = _ok(live_host.xl("vm-list")).splitlines()
    assert vm_list[0].split() == ["UUID", "ID", "name"]
    assert any(line.split()[:3] == [uuid, domid, web] for line in vm_list[1:])
    missing = live_host.xl("domid", "no-such-domain")
    assert missing.returncode != 0
    assert "no-such-domain" in missing.stderr


def test_uptime_pause_unpause_and_rename(live_host: Any, web: str) -> None:
    uptime = _ok(live_host.xl("uptime")).splitlines()
    assert uptime[0].split() == ["Name", "ID", "Uptime"]
    assert any(line.split()[0] == web for line in uptime[1:])
    short = _ok(live_host.xl("uptime", "-s", web)).strip()
    assert re.fullmatch(rf"\d\d:\d\d:\d\d up +\d+:\d\d, {web} \(\d+\)", short), short
    _ok(live_host.xl("pause", web))
    assert _rows(live_host)[web]["state"] == "--p---"
    _ok(live_host.xl("unpause", web))
    assert _rows(live_host)[web]["state"][2] == "-"
    _ok(live_host.xl("rename", web, "web01-renamed"))
    rows = _rows(live_host)
    assert "web01-renamed" in rows
    assert web not in rows
    _ok(live_host.xl("rename", "web01-renamed", web))
    assert web in _rows(live_host)


def test_dmesg_clear_and_info(live_host: Any, web: str) -> None:
    log = _ok(live_host.xl("dmesg"))
    assert log.startswith("(XEN) Xen version")
    assert "(XEN) HVM: accelerator TCG" in log
    _ok(live_host.xl("dmesg", "-c"))
    assert _ok(live_host.xl("dmesg")) == ""
    info = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(":") for line in _ok(live_host.xl("info")).splitlines()
        )
    }
    for key in ("host", "nr_cpus", "total_memory", "free_memory", "xen_version", "xen_caps"):
        assert key in info, key
    assert int(info["free_memory"]) < int(info["total_memory"])
    assert info["xen_scheduler"] in ("credit", "credit2")


def test_shutdown_w_right_after_create_still_shuts_the_guest_down(live_host: Any) -> None:
    """The power button pressed while the kernel is still booting is not lost (Xen's
    control/shutdown waits for the guest, and so does xenlite's request)."""
    config = live_host.write_config("early")
    _ok(live_host.xl("create", "-q", str(config)))
    started = time.monotonic()
    done = live_host.xl("shutdown", "-w", "early", timeout=90)
    assert done.returncode == 0, done.stderr
    assert "Waiting for 1 domains" in done.stderr
    # xl sees the shutdown first and counts it; on_poweroff=destroy follows at once, so the
    # domain may still be listed (dying) for a moment after xl returns, as under Xen.
    assert re.search(r"Domain \d+ has been shut down, reason code 0", done.stderr)
    while "early" in _rows(live_host):
        assert time.monotonic() - started < 90, "the shut-down domain was never destroyed"
        time.sleep(0.05)
    assert time.monotonic() - started < 90


def test_reboot_w_then_shutdown_a_w(live_host: Any) -> None:
    for name in ("r1", "r2"):
        _ok(live_host.xl("create", "-q", str(live_host.write_config(name))))
        _wait_console(live_host, name)
    first = _rows(live_host)["r1"]["id"]
    rebooted = live_host.xl("reboot", "-w", "r1", timeout=60)
    assert rebooted.returncode == 0, rebooted.stderr
    assert f"Rebooting domain {first}" in rebooted.stderr
    assert f"Domain {first} has been shut down, reason code 1" in rebooted.stderr
    # on_reboot=restart (the default): the same name under a new domid, booting again.
    _wait_console(live_host, "r1", count=2)
    assert int(_rows(live_host)["r1"]["id"]) > int(first)
    down = live_host.xl("shutdown", "-a", "-w", timeout=120)
    assert down.returncode == 0, down.stderr
    assert "Waiting for 2 domains" in down.stderr
    deadline = time.monotonic() + 30  # shut down counts for -w; the destroy follows
    while list(_rows(live_host)) != ["Domain-0"]:
        assert time.monotonic() < deadline, _rows(live_host)
        time.sleep(0.05)


def test_create_paused_with_overrides_then_foreground(live_host: Any, tmp_path: Path) -> None:
    config = live_host.write_config("base")
    created = live_host.xl("create", "-p", str(config), 'name="over"', "memory=112")
    assert created.returncode == 0, created.stderr
    assert created.stderr.startswith(f"Parsing config from {config}")
    row = _rows(live_host)["over"]
    assert (row["mem"], row["state"]) == ("112", "--p---")
    _ok(live_host.xl("destroy", "over"))
    assert "over" not in _rows(live_host)
    # -F stays in the foreground until the domain is gone.
    fg = live_host.write_config("fg")
    follow = live_host.xl_popen("create", "-F", str(fg))
    _wait_console(live_host, "fg")
    assert follow.poll() is None  # still following the running domain
    _ok(live_host.xl("shutdown", "fg"))
    _, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    assert re.search(r"Waiting for domain fg \(domid \d+\) to die", err)
    assert "fg" not in _rows(live_host)


def test_create_reports_each_setting_without_effect(live_host: Any) -> None:
    # tsc_mode and max_grant_frames mean nothing without Xen: the create goes on and says so,
    # once each, on stderr as xl prints its warnings and in xl dmesg (config.settings).
    # So are keys xl skips for this domain (vncdisplay= without vnc=) and keys xl does not
    # know, which the parser warns about with their place in the file.
    config = live_host.write_config(
        "knobs", 'tsc_mode = "native"', "max_grant_frames = 64", "vncdisplay = 3", "frobnicate = 1"
    )
    created = live_host.xl("create", "-p", str(config))
    try:
        assert created.returncode == 0, created.stderr
        warnings = [line for line in created.stderr.splitlines() if line.startswith("warning:")]
        where = f"warning: {config}:"
        assert [w.split(": ", 2)[2] for w in warnings[:2]] == [
            "unknown key 'frobnicate' ignored by xl",
            "'vncdisplay' ignored by xl: a PV domain with this config does not use it",
        ]
        assert all(w.startswith(where) for w in warnings[:2])
        assert warnings[2:] == [
            "warning: tsc_mode: has no effect on a QEMU host (Xen's TSC emulation modes have "
            "no QEMU counterpart)",
            "warning: max_grant_frames: has no effect on a QEMU host (Xen grant tables do not "
            "exist here)",
        ]
        log = _ok(live_host.xl("dmesg"))
        assert log.count("(knobs): tsc_mode: has no effect on a QEMU host") == 1
        assert log.count("(knobs): max_grant_frames: has no effect on a QEMU host") == 1
        assert log.count("(knobs): config: ") == 2
        assert f"(knobs): config: {config}:" in log
        assert "'vncdisplay' ignored by xl: a PV domain" in log
    finally:
        live_host.xl("destroy", "knobs")


def test_dry_run_says_what_a_create_would_report_and_refuse(live_host: Any) -> None:
    config = live_host.write_config("dry", 'tsc_mode = "native"', "dm_restrict = 1")
    result = live_host.xl("create", "-n", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["b_info"]["dm_restrict"] == "True"  # xl's JSON, as ever
    assert "warning: tsc_mode: has no effect on a QEMU host" in result.stderr
    assert (
        "warning: dm_restrict: xl create would refuse it here: not in xenlite yet" in result.stderr
    )
