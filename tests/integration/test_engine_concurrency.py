"""The domain engine under concurrent commands (issue 4 "Reliability": many ``xl`` commands at
once are safe; two creates with the same name: exactly one wins).

Real ``xl`` processes and raw RPC clients against a private host (xenstored + xenlited under a
temporary root), guest-kit domains under TCG.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from xenlite.base.errors import DomainError, XenliteError
from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.config.domain.libxl_json import domain_config_to_json
from xenlite.rpc.client import RpcClient
from xenlite.xenstore.client import XenStore

if TYPE_CHECKING:
    from tests.integration.conftest import LiveHost

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

XL_LIST_HEADER = ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]


def _rpc(host: LiveHost) -> RpcClient:
    return RpcClient(host.root / "run/xenlite/xenlited.sock", timeout=120)


def _config_json(host: LiveHost, name: str) -> dict[str, object]:
    path = host.write_config(name)
    return domain_config_to_json(load_domain_config(str(path), host=HostFacts(nr_cpus=1)).config)


def _names(host: LiveHost) -> list[str]:
    with _rpc(host) as rpc:
        rows = rpc.call("domain.list")
    assert isinstance(rows, list)
    return [str(row["name"]) for row in rows if isinstance(row, dict)]


def _domids(host: LiveHost) -> dict[str, int]:
    with _rpc(host) as rpc:
        rows = rpc.call("domain.list")
    assert isinstance(rows, list)
    return {str(r["name"]): int(r["domid"]) for r in rows if isinstance(r, dict)}


def _xenstore_domains(host: LiveHost) -> set[int]:
    with XenStore.open(host.root / "run/xenstored/socket") as xs:
        return {int(d) for d in xs.directory("/local/domain")}


def _at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run ``jobs`` in threads released by one barrier; each result or the exception raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except XenliteError as exc:  # the result under test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


def _destroy(host: LiveHost, name: str) -> None:
    result = host.xl("destroy", name)
    assert result.returncode == 0, result.stderr


def test_two_xl_creates_of_one_name_exactly_one_wins(live_host: LiveHost) -> None:
    host = live_host
    config = host.write_config("twin")
    qemu_before = host.qemu_pids()
    records_before = host.records()
    first, second = (
        host.xl_popen("create", "-p", str(config)),
        host.xl_popen("create", "-p", str(config)),
    )
    outcomes = [(p.wait(120), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes[0] == 0, outcomes
    assert codes[1] != 0, outcomes
    loser_err = next(err for code, _, err in outcomes if code != 0)
    assert "domain name 'twin'" in loser_err
    assert "already in use" in loser_err
    assert "Traceback" not in loser_err
    # The winner and nothing else: one domain, one QEMU, one record, one run directory.
    assert _names(host).count("twin") == 1
    domid = _domids(host)["twin"]
    assert len(host.qemu_pids()) == len(qemu_before) + 1
    assert len(host.records()) == len(records_before) + 1
    assert [p.name for p in host.run_dirs()] == [str(domid)]
    assert _xenstore_domains(host) == {0, domid}
    _destroy(host, "twin")
    assert host.qemu_pids() == qemu_before
    assert host.run_dirs() == []


def test_many_rpc_creates_of_one_name_exactly_one_wins(live_host: LiveHost) -> None:
    host = live_host
    config = _config_json(host, "crowd")

    def create() -> object:
        with _rpc(host) as rpc:
            return rpc.call(
                "domain.create", config=config, config_text="", source="crowd.cfg", paused=True
            )

    results = _at_once([create] * 4)
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1, results
    assert len(losses) == 3, results
    assert all(isinstance(r, DomainError) and "already in use" in str(r) for r in losses)
    domid = wins[0]["domid"]
    assert _domids(host)["crowd"] == domid
    assert len(host.qemu_pids()) == 1
    assert [p.name for p in host.run_dirs()] == [str(domid)]
    assert _xenstore_domains(host) == {0, domid}
    _destroy(host, "crowd")


def test_creates_at_once_get_distinct_domids(live_host: LiveHost) -> None:
    host = live_host
    names = [f"par{i}" for i in range(4)]
    configs = {name: _config_json(host, name) for name in names}

    def creator(name: str) -> Callable[[], object]:
        def create() -> object:
            with _rpc(host) as rpc:
                return rpc.call(
                    "domain.create",
                    config=configs[name],
                    config_text="",
                    source=f"{name}.cfg",
                    paused=True,
                )

        return create

    results = _at_once([creator(name) for name in names])
    assert all(isinstance(r, dict) for r in results), results
    domids = [r["domid"] for r in results if isinstance(r, dict)]
    assert len(set(domids)) == len(names), domids
    listed = _domids(host)
    assert sorted(listed[name] for name in names) == sorted(domids)
    assert _xenstore_domains(host) == {0, *domids}
    assert len(host.qemu_pids()) == len(names)
    for name in names:
        _destroy(host, name)
    assert host.qemu_pids() == []
    assert _xenstore_domains(host) == {0}


def _check_xl_list(output: str) -> str | None:
    """Why ``output`` is not a sane ``xl list`` table, or None."""
    lines = output.splitlines()
    if not lines or lines[0].split() != XL_LIST_HEADER:
        return f"bad header in {output!r}"
    if len(lines) < 2 or not lines[1].startswith("Domain-0 "):
        return f"no Domain-0 row in {output!r}"
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != 6 or not fields[1].isdigit():
            return f"bad row {line!r}"
    return None


def test_xl_list_while_creating_and_destroying_is_safe(live_host: LiveHost) -> None:
    host = live_host
    stop = threading.Event()
    problems: list[str] = []
    counts = {"xl": 0, "rpc": 0}

    def xl_lister() -> None:
        while not stop.is_set():
            result = host.xl("list")
            counts["xl"] += 1
            why = _check_xl_list(result.stdout) if result.returncode == 0 else result.stderr
            if why is not None:
                problems.append(f"xl list: {why}")

    def rpc_lister() -> None:
        while not stop.is_set():
            try:
                with _rpc(host) as rpc:
                    for _ in range(20):
                        rows = rpc.call("domain.list")
                        counts["rpc"] += 1
                        if not isinstance(rows, list) or rows[0]["name"] != "Domain-0":
                            problems.append(f"domain.list: {rows!r}")
            except XenliteError as exc:
                problems.append(f"domain.list: {exc}")

    listers = [threading.Thread(target=xl_lister) for _ in range(3)]
    listers.append(threading.Thread(target=rpc_lister))
    for thread in listers:
        thread.start()
    try:
        for round_ in range(3):
            names = [f"busy{round_}a", f"busy{round_}b"]
            creators = [host.xl_popen("create", "-p", str(host.write_config(n))) for n in names]
            for process in creators:
                _, err = process.communicate(timeout=120)
                assert process.returncode == 0, err
            destroyers = [host.xl_popen("destroy", n) for n in names]
            for process in destroyers:
                _, err = process.communicate(timeout=120)
                assert process.returncode == 0, err
    finally:
        stop.set()
        for thread in listers:
            thread.join(60)
    assert problems == []
    assert counts["xl"] >= 3
    assert counts["rpc"] >= 20
    assert [n for n in _names(host) if n != "Domain-0"] == []
    assert host.qemu_pids() == []
    assert host.run_dirs() == []
    assert _xenstore_domains(host) == {0}


def test_destroy_of_one_domain_twice_at_once(live_host: LiveHost) -> None:
    host = live_host
    created = host.xl("create", "-p", str(host.write_config("doomed")))
    assert created.returncode == 0, created.stderr
    processes = [host.xl_popen("destroy", "doomed") for _ in range(3)]
    outcomes = [(p.wait(120), p.communicate()[1]) for p in processes]
    # One (or more, if they queue on the domain's lock) succeeds; none fails in a new way.
    assert any(code == 0 for code, _ in outcomes), outcomes
    for code, err in outcomes:
        assert code == 0 or "doomed" in err, outcomes
        assert "Traceback" not in err
    assert "doomed" not in _names(host)
    assert host.qemu_pids() == []
    assert host.run_dirs() == []
    assert host.sockets() == []
