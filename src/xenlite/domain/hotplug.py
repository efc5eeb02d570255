"""Xen's block hotplug scripts (``script=`` of a disk), run as libxl runs them.

libxl, on a Linux dom0, runs a phy disk's script as ``SCRIPT add`` once the backend's nodes
are written and before the device is used, and ``SCRIPT remove`` once the device is gone,
with the environment ``script`` (its path), ``XENBUS_TYPE`` (``vbd``), ``XENBUS_PATH`` (the
backend directory) and ``XENBUS_BASE_PATH`` (``backend``). The script reads the backend's
nodes (``params``, ``mode``) with xenstore-read, sets the device up and writes
``physical-device`` (MAJOR:MINOR in hex) and, as Xen 4.17's block-common.sh does,
``physical-device-path``; on failure it writes ``hotplug-error`` (Xen's ``fatal``) and
exits non-zero, and libxl reports ``script: <hotplug-error>``. A script name is under
/etc/xen/scripts (libxl__abs_path), here under the host root.

xenlite adds ``XENSTORED_PATH``, the socket of the XenStore it talks to, so that
xenstore-utils in the script reach that XenStore (which need not be at the default path).
Whatever the script set up is then given to QEMU as the disk's block device. The default
block script (``script=`` absent) is xenlite's own code (domain/disks.py), not a script.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from xenlite.base.errors import DomainError, HostError
from xenlite.base.paths import under_root
from xenlite.base.proc import run_sync
from xenlite.xenstore.client import XenStoreClient

XEN_SCRIPT_DIR = "/etc/xen/scripts"  # libxl__xen_script_dir_path()
HOTPLUG_TIMEOUT = 40.0  # libxl's LIBXL_HOTPLUG_TIMEOUT, seconds
_TAIL = 1500


def script_path(script: str, root: Path) -> Path:
    """Where ``script=`` is: an absolute path as it is, a name under the host root's
    /etc/xen/scripts."""
    return Path(script) if os.path.isabs(script) else under_root(XEN_SCRIPT_DIR, root) / script


async def run_block_script(
    xs: XenStoreClient, script: Path, action: str, backend: str, *, what: str
) -> None:
    """Run ``script action`` (add or remove) for the vbd whose backend is ``backend``.

    :raise DomainError: naming ``what`` when the script is missing, fails or hangs, with its
        hotplug-error node and the tail of its stderr
    """
    if not os.access(script, os.X_OK):
        raise DomainError(
            what,
            f"block script {script} is missing or not executable",
            "install it there (chmod +x), or give its absolute path in script=",
        )
    env = {
        "script": os.fspath(script),
        "XENBUS_TYPE": "vbd",
        "XENBUS_PATH": backend,
        "XENBUS_BASE_PATH": "backend",
        "XENSTORED_PATH": os.fspath(xs.path),
    }
    try:
        result = await asyncio.to_thread(
            run_sync, [script, action], env=env, timeout=HOTPLUG_TIMEOUT, check=False
        )
    except HostError as exc:
        raise DomainError(what, f"block script {script} {action}: {exc.cause}", _FIX) from None
    if result.returncode == 0:
        return
    said = await xs.read_if_exists(f"{backend}/hotplug-error")
    stderr = result.stderr.decode(errors="replace").strip()[-_TAIL:]
    parts = [f"block script {script} {action} exited with status {result.returncode}"]
    if said:
        parts.append(f"script: {said.decode(errors='replace')}")
    if stderr:
        parts.append(f"its stderr: {stderr}")
    raise DomainError(what, "; ".join(parts), _FIX)


_FIX = "see what the script needs (run it by hand with the environment above), or remove script="


async def script_device(xs: XenStoreClient, backend: str, *, script: Path, what: str) -> str:
    """The block device the script set up: ``physical-device-path``, else the device of
    ``physical-device`` (MAJOR:MINOR in hex) under /dev/block.

    :raise DomainError: when the script wrote neither
    """
    path = await xs.read_if_exists(f"{backend}/physical-device-path")
    if path:
        return path.decode()
    numbers = (await xs.read_if_exists(f"{backend}/physical-device") or b"").decode()
    major, _, minor = numbers.partition(":")
    if _is_hex(major) and _is_hex(minor):
        return f"/dev/block/{int(major, 16)}:{int(minor, 16)}"
    raise DomainError(
        what,
        f"block script {script} add wrote no physical-device-path and no valid "
        f"physical-device (MAJOR:MINOR in hex) under {backend}",
        "make the script write the device it set up, as Xen's block-common.sh write_dev does",
    )


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)
