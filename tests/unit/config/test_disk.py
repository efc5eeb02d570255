"""Disk specs: xl-disk-configuration(5) examples and cases checked against Xen 4.17."""

from __future__ import annotations

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.domain.libxl_json import struct_to_json
from xenlite.config.specs.disk import (
    DiskBackend,
    DiskFormat,
    DiskSpec,
    DiskSpecification,
    parse_disk_spec,
    vdev_to_devid,
)
from xenlite.config.xlcfg.values import Pos


def disk(path: str, vdev: str, fmt: str = "raw", **extra: object) -> dict[str, object]:
    """libxl's JSON for a writable disk, in libxl's key order; ``extra`` keys come last."""
    return {"pdev_path": path, "vdev": vdev, "format": fmt, "readwrite": 1, **extra}


def cdrom(path: str | None, vdev: str, fmt: str = "empty") -> dict[str, object]:
    """libxl's JSON for a CD-ROM drive (``path`` None: the spec gives no target at all)."""
    target: dict[str, object] = {} if path is None else {"pdev_path": path}
    return {**target, "vdev": vdev, "format": fmt, "removable": 1, "is_cdrom": 1}


# Recorded from xlcfg_oracle.py --disk (Xen 4.17.7, libxlu xlu_disk_parse + gen_json).
DISK_ORACLE: list[tuple[str, dict[str, object] | None, str | None]] = [
    ("/dev/vg/guest-volume,,hda", disk("/dev/vg/guest-volume", "hda"), None),
    ("/dev/vg/guest-volume,raw,hda,rw", disk("/dev/vg/guest-volume", "hda"), None),
    (
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        disk("/dev/vg/guest-volume", "hda"),
        None,
    ),
    ("raw:/dev/vg/guest-volume,hda,w", disk("/dev/vg/guest-volume", "hda"), None),
    ("/root/image.iso,,hdc,cdrom", cdrom("/root/image.iso", "hdc", "raw"), None),
    ("/root/image.iso,,hdc,,cdrom", cdrom("/root/image.iso", "hdc", "raw"), None),
    ("/root/image.iso,raw,hdc,devtype=cdrom", cdrom("/root/image.iso", "hdc", "raw"), None),
    (
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        cdrom("/root/image.iso", "hdc", "raw"),
        None,
    ),
    ("raw:/root/image.iso,hdc:cdrom,ro", cdrom("/root/image.iso", "hdc", "raw"), None),
    (",,hdc,cdrom", cdrom("", "hdc"), None),
    (",hdc:cdrom,r", cdrom("", "hdc"), None),
    ("tap:aio:/img,xvda,w", disk("/img", "xvda"), None),
    ("tap:qcow2:/img,xvda,w", disk("/img", "xvda", "qcow2"), None),
    ("tap2:tapdisk:aio:/img,xvda", disk("/img", "xvda"), None),
    ("ioemu:/img,hda,w", disk("/img", "hda"), None),
    ("qcow:/img,hda", disk("/img", "hda", "qcow"), None),
    ("vhd:/img,hda", disk("/img", "hda", "vhd"), None),
    (
        "iscsi:iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost,xvda,w",
        {
            "pdev_path": "iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost",  # noqa: E501
            "vdev": "xvda",
            "format": "raw",
            "script": "block-iscsi",
            "readwrite": 1,
        },
        None,
    ),
    (
        "drbd:myresource,xvda,w",
        {
            "pdev_path": "myresource",
            "vdev": "xvda",
            "format": "raw",
            "script": "block-drbd",
            "readwrite": 1,
        },
        None,
    ),
    (
        "enbd:foo,xvda",
        {
            "pdev_path": "foo",
            "vdev": "xvda",
            "format": "raw",
            "script": "block-enbd",
            "readwrite": 1,
        },
        None,
    ),
    ("phy:vg/lv,hda1,w", disk("vg/lv", "hda1"), None),
    ("phy:/dev/sdb,xvda,w!", None, "unknown value for access: near `w!' in `phy:/dev/sdb,xvda,w!'"),
    ("trusted,/x,,xvda", None, "unknown value for format: near `/x' in `trusted,/x,,xvda'"),
    (
        "untrusted,target=/x,vdev=xvda",
        None,
        "target respecified: near `/x,vdev=xvda' in `untrusted,target=/x,vdev=xvda'",
    ),
    (
        "grant_usage=1,/x,,xvda",
        None,
        "bad disk syntax: near `=1,/x,,xvda' in `grant_usage=1,/x,,xvda'",
    ),
    ("/x,qcow3,xvda", None, "unknown value for format: near `qcow3' in `/x,qcow3,xvda'"),
    (
        "/x,raw,xvda,rw,extra",
        None,
        "too many positional parameters: near `extra' in `/x,raw,xvda,rw,extra'",
    ),
    ("/x,raw,xvda,rx", None, "unknown value for access: near `rx' in `/x,raw,xvda,rx'"),
    (
        "vdev=xvda,vdev=xvdb,target=/x",
        None,
        "vdev respecified: near `xvdb' in `vdev=xvda,vdev=xvdb,target=/x'",
    ),
    (
        "format=raw,format=qcow2,vdev=xvda,target=/x",
        None,
        "format respecified: near `qcow2' in `format=raw,format=qcow2,vdev=xvda,target=/x'",
    ),
    ("format=raw,format=raw,vdev=xvda,target=/x", disk("/x", "xvda"), None),
    (
        "backendtype=phy,backendtype=qdisk,vdev=xvda,target=/x",
        None,
        "backend respecified: near `qdisk' in `backendtype=phy,backendtype=qdisk,vdev=xvda,target=/x'",  # noqa: E501
    ),
    (
        "backendtype=foo,vdev=xvda,target=/x",
        None,
        "unknown value for backendtype: near `foo' in `backendtype=foo,vdev=xvda,target=/x'",
    ),
    (
        "backendtype=tap,backendtype=standalone,vdev=xvda,target=/x",
        None,
        "backend respecified: near `standalone' in `backendtype=tap,backendtype=standalone,vdev=xvda,target=/x'",  # noqa: E501
    ),
    (
        "specification=xen,specification=virtio,/x,,xvda",
        None,
        "specification respecified: near `virtio' in `specification=xen,specification=virtio,/x,,xvda'",  # noqa: E501
    ),
    (
        "specification=foo,/x,,xvda",
        None,
        "unknown value for specification: near `foo' in `specification=foo,/x,,xvda'",
    ),
    (
        "devtype=floppy,/x,,xvda",
        None,
        "unknown value for type: near `devtype=floppy,' in `devtype=floppy,/x,,xvda'",
    ),
    ("devtype=disk,cdrom,/x,,xvda", cdrom("/x", "xvda", "raw"), None),
    ("cdrom,devtype=disk,/x,,xvda", disk("/x", "xvda"), None),
    (
        "colo-port=0,/x,,xvda",
        None,
        "unknown value for colo_port: near `0' in `colo-port=0,/x,,xvda'",
    ),
    (
        "colo-port=abc,/x,,xvda",
        None,
        "unknown value for colo_port: near `abc' in `colo-port=abc,/x,,xvda'",
    ),
    ("colo-port= 12x,/x,,xvda", disk("/x", "xvda", "raw", colo_port=12), None),
    (
        "colo-restore-enable,/x,,xvda",
        None,
        "unknown value for format: near `/x' in `colo-restore-enable,/x,,xvda'",
    ),
    ("foo=bar,/x,,xvda", None, "unknown parameter: near `foo=b' in `foo=bar,/x,,xvda'"),
    ("foo=,/x,,xvda", None, "bad disk syntax: near `=,/x,,xvda' in `foo=,/x,,xvda'"),
    ("=foo", None, "bad disk syntax: near `=foo' in `=foo'"),
    ("/x", None, "no vdev specified in `/x'"),
    ("xvda", None, "no vdev specified in `xvda'"),
    ("/x,,", None, "no vdev specified in `/x,,'"),
    (",,xvda", disk("", "xvda"), None),
    (",,xvda,r", {"pdev_path": "", "vdev": "xvda", "format": "raw"}, None),
    ("target=/a,b:c,d,vdev=xvda", None, "no vdev specified in `target=/a,b:c,d,vdev=xvda'"),
    ("vdev=xvda,target=/a,b:c,d", disk("/a,b:c,d", "xvda"), None),
    ("vdev=xvda,target=", disk("", "xvda"), None),
    ("vdev=xvda,target=/x,", disk("/x", "xvda"), None),
    ("vdev=xvda,target=/x,,", disk("/x,", "xvda"), None),
    (
        "  /x , raw , xvda , rw",
        None,
        "unknown value for format: near `raw ' in `  /x , raw , xvda , rw'",
    ),
    ("/x, raw, xvda, rw", disk("/x", "xvda"), None),
    ("/x,raw ,xvda,rw", None, "unknown value for format: near `raw ' in `/x,raw ,xvda,rw'"),
    ("\t/x,,xvda", disk("/x", "xvda"), None),
    ("foo:/x,xvda", None, "unknown deprecated disk prefix: near `foo:' in `foo:/x,xvda'"),
    ("foo:bar,xvda", None, "unknown value for format: near `xvda' in `foo:bar,xvda'"),
    ("Foo:/x,xvda", None, "unknown value for format: near `xvda' in `Foo:/x,xvda'"),
    ("file:,xvda", disk("", "xvda"), None),
    ("phy:,xvda", disk("", "xvda"), None),
    ("/x:/y,raw,xvda", disk("/x:/y", "xvda"), None),
    ("/x,raw,xvda:cdrom", cdrom("/x", "xvda", "raw"), None),
    (",xvda:disk,w", disk("", "xvda", "empty"), None),
    (",xvda:floppy,w", None, "unknown deprecated type: near `floppy' in `,xvda:floppy,w'"),
    (",:cdrom", cdrom("", ""), None),
    ("/x,,xvda:cdrom,w", cdrom("/x", "xvda", "raw"), None),
    ("/x,,xvda,ro,cdrom", cdrom("/x", "xvda", "raw"), None),
    (
        "script=a,script=b,/x,,xvda",
        None,
        "script respecified: near `b' in `script=a,script=b,/x,,xvda'",
    ),
    (
        "script=,script=b,/x,,xvda",
        {"pdev_path": "/x", "vdev": "xvda", "format": "raw", "script": "b", "readwrite": 1},
        None,
    ),
    (
        "script=s,nbd:host 1,xvda",
        None,
        "script respecified: near `block-nbd' in `script=s,nbd:host 1,xvda'",
    ),
    (
        "nbd:host 1,xvda,script=s",
        None,
        "script respecified: near `s' in `nbd:host 1,xvda,script=s'",
    ),
    (
        "direct-io-safe,discard,no-discard,/x,,xvda",
        disk("/x", "xvda", "raw", direct_io_safe=True, discard_enable="False"),
        None,
    ),
    ("colo,no-colo,colo,/x,,xvda", disk("/x", "xvda", "raw", colo_enable="True"), None),
    ("cdrom,", None, "no vdev specified in `cdrom,'"),
    ("cdrom", None, "no vdev specified in `cdrom'"),
    ("devtype=cdrom,vdev=hdc", cdrom(None, "hdc"), None),
    ("devtype=cdrom,vdev=hdc,target=", cdrom("", "hdc"), None),
    ("access=,/x,,xvda", disk("/x", "xvda"), None),
    ("access=ro,/x,,xvda,rw", disk("/x", "xvda"), None),
    ("/x,empty,xvda", disk("/x", "xvda", "empty"), None),
    ("format=,/x,,xvda", None, "unknown value for access: near `xvda' in `format=,/x,,xvda'"),
    ("/x,raw,,xvda", None, "unknown value for access: near `xvda' in `/x,raw,,xvda'"),
    (
        "backend=,backend=d1,/x,,xvda",
        {
            "backend_domname": "d1",
            "pdev_path": "/x",
            "vdev": "xvda",
            "format": "raw",
            "readwrite": 1,
        },
        None,
    ),
    (
        "backend=d1,backend=,/x,,xvda",
        None,
        "backend respecified: near `' in `backend=d1,backend=,/x,,xvda'",
    ),
    ("vdev=,/x,,xvda", None, "unknown value for access: near `xvda' in `vdev=,/x,,xvda'"),
    ("/x,raw,xvda,rw,", disk("/x", "xvda"), None),
    ("/x,raw,xvda,rw,,", None, "too many positional parameters: near `' in `/x,raw,xvda,rw,,'"),
    ("/x=y,raw,xvda", None, "bad disk syntax: near `=y,raw,xvda' in `/x=y,raw,xvda'"),
    ("a b c,raw,xvda", disk("a b c", "xvda"), None),
    ("raw:,xvda", disk("", "xvda"), None),
    ("raw:raw:/x,xvda", disk("/x", "xvda"), None),
    ("raw:qcow2:/x,xvda", None, "format respecified: near `qcow2' in `raw:qcow2:/x,xvda'"),
    ("qcow2:/x,raw,xvda", None, "unknown value for access: near `xvda' in `qcow2:/x,raw,xvda'"),
]


