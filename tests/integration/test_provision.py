"""xenlite create-image on a real host: a busybox image made in seconds boots with pygrub (or
directly) to its ready marker and answers on the address given with --ip; list-images and
delete-image see and remove it; a failed create (no room) leaves neither image nor config,
and what an interrupted one left is removed by the next. A Debian image (debootstrap from
the mirror, skipped when it is out of reach) boots with pygrub, takes a login on its serial
console and powers off on xl shutdown."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guestshell import GuestShell
from netns import add_bridge, namespace, run_in

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

XENLITE = Path(sys.executable).with_name("xenlite")
BRIDGE_ADDRESS = "10.77.5.1"


@pytest.fixture(scope="module")
def net_host(live_host_factory: Any) -> Iterator[Any]:
    with namespace() as netns:
        add_bridge(netns, "xenbr0", f"{BRIDGE_ADDRESS}/24")
        with live_host_factory(netns) as host:
            yield host


def _xenlite(host: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XENLITE), *args], env=host.env, capture_output=True, text=True, timeout=300
    )


def _wait_gone(host: Any, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while name in host.listed():
        assert time.monotonic() < deadline, f"{name} did not power off"
        time.sleep(0.2)


def test_a_busybox_image_boots_with_pygrub_on_its_address(net_host: Any, tmp_path: Path) -> None:
    images = tmp_path / "images"
    made = _xenlite(
        net_host, "create-image", "--hostname", "web1", "--dir", str(images), "--size", "96M",
        "--swap", "32M", "--memory", "128M", "--ip", "10.77.5.20", "--gateway", BRIDGE_ADDRESS,
        "--bridge", "xenbr0", "--pygrub", "--dist", "busybox",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Installation Summary" in made.stdout
    config = net_host.root / "etc/xen/web1.cfg"
    text = config.read_text()
    assert 'bootloader = "pygrub"' in text
    assert "ip=10.77.5.20,bridge=xenbr0" in text
    disk = images / "domains/web1/disk.img"
    assert disk.stat().st_blocks * 512 < disk.stat().st_size  # sparse

    listed = _xenlite(net_host, "list-images")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == f"Name: web1\nMemory: 128 MB\nIP: 10.77.5.20\nConfig: {config}\n"

    created = net_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        net_host.wait_ready("web1", timeout=90)
        pinged = run_in(net_host.netns, "busybox", "ping", "-c", "1", "-W", "5", "10.77.5.20")
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        with GuestShell(net_host, "web1") as guest:
            status, said = guest.run("hostname; grep ' / ' /proc/mounts; cat /proc/swaps")
            assert status == 0, said
            lines = said.splitlines()
            assert lines[0] == "web1"
            assert " / ext4 rw" in lines[1]
            assert "partition" in said  # the swap partition is on
        # Deleting a running guest's image is refused, as xen-delete-image does.
        refused = _xenlite(net_host, "delete-image", "web1")
        assert refused.returncode != 0
        assert "Skipping xen guest 'web1' - it appears to be running." in refused.stdout
        assert config.exists()
        # xl shutdown: the ACPI button, busybox init's shutdown, rcK.
        assert net_host.xl("shutdown", "web1").returncode == 0
        _wait_gone(net_host, "web1")
        log = net_host.root / "var/log/xenlite/console/guest-web1.log"
        assert "xenlite-guest: stopping" in log.read_text(errors="replace")
    finally:
        net_host.xl("destroy", "web1")

    deleted = _xenlite(net_host, "delete-image", "web1")
    assert deleted.returncode == 0, deleted.stderr
    assert f"Deleting: {config}" in deleted.stdout
    assert not config.exists()
    assert not (images / "domains/web1").exists()


def test_without_pygrub_the_kernel_beside_the_image_boots_directly(
    net_host: Any, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    made = _xenlite(
        net_host, "create-image", "--hostname", "direct1", "--dir", str(images), "--size",
        "96M", "--noswap", "--memory", "128M", "--ip", "10.77.5.21", "--image", "full",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = net_host.root / "etc/xen/direct1.cfg"
    boot = images / "domains/direct1/boot"
    assert f'kernel = "{next(boot.glob("vmlinuz-*"))}"' in config.read_text()
    disk = images / "domains/direct1/disk.img"
    assert disk.stat().st_blocks * 512 >= disk.stat().st_size  # every block allocated
    assert net_host.xl("create", str(config)).returncode == 0
    try:
        net_host.wait_ready("direct1", timeout=90)
        with GuestShell(net_host, "direct1") as guest:
            status, said = guest.run("ip -4 addr show dev eth0; cat /proc/swaps")
            assert status == 0, said
            assert "inet 10.77.5.21/24" in said
            assert "partition" not in said
    finally:
        net_host.xl("destroy", "direct1")
    assert _xenlite(net_host, "delete-image", "--dir", str(images), "direct1").returncode == 0
    assert not (images / "domains/direct1").exists()


def test_a_name_in_use_is_refused_and_force_replaces_it(net_host: Any, tmp_path: Path) -> None:
    images = tmp_path / "images"
    args = ("create-image", "--hostname", "twice", "--dir", str(images), "--size", "64M")
    assert _xenlite(net_host, *args).returncode == 0
    # A file of the first image's: the inode number of a new disk.img may well be the old
    # one's, so "replaced" is seen by this file going away with the old directory.
    marker = images / "domains/twice/marker"
    marker.write_text("first\n")
    again = _xenlite(net_host, *args)
    assert again.returncode != 0
    assert "the name is in use" in again.stderr
    assert "--force" in again.stderr
    assert marker.exists()
    forced = _xenlite(net_host, *args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not marker.exists()
    assert (images / "domains/twice/disk.img").exists()
    assert _xenlite(net_host, "delete-image", "twice").returncode == 0


def _fails_leaving_nothing(host: Any, where: Path, *args: str) -> str:
    """create-image full1 in ``where`` with ``args`` fails; what it said on stderr."""
    failed = _xenlite(
        host, "create-image", "--hostname", "full1", "--dir", str(where), "--size", "128M", *args
    )
    assert failed.returncode != 0
    assert not (where / "domains/full1").exists()
    assert not (where / "domains/.full1.partial").exists()
    assert not (host.root / "etc/xen/full1.cfg").exists()
    return failed.stderr


def test_no_room_fails_the_step_and_leaves_nothing(net_host: Any, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(small)], check=True)
    try:
        said = _fails_leaving_nothing(net_host, small, "--image", "full")
        assert "Creating the disk image" in said
        assert "no room" in said
        # Sparse, the image fits until mke2fs writes the system into it: that step fails.
        said = _fails_leaving_nothing(net_host, small, "--swap", "16M")
        assert "create-image full1: Making the ext4 filesystem" in said
        assert "No space left on device" in said
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_what_an_interrupted_run_left_is_removed_by_the_next(net_host: Any, tmp_path: Path) -> None:
    """A killed create-image leaves only .NAME.partial, perhaps with debootstrap's /proc
    still mounted in its tree: not an image, so the name is free, and the next run (or
    delete-image) unmounts and removes it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    images = tmp_path / "images"
    proc = images / "domains/.again1.partial/staging/proc"
    proc.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(proc)], check=True)
    try:
        listed = _xenlite(net_host, "list-images")
        assert "again1" not in listed.stdout
        made = _xenlite(
            net_host, "create-image", "--hostname", "again1", "--dir", str(images), "--size",
            "64M", "--noswap",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert str(proc) not in Path("/proc/self/mounts").read_text()
        assert not proc.parent.parent.exists()
        assert (images / "domains/again1/disk.img").exists()
        assert _xenlite(net_host, "delete-image", "again1").returncode == 0
    finally:
        if str(proc) in Path("/proc/self/mounts").read_text():
            subprocess.run(["umount", str(proc)], check=True)


def test_the_seeds_xen_create_image_line_works_with_a_xen_tools_conf(
    net_host: Any, tmp_path: Path
) -> None:
    """The seed's "xen-create-image --hostname <hostname> --ip <ip> --vcpus 2 --pygrub
    --dist ..." with the rest in /etc/xen-tools/xen-tools.conf, under xen-tools' own
    program names."""
    images = tmp_path / "images"
    conf = net_host.root / "etc/xen-tools/xen-tools.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"dir = {images}\nsize = 96Mb  # disk image size\nswap = 32Mb\nmemory = 128Mb\n"
        f"gateway = {BRIDGE_ADDRESS}\nnetmask = 255.255.255.0\nbridge = xenbr0\n"
    )
    tools = XENLITE.parent
    try:
        made = subprocess.run(
            [str(tools / "xen-create-image"), "--hostname=seed1", "--ip=10.77.5.40", "--vcpus",
             "2", "--pygrub", "--dist=busybox"],
            env=net_host.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert made.stderr == ""  # every line of the file was taken
    finally:
        conf.unlink()
    config = net_host.root / "etc/xen/seed1.cfg"
    listed = subprocess.run(
        [str(tools / "xen-list-images")], env=net_host.env, capture_output=True, text=True
    )
    assert f"Name: seed1\nMemory: 128 MB\nIP: 10.77.5.40\nConfig: {config}" in listed.stdout
    assert net_host.xl("create", str(config)).returncode == 0
    try:
        net_host.wait_ready("seed1", timeout=90)
        pinged = run_in(net_host.netns, "busybox", "ping", "-c", "1", "-W", "5", "10.77.5.40")
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        with GuestShell(net_host, "seed1") as guest:
            status, said = guest.run("grep -c ^processor /proc/cpuinfo")
            assert (status, said.strip()) == (0, "2")
    finally:
        net_host.xl("destroy", "seed1")
    deleted = subprocess.run(
        [str(tools / "xen-delete-image"), "seed1"], env=net_host.env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert not (images / "domains/seed1").exists()


def _mirror_reachable(mirror: str, suite: str) -> str | None:
    """None when ``mirror`` serves ``suite``'s Release file; otherwise why not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{mirror}/dists/{suite}/Release", timeout=15):
            return None
    except (urllib.error.URLError, OSError) as exc:
        return f"the Debian mirror {mirror} is not reachable from this host ({exc})"


def test_a_debian_image_boots_with_pygrub_logs_in_and_powers_off(
    net_host: Any, tmp_path: Path
) -> None:
    from xenlite.base.paths import user_cache_dir
    from xenlite.provision.request import DEFAULT_MIRROR

    if shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    unreachable = _mirror_reachable(DEFAULT_MIRROR, "bookworm")
    if unreachable:
        pytest.skip(unreachable)
    images = tmp_path / "images"
    made = _xenlite(
        net_host, "create-image", "--hostname", "deb1", "--dir", str(images), "--size", "2G",
        "--memory", "384M", "--ip", "10.77.5.30", "--gateway", BRIDGE_ADDRESS, "--bridge",
        "xenbr0", "--pygrub", "--dist", "bookworm", "--password", "xenlite-test",
        # The packages stay in the user's cache: a second run on this machine downloads
        # nothing (a clean CI machine fetches them, about a minute).
        "--cachedir", str(user_cache_dir() / "debootstrap"),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Root Password   :  xenlite-test" in made.stdout
    config = net_host.root / "etc/xen/deb1.cfg"
    assert net_host.xl("create", str(config)).returncode == 0
    try:
        # Debian's own kernel, initramfs and systemd under TCG: slower than the kit.
        net_host.wait_ready("deb1", timeout=240)
        pinged = run_in(net_host.netns, "busybox", "ping", "-c", "1", "-W", "5", "10.77.5.30")
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        with GuestShell(net_host, "deb1", login=("root", "xenlite-test")) as guest:
            status, said = guest.run(
                "hostname; grep ' / ' /proc/mounts; cat /proc/swaps; . /etc/os-release; "
                "echo $VERSION_CODENAME; ip -color=never -4 -o addr show dev eth0"
            )
            assert status == 0, said
            lines = said.splitlines()
            assert lines[0] == "deb1"
            assert " / ext4 rw" in lines[1]
            assert "partition" in said
            assert "bookworm" in lines
            assert "inet 10.77.5.30/24" in said
        # xl shutdown: the ACPI power button, logind, systemd's poweroff.
        assert net_host.xl("shutdown", "deb1").returncode == 0
        _wait_gone(net_host, "deb1", timeout=120)
    finally:
        net_host.xl("destroy", "deb1")
    deleted = _xenlite(net_host, "delete-image", "deb1")
    assert deleted.returncode == 0, deleted.stderr
    assert not (images / "domains/deb1").exists()
