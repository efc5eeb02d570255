"""LVM disks (``phy:VG/LV``, ``/dev/VG/LV``) through the real lvm2 tools, on a volume group
whose one physical volume is a loop device made by the test.

Where the kernel has no device-mapper (this project's build machines), no volume can be
active: the errors say which group and volume and that device-mapper is missing, and the
boot test is skipped with that reason. The test's own lvm2 commands keep to its loop device
and write no metadata backups to the host's /etc/lvm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from guestshell import GuestShell
from hoststate import host_state
from xenlite.host.lvm import has_device_mapper

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

_NO_DM = "this host's kernel has no device-mapper, so no LVM volume can be active"


@dataclass(frozen=True)
class Group:
    name: str
    device_mapper: bool
    lvm: Any  # run one lvm2 command on the test's loop device only


@pytest.fixture
def volume_group(tmp_path: Path) -> Iterator[Group]:
    if shutil.which("lvm") is None or shutil.which("losetup") is None:
        pytest.skip("needs lvm2 and losetup (apt-get install lvm2 mount)")
    backing = tmp_path / "pv.img"
    with backing.open("wb") as image:
        image.truncate(64 * 1024 * 1024)
    made = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot set up a loop device here: {made.stderr.strip()}")
    loop = made.stdout.strip()
    dm = has_device_mapper()
    config = (
        f'devices {{ filter = [ "a|^{loop}$|", "r|.*|" ] use_devicesfile = 0 }} '
        "backup { backup = 0 archive = 0 }"
    )

    def lvm(*args: str) -> None:
        argv = ["lvm", args[0], "--config", config]
        if not dm:  # else lvm2 makes a /dev/mapper/control for a driver that is not there
            argv += ["--driverloaded", "n"]
        env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
        done = subprocess.run([*argv, *args[1:]], capture_output=True, text=True, env=env)
        assert done.returncode == 0, (args, done.stderr)

    name = f"xlt{os.getpid()}"
    try:
        lvm("pvcreate", loop)
        lvm("vgcreate", name, loop)
        # Made without activating it (no zeroing either: that needs it active).
        lvm("lvcreate", "--activate", "n", "--zero", "n", "-L", "8M", "-n", "spare", name)
        yield Group(name, dm, lvm)
    finally:
        subprocess.run(
            ["lvm", "vgremove", "--config", config, "-f", *([] if dm else ["--driverloaded", "n"]),
             name], capture_output=True, check=False,
        )  # fmt: skip
        subprocess.run(
            ["lvm", "pvremove", "--config", config, "-y", loop], capture_output=True, check=False
        )
        subprocess.run(["losetup", "--detach", loop], check=True)


def _create(host: Any, name: str, disk: str) -> subprocess.CompletedProcess[str]:
    return host.xl("create", str(host.write_config(name, f"disk = [ '{disk}' ]")))


def test_missing_lvm_volumes_say_why_and_leave_nothing(live_host: Any, volume_group: Group) -> None:
    group = volume_group.name
    mapper_before = os.path.exists("/dev/mapper/control")
    backups_before = _lvm_backups()
    inactive = (
        f"LVM logical volume {group}/spare exists but is not active, and cannot be: this "
        "host's kernel has no device-mapper"
        if not volume_group.device_mapper
        else f"LVM logical volume {group}/spare exists but is not active"
    )
    cases = [
        (f"phy:/dev/{group}/spare,xvda,w", f"/dev/{group}/spare does not exist: {inactive}"),
        (f"phy:{group}/spare,xvda,w", f"nor a device (/dev/{group}/spare): {inactive}"),
        (f"phy:/dev/{group}/nope,xvda,w", "has no logical volume 'nope' (its volumes: spare)"),
        (f"phy:{group}x/root,xvda,w", f"there is no LVM volume group '{group}x'"),
    ]
    before = host_state(live_host.root)
    for disk, expected in cases:
        refused = _create(live_host, "lvm", disk)
        assert refused.returncode != 0, (disk, refused.stderr)
        assert expected in refused.stderr, (disk, refused.stderr)
        assert "Traceback" not in refused.stderr
        assert host_state(live_host.root) == before, disk
    fix = "use a file image instead" if not volume_group.device_mapper else "lvchange -ay"
    assert fix in _create(live_host, "lvm", f"phy:{group}/spare,xvda,w").stderr
    # Asking lvm2 wrote nothing: no device node for a driver that is not there, no backups.
    assert os.path.exists("/dev/mapper/control") == mapper_before
    assert _lvm_backups() == backups_before


def _lvm_backups() -> list[str]:
    return sorted(
        os.fspath(path)
        for folder in (Path("/etc/lvm/backup"), Path("/etc/lvm/archive"))
        if folder.is_dir()
        for path in folder.iterdir()
    )


def test_guest_boots_with_an_lvm_volume(live_host: Any, volume_group: Group) -> None:
    if not volume_group.device_mapper:
        pytest.skip(_NO_DM)
    group = volume_group.name
    volume_group.lvm("lvcreate", "-L", "8M", "-n", "root", group)
    device = Path(f"/dev/{group}/root")
    before = host_state(live_host.root)
    created = _create(live_host, "lvm", f"phy:{group}/root,xvda,w")
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("lvm")
        with GuestShell(live_host, "lvm") as guest:
            assert guest.run("cat /sys/block/vda/serial") == (0, "xvda")
            assert guest.run("printf on-the-lv > /dev/vda && sync")[0] == 0
    finally:
        live_host.xl("destroy", "lvm")
    assert host_state(live_host.root) == before
    with device.open("rb") as volume:
        assert volume.read(9) == b"on-the-lv"
