"""A domain's disks: each xl disk spec checked against the host and the other domains, then
handed to QEMU (qemu/blockdev.py) and described in XenStore as libxl describes it.

xl-disk-configuration(5) (targets, formats, access, discard, direct-io-safe),
xen-vbd-interface(7) (the device number of a vdev), xenstore-paths (backend and frontend
directories). libxl's choice of backend is kept, because it is what ``xenstore-ls`` shows:
a raw block device is ``phy`` (blkback on Xen, ``backend/vbd``), anything else ``qdisk``
(QEMU's backend on Xen, ``backend/qdisk``). Here QEMU serves both, as virtio-blk.

The guest sees its disks as ``/dev/vda``, ``/dev/vdb``, ... in the order of their vbd
numbers (``xvda`` before ``xvdb``, ``hda`` before ``xvda``), each with its vdev as the
virtio serial (``/sys/block/vdX/serial``).

Choices, and why:

- A relative target that is a file in the directory ``xl create`` runs in is made absolute
  by xl (libxl, inside xl, opens it from there; xenlited runs elsewhere). Any other
  relative target is under ``/dev``, as Xen's block script expands it (``phy:vg/lv`` is
  ``/dev/vg/lv``).
- In use: a target already attached to a running domain, read-write on either side, is
  refused naming that domain, as Xen's block script refuses it; read-only sharing is fine.
  The same file is recognised by device and inode, a block device by its device number.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from xenlite.base.errors import ConfigError, DomainError, HostError, Unsupported
from xenlite.config.domain.model import DeviceDisk, DiskBackend, DiskFormat
from xenlite.config.specs.disk import vdev_to_devid
from xenlite.domain import xspaths
from xenlite.domain.hotplug import XEN_SCRIPT_DIR
from xenlite.domain.xspaths import Node
from xenlite.host import lvm
from xenlite.qemu.blockdev import BlockDisk, image_format
from xenlite.xenstore.client import XenStoreClient

# libxl_disk_format -> QEMU's format driver and the name qemu-img info gives it.
QEMU_DRIVERS = {
    DiskFormat.RAW: "raw",
    DiskFormat.QCOW: "qcow",
    DiskFormat.QCOW2: "qcow2",
    DiskFormat.VHD: "vpc",
    DiskFormat.QED: "qed",
}
# libxl's name of a format in a qdisk backend's params ("aio:/srv/web.img").
PARAMS_FORMATS = {
    DiskFormat.RAW: "aio",
    DiskFormat.EMPTY: "aio",
    DiskFormat.QCOW: "qcow",
    DiskFormat.QCOW2: "qcow2",
    DiskFormat.VHD: "vhd",
    DiskFormat.QED: "qed",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedDisk:
    """One disk of a domain, checked and resolved. ``disk`` has what libxl fills in at
    create (and ``xl list -l`` shows): the backend it chose and the discard default."""

    disk: DeviceDisk
    qemu: BlockDisk

    @property
    def number(self) -> int:
        """The vbd number (xen-vbd-interface(7))."""
        return self.qemu.number

    @property
    def vdev(self) -> str:
        return self.qemu.vdev

    @property
    def path(self) -> str:
        return self.qemu.path


def describe(disk: DeviceDisk) -> str:
    """How errors name a disk: ``disk xvda (/srv/web.img)``, ``cdrom hdc``."""
    kind = "cdrom" if disk.is_cdrom else "disk"
    return f"{kind} {disk.vdev} ({disk.pdev_path})" if disk.pdev_path else f"{kind} {disk.vdev}"


def prepare_disks(
    disks: Sequence[DeviceDisk],
    *,
    domain: str,
    attached: Iterable[tuple[str, DeviceDisk]] = (),
    existing: Sequence[DeviceDisk] = (),
) -> tuple[PreparedDisk, ...]:
    """Check each disk of domain ``domain`` and resolve it, in the config's order.

    ``attached`` are the disks of the other domains, as (domain name, disk); ``existing``
    the disks the domain already has (block-attach): their vdevs and targets are taken.

    :raise Unsupported: for a disk feature xenlite does not have (yet)
    :raise DomainError: for a vdev no device number exists for, a relative file path, a
        missing, unusable or mismatched target, a vdev given twice, or a target in use by
        another domain
    """
    prepared: list[PreparedDisk] = []
    numbers = {vdev_to_devid(d.vdev or ""): d.vdev or "" for d in existing}
    for disk in disks:
        one = _prepare(disk)
        if one.number in numbers:
            raise DomainError(
                describe(disk),
                f"its vdev is the same guest device as {numbers[one.number]}'s (vbd {one.number})",
                "give each disk its own vdev (xvda, xvdb, ...)",
            )
        numbers[one.number] = disk.vdev or ""
        prepared.append(one)
    others = [(name, d) for name, d in attached if d.pdev_path]
    own = [(domain, d) for d in existing if d.pdev_path]
    for index, one in enumerate(prepared):
        earlier = [(domain, p.disk) for p in prepared[:index]]
        _refuse_in_use(one, [*others, *own, *earlier])
    return tuple(prepared)


def vbd_number(vdev: str, what: str) -> int:
    """The xen-vbd-interface(7) number of ``vdev`` (a name, or a number as it is).

    :raise DomainError: naming ``what`` when no number exists for it
    """
    try:
        return vdev_to_devid(vdev)
    except ConfigError as exc:
        raise DomainError(what, exc.cause, exc.fix) from None


def qemu_disks(prepared: Sequence[PreparedDisk]) -> list[BlockDisk]:
    """The disks as QEMU gets them: in vbd-number order, the order the guest sees."""
    return [p.qemu for p in sorted(prepared, key=lambda p: p.number)]


def _prepare(disk: DeviceDisk) -> PreparedDisk:
    what = describe(disk)
    _refuse_unsupported(disk, what)
    number = vbd_number(disk.vdev or "", what)
    if disk.is_cdrom:
        return _prepare_cdrom(disk, what, number)
    if disk.script is not None:
        return _prepare_scripted(disk, what, number)
    qemu = _open_target(disk, what, number)
    phy = qemu.host_device and disk.format is DiskFormat.RAW
    resolved = replace(
        disk, backend=DiskBackend.PHY if phy else DiskBackend.QDISK, discard_enable=qemu.discard
    )
    return PreparedDisk(disk=resolved, qemu=qemu)


def _prepare_cdrom(disk: DeviceDisk, what: str, number: int) -> PreparedDisk:
    # A cdrom is always qdisk, as libxl makes every cdrom of a guest with a device model
    # (the drive and its backend path stay while media come and go), and read-only.
    if disk.backend not in (DiskBackend.UNKNOWN, DiskBackend.QDISK):
        raise DomainError(
            what,
            f"backendtype={disk.backend}: a cdrom drive is served by QEMU (qdisk), as libxl "
            "serves the cdroms of guests with a device model",
            "remove backendtype= from the cdrom's spec",
        )
    resolved = replace(disk, backend=DiskBackend.QDISK, readwrite=0, discard_enable=False)
    if disk.format is DiskFormat.EMPTY:
        empty = BlockDisk(
            number=number, vdev=disk.vdev or "", path="", host_device=False, driver="raw",
            read_only=True, discard=False, direct=False, cdrom=True,
        )  # fmt: skip
        return PreparedDisk(disk=replace(resolved, pdev_path=""), qemu=empty)
    qemu = _open_target(resolved, what, number)
    return PreparedDisk(disk=resolved, qemu=replace(qemu, cdrom=True))


def _prepare_scripted(disk: DeviceDisk, what: str, number: int) -> PreparedDisk:
    # libxl: a script makes the disk phy (blkback on the device the script sets up), the
    # target is the script's to read (an iSCSI name, a DRBD resource, ...), so it is not
    # looked at here; sharing checks are the script's, as they are Xen's block script's.
    if disk.backend not in (DiskBackend.UNKNOWN, DiskBackend.PHY):
        raise DomainError(
            what,
            f"backendtype={disk.backend} cannot run a block script (script=): only phy does, "
            "as in libxl",
            "remove backendtype= (or script=)",
        )
    if disk.format is not DiskFormat.RAW:
        raise DomainError(
            what,
            f"format {disk.format} with script=: a block script gives a raw block device",
            "remove format= (or script=)",
        )
    readwrite = bool(disk.readwrite)
    discard = disk.discard_enable if disk.discard_enable is not None else readwrite
    resolved = replace(disk, backend=DiskBackend.PHY, discard_enable=discard)
    pending = BlockDisk(
        number=number, vdev=disk.vdev or "", path="", host_device=True, driver="raw",
        read_only=not readwrite, discard=discard, direct=disk.direct_io_safe,
    )  # fmt: skip
    return PreparedDisk(disk=resolved, qemu=pending)


def with_script_device(prepared: PreparedDisk, device: str) -> PreparedDisk:
    """A scripted disk given the block device its script set up.

    :raise DomainError: when ``device`` is not there or not a block device
    """
    what = describe(prepared.disk)
    info = _stat(device, what, device)
    if not stat.S_ISBLK(info.st_mode):
        raise DomainError(
            what,
            f"its block script set up {device}, which is not a block device",
            "make the script write a block device (blkback serves only those)",
        )
    _check_access(prepared.disk, device, what)
    return replace(prepared, qemu=replace(prepared.qemu, path=device))


def _open_target(disk: DeviceDisk, what: str, number: int) -> BlockDisk:
    """Check the disk's target on the host (there, usable, of the spec's format) and say
    how QEMU opens it."""
    path = _target_path(disk)
    info = _stat(path, what, disk.pdev_path or "")
    block_device = stat.S_ISBLK(info.st_mode)
    if disk.backend is DiskBackend.PHY and not block_device:
        raise DomainError(
            what,
            f"backendtype phy needs a block device, and {path} is a file",
            "remove backendtype=phy (a file is served as qdisk), or give a block device",
        )
    _check_access(disk, path, what)
    driver = QEMU_DRIVERS[disk.format]
    found = image_format(path)
    if found != driver:
        spelled = next((f for f, d in QEMU_DRIVERS.items() if d == found), None)
        fix = (
            f"write format={spelled} in the disk spec"
            if spelled is not None
            else f"convert the image (qemu-img convert -O qcow2 {path} NEW) or use another"
        )
        raise DomainError(
            what,
            f"the spec says format {disk.format} but the image is {found} (qemu-img info)",
            fix,
        )
    readwrite = bool(disk.readwrite)
    return BlockDisk(
        number=number,
        vdev=disk.vdev or "",
        path=path,
        host_device=block_device,
        driver=driver,
        read_only=not readwrite,
        discard=disk.discard_enable if disk.discard_enable is not None else readwrite,
        direct=disk.direct_io_safe,
    )


def _refuse_unsupported(disk: DeviceDisk, what: str) -> None:
    if disk.script is not None and disk.is_cdrom:
        raise DomainError(
            what,
            "a cdrom drive is QEMU's (qdisk) and runs no block script",
            "remove script= from the cdrom's spec",
        )
    if disk.backend_domname not in xspaths.DOM0_NAMES:
        raise Unsupported(
            what,
            f"backend={disk.backend_domname}: xenlite serves every disk from dom0 (there "
            "are no driver domains on a QEMU host)",
            "remove backend= from the disk spec",
        )
    if disk.backend in (DiskBackend.TAP, DiskBackend.STANDALONE):
        raise Unsupported(
            what,
            f"backendtype={disk.backend} has no counterpart on a QEMU host",
            "remove backendtype= (or use phy or qdisk)",
        )
    if disk.colo_enable:
        raise Unsupported(
            what,
            "COLO disk replication does not exist on a QEMU host",
            "remove colo= and the colo-* keys",
        )
    if disk.format is DiskFormat.EMPTY or not disk.pdev_path:
        if not disk.is_cdrom:
            raise DomainError(what, "has no target", "give the disk's file or device: target=PATH")
        if disk.pdev_path or disk.format is not DiskFormat.EMPTY:
            raise DomainError(
                what,
                "an empty cdrom drive has format empty and no target",
                "give the medium (target=PATH), or leave out both format and target",
            )
        return
    if disk.format not in QEMU_DRIVERS:
        raise Unsupported(
            what, f"format {disk.format} is unknown to xenlite", "use format=raw or qcow2"
        )


def _target_path(disk: DeviceDisk) -> str:
    # Relative: a device under /dev, as Xen's block script expands it (expand_dev); xl create
    # has already made a relative path to a file in its directory absolute.
    path = disk.pdev_path or ""
    return path if path.startswith("/") else os.path.join("/dev", path)


def _stat(path: str, what: str, given: str) -> os.stat_result:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _missing(path, what, given) from None
    except OSError as exc:
        raise DomainError(
            what, f"{path} cannot be looked at: {exc.strerror or exc}", "check the path"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise DomainError(
            what, f"{path} is a directory", "give a disk image file or a block device"
        )
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise DomainError(
            what,
            f"{path} is neither a file nor a block device",
            "give a disk image file or a block device",
        )
    return info


def _missing(path: str, what: str, given: str) -> DomainError:
    cause = f"{path} does not exist"
    if not given.startswith("/"):
        cause = f"{given} is neither a file in xl's directory nor a device ({path})"
    fix = "create it first (e.g. qemu-img create -f raw PATH 4G), or correct the path"
    volume = _lvm_diagnosis(path)
    if volume is not None:
        return DomainError(what, f"{cause}: {volume.cause}", volume.fix)
    return DomainError(what, cause, fix)


def _lvm_diagnosis(path: str) -> lvm.Diagnosis | None:
    """Why a missing /dev/VG/LV is missing, from lvm2; None for any other path, and for a
    /dev/DIR/NAME where DIR is a directory of /dev that is no volume group."""
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "dev" or not parts[2] or not parts[3]:
        return None
    try:
        found = lvm.diagnose(parts[2], parts[3])
    except HostError as exc:
        log.warning("cannot ask lvm2 about %s: %s", path, exc)
        return None
    if found.absence is lvm.Absence.NO_GROUP and os.path.isdir(os.path.dirname(path)):
        return None
    return found


def _check_access(disk: DeviceDisk, path: str, what: str) -> None:
    mode = os.R_OK | (os.W_OK if disk.readwrite else 0)
    if os.access(path, mode):
        return
    if disk.readwrite and os.access(path, os.R_OK):
        raise DomainError(
            what,
            f"{path} cannot be opened for writing",
            "make it writable, or attach it read-only (access r)",
        )
    raise DomainError(what, f"{path} cannot be read", "check its permissions")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    if stat.S_ISBLK(info.st_mode):
        return (-1, info.st_rdev)
    return (info.st_dev, info.st_ino)


def _refuse_in_use(one: PreparedDisk, attached: Sequence[tuple[str, DeviceDisk]]) -> None:
    mine = _identity(one.path)
    if mine is None:
        return
    for name, other in attached:
        if _identity(_target_path(other)) != mine:
            continue
        if one.disk.readwrite or other.readwrite:
            how = "read-write" if other.readwrite else "read-only"
            raise DomainError(
                describe(one.disk),
                f"{one.path} is already attached {how} to domain '{name}' (as {other.vdev})",
                "detach it there first (or give each domain its own copy); only read-only "
                "sharing (access r on both sides) is allowed",
            )


# ---------------------------------------------------------------- XenStore


def vbd_roots(domid: int, disk: DeviceDisk) -> tuple[str, str, str]:
    """The directories that describe one disk (its unplug removes them)."""
    number = vdev_to_devid(disk.vdev or "")
    kind = "vbd" if disk.backend is DiskBackend.PHY else "qdisk"
    return (
        xspaths.backend_path(kind, domid, number),
        xspaths.frontend_path("vbd", domid, number),
        xspaths.libxl_device_path(domid, "vbd", number),
    )


def vbd_nodes(domid: int, disks: Sequence[DeviceDisk]) -> list[Node]:
    """The backend, frontend and /libxl nodes libxl writes for each disk of a created
    domain (``PreparedDisk.disk``: backend and discard resolved), already in state 4
    (Connected): the device is live in QEMU from the start. The /libxl record holds its
    "trustworthy copy" of the backend's nodes, as libxl's does."""
    nodes: list[Node] = []
    for disk in disks:
        number = vdev_to_devid(disk.vdev or "")
        back, front, record = vbd_roots(domid, disk)
        device_type = "cdrom" if disk.is_cdrom else "disk"
        entries = [
            *medium_entries(disk),
            ("frontend-id", str(domid)),
            ("online", "1"),
            ("removable", str(int(bool(disk.removable)))),
            ("bootable", "1"),
            ("state", xspaths.XENBUS_CONNECTED),
            ("dev", disk.vdev or ""),
            ("mode", "w" if disk.readwrite else "r"),
            ("device-type", device_type),
            ("discard-enable", "1" if disk.discard_enable else "0"),
        ]
        if disk.backend is DiskBackend.PHY:
            script = disk.script or "block"
            entries.append(("script", os.path.join(XEN_SCRIPT_DIR, script)))
        if disk.direct_io_safe:
            entries.append(("direct-io-safe", "1"))
        nodes += xspaths.device_nodes(
            domid,
            (back, front, record),
            entries,
            [Node("virtual-device", str(number)), Node("device-type", device_type)],
        )
    return nodes


def medium_entries(disk: DeviceDisk, *, ejected: bool = False) -> list[tuple[str, str]]:
    """The backend's ``params`` and ``type`` nodes for the disk's target: the device for
    phy, ``FORMAT:PATH`` for qdisk (``aio:`` for an empty drive at create, ``""`` once
    ``ejected``, as libxl_cdrom_insert writes)."""
    path = disk.pdev_path or ""
    if disk.backend is DiskBackend.PHY:
        params = path
    elif ejected:
        params = ""
    else:
        params = f"{PARAMS_FORMATS.get(disk.format, disk.format)}:{path}"
    return [("params", params), ("type", str(disk.backend))]


@dataclass(frozen=True, slots=True)
class VbdRow:
    """One line of ``xl block-list``, as libxl_device_disk_getinfo reads it from XenStore."""

    devid: int
    backend_id: int
    frontend_id: int
    state: int
    evtch: int  # the frontend's event channel; -1 until a Xen frontend writes one
    rref: int  # its ring reference; likewise
    backend: str


async def vbd_rows(xs: XenStoreClient, domid: int) -> list[VbdRow]:
    """The domain's vbds from libxl's device records and their frontend nodes, by devid."""
    rows = []
    records = f"{xspaths.libxl_path(domid)}/device/vbd"
    for name in sorted(await xs.directory_if_exists(records), key=xspaths.numeric_order):
        front = await xspaths.read_str(xs, f"{records}/{name}/frontend")
        back = await xspaths.read_str(xs, f"{records}/{name}/backend")
        if front is None or back is None or not name.isdigit():
            continue
        rows.append(
            VbdRow(
                devid=int(name),
                backend_id=xspaths.int_or_unset(await xspaths.read_str(xs, f"{front}/backend-id")),
                frontend_id=domid,
                state=xspaths.int_or_unset(await xspaths.read_str(xs, f"{front}/state")),
                evtch=xspaths.int_or_unset(await xspaths.read_str(xs, f"{front}/event-channel")),
                rref=xspaths.int_or_unset(await xspaths.read_str(xs, f"{front}/ring-ref")),
                backend=back,
            )
        )
    return rows
