"""domain/nics.py without a host: vif specs resolved (MAC, tap, bridge, MTU), the keys not in
xenlite yet refused, and the XenStore nodes libxl writes for a vif."""

from __future__ import annotations

import pytest

from xenlite.base.errors import DomainError, Unsupported
from xenlite.config.domain.model import DeviceNic, NicType
from xenlite.config.specs.vif import parse_vif_spec
from xenlite.domain.nics import prepare_nics, tap_name, vif_nodes

UUID = "8d3d4d1e-7a5b-4c0e-9f59-4c3c1c6f8a10"


def nic(spec: str, devid: int = 0) -> DeviceNic:
    parsed, _ = parse_vif_spec(spec, devid)
    return parsed.to_device()


def test_a_mac_is_derived_from_the_uuid_and_devid_in_xens_oui() -> None:
    first = prepare_nics([nic(""), nic("", 1)], domid=3, uuid=UUID, taken_macs=[])
    again = prepare_nics([nic(""), nic("", 1)], domid=9, uuid=UUID, taken_macs=[])
    macs = [p.nic.mac for p in first]
    assert macs == [p.nic.mac for p in again]  # the same domain config, the same MACs
    assert all(m is not None and m.startswith("00:16:3e:") for m in macs)
    assert macs[0] != macs[1]
    assert int(str(macs[0]).split(":")[3], 16) < 0x80  # libxl keeps the 4th octet < 0x80
    # One another domain has is derived again: two domains never share a derived MAC.
    other = prepare_nics([nic("")], domid=4, uuid=UUID, taken_macs=[str(macs[0]).upper()])
    assert other[0].nic.mac not in macs


def test_resolved_nic_keeps_what_libxl_keeps() -> None:
    (one,) = prepare_nics(
        [nic("mac=00:16:3E:AA:BB:CC,bridge=xenbr1,vifname=web0,mtu=9000")],
        domid=3, uuid=UUID, taken_macs=[],
    )  # fmt: skip
    assert one.nic.mac == "00:16:3e:aa:bb:cc"
    assert one.nic.nictype is NicType.VIF
    assert one.bridge == "xenbr1"
    assert (one.qemu.tap, one.qemu.mtu) == ("web0", 9000)
    (plain,) = prepare_nics([nic("")], domid=3, uuid=UUID, taken_macs=[])
    assert (plain.bridge, plain.qemu.tap, plain.qemu.mtu) == ("xenbr0", "vif3.0", 1500)
    assert tap_name(12, plain.nic) == "vif12.0"


@pytest.mark.parametrize(
    ("spec", "error", "said"),
    [
        ("ip=10.0.0.2", Unsupported, "ip= (anti-spoofing of the guest's addresses)"),
        ("rate=10Mb/s", Unsupported, "rate= (rate limits)"),
        ("script=vif-route", Unsupported, "only the built-in vif-bridge"),
        ("script=/usr/local/bin/my-vif", Unsupported, "only the built-in vif-bridge"),
        ("gatewaydev=eth0", Unsupported, "gatewaydev="),
        ("backend=netback", Unsupported, "serves every vif from dom0"),
        ("type=ioemu", DomainError, "a PV or PVH guest cannot have"),
        ("mac=01:16:3e:00:00:01", DomainError, "multicast"),
        ("vifname=a-name-far-too-long", DomainError, "cannot name a network interface"),
    ],
)
def test_what_is_not_honoured_is_refused_naming_the_vif(
    spec: str, error: type[Exception], said: str
) -> None:
    with pytest.raises(error) as info:
        prepare_nics([nic(spec)], domid=3, uuid=UUID, taken_macs=[])
    assert said in str(info.value)
    assert "vif 0" in str(info.value)


def test_script_vif_bridge_by_name_or_full_path_is_the_built_in_one() -> None:
    for spec in ("script=vif-bridge", "script=/etc/xen/scripts/vif-bridge"):
        assert prepare_nics([nic(spec)], domid=3, uuid=UUID, taken_macs=[])


def test_a_devid_given_twice_is_refused() -> None:
    with pytest.raises(DomainError, match="devid 0 is given twice"):
        prepare_nics([nic(""), nic("devid=0", 1)], domid=3, uuid=UUID, taken_macs=[])


def test_vif_nodes_are_libxls() -> None:
    (one,) = prepare_nics([nic("mac=00:16:3e:aa:bb:cc,mtu=9000")], domid=3, uuid=UUID,
                          taken_macs=[])  # fmt: skip
    nodes = {n.path: n.value for n in vif_nodes(3, [one.nic])}
    back = "/local/domain/0/backend/vif/3/0"
    front = "/local/domain/3/device/vif/0"
    assert nodes[f"{back}/frontend"] == front
    assert nodes[f"{back}/mac"] == "00:16:3e:aa:bb:cc"
    assert nodes[f"{back}/bridge"] == "xenbr0"
    assert nodes[f"{back}/script"] == "/etc/xen/scripts/vif-bridge"
    assert nodes[f"{back}/type"] == "vif"
    assert nodes[f"{back}/mtu"] == "9000"
    assert nodes[f"{back}/hotplug-status"] == "connected"
    assert nodes[f"{back}/state"] == nodes[f"{front}/state"] == "4"
    assert nodes[f"{front}/backend"] == back
    assert nodes[f"{front}/handle"] == "0"
    assert nodes[f"{front}/mtu"] == "9000"
    assert nodes["/libxl/3/device/vif/0/backend"] == back
    # The default MTU is not written to the backend, as libxl leaves it out.
    (plain,) = prepare_nics([nic("")], domid=3, uuid=UUID, taken_macs=[])
    assert f"{back}/mtu" not in {n.path for n in vif_nodes(3, [plain.nic])}
