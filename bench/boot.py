"""Bootloader benchmark: xenlite's pygrub next to Debian's on the same image, in one run.

Prints one JSON object (issue 18 "Tests and benchmark"):

- ``bootloader``: seconds to open a 1 GiB partitioned ext4 image (MBR, the guest kit's
  kernel and initramfs in /boot, a Debian-style grub.cfg), read its menu, choose and copy
  the kernel and ramdisk out. ``ratio`` (target at most 0.5) is what ``xl create`` pays:
  xenlite's engine runs the bootloader inside xenlited, libxl runs Debian's pygrub as a
  process, so xenlite in process over Debian's pygrub process. ``cli_ratio`` compares the
  two commands (``xenlite pygrub -q`` and ``pygrub -q``) process to process. Both
  interpreters may keep compiled bytecode (as installed packages have it) and run once
  before timing; runs are taken in turns and medians reported;
- ``qcow2``: ``xenlite pygrub`` on the same disk as compressed qcow2, read through
  qemu-storage-daemon (Debian's pygrub cannot read qcow2);
- ``create_to_ready``: seconds from ``xl create`` to the guest kit's ready line for a
  domain with ``bootloader = "pygrub"`` on that disk, next to the same kernel, initramfs and
  command line by direct kernel boot (``kernel=``/``ramdisk=``) with the same disk attached,
  taken in turns on one private host (medians over ``--boots``), and their ratio; and
  ``hvm_seabios_seconds``: the same kernel, initramfs and command line booted as an HVM
  domain (``type = "hvm"``) by SeaBIOS and syslinux from a partitioned disk (the image the
  HVM tests boot, tests/bootimages.py), with ``hvm_ratio`` over direct kernel boot;
- ``create_image``: seconds of ``xenlite create-image --dist busybox --pygrub`` (4 GiB sparse
  root, 128 MiB swap, a static address) with the guest kit cached, over ``--boots`` images,
  and ``boot_to_ready_seconds``: ``xl create`` of the first made config to the ready marker
  printed by the image's own busybox init (its vif left out with ``vif=[]``: the bench host
  is in the root network namespace, where no bridge may be made); with ``--debian SUITE``
  also ``create_image_debian``: one ``create-image --dist SUITE`` (2 GiB root; debootstrap's
  packages cached in ~/.cache/xenlite/debootstrap, so a second run downloads nothing) and
  its boot to the ``xenlite-ready`` unit's marker.

Debian's pygrub comes from ../shared/tools/xen-oracles' unpacked packages
(``$XEN_ORACLE_CACHE``, default ~/.cache/xen-oracles); without them its numbers are null.

    .venv/bin/python bench/boot.py [--runs 7] [--size-mib 1024] [--debian bookworm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchhost import CMDLINE, XENLITE, XL, GuestHost, tear_down

# The HVM tests' image, made the same way.
sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1] / "tests"))
from bootimages import firmware_disk
from xenlite.base.paths import user_cache_dir
from xenlite.boot.loader import opened
from xenlite.boot.pygrub import choose_boot, parse_options
from xenlite.guestkit.build import build_guest_kit
from xenlite.qemu.accel import probe_accel

TARGET_RATIO = 0.5
PART_START = 2048  # sectors
GRUB_CFG = """\
set default="0"
set timeout=5
insmod part_msdos
insmod ext2
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {{
    load_video
    insmod gzio
    set root='hd0,msdos1'
    echo 'Loading Linux {version} ...'
    linux /boot/vmlinuz-{version} {cmdline}
    echo 'Loading initial ramdisk ...'
    initrd /boot/initrd.img-{version}
}}
"""


def make_image(path: Path, scratch: Path, size_mib: int) -> None:
    kit = build_guest_kit()
    tree = scratch / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    shutil.copy(kit.kernel, tree / "boot" / f"vmlinuz-{kit.kernel_version}")
    shutil.copy(kit.initrd, tree / "boot" / f"initrd.img-{kit.kernel_version}")
    (tree / "boot" / "grub" / "grub.cfg").write_text(
        GRUB_CFG.format(version=kit.kernel_version, cmdline=CMDLINE)
    )
    with open(path, "wb") as disk:
        disk.truncate(size_mib << 20)
    layout = f"label: dos\nstart={PART_START}, type=83\n"
    subprocess.run(["sfdisk", "-q", str(path)], input=layout, text=True, check=True)
    blocks_k = (size_mib << 10) - PART_START // 2
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-E", f"offset={PART_START * 512}", "-d", str(tree),
         str(path), f"{blocks_k}k"],
        check=True,
    )  # fmt: skip


def debian_pygrub() -> tuple[list[str], dict[str, str]] | None:
    cache = Path(os.environ.get("XEN_ORACLE_CACHE", Path.home() / ".cache" / "xen-oracles"))
    scripts = sorted(cache.glob("root/usr/lib/xen-*/bin/pygrub"))
    libs = sorted(cache.glob("root/usr/lib/xen-*/lib/*/libxenfsimage.so.*"))
    if not scripts or not libs or not Path("/usr/bin/python3").exists():
        return None
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": str(libs[0].parent),
        "XEN_FSIMAGE_FSDIR": str(libs[0].parent / "xenfsimage"),
    }
    return ["/usr/bin/python3", str(scripts[0])], env


def timed_process(argv: list[str], env: dict[str, str], out: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [*argv, "-q", "--output-format=simple0", f"--output-directory={out}"],
        env=env,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{argv[-1]} failed: {result.stderr.decode()[-400:]}")
    for name in result.stdout.decode().split("\0"):
        if name.startswith(("kernel ", "ramdisk ")):
            Path(name.split(" ", 1)[1]).unlink()
    return seconds


def in_process(image: Path, out: Path) -> float:
    """What the domain engine does for bootloader = "pygrub"."""
    start = time.perf_counter()
    with opened(image) as disk:
        files = choose_boot(parse_options(["-q", str(image)]), disk, str(image)).extract(out)
    seconds = time.perf_counter() - start
    files.remove()
    return seconds


def create_to_ready(image: Path, boots: int, debian: str | None) -> dict[str, object]:
    kit = build_guest_kit()
    root = Path(tempfile.mkdtemp(prefix="xlb", dir="/tmp"))
    host = GuestHost(root, kit, probe_accel().accel)
    disk = f"disk = [ 'file:{image},xvda,r' ]"
    firmware_image = firmware_disk(root / "hvm.img", kit.kernel, kit.initrd, CMDLINE)
    hvm_disk = f"disk = [ 'file:{firmware_image},hda,w' ]"
    hvm_boot = 'type = "hvm"\nserial = "pty"\nvnc = 0'
    through_pygrub: list[float] = []
    direct: list[float] = []
    seabios: list[float] = []
    try:
        host.run(XENLITE, "start")
        for n in range(boots):
            for name, devices, boot, times in (
                (f"pygrub{n}", disk, 'bootloader = "pygrub"', through_pygrub),
                (f"direct{n}", disk, None, direct),
                (f"hvm{n}", hvm_disk, hvm_boot, seabios),
            ):
                start = time.perf_counter()
                host.create(name, devices, boot=boot)
                times.append(time.perf_counter() - start)
                host.run(XL, "destroy", name)
        made = create_image_times(host, boots)
        made_debian = create_image_times(host, 1, debian) if debian else None
    finally:
        tear_down(root, host.env)
    return {
        "create_image": made,
        "create_image_debian": made_debian,
        "hvm_seabios_seconds": [round(s, 3) for s in seabios],
        "hvm_seabios_median_seconds": round(statistics.median(seabios), 3),
        "hvm_ratio": round(statistics.median(seabios) / statistics.median(direct), 3),
        "boots": boots,
        "pygrub_seconds": [round(s, 3) for s in through_pygrub],
        "direct_kernel_seconds": [round(s, 3) for s in direct],
        "pygrub_median_seconds": round(statistics.median(through_pygrub), 3),
        "direct_kernel_median_seconds": round(statistics.median(direct), 3),
        "ratio": round(statistics.median(through_pygrub) / statistics.median(direct), 3),
    }


DEBOOTSTRAP_CACHE = user_cache_dir() / "debootstrap"


def create_image_times(host: GuestHost, runs: int, dist: str = "busybox") -> dict[str, object]:
    images = host.root / "images"
    extra = [] if dist == "busybox" else ["--size", "2G", "--cachedir", DEBOOTSTRAP_CACHE]
    # Each dist its own names: a console log outlives its domain and holds its ready line.
    names = [f"{dist}{n}" for n in range(runs)]
    seconds: list[float] = []
    for n in range(runs):
        start = time.perf_counter()
        host.run(XENLITE, "create-image", "--hostname", names[n], "--dir", images, "--pygrub",
                 "--ip", "10.99.0.2", "--memory", "128M" if dist == "busybox" else "384M",
                 "--dist", dist, *extra)  # fmt: skip
        seconds.append(time.perf_counter() - start)
    config = host.root / f"etc/xen/{names[0]}.cfg"
    start = time.perf_counter()
    host.run(XL, "create", "-q", config, "vif=[]")
    log = host.root / f"var/log/xenlite/console/guest-{names[0]}.log"
    deadline = time.monotonic() + 300
    while not (log.exists() and b"xenlite-guest: ready" in log.read_bytes()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{names[0]}: no ready marker")
        time.sleep(0.01)
    boot = time.perf_counter() - start
    host.run(XL, "destroy", names[0])
    for name in names:
        host.run(XENLITE, "delete-image", name)
    root = "4G sparse" if dist == "busybox" else "2G sparse"
    return {
        "runs": runs,
        "seconds": [round(s, 3) for s in seconds],
        "median_seconds": round(statistics.median(seconds), 3),
        "image": {"root": root, "swap": "128M", "dist": dist, "pygrub": True},
        "boot_to_ready_seconds": round(boot, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--debian", metavar="SUITE", choices=("bookworm", "trixie"),
                        help="also time create-image --dist SUITE (debootstrap; the mirror "
                        "must be reachable) and its boot")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xenlite-bench-boot.") as scratch_name:
        scratch = Path(scratch_name)
        image = scratch / "disk.img"
        make_image(image, scratch, args.size_mib)
        out = scratch / "out"
        out.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        theirs = debian_pygrub()
        if theirs is not None:
            theirs = (theirs[0], {**theirs[1], **env})
        ours_cmd = [str(XENLITE), "pygrub", str(image)]
        timed_process(ours_cmd, env, out)
        if theirs is not None:
            timed_process([*theirs[0], str(image)], theirs[1], out)
        ours_s: list[float] = []
        theirs_s: list[float] = []
        inproc_s: list[float] = []
        for _ in range(args.runs):
            ours_s.append(timed_process(ours_cmd, env, out))
            if theirs is not None:
                theirs_s.append(timed_process([*theirs[0], str(image)], theirs[1], out))
            inproc_s.append(in_process(image, out))
        compressed = scratch / "disk.qcow2"
        subprocess.run(
            ["qemu-img", "convert", "-c", "-O", "qcow2", str(image), str(compressed)], check=True
        )
        qcow2_s = [
            timed_process([str(XENLITE), "pygrub", str(compressed)], env, out)
            for _ in range(args.runs)
        ]
        cli = statistics.median(ours_s)
        inproc = statistics.median(inproc_s)
        debian = statistics.median(theirs_s) if theirs_s else None
        ratio = round(inproc / debian, 3) if debian else None
        result = {
            "benchmark": "boot",
            "image": {"size_mib": args.size_mib, "table": "msdos", "filesystem": "ext4"},
            "bootloader": {
                "runs": args.runs,
                "debian_pygrub_seconds": [round(s, 4) for s in theirs_s] or None,
                "xenlite_in_process_seconds": [round(s, 4) for s in inproc_s],
                "xenlite_cli_seconds": [round(s, 4) for s in ours_s],
                "debian_pygrub_median_seconds": round(debian, 4) if debian else None,
                "xenlite_in_process_median_seconds": round(inproc, 4),
                "xenlite_cli_median_seconds": round(cli, 4),
                "ratio": ratio,
                "target": f"<= {TARGET_RATIO}",
                "met": None if ratio is None else ratio <= TARGET_RATIO,
                "cli_ratio": round(cli / debian, 3) if debian else None,
            },
            "qcow2": {"xenlite_cli_median_seconds": round(statistics.median(qcow2_s), 4)},
        }
        ready = create_to_ready(image, args.boots, args.debian)
        result["create_image"] = ready.pop("create_image")
        if args.debian:
            result["create_image_debian"] = ready.pop("create_image_debian")
        else:
            ready.pop("create_image_debian")
        result["create_to_ready"] = ready
        print(json.dumps(result))
        left = list(out.iterdir())
        if left:
            print(f"left behind: {left}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
