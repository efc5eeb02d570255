"""Xen's hotplug scripts (``script=`` of a disk or a vif), run as libxl runs them.

libxl, on a Linux dom0, runs a device's script once the backend's nodes are written and
before the device is used, and again once the device is gone, with the environment
``script`` (its path), ``XENBUS_TYPE`` (``vbd`` or ``vif``), ``XENBUS_PATH`` (the backend
directory, relative to dom0's home: ``backend/vif/D/N``) and ``XENBUS_BASE_PATH``
(``backend``); a vif's script also gets ``vif`` (the netback name ``vifD.N``) and ``netdev``
(the vif's gatewaydev, or empty). A disk's script runs as ``SCRIPT add`` / ``SCRIPT
remove``; a vif's as ``SCRIPT online type_if=vif`` / ``SCRIPT offline type_if=vif``. The
script reads its backend's nodes with xenstore-read and writes what it set up (a disk's
``physical-device`` and, as Xen 4.17's block-common.sh does, ``physical-device-path``; a
vif's ``hotplug-status = connected``, Xen's ``success``); on failure it writes
``hotplug-error`` (Xen's ``fatal``) and exits non-zero, and libxl reports
``script: <hotplug-error>``. A script name is under /etc/xen/scripts (libxl__abs_path),
here under the host root.

xenlite adds ``XENSTORED_PATH``, the socket of the XenStore it talks to, so that
xenstore-utils in the script reach that XenStore (which need not be at the default path).
For a host root other than ``/`` the script runs in a private mount namespace with the host
root's /var/log at /var/log: Xen's scripts log to /var/log/xen/xen-hotplug.log (and stop
when they cannot open it), and a test host's hotplug log belongs under its root, not in the
machine's. The default block script (``script=`` absent) and vif-bridge, vif-route and
vif-nat are xenlite's own code (domain/disks.py, domain/vifhost.py), not scripts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
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


def backend_env_path(backend: str) -> str:
    """``XENBUS_PATH`` of a backend directory, as libxl gives it: relative to dom0's home."""
    home = "/local/domain/0/"
    return backend[len(home) :] if backend.startswith(home) else backend


async def run_script(
    xs: XenStoreClient,
    script: Path,
    args: Sequence[str],
    *,
    kind: str,
    backend: str,
    root: Path,
    what: str,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Run ``script args`` for the device of type ``kind`` (vbd, vif) whose backend is
    ``backend``.

    :raise DomainError: naming ``what`` when the script is missing, fails or hangs, with its
        hotplug-error node and the tail of its stderr
    """
    noun = "block script" if kind == "vbd" else "vif script"
    action = args[0]
    if not os.access(script, os.X_OK):
        raise DomainError(
            what,
            f"{noun} {script} is missing or not executable",
            "install it there (chmod +x), or give its absolute path in script=",
        )
    env = {
        "script": os.fspath(script),
        "XENBUS_TYPE": kind,
        "XENBUS_PATH": backend_env_path(backend),
        "XENBUS_BASE_PATH": "backend",
        **(extra_env or {}),
        "XENSTORED_PATH": os.fspath(xs.path),
    }
    argv = _with_host_log([os.fspath(script), *args], root)
    try:
        result = await asyncio.to_thread(
            run_sync, argv, env=env, timeout=HOTPLUG_TIMEOUT, check=False
        )
    except HostError as exc:
        raise DomainError(what, f"{noun} {script} {action}: {exc.cause}", _FIX) from None
    if result.returncode == 0:
        return
    said = await xs.read_if_exists(f"{backend}/hotplug-error")
    stderr = result.stderr.decode(errors="replace").strip()[-_TAIL:]
    parts = [f"{noun} {script} {action} exited with status {result.returncode}"]
    if said:
        parts.append(f"script: {said.decode(errors='replace')}")
    if stderr:
        parts.append(f"its stderr: {stderr}")
    raise DomainError(what, "; ".join(parts), _FIX)


def _with_host_log(argv: list[str], root: Path) -> list[str]:
    """``argv`` seeing the host root's /var/log at /var/log (see the module's docstring)."""
    if os.path.realpath(root) == "/":
        return argv
    logs = under_root("/var/log", root)
    (logs / "xen").mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount --bind "$0" /var/log && exec "$@"', os.fspath(logs), *argv]  # fmt: skip


async def run_block_script(
    xs: XenStoreClient, script: Path, action: str, backend: str, *, root: Path, what: str
) -> None:
    """Run ``script action`` (add or remove) for the vbd whose backend is ``backend``."""
    await run_script(xs, script, [action], kind="vbd", backend=backend, root=root, what=what)


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
