"""parse(render(spec)) == spec for generated disk, vif and pci specs, and unit sizes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.units import format_kib, parse_mem_size_kb
from xenlite.config.specs.cpus import format_cpumap, parse_cpu_list
from xenlite.config.specs.disk import (
    DiskBackend,
    DiskFormat,
    DiskSpec,
    DiskSpecification,
    parse_disk_spec,
)
from xenlite.config.specs.pci import PCI_FUNC_ALL, PciSpec, RdmPolicy, parse_pci_spec
from xenlite.config.specs.vif import COLO_FIELDS, NicType, VifSpec, parse_rate, parse_vif_spec

# Values no spec grammar can carry: the item separator, and for disks a newline (flex's
# "." stops there) and NUL (C strings end there).
_VALUE = st.text(
    alphabet=st.characters(blacklist_characters=",\n\0", blacklist_categories=["Cs"]),
    max_size=12,
)
_OPT_VALUE = st.none() | _VALUE
# UNKNOWN is libxl's "not set", which no spec can write (the model's enums are libxl's).
_SPEC_FORMATS = [f for f in DiskFormat if f is not DiskFormat.UNKNOWN]
_SPEC_NICTYPES = [t for t in NicType if t is not NicType.UNKNOWN]


@st.composite
def disk_specs(draw: st.DrawFn) -> DiskSpec:
    is_cdrom = draw(st.booleans())
    pdev_path: str | None = draw(
        st.none() | st.text(alphabet=st.characters(blacklist_characters="\n\0"), max_size=16)
    )
    if pdev_path is not None and pdev_path.endswith(","):
        pdev_path = pdev_path[:-1]  # xl strips one trailing comma from target=
    if pdev_path is None and not is_cdrom:
        pdev_path = "/dev/vg/guest"
    fmt = draw(st.sampled_from(_SPEC_FORMATS))
    if is_cdrom and not pdev_path:
        fmt = DiskFormat.EMPTY
    return DiskSpec(
        pdev_path=pdev_path,
        vdev=draw(_VALUE),
        format=fmt,
        readwrite=False if is_cdrom else draw(st.booleans()),
        is_cdrom=is_cdrom,
        removable=is_cdrom,
        backend=draw(st.sampled_from(DiskBackend)),
        backend_domname=draw(_OPT_VALUE),
        script=draw(_OPT_VALUE),
        direct_io_safe=draw(st.booleans()),
        discard_enable=draw(st.none() | st.booleans()),
        specification=draw(st.sampled_from(DiskSpecification)),
        colo_enable=draw(st.none() | st.booleans()),
        colo_host=draw(_OPT_VALUE),
        colo_port=draw(st.integers(-(2**31), 2**31 - 1)),
        colo_export=draw(_OPT_VALUE),
        active_disk=draw(_OPT_VALUE),
        hidden_disk=draw(_OPT_VALUE),
    )


@settings(max_examples=200, deadline=None)
@given(disk_specs())
def test_disk_round_trip(spec: DiskSpec) -> None:
    assert parse_disk_spec(spec.to_spec_string()) == spec


_MAC = st.none() | st.lists(st.integers(0, 255), min_size=6, max_size=6).filter(any).map(
    lambda octets: ":".join(f"{octet:02x}" for octet in octets)
)
# A rate as xl users write it: N{,K,M}{B,b}/s@Uus, with U up to one second.
_RATE = st.none() | st.builds(
    lambda count, prefix, unit, usecs: parse_rate(f"{count}{prefix}{unit}/s@{usecs}us"),
    # Up to 10^7 so that even M units over one second stay inside libxl's 64 bits.
    st.integers(1, 10**7),
    st.sampled_from(["", "K", "M"]),
    st.sampled_from(["B", "b"]),
    st.integers(1, 1_000_000),
)


@st.composite
def vif_specs(draw: st.DrawFn) -> VifSpec:
    rate = draw(_RATE) or (0, 0)
    colo_keys = draw(st.sets(st.sampled_from(COLO_FIELDS), max_size=3))
    return VifSpec(
        devid=draw(st.integers(0, 2**31 - 1)),
        mac=draw(_MAC),
        bridge=draw(_OPT_VALUE),
        ip=draw(_OPT_VALUE),
        script=draw(_OPT_VALUE),
        ifname=draw(_OPT_VALUE),
        model=draw(_OPT_VALUE),
        nictype=draw(st.none() | st.sampled_from(_SPEC_NICTYPES)),
        rate_bytes_per_interval=rate[0],
        rate_interval_usecs=rate[1],
        mtu=draw(st.integers(0, 2**31 - 1)),
        backend_domname=draw(_OPT_VALUE),
        gatewaydev=draw(_OPT_VALUE),
        coloft_forwarddev=draw(_OPT_VALUE),
        trusted=draw(st.none() | st.booleans()),
        colo=tuple((key, draw(_VALUE)) for key in COLO_FIELDS if key in colo_keys),
    )


@settings(max_examples=200, deadline=None)
@given(vif_specs())
def test_vif_round_trip(spec: VifSpec) -> None:
    assert parse_vif_spec(spec.to_spec_string(), 0) == (spec, [])


@st.composite
def pci_specs(draw: st.DrawFn) -> PciSpec:
    flags = [draw(st.none() | st.booleans()) for _ in range(4)]
    by_name = draw(st.booleans())
    common = {
        "vdevfn": draw(st.integers(0, 0x1F)) << 3,
        "msitranslate": flags[0],
        "power_mgmt": flags[1],
        "permissive": flags[2],
        "seize": flags[3],
        "rdm_policy": draw(st.none() | st.sampled_from(RdmPolicy)),
    }
    if by_name:
        return PciSpec(name=draw(_VALUE), **common)  # type: ignore[arg-type]
    all_functions = draw(st.booleans())
    return PciSpec(
        domain=draw(st.integers(0, 0xFFFF)),
        bus=draw(st.integers(0, 0xFF)),
        dev=draw(st.integers(0, 0x1F)),
        func=0 if all_functions else draw(st.integers(0, 7)),
        vfunc_mask=PCI_FUNC_ALL if all_functions else 1,
        **common,  # type: ignore[arg-type]
    )


@settings(max_examples=200, deadline=None)
@given(pci_specs())
def test_pci_round_trip(spec: PciSpec) -> None:
    assert parse_pci_spec(spec.to_spec_string()) == spec


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_cpumap_round_trip(case: tuple[int, set[int]]) -> None:
    nr_cpus, cpus = case
    text = format_cpumap(cpus, nr_cpus)
    if text != "none":
        assert parse_cpu_list(text, nr_cpus) == cpus


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**50))
def test_kib_round_trip(kib: int) -> None:
    assert parse_mem_size_kb(format_kib(kib)) == kib
