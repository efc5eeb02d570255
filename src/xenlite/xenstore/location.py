"""Where xenstored's dom0 socket is: the one place that says it, for the daemon that binds it
and every client (xenlite's own, ``xenlite start``, xenlited) that looks for it.

libxenstore uses ``$XENSTORED_PATH`` if set, else ``$XENSTORED_RUNDIR/socket`` (default
/var/run/xenstored/socket); a set variable is final. Without either, xenlite looks under the
host root at /run/xenstored/socket (where ``xenlite xenstored`` binds by default), then
/var/run/xenstored/socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from xenlite.base.paths import under_root

DEFAULT_SOCKET = "/run/xenstored/socket"
LEGACY_SOCKET = "/var/run/xenstored/socket"


def default_socket(root: Path | None = None) -> Path:
    """The socket ``xenlite xenstored`` binds unless told otherwise, under the host root."""
    return under_root(DEFAULT_SOCKET, root)


def socket_candidates(environ: os._Environ[str] | dict[str, str] | None = None) -> list[Path]:
    """Where the daemon's socket may be, in the order xenlite tries them."""
    env = os.environ if environ is None else environ
    if env.get("XENSTORED_PATH"):
        return [Path(env["XENSTORED_PATH"])]
    if env.get("XENSTORED_RUNDIR"):
        return [Path(env["XENSTORED_RUNDIR"]) / "socket"]
    return [default_socket(), under_root(LEGACY_SOCKET)]