@pytest.mark.parametrize(("spec", "expected", "error"), DISK_ORACLE)
def test_disk_spec_matches_xen(
    spec: str, expected: dict[str, object] | None, error: str | None
) -> None:
    if expected is not None:
        got = struct_to_json(parse_disk_spec(spec).to_device())
        assert got == expected
        assert list(got) == list(expected)  # libxl's key order
    else:
        with pytest.raises(ConfigError) as info:
            parse_disk_spec(spec)
        assert info.value.cause == error
        assert info.value.key == "disk"
        assert info.value.fix


EQUIVALENT_VOLUME = [
    "/dev/vg/guest-volume,,hda",
    "/dev/vg/guest-volume,raw,hda,rw",
    "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
    "raw:/dev/vg/guest-volume,hda,w",
]
EQUIVALENT_CDROM = [
    "/root/image.iso,,hdc,cdrom",
    "/root/image.iso,,hdc,,cdrom",
    "/root/image.iso,raw,hdc,devtype=cdrom",
    "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
    "raw:/root/image.iso,hdc:cdrom,ro",
]


@pytest.mark.parametrize("spec", EQUIVALENT_VOLUME)
def test_man_page_equivalent_volume_forms(spec: str) -> None:
    assert parse_disk_spec(spec) == DiskSpec(
        pdev_path="/dev/vg/guest-volume", vdev="hda", format=DiskFormat.RAW, readwrite=True
    )


