"""``xl vncviewer [--autopass] DOMAIN`` and ``xl create -V/-A``: a VNC viewer on a domain's
display.

xl(1) "vncviewer": as libxl's libxl_vncviewer_exec, the address comes from XenStore
(``/local/domain/D/console/vnc-listen`` and ``vnc-port``, which xenlited writes once QEMU's
VNC server listens), the viewer is ``vncviewer HOST:DISPLAY``, and ``--autopass`` gives it
``console/vnc-pass`` on its standard input (``-autopass``). Beyond xl: without a
``vncviewer`` on PATH (a headless host) the address is printed instead, for a viewer
elsewhere (``ssh -L 5900:HOST:PORT``), and the verb succeeds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

from xenlite.base.errors import DomainError, XenStoreError
from xenlite.cli.commands.domains import connect, find_domain, show_help, want_args
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_SUCCESS, GlobalOptions

VIEWER = "vncviewer"
VNC_PORT_BASE = 5900


@dataclass(frozen=True, slots=True)
class VncDisplay:
    listen: str
    port: int
    password: str | None

    @property
    def target(self) -> str:
        """vncviewer's HOST:DISPLAY (IPv6 hosts in brackets)."""
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"{host}:{self.port - VNC_PORT_BASE}"


def main_vncviewer(opts: GlobalOptions, args: list[str]) -> int:
    """``xl vncviewer [--autopass] <Domain>``."""
    pairs, operands = parse_options("vncviewer", args, "ah", ["autopass", "help"])
    autopass = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "vncviewer")
        autopass = True
    want_args("vncviewer", operands, 1, "a domain (name or id)")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
    return start_viewer(domid, autopass=autopass, wait=True)


def vnc_display(domid: int) -> VncDisplay:
    """The domain's VNC address (and password) as XenStore has them.

    :raise DomainError: when the domain has no VNC display
    :raise XenStoreConnectionError: when xenstored does not answer
    """
    from xenlite.xenstore.client import XenStore

    base = f"/local/domain/{domid}/console"
    with XenStore.open() as xs:
        try:
            listen = xs.read(f"{base}/vnc-listen").decode()
            port = int(xs.read(f"{base}/vnc-port"))
        except (XenStoreError, ValueError):
            raise DomainError(
                f"domain {domid}",
                "has no VNC display (it is not an HVM domain, or its config has vnc=0 or "
                "nographic=1)",
                'give the domain vnc=1 (the default for type="hvm") and create it again',
            ) from None
        try:
            password: str | None = xs.read(f"{base}/vnc-pass").decode()
        except XenStoreError:
            password = None
    return VncDisplay(listen, port, password or None)


def start_viewer(domid: int, *, autopass: bool, wait: bool) -> int:
    """Run the viewer on domain ``domid``'s display (``wait``: until it exits, as the verb
    does; else in the background, as ``xl create -V`` does), or print the address."""
    display = vnc_display(domid)
    viewer = shutil.which(VIEWER)
    if viewer is None:
        print(f"{display.listen}:{display.port}")
        print(
            f"{VIEWER} is not installed here: domain {domid}'s VNC display is "
            f"{display.target} (port {display.port}); point a VNC viewer at it",
            file=sys.stderr,
        )
        return EXIT_SUCCESS
    argv = [viewer, display.target]
    if autopass:
        argv.append("-autopass")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if autopass else None)
    if autopass and proc.stdin is not None:
        proc.stdin.write(f"{display.password or ''}\n".encode())
        proc.stdin.close()
    return proc.wait() if wait else EXIT_SUCCESS
