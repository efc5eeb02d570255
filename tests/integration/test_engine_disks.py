"""Disks on real guests: file images (raw, qcow2 on a backing file), a real loop device, read
only access, the vbd nodes in XenStore, the in-use refusal and every bad disk spec.

xl-disk-configuration(5), xen-vbd-interface(7), xenstore-paths (backend/frontend); what the
guest sees is read inside it, through ``xl console`` (tests/guestshell.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guestshell import GuestShell
from hoststate import host_state
from xenlite.xenstore.client import XenStore

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

XVDA, XVDB, XVDC = 51712, 51728, 51744
HDC, HDD = 5632, 5696


def _image(path: Path, size: str = "8M", *, fmt: str = "raw", backing: Path | None = None) -> Path:
    argv = ["qemu-img", "create", "-q", "-f", fmt]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "raw"]
    subprocess.run([*argv, str(path), *([] if backing else [size])], check=True)
    return path


def _domid(host: Any, name: str) -> int:
    return int(host.xl("domid", name).stdout)


def _node(host: Any, path: str) -> str:
    with XenStore.open(host.root / "run/xenstored/socket") as xs:
        return xs.read(path).decode()


def _create(host: Any, name: str, *disks: str) -> subprocess.CompletedProcess[str]:
    specs = ", ".join(f"'{d}'" for d in disks)
    return host.xl("create", str(host.write_config(name, f"disk = [ {specs} ]")))


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path


def test_guest_sees_its_disks_and_keeps_what_it_wrote(live_host: Any, images: Path) -> None:
    before = host_state(live_host.root)
    a = _image(images / "a.img")
    base = images / "base.raw"
    base.write_bytes(b"base-data" + bytes(4 * 1024 * 1024 - 9))
    base_sum = hashlib.sha256(base.read_bytes()).hexdigest()
    b = _image(images / "b.qcow2", fmt="qcow2", backing=base)
    c = _image(images / "c.img")
    created = _create(
        live_host,
        "disks",
        f"file:{a},xvda,w",
        f"format=qcow2,vdev=xvdb,access=w,target={b}",
        f"{c},raw,xvdc,r",
    )
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("disks")
        domid = _domid(live_host, "disks")
        with GuestShell(live_host, "disks") as guest:
            serials = "cat /sys/block/vda/serial /sys/block/vdb/serial /sys/block/vdc/serial"
            assert guest.run(serials) == (0, "xvdaxvdbxvdc")  # no newline in the serials
            assert guest.run("cat /sys/block/vdc/ro /sys/block/vda/ro") == (0, "1\n0\n")
            assert guest.run("head -c 9 /dev/vdb") == (0, "base-data")
            assert guest.run("printf kept-a > /dev/vda && printf kept-b > /dev/vdb && sync")[0] == 0
            status, said = guest.run("printf x > /dev/vdc")
            assert status != 0, said  # read-only: the kernel refuses the write
        # XenStore as libxl writes it: qdisk for file images, the frontend pointing there.
        back = f"/local/domain/0/backend/qdisk/{domid}/{XVDA}"
        assert _node(live_host, f"{back}/params") == f"aio:{a}"  # libxl's name of raw
        assert _node(live_host, f"{back}/mode") == "w"
        assert _node(live_host, f"{back}/state") == "4"
        assert _node(live_host, f"{back}/dev") == "xvda"
        assert _node(live_host, f"/local/domain/0/backend/qdisk/{domid}/{XVDB}/params") == (
            f"qcow2:{b}"
        )
        assert _node(live_host, f"/local/domain/0/backend/qdisk/{domid}/{XVDC}/mode") == "r"
        # xl list -l shows the disks as libxl keeps them: the backend it chose, discard on.
        listed = json.loads(live_host.xl("list", "-l", "disks").stdout)
        disks = listed[0]["config"]["disks"]
        assert [(d["vdev"], d["backend"], d["discard_enable"]) for d in disks] == [
            ("xvda", "qdisk", "True"),
            ("xvdb", "qdisk", "True"),
            ("xvdc", "qdisk", "False"),
        ]
        listing = live_host.xl("block-list", "disks", "nosuch", str(domid))
        assert listing.returncode == 1  # nosuch: invalid, the others are still listed
        assert listing.stderr == "nosuch is an invalid domain identifier\n"
        rows = [
            f"{n:<5} 0   {domid:<6} 4     -1     -1       "
            f"/local/domain/0/backend/qdisk/{domid}/{n}\n"
            for n in (XVDA, XVDB, XVDC)
        ]
        header = "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n"
        assert listing.stdout == header + "".join(rows * 2)
        front = f"/local/domain/{domid}/device/vbd/{XVDA}"
        assert _node(live_host, f"{front}/backend") == back
        assert _node(live_host, f"{front}/virtual-device") == str(XVDA)
        # What the guest wrote is on the disks after a reboot (a new domain, new QEMU).
        assert live_host.xl("reboot", "-w", "disks", timeout=90).returncode == 0
        live_host.wait_ready("disks", count=2)
        with GuestShell(live_host, "disks") as guest:
            assert guest.run("head -c 6 /dev/vda; head -c 6 /dev/vdb") == (0, "kept-akept-b")
        assert a.read_bytes()[:6] == b"kept-a"
        assert hashlib.sha256(base.read_bytes()).hexdigest() == base_sum  # the backing file
    finally:
        live_host.xl("destroy", "disks")
    assert host_state(live_host.root) == before


@pytest.fixture
def loop_device(images: Path) -> Iterator[str]:
    if shutil.which("losetup") is None:
        pytest.skip("no losetup on this host")
    backing = _image(images / "loop.img", "4M")
    made = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot set up a loop device here: {made.stderr.strip()}")
    device = made.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)


def test_phy_on_a_real_loop_device(live_host: Any, loop_device: str) -> None:
    before = host_state(live_host.root)
    # phy: without /dev is under /dev, as Xen's block script expands it.
    created = _create(live_host, "phy", f"phy:{loop_device.removeprefix('/dev/')},xvda,w")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("phy")
        domid = _domid(live_host, "phy")
        back = f"/local/domain/0/backend/vbd/{domid}/{XVDA}"
        assert _node(live_host, f"{back}/type") == "phy"
        assert _node(live_host, f"{back}/params") == loop_device.removeprefix("/dev/")
        with GuestShell(live_host, "phy") as guest:
            assert guest.run("cat /sys/block/vda/size") == (0, "8192\n")  # 4 MiB in sectors
            assert guest.run("printf on-the-loop > /dev/vda && sync")[0] == 0
    finally:
        live_host.xl("destroy", "phy")
    with open(loop_device, "rb") as device:
        assert device.read(11) == b"on-the-loop"
    assert host_state(live_host.root) == before


def test_a_disk_in_use_elsewhere_is_refused_and_read_only_sharing_is_not(
    live_host: Any, images: Path
) -> None:
    shared = _image(images / "shared.img")
    readonly = _image(images / "ro.img")
    owner = _create(live_host, "owner", f"{shared},raw,xvda,w", f"{readonly},raw,xvdb,r")
    assert owner.returncode == 0, owner.stderr
    try:
        before = host_state(live_host.root)
        for spec in (f"{shared},raw,xvda,w", f"{shared},raw,xvda,r"):
            refused = _create(live_host, "thief", spec)
            assert refused.returncode != 0
            assert f"{shared} is already attached read-write to domain 'owner'" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert host_state(live_host.root) == before  # nothing of the refused domain
        reader = _create(live_host, "reader", f"{readonly},raw,xvda,r")
        assert reader.returncode == 0, reader.stderr
        live_host.xl("destroy", "reader")
        writer = _create(live_host, "writer", f"{readonly},raw,xvda,w")
        assert writer.returncode != 0
        assert "already attached read-only to domain 'owner'" in writer.stderr
    finally:
        live_host.xl("destroy", "owner")


def test_every_bad_disk_spec_is_refused_and_leaves_nothing(live_host: Any, images: Path) -> None:
    qcow2 = _image(images / "real.qcow2", fmt="qcow2")
    raw = _image(images / "plain.img")
    cases = [
        ([f"{images}/missing.img,raw,xvda,w"], "missing.img does not exist"),
        ([f"{images},raw,xvda,w"], "is a directory"),
        ([f"{qcow2},raw,xvda,w"], "the spec says format raw but the image is qcow2"),
        ([f"format=qcow2,vdev=xvda,target={raw}"], "says format qcow2 but the image is raw"),
        ([f"{raw},raw,xvda,w", f"{qcow2},qcow2,xvda,w"], "same guest device"),
        ([f"{raw},raw,xvd,w"], "virtual disk name 'xvd' is not a known form"),
        (["plain.img,raw,xvda,w"], "plain.img is neither a file in xl's directory nor a device"),
        # lvm2 says why (tests/integration/test_engine_lvm.py has every reason).
        (["phy:/dev/xendisks/vm01-root,xvda,w"], "/dev/xendisks/vm01-root does not exist: "),
        ([f"backendtype=phy,devtype=cdrom,vdev=hdc,target={raw}"], "a cdrom drive is served"),
        ([f"{raw},qcow2,xvda,w,script=block-iscsi"], "a block script gives a raw block device"),
        ([f"backendtype=phy,vdev=xvda,target={raw}"], "backendtype phy needs a block device"),
    ]
    before = host_state(live_host.root)
    for disks, expected in cases:
        refused = _create(live_host, "bad", *disks)
        assert refused.returncode != 0, (disks, refused.stderr)
        assert expected in refused.stderr, (disks, refused.stderr)
        assert "Traceback" not in refused.stderr
        assert host_state(live_host.root) == before, disks


def _serials(guest: GuestShell) -> dict[str, str]:
    """vdev (the virtio serial) -> the guest's block device name."""
    status, text = guest.run(
        "for d in /sys/block/vd*; do"
        " if [ -e $d/serial ]; then echo ${d##*/}=$(cat $d/serial); fi; done"
    )
    assert status == 0, text
    return {serial: name for name, _, serial in (line.partition("=") for line in text.split())}