@pytest.mark.parametrize("spec", EQUIVALENT_CDROM)
def test_man_page_equivalent_cdrom_forms(spec: str) -> None:
    assert parse_disk_spec(spec) == DiskSpec(
        pdev_path="/root/image.iso",
        vdev="hdc",
        format=DiskFormat.RAW,
        readwrite=False,
        is_cdrom=True,
        removable=True,
    )


def test_empty_cdrom_drive() -> None:
    spec = parse_disk_spec(",hdc:cdrom,r")
    assert spec.pdev_path == ""
    assert spec.format is DiskFormat.EMPTY
    assert spec.is_cdrom
    assert spec.removable
    assert not spec.readwrite


def test_deprecated_prefixes() -> None:
    assert parse_disk_spec("tap:aio:/img,xvda,w").format is DiskFormat.RAW
    assert parse_disk_spec("tap:qcow2:/img,xvda,w").format is DiskFormat.QCOW2
    nbd = parse_disk_spec("nbd:134.100.233.115 20004,hda1,w")
    assert nbd.script == "block-nbd"
    assert nbd.pdev_path == "134.100.233.115 20004"
    # xl keeps a relative phy: target as written (no /dev/ prepended at parse time).
    assert parse_disk_spec("phy:vg/lv,hda1,w").pdev_path == "vg/lv"


