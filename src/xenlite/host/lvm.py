"""LVM logical volumes as the real lvm2 tools report them: the one owner of lvm2's commands.

The domain engine neither creates nor activates volumes: the administrator does, with
lvcreate and lvchange, as on Xen. What it needs is the reason a ``/dev/VG/LV`` that a disk
spec names is not there, so that the error can say what to do: the volume group is unknown,
the group has no such volume, or the volume exists but is not active (and cannot be, on a
kernel without device-mapper). ``xenlite create-image --lvm VG`` makes and removes the
volumes of the images it makes (:func:`create_volume`, :func:`remove_volume`), as
xen-create-image does.

lvm2 is asked read-only (``vgs``/``lvs`` with JSON reports), and asked to write nothing:
no metadata backups in /etc/lvm (a report otherwise writes the ones a change skipped), and,
on a kernel without device-mapper, no /dev/mapper/control node for a driver that is not
there (``--driverloaded n``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from xenlite.base.errors import CommandFailed, HostError
from xenlite.base.proc import run_sync, which

log = logging.getLogger(__name__)

LVM = "lvm"
LVM_PACKAGE = "lvm2"
LVM_TIMEOUT = 30.0
PROC_MISC = Path("/proc/misc")
PROC_MODULES = Path("/proc/modules")
# lvm2 warns on stderr about every descriptor its parent left open; xenlited has several.
_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}
_WRITE_NOTHING = "backup { backup = 0 archive = 0 }"


def has_device_mapper(proc_misc: Path = PROC_MISC) -> bool:
    """The running kernel has device-mapper: its misc device is registered, or its module
    can be loaded. Not /dev/mapper/control: lvm2 makes that node even where no driver is."""
    try:
        for line in proc_misc.read_text(encoding="ascii", errors="replace").splitlines():
            if line.split()[1:] == ["device-mapper"]:
                return True
    except OSError as exc:
        log.info("%s cannot be read (%s): looking for the dm_mod module", proc_misc, exc)
    release = os.uname().release
    for listing in ("modules.builtin", "modules.dep"):
        try:
            text = (Path("/lib/modules") / release / listing).read_text(errors="replace")
        except OSError:
            continue
        if "/dm-mod.ko" in text:
            return True
    return False


class Absence(StrEnum):
    """Why /dev/VG/LV is not there."""

    NO_LVM2 = "no-lvm2"
    NO_GROUP = "no-group"
    NO_VOLUME = "no-volume"
    INACTIVE = "inactive"
    NO_NODE = "no-node"


@dataclass(frozen=True)
class Diagnosis:
    absence: Absence
    group: str
    volume: str
    device_mapper: bool
    groups: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()

    @property
    def cause(self) -> str:
        name = f"{self.group}/{self.volume}"
        if self.absence is Absence.NO_LVM2:
            return "lvm2 is not installed, so it cannot be an active LVM logical volume"
        if self.absence is Absence.NO_GROUP:
            known = ", ".join(self.groups) if self.groups else "none"
            return f"there is no LVM volume group '{self.group}' (volume groups here: {known})"
        if self.absence is Absence.NO_VOLUME:
            known = ", ".join(self.volumes) if self.volumes else "none"
            return (
                f"LVM volume group '{self.group}' has no logical volume '{self.volume}' "
                f"(its volumes: {known})"
            )
        if self.absence is Absence.INACTIVE and not self.device_mapper:
            return (
                f"LVM logical volume {name} exists but is not active, and cannot be: this "
                "host's kernel has no device-mapper"
            )
        if self.absence is Absence.INACTIVE:
            return f"LVM logical volume {name} exists but is not active"
        return f"LVM logical volume {name} is active but has no device node"

    @property
    def fix(self) -> str:
        name = f"{self.group}/{self.volume}"
        if self.absence is Absence.NO_LVM2:
            return f"install it (apt-get install {LVM_PACKAGE}) if it is one, or correct the path"
        if self.absence is Absence.NO_GROUP:
            return f"create it (vgcreate {self.group} PV), or correct the path"
        if self.absence is Absence.NO_VOLUME:
            return f"create it (lvcreate -L 4G -n {self.volume} {self.group}), or correct the name"
        if self.absence is Absence.INACTIVE and not self.device_mapper:
            return (
                "use a file image instead (file:/PATH), or run on a host whose kernel has "
                "device-mapper (modprobe dm_mod)"
            )
        if self.absence is Absence.INACTIVE:
            return f"activate it: lvchange -ay {name}"
        return f"make its node: vgmknodes {self.group}"


def diagnose(group: str, volume: str) -> Diagnosis:
    """Ask lvm2 why /dev/``group``/``volume`` is missing.

    :raise HostError: when lvm2 is there but fails or answers what cannot be read
    """
    dm = has_device_mapper()
    lvm = which(LVM)
    if lvm is None:
        return Diagnosis(Absence.NO_LVM2, group, volume, dm)
    groups = tuple(row["vg_name"] for row in _report(lvm, "vgs", dm, ["-o", "vg_name"]))
    if group not in groups:
        return Diagnosis(Absence.NO_GROUP, group, volume, dm, groups=groups)
    rows = _report(lvm, "lvs", dm, ["-o", "lv_name,lv_active", group])
    volumes = tuple(row["lv_name"] for row in rows)
    found = next((row for row in rows if row["lv_name"] == volume), None)
    if found is None:
        return Diagnosis(Absence.NO_VOLUME, group, volume, dm, volumes=volumes)
    # Without the driver lvm2 cannot know and reports "" (nothing is active without it).
    if not dm or found.get("lv_active") != "active":
        return Diagnosis(Absence.INACTIVE, group, volume, dm)
    return Diagnosis(Absence.NO_NODE, group, volume, dm)


def _report(lvm: str, command: str, dm: bool, args: list[str]) -> list[dict[str, str]]:
    argv = [lvm, command, "--config", _WRITE_NOTHING, "--reportformat", "json", *args]
    if not dm:
        argv[2:2] = ["--driverloaded", "n"]
    what = f"lvm {command}"
    try:
        result = run_sync(argv, timeout=LVM_TIMEOUT, env=_ENV)
    except CommandFailed as exc:
        raise HostError(
            what,
            f"failed: {exc.stderr_tail.strip() or exc.cause}",
            "check the LVM setup with the same command by hand",
        ) from None
    try:
        report = json.loads(result.stdout)["report"]
        key = command[:2]
        rows: list[dict[str, str]] = [row for part in report for row in part.get(key, [])]
        return rows
    except (ValueError, KeyError, TypeError, AttributeError):
        raise HostError(what, "gave a report that is not lvm2's JSON", "upgrade lvm2") from None


def volume_path(group: str, volume: str) -> Path:
    return Path("/dev") / group / volume


def create_volume(group: str, volume: str, size: int) -> Path:
    """lvcreate a ``size``-byte volume and return its device node.

    :raise HostError: without device-mapper (no volume could be active), without lvm2, or
        when lvcreate fails (the group is unknown, it has no room)
    """
    what = f"LVM logical volume {group}/{volume}"
    if not has_device_mapper():
        raise HostError(
            what,
            "cannot be made: this host's kernel has no device-mapper, so no logical volume "
            "can be active",
            "use --dir DIR for a file image, or run on a host whose kernel has device-mapper "
            "(modprobe dm_mod)",
        )
    lvm = which(LVM)
    if lvm is None:
        raise HostError(
            what, "cannot be made: lvm2 is not installed", f"apt-get install {LVM_PACKAGE}"
        )
    argv = [lvm, "lvcreate", "--yes", "--wipesignatures", "y", "-L", f"{size}b", "-n", volume,
            group]  # fmt: skip
    try:
        run_sync(argv, timeout=LVM_TIMEOUT, env=_ENV)
    except CommandFailed as exc:
        raise HostError(
            what,
            f"lvcreate failed: {exc.stderr_tail.strip() or exc.cause}",
            f"check the volume group has {size >> 20} MiB free (vgs {group})",
        ) from None
    return volume_path(group, volume)


def remove_volume(group: str, volume: str) -> None:
    """lvremove the volume; one that is not there is already removed."""
    lvm = which(LVM)
    if lvm is None or not volume_path(group, volume).exists():
        return
    try:
        run_sync([lvm, "lvremove", "--yes", f"{group}/{volume}"], timeout=LVM_TIMEOUT, env=_ENV)
    except CommandFailed as exc:
        raise HostError(
            f"LVM logical volume {group}/{volume}",
            f"lvremove failed: {exc.stderr_tail.strip() or exc.cause}",
            "check it is not open (a running guest?), then lvremove it by hand",
        ) from None