def _wait_serials(guest: GuestShell, check: Any, timeout: float = 30.0) -> dict[str, str]:
    # Hot-plug reaches the guest through ACPI and the PCIe port: wait for its kernel to act.
    deadline = time.monotonic() + timeout
    while not check(found := _serials(guest)):
        assert time.monotonic() < deadline, f"the guest sees {found}"
        time.sleep(0.2)
    return found


def test_block_attach_and_detach_on_a_running_guest(live_host: Any, images: Path) -> None:
    before = host_state(live_host.root)
    root = _image(images / "root.img")
    extra = _image(images / "extra.img")
    extra.write_bytes(b"hot-plugged" + bytes(8 * 1024 * 1024 - 11))
    created = _create(live_host, "hot", f"{root},raw,xvda,w")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("hot")
        domid = _domid(live_host, "hot")
        with GuestShell(live_host, "hot") as guest:
            assert _serials(guest) == {"xvda": "vda"}
            attached = live_host.xl("block-attach", "hot", f"{extra},raw,xvdb,w")
            assert attached.returncode == 0, attached.stderr
            assert attached.stdout == ""
            found = _wait_serials(guest, lambda s: "xvdb" in s)
            assert guest.run(f"head -c 11 /dev/{found['xvdb']}") == (0, "hot-plugged")
            listing = live_host.xl("block-list", "hot").stdout.splitlines()
            assert [line.split()[0] for line in listing[1:]] == [str(XVDA), str(XVDB)]
            back = f"/local/domain/0/backend/qdisk/{domid}/{XVDB}"
            assert _node(live_host, f"{back}/params") == f"aio:{extra}"
            # The same image again, or its vdev again: refused, nothing changes.
            again = live_host.xl("block-attach", "hot", f"{extra},raw,xvdc,r")
            assert again.returncode != 0
            assert "already attached read-write to domain 'hot'" in again.stderr
            twice = live_host.xl("block-attach", "hot", f"{root},raw,xvdb,r")
            assert twice.returncode != 0
            assert "same guest device as xvdb's" in twice.stderr
            detached = live_host.xl("block-detach", "hot", "xvdb")
            assert detached.returncode == 0, detached.stderr
            _wait_serials(guest, lambda s: "xvdb" not in s)
            missing = live_host.xl("block-detach", "hot", "xvdb")
            assert missing.returncode == 1
            assert missing.stderr == "Error: Device xvdb not connected.\n"
            # A disk the config gave can go too, by its number.
            assert live_host.xl("block-detach", "hot", str(XVDA)).returncode == 0
            _wait_serials(guest, lambda s: not s)
        assert live_host.xl("block-list", "hot").stdout.count("\n") == 1  # the header alone
        listed = json.loads(live_host.xl("list", "-l", "hot").stdout)
        assert listed[0]["config"].get("disks", []) == []
    finally:
        live_host.xl("destroy", "hot")
    assert host_state(live_host.root) == before


