"""Round trips of the domain model: libxl JSON both ways, and xl.cfg render -> build."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.config.domain.build import HostFacts, build_domain_config, render_domain_config
from xenlite.config.domain.libxl_json import (
    domain_config_from_json,
    domain_config_to_json,
    dumps_domain_config,
)
from xenlite.config.domain.model import (
    Action,
    BuildInfo,
    CreateInfo,
    DeviceDisk,
    DeviceNic,
    DevicePci,
    DiskFormat,
    DomainConfig,
    DomainType,
    HvmBuildInfo,
    PvBuildInfo,
    PvhBuildInfo,
    SchedParams,
    SdlInfo,
    TscMode,
    VgaInfo,
    VgaKind,
    VncInfo,
)
from xenlite.config.hostconf.xlconf import XlConf
from xenlite.config.xlcfg import grammar

NR_CPUS = 8
text = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_categories=("Cs",)), max_size=12
)
safe = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=12)
defbool = st.none() | st.booleans()
uuids = st.uuids().map(str).filter(lambda u: u != "00000000-0000-0000-0000-000000000000")
actions = st.sampled_from(list(Action))
# DomainConfig's on_poweroff= ... on_soft_reset= fields, each any action.
on_actions = st.fixed_dictionaries(
    {f"on_{event}": actions for event in ("poweroff", "reboot", "watchdog", "crash", "soft_reset")}
)
cpusets = st.frozensets(st.integers(0, NR_CPUS - 1), min_size=1, max_size=NR_CPUS)


@st.composite
def type_info(draw: st.DrawFn) -> HvmBuildInfo | PvBuildInfo | PvhBuildInfo:
    kind = draw(st.sampled_from(["hvm", "pv", "pvh"]))
    if kind == "pv":
        return PvBuildInfo(e820_host=draw(defbool))
    if kind == "pvh":
        return PvhBuildInfo(pvshim=draw(defbool), pvshim_path=draw(st.none() | text))
    return HvmBuildInfo(
        pae=draw(defbool),
        viridian_enable=draw(st.frozensets(st.integers(0, 12))),
        vga=VgaInfo(kind=draw(st.none() | st.sampled_from(list(VgaKind)))),
        vnc=VncInfo(enable=draw(defbool), listen=draw(st.none() | text)),
        sdl=SdlInfo(opengl=draw(defbool)),
        boot=draw(st.none() | safe),
        serial_list=tuple(draw(st.lists(text, max_size=2))),
    )


@st.composite
def any_config(draw: st.DrawFn) -> DomainConfig:
    """Broad configs, not all expressible in xl.cfg: for the JSON round trip."""
    u = draw(type_info())
    dtype = {"hvm": DomainType.HVM, "pv": DomainType.PV, "pvh": DomainType.PVH}[u.TAG]
    b_info = BuildInfo(
        max_vcpus=draw(st.integers(0, 64)),
        avail_vcpus=draw(st.frozensets(st.integers(0, 63), max_size=8)),
        vcpu_hard_affinity=tuple(draw(st.lists(cpusets, max_size=3))),
        tsc_mode=draw(st.sampled_from(list(TscMode))),
        max_memkb=draw(st.none() | st.integers(0, 2**40)),
        target_memkb=draw(st.none() | st.integers(0, 2**40)),
        localtime=draw(defbool),
        sched_params=SchedParams(weight=draw(st.integers(-1, 65535))),
        claim_mode=draw(defbool),
        kernel=draw(st.none() | text),
        cmdline=draw(st.none() | text),
        bootloader_args=tuple(draw(st.lists(text, max_size=3))),
        irqs=tuple(draw(st.lists(st.integers(0, 1000), max_size=3))),
        u=u,
    )
    disks = draw(
        st.lists(
            st.builds(
                DeviceDisk,
                pdev_path=st.none() | text,
                vdev=safe,
                format=st.sampled_from(list(DiskFormat)),
                readwrite=st.integers(0, 1),
            ),
            max_size=2,
        )
    )
    nics = draw(
        st.lists(
            st.builds(DeviceNic, devid=st.integers(-1, 9), bridge=st.none() | safe), max_size=2
        )
    )
    pcis = draw(st.lists(st.builds(DevicePci, bus=st.integers(0, 255), seize=st.booleans())))
    return DomainConfig(
        c_info=CreateInfo(
            type=dtype,
            name=draw(text),
            uuid=draw(st.none() | uuids),
            hap=draw(defbool),
            run_hotplug_scripts=draw(defbool),
        ),
        b_info=b_info,
        disks=tuple(disks),
        nics=tuple(nics),
        pcidevs=tuple(pcis[:2]),
        **draw(on_actions),
    )


@settings(max_examples=200, deadline=None)
@given(any_config())
def test_json_round_trip(cfg: DomainConfig) -> None:
    obj = domain_config_to_json(cfg)
    assert domain_config_from_json(obj) == cfg
    # the printed text is valid JSON holding the same object
    assert json.loads(dumps_domain_config(cfg)) == obj


@st.composite
def xlcfg_config(draw: st.DrawFn) -> DomainConfig:
    """Configs in the subset render_domain_config writes, as xl would build them."""
    dtype = draw(st.sampled_from([DomainType.PV, DomainType.PVH, DomainType.HVM]))
    vcpus = draw(st.integers(1, 8))
    maxvcpus = draw(st.integers(vcpus, 16))
    memory = draw(st.integers(1, 4096))
    maxmem = draw(st.integers(memory, 8192))
    kernel = draw(safe.map(lambda s: "/" + s))
    affinity = tuple(draw(st.lists(cpusets, max_size=maxvcpus)))
    u: HvmBuildInfo | PvBuildInfo | PvhBuildInfo
    if dtype == DomainType.HVM:
        u = HvmBuildInfo()
    elif dtype == DomainType.PVH:
        u = PvhBuildInfo()
    else:
        u = PvBuildInfo()
    return DomainConfig(
        c_info=CreateInfo(
            type=dtype,
            name=draw(text),
            uuid=draw(st.none() | uuids),
            pool_name=draw(st.none() | safe),
            run_hotplug_scripts=True,
        ),
        b_info=BuildInfo(
            max_vcpus=maxvcpus,
            avail_vcpus=frozenset(range(vcpus)),
            vcpu_hard_affinity=affinity,
            numa_placement=False if affinity else None,
            max_memkb=maxmem * 1024,
            target_memkb=memory * 1024,
            sched_params=SchedParams(
                weight=draw(st.sampled_from([-1, 1, 256, 65535])),
                cap=draw(st.sampled_from([-1, 0, 50, 800])),
            ),
            claim_mode=True,
            kernel=kernel,
            ramdisk=draw(st.none() | safe),
            cmdline=draw(st.none() | text),
            u=u,
        ),
        **draw(on_actions),
    )


@settings(max_examples=200, deadline=None)
@given(xlcfg_config())
def test_render_parse_build_round_trip(cfg: DomainConfig) -> None:
    rendered = render_domain_config(cfg)
    parsed = grammar.parse(rendered, "rendered.cfg")
    loaded = build_domain_config(parsed, xlconf=XlConf(), host=HostFacts(nr_cpus=NR_CPUS))
    assert loaded.config == cfg
    assert loaded.warnings == ()


def test_render_example() -> None:
    cfg = DomainConfig(
        c_info=CreateInfo(type=DomainType.PV, name="web01", run_hotplug_scripts=True),
        b_info=BuildInfo(
            max_vcpus=2,
            avail_vcpus=frozenset({0, 1}),
            max_memkb=512 * 1024,
            target_memkb=512 * 1024,
            claim_mode=True,
            kernel="/boot/vmlinuz",
            u=PvBuildInfo(),
        ),
        on_reboot=Action.RESTART,
        on_soft_reset=Action.SOFT_RESET,
    )
    text = render_domain_config(cfg)
    assert 'name = "web01"\n' in text
    assert "memory = 512\n" in text
    assert 'on_reboot = "restart"\n' in text
    assert 'on_soft_reset = "soft-reset"\n' in text
