"""A guest disk -> QEMU's ``-blockdev`` nodes and its virtio-blk or scsi-cd device; the media
of cdrom drives; image formats.

xl-disk-configuration(5) names what a disk is (target, format, access, discard,
direct-io-safe); QEMU's block layer does it: a protocol node (``file`` for an image file,
``host_device`` for a block device) under a format node (``raw``, ``qcow2``, ...), and a
``virtio-blk-pci`` device the guest sees, its serial the Xen vdev (``xvda``) so a guest can
find its disk by the name its xl.cfg gives (``/sys/block/vdX/serial``).

Choices, and why:

- ``discard=unmap`` when the disk has discard (xl's default for a writable disk), else
  ``ignore``: the backend advertises discard and passes it down, as Xen's qdisk does.
- ``cache.direct=on`` (O_DIRECT) only with ``direct-io-safe``: Xen's qdisk avoids O_DIRECT
  unless told it is safe, and so does xenlite (tmpfs, for one, has no O_DIRECT).
- The format is the spec's, checked against what ``qemu-img info`` finds in the image: a
  qcow2 image given as raw (xl's default) would show the guest its qcow2 header as data,
  and a raw file given as qcow2 cannot open. The file's name is never looked at.
- Every disk sits in a slot of one PCIe-to-PCI bridge (``pcie-pci-bridge``, SHPC hot-plug)
  at slot 0x10 of the root bus: q35's root bus takes no hot-plugged device, the bridge's
  31 slots do, and a disk that came with the config can be unplugged like one attached
  later. One bridge costs the guest's boot nothing measurable, where a PCIe root port per
  disk costs about 45 ms each under TCG. The config's disks take slots 1, 2, ... in vbd
  order, so the guest enumerates them in that order.
- A cdrom (``devtype=cdrom``) is a ``scsi-cd`` on one ``virtio-scsi-pci`` controller (id
  ``cdscsi``, in the bridge slot after the disks): the guest sees ``/dev/sr0``, ``/dev/sr1``,
  ... with a tray and a removable medium, so ``xl cd-insert`` and ``cd-eject`` change what
  it reads (virtio-blk has no removable media). The drives take SCSI targets 0, 1, ... in
  vbd order; a hot-plugged one the lowest free target (QEMU's choice). The controller is
  there only for a domain that has a cdrom, and is hot-plugged with its first one.
- A medium's nodes are named after its drive (``vbd5632``), or ``vbd5632.1`` when a new
  medium comes while the old one still holds that name: the new medium's nodes are opened
  before the old one leaves the drive, so a medium that cannot be opened changes nothing.
  QEMU's ``query-block`` says which name a drive's medium has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import CommandFailed, HostError
from xenlite.base.proc import require_program, run_sync

QEMU_IMG = "qemu-img"
QEMU_IMG_PACKAGE = "qemu-utils"
QEMU_IMG_TIMEOUT = 30.0
DISK_DEVICE = "virtio-blk-pci"
SERIAL_MAX = 20  # virtio-blk's serial: VIRTIO_BLK_ID_BYTES
BRIDGE_DEVICE = "pcie-pci-bridge"
LEGACY_BRIDGE_DEVICE = "pci-bridge"  # on an HVM domain's i440FX machine (qemu/hvm.py)
BRIDGE_ID = "vbdbridge"
BRIDGE_ADDR = "0x10"
DISK_SLOTS = range(1, 32)  # the bridge's slots a disk may take (0 is the bridge's own)
CDROM_DEVICE = "scsi-cd"
CDROM_CONTROLLER = "virtio-scsi-pci"
CDROM_CONTROLLER_ID = "cdscsi"


@dataclass(frozen=True, slots=True)
class BlockDisk:
    """One guest disk as QEMU opens it."""

    number: int  # the vbd device number (xen-vbd-interface(7)): node and device names
    vdev: str
    path: str  # "" for an empty cdrom drive
    host_device: bool  # a block device (host_device driver), else an image file
    driver: str  # QEMU's format driver: raw, qcow2, qcow, vpc, qed
    read_only: bool
    discard: bool
    direct: bool
    cdrom: bool = False

    @property
    def node(self) -> str:
        return node_name(self.number)

    @property
    def empty(self) -> bool:
        """A cdrom drive with no medium."""
        return not self.path


def node_name(number: int) -> str:
    """The format node (and device id) of vbd ``number``; its protocol node adds -file."""
    return f"vbd{number}"


def pci_bridge(bridge_id: str, addr: str, *, legacy: bool, chassis: int) -> dict[str, str]:
    """The ``-device`` properties of a hot-plug bridge at ``addr`` of the root bus: a
    PCIe-to-PCI bridge on q35, a PCI-to-PCI bridge (its own ``chassis``) on i440FX."""
    if legacy:
        return {"driver": LEGACY_BRIDGE_DEVICE, "id": bridge_id, "bus": "pci.0", "addr": addr,
                "chassis_nr": str(chassis)}  # fmt: skip
    return {"driver": BRIDGE_DEVICE, "id": bridge_id, "bus": "pcie.0", "addr": addr}


def disk_bridge(*, legacy: bool = False) -> dict[str, str]:
    """The ``-device`` properties of the bridge the domain's disks sit on."""
    return pci_bridge(BRIDGE_ID, BRIDGE_ADDR, legacy=legacy, chassis=1)