def _medium(path: Path, text: str) -> Path:
    path.write_bytes(text.encode() + bytes(1024 * 1024 - len(text)))  # 512 CD sectors
    return path


def _reads(guest: GuestShell, device: str, size: int) -> tuple[int, str]:
    return guest.run(f"dd if=/dev/{device} bs=2048 count=1 2>&1 | head -c {size}")


def _wait_medium(guest: GuestShell, device: str, text: str, timeout: float = 30.0) -> None:
    # The guest's cdrom driver learns of a media change when the drive is next opened.
    deadline = time.monotonic() + timeout
    while (found := _reads(guest, device, len(text))) != (0, text):
        assert time.monotonic() < deadline, f"/dev/{device} reads {found}"
        time.sleep(0.2)


def _sr_targets(guest: GuestShell) -> dict[str, str]:
    """The guest's cdrom devices by SCSI target: {"0": "sr0", ...}."""
    status, text = guest.run(
        "for d in /sys/block/sr*; do [ -e $d ] || continue; t=$(readlink $d/device); t=${t##*/};"
        " echo ${d##*/}=$(echo $t | cut -d: -f3); done"
    )
    assert status == 0, text
    return {target: name for name, _, target in (line.partition("=") for line in text.split())}


def test_cdroms_loaded_and_empty_with_insert_and_eject(live_host: Any, images: Path) -> None:
    before = host_state(live_host.root)
    root = _image(images / "root.img")
    one = _medium(images / "one.iso", "medium-one")
    two = _medium(images / "two.iso", "medium-two")
    created = _create(live_host, "cd", f"{root},raw,xvda,w", f"{one},raw,hdc,cdrom", ",hdd:cdrom,r")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("cd")
        domid = _domid(live_host, "cd")
        hdc = f"/local/domain/0/backend/qdisk/{domid}/{HDC}"
        hdd = f"/local/domain/0/backend/qdisk/{domid}/{HDD}"
        assert _node(live_host, f"{hdc}/params") == f"aio:{one}"
        assert _node(live_host, f"{hdc}/device-type") == "cdrom"
        assert _node(live_host, f"{hdc}/mode") == "r"
        assert _node(live_host, f"{hdd}/params") == "aio:"  # an empty drive, as libxl writes
        assert _node(live_host, f"/local/domain/{domid}/device/vbd/{HDD}/device-type") == "cdrom"
        with GuestShell(live_host, "cd") as guest:
            # The drives take SCSI targets in vbd order: hdc 0, hdd 1.
            drives = _sr_targets(guest)
            sr_hdc, sr_hdd = drives["0"], drives["1"]
            assert _reads(guest, sr_hdc, 10) == (0, "medium-one")
            status, said = guest.run(f"dd if=/dev/{sr_hdd} bs=2048 count=1 of=/dev/null")
            assert status != 0, said
            assert "No medium found" in said
            inserted = live_host.xl("cd-insert", "cd", "hdd", str(two))
            assert inserted.returncode == 0, inserted.stderr
            _wait_medium(guest, sr_hdd, "medium-two")
            assert _node(live_host, f"{hdd}/params") == f"aio:{two}"
            record = f"/libxl/{domid}/device/vbd/{HDD}/params"
            assert _node(live_host, record) == f"aio:{two}"  # libxl's trustworthy copy
            # A medium in place of another: hdc now reads two as well (read-only sharing).
            assert live_host.xl("cd-insert", "cd", "hdc", str(two)).returncode == 0
            _wait_medium(guest, sr_hdc, "medium-two")
            ejected = live_host.xl("cd-eject", "cd", "hdc")
            assert ejected.returncode == 0, ejected.stderr
            assert _node(live_host, f"{hdc}/params") == ""  # as libxl_cdrom_insert writes
            deadline = time.monotonic() + 30
            while "No medium found" not in _reads(guest, sr_hdc, 200)[1]:
                assert time.monotonic() < deadline, "the guest still reads a medium"
                time.sleep(0.2)
        for args, expected in (
            (("cd-insert", "cd", "xvda", str(two)), "xvda is a disk, not a cdrom drive"),
            (("cd-insert", "cd", "xvde", str(two)), "the domain has no such cdrom drive"),
            (("cd-insert", "cd", "hdd", str(images / "none.iso")), "none.iso does not exist"),
            (("cd-insert", "cd", "hdd", str(root)), "already attached read-write to domain"),
            (("cd-eject", "cd"), "requires a domain and a virtual device"),
        ):
            refused = live_host.xl(*args)
            assert refused.returncode != 0, args
            assert expected in refused.stderr, (args, refused.stderr)
            assert "Traceback" not in refused.stderr
        assert _node(live_host, f"{hdd}/params") == f"aio:{two}"  # the refusals changed nothing
        listed = json.loads(live_host.xl("list", "-l", "cd").stdout)
        disks = {d["vdev"]: d for d in listed[0]["config"]["disks"]}
        assert (disks["hdc"]["pdev_path"], disks["hdc"]["format"]) == ("", "empty")
        assert (disks["hdd"]["pdev_path"], disks["hdd"]["is_cdrom"]) == (str(two), 1)
    finally:
        live_host.xl("destroy", "cd")
    assert host_state(live_host.root) == before


