"""host/lvm.py without lvm2: how device-mapper is detected and what each absence says."""

from __future__ import annotations

import os
from pathlib import Path

from xenlite.host.lvm import Absence, Diagnosis, has_device_mapper


def test_device_mapper_is_the_kernels_misc_device(tmp_path: Path) -> None:
    misc = tmp_path / "misc"
    misc.write_text("200 tun\n236 device-mapper\n237 loop-control\n")
    assert has_device_mapper(misc)


def test_a_device_mapper_in_the_name_of_another_device_is_not_it(tmp_path: Path) -> None:
    misc = tmp_path / "misc"
    misc.write_text("200 tun\n237 loop-control\n238 not-device-mapper\n")
    # No misc device; the answer then rests on the running kernel's module lists.
    release = Path("/lib/modules") / os.uname().release
    listed = any(
        "/dm-mod.ko" in (release / name).read_text(errors="replace")
        for name in ("modules.builtin", "modules.dep")
        if (release / name).exists()
    )
    assert has_device_mapper(misc) is listed


def test_each_absence_names_the_group_and_the_fix() -> None:
    said = {
        absence: Diagnosis(absence, "xendisks", "vm01-root", device_mapper=False, groups=("vg0",),
                           volumes=("swap",))
        for absence in Absence
    }  # fmt: skip
    assert said[Absence.NO_LVM2].fix.startswith("install it (apt-get install lvm2)")
    assert said[Absence.NO_GROUP].cause == (
        "there is no LVM volume group 'xendisks' (volume groups here: vg0)"
    )
    assert said[Absence.NO_GROUP].fix == "create it (vgcreate xendisks PV), or correct the path"
    assert said[Absence.NO_VOLUME].cause == (
        "LVM volume group 'xendisks' has no logical volume 'vm01-root' (its volumes: swap)"
    )
    assert "lvcreate -L 4G -n vm01-root xendisks" in said[Absence.NO_VOLUME].fix
    assert said[Absence.INACTIVE].cause.endswith("this host's kernel has no device-mapper")
    assert said[Absence.INACTIVE].fix.startswith("use a file image instead")
    active = Diagnosis(Absence.INACTIVE, "xendisks", "vm01-root", device_mapper=True)
    assert active.fix == "activate it: lvchange -ay xendisks/vm01-root"
    assert Diagnosis(Absence.NO_NODE, "xendisks", "vm01-root", True).fix == (
        "make its node: vgmknodes xendisks"
    )
