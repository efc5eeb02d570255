"""``xl cpupool-*``: the host's CPU pools.

xl(1) "CPUPOOLS COMMANDS", xlcpupool.cfg(5) (tools/xl/xl_cpupool.c): ``cpupool-list`` prints
``"%-19s"`` names, then ``"%3d %9s       y       %4d"`` (CPUs, scheduler, domain count) or,
with ``-c``, the CPU list; ``cpupool-create`` prints what it makes ("Using config file ...",
"cpupool name:", "scheduler:", "number of cpus:"); the other verbs are silent when they
succeed. xl's own words for its errors ("unknown cpupool 'x'", "Pool 'x' does not exist",
"Pool name \"x\" already exists", "cpu N illegal or not free"). CPU lists ("1,5,10-16,^13",
"node:0") go to xenlited as written; it reads them against the host's CPUs and NUMA nodes.

Beyond xl: a cpupool-cpu-add or -remove that could not move every CPU exits non-zero after
naming each CPU and why (xl prints its summary line and exits 0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from xenlite.cli.commands.domains import connect, find_domain, show_help, want_args
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.client import RpcClient
from xenlite.rpc.contract import Method, int_field, int_list, objects, str_field

_SOURCE = Method.HOST_CPUPOOL_LIST


def _pools(client: RpcClient) -> list[Mapping[str, object]]:
    return objects(client.call(Method.HOST_CPUPOOL_LIST), "[]", _SOURCE)


def _find(pools: Sequence[Mapping[str, object]], qualifier: str) -> Mapping[str, object] | None:
    """libxl_cpupool_qualifier_to_cpupoolid: all digits is a pool id, anything else a name."""
    for pool in pools:
        if qualifier.isdigit():
            if int_field(pool, "poolid", _SOURCE) == int(qualifier):
                return pool
        elif str_field(pool, "name", _SOURCE) == qualifier:
            return pool
    return None


def known_pool(client: RpcClient, qualifier: str) -> str:
    """The pool's id as text. :raise VerbExit: "unknown cpupool" as xl says it"""
    pool = _find(_pools(client), qualifier)
    if pool is None:
        raise VerbExit(f"unknown cpupool '{qualifier}'\n", hint="xl cpupool-list shows the pools")
    return str(int_field(pool, "poolid", _SOURCE))


# --------------------------------------------------------------------------- list


def main_cpupool_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-list [-c|--cpus] [cpu-pool]``."""
    pairs, operands = parse_options("cpupool-list", args, "ch", ["cpus", "help"])
    show_cpus = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "cpupool-list")
        show_cpus = True
    with connect() as client:
        pools = _pools(client)
    if operands:
        only = _find(pools, operands[0])
        if only is None:
            raise VerbExit(f"Pool '{operands[0]}' does not exist\n",
                           hint="xl cpupool-list shows the pools")  # fmt: skip
        pools = [only]
    out = [
        f"{'Name':<19}"
        + ("CPU list\n" if show_cpus else "CPUs   Sched     Active   Domain count\n")
    ]
    for pool in pools:
        cpus = int_list(pool, "cpus", _SOURCE)
        line = f"{str_field(pool, 'name', _SOURCE):<19}"
        if show_cpus:
            line += ",".join(str(c) for c in cpus)
        else:
            sched, count = str_field(pool, "sched", _SOURCE), int_field(pool, "n_dom", _SOURCE)
            line += f"{len(cpus):3d} {sched:>9}       y       {count:4d}"
        out.append(line + "\n")
    sys.stdout.write("".join(out))
    return EXIT_SUCCESS


# --------------------------------------------------------------------------- create


def main_cpupool_create(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-create [-n] [-f FILE] [ConfigFile] [Variable=Value ...]``."""
    from xenlite.config.xlcfg.grammar import parse_with_overrides

    pairs, operands = parse_options("cpupool-create", args, "hnf:", ["help", "dryrun",
                                                                     "defconfig="])  # fmt: skip
    filename: str | None = None
    dryrun = opts.dryrun
    for flag, value in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "cpupool-create")
        if flag in ("-n", "--dryrun"):
            dryrun = True
        else:
            filename = value
    overrides: list[str] = []
    for operand in operands:
        if "=" in operand:
            overrides.append(operand)
        elif filename is None:
            filename = operand
        else:
            raise VerbExit(f"cpupool-create: unexpected argument '{operand}'\n",
                           hint="xl help cpupool-create")  # fmt: skip
    if filename is not None:
        try:
            data = Path(filename).read_bytes()
        except OSError as exc:
            raise VerbExit(f"Failed to read config file: {filename}: {exc.strerror}\n",
                           hint="name a readable xlcpupool.cfg file") from None  # fmt: skip
        config = parse_with_overrides(data, filename, overrides)
        source = filename
    else:
        config = parse_with_overrides(b"", "command line", overrides)
        source = "command line"
    name = config.get_string("name")
    if name is None:
        if filename is None:
            raise VerbExit("Missing cpupool name!\n", hint="give name=POOL")
        name = os.path.basename(filename)
    sched = config.get_string("sched")
    # One CPU list for xenlited to read against the host (its CPUs and NUMA nodes).
    cpus: str | None = None
    if config.has("nodes"):
        nodes = config.get_string_or_list("nodes")
        cpus = ",".join(f"node:{n}" for n in ([nodes] if isinstance(nodes, str) else nodes or []))
    elif config.has("cpus"):
        listed = config.get_string_or_list("cpus")
        cpus = listed if isinstance(listed, str) else ",".join(listed or [])
    with connect() as client:
        made = client.call(Method.HOST_CPUPOOL_CREATE, name=name, sched=sched, cpus=cpus,
                           dryrun=dryrun)  # fmt: skip
    pool = objects([made], "{}", Method.HOST_CPUPOOL_CREATE)[0]
    sys.stdout.write(
        f'Using config file "{source}"\n'
        f"cpupool name:   {str_field(pool, 'name', Method.HOST_CPUPOOL_CREATE)}\n"
        f"scheduler:      {str_field(pool, 'sched', Method.HOST_CPUPOOL_CREATE)}\n"
        f"number of cpus: {len(int_list(pool, 'cpus', Method.HOST_CPUPOOL_CREATE))}\n"
    )
    return EXIT_SUCCESS


