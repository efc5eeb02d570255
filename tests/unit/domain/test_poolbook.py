"""The cpupool book: Xen's rules for pools and free CPUs, and the file that keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlite.base.errors import DomainError, HostError
from xenlite.domain.poolbook import (
    POOL_FILE,
    Cpupool,
    PoolBook,
    check_scheduler_name,
    numa_split_plan,
)
from xenlite.host import facts

HOST = frozenset({0, 1, 2, 3})


def test_a_new_host_has_pool_0_with_every_cpu(tmp_path: Path) -> None:
    book = PoolBook.load(tmp_path, HOST, "credit2")
    assert book.pools() == [Cpupool(0, "Pool-0", "credit2", HOST)]
    assert book.free_cpus(HOST) == frozenset()
    assert not (tmp_path / POOL_FILE.lstrip("/")).exists()  # nothing written until a change


def test_changes_are_saved_and_read_back(tmp_path: Path) -> None:
    book = PoolBook.load(tmp_path, HOST, "credit2")
    book.set_cpus(0, frozenset({0, 1}))
    assert book.free_cpus(HOST) == {2, 3}
    made = book.create("fast", "credit", frozenset({2, 3}))
    assert made == Cpupool(1, "fast", "credit", frozenset({2, 3}))
    assert book.owner(3) == made
    assert book.owner(0) == book.get(0)
    book.rename(1, "quick")
    again = PoolBook.load(tmp_path, HOST, "credit2")
    assert again.pools() == book.pools()
    quick = Cpupool(1, "quick", "credit", frozenset({2, 3}))
    assert again.find("quick") == again.find("1") == quick
    assert again.find("fast") is None
    assert again.find("7") is None
    again.destroy(1)
    assert PoolBook.load(tmp_path, HOST, "credit2").free_cpus(HOST) == {2, 3}
    # A destroyed pool's id is not handed out while a higher one lives; the next is max + 1.
    assert again.create("next", "credit2", frozenset()).poolid == 1


def test_the_host_decides_pool_0s_scheduler_and_which_cpus_exist(tmp_path: Path) -> None:
    book = PoolBook.load(tmp_path, HOST, "credit")
    book.create("p", "credit", frozenset({3}))
    book.set_cpus(0, frozenset({0, 1, 2}))
    smaller = PoolBook.load(tmp_path, frozenset({0, 1}), "credit2")
    assert smaller.get(0) == Cpupool(0, "Pool-0", "credit2", frozenset({0, 1}))
    assert smaller.get(1) == Cpupool(1, "p", "credit", frozenset())


def test_names_must_be_new_and_not_read_as_ids(tmp_path: Path) -> None:
    book = PoolBook.load(tmp_path, HOST, "credit2")
    with pytest.raises(DomainError, match='Pool name "Pool-0" already exists'):
        book.create("Pool-0", "credit", frozenset())
    with pytest.raises(DomainError, match="all digits"):
        book.create("12", "credit", frozenset())
    book.create("a", "credit", frozenset())
    with pytest.raises(DomainError, match='Pool name "a" already exists'):
        book.rename(0, "a")
    assert book.rename(1, "a").name == "a"  # its own name again is no change


def test_a_book_that_cannot_be_read_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / POOL_FILE.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_text('{"pools": [{"poolid": "x"}]}')
    with pytest.raises(HostError) as info:
        PoolBook.load(tmp_path, HOST, "credit2")
    assert "move the file away" in str(info.value.fix)


def test_a_failed_save_leaves_the_book_as_it_was(tmp_path: Path) -> None:
    book = PoolBook.load(tmp_path, HOST, "credit2")
    book.path = tmp_path / "missing-dir-is-a-file" / "cpupools.json"
    (tmp_path / "missing-dir-is-a-file").write_text("")
    with pytest.raises(HostError):
        book.create("p", "credit", frozenset({1}))
    assert [p.name for p in book.pools()] == ["Pool-0"]
    with pytest.raises(HostError):
        book.set_cpus(0, frozenset({0}))
    assert book.get(0) == Cpupool(0, "Pool-0", "credit2", HOST)


def test_schedulers_a_pool_can_run() -> None:
    assert check_scheduler_name("credit") == "credit"
    assert check_scheduler_name("credit2") == "credit2"
    with pytest.raises(HostError, match="credit, credit2"):
        check_scheduler_name("rtds")
    with pytest.raises(DomainError, match="Unknown scheduler"):
        check_scheduler_name("fair")


def test_numa_split_keeps_the_first_cpus_node_in_pool_0() -> None:
    nodes = {0: frozenset({2, 3}), 1: frozenset({0, 1}), 2: frozenset({4})}
    assert numa_split_plan(nodes, 0) == [
        ("Pool-node1", frozenset({0, 1})),
        ("Pool-node0", frozenset({2, 3})),
        ("Pool-node2", frozenset({4})),
    ]
    assert numa_split_plan({0: HOST}, 0) == [("Pool-node0", HOST)]


def test_node_cpus_reads_sysfs_and_defaults_to_one_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "NUMA_NODES", tmp_path)
    assert facts.node_cpus(HOST) == {0: HOST}
    for node, text in ((0, "0-1\n"), (1, "2,3\n"), (2, "\n")):
        (tmp_path / f"node{node}").mkdir()
        (tmp_path / f"node{node}" / "cpulist").write_text(text)
    (tmp_path / "online").write_text("0-2\n")
    assert facts.node_cpus(HOST) == {0: frozenset({0, 1}), 1: frozenset({2, 3})}
    assert facts.node_cpus(frozenset({3})) == {1: frozenset({3})}
