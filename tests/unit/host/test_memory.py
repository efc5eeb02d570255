"""The host memory book: free memory, autoballoon down to dom0's floor, exact shortfalls."""

from __future__ import annotations

import pytest

from xenlite.base.errors import InsufficientMemory
from xenlite.host.memory import DOM0_FLOOR_KIB, HostMemory

MIB = 1024
GIB = 1024 * MIB


def test_free_is_total_minus_dom0_minus_domains() -> None:
    book = HostMemory(total_kib=8 * GIB, dom0_kib=2 * GIB, autoballoon=False)
    assert book.free_kib == 6 * GIB
    assert book.claim(1 * GIB, "d1") == 0
    assert book.free_kib == 5 * GIB
    book.release(512 * MIB)
    assert book.free_kib == 5 * GIB + 512 * MIB


def test_without_autoballoon_a_domain_that_does_not_fit_is_refused_whole() -> None:
    book = HostMemory(total_kib=4 * GIB, dom0_kib=3 * GIB, autoballoon=False)
    with pytest.raises(InsufficientMemory) as info:
        book.claim(2 * GIB, "domain 'web01'")
    err = info.value
    assert "domain 'web01'" in str(err)
    assert "1024 MiB short" in str(err)
    assert "autoballoon is off" in str(err)
    assert err.fix is not None
    assert "autoballoon" in err.fix
    # Nothing was taken.
    assert (book.free_kib, book.dom0_kib, book.allocated_kib) == (1 * GIB, 3 * GIB, 0)


def test_autoballoon_takes_from_dom0_down_to_its_floor_only() -> None:
    book = HostMemory(total_kib=4 * GIB, dom0_kib=3 * GIB, autoballoon=True)
    # 1 GiB free; dom0 gives up the other 512 MiB.
    assert book.claim(1 * GIB + 512 * MIB, "d1") == 512 * MIB
    assert book.dom0_kib == 2 * GIB + 512 * MIB
    assert book.free_kib == 0
    spare = book.dom0_kib - DOM0_FLOOR_KIB
    with pytest.raises(InsufficientMemory) as info:
        book.claim(spare + 1, "d2")
    assert "down to its floor of 128 MiB" in str(info.value)
    assert book.claim(spare, "d2") == spare
    assert book.dom0_kib == DOM0_FLOOR_KIB


def test_memory_given_back_is_free_and_dom0_does_not_grow_back_by_itself() -> None:
    book = HostMemory(total_kib=2 * GIB, dom0_kib=2 * GIB, autoballoon=True)
    book.claim(1 * GIB, "d1")
    book.release(1 * GIB)
    assert book.free_kib == 1 * GIB
    assert book.dom0_kib == 1 * GIB


def test_dom0_target_moves_within_free_memory_and_above_its_floor() -> None:
    book = HostMemory(total_kib=4 * GIB, dom0_kib=1 * GIB, autoballoon=False)
    book.set_dom0(2 * GIB)
    assert book.free_kib == 2 * GIB
    with pytest.raises(InsufficientMemory):
        book.set_dom0(5 * GIB)
    with pytest.raises(InsufficientMemory) as info:
        book.set_dom0(64 * MIB)
    assert "minimum threshold" in str(info.value)
    assert book.dom0_kib == 2 * GIB


def test_restore_counts_domains_that_already_exist_without_refusing() -> None:
    book = HostMemory(total_kib=2 * GIB, dom0_kib=2 * GIB, autoballoon=False)
    book.restore(512 * MIB)
    assert book.allocated_kib == 512 * MIB
    assert book.dom0_kib == 1 * GIB + 512 * MIB
    assert book.free_kib == 0
