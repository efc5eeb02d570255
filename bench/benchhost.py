"""What the benchmarks that run a private xenlite host share: the programs, the host's
environment, and the tear-down that leaves no QEMU, daemon, cgroup or directory behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from xenlite.base.errors import XenliteError
from xenlite.host.cgroups import remove_root_groups
from xenlite.qemu.process import qemu_pids_under

BIN = Path(sys.executable).parent
XENLITE = BIN / "xenlite"
XL = BIN / "xl"


def private_env(root: Path, accel: str = "tcg") -> dict[str, str]:
    """The environment of a host under ``root``: its own sockets, the given accelerator."""
    env = dict(os.environ, XENLITE_ROOT=os.fspath(root), XENLITE_ACCEL=accel)
    env.pop("XENLITED_SOCKET", None)
    return env


def tear_down(root: Path, env: dict[str, str]) -> None:
    """Kill the host's guests, stop its services, remove its cgroups and its root."""
    for pid in qemu_pids_under(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run([os.fspath(XENLITE), "stop"], env=env, capture_output=True, timeout=120,
                       check=False)  # fmt: skip
    with contextlib.suppress(XenliteError):
        remove_root_groups(root)
    shutil.rmtree(root, ignore_errors=True)
