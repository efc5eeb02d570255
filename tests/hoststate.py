"""What a xenlite host root holds, read from outside the daemon: for the crash tests and
bench/crash_soak.py, which must judge the daemon's recovery without asking the daemon.

A :class:`HostState` lists the host's QEMU processes, domain records, run directories,
sockets, cgroups and the domain subtrees of its XenStore. Two states compare equal when the
host holds the same things, so "nothing was left" is ``state(root) == before``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import Unsupported
from xenlite.domain import xspaths
from xenlite.host.cgroups import CgroupHost, detect_layout, parent_for_root
from xenlite.qemu.process import qemu_pids_under
from xenlite.xenstore.client import XenStore

RECORDS = "var/lib/xenlite/domains"
RUN = "run/xenlite/qemu"
XENSTORED_SOCKET = "run/xenstored/socket"


@dataclass(frozen=True, slots=True)
class HostState:
    """Everything of one host root that a domain leaves a trace in."""

    qemu_pids: tuple[int, ...]
    records: tuple[str, ...]  # file names in the records directory, temporary ones too
    restart_notes: tuple[str, ...]  # on_* restarts noted and not yet carried out
    run_dirs: tuple[str, ...]
    sockets: tuple[str, ...]
    cgroups: tuple[int, ...]  # domids with a dom<N> group under this root's parent
    xenstore_domains: tuple[str, ...]  # children of /local/domain
    vm_uuids: tuple[str, ...]  # children of /vm
    libxl_domains: tuple[str, ...]  # children of /libxl
    backends: tuple[str, ...] = ()  # KIND/DOMID under dom0's backend/ (vbd, qdisk)

    def domids(self) -> set[int]:
        """The domids that have a record."""
        return {int(n[: -len(".json")]) for n in self.records if n[:1].isdigit()}


def _names(directory: Path) -> tuple[str, ...]:
    try:
        return tuple(sorted(entry.name for entry in directory.iterdir()))
    except FileNotFoundError:
        return ()


def _listing(xs: XenStore, path: str) -> tuple[str, ...]:
    return tuple(sorted(xs.directory(path))) if xs.exists(path) else ()


def cgroup_domids(root: Path) -> tuple[int, ...]:
    """The domids with a group of this host root (none on a host without a cpu controller)."""
    try:
        layout = detect_layout()
    except Unsupported:
        return ()
    groups = CgroupHost(layout, parent_for_root(root)).domain_groups()
    return tuple(sorted(group.domid for group in groups))


def host_state(root: Path) -> HostState:
    """Read the state of host root ``root`` (its xenstored must be running)."""
    run = root / RUN
    sockets = tuple(sorted(os.fspath(p.relative_to(run)) for p in run.rglob("*.sock")))
    records = tuple(n for n in _names(root / RECORDS) if n not in ("next-domid", "restarts"))
    with XenStore.open(root / XENSTORED_SOCKET) as xs:
        domains = _listing(xs, "/local/domain")
        vms = _listing(xs, "/vm")
        libxl = _listing(xs, "/libxl")
        backends = tuple(
            f"{kind}/{domid}"
            for kind in xspaths.BACKEND_KINDS
            for domid in _listing(xs, xspaths.backend_kind_path(kind))
        )
    return HostState(
        qemu_pids=tuple(qemu_pids_under(root)),
        records=records,
        restart_notes=_names(root / RECORDS / "restarts"),
        run_dirs=_names(run),
        sockets=sockets if run.is_dir() else (),
        cgroups=cgroup_domids(root),
        xenstore_domains=domains,
        vm_uuids=vms,
        libxl_domains=libxl,
        backends=backends,
    )
