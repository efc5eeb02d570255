"""PCI specs: xl-pci-configuration(5) forms and cases checked against Xen 4.17."""

from __future__ import annotations

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.domain.libxl_json import struct_to_json
from xenlite.config.specs.pci import PCI_FUNC_ALL, PciSpec, RdmPolicy, parse_pci_spec
from xenlite.config.xlcfg.values import Pos

# Recorded from a whole-file xl create -n dry run (xlcfg_oracle.py, Xen 4.17.7): pcidevs[0].
PCI_ORACLE: list[tuple[str, dict[str, object] | None]] = [
    ("0000:00:1f.0", {"dev": 31, "vfunc_mask": 1, "rdm_policy": "strict"}),
    (
        "01:02.3@4,permissive=1",
        {
            "func": 3,
            "dev": 2,
            "bus": 1,
            "vdevfn": 32,
            "vfunc_mask": 1,
            "permissive": True,
            "rdm_policy": "strict",
        },
    ),
    (
        "02:00.*,msitranslate=1,seize=1,power_mgmt=1,rdm_policy=relaxed",
        {
            "bus": 2,
            "vfunc_mask": 4294967295,
            "msitranslate": True,
            "power_mgmt": True,
            "seize": True,
            "rdm_policy": "relaxed",
        },
    ),
    (
        "bdf=03:00.1,vslot=5",
        {"func": 1, "bus": 3, "vdevfn": 40, "vfunc_mask": 1, "rdm_policy": "strict"},
    ),
    ("name=foo", {"rdm_policy": "strict", "name": "foo"}),
    ("03:00.1,name=foo", None),
    ("permissive=1", None),
    ("01:00.0,", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("01:00.0,,", None),
    ("01:00.0@", None),
    ("01:00.0@20", None),
    ("01:00.0@1f", {"bus": 1, "vdevfn": 248, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("01:00.8", None),
    ("01:20.0", None),
    ("100:00.0", None),
    ("10000:00:00.0", None),
    (
        "ffff:ff:1f.7",
        {
            "func": 7,
            "dev": 31,
            "bus": 255,
            "domain": 65535,
            "vfunc_mask": 1,
            "rdm_policy": "strict",
        },
    ),
    ("1:2.3", {"func": 3, "dev": 2, "bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    (" 1:2.3", None),
    ("01:00.0x", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("01:00.0 ", None),
    ("0x1:0x2.0x3", None),
    ("01:00.0,permissive=yes", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    (
        "01:00.0,permissive=2",
        {"bus": 1, "vfunc_mask": 1, "permissive": True, "rdm_policy": "strict"},
    ),
    (
        "01:00.0,permissive=-1",
        {"bus": 1, "vfunc_mask": 1, "permissive": True, "rdm_policy": "strict"},
    ),
    ("01:00.0,permissive=4294967296", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("01:00.0,rdm_policy=STRICT", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("01:00.0,rdm_policy=invalid", {"bus": 1, "vfunc_mask": 1}),
    ("01:00.0,rdm_policy=foo", None),
    ("01:00.0,foo=1", None),
    ("01:00.0,permissive", None),
    ("bdf=01:00.0xyz", {"bus": 1, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("bdf=zz", None),
    ("vslot=3,name=n", {"vdevfn": 24, "rdm_policy": "strict", "name": "n"}),
    ("01:00.0,vslot=zz", None),
    ("01:00.0,bdf=02:00.1", {"func": 1, "bus": 2, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("a,b=c,name=x", None),
    ("01:00.0@3,vslot=4", {"bus": 1, "vdevfn": 32, "vfunc_mask": 1, "rdm_policy": "strict"}),
    ("00:00:00:00.0", None),
    (
        "1:2:3.4@5,seize=0",
        {
            "func": 4,
            "dev": 3,
            "bus": 2,
            "domain": 1,
            "vdevfn": 40,
            "vfunc_mask": 1,
            "rdm_policy": "strict",
        },
    ),
    ("-1:2.3", None),
    ("01:00.-1", None),
]


@pytest.mark.parametrize(("spec", "expected"), PCI_ORACLE)
def test_pci_spec_matches_xen(spec: str, expected: dict[str, object] | None) -> None:
    if expected is not None:
        got = struct_to_json(parse_pci_spec(spec).to_device())
        assert got == expected
        assert list(got) == list(expected)
    else:
        with pytest.raises(ConfigError) as info:
            parse_pci_spec(spec)
        assert info.value.cause.startswith(f"unable to parse PCI_SPEC_STRING `{spec}'")
        assert info.value.fix


def test_man_page_bdf_forms() -> None:
    assert parse_pci_spec("0000:03:00.1") == PciSpec(bus=3, func=1, vfunc_mask=1)
    assert parse_pci_spec("03:00.1") == PciSpec(bus=3, func=1, vfunc_mask=1)
    assert parse_pci_spec("03:00.*").vfunc_mask == PCI_FUNC_ALL
    with_slot = parse_pci_spec("03:00.0@1f,permissive=1,rdm_policy=relaxed")
    assert with_slot.vdevfn == 0x1F << 3
    assert with_slot.permissive is True
    assert with_slot.rdm_policy is RdmPolicy.RELAXED
    assert with_slot.bdf == "0000:03:00.0"


def test_global_defaults_apply_when_spec_is_silent() -> None:
    spec = parse_pci_spec("01:00.0,seize=0")
    out = struct_to_json(spec.to_device(permissive=True, seize=True, rdm_policy=RdmPolicy.RELAXED))
    assert out == {"bus": 1, "vfunc_mask": 1, "permissive": True, "rdm_policy": "relaxed"}


def test_errors_say_why_and_where() -> None:
    with pytest.raises(ConfigError) as info:
        parse_pci_spec("01:00.0,foo=1", where=Pos("h.cfg", 4, 10))
    assert "Unknown PCI_SPEC_STRING option: foo" in info.value.cause
    assert (info.value.line, info.value.col) == (4, 18)
    with pytest.raises(ConfigError, match="both a device address and name="):
        parse_pci_spec("01:00.0,name=gpu")
    with pytest.raises(ConfigError, match="neither"):
        parse_pci_spec("permissive=1")


def test_render_round_trip_example() -> None:
    named = parse_pci_spec("vslot=3,name=gpu0,seize=1")
    assert named.render() == "vslot=03,seize=1,name=gpu0"
    assert parse_pci_spec(named.render()) == named
    spec = parse_pci_spec("ffff:ff:1f.*@a,msitranslate=1,power_mgmt=0")
    assert spec.render() == "ffff:ff:1f.*@0a,msitranslate=1,power_mgmt=0"
    assert parse_pci_spec(spec.render()) == spec