def test_block_attach_of_a_cdrom_brings_its_controller(live_host: Any, images: Path) -> None:
    before = host_state(live_host.root)
    root = _image(images / "root.img")
    one = _medium(images / "one.iso", "medium-one")
    created = _create(live_host, "hotcd", f"{root},raw,xvda,w")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("hotcd")
        with GuestShell(live_host, "hotcd") as guest:
            assert guest.run("ls /sys/block | grep -c sr")[1] == "0\n"
            attached = live_host.xl("block-attach", "hotcd", f"{one},raw,xvdd,cdrom")
            assert attached.returncode == 0, attached.stderr
            deadline = time.monotonic() + 30
            while not (drives := _sr_targets(guest)):
                assert time.monotonic() < deadline, "no cdrom appeared in the guest"
                time.sleep(0.2)
            _wait_medium(guest, drives["0"], "medium-one")
            detached = live_host.xl("block-detach", "hotcd", "xvdd")
            assert detached.returncode == 0, detached.stderr
            while _sr_targets(guest):
                assert time.monotonic() < deadline + 30, "the cdrom stayed in the guest"
                time.sleep(0.2)
        assert live_host.xl("block-list", "hotcd").stdout.count("\n") == 2  # header and xvda
    finally:
        live_host.xl("destroy", "hotcd")
    assert host_state(live_host.root) == before


