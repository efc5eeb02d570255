"""The xl lifecycle verbs end to end against a fake xenlited at the real seam.

The daemon is a double here (the domain engine is tested on its own): a real
``xenlite.rpc.server.RpcServer`` on a temporary unix socket, serving canned DomainInfo data
and recording every call, so the CLI goes through the real RpcClient, framing, handshake and
error transport. ``XENLITED_SOCKET`` points the CLI at it; the CLI runs in-process.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpc_harness import ServerThread
from xenlite.base.errors import DeviceNotFound, DomainNotFound
from xenlite.cli import main as cli_main
from xenlite.cli.commands import domains as domain_verbs

UUID0 = "00000000-0000-0000-0000-000000000000"
UUID3 = "6c2bd4a0-5b4c-4d1e-9a40-7b3f0f2e0a03"
UUID5 = "0f8e1c52-9d7a-4f0e-8f3c-2b9d6a1e4c05"
START3 = 1_700_000_000.0
WEB01_CONFIG = {"c_info": {"type": "pv", "name": "web01", "uuid": UUID3}, "on_reboot": "restart"}


def _domain(domid: int, name: str, uuid: str, **changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "domid": domid,
        "name": name,
        "uuid": uuid,
        "current_memkb": 1048576,
        "outstanding_memkb": 0,
        "max_memkb": 1048576,
        "vcpu_online": 2,
        "max_vcpus": 2,
        "running": False,
        "blocked": True,
        "paused": False,
        "shutdown": False,
        "dying": False,
        "shutdown_reason": None,
        "cpupool": "Pool-0",
        "cpu_time_ns": 12_300_000_000,
        "start_time": START3,
        "config": None,
    }
    info.update(changes)
    return info


class FakeDaemon:
    """Canned domains and the handlers of the engine contract; every call is recorded.

    ``on_shutdown`` says what a shut-down guest does on the following ``domain.list`` calls:
    a list of steps, each a dict of field updates or "gone".
    """

    def __init__(self) -> None:
        self.domains: dict[int, dict[str, Any]] = {
            0: _domain(
                0,
                "Domain-0",
                UUID0,
                current_memkb=768000,
                vcpu_online=4,
                running=True,
                blocked=False,
                cpu_time_ns=11794312345678,
            ),
            3: _domain(3, "web01", UUID3, config=WEB01_CONFIG),
            5: _domain(5, "db01", UUID5, paused=True, blocked=False, cpu_time_ns=0),
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.after_shutdown: list[dict[str, Any] | str] = []
        self.pending: dict[int, list[dict[str, Any] | str]] = {}
        self.next_domid = 7
        self.dmesg = "(XEN) Xen version 4.17 (xenlite)\n(XEN) Command line: dom0_mem=750M\n"

    def _find(self, dom: str) -> dict[str, Any]:
        if dom.isdigit() and int(dom) in self.domains:
            return self.domains[int(dom)]
        for info in self.domains.values():
            if info["name"] == dom:
                return info
        raise DomainNotFound(f"domain {dom}", "no such domain", "'xl list' shows the domains")

    def handlers(self) -> dict[str, Any]:
        async def domain_list() -> list[dict[str, Any]]:
            self.calls.append(("domain.list", {}))
            for domid, steps in list(self.pending.items()):
                step = steps.pop(0)
                if step == "gone":
                    del self.domains[domid]
                else:
                    assert isinstance(step, dict)
                    self.domains[domid].update(step)
                if not steps:
                    del self.pending[domid]
            return [copy.deepcopy(self.domains[d]) for d in sorted(self.domains)]

        async def pause(dom: str) -> dict[str, Any]:
            self.calls.append(("domain.pause", {"dom": dom}))
            self._find(dom).update(paused=True, blocked=False)
            return {}

        async def unpause(dom: str) -> dict[str, Any]:
            self.calls.append(("domain.unpause", {"dom": dom}))
            self._find(dom).update(paused=False, blocked=True)
            return {}

        async def destroy(dom: str) -> dict[str, Any]:
            self.calls.append(("domain.destroy", {"dom": dom}))
            del self.domains[self._find(dom)["domid"]]
            return {}

        async def rename(dom: str, name: str) -> dict[str, Any]:
            self.calls.append(("domain.rename", {"dom": dom, "name": name}))
            self._find(dom)["name"] = name
            return {}

        async def shutdown(dom: str, reboot: bool) -> dict[str, Any]:
            self.calls.append(("domain.shutdown", {"dom": dom, "reboot": reboot}))
            info = self._find(dom)
            if self.after_shutdown:
                self.pending[info["domid"]] = list(self.after_shutdown)
            return {}

        async def create(
            config: dict[str, Any],
            config_text: str,
            source: str,
            paused: bool,
            parser_warnings: list[str],
        ) -> dict[str, Any]:
            self.calls.append(
                (
                    "domain.create",
                    {
                        "config": config,
                        "config_text": config_text,
                        "source": source,
                        "paused": paused,
                        "parser_warnings": parser_warnings,
                    },
                )
            )
            domid = self.next_domid
            self.next_domid += 1
            name = config["c_info"]["name"]
            self.domains[domid] = _domain(
                domid,
                name,
                config["c_info"].get("uuid", UUID5.replace("05", "07")),
                paused=paused,
                config=config,
            )
            if self.after_shutdown:
                self.pending[domid] = list(self.after_shutdown)
            return {"domid": domid, "name": name}

        async def host_info() -> list[list[Any]]:
            self.calls.append(("host.info", {}))
            return [
                ["host", "scarlett"],
                ["release", "6.1.0-13-amd64"],
                ["nr_cpus", 4],
                ["virt_caps", "hvm hvm_directio"],
                ["free_memory", 4274],
                ["free_cpus", 0],
                ["xend_config_format", 4],
            ]

        async def ended(domid: int) -> dict[str, Any]:
            self.calls.append(("domain.ended", {"domid": domid}))
            return {"known": True, "shutdown_reason": self.ended_reason}

        async def host_dmesg(clear: bool) -> dict[str, Any]:
            self.calls.append(("host.dmesg", {"clear": clear}))
            text = self.dmesg
            if clear:
                self.dmesg = ""
            return {"text": text}

        async def block_attach(dom: str, disk: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(("domain.block_attach", {"dom": dom, "disk": disk}))
            return {"devid": 51728, "vdev": disk["vdev"]}

        async def block_detach(dom: str, disk: str, force: bool) -> dict[str, Any]:
            self.calls.append(("domain.block_detach", {"dom": dom, "disk": disk, "force": force}))
            if disk != "xvdb":
                raise DeviceNotFound(f"disk {disk}", "the domain has no such disk", "xl block-list")
            return {}

        async def cdrom_insert(dom: str, disk: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(("domain.cdrom_insert", {"dom": dom, "disk": disk}))
            return {"devid": 5632, "vdev": disk["vdev"]}

        async def network_attach(dom: str, nic: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(("domain.network_attach", {"dom": dom, "nic": nic}))
            return {"devid": 1, "mac": "00:16:3e:00:00:01", "tap": "vif3.1"}

        async def network_detach(dom: str, nic: str) -> dict[str, Any]:
            self.calls.append(("domain.network_detach", {"dom": dom, "nic": nic}))
            if nic not in ("1", "00:16:3e:00:00:01"):
                raise DeviceNotFound(f"vif {nic}", "the domain has no such vif", "xl network-list")
            return {}

        return {
            "domain.network_attach": network_attach,
            "domain.network_detach": network_detach,
            "domain.cdrom_insert": cdrom_insert,
            "domain.block_attach": block_attach,
            "domain.block_detach": block_detach,
            "domain.list": domain_list,
            "domain.pause": pause,
            "domain.unpause": unpause,
            "domain.destroy": destroy,
            "domain.rename": rename,
            "domain.shutdown": shutdown,
            "domain.create": create,
            "domain.ended": ended,
            "host.info": host_info,
            "host.dmesg": host_dmesg,
        }

    ended_reason: str | None = None  # how a domain that vanished between polls had ended

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    fake = FakeDaemon()
    # A short directory: unix socket paths are limited to 108 bytes.
    with tempfile.TemporaryDirectory(prefix="xl-", dir="/tmp") as tmp:
        path = Path(tmp) / "xenlited.sock"
        thread = ServerThread(path, fake.handlers())
        monkeypatch.setenv("XENLITED_SOCKET", str(path))
        monkeypatch.setattr(domain_verbs, "POLL_FIRST_S", 0.01)
        monkeypatch.setattr(domain_verbs, "POLL_MAX_S", 0.02)
        try:
            yield fake
        finally:
            thread.close()


def xl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli_main.main(["xl", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


LIST = [
    "Name                                        ID   Mem VCPUs\tState\tTime(s)",
    "Domain-0                                     0   750     4     r-----   11794.3",
    "web01                                        3  1024     2     -b----      12.3",
    "db01                                         5  1024     2     --p---       0.0",
]


# --------------------------------------------------------------------------- list & co


def test_list_prints_xls_table(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = xl(capsys, "list")
    assert (status, err) == (0, "")
    assert out.splitlines() == LIST


def test_list_filters_by_name_and_id(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert xl(capsys, "list", "web01")[1].splitlines() == [LIST[0], LIST[2]]
    assert xl(capsys, "list", "5", "Domain-0")[1].splitlines() == [LIST[0], LIST[3], LIST[1]]


def test_list_of_unknown_domain_prints_xls_error(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = xl(capsys, "list", "nosuch")
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == "nosuch is an invalid domain identifier (rc=-6)"
    status, out, err = xl(capsys, "list", "42")
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == "Error: Domain '42' does not exist."


def test_list_verbose_and_long(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = xl(capsys, "list", "-v", "web01")
    assert status == 0
    assert out.splitlines()[1] == LIST[2] + f" {UUID3}        -                -"
    status, out, _ = xl(capsys, "list", "-l")
    assert status == 0
    # Only web01 has a stored config; Domain-0 and db01 are skipped, as xl skips them.
    assert json.loads(out) == [{"domid": 3, "config": WEB01_CONFIG}]
    assert out.startswith('[\n    {\n        "domid": 3,\n')


def test_list_refuses_what_it_cannot_show(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = xl(capsys, "list", "-n")
    assert (status, out) == (1, "")
    assert "NUMA" in err
    assert "fix:" in err
    assert daemon.calls == []


def test_list_c_appends_the_cpupool_column_as_xl(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.domains[3]["cpupool"] = "credit-pool"
    status, out, _ = xl(capsys, "list", "-c")
    assert status == 0
    # xl_info.c: the header gains "         Cpupool", each row a "%16s" pool name.
    assert out.splitlines() == [
        LIST[0] + "         Cpupool",
        LIST[1] + "          Pool-0",
        LIST[2] + "     credit-pool",
        LIST[3] + "          Pool-0",
    ]


def test_vm_list_domid_domname(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = xl(capsys, "vm-list")
    assert status == 0
    assert out.splitlines() == [
        "UUID                                  ID    name",
        f"{UUID3}  3    web01                         ",
        f"{UUID5}  5    db01                          ",
    ]
    assert xl(capsys, "domid", "db01")[:2] == (0, "5\n")
    assert xl(capsys, "domname", "3")[:2] == (0, "web01\n")
    status, _, err = xl(capsys, "domid", "nosuch")
    assert status == 1
    assert err.startswith(
        "Can't get domid of domain name 'nosuch', maybe this domain does not exist.\n"
    )
    status, _, err = xl(capsys, "domname", "9")
    assert status == 1
    assert err.startswith(
        "Can't get domain name of domain id '9', maybe this domain does not exist.\n"
    )
    status, _, err = xl(capsys, "domname", "web01")
    assert status == 1
    assert err.startswith("Invalid domain id.\n\n")


def test_uptime_long_and_short(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(domain_verbs, "host_uptime", lambda: 3 * 86400 + 14706)
    monkeypatch.setattr(domain_verbs.time, "time", lambda: START3 + 3723.9)
    status, out, _ = xl(capsys, "uptime")
    assert status == 0
    assert out.splitlines() == [
        "Name                                ID Uptime",
        "Domain-0                             0 3 days,  4:05:06",
        "web01                                3  1:02:03",
        "db01                                 5  1:02:03",
    ]
    status, out, _ = xl(capsys, "uptime", "-s", "web01")
    assert status == 0
    assert out.endswith(" up  1:02, web01 (3)\n")
    assert out[0] == " "  # " HH:MM:SS up ...", the local time of day
    assert out[3] + out[6] == "::"
    status, _, err = xl(capsys, "uptime", "nosuch")
    assert status == 1
    assert err.startswith("nosuch is an invalid domain identifier (rc=-6)\n")


# --------------------------------------------------------------------------- state changes


def test_pause_unpause_rename_by_name_send_the_domid(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert xl(capsys, "pause", "web01") == (0, "", "")
    assert daemon.calls[-1] == ("domain.pause", {"dom": "3"})
    assert xl(capsys, "list", "web01")[1].splitlines()[1].split()[4] == "--p---"
    before = len(daemon.calls)
    assert xl(capsys, "unpause", "3")[0] == 0
    # A domid is passed on without a lookup (xl's find_domain): one call only.
    assert daemon.calls[before:] == [("domain.unpause", {"dom": "3"})]
    assert xl(capsys, "rename", "web01", "www")[0] == 0
    assert daemon.calls[-1] == ("domain.rename", {"dom": "3", "name": "www"})
    assert xl(capsys, "domid", "www")[1] == "3\n"


def test_verb_on_unknown_domain(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = xl(capsys, "pause", "nosuch")
    assert status == 1
    assert err.startswith("nosuch is an invalid domain identifier (rc=-6)\n")
    assert "domain.pause" not in daemon.methods()
    # An id goes to the daemon, whose error the user sees as it raised it.
    status, _, err = xl(capsys, "pause", "42")
    assert status == 1
    assert err.startswith("xl: domain 42: no such domain\n")


def test_destroy_refuses_domain0(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = xl(capsys, "destroy", "0")
    assert status == 1
    assert err == (
        "Not destroying domain 0; use -f to force.\n"
        "This can only be done when using a disaggregated hardware domain and toolstack.\n\n"
    )
    status, _, err = xl(capsys, "destroy", "-f", "Domain-0")
    assert status == 1
    assert "Domain-0 is this host itself" in err
    assert "domain.destroy" not in daemon.methods()
    assert xl(capsys, "destroy", "db01") == (0, "", "")
    assert daemon.calls[-1] == ("domain.destroy", {"dom": "5"})
    assert 5 not in daemon.domains


def test_shutdown_needs_a_domain_or_all(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = xl(capsys, "shutdown")
    assert status == 1
    assert err.startswith("You must specify -a or a domain id.\n\n")
    assert daemon.calls == []


def test_shutdown_and_reboot_messages(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert xl(capsys, "shutdown", "web01") == (0, "", "Shutting down domain 3\n")
    assert daemon.calls[-1] == ("domain.shutdown", {"dom": "3", "reboot": False})
    assert xl(capsys, "reboot", "-F", "5") == (0, "", "Rebooting domain 5\n")
    assert daemon.calls[-1] == ("domain.shutdown", {"dom": "5", "reboot": True})


def test_shutdown_all_skips_domain0(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = xl(capsys, "shutdown", "-a")
    assert status == 0
    assert err == "Shutting down domain 3\nShutting down domain 5\n"
    shut = [p["dom"] for m, p in daemon.calls if m == "domain.shutdown"]
    assert shut == ["3", "5"]


def test_shutdown_wait_returns_at_shutdown(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.after_shutdown = [{}, {"shutdown": True, "shutdown_reason": "poweroff"}]
    status, _, err = xl(capsys, "shutdown", "-w", "web01")
    assert status == 0
    assert err.splitlines() == [
        "Shutting down domain 3",
        "Waiting for 1 domains",
        "Domain 3 has been shut down, reason code 0",
    ]
    assert 3 in daemon.domains  # -w once: shut down is enough


def test_shutdown_wait_twice_waits_for_death(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.after_shutdown = [{"shutdown": True, "shutdown_reason": "poweroff"}, {}, "gone"]
    status, _, err = xl(capsys, "shutdown", "-w", "-w", "web01")
    assert status == 0
    assert err.splitlines() == [
        "Shutting down domain 3",
        "Waiting for 1 domains",
        "Domain 3 has been shut down, reason code 0",
        "Domain 3 continue waiting for death",
        "Domain 3 has been destroyed",
    ]


def test_reboot_all_wait(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.after_shutdown = ["gone"]
    status, _, err = xl(capsys, "reboot", "-a", "-w")
    assert status == 0
    assert err.splitlines() == [
        "Rebooting domain 3",
        "Rebooting domain 5",
        "Waiting for 2 domains",
        "Domain 3 has been destroyed",
        "Domain 5 has been destroyed",
    ]


def test_wait_reports_a_shutdown_that_fell_between_two_polls(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    # The domain shut down (reboot) and its on_reboot restart destroyed it before the next
    # poll: xl's event loop would have seen the shutdown, so the daemon is asked.
    daemon.after_shutdown = ["gone"]
    daemon.ended_reason = "reboot"
    status, _, err = xl(capsys, "reboot", "-w", "3")
    assert status == 0
    assert err.splitlines() == [
        "Rebooting domain 3",
        "Waiting for 1 domains",
        "Domain 3 has been shut down, reason code 1",
    ]


# --------------------------------------------------------------------------- host verbs


def test_info_and_field_filter(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = xl(capsys, "info")
    assert status == 0
    assert out.splitlines() == [
        "host                   : scarlett",
        "release                : 6.1.0-13-amd64",
        "nr_cpus                : 4",
        "virt_caps              : hvm hvm_directio",
        "free_memory            : 4274",
        "free_cpus              : 0",
        "xend_config_format     : 4",
    ]
    assert xl(capsys, "info", "free")[1] == "4274\n0\n"
    assert xl(capsys, "info", "-n")[0] == 1


def test_dmesg_and_clear(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    text = daemon.dmesg
    assert xl(capsys, "dmesg") == (0, text, "")
    assert xl(capsys, "dmesg", "-c") == (0, text, "")
    assert daemon.calls[-1] == ("host.dmesg", {"clear": True})
    assert xl(capsys, "dmesg") == (0, "", "")


# --------------------------------------------------------------------------- create


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "t1.cfg"
    path.write_text('name = "t1"\ntype = "pvh"\nkernel = "/boot/vmlinuz"\nmemory = 128\n')
    return path


def test_create_sends_config_text_and_source(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    status, out, err = xl(capsys, "create", "-p", str(config_file), "vcpus=2")
    assert (status, out) == (0, "")
    assert err == f"Parsing config from {config_file}\n"
    method, params = daemon.calls[-1]
    assert method == "domain.create"
    assert params["paused"] is True
    assert params["source"] == str(config_file)
    assert params["config_text"] == config_file.read_text() + "\nvcpus=2\n\n"
    assert params["parser_warnings"] == []
    assert params["config"]["c_info"]["name"] == "t1"
    assert params["config"]["b_info"]["max_vcpus"] == 2
    assert daemon.domains[7]["paused"] is True


def test_create_shows_and_sends_the_parsers_warnings(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A PVH domain has no VNC: xl skips vnc=; xenlite says so on stderr and hands the
    # warning to xenlited for xl dmesg.
    path = tmp_path / "v.cfg"
    path.write_text('name = "v"\ntype = "pvh"\nkernel = "/boot/vmlinuz"\nmemory = 64\nvnc = 1\n')
    status, _, err = xl(capsys, "create", "-p", str(path))
    assert status == 0
    warning = f"{path}:5:1: 'vnc' ignored by xl: a PVH domain with this config does not use it"
    assert f"warning: {warning}\n" in err
    assert daemon.calls[-1][1]["parser_warnings"] == [warning]


def test_create_quiet_and_e_return_at_once(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    assert xl(capsys, "create", "-q", "-e", "-F", str(config_file)) == (0, "", "")
    assert daemon.methods() == ["domain.create"]  # -e cancels -F, as in xl


def test_create_foreground_waits_until_gone(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    daemon.after_shutdown = [{}, {"shutdown": True, "shutdown_reason": "poweroff"}, "gone"]
    status, _, err = xl(capsys, "create", "-q", "-F", str(config_file))
    assert status == 0
    lines = err.splitlines()
    assert lines[0].startswith("Waiting for domain t1 (domid 7) to die [pid ")
    assert lines[1:] == [
        "Domain 7 has shut down, reason code 0 0x0",
        "Domain 7 has been destroyed.",
    ]


def test_create_dry_run_needs_no_daemon(
    capsys: pytest.CaptureFixture[str], config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XENLITED_SOCKET", "/nonexistent/xenlited.sock")
    status, out, _ = xl(capsys, "create", "-n", str(config_file))
    assert status == 0
    assert json.loads(out)["c_info"]["name"] == "t1"


# --------------------------------------------------------------------------- no daemon


@pytest.mark.parametrize("argv", [["list"], ["pause", "web01"], ["info"], ["shutdown", "-a"]])
def test_daemon_not_running_is_said_plainly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("XENLITED_SOCKET", "/nonexistent/xenlited.sock")
    status, out, err = xl(capsys, *argv)
    assert (status, out) == (1, "")
    assert "xenlited is not running" in err
    assert "fix: start the host services: xenlite start" in err
    assert "Traceback" not in err


def test_block_attach_sends_the_disk_as_libxl_json_with_a_local_path_made_absolute(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "data.img").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    # Components are one spec, as xl's xlu_disk_parse reads several argv items.
    assert xl(capsys, "block-attach", "web01", "data.img", "raw", "xvdb", "r") == (0, "", "")
    method, params = daemon.calls[-1]
    assert method == "domain.block_attach"
    assert params["dom"] == "3"
    assert params["disk"] == {
        "pdev_path": str(tmp_path / "data.img"),
        "vdev": "xvdb",
        "format": "raw",
    }
    # -N prints the disk and sends nothing; a phy-style relative target stays as given.
    daemon.calls.clear()
    status, out, _ = xl(capsys, "-N", "block-attach", "web01", "vg/lv,raw,xvdc,w")
    assert status == 0
    assert json.loads(out) == {"pdev_path": "vg/lv", "vdev": "xvdc", "format": "raw",
                               "readwrite": 1}  # fmt: skip
    assert daemon.calls == []


def test_block_detach_says_xls_words_for_a_device_the_domain_lacks(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert xl(capsys, "block-detach", "-f", "web01", "xvdb") == (0, "", "")
    assert daemon.calls[-1] == ("domain.block_detach", {"dom": "3", "disk": "xvdb", "force": True})
    status, out, err = xl(capsys, "block-detach", "web01", "xvdq")
    assert (status, out, err) == (1, "", "Error: Device xvdq not connected.\n")


def test_cd_insert_and_eject_send_the_medium_as_xl_makes_it(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "debian.iso").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    # xl parses "vdev=V,access=r,devtype=cdrom,target=T": a read-only removable cdrom.
    assert xl(capsys, "cd-insert", "web01", "hdc", "debian.iso") == (0, "", "")
    assert daemon.calls[-1] == (
        "domain.cdrom_insert",
        {"dom": "3", "disk": {"pdev_path": str(tmp_path / "debian.iso"), "vdev": "hdc",
                              "format": "raw", "removable": 1, "is_cdrom": 1}},
    )  # fmt: skip
    # An empty target ejects: format empty, no path.
    assert xl(capsys, "cd-eject", "web01", "hdc") == (0, "", "")
    assert daemon.calls[-1] == (
        "domain.cdrom_insert",
        {"dom": "3", "disk": {"pdev_path": "", "vdev": "hdc", "format": "empty",
                              "removable": 1, "is_cdrom": 1}},
    )  # fmt: skip
    status, _, err = xl(capsys, "cd-insert", "web01", "hdc")
    assert status != 0
    assert "requires a domain, a virtual device and an image" in err


def test_network_attach_sends_one_vif_spec_over_xl_conf_defaults(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "etc/xen").mkdir(parents=True)
    (tmp_path / "etc/xen/xl.conf").write_text('vif.default.bridge="xenbr9"\n')
    monkeypatch.setenv("XENLITE_ROOT", str(tmp_path))
    # Each argument is a key=value of one spec, as xl's parse_nic_config reads them.
    assert xl(capsys, "network-attach", "web01", "mac=00:16:3e:00:00:01", "mtu=9000") == (
        0, "", "",
    )  # fmt: skip
    method, params = daemon.calls[-1]
    assert method == "domain.network_attach"
    assert params["dom"] == "3"
    assert params["nic"]["mac"] == "00:16:3e:00:00:01"
    assert params["nic"]["mtu"] == 9000
    assert params["nic"]["bridge"] == "xenbr9"  # xl.conf's, under the spec
    assert "devid" not in params["nic"]  # unset (-1): libxl picks the next free one
    daemon.calls.clear()
    status, out, _ = xl(capsys, "-N", "network-attach", "web01", "bridge=xenbr1")
    assert status == 0
    assert out.startswith("vif: ")
    assert json.loads(out.removeprefix("vif: "))["bridge"] == "xenbr1"
    assert daemon.calls == []


def test_network_detach_takes_a_devid_or_a_mac_and_says_xls_words(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert xl(capsys, "network-detach", "web01", "1") == (0, "", "")
    assert daemon.calls[-1] == ("domain.network_detach", {"dom": "3", "nic": "1"})
    assert xl(capsys, "network-detach", "web01", "00:16:3e:00:00:01") == (0, "", "")
    status, out, err = xl(capsys, "network-detach", "web01", "7")
    assert (status, out, err) == (1, "", "Unknown device 7.\n")
