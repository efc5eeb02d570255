"""``xenlite network-bridge start|stop|status [bridge=NAME] [netdev=IF] [--force]``: Xen's
network-bridge script, done by xenlited in its network namespace (host/netbridge.py).

``start`` prints the bridge as ``status`` does; ``stop`` prints nothing. The default bridge
is xenbr0; without ``netdev=`` the bridge has no uplink (a private network).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from xenlite.cli.commands.domains import connect, show_help
from xenlite.cli.getopt import UsageError, parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions
from xenlite.rpc.contract import Method, bad_field, bool_field, str_field

_SOURCE = Method.HOST_NETWORK_BRIDGE
_ACTIONS = ("start", "stop", "status")
_FIX = "see 'xenlite help network-bridge'"


def main_network_bridge(opts: GlobalOptions, args: list[str]) -> int:
    """``xenlite network-bridge start|stop|status [bridge=NAME] [netdev=IF] [--force]``."""
    pairs, operands = parse_options("network-bridge", args, "fh", ["force", "help"])
    force = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "network-bridge")
        force = True
    if not operands or operands[0] not in _ACTIONS:
        raise UsageError("xenlite network-bridge", "needs start, stop or status", _FIX)
    action, settings = operands[0], {"bridge": "xenbr0", "netdev": None}
    for operand in operands[1:]:
        key, sep, value = operand.partition("=")
        if not sep or key not in settings or not value:
            raise UsageError(
                "xenlite network-bridge", f"'{operand}' is not bridge=NAME or netdev=IF", _FIX
            )
        settings[key] = value
    if settings["netdev"] is not None and action != "start":
        raise UsageError("xenlite network-bridge", f"netdev= is for start, not {action}", _FIX)
    bridge = str(settings["bridge"])
    with connect() as client:
        answer = client.call(
            _SOURCE, action=action, bridge=bridge, netdev=settings["netdev"], force=force
        )
    if action != "stop":
        if not isinstance(answer, Mapping):
            raise bad_field("answer", "is not an object", _SOURCE)
        sys.stdout.write(format_status(answer))
    return EXIT_SUCCESS


def format_status(status: Mapping[str, object]) -> str:
    """The bridge, up or down, its uplink, ports and addresses, one item a line."""
    netdev = status.get("netdev")
    state = "up" if bool_field(status, "up", _SOURCE) else "down"
    lines = [
        f"bridge {str_field(status, 'bridge', _SOURCE)}: {state}, "
        + (f"netdev {netdev}" if isinstance(netdev, str) else "no uplink"),
        "  ports: " + " ".join(_strings(status, "ports")),
        "  addresses: " + " ".join(_strings(status, "addresses")),
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _strings(status: Mapping[str, object], name: str) -> list[str]:
    value = status.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_field(name, "is not a list of strings", _SOURCE)
    return [str(v) for v in value]