# A block script in the manner of Xen's (block-common.sh): it reads its backend's params,
# sets a loop device up on that file and writes physical-device and physical-device-path.
BLOCK_LOOP = """#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
case "$1" in
add)
    file=$(xenstore-read "$XENBUS_PATH/params") || exit 1
    dev=$(losetup --find --show "$file") || {
        xenstore-write "$XENBUS_PATH/hotplug-error" "no loop device for $file"; exit 1; }
    xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c %t:%T "$dev")" \\
        "$XENBUS_PATH/physical-device-path" "$dev"
    ;;
remove)
    dev=$(xenstore-read "$XENBUS_PATH/physical-device-path") && losetup --detach "$dev"
    ;;
esac
"""
# One that fails as Xen's scripts do (fatal): hotplug-error written, a word on stderr.
BLOCK_FAIL = """#!/bin/sh
xenstore-write "$XENBUS_PATH/hotplug-error" "iSCSI target $(xenstore-read $XENBUS_PATH/params) \\
unreachable"
echo "iscsiadm: cannot make connection" >&2
exit 1
"""


def _loops_on(path: Path) -> str:
    found = subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True)
    return found.stdout.strip()


@pytest.fixture
def block_scripts(live_host: Any) -> Path:
    if shutil.which("losetup") is None or shutil.which("xenstore-read") is None:
        pytest.skip("the block script needs losetup and xenstore-utils (apt-get install "
                    "mount xenstore-utils)")  # fmt: skip
    scripts = live_host.root / "etc/xen/scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    for name, text in (("block-loop", BLOCK_LOOP), ("block-fail", BLOCK_FAIL)):
        (scripts / name).write_text(text)
        (scripts / name).chmod(0o755)
    return scripts