# --------------------------------------------------------------------------- the others


def _operands(
    opts: GlobalOptions, verb: str, args: list[str], count: int, what: str
) -> list[str] | None:
    pairs, operands = parse_options(verb, args, "h", ["help"])
    if pairs:
        show_help(opts, verb)
        return None
    want_args(verb, operands, count, what)
    return operands


def main_cpupool_destroy(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-destroy <cpu-pool>``."""
    operands = _operands(opts, "cpupool-destroy", args, 1, "a cpupool")
    if operands is None:
        return EXIT_SUCCESS
    with connect() as client:
        poolid = known_pool(client, operands[0])
        client.call(Method.HOST_CPUPOOL_DESTROY, pool=poolid)
    return EXIT_SUCCESS


def main_cpupool_rename(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-rename <cpu-pool> <newname>``."""
    operands = _operands(opts, "cpupool-rename", args, 2, "a cpupool and its new name")
    if operands is None:
        return EXIT_SUCCESS
    with connect() as client:
        poolid = known_pool(client, operands[0])
        client.call(Method.HOST_CPUPOOL_RENAME, pool=poolid, name=operands[1])
    return EXIT_SUCCESS


def _move_cpus(opts: GlobalOptions, verb: str, args: list[str], method: Method) -> int:
    operands = _operands(opts, verb, args, 2, "a cpupool and CPUs (e.g. 1,5,10-16,^13)")
    if operands is None:
        return EXIT_SUCCESS
    with connect() as client:
        poolid = known_pool(client, operands[0])
        answer = objects([client.call(method, pool=poolid, cpus=operands[1])], "{}", method)[0]
    refused = objects(answer.get("refused"), "refused", method)
    if not refused:
        return EXIT_SUCCESS
    for one in refused:
        print(f"cpu {int_field(one, 'cpu', method)}: {str_field(one, 'why', method)}",
              file=sys.stderr)  # fmt: skip
    pool = operands[0]
    if method is Method.HOST_CPUPOOL_CPU_ADD:
        print(f"some cpus may not have been added to {pool}", file=sys.stderr)
    else:
        print(f"Some cpus may have not or only partially been removed from '{pool}'.\n"
              f"If a cpu can't be added to another cpupool, add it to '{pool}' again and "
              "retry.", file=sys.stderr)  # fmt: skip
    return EXIT_FAILURE


def main_cpupool_cpu_add(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-cpu-add <cpu-pool> <cpus|node:nodes>``."""
    return _move_cpus(opts, "cpupool-cpu-add", args, Method.HOST_CPUPOOL_CPU_ADD)


def main_cpupool_cpu_remove(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-cpu-remove <cpu-pool> <cpus|node:nodes>``."""
    return _move_cpus(opts, "cpupool-cpu-remove", args, Method.HOST_CPUPOOL_CPU_REMOVE)


def main_cpupool_migrate(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-migrate <Domain> <cpu-pool>``."""
    operands = _operands(opts, "cpupool-migrate", args, 2, "a domain and a cpupool")
    if operands is None:
        return EXIT_SUCCESS
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        poolid = known_pool(client, operands[1])
        client.call(Method.DOMAIN_CPUPOOL_MIGRATE, dom=str(domid), pool=poolid)
    return EXIT_SUCCESS


def main_cpupool_numa_split(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cpupool-numa-split``: silent when it succeeds, as xl."""
    if _operands(opts, "cpupool-numa-split", args, 0, "nothing") is None:
        return EXIT_SUCCESS
    with connect() as client:
        client.call(Method.HOST_CPUPOOL_NUMA_SPLIT)
    return EXIT_SUCCESS
