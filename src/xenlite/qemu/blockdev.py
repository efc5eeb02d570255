"""A guest disk -> QEMU's ``-blockdev`` nodes and its virtio-blk device; image formats.

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
- Every disk sits on a PCIe root port of its own, and each domain gets HOTPLUG_PORTS spare
  ports: q35's root bus takes no hot-plugged device, a root port does, and a disk that
  came with the config can be unplugged like one attached later. The ports fill PCI slots
  0x10 to 0x1e, eight functions each (0x1f is the ICH9's), in vbd order, so the guest
  enumerates the disks in that order.
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
ROOT_PORT_DEVICE = "pcie-root-port"
ROOT_PORT_PREFIX = "vbdport"
HOTPLUG_PORTS = 8  # spare root ports each domain gets for xl block-attach
_FIRST_PORT_SLOT, _LAST_PORT_SLOT = 0x10, 0x1E
MAX_PORTS = (_LAST_PORT_SLOT - _FIRST_PORT_SLOT + 1) * 8


@dataclass(frozen=True, slots=True)
class BlockDisk:
    """One guest disk as QEMU opens it."""

    number: int  # the vbd device number (xen-vbd-interface(7)): node and device names
    vdev: str
    path: str
    host_device: bool  # a block device (host_device driver), else an image file
    driver: str  # QEMU's format driver: raw, qcow2, qcow, vpc, qed
    read_only: bool
    discard: bool
    direct: bool

    @property
    def node(self) -> str:
        return node_name(self.number)


def node_name(number: int) -> str:
    """The format node (and device id) of vbd ``number``; its protocol node adds -file."""
    return f"vbd{number}"


def root_port(index: int) -> dict[str, str]:
    """The ``-device`` properties of hot-plug root port ``index`` (0-based)."""
    slot, function = divmod(index, 8)
    return {
        "driver": ROOT_PORT_DEVICE,
        "id": f"{ROOT_PORT_PREFIX}{index}",
        "bus": "pcie.0",
        "chassis": str(index + 1),
        "addr": f"{_FIRST_PORT_SLOT + slot:#x}.{function}",
        "multifunction": "on" if function == 0 else "off",
    }


def free_root_port(query_pci: object) -> str | None:
    """The first of the domain's root ports with nothing behind it, from ``query-pci``."""
    free: list[tuple[int, str]] = []
    for bus in query_pci if isinstance(query_pci, list) else []:
        for device in bus.get("devices", []) if isinstance(bus, dict) else []:
            qdev = device.get("qdev_id", "")
            bridge = device.get("pci_bridge")
            if not qdev.startswith(ROOT_PORT_PREFIX) or not isinstance(bridge, dict):
                continue
            if not bridge.get("devices"):
                free.append((int(qdev[len(ROOT_PORT_PREFIX) :]), qdev))
    return min(free)[1] if free else None


def block_nodes(disk: BlockDisk) -> list[dict[str, object]]:
    """The ``blockdev-add`` arguments of the disk's protocol and format nodes, in the order
    they are added (``-blockdev`` takes the same JSON)."""
    shared: dict[str, object] = {
        "read-only": disk.read_only,
        "discard": "unmap" if disk.discard else "ignore",
    }
    protocol = {
        "driver": "host_device" if disk.host_device else "file",
        "filename": disk.path,
        "node-name": f"{disk.node}-file",
        "cache": {"direct": disk.direct},
        **shared,
    }
    image = {"driver": disk.driver, "file": f"{disk.node}-file", "node-name": disk.node, **shared}
    return [protocol, image]


def disk_device(disk: BlockDisk, port: str) -> dict[str, str]:
    """The ``device_add`` properties of the disk's virtio-blk device on root port ``port``."""
    return {
        "driver": DISK_DEVICE,
        "drive": disk.node,
        "id": disk.node,
        "serial": disk.vdev[:SERIAL_MAX],
        "bus": port,
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
