"""``xl block-list``: a domain's virtual block devices.

xl(1) "block-list" (tools/xl/xl_block.c): a header, then for each vbd
``"%-5d %-3d %-6d %-5d %-6d %-8d %-30s"``: the vbd number, the backend's domid, the domain's
domid (the "handle"), the frontend's state, its event channel and ring reference (-1 until a
Xen frontend writes them; QEMU's virtio-blk has neither) and the backend's XenStore path.
A name no domain has is "an invalid domain identifier" and the others are still listed.
"""

from __future__ import annotations

import sys

from xenlite.base.errors import DomainNotFound
from xenlite.cli.commands.domains import connect, find_domain, show_help, want_args
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import Method, int_field, objects, str_field

_SOURCE = Method.DOMAIN_BLOCK_LIST
BLOCK_HEADER = (
    f"{'Vdev':<5} {'BE':<3} {'handle':<6} {'state':<5} {'evt-ch':<6} {'ring-ref':<8} "
    f"{'BE-path':<30}\n"
)


def main_block_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl block-list <Domain(s)>``."""
    pairs, operands = parse_options("block-list", args, "h", ["help"])
    if pairs:
        return show_help(opts, "block-list")
    want_args("block-list", operands, 1, "at least one domain")
    status = EXIT_SUCCESS
    out = [BLOCK_HEADER]
    with connect() as client:
        for operand in operands:
            try:
                domid, _ = find_domain(client, operand)
            except VerbExit:
                sys.stderr.write(f"{operand} is an invalid domain identifier\n")
                status = EXIT_FAILURE
                continue
            try:
                rows = objects(client.call(_SOURCE, dom=str(domid)), "[]", _SOURCE)
            except DomainNotFound:
                continue  # a domid no domain has: xl lists no disks for it
            for row in rows:
                out.append(
                    f"{int_field(row, 'devid', _SOURCE):<5d} "
                    f"{int_field(row, 'backend_id', _SOURCE):<3d} "
                    f"{int_field(row, 'frontend_id', _SOURCE):<6d} "
                    f"{int_field(row, 'state', _SOURCE):<5d} "
                    f"{int_field(row, 'evtch', _SOURCE):<6d} "
                    f"{int_field(row, 'rref', _SOURCE):<8d} "
                    f"{str_field(row, 'backend', _SOURCE):<30}\n"
                )
    sys.stdout.write("".join(out))
    return status
