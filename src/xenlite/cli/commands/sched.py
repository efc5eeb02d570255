"""``xl sched-credit`` and ``xl sched-credit2``: domains' weights and caps.

xl(1) "sched-credit", "sched-credit2" (tools/xl/xl_sched.c): without ``-d``, one block per
cpupool that runs the scheduler: the pool line, the header ``"%-33s %4s %6s %4s"`` and a
``"%-33s %4d %6d %4d"`` row per domain of that pool (``-p`` keeps one pool); with ``-d``
alone, the header and that domain's row;
with ``-w``/``-c``, the new values are set, silently. xenlite applies them to the domain's
cgroup (``host/cgroups.py`` documents the mapping). The scheduler-global parameters
(``-s`` with ``-t``/``-r``/``-m``) belong to Xen's own scheduler, which Linux's CFS does not
have: printing them works, setting them is refused.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from xenlite.base.errors import Unsupported
from xenlite.cli.commands.domains import connect, find_domain, show_help
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import Method, int_field, objects, str_field

_SOURCE = Method.DOMAIN_SCHED_GET
HEADER = f"{'Name':<33} {'ID':>4} {'Weight':>6} {'Cap':>4}\n"


def _number(flag: str, text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise VerbExit(f"Invalid value '{text}' for {flag}\n", hint="give a number") from None


def pool_line(scheduler: str, pool: Mapping[str, object]) -> str:
    """xl_sched.c's pool line: credit's time slice, rate limit and migration delay, or
    credit2's rate limit."""
    name = str_field(pool, "name", _SOURCE)
    ratelimit = int_field(pool, "ratelimit_us", _SOURCE)
    if scheduler != "credit":
        return f"Cpupool {name}: ratelimit={ratelimit}us\n"
    tslice = int_field(pool, "tslice_ms", _SOURCE)
    delay = int_field(pool, "migration_delay_us", _SOURCE)
    return f"Cpupool {name}: tslice={tslice}ms ratelimit={ratelimit}us migration-delay={delay}us\n"


def domain_row(row: Mapping[str, object]) -> str:
    name, domid = str_field(row, "name", _SOURCE), int_field(row, "domid", _SOURCE)
    weight, cap = int_field(row, "weight", _SOURCE), int_field(row, "cap", _SOURCE)
    return f"{name:<33} {domid:4d} {weight:6d} {cap:4d}\n"


def _answer(value: object) -> Mapping[str, object]:
    """domain.sched_get's answer, checked. :raise RpcError: ``protocol`` otherwise."""
    return objects([value], "[]", _SOURCE)[0]


def _sched_verb(opts: GlobalOptions, args: list[str], scheduler: str) -> int:
    verb = f"sched-{scheduler}"
    short = "d:w:c:p:t:r:m:sh" if scheduler == "credit" else "d:w:c:p:r:sh"
    longs = ["domain=", "weight=", "cap=", "cpupool=", "schedparam", "help", "ratelimit_us="]
    if scheduler == "credit":
        longs += ["tslice_ms=", "migration_delay_us="]
    pairs, operands = parse_options(verb, args, short, longs)
    dom: str | None = None
    weight: int | None = None
    cap: int | None = None
    pool: str | None = None
    globals_asked = False
    global_values: list[str] = []
    for flag, value in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, verb)
        if flag in ("-d", "--domain"):
            dom = value
        elif flag in ("-w", "--weight"):
            weight = _number("weight", value)
        elif flag in ("-c", "--cap"):
            cap = _number("cap", value)
        elif flag in ("-p", "--cpupool"):
            pool = value
        elif flag in ("-s", "--schedparam"):
            globals_asked = True
        else:  # -t, -r, -m: Xen scheduler globals
            global_values.append(f"{flag} {value}")
    if operands:
        raise VerbExit(f"{verb}: unexpected argument '{operands[0]}'\n", hint=f"xl help {verb}")
    if global_values:
        raise Unsupported(
            f"xl {verb} -s {' '.join(global_values)}",
            "time slice, rate limit and migration delay are parameters of Xen's own "
            "scheduler; Linux's CFS, which runs xenlite's domains, has none of them",
            "set domain weights and caps (-d DOMAIN -w WEIGHT -c CAP) instead",
        )
    with connect() as client:
        if dom is None or globals_asked:
            if not globals_asked and (weight is not None or cap is not None):
                raise VerbExit("Must specify a domain.\n", hint=f"xl {verb} -d DOMAIN -w W")
            if pool is not None:
                from xenlite.cli.commands.cpupool import known_pool

                pool = known_pool(client, pool)  # xl's "unknown cpupool" before anything
            answer = _answer(client.call(Method.DOMAIN_SCHED_GET, scheduler=scheduler, pool=pool))
            out: list[str] = []
            # One block per pool of this scheduler; none (and no output) when no pool runs it.
            for block in objects(answer.get("pools"), "pools", _SOURCE):
                out.append(pool_line(scheduler, block))
                if not globals_asked:
                    out.append(HEADER)
                    out += [domain_row(r) for r in _rows(block)]
            sys.stdout.write("".join(out))
            return EXIT_SUCCESS
        domid, _ = find_domain(client, dom)
        if weight is None and cap is None:
            answer = _answer(
                client.call(Method.DOMAIN_SCHED_GET, scheduler=scheduler, dom=str(domid))
            )
            sys.stdout.write("".join([HEADER] + [domain_row(r) for r in _rows(answer)]))
            return EXIT_SUCCESS
        client.call(Method.DOMAIN_SCHED_SET, scheduler=scheduler, dom=str(domid), weight=weight,
                    cap=cap)  # fmt: skip
    return EXIT_SUCCESS


def _rows(answer: Mapping[str, object]) -> list[Mapping[str, object]]:
    return objects(answer.get("domains"), "domains", _SOURCE)


def main_sched_credit(opts: GlobalOptions, args: list[str]) -> int:
    """``xl sched-credit [-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT]
    [-m DELAY]] [-p CPUPOOL]``."""
    return _sched_verb(opts, args, "credit")


def main_sched_credit2(opts: GlobalOptions, args: list[str]) -> int:
    """``xl sched-credit2 [-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-r RATELIMIT]]
    [-p CPUPOOL]``."""
    return _sched_verb(opts, args, "credit2")
