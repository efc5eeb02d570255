"""type = "hvm" on real guests: firmware boot (SeaBIOS and OVMF) from a partitioned disk and
SeaBIOS from an ISO (boot = "d"), to the guest kit's ready marker on the emulated serial
port (serial = "pty", the domain's console); the VNC server QEMU runs for the domain, with
the password set through QMP, logged in to by a real VNC client (vncdotool's vncdo) that
captures a screen that is not blank; the address in XenStore where xl vncviewer reads it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bootimages import firmware_disk, isolinux_iso
from guestshell import GuestShell
from hoststate import XENSTORED_SOCKET, host_state
from xenlite.qemu.hvm import OVMF_CODE
from xenlite.xenstore.client import XenStore

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

# tty0 too, so the kernel's messages reach the VGA screen VNC shows; ttyS0 last: the console.
CMDLINE = "console=tty0 console=ttyS0 ip=off"
PASSWORD = "s3cret"
VNCDO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "vncdo"


def _vncdo() -> str:
    found = shutil.which("vncdo") or (str(VNCDO) if VNCDO.exists() else None)
    if found is None:
        pytest.skip("vncdo is not installed (pip install vncdotool; make test installs it)")
    return found


def _config(host: Any, name: str, *lines: str) -> Path:
    path = host.root / f"{name}.cfg"
    # 256 MiB: OVMF's GRUB runs out of memory loading the kit's 14 MB kernel in 128.
    body = [f'name = "{name}"', 'type = "hvm"', "memory = 256", 'serial = "pty"', *lines]
    path.write_text("\n".join(body) + "\n")
    return path


def _vnc_address(host: Any, domid: int) -> tuple[str, int]:
    with XenStore.open(host.root / XENSTORED_SOCKET) as xs:
        listen = xs.read(f"/local/domain/{domid}/console/vnc-listen").decode()
        port = int(xs.read(f"/local/domain/{domid}/console/vnc-port"))
    return listen, port


def _domid(host: Any, name: str) -> int:
    result = host.xl("domid", name)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def _capture(
    address: tuple[str, int], password: str, out: Path
) -> subprocess.CompletedProcess[str]:
    server = f"{address[0]}::{address[1]}"
    return subprocess.run(
        [_vncdo(), "-s", server, "-p", password, "capture", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


RECORDING_VIEWER = """#!/bin/sh
# Stands in for a VNC viewer (a real one needs an X display, which this host has not):
# records how xl runs it.
printf '%s\\n' "$@" > "$0.args"
cat > "$0.stdin"
"""


def _check_vncviewer(host: Any, name: str, address: tuple[str, int], tmp_path: Path) -> None:
    """xl vncviewer without a viewer installed prints the address; with one, runs it on the
    display, and with --autopass hands it the password on its input."""
    env = host.env
    env["PATH"] = "/usr/bin:/bin"
    assert shutil.which("vncviewer", path=env["PATH"]) is None
    xl = [str(Path(sys.executable).with_name("xl"))]
    printed = subprocess.run([*xl, "vncviewer", name], env=env, capture_output=True, text=True,
                             timeout=30, check=False)  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == f"127.0.0.1:{address[1]}\n"
    assert "vncviewer is not installed" in printed.stderr
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    viewer = bin_dir / "vncviewer"
    viewer.write_text(RECORDING_VIEWER)
    viewer.chmod(0o755)
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    ran = subprocess.run([*xl, "vncviewer", "--autopass", name], env=env, capture_output=True,
                         text=True, timeout=30, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    display = address[1] - 5900
    assert (bin_dir / "vncviewer.args").read_text() == f"127.0.0.1:{display}\n-autopass\n"
    assert (bin_dir / "vncviewer.stdin").read_text() == f"{PASSWORD}\n"


def _check_pv_disk_hotplug(host: Any, name: str, tmp_path: Path) -> None:
    """xl block-attach to an HVM guest gives it a PV disk (virtio on the i440FX bridge), as
    Xen's does; block-detach takes it away again."""
    extra = tmp_path / "extra.img"
    extra.write_bytes(b"hot-plugged" + bytes((1 << 20) - 11))
    with GuestShell(host, name) as guest:
        attached = host.xl("block-attach", name, f"{extra},raw,xvdb,w")
        assert attached.returncode == 0, attached.stderr
        _wait_guest(guest, "cat /sys/block/vda/serial", "xvdb")
        assert guest.run("head -c 11 /dev/vda") == (0, "hot-plugged")
        detached = host.xl("block-detach", name, "xvdb")
        assert detached.returncode == 0, detached.stderr
        _wait_guest(guest, "ls /sys/block/vda 2>&1", "No such file")


def _wait_guest(guest: GuestShell, command: str, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in guest.run(command)[1]:
        assert time.monotonic() < deadline, f"{command!r} never said {text!r}"
        time.sleep(0.2)


def _colours(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 16) or [])


@pytest.fixture(scope="module")
def disk_image(tmp_path_factory: pytest.TempPathFactory, live_host: Any) -> Path:
    work = tmp_path_factory.mktemp("hvm-disk")
    return firmware_disk(work / "hvm.img", live_host.kernel, live_host.initrd, CMDLINE)


