"""A guest NIC -> QEMU's ``-netdev tap`` backend and its ``virtio-net-pci`` device.

xl-network-configuration(5) names what a vif is (MAC, bridge, tap name, MTU); the host side
(the tap on its bridge) is made before QEMU starts (host/net.py), and QEMU attaches to that
persistent tap by name, with no scripts of its own (``script=no,downscript=no``): xenlite
runs what Xen's vif-bridge does itself.

Choices, and why:

- Every NIC sits in a slot of its own PCIe-to-PCI bridge (``vifbridge``, slot 0x11 of the
  root bus), as the disks sit in theirs (qemu/blockdev.py): q35's root bus takes no
  hot-plugged device, the bridge's slots do. NICs take slots 1, 2, ... in devid order, so
  the guest names them eth0, eth1, ... in that order, as netfront does.
- The MTU reaches the guest as virtio's ``host_mtu``, as Xen's backend writes ``mtu`` for
  netfront to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlite.qemu.blockdev import free_slot, pci_bridge

NIC_DEVICE = "virtio-net-pci"
NET_BRIDGE_ID = "vifbridge"
NET_BRIDGE_ADDR = "0x11"
NIC_SLOTS = range(1, 32)


@dataclass(frozen=True, slots=True)
class GuestNic:
    """One NIC as QEMU is to see it: its devid, the host tap it attaches to, its MAC."""

    devid: int
    tap: str
    mac: str
    mtu: int
    model: str = NIC_DEVICE  # the QEMU device: an HVM guest's emulated NIC (model=)

    @property
    def netdev_id(self) -> str:
        return f"vif{self.devid}"

    @property
    def device_id(self) -> str:
        return f"nic{self.devid}"


def net_bridge(*, legacy: bool = False) -> dict[str, str]:
    """The ``-device`` properties of the bridge the domain's NICs sit on."""
    return pci_bridge(NET_BRIDGE_ID, NET_BRIDGE_ADDR, legacy=legacy, chassis=2)


def netdev(nic: GuestNic) -> dict[str, str]:
    """The ``-netdev``/``netdev_add`` properties of the NIC's tap backend."""
    return {"type": "tap", "id": nic.netdev_id, "ifname": nic.tap, "script": "no",
            "downscript": "no"}  # fmt: skip


def nic_device(nic: GuestNic, slot: int) -> dict[str, str]:
    """The ``-device``/``device_add`` properties of the NIC in bridge ``slot``."""
    props = {"driver": nic.model, "id": nic.device_id, "netdev": nic.netdev_id, "mac": nic.mac}
    if nic.model == NIC_DEVICE:
        props["host_mtu"] = str(nic.mtu)
    return {**props, "bus": NET_BRIDGE_ID, "addr": f"{slot:#x}"}


def nic_layout(
    nics: list[GuestNic], *, legacy: bool = False
) -> list[tuple[dict[str, str] | None, dict[str, str]]]:
    """The config's NICs (in devid order) as QEMU starts with them: the bridge (there for a
    domain without NICs too, for network-attach), then for each NIC its ``-netdev`` and
    ``-device``.

    :raise ValueError: when there are more NICs than the bridge has slots
    """
    if len(nics) > len(NIC_SLOTS):
        raise ValueError(f"{len(nics)} NICs: the bridge has {len(NIC_SLOTS)} slots")
    layout: list[tuple[dict[str, str] | None, dict[str, str]]] = [(None, net_bridge(legacy=legacy))]
    layout += [(netdev(n), nic_device(n, s)) for s, n in zip(NIC_SLOTS, nics, strict=False)]
    return layout


def free_nic_slot(query_pci: object) -> int | None:
    """The lowest slot of the NIC bridge with no device in it, from ``query-pci``."""
    return free_slot(query_pci, NET_BRIDGE_ID, NIC_SLOTS)
