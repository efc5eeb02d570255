"""CPU lists (xl.cfg cpus=) and xl vcpu-list's map printing."""

from __future__ import annotations

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.specs.cpus import format_cpumap, parse_cpu_list, parse_vcpu_affinity
from xenlite.config.xlcfg.values import Pos


# The first six were run through xlcfg_oracle.py (xl create -n, 8 CPUs, vcpus=2):
# b_info.vcpu_hard_affinity[0] is the expected set.
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0-20", set(range(8))),
        ("0-3,^1,all", set(range(8))),
        ("0,,2", {0, 2}),
        (" 1", {1}),
        ("+2-3", {2, 3}),
        ("^1", set()),
        ("all", set(range(8))),
        ("0-3,5,^1", {0, 2, 3, 5}),
        ("3-3", {3}),
        ("1- 2", {1, 2}),
        ("nodes:0", set(range(8))),
        ("all,^node:0", set()),
        ("nodes:all", set(range(8))),
    ],
)
def test_parse_cpu_list(spec: str, expected: set[int]) -> None:
    assert parse_cpu_list(spec, 8) == frozenset(expected)


# Oracle: xl prints "Invalid pcpu range: @CPUS@." and "Invalid pcpu range: 1-0." and exits.
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("@CPUS@", "Invalid pcpu range: @CPUS@."),
        ("1-0", "Invalid pcpu range: 1-0."),
        ("^", "Invalid pcpu range: ."),
        ("1 -2", "Invalid pcpu range: 1 -2."),
        ("-1", "Invalid pcpu range: -1."),
        ("0-3,x", "Invalid pcpu range: x."),
        ("^all", 'Can\'t combine "^" and "all".'),
        ("^nodes:all", 'Can\'t combine "^" and "all".'),
    ],
)
def test_invalid_cpu_lists(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cpu_list(spec, 8)
    assert message in info.value.cause
    assert info.value.key == "cpus"
    assert info.value.fix


def test_error_column_points_at_the_item() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cpu_list("0-3,bad", 8, where=Pos("d.cfg", 5, 8))
    assert (info.value.path, info.value.line, info.value.col) == ("d.cfg", 5, 12)


def test_nodes_use_the_node_map() -> None:
    layout = {0: [0, 1, 2, 3], 1: [4, 5, 6, 7]}

    def node_cpus(node: int) -> list[int]:
        return layout[node]

    assert parse_cpu_list("nodes:1", 8, nr_nodes=2, node_cpus=node_cpus) == {4, 5, 6, 7}
    got = parse_cpu_list("nodes:0-1,^node:0,1", 8, nr_nodes=2, node_cpus=node_cpus)
    assert got == {1, 4, 5, 6, 7}
    with pytest.raises(ConfigError, match="NUMA node 2 does not exist"):
        parse_cpu_list("node:2", 8, nr_nodes=2, node_cpus=node_cpus)


def test_huge_range_is_bounded() -> None:
    assert parse_cpu_list("0-18446744073709551614", 4) == {0, 1, 2, 3}


def test_vcpu_affinity_string_and_list() -> None:
    assert parse_vcpu_affinity("1-2", 3, 8) == (frozenset({1, 2}),) * 3
    # Oracle: cpus=[" 1", "+2-3"] with vcpus=2 gives [[1], [2, 3]].
    assert parse_vcpu_affinity([" 1", "+2-3", "5"], 2, 8) == (frozenset({1}), frozenset({2, 3}))


@pytest.mark.parametrize(
    ("cpus", "nr_cpus", "text"),
    [
        (range(8), 8, "all"),
        ([], 8, "none"),
        ([0, 1, 2, 3, 5], 8, "0-3,5"),
        ([1, 2, 3, 4, 5, 6, 7], 8, "1-7"),
        ([0, 2, 4], 8, "0,2,4"),
        ([0], 1, "all"),
        ([0, 1, 2, 3], 8, "0-3"),
        ([7], 8, "7"),
    ],
)
def test_format_cpumap(cpus: list[int], nr_cpus: int, text: str) -> None:
    assert format_cpumap(cpus, nr_cpus) == text


def test_format_cpumap_refuses_cpus_outside_the_map() -> None:
    with pytest.raises(ValueError, match="outside"):
        format_cpumap([8], 8)