def test_all_keys_and_flags() -> None:
    spec = parse_disk_spec(
        "backend=dd, backendtype=qdisk, script=block-x, direct-io-safe, no-discard,"
        " specification=virtio, colo, colo-host=h, colo-port=9000, colo-export=e,"
        " active-disk=a, hidden-disk=b, vdev=xvdb, format=qcow2, access=ro, target=/i,m,g"
    )
    assert spec == DiskSpec(
        pdev_path="/i,m,g",
        vdev="xvdb",
        format=DiskFormat.QCOW2,
        readwrite=False,
        backend=DiskBackend.QDISK,
        backend_domname="dd",
        script="block-x",
        direct_io_safe=True,
        discard_enable=False,
        specification=DiskSpecification.VIRTIO,
        colo_enable=True,
        colo_host="h",
        colo_port=9000,
        colo_export="e",
        active_disk="a",
        hidden_disk="b",
    )


def test_error_is_located_at_the_bad_part() -> None:
    where = Pos("web01.cfg", 12, 9)
    with pytest.raises(ConfigError) as info:
        parse_disk_spec("/x,qcow3,xvda", where=where)
    err = info.value
    assert (err.path, err.line, err.col) == ("web01.cfg", 12, 12)
    assert str(err).startswith("web01.cfg:12:12: disk: unknown value for format: near `qcow3'")
    assert "raw" in (err.fix or "")


