"""Vif specs: xl-network-configuration(5) examples and cases checked against Xen 4.17."""

from __future__ import annotations

import dataclasses

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.domain.libxl_json import struct_to_json
from xenlite.config.domain.model import DeviceNic
from xenlite.config.specs.vif import COLO_FIELDS, NicType, VifSpec, parse_rate, parse_vif_spec
from xenlite.config.xlcfg.values import Pos

# Recorded from xlcfg_oracle.py --vif (Xen 4.17.7 xl create -n, nics[0] and stderr).
VIF_ORACLE: list[tuple[str, dict[str, object] | None, list[str], str | None]] = [
    ("", {"devid": 0}, [], None),
    ("bridge=xenbr0", {"devid": 0, "bridge": "xenbr0"}, [], None),
    (
        "mac=00:16:3e:01:02:03,bridge=br0,ip=10.0.0.1,script=vif-route,vifname=web0,model=e1000,type=ioemu",
        {
            "devid": 0,
            "model": "e1000",
            "mac": "00:16:3e:01:02:03",
            "ip": "10.0.0.1",
            "bridge": "br0",
            "ifname": "web0",
            "script": "vif-route",
            "nictype": "vif_ioemu",
        },
        [],
        None,
    ),
    ("type=vif", {"devid": 0, "nictype": "vif"}, [], None),
    ("type=bad", {"devid": 0}, ["Invalid parameter `type'."], None),
    ("type=", {"devid": 0}, ["Invalid parameter `type'."], None),
    ("mac=00:16:3e", {"devid": 0, "mac": "00:16:3e:00:00:00"}, ["Invalid parameter `mac'."], None),
    (
        "mac=00:16:3e,bridge=br0",
        {"devid": 0, "mac": "00:16:3e:0b:00:00", "bridge": "br0"},
        ["Invalid parameter `mac'."],
        None,
    ),
    (
        "mac=00:16:3e:1,,bridge=br0",
        {"devid": 0, "mac": "00:16:3e:01:00:00", "bridge": "br0"},
        ["Invalid parameter `mac'."],
        None,
    ),
    ("mac=0x1:+2: 3:100000004:5:6:7", {"devid": 0, "mac": "01:02:03:04:05:06"}, [], None),
    (
        "mac=1:2:3:4:5:256",
        {"devid": 0, "mac": "01:02:03:04:05:00"},
        ["Invalid parameter `mac'."],
        None,
    ),
    ("mac=aa-bb-cc-dd-ee-ff", {"devid": 0, "mac": "aa:bb:cc:dd:ee:ff"}, [], None),
    (
        "mac=11:22:33:44:55:66,mac=aa",
        {"devid": 0, "mac": "aa:22:33:44:55:66"},
        ["Invalid parameter `mac'."],
        None,
    ),
    ("mac=", {"devid": 0}, ["Invalid parameter `mac'."], None),
    ("mac=00:00:00:00:00:00", {"devid": 0}, [], None),
    ("mac=zz", {"devid": 0}, ["Invalid parameter `mac'."], None),
    ("mac=1:2:3:4:5:6:7", {"devid": 0, "mac": "01:02:03:04:05:06"}, [], None),
    (
        "rate=10Mb/s",
        {"devid": 0, "rate_bytes_per_interval": 62500, "rate_interval_usecs": 50000},
        [],
        None,
    ),
    (
        "rate=250KB/s",
        {"devid": 0, "rate_bytes_per_interval": 12500, "rate_interval_usecs": 50000},
        [],
        None,
    ),
    (
        "rate=1MB/s@20ms",
        {"devid": 0, "rate_bytes_per_interval": 20000, "rate_interval_usecs": 20000},
        [],
        None,
    ),
    (
        "rate=1Gb/s@1us",
        {"devid": 0, "rate_bytes_per_interval": 125, "rate_interval_usecs": 1},
        [],
        None,
    ),
    (
        "rate=5B/s@1s",
        {"devid": 0, "rate_bytes_per_interval": 5, "rate_interval_usecs": 1000000},
        [],
        None,
    ),
    (
        "rate=5B/s@10",
        {"devid": 0, "rate_bytes_per_interval": 50, "rate_interval_usecs": 10000000},
        [],
        None,
    ),
    ("rate=5B/s@100us", {"devid": 0, "rate_interval_usecs": 100}, [], None),
    ("rate=010B/s", {"devid": 0, "rate_interval_usecs": 50000}, [], None),
    ("rate=08B/s", None, [], "rate overflow in `08B/s'"),
    (
        "rate=0778Mb/s",
        {"devid": 0, "rate_bytes_per_interval": 3, "rate_interval_usecs": 50000},
        [],
        None,
    ),
    ("rate=1B/s@018", {"devid": 0, "rate_interval_usecs": 1}, [], None),
    (
        "rate=1B/s@1",
        {"devid": 0, "rate_bytes_per_interval": 1, "rate_interval_usecs": 1000000},
        [],
        None,
    ),
    ("rate=4294967295GB/s@4294s", None, [], "rate overflow in `4294967295GB/s@4294s'"),
    ("rate=4294967296B/s", None, [], "rate overflow in `4294967296B/s'"),
    (
        "rate=1Kb/s,rate=2Mb/s",
        {"devid": 0, "rate_bytes_per_interval": 12500, "rate_interval_usecs": 50000},
        [],
        None,
    ),
    ("rate=10", None, [], "invalid rate in `10'"),
    ("rate=", None, [], "no rate specified in `'"),
    ("rate=@1s", None, [], "no rate specified in `@1s'"),
    ("rate=1MB/s@", None, [], "invalid replenishment interval in `'"),
    ("rate=1MB/s@0", None, [], "replenishment interval overflow in `0'"),
    ("rate=1MB/s@xx", None, [], "invalid replenishment interval in `xx'"),
    ("rate=1kB/s", None, [], "invalid rate in `1kB/s'"),
    ("rate=1MB/s@5000s", None, [], "replenishment interval overflow in `5000s'"),
    ("rate=100000000000GB/s", None, [], "rate overflow in `100000000000GB/s'"),
    ("devid=5", {"devid": 5}, [], None),
    ("devid=-2", {"devid": -2}, [], None),
    ("devid=4294967297", {"devid": 1}, [], None),
    ("devid=x", None, [], 'failed to convert "x" to number'),
    ("devid=7x", {"devid": 7}, [], None),
    ("devid=", None, [], 'failed to convert "" to number'),
    ("devid=-1", None, [], 'failed to convert "-1" to number'),
    ("mtu=9000", {"devid": 0, "mtu": 9000}, [], None),
    ("mtu=+7x", {"devid": 0, "mtu": 7}, [], None),
    ("mtu=abc", None, [], 'failed to convert "abc" to number'),
    ("mtu=0", {"devid": 0}, [], None),
    ("trusted", {"devid": 0, "trusted": "True"}, [], None),
    ("untrusted", {"devid": 0, "trusted": "False"}, [], None),
    (" trusted", {"devid": 0, "trusted": "True"}, [], None),
    ("trusted=1", {"devid": 0}, ["unrecognized argument `trusted=1'"], None),
    (
        "accel=x,netdev=eth0",
        {"devid": 0, "gatewaydev": "eth0"},
        [
            "the accel parameter for vifs is currently not supported",
            "the netdev parameter is deprecated, please use gatewaydev instead",
        ],
        None,
    ),
    (
        "gatewaydev=eth1,netdev=eth0",
        {"devid": 0, "gatewaydev": "eth0"},
        ["the netdev parameter is deprecated, please use gatewaydev instead"],
        None,
    ),
    ("backend=dom1", {"backend_domname": "dom1", "devid": 0}, [], None),
    (
        "forwarddev=f,colo_checkpoint_port=3,colo_sock_mirror_id=1,colo_filter_sec_rewriter0_queue=q",
        {
            "devid": 0,
            "coloft_forwarddev": "f",
            "colo_sock_mirror_id": "1",
            "colo_filter_sec_rewriter0_queue": "q",
            "colo_checkpoint_port": "3",
        },
        [],
        None,
    ),
    ("colo_unknown=1", {"devid": 0}, ["unrecognized argument `colo_unknown=1'"], None),
    ("vlan=10", {"devid": 0}, ["unrecognized argument `vlan=10'"], None),
    (
        "bogus=1,bridge=br0",
        {"devid": 0, "bridge": "br0"},
        ["unrecognized argument `bogus=1'"],
        None,
    ),
    (
        " bridge=a, ,,ip=1 ",
        {"devid": 0, "ip": "1 ", "bridge": "a"},
        ["unrecognized argument `'"],
        None,
    ),
    ("bridge=,ip=", {"devid": 0, "ip": "", "bridge": ""}, [], None),
    ("bridge", {"devid": 0}, ["unrecognized argument `bridge'"], None),
    ("=x", {"devid": 0}, ["unrecognized argument `=x'"], None),
    ("ip=1.2.3.4=5", {"devid": 0, "ip": "1.2.3.4=5"}, [], None),
]


