"""What xl vcpu-set asks of QEMU, from the slots ``query-hotpluggable-cpus`` reports (in
QEMU's own order, newest slot first): the lowest missing vCPUs plugged with xenlite's ids,
the highest removed first by QOM path (boot vCPUs have no id)."""

from __future__ import annotations

from xenlite.domain.vcpu import plan_vcpu_set
from xenlite.qemu.monitor import CpuSlot

TYPE = "qemu64-x86_64-cpu"


def _slot(core: int, path: str | None) -> CpuSlot:
    return CpuSlot(TYPE, (("core-id", core), ("socket-id", 0), ("thread-id", 0)), path)


# As QEMU 7.2 answers for -smp cpus=2,maxcpus=4: highest slot first.
SLOTS = (
    _slot(3, None),
    _slot(2, None),
    _slot(1, "/machine/unattached/device[2]"),
    _slot(0, "/machine/unattached/device[0]"),
)


def test_raising_plugs_the_lowest_missing_vcpus_in_order() -> None:
    change = plan_vcpu_set(SLOTS, 4)
    assert change.remove == ()
    assert change.add == (
        {"driver": TYPE, "id": "xenlite-vcpu2", "core-id": 2, "socket-id": 0, "thread-id": 0},
        {"driver": TYPE, "id": "xenlite-vcpu3", "core-id": 3, "socket-id": 0, "thread-id": 0},
    )


def test_lowering_removes_the_highest_first_by_qom_path() -> None:
    plugged = (_slot(3, "/machine/peripheral/xenlite-vcpu3"), *SLOTS[1:])
    change = plan_vcpu_set(plugged, 1)
    assert change.add == ()
    assert change.remove == (
        (3, "/machine/peripheral/xenlite-vcpu3"),
        (1, "/machine/unattached/device[2]"),
    )


def test_the_count_it_has_changes_nothing() -> None:
    change = plan_vcpu_set(SLOTS, 2)
    assert (change.add, change.remove) == ((), ())