@pytest.mark.parametrize("bios", ["seabios", "ovmf"])
def test_firmware_boots_the_disk_and_vnc_shows_the_screen(
    live_host: Any, disk_image: Path, tmp_path: Path, bios: str
) -> None:
    if bios == "ovmf" and not OVMF_CODE.is_file():
        pytest.skip(f"{OVMF_CODE} is not installed (apt-get install ovmf)")
    before = host_state(live_host.root)
    image = tmp_path / "disk.img"
    shutil.copy(disk_image, image)
    name = f"hvm-{bios}"
    config = _config(
        live_host, name, f'bios = "{bios}"', f"disk = [ 'file:{image},hda,w' ]", 'boot = "c"',
        "vnc = 1", f'vncpasswd = "{PASSWORD}"',
    )  # fmt: skip
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready(name, timeout=180)
        domid = _domid(live_host, name)
        address = _vnc_address(live_host, domid)
        assert address[0] == "127.0.0.1"
        assert address[1] >= 5900
        assert f"VNC on 127.0.0.1:{address[1]}" in live_host.xl("dmesg").stdout
        if bios == "ovmf":
            assert (live_host.root / f"run/xenlite/qemu/{domid}/uefi-vars.fd").is_file()
        refused = _capture(address, "wrong", tmp_path / "refused.png")
        assert refused.returncode != 0
        assert not (tmp_path / "refused.png").exists()
        shot = tmp_path / "screen.png"
        captured = _capture(address, PASSWORD, shot)
        assert captured.returncode == 0, captured.stderr
        assert _colours(shot) > 1  # text on the screen, not one blank colour
        listed = live_host.xl("list", "-l", name)
        assert '"type": "hvm"' in listed.stdout
        if bios == "seabios":
            _check_vncviewer(live_host, name, address, tmp_path)
            _check_pv_disk_hotplug(live_host, name, tmp_path)
    finally:
        live_host.xl("destroy", name)
    assert host_state(live_host.root) == before


def test_boot_d_starts_the_cdrom(live_host: Any, tmp_path: Path) -> None:
    before = host_state(live_host.root)
    iso = isolinux_iso(tmp_path / "boot.iso", live_host.kernel, live_host.initrd, CMDLINE)
    empty = tmp_path / "empty.img"
    empty.write_bytes(bytes(1 << 20))  # a blank disk first in vbd order: boot="d" skips it
    config = _config(
        live_host, "hvm-iso", f"disk = [ 'file:{empty},hda,w', 'file:{iso},hdc:cdrom,r' ]",
        'boot = "dc"', "vnc = 0",
    )  # fmt: skip
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready("hvm-iso", timeout=120)
        domid = _domid(live_host, "hvm-iso")
        with XenStore.open(live_host.root / XENSTORED_SOCKET) as xs:
            assert "vnc-port" not in xs.directory(f"/local/domain/{domid}/console")
        viewer = live_host.xl("vncviewer", "hvm-iso")
        assert viewer.returncode != 0
        assert "has no VNC display" in viewer.stderr
    finally:
        live_host.xl("destroy", "hvm-iso")
    assert host_state(live_host.root) == before


def test_without_serial_there_is_no_console(live_host: Any) -> None:
    before = host_state(live_host.root)
    config = live_host.root / "noserial.cfg"
    config.write_text('name = "noserial"\ntype = "hvm"\nmemory = 64\nvnc = 0\n')
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        attached = live_host.xl("console", "noserial", timeout=30)
        assert attached.returncode != 0
        assert 'serial = "pty"' in attached.stderr
    finally:
        live_host.xl("destroy", "noserial")
    assert host_state(live_host.root) == before


def _cpu_flags(host: Any, name: str) -> set[str]:
    with GuestShell(host, name) as guest:
        status, said = guest.run("grep -m1 '^flags' /proc/cpuinfo")
    assert status == 0, said
    return set(said.split(":", 1)[1].split())


@pytest.mark.parametrize(
    ("form", "cpuid", "gone"),
    [
        ("libxl", '"host,aes=0,sse4.2=0"', {"aes", "sse4_2"}),
        ("xend", '["1:ecx=xxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxx"]', {"sse4_2"}),
    ],
)
def test_cpuid_reaches_the_guests_cpuinfo(
    live_host: Any, form: str, cpuid: str, gone: set[str]
) -> None:
    # A PVH guest: cpuid= is every guest type's (xl reads it for PV, PVH and HVM alike).
    before = host_state(live_host.root)
    name = f"cpuid-{form}"
    config = live_host.write_config(name, f"cpuid = {cpuid}")
    created = live_host.xl("create", str(config))
    assert created.returncode == 0, created.stderr
    try:
        live_host.wait_ready(name)
        flags = _cpu_flags(live_host, name)
        assert not gone & flags
        assert {"sse2", "sse4_1"} <= flags  # the rest of QEMU's model is untouched
    finally:
        live_host.xl("destroy", name)
    assert host_state(live_host.root) == before


def test_a_cpuid_flag_the_accelerator_lacks_fails_the_create(live_host: Any) -> None:
    before = host_state(live_host.root)
    config = live_host.write_config("cpuid-avx512", 'cpuid = "host,avx512f=1"')
    created = live_host.xl("create", str(config))  # live hosts run TCG: no AVX-512
    assert created.returncode != 0
    assert "avx512f" in created.stderr
    assert "cpuid-avx512" not in live_host.listed()
    assert host_state(live_host.root) == before
