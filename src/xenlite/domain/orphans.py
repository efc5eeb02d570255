"""What a dead daemon may have left that no record owns, found and removed at start-up.

Not a Xen man page: ../shared/DESIGN.md "crash-only steps". Each step of create and destroy
is ordered so that the domain's record is written first and removed last: while any trace of
a domain exists (QEMU, run directory, cgroup, XenStore nodes), its record says so, and the
rebuild finishes or undoes the step from it. This sweep is the second line: a trace whose
domid or uuid no record names (a daemon killed inside ``write_atomic``, an older xenlite, a
hand-made mess) is removed too, so the host converges whatever instant the daemon died at.

Only this host root's own things are touched: run directories under its run root (a QEMU is
found there by its exact QMP socket, never by a process name), ``dom<N>`` groups under its
cgroup parent, the domain subtrees of its own xenstored, the taps (and ifb devices) whose
alias names this host root, and the vif rules in its own nftables tables.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from xenlite.base.errors import QemuError, XenliteError, XenStoreError
from xenlite.base.files import is_temporary
from xenlite.base.proc import which
from xenlite.domain import xspaths
from xenlite.host import net, nftables
from xenlite.host.cgroups import CgroupHost
from xenlite.qemu.process import attach
from xenlite.qemu.runpaths import RunPaths
from xenlite.xenstore.client import XenStoreClient

log = logging.getLogger(__name__)

KILL_TIMEOUT = 5.0


@dataclass(slots=True)
class Swept:
    """What one sweep removed, for the log and the tests."""

    qemu_pids: list[int] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)
    cgroups: list[int] = field(default_factory=list)
    xenstore: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    taps: list[str] = field(default_factory=list)
    vif_rules: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.qemu_pids, self.run_dirs, self.cgroups, self.xenstore, self.temp_files,
             self.taps, self.vif_rules)
        )  # fmt: skip


def sweep_files(
    run_root: Path, record_dir: Path, cgroups: CgroupHost | None, domids: set[int]
) -> Swept:
    """Kill the QEMU of every run directory no live domain owns and remove the directory,
    the cgroups of domids not in ``domids`` and the temporary files of interrupted atomic
    writes. Blocking: run it in a worker thread."""
    swept = Swept()
    for directory in _children(run_root):
        if directory.name.isdigit() and int(directory.name) in domids:
            continue
        process = attach(RunPaths.in_directory(directory))
        if process is not None:
            process.kill()
            with contextlib.suppress(QemuError):
                process.wait_exit(KILL_TIMEOUT)
            process.close()
            swept.qemu_pids.append(process.pid)
        shutil.rmtree(directory, ignore_errors=True)
        swept.run_dirs.append(str(directory))
    if cgroups is not None:
        for group in cgroups.domain_groups():
            if group.domid not in domids:
                with contextlib.suppress(XenliteError):
                    group.remove()
                    swept.cgroups.append(group.domid)
    for temporary in _children(record_dir) + _children(record_dir / "restarts"):
        if is_temporary(temporary):  # the writer died before its rename
            with contextlib.suppress(OSError):
                temporary.unlink()
                swept.temp_files.append(str(temporary))
    return swept


def sweep_taps(root: Path, domids: set[int], swept: Swept) -> None:
    """Remove the taps and ifb devices this host root made (their alias says so,
    host/net.py) and its vif rules (host/nftables.py) for domids not in ``domids``.
    Blocking: run it in a worker thread. Without netlink (no permission) the sweep says so
    in the log and goes on."""
    try:
        tagged = net.tagged(net.owner_tag(root))
    except XenliteError as exc:
        log.warning("taps not swept: %s", exc)
        return
    for tap, domid in sorted(tagged.items()):
        if domid not in domids:
            with contextlib.suppress(XenliteError):
                if net.delete(tap):
                    swept.taps.append(tap)
    if which("nft") is None:
        return  # without nft no rules were made (host/nftables.py)
    try:
        guarded = nftables.vifs(net.owner_tag(root))
    except XenliteError as exc:
        log.warning("vif rules not swept: %s", exc)
        return
    for domid, devid in sorted(guarded):
        if domid not in domids:
            with contextlib.suppress(XenliteError):
                nftables.release(net.owner_tag(root), domid, devid)
                swept.vif_rules.append(nftables.chain_name(domid, devid))


async def sweep_xenstore(
    xs: XenStoreClient, domids: set[int], uuids: set[str], swept: Swept
) -> None:
    """Remove ``/local/domain/N``, ``/libxl/N``, ``/vm/UUID`` and dom0's ``backend/KIND/N``
    of domains no record names (dom0's stay) and release such domids from XenStore."""
    keep_ids = {str(d) for d in domids} | {"0"}
    keep_uuids = set(uuids) | {xspaths.DOM0_UUID}
    stale_ids: set[int] = set()
    backends = [(xspaths.backend_kind_path(kind), keep_ids) for kind in xspaths.BACKEND_KINDS]
    parents = [("/local/domain", keep_ids), ("/libxl", keep_ids), ("/vm", keep_uuids), *backends]
    for parent, keep in parents:
        for child in await xs.directory_if_exists(parent):
            if child in keep:
                continue
            await _rm(xs, f"{parent}/{child}")
            swept.xenstore.append(f"{parent}/{child}")
            if parent != "/vm" and child.isdigit():
                stale_ids.add(int(child))
    for domid in sorted(stale_ids):
        if await xs.is_domain_introduced(domid):
            await xs.release(domid)


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except FileNotFoundError:
        return []


async def _rm(xs: XenStoreClient, path: str) -> None:
    try:
        await xs.rm(path)
    except XenStoreError as exc:
        if exc.wire_name != "ENOENT":
            raise
