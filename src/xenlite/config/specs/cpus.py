"""CPU lists: ``cpus=``/``cpus_soft=`` and the maps ``xl vcpu-list`` prints.

xl.cfg(5) "CPU Allocation": ``cpus="CPULIST"`` ("all", "0-3,5,^1", "nodes:0-1,^node:2") or
a list with one CPULIST per vCPU; read as xl_parse.c ``parse_cpurange`` does, printed as
xl_utils.c ``print_bitmap`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import ULONG_MAX, strtoul
from xenlite.config.xlcfg.values import Pos

NodeCpus = Callable[[int], Iterable[int]]

_FORMS = 'write "all", CPU numbers and ranges ("0-3,5"), "^N" to remove, or "nodes:0-1"'


def _parse_range(text: str) -> tuple[int, int] | None:
    """xl_parse.c parse_range: "A" or "A-B" with A <= B, nothing after; None when invalid."""
    first, end = strtoul(text, 0, 10)
    if end == 0 or first == ULONG_MAX:
        return None
    last = first
    if end < len(text) and text[end] == "-":
        last, end2 = strtoul(text, end + 1, 10)
        if end2 == end + 1 or last == ULONG_MAX or last < first:
            return None
        end = end2
    if end != len(text):
        return None
    return first, last


def _error(spec: str, cause: str, where: Pos | None, offset: int, key: str) -> ConfigError:
    message = f"CPU list {spec!r}: {cause}"
    if where is None:
        return ConfigError(message, key=key, fix=_FORMS)
    return ConfigError(
        message,
        path=where.path,
        line=where.line,
        col=where.col + offset,
        key=key,
        fix=_FORMS,
    )


def parse_cpu_list(
    spec: str,
    nr_cpus: int,
    *,
    where: Pos | None = None,
    nr_nodes: int = 1,
    node_cpus: NodeCpus | None = None,
    key: str = "cpus",
    strict: bool = False,
) -> frozenset[int]:
    """The set of physical CPUs a CPULIST names, on a host with ``nr_cpus`` CPUs.

    Items are separated by commas (empty items are skipped, as strtok does); each is
    ``all``, ``N``, ``N-M``, optionally prefixed by ``^`` (remove) and/or ``node:``/``nodes:``
    (whole NUMA nodes, through ``node_cpus(node)``; with one node and no map, node 0 is every
    CPU). Items apply left to right, so ``"0-3,^1"`` is {0, 2, 3} and ``"^1,all"`` is all.
    As in xl, CPUs at or beyond ``nr_cpus`` do not fit the host's map and are dropped.
    ``where`` locates errors: the position of the spec's first character.

    Beyond xl: a node that does not exist is an error (xl silently adds no CPU); with
    ``strict`` (the cpupool verbs, where a dropped CPU would go unnoticed), so is adding a
    CPU at or beyond ``nr_cpus``.

    :raise ConfigError: "Invalid pcpu range" for a malformed item (as xl words it), for
        ``^all``, or for a node the host does not have.
    """
    selected: set[int] = set()
    offset = 0
    for item in spec.split(","):
        item_offset = offset
        offset += len(item) + 1
        if not item:
            continue
        body = item
        remove = body.startswith("^")
        if remove:
            body = body[1:]
        is_nodes = False
        for prefix in ("node:", "nodes:"):
            if body.startswith(prefix):
                body = body[len(prefix) :]
                is_nodes = True
                break
        if body == "all":
            if remove:
                raise _error(spec, 'Can\'t combine "^" and "all".', where, item_offset, key)
            selected.update(range(nr_cpus))
            continue
        bounds = _parse_range(body)
        if bounds is None:
            raise _error(spec, f"Invalid pcpu range: {body}.", where, item_offset, key)
        first, last = bounds
        if is_nodes:
            if last >= nr_nodes:
                bad = max(first, nr_nodes)
                raise _error(
                    spec,
                    f"NUMA node {bad} does not exist (this host has {nr_nodes})",
                    where,
                    item_offset,
                    key,
                )
            cpus: set[int] = set()
            for node in range(first, last + 1):
                if node_cpus is None:
                    cpus.update(range(nr_cpus))
                else:
                    cpus.update(cpu for cpu in node_cpus(node) if 0 <= cpu < nr_cpus)
        else:
            if strict and not remove and last >= nr_cpus:
                bad = max(first, nr_cpus)
                raise _error(
                    spec,
                    f"CPU {bad} does not exist (this host has CPUs 0-{nr_cpus - 1})",
                    where,
                    item_offset,
                    key,
                )
            # A huge range only ever touches the CPUs that exist.
            cpus = set(range(first, min(last, nr_cpus - 1) + 1))
        if remove:
            selected.difference_update(cpus)
        else:
            selected.update(cpus)
    return frozenset(selected)


def parse_vcpu_affinity(
    value: str | Sequence[str],
    max_vcpus: int,
    nr_cpus: int,
    *,
    where: Pos | None = None,
    nr_nodes: int = 1,
    node_cpus: NodeCpus | None = None,
    key: str = "cpus",
) -> tuple[frozenset[int], ...]:
    """Per-vCPU affinity from ``cpus=``: a string applies to every vCPU, a list gives one
    CPULIST per vCPU (entries beyond ``max_vcpus`` are ignored, as in xl; vCPUs beyond the
    list get no entry, and the caller leaves them unpinned).

    :raise ConfigError: as parse_cpu_list.
    """
    if isinstance(value, str):
        cpus = parse_cpu_list(
            value, nr_cpus, where=where, nr_nodes=nr_nodes, node_cpus=node_cpus, key=key
        )
        return tuple(cpus for _ in range(max_vcpus))
    return tuple(
        parse_cpu_list(item, nr_cpus, where=where, nr_nodes=nr_nodes, node_cpus=node_cpus, key=key)
        for item in value[:max_vcpus]
    )


def format_cpumap(cpus: Iterable[int], nr_cpus: int) -> str:
    """A CPU set as ``xl vcpu-list`` prints it: "all", "none", or ranges like "0-3,5".

    "all" means one run from CPU 0 to the last CPU of the map, exactly as print_bitmap.
    :raise ValueError: when a CPU is outside ``0 .. nr_cpus-1``.
    """
    present = set(cpus)
    for cpu in present:
        if not 0 <= cpu < nr_cpus:
            raise ValueError(f"CPU {cpu} is outside the host's CPUs 0-{nr_cpus - 1}")
    if not present:
        return "none"
    runs: list[tuple[int, int]] = []
    for cpu in sorted(present):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1] = (runs[-1][0], cpu)
        else:
            runs.append((cpu, cpu))
    if runs == [(0, nr_cpus - 1)]:
        return "all"
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
