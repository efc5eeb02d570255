"""Where create-image builds (.NAME.partial, locked, renamed when whole), removing trees with
mounts in them, and the Debian path's checks that need no mirror: a debootstrap that fails
names its step and log and leaves nothing."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlite.base.errors import ProvisionError
from xenlite.host.mounts import mounts_under, remove_tree
from xenlite.provision import debian, workspace

XENLITE = Path(sys.executable).with_name("xenlite")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted two levels down in tmp_path (a chroot's /proc, say)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "tree with space/proc"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], check=True)
    (point / "file").write_text("in the mount\n")
    try:
        yield point
    finally:
        if mounts_under(point):
            subprocess.run(["umount", str(point)], check=True)


def test_remove_tree_unmounts_first(tmp_path: Path, mounted: Path) -> None:
    assert mounts_under(tmp_path) == [mounted]  # the space in the path is read back
    remove_tree(tmp_path / "tree with space")
    assert mounts_under(tmp_path) == []
    assert not (tmp_path / "tree with space").exists()
    remove_tree(tmp_path / "tree with space")  # gone already: nothing to do


def test_a_stale_partial_is_removed_and_a_live_one_refused(tmp_path: Path) -> None:
    partial = workspace.partial_of(tmp_path / "domains/web1")
    assert partial == tmp_path / "domains/.web1.partial"
    partial.mkdir(parents=True)
    (partial / "disk.img").write_bytes(b"half")
    with workspace.claimed(partial) as claimed:
        assert claimed == partial
        assert not (partial / "disk.img").exists()  # the interrupted run's leftovers
        with pytest.raises(ProvisionError, match="another create-image of this name"):
            workspace.remove_stale(partial)
        refused = pytest.raises(ProvisionError, match="another create-image of this name")
        with refused, workspace.claimed(partial):
            pass
        fd = os.open(partial, os.O_RDONLY)
        try:  # the lock is held for the whole run
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert workspace.remove_stale(partial)
    assert not partial.exists()
    assert not workspace.remove_stale(partial)


def test_the_kernel_is_the_one_the_package_installed(tmp_path: Path) -> None:
    root = uuid.UUID(int=7)
    with pytest.raises(ProvisionError, match="holds 0 kernels"):
        debian.find_kernel(tmp_path, root)
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-9-cloud-amd64").write_bytes(b"k")
    with pytest.raises(ProvisionError, match=r"initrd\.img-6\.1\.0-9-cloud-amd64"):
        debian.find_kernel(tmp_path, root)
    (tmp_path / "boot/initrd.img-6.1.0-9-cloud-amd64").write_bytes(b"i")
    boot = debian.find_kernel(tmp_path, root)
    assert boot.kernel == "/boot/vmlinuz-6.1.0-9-cloud-amd64"
    assert boot.cmdline == f"root=UUID={root} ro console=ttyS0 net.ifnames=0"
    (tmp_path / "boot/vmlinuz-6.1.0-10-cloud-amd64").write_bytes(b"k")
    with pytest.raises(ProvisionError, match="holds 2 kernels"):
        debian.find_kernel(tmp_path, root)


def test_the_ready_unit_runs_once_the_network_is_up() -> None:
    unit = debian.ready_unit()
    assert "After=network-online.target" in unit
    assert 'ExecStart=/bin/echo "xenlite-guest: ready"' in unit
    assert "StandardOutput=journal+console" in unit
    assert "WantedBy=multi-user.target" in unit
    assert len(debian.make_password()) == 12
    assert debian.make_password() != debian.make_password()


def test_a_failing_debootstrap_names_its_step_and_log_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    if shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    images = tmp_path / "images"
    done = subprocess.run(
        [str(XENLITE), "create-image", "--hostname", "deb9", "--dir", str(images), "--dist",
         "bookworm", "--size", "1G", "--cache", "no", "--mirror", "http://127.0.0.1:9/debian"],
        capture_output=True, text=True, timeout=120,
        env={"XENLITE_ROOT": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "Installing Debian bookworm with debootstrap from http://127.0.0.1:9/debian" in (
        done.stderr
    )
    log = tmp_path / "var/log/xenlite/create-image/deb9.log"
    assert "Failed getting release file http://127.0.0.1:9/debian" in done.stderr
    assert f"see {log}" in done.stderr
    assert "Traceback" not in done.stderr
    assert log.read_text().strip()  # what debootstrap said is kept
    assert list((images / "domains").iterdir()) == []  # no image, no .deb9.partial
    assert not (tmp_path / "etc/xen/deb9.cfg").exists()
    assert mounts_under(tmp_path) == []