@pytest.mark.parametrize(("spec", "expected", "warnings", "error"), VIF_ORACLE)
def test_vif_spec_matches_xen(
    spec: str, expected: dict[str, object] | None, warnings: list[str], error: str | None
) -> None:
    if expected is not None:
        got, got_warnings = parse_vif_spec(spec, 0)
        nic = struct_to_json(got.to_device())
        assert nic == expected
        assert list(nic) == list(expected)
        assert got_warnings == warnings
    else:
        assert error is not None
        with pytest.raises(ConfigError) as info:
            parse_vif_spec(spec, 0)
        assert info.value.cause.startswith(error)
        assert info.value.fix


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("10Mb/s", (62500, 50000)),
        ("250KB/s", (12500, 50000)),
        ("1MB/s@20ms", (20000, 20000)),
        ("5B/s@1s", (5, 1_000_000)),
        ("1Gb/s@1us", (125, 1)),
        ("100Mb/s@10ms", (125000, 10000)),
    ],
)
def test_rate_examples(rate: str, expected: tuple[int, int]) -> None:
    assert parse_rate(rate) == expected


def test_devid_is_the_list_index_unless_given() -> None:
    assert parse_vif_spec("bridge=br0", 3)[0].devid == 3
    assert parse_vif_spec("devid=7,bridge=br0", 3)[0].devid == 7


