"""Durable domain records: atomic JSON round trip, unreadable files, domid allocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenlite.base.errors import HostError
from xenlite.domain.record import DOMID_FIRST_RESERVED, DomainRecord, RecordStore
from xenlite.domain.state import DomainState
from xenlite.rpc.contract import ShutdownReason


def record(domid: int = 3, **changes: object) -> DomainRecord:
    base: dict[str, object] = {
        "domid": domid,
        "name": f"dom{domid}",
        "uuid": "8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21",
        "config_json": json.dumps({"c_info": {"name": f"dom{domid}"}}),
        "config_text": 'name = "x"\n',
        "source": "/etc/xen/x.cfg",
        "start_time": 1700000000.5,
        "state": DomainState.RUNNING,
        "run_dir": "/run/xenlite/qemu/3",
        "log_file": "/var/log/xenlite/qemu-dm-x.log",
        "console_log": "/var/log/xenlite/console/guest-x.log",
    }
    base.update(changes)
    return DomainRecord(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    original = record(shutdown_reason=ShutdownReason.CRASH, state=DomainState.CRASHED)
    store.save(original)
    assert store.path_of(3) == tmp_path / "var/lib/xenlite/domains/3.json"
    assert store.load_all() == [original]
    assert oct(store.path_of(3).stat().st_mode & 0o777) == "0o600"
    store.delete(3)
    store.delete(3)  # idempotent
    assert store.load_all() == []


def test_records_come_back_by_domid_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for domid in (12, 2, 7):
        store.save(record(domid))
    (store.directory / "99.json").write_text("{not json")
    assert [r.domid for r in store.load_all()] == [2, 7, 12]


def test_unreadable_record_names_the_file() -> None:
    with pytest.raises(HostError) as info:
        DomainRecord.from_json('{"format": 1}', source="/x/5.json")
    assert "/x/5.json" in str(info.value)


def test_domids_increase_and_are_not_reused(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    assert store.allocate_domid(set()) == 1
    assert store.allocate_domid(set()) == 2
    # Domain 2 was destroyed: its id is still not handed out again.
    assert store.allocate_domid(set()) == 3
    # A fresh store on the same root (a restarted daemon) continues the count.
    assert RecordStore(tmp_path).allocate_domid(set()) == 4


def test_domids_wrap_below_the_reserved_range_and_skip_ids_in_use(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    (store.directory).mkdir(parents=True)
    (store.directory / "next-domid").write_text(f"{DOMID_FIRST_RESERVED - 1}\n")
    assert store.allocate_domid({1, 2}) == 3