def cdrom_controller(slot: int) -> dict[str, str]:
    """The ``-device`` properties of the SCSI controller of the domain's cdrom drives."""
    return {"driver": CDROM_CONTROLLER, "id": CDROM_CONTROLLER_ID, "bus": BRIDGE_ID,
            "addr": f"{slot:#x}"}  # fmt: skip


def disk_layout(
    disks: list[BlockDisk], *, legacy: bool = False
) -> list[tuple[list[dict[str, object]], dict[str, str]]]:
    """The config's disks (in vbd order) as QEMU starts with them: for each device in turn,
    the ``-blockdev`` nodes it needs and its ``-device`` properties; the bridge comes first
    (a legacy PCI one on an HVM domain's machine).

    :raise ValueError: when the disks need more than the bridge's slots
    """
    plain = [d for d in disks if not d.cdrom]
    cdroms = [d for d in disks if d.cdrom]
    if len(plain) + bool(cdroms) > len(DISK_SLOTS):
        raise ValueError(f"{len(plain)} disks (and a cdrom controller) need too many slots")
    bridge = disk_bridge(legacy=legacy)
    layout: list[tuple[list[dict[str, object]], dict[str, str]]] = [([], bridge)]
    layout += [(block_nodes(d), disk_device(d, s)) for s, d in zip(DISK_SLOTS, plain, strict=False)]
    if cdroms:
        layout.append(([], cdrom_controller(DISK_SLOTS[len(plain)])))
        layout += [(block_nodes(d), cdrom_device(d)) for d in cdroms]
    return layout


def bridge_devices(query_pci: object, bridge_id: str = BRIDGE_ID) -> list[dict[str, object]] | None:
    """The devices in the slots of bridge ``bridge_id`` (the disks' by default), from
    ``query-pci``; None without that bridge."""
    for bus in query_pci if isinstance(query_pci, list) else []:
        for device in bus.get("devices", []) if isinstance(bus, dict) else []:
            bridge = device.get("pci_bridge") if isinstance(device, dict) else None
            if device.get("qdev_id") == bridge_id and isinstance(bridge, dict):
                found = bridge.get("devices", [])
                return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []
    return None


def free_slot(query_pci: object, bridge_id: str, slots: range) -> int | None:
    """The lowest of ``slots`` of bridge ``bridge_id`` with no device in it."""
    devices = bridge_devices(query_pci, bridge_id)
    if devices is None:
        return None
    taken = {d.get("slot") for d in devices}
    return next((slot for slot in slots if slot not in taken), None)


