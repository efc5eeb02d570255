"""xenlited's RPC socket: ``rpc.server.RpcServer`` with one handler per operation of ``ops``.

Not a Xen man page: ../shared/DESIGN.md "Processes" (the CLI talks to xenlited over a
root-only unix socket). The wire rules and error mapping are ``xenlite.rpc``'s.
"""

from __future__ import annotations

from pathlib import Path

from xenlite.daemon.ops import Operations
from xenlite.rpc.protocol import daemon_log_hint
from xenlite.rpc.server import RpcServer


def build_server(path: Path, operations: Operations) -> RpcServer:
    """The server for ``operations`` on ``path`` (not started yet)."""
    return RpcServer(path, operations.handlers(), name="xenlited", log_hint=daemon_log_hint())
