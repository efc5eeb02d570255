"""A stand-in for QEMU at launch: a small Python program that listens on the QMP socket
named by its argument (a QEMU chardev option) and greets and answers as QEMU's monitor does,
so the launch, attach and sweep code can be tested without QEMU."""

from __future__ import annotations

import sys

from xenlite.qemu.options import opt
from xenlite.qemu.runpaths import RunPaths

GREETER = r"""
import os, socket, sys, time
path = [p[5:].replace(",,", ",") for p in sys.argv[-1].split(",") if p.startswith("path=")][0]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(4)
print("greeter up", flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
    if conn.recv(4096):
        conn.sendall(b'{"return": {}}\r\n')
    conn.close()
"""


def greeter_argv(paths: RunPaths) -> list[str]:
    chardev = f"socket,id=qmp,path={opt(paths.qmp_socket)},server=on,wait=off"
    return [sys.executable, "-c", GREETER, "-chardev", chardev]
