"""``xl network-list``, ``xl network-attach``, ``xl network-detach``: a domain's vifs.

xl(1) and tools/xl/xl_nic.c. network-attach reads its ``key=value`` arguments as one vif
spec (xl-network-configuration(5)) on top of xl.conf's ``vif.default.*``, prints nothing on
success and, with the global ``-N``, ``vif: `` and the NIC as libxl's JSON instead.
network-detach takes a devid, or a MAC (anything with a ``:``), and says "Unknown device X."
for one the domain does not have, as xl does.

network-list prints xl's header, then for each vif ``"%-3d %-2d "``, the MAC, and
``"%6d %5d %6d %5d/%-11d %-30s"``: the devid, the backend's domid, the handle (the devid
again), the frontend's state, its event channel and tx/rx ring references (-1: QEMU's
virtio-net has none) and the backend's XenStore path. Beyond xl, ``-l`` prints each vif as
the backend describes it to its script (bridge, vifname, script, ip, rate, gatewaydev) in a
JSON array, as ``xl list -l`` prints domains; xl's columns stay as they are.
"""

from __future__ import annotations

import sys

from xenlite.base.errors import DeviceNotFound
from xenlite.cli.commands.devices import device_rows
from xenlite.cli.commands.domains import connect, find_domain, show_help, want_args
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import Method, int_field, str_field

_SOURCE = Method.DOMAIN_NETWORK_LIST
_LONG_KEYS = ("domid", "devid", "mac", "bridge", "vifname", "script", "ip", "rate", "gatewaydev",
              "state", "backend")  # fmt: skip
NETWORK_HEADER = (
    f"{'Idx':<3} {'BE':<2} {'Mac Addr.':<17} {'handle':<6} {'state':<5} {'evt-ch':<6} "
    f"{'tx-':>5}/{'rx-ring-ref':<5} {'BE-path':<30}\n"
)


def main_network_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl network-list [-l] <Domain(s)>``."""
    pairs, operands = parse_options("network-list", args, "hl", ["help", "long"])
    if any(flag in ("-h", "--help") for flag, _ in pairs):
        return show_help(opts, "network-list")
    want_args("network-list", operands, 1, "at least one domain")
    status, rows = device_rows(operands, _SOURCE)
    if pairs:  # -l, beyond xl: the backend's view of each vif, xl list -l style
        from xenlite.config.domain.libxl_json import dumps_libxl_json

        listed = [{key: row.get(key) for key in _LONG_KEYS} for row in rows]
        sys.stdout.write(dumps_libxl_json(listed) + "\n")
        return status
    out = [NETWORK_HEADER]
    for row in rows:
        devid = int_field(row, "devid", _SOURCE)
        out.append(
            f"{devid:<3d} {int_field(row, 'backend_id', _SOURCE):<2d} "
            f"{str_field(row, 'mac', _SOURCE)}"
            f"{devid:6d} {int_field(row, 'state', _SOURCE):5d} "
            f"{int_field(row, 'evtch', _SOURCE):6d} "
            f"{int_field(row, 'rref_tx', _SOURCE):5d}/"
            f"{int_field(row, 'rref_rx', _SOURCE):<11d} "
            f"{str_field(row, 'backend', _SOURCE):<30}\n"
        )
    sys.stdout.write("".join(out))
    return status


def main_network_attach(opts: GlobalOptions, args: list[str]) -> int:
    """``xl network-attach <Domain> [key=value ...]``."""
    pairs, operands = parse_options("network-attach", args, "h", ["help"])
    if pairs:
        return show_help(opts, "network-attach")
    want_args("network-attach", operands, 1, "a domain")
    from xenlite.config.domain.devices import nic_with_defaults
    from xenlite.config.domain.libxl_json import dumps_libxl_json, struct_to_json
    from xenlite.config.domain.model import DEVID_AUTO
    from xenlite.config.hostconf.xlconf import load_xlconf
    from xenlite.config.specs.vif import parse_vif_spec

    spec, warnings = parse_vif_spec(",".join(operands[1:]), DEVID_AUTO)
    for text in warnings:
        sys.stderr.write(f"{text}\n")
    nic = nic_with_defaults(spec.to_device(), load_xlconf(None))
    if opts.dryrun:
        sys.stdout.write("vif: " + dumps_libxl_json(struct_to_json(nic)) + "\n")
        return EXIT_SUCCESS
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        client.call(Method.DOMAIN_NETWORK_ATTACH, dom=str(domid), nic=struct_to_json(nic))
    return EXIT_SUCCESS


def main_network_detach(opts: GlobalOptions, args: list[str]) -> int:
    """``xl network-detach <Domain> <DevId|mac>``."""
    pairs, operands = parse_options("network-detach", args, "h", ["help"])
    if pairs:
        return show_help(opts, "network-detach")
    want_args("network-detach", operands, 2, "a domain and a device")
    which = operands[1]
    if ":" not in which:  # xl reads a devid with atoi
        digits = which.lstrip()
        end = len(digits) - len(digits.lstrip("0123456789"))
        which = str(int(digits[:end]) if end else 0)
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        try:
            client.call(Method.DOMAIN_NETWORK_DETACH, dom=str(domid), nic=which)
        except DeviceNotFound:
            raise VerbExit(f"Unknown device {operands[1]}.\n") from None
    return EXIT_SUCCESS
