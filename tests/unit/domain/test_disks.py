"""The disk checks that need no image (empty cdrom drives, bad specs) and the vbd nodes libxl
writes (xenstore-paths: backend, frontend and /libxl's trustworthy copy)."""

from __future__ import annotations

import pytest

from xenlite.base.errors import DomainError
from xenlite.config.domain.model import DeviceDisk, DiskBackend, DiskFormat
from xenlite.config.specs.disk import parse_disk_spec
from xenlite.domain.disks import medium_entries, prepare_disks, vbd_nodes


def _disk(spec: str) -> DeviceDisk:
    return parse_disk_spec(spec).to_device()


def test_an_empty_cdrom_drive_is_qdisk_read_only_with_no_medium() -> None:
    (drive,) = prepare_disks([_disk(",hdc:cdrom,r")], domain="web01")
    assert drive.number == 5632
    assert (drive.disk.backend, drive.disk.readwrite, drive.disk.pdev_path) == (
        DiskBackend.QDISK, 0, "",
    )  # fmt: skip
    assert drive.qemu.cdrom
    assert drive.qemu.empty
    assert drive.qemu.read_only


def test_a_cdrom_on_phy_or_an_empty_disk_is_refused_naming_it() -> None:
    with pytest.raises(DomainError, match="a cdrom drive is served by QEMU") as info:
        prepare_disks([_disk("backendtype=phy,devtype=cdrom,vdev=hdc,target=/dev/sr0")],
                      domain="web01")  # fmt: skip
    assert info.value.what == "cdrom hdc (/dev/sr0)"
    with pytest.raises(DomainError, match="has no target"):
        prepare_disks([_disk("format=empty,vdev=xvda,target=")], domain="web01")


def test_vbd_nodes_of_a_phy_disk_and_an_empty_cdrom() -> None:
    phy = DeviceDisk(pdev_path="/dev/loop3", vdev="xvda", backend=DiskBackend.PHY,
                     format=DiskFormat.RAW, readwrite=1, discard_enable=True)  # fmt: skip
    cdrom = DeviceDisk(pdev_path="", vdev="hdc", backend=DiskBackend.QDISK,
                       format=DiskFormat.EMPTY, readwrite=0, is_cdrom=1, removable=1,
                       discard_enable=False)  # fmt: skip
    nodes = {n.path: n.value for n in vbd_nodes(7, [phy, cdrom])}
    back = "/local/domain/0/backend/vbd/7/51712"
    assert nodes[f"{back}/params"] == "/dev/loop3"
    assert nodes[f"{back}/type"] == "phy"
    assert nodes[f"{back}/script"] == "/etc/xen/scripts/block"
    assert nodes[f"{back}/device-type"] == "disk"
    # /libxl/7/device/vbd/N holds a copy of every backend node, as libxl's does.
    record = "/libxl/7/device/vbd/51712"

    def under(root: str) -> dict[str, str]:
        return {p.removeprefix(f"{root}/"): v for p, v in nodes.items() if p.startswith(f"{root}/")}

    assert under(record) == under(back) | {"backend": back}
    empty = "/local/domain/0/backend/qdisk/7/5632"
    assert nodes[f"{empty}/params"] == "aio:"
    assert nodes[f"{empty}/device-type"] == "cdrom"
    assert nodes[f"{empty}/removable"] == "1"
    assert "script" not in {p.rpartition("/")[2] for p in nodes if p.startswith(empty)}
    assert nodes["/local/domain/7/device/vbd/5632/device-type"] == "cdrom"
    assert medium_entries(cdrom, ejected=True) == [("params", ""), ("type", "qdisk")]