def test_missing_vdev_and_target_messages() -> None:
    with pytest.raises(ConfigError, match="no vdev specified"):
        parse_disk_spec("/x")
    with pytest.raises(ConfigError, match="no target specified"):
        parse_disk_spec("vdev=xvda")
    with pytest.raises(ConfigError, match="NUL"):
        parse_disk_spec("/x\0,,xvda")


def test_render_round_trips_a_parsed_spec() -> None:
    spec = parse_disk_spec("nbd:host 1,xvda,r")
    assert spec.to_spec_string() == "format=raw,vdev=xvda,access=ro,script=block-nbd,target=host 1"
    assert parse_disk_spec(spec.render()) == spec


@pytest.mark.parametrize(
    ("vdev", "devid"),
    [
        ("xvda", 51712),
        ("xvdb", 51728),
        ("xvda1", 51713),
        ("xvdp15", 51967),
        ("xvdq", (1 << 28) | (16 << 8)),
        ("xvda16", (1 << 28) | 16),
        ("xvdaa", (1 << 28) | (26 << 8)),
        ("hda", 768),
        ("hdb", 832),
        ("hdc", 5632),
        ("hdd1", 5697),
        ("sda", 2048),
        ("sdb2", 2066),
        ("d0p0", 51712),
        ("d16p1", (1 << 28) | (16 << 8) | 1),
        ("51712", 51712),
        ("0x10", 16),
    ],
)
def test_vdev_to_devid(vdev: str, devid: int) -> None:
    assert vdev_to_devid(vdev) == devid


@pytest.mark.parametrize(
    "vdev", ["xvd", "xvda0", "xvda01", "hde", "hda64", "sdq", "vda", "", "d1p256"]
)
def test_vdev_to_devid_rejects(vdev: str) -> None:
    with pytest.raises(ConfigError, match="not a known form"):
        vdev_to_devid(vdev)