def test_model_fields() -> None:
    spec, warnings = parse_vif_spec("type=vif,mac=00:16:3E:AA:bb:01,untrusted,mtu=9000", 1)
    assert warnings == []
    assert spec == VifSpec(
        devid=1, mac="00:16:3e:aa:bb:01", nictype=NicType.VIF, trusted=False, mtu=9000
    )


def test_rate_error_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        parse_vif_spec("bridge=br0,rate=10", 0, where=Pos("a.cfg", 3, 7))
    assert (info.value.line, info.value.col) == (3, 7 + len("bridge=br0,rate="))
    assert info.value.cause == "invalid rate in `10'"


def test_render_round_trip_example() -> None:
    spec, _ = parse_vif_spec("bridge=xenbr0,rate=10Mb/s,colo_checkpoint_port=3,trusted", 2)
    text = spec.to_spec_string()
    assert text.startswith("devid=2,bridge=xenbr0")
    assert parse_vif_spec(text, 0) == (spec, [])


def test_colo_keys_are_string_fields_of_the_nic() -> None:
    # VifSpec.to_device passes the COLO keys to DeviceNic by name.
    types = {f.name: f.type for f in dataclasses.fields(DeviceNic)}
    assert all(types.get(name) == "str | None" for name in COLO_FIELDS)
    spec, _ = parse_vif_spec("colo_sock_mirror_ip=10.0.0.1,colo_sock_mirror_port=9000", 2)
    nic = spec.to_device()
    assert (nic.colo_sock_mirror_ip, nic.colo_sock_mirror_port) == ("10.0.0.1", "9000")
