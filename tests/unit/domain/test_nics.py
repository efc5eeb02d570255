"""domain/nics.py and vifhost.py without a host: vif specs resolved (MAC, tap, bridge, MTU,
ip=, rate=), the keys not in xenlite yet refused, and the XenStore nodes libxl writes."""

from __future__ import annotations

import ipaddress

import pytest

from xenlite.base.errors import DomainError, Unsupported
from xenlite.config.domain.model import DeviceNic, NicType
from xenlite.config.specs.vif import parse_vif_spec
from xenlite.domain.nics import prepare_nics, vif_nodes
from xenlite.domain.vifhost import Mode, Rate, mode_of, nat_router, removal_side, tap_name

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
    assert one.host.bridge == "xenbr1"
    assert (one.qemu.tap, one.qemu.mtu) == ("web0", 9000)
    (plain,) = prepare_nics([nic("")], domid=3, uuid=UUID, taken_macs=[])
    assert (plain.host.bridge, plain.qemu.tap, plain.qemu.mtu) == ("xenbr0", "vif3.0", 1500)
    assert (plain.host.sources, plain.host.rate) == (None, None)
    assert tap_name(12, plain.nic) == "vif12.0"


@pytest.mark.parametrize(
    ("spec", "error", "said"),
    [
        ("ip=10.0.0.300", DomainError, "'10.0.0.300' is not an IP address or network"),
        ("ip=10.0.0.2 nonsense", DomainError, "'nonsense' is not an IP address"),
        ("rate=100GB/s", DomainError, "cannot be shaped"),
        ("script=vif-nat,ip=10.0.0.200", DomainError, "would pass 255"),
        ("script=vif-nat,ip=2001:db8::1", DomainError, "vif-nat needs the guest's IPv4"),
        ("forwarddev=eth0", Unsupported, "forwarddev= (COLO)"),
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


def test_ip_lists_addresses_and_networks_of_both_families() -> None:
    (one,) = prepare_nics([nic("ip=10.0.0.2 192.168.5.0/24 2001:db8::7 10.1.2.3/16")],
                          domid=3, uuid=UUID, taken_macs=[])  # fmt: skip
    sources = one.host.sources
    assert sources is not None
    assert [str(n) for n in sources.ipv4] == ["10.0.0.2/32", "10.1.0.0/16", "192.168.5.0/24"]
    assert sources.ipv6 == (ipaddress.IPv6Network("2001:db8::7/128"),)
    # Overlaps are merged: nft's interval sets refuse them.
    (merged,) = prepare_nics([nic("ip=10.0.0.5 10.0.0.0/24 10.0.1.0/24")], domid=3, uuid=UUID,
                             taken_macs=[])  # fmt: skip
    assert merged.host.sources is not None
    assert [str(n) for n in merged.host.sources.ipv4] == ["10.0.0.0/23"]


@pytest.mark.parametrize(
    ("spec", "per_second", "burst"),
    [
        ("rate=10Mb/s", 1_250_000, 131072),  # 62,500 bytes per 50 ms: netback's floor
        ("rate=1MB/s@20ms", 1_000_000, 131072),  # the man page's 20,000 bytes every 20 ms
        ("rate=100MB/s", 100_000_000, 5_000_000),  # one interval's credit is the bucket
    ],
)
def test_rate_is_xens_credit_as_a_token_bucket(spec: str, per_second: int, burst: int) -> None:
    (one,) = prepare_nics([nic(spec)], domid=3, uuid=UUID, taken_macs=[])
    assert one.host.rate == Rate(bytes_per_second=per_second, burst=burst)
    assert one.host.ifb == "ifb3.0"


def test_removal_looks_for_rules_and_shaping_even_of_a_config_refused_now() -> None:
    bad = DeviceNic(devid=1, ip="not-an-address", rate_bytes_per_interval=1,
                    rate_interval_usecs=50_000_000_000)  # fmt: skip
    side = removal_side(bad, 7)
    assert (side.tap, side.sources is not None, side.rate is not None) == ("vif7.1", True, True)
    assert removal_side(DeviceNic(devid=1), 7).sources is None


def test_xens_scripts_by_name_or_full_path_are_built_in_any_other_is_run() -> None:
    for spec in ("script=vif-bridge", "script=/etc/xen/scripts/vif-bridge"):
        assert prepare_nics([nic(spec)], domid=3, uuid=UUID, taken_macs=[])
    assert mode_of(None) is Mode.BRIDGE
    assert mode_of("vif-route") is mode_of("/etc/xen/scripts/vif-route") is Mode.ROUTE
    assert mode_of("vif-nat") is Mode.NAT
    assert mode_of("/usr/local/bin/vif-bridge") is mode_of("vif-openvswitch") is Mode.SCRIPT
    (scripted,) = prepare_nics([nic("script=vif-custom,ip=10.0.0.2,rate=1MB/s")], domid=3,
                               uuid=UUID, taken_macs=[])  # fmt: skip
    # ip= is the script's to honour (as on Xen); rate= is netback's, so always xenlite's.
    assert (scripted.host.script, scripted.host.sources) == ("vif-custom", None)
    assert scripted.host.rate is not None
    assert scripted.host.netback_name == "vif3.0"


def test_vif_nat_addresses_are_xens() -> None:
    (default,) = prepare_nics([nic("script=vif-nat", 1)], domid=300, uuid=UUID, taken_macs=[])
    assert str(default.host.nat_address) == "10.1.44.2"  # 10.(300/256).(300%256).(devid+1)
    (given,) = prepare_nics([nic("script=vif-nat,ip=192.168.7.5/24")], domid=3, uuid=UUID,
                            taken_macs=[])  # fmt: skip
    assert given.host.nat_address is not None
    assert str(given.host.nat_address) == "192.168.7.5"
    assert str(nat_router(given.host.nat_address)) == "192.168.7.132"


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
    assert {"ip", "rate", "gatewaydev"}.isdisjoint(p.rsplit("/", 1)[1] for p in nodes)
    (limited,) = prepare_nics([nic("ip=10.0.0.2 10.0.0.3,rate=1MB/s@20ms")], domid=3,
                              uuid=UUID, taken_macs=[])  # fmt: skip
    written = {n.path: n.value for n in vif_nodes(3, [limited.nic])}
    assert written[f"{back}/ip"] == "10.0.0.2 10.0.0.3"
    assert written[f"{back}/rate"] == "20000,20000"  # libxl's "BYTES,USECS"
    # The default MTU is not written to the backend, as libxl leaves it out.
    (plain,) = prepare_nics([nic("")], domid=3, uuid=UUID, taken_macs=[])
    assert f"{back}/mtu" not in {n.path for n in vif_nodes(3, [plain.nic])}


def test_an_hvm_guests_vifs_are_emulated_unless_type_vif() -> None:
    default, e1000, pv = prepare_nics(
        [nic(""), nic("model=e1000", 1), nic("type=vif", 2)],
        domid=5, uuid=UUID, taken_macs=[], emulated=True,
    )  # fmt: skip
    assert (default.qemu.model, default.nic.nictype) == ("rtl8139", NicType.VIF_IOEMU)
    assert default.nic.model == "rtl8139"  # kept in the config, as libxl fills it in
    assert e1000.qemu.model == "e1000"
    assert (pv.qemu.model, pv.nic.nictype) == ("virtio-net-pci", NicType.VIF)
    # A PV or PVH guest's vif is virtio whatever model= says.
    (plain,) = prepare_nics([nic("model=e1000")], domid=6, uuid=UUID, taken_macs=[])
    assert plain.qemu.model == "virtio-net-pci"
