"""The domain engine with real guests: xenstored + xenlited under a private host root
(``xenlite start``), guest-kit domains under TCG, driven through the RPC contract.

Covers create -> ready marker in the console log -> list -> pause/unpause -> ACPI shutdown ->
on_poweroff=destroy; on_reboot=restart (a NEW domid, as Xen); on_crash=preserve; kill -9 of
xenlited and its recovery; the cleanup after a failed create; @introduceDomain and
@releaseDomain seen by a XenStore client; two creates of one name.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xenlite.base.errors import DomainError, DomainNotFound, QemuLaunchError, XenStoreError
from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.config.domain.libxl_json import domain_config_to_json
from xenlite.guestkit.boot import READY_MARKER
from xenlite.guestkit.build import GuestKit, build_guest_kit
from xenlite.host.cgroups import remove_root_groups
from xenlite.qemu.process import qemu_pids_under
from xenlite.rpc.client import RpcClient
from xenlite.xenstore.client import XenStore

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

QEMU = shutil.which("qemu-system-x86_64")
BOOT_TIMEOUT = 25.0


@dataclass
class Host:
    root: Path
    kit: GuestKit

    def rpc(self) -> RpcClient:
        return RpcClient(self.root / "run/xenlite/xenlited.sock")

    def xenstore(self) -> XenStore:
        return XenStore.open(self.root / "run/xenstored/socket")

    def config(self, name: str, extra: str = "", **keys: str) -> dict[str, object]:
        path = self.root / f"{name}.cfg"
        lines = [
            f'name = "{name}"',
            f'kernel = "{self.kit.kernel}"',
            f'ramdisk = "{self.kit.initrd}"',
            "memory = 128",
            f'extra = "console=ttyS0 {extra}"',
        ]
        lines += [f'{key} = "{value}"' for key, value in keys.items()]
        path.write_text("\n".join(lines) + "\n")
        cfg = load_domain_config(os.fspath(path), host=HostFacts(nr_cpus=os.cpu_count() or 1))
        return domain_config_to_json(cfg.config)

    def create(self, name: str, extra: str = "", *, paused: bool = False, **keys: str) -> int:
        with self.rpc() as rpc:
            result = rpc.call(
                "domain.create",
                config=self.config(name, extra, **keys),
                config_text="",
                source=f"{name}.cfg",
                paused=paused,
            )
        assert isinstance(result, dict)
        domid = result["domid"]
        assert isinstance(domid, int)
        return domid

    def domains(self) -> dict[str, dict[str, object]]:
        with self.rpc() as rpc:
            rows = rpc.call("domain.list")
        assert isinstance(rows, list)
        return {str(row["name"]): row for row in rows if isinstance(row, dict)}

    def console(self, name: str) -> str:
        path = self.root / f"var/log/xenlite/console/guest-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_console(self, name: str, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.console(name).count(text) < count:
            assert time.monotonic() < deadline, f"{name}: no {text!r} in\n{self.console(name)}"
            time.sleep(0.1)

    def destroy(self, dom: str) -> None:
        with self.rpc() as rpc:
            rpc.call("domain.destroy", dom=dom)
            # Gone for good: a second destroy finds nothing.
            with pytest.raises(DomainNotFound):
                rpc.call("domain.destroy", dom=dom)

    def xenlited_pid(self) -> int:
        return int((self.root / "run/xenlite/xenlited.pid").read_text())


def _qemu_pids(root: Path) -> list[int]:
    return qemu_pids_under(root)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    if not Path("/bin/busybox").is_file() or shutil.which("apt-get") is None:
        pytest.skip("the guest kit needs busybox-static and apt-get")
    from xenlite.daemon.services import main_start, main_stop

    kit = build_guest_kit()
    # A short root: QEMU's own sockets live under it and unix socket paths are short.
    root = Path(tempfile.mkdtemp(prefix="xl", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("XENLITE_ROOT", "XENLITE_ACCEL", "XENLITED_SOCKET")}
    os.environ["XENLITE_ROOT"] = os.fspath(root)
    os.environ["XENLITE_ACCEL"] = "tcg"
    os.environ.pop("XENLITED_SOCKET", None)
    try:
        main_start(None, [])  # type: ignore[arg-type]
        yield Host(root, kit)
    finally:
        for pid in _qemu_pids(root):
            os.kill(pid, signal.SIGKILL)
        main_stop(None, [])  # type: ignore[arg-type]
        remove_root_groups(root)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)


def test_create_list_pause_unpause_and_acpi_poweroff_destroys(host: Host) -> None:
    domid = host.create("life", on_poweroff="destroy")
    host.wait_console("life", READY_MARKER)
    rows = host.domains()
    assert next(iter(rows)) == "Domain-0"
    row = rows["life"]
    assert row["domid"] == domid
    assert row["max_memkb"] == 128 * 1024
    assert not row["paused"]
    assert not row["shutdown"]
    assert isinstance(row["config"], dict)
    with host.rpc() as rpc:
        rpc.call("domain.pause", dom="life")
        assert host.domains()["life"]["paused"] is True
        rpc.call("domain.unpause", dom=str(domid))
        assert host.domains()["life"]["paused"] is False
        with host.xenstore() as xs:
            assert xs.read(f"/local/domain/{domid}/name") == b"life"
            uuid = xs.read(f"/local/domain/{domid}/vm").decode().rsplit("/", 1)[1]
        rpc.call("domain.shutdown", dom="life", reboot=False)
        rpc.call("domain.wait_gone", dom="life", timeout=25)
    assert "life" not in host.domains()
    assert "powering off" in host.console("life")
    with host.xenstore() as xs:
        assert not xs.exists(f"/local/domain/{domid}")
        assert not xs.exists(f"/vm/{uuid}")
        assert not xs.exists(f"/libxl/{domid}")
    assert not (host.root / f"var/lib/xenlite/domains/{domid}.json").exists()
    assert not (host.root / f"run/xenlite/qemu/{domid}").exists()


def test_reboot_with_on_reboot_restart_gives_a_new_domid(host: Host) -> None:
    first = host.create("reboots", "xenlite.reboot=1", on_reboot="restart")
    # The switch reboots on every boot: the second ready marker is the restarted domain's.
    host.wait_console("reboots", READY_MARKER, count=2)
    row = host.domains()["reboots"]
    assert row["domid"] != first
    assert isinstance(row["domid"], int)
    assert row["domid"] > first
    host.destroy("reboots")


def test_panic_with_on_crash_preserve_stays_listed_as_crashed(host: Host) -> None:
    domid = host.create("panics", "xenlite.panic=1", on_crash="preserve")
    host.wait_console("panics", READY_MARKER)
    deadline = time.monotonic() + BOOT_TIMEOUT
    while host.domains()["panics"]["shutdown_reason"] != "crash":
        assert time.monotonic() < deadline, host.console("panics")
        time.sleep(0.1)
    row = host.domains()["panics"]
    assert row["domid"] == domid
    assert row["shutdown"] is True
    with host.rpc() as rpc:
        with pytest.raises(DomainError):
            rpc.call("domain.pause", dom="panics")
        assert "crashed" in str(rpc.call("host.dmesg", clear=False))
    host.destroy("panics")


def test_kill_9_of_xenlited_loses_nothing(host: Host) -> None:
    from xenlite.daemon.services import main_start

    domid = host.create("survivor")
    host.wait_console("survivor", READY_MARKER)
    paused_id = host.create("sleeper", paused=True)
    before = host.domains()
    qemu_before = sorted(_qemu_pids(host.root))
    os.kill(host.xenlited_pid(), signal.SIGKILL)
    time.sleep(0.2)
    main_start(None, [])  # type: ignore[arg-type]
    after = host.domains()
    assert sorted(_qemu_pids(host.root)) == qemu_before  # no QEMU restarted
    for name in ("survivor", "sleeper"):
        for key in ("domid", "uuid", "paused", "shutdown", "start_time", "max_memkb"):
            assert after[name][key] == before[name][key], (name, key)
    assert after["survivor"]["domid"] == domid
    assert after["sleeper"]["paused"] is True
    # The new daemon drives them: events and operations work.
    with host.rpc() as rpc:
        rpc.call("domain.unpause", dom=str(paused_id))
        rpc.call("domain.shutdown", dom="survivor", reboot=False)
        rpc.call("domain.wait_gone", dom="survivor", timeout=25)
    host.wait_console("sleeper", READY_MARKER)
    host.destroy("sleeper")
    # Domain ids keep increasing across the restart.
    assert host.create("after", paused=True) > paused_id
    host.destroy("after")


def test_failed_create_leaves_nothing_and_shows_qemus_message(host: Host) -> None:
    with host.rpc() as rpc:
        highest = max(int(str(r["domid"])) for r in host.domains().values())
        bad = host.config("broken")
        bad["b_info"]["kernel"] = "/nonexistent/vmlinuz"  # type: ignore[index]
        qemu_before = sorted(_qemu_pids(host.root))
        with pytest.raises(QemuLaunchError) as info:
            rpc.call("domain.create", config=bad, config_text="", source="b.cfg", paused=False)
    assert "could not open kernel file '/nonexistent/vmlinuz'" in str(info.value)
    assert "broken" not in host.domains()
    assert sorted(_qemu_pids(host.root)) == qemu_before
    records = host.root / "var/lib/xenlite/domains"
    assert not [p for p in records.glob("*.json") if int(p.stem) > highest]
    run_dirs = [p for p in (host.root / "run/xenlite/qemu").iterdir() if int(p.name) > highest]
    assert run_dirs == []
    with host.xenstore() as xs:
        domains = xs.directory("/local/domain")
        assert all(int(d) <= highest for d in domains)
        for d in range(highest + 1, highest + 3):
            with pytest.raises(XenStoreError):
                xs.read(f"/libxl/{d}/type")


def test_introduce_and_release_fire_watches(host: Host) -> None:
    with host.xenstore() as xs:
        xs.watch("@introduceDomain", "intro")
        xs.watch("@releaseDomain", "rel")
        # Registering a watch fires it once.
        initial = {xs.read_watch(timeout=5)[1], xs.read_watch(timeout=5)[1]}
        assert initial == {"intro", "rel"}
        domid = host.create("watched", paused=True)
        assert xs.read_watch(timeout=10) == ("@introduceDomain", "intro")
        assert xs.read(f"/local/domain/{domid}/name") == b"watched"
        host.destroy("watched")
        assert xs.read_watch(timeout=10) == ("@releaseDomain", "rel")


def test_two_creates_of_one_name_one_wins(host: Host) -> None:
    host.create("twin", paused=True)
    with pytest.raises(DomainError) as info:
        host.create("twin", paused=True)
    assert "already in use" in str(info.value)
    assert [n for n in host.domains() if n == "twin"] == ["twin"]
    host.destroy("twin")


def test_qemu_that_dies_is_handled_as_a_crash(host: Host) -> None:
    kept = host.create("dies-kept", paused=True, on_crash="preserve")
    gone = host.create("dies-gone", paused=True, on_crash="destroy")
    for pid in _qemu_pids(host.root):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if f"qemu-dm-{kept},".encode() in cmdline or f"qemu-dm-{gone},".encode() in cmdline:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while "dies-gone" in host.domains() or host.domains()["dies-kept"]["shutdown_reason"] is None:
        assert time.monotonic() < deadline, host.domains()
        time.sleep(0.05)
    assert host.domains()["dies-kept"]["shutdown_reason"] == "crash"
    host.destroy("dies-kept")


def _wait_for(check: object, what: str, timeout: float = BOOT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_reboot_with_on_reboot_rename_restart_keeps_the_old_domain(host: Host) -> None:
    first = host.create("renamed", on_reboot="rename-restart")
    host.wait_console("renamed", READY_MARKER)
    with host.rpc() as rpc:
        rpc.call("domain.shutdown", dom="renamed", reboot=True)
    _wait_for(lambda: len(host.domains()) >= 3 and "renamed" in host.domains(), "no restart")
    rows = host.domains()
    kept = [name for name in rows if name.startswith("renamed-")]
    # xl's preserve_domain: NAME-YYYYmmddTHHMMZ, the old domid, a fresh uuid.
    assert len(kept) == 1, rows
    old = rows[kept[0]]
    assert old["domid"] == first
    assert old["shutdown_reason"] == "reboot"
    assert len(kept[0]) == len("renamed-") + len("20261202T1800Z")
    assert rows["renamed"]["domid"] > first
    assert rows["renamed"]["uuid"] != old["uuid"]
    for name in [*kept, "renamed"]:
        host.destroy(name)


def _cores(host: Host) -> list[Path]:
    return sorted((host.root / "var/lib/xen/dump").glob("*.core"))


def test_panic_with_on_crash_coredump_destroy_writes_a_core(host: Host) -> None:
    before = _cores(host)
    domid = host.create("dumped", "xenlite.panic=1", on_crash="coredump-destroy")
    _wait_for(lambda: "dumped" not in host.domains(), "not destroyed after its crash")
    cores = [c for c in _cores(host) if c not in before]
    assert [c.name.endswith(f"-dumped.{domid}.core") for c in cores] == [True]
    # A real ELF memory dump of the guest: its RAM (128 MiB) is in it.
    data = cores[0].read_bytes()
    assert data[:4] == b"\x7fELF"
    assert len(data) >= 128 * 1024 * 1024
    cores[0].unlink()


def test_panic_with_on_crash_coredump_restart_dumps_then_restarts(host: Host) -> None:
    before = _cores(host)
    first = host.create("phoenix", "xenlite.panic=1", on_crash="coredump-restart")
    # The switch panics on every boot: the second marker is the restarted domain's.
    host.wait_console("phoenix", READY_MARKER, count=2)
    _wait_for(lambda: host.domains().get("phoenix", {}).get("domid", first) != first, "same id")
    assert any(c.name.endswith(f"-phoenix.{first}.core") for c in _cores(host) if c not in before)
    host.destroy("phoenix")
    for core in _cores(host):
        if core not in before:
            core.unlink()


def test_poweroff_with_on_poweroff_soft_reset_keeps_the_domain(host: Host) -> None:
    domid = host.create("phoenix2", on_poweroff="soft-reset")
    host.wait_console("phoenix2", READY_MARKER)
    with host.rpc() as rpc:
        rpc.call("domain.shutdown", dom="phoenix2", reboot=False)
    # The same domain boots again: same domid, running, not shut down.
    host.wait_console("phoenix2", READY_MARKER, count=2)
    row = host.domains()["phoenix2"]
    assert row["domid"] == domid
    assert row["shutdown"] is False
    with host.rpc() as rpc:
        assert "soft reset" in str(rpc.call("host.dmesg", clear=False))
    host.destroy("phoenix2")