def free_disk_slot(query_pci: object) -> int | None:
    """The lowest slot of the disk bridge with no device in it, from ``query-pci``."""
    return free_slot(query_pci, BRIDGE_ID, DISK_SLOTS)


def has_cdrom_controller(query_pci: object) -> bool:
    """Whether the domain's disk bridge holds its cdrom controller, from ``query-pci``."""
    return any(d.get("qdev_id") == CDROM_CONTROLLER_ID for d in bridge_devices(query_pci) or [])


def block_nodes(disk: BlockDisk, node: str | None = None) -> list[dict[str, object]]:
    """The ``blockdev-add`` arguments of the disk's protocol and format nodes, in the order
    they are added (``-blockdev`` takes the same JSON); none for an empty cdrom drive.
    ``node`` names the format node (the protocol node adds -file); the default is the
    disk's own :func:`node_name`."""
    if disk.empty:
        return []
    name = node or disk.node
    shared: dict[str, object] = {
        "read-only": disk.read_only,
        "discard": "unmap" if disk.discard else "ignore",
    }
    protocol = {
        "driver": "host_device" if disk.host_device else "file",
        "filename": disk.path,
        "node-name": f"{name}-file",
        "cache": {"direct": disk.direct},
        **shared,
    }
    image = {"driver": disk.driver, "file": f"{name}-file", "node-name": name, **shared}
    return [protocol, image]


def cdrom_device(disk: BlockDisk) -> dict[str, str]:
    """The ``device_add`` properties of the cdrom's scsi-cd drive (no drive= when empty)."""
    props = {"driver": CDROM_DEVICE, "id": disk.node, "bus": f"{CDROM_CONTROLLER_ID}.0",
             "serial": disk.vdev[:SERIAL_MAX]}  # fmt: skip
    if not disk.empty:
        props["drive"] = disk.node
    return props


def medium_node(query_block: object, device: str) -> str | None:
    """The format node of the medium in drive ``device`` (its qdev id), from
    ``query-block``; None when the drive is empty or unknown."""
    for entry in query_block if isinstance(query_block, list) else []:
        if isinstance(entry, dict) and entry.get("qdev") == device:
            inserted = entry.get("inserted")
            name = inserted.get("node-name") if isinstance(inserted, dict) else None
            return name if isinstance(name, str) else None
    return None


def next_medium_node(disk: BlockDisk, current: str | None) -> str:
    """The node name for a new medium in ``disk``'s drive, whose medium now is ``current``."""
    return disk.node if current != disk.node else f"{disk.node}.1"


def disk_device(disk: BlockDisk, slot: int) -> dict[str, str]:
    """The ``device_add`` properties of the disk's virtio-blk device in bridge ``slot``."""
    return {
        "driver": DISK_DEVICE,
        "drive": disk.node,
        "id": disk.node,
        "serial": disk.vdev[:SERIAL_MAX],
        "bus": BRIDGE_ID,
        "addr": f"{slot:#x}",
    }


def image_format(path: str | Path) -> str:
    """What ``qemu-img info`` finds in the image or device at ``path`` (``raw`` when it knows
    no format there), read even while another QEMU holds it (``--force-share``).

    :raise HostError: when qemu-img is missing or cannot read ``path``
    """
    qemu_img = require_program(QEMU_IMG, QEMU_IMG_PACKAGE)
    try:
        result = run_sync(
            [qemu_img, "info", "--force-share", "--output=json", path],
            timeout=QEMU_IMG_TIMEOUT,
        )
    except CommandFailed as exc:
        raise HostError(
            f"disk image {path}",
            f"qemu-img cannot read it: {exc.stderr_tail.strip() or exc.cause}",
            "check the path and its permissions, and that it is a disk image",
        ) from None
    try:
        found = json.loads(result.stdout)["format"]
    except (ValueError, KeyError, TypeError):
        raise HostError(
            f"disk image {path}",
            "qemu-img info gave no format",
            f"check the image with: qemu-img info {path}",
        ) from None
    return str(found)