def test_block_scripts_set_up_the_device_and_take_it_down(
    live_host: Any, images: Path, block_scripts: Path
) -> None:
    before = host_state(live_host.root)
    a = _image(images / "a.img", "4M")
    b = _image(images / "b.img", "4M")
    created = _create(live_host, "scripted", f"script=block-loop,vdev=xvda,target={a}")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("scripted")
        domid = _domid(live_host, "scripted")
        back = f"/local/domain/0/backend/vbd/{domid}/{XVDA}"
        loop_a = _node(live_host, f"{back}/physical-device-path")
        assert _loops_on(a).startswith(f"{loop_a}:")
        assert _node(live_host, f"{back}/script") == "/etc/xen/scripts/block-loop"
        assert (_node(live_host, f"{back}/type"), _node(live_host, f"{back}/params")) == (
            "phy", str(a),
        )  # fmt: skip
        attached = live_host.xl(
            "block-attach", "scripted", f"script=block-loop,vdev=xvdb,target={b}"
        )
        assert attached.returncode == 0, attached.stderr
        with GuestShell(live_host, "scripted") as guest:
            assert guest.run("printf through-the-script > /dev/vda && sync")[0] == 0
            found = _wait_serials(guest, lambda s: "xvdb" in s)
            assert guest.run(f"cat /sys/block/{found['xvdb']}/size") == (0, "8192\n")
            assert live_host.xl("block-detach", "scripted", "xvdb").returncode == 0
            _wait_serials(guest, lambda s: "xvdb" not in s)
        assert _loops_on(b) == ""  # remove ran once QEMU let the device go
        # A failing script fails the attach with its words; nothing of that disk is left.
        failed = live_host.xl(
            "block-attach", "scripted", "script=block-fail,vdev=xvdc,target=iqn.x"
        )
        assert failed.returncode != 0
        assert "script: iSCSI target iqn.x unreachable" in failed.stderr
        assert "iscsiadm: cannot make connection" in failed.stderr
        assert live_host.xl("block-list", "scripted").stdout.count("\n") == 2  # header, xvda
    finally:
        live_host.xl("destroy", "scripted")
    assert _loops_on(a) == ""
    assert a.read_bytes()[:18] == b"through-the-script"
    assert host_state(live_host.root) == before
    # At create: the script's failure is the create's, and nothing is left.
    refused = _create(
        live_host, "scriptfail", f"{a},raw,xvda,w", "script=block-fail,vdev=xvdb,target=iqn.y"
    )
    assert refused.returncode != 0
    assert "script: iSCSI target iqn.y unreachable" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert host_state(live_host.root) == before
    missing = _create(live_host, "noscript", "script=block-none,vdev=xvda,target=x")
    assert missing.returncode != 0
    assert "block script" in missing.stderr
    assert "block-none is missing or not executable" in missing.stderr
    assert host_state(live_host.root) == before
