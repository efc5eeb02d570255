"""xenlite pygrub on real disk images: the corpus end to end as Debian's pygrub read it (ext2
images, recorded in ../shared/corpus/expected/grub), partition tables, every filesystem,
qcow2, the real pygrub side by side where its oracle is installed, and pygrub's options and
output formats byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootimages import Part, ext_fs, fat_fs, iso_fs, need, partitioned, qcow2, tree
from xenlite.base.errors import XenliteError
from xenlite.boot.pygrub import UsageError, format_sxp, main

STD_PATH = {
    "grub2": "/boot/grub/grub.cfg",
    "grub": "/boot/grub/menu.lst",
    "extlinux": "/boot/extlinux/extlinux.conf",
}
KERNEL = b"\x7fKERNEL" * 40000  # big enough for indirect blocks on ext2
INITRD = b"INITRD" * 5000
GRUB2 = """\
set default="1"
set timeout=5
menuentry 'Debian rescue' {
    linux /boot/vmlinuz-6.1 single
}
menuentry 'Debian GNU/Linux' --id debian {
    set root='hd0,msdos2'
    linux /vmlinuz root=/dev/xvda2 ro quiet
    initrd /boot/initrd.img-6.1
}
"""
FILES = {
    "/boot/grub/grub.cfg": GRUB2,
    "/boot/vmlinuz-6.1": KERNEL,
    "/boot/initrd.img-6.1": INITRD,
}
LINKS = {"/vmlinuz": "boot/vmlinuz-6.1"}


def _simple0(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split("\0"):
        if part:
            key, _, value = part.partition(" ")
            fields[key] = value
    return fields


def _pygrub(capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capfd.readouterr().out


# -- the corpus, end to end, as Debian's pygrub read it from ext2 images


def _corpus_image(tmp: Path, expected: dict[str, object], config: bytes) -> Path:
    files: dict[str, bytes | str] = {STD_PATH[str(expected["format"])]: config}
    for what in ("kernel", "ramdisk"):
        path = expected.get(what)
        if (
            isinstance(path, str)
            and path
            and path.lstrip("/") not in {p.lstrip("/") for p in files}
        ):
            files[path] = f"{what.upper()}:{path}"
    source = tree(tmp / "tree", files)
    return ext_fs(tmp / "disk.img", source, kind="ext2", size_mib=4)


def test_corpus_images_as_debian_pygrub_read_them(
    shared_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    need("mke2fs")
    agreed = failed = 0
    for answer in sorted((shared_dir / "corpus" / "expected" / "grub").glob("*.json")):
        expected = json.loads(answer.read_text(encoding="utf-8"))
        config = (shared_dir / "corpus" / "grub" / expected["file"]).read_bytes()
        work = tmp_path / answer.stem
        image = _corpus_image(work, expected, config)
        out = work / "out"
        out.mkdir()
        argv = ["-q", "--output-format=simple0", f"--output-directory={out}", str(image)]
        if expected["image"]["rc"] == 0:
            fields = _simple0(_pygrub(capfd, *argv))
            kernel = Path(fields["kernel"]).read_text()
            ramdisk = Path(fields["ramdisk"]).read_text() if "ramdisk" in fields else None
            got = (kernel, ramdisk, fields.get("args"))
            want_ramdisk = expected["image"]["ramdisk"]
            want = (
                f"KERNEL:{expected['image']['kernel']}",
                f"RAMDISK:{want_ramdisk}" if want_ramdisk else None,
                expected["image"]["args"],
            )
            assert got == want, expected["file"]
            agreed += 1
        else:
            # pygrub found no kernel; xenlite either finds none or finds one the image (made
            # from pygrub's answer) does not hold: a clear error, and nothing left behind.
            with pytest.raises(XenliteError) as error:
                main(argv)
            assert str(image) in str(error.value)
            assert list(out.iterdir()) == []
            failed += 1
    assert (agreed, failed) == (29, 11)


# -- partition tables and filesystems


@pytest.fixture
def ext4_boot(tmp_path: Path) -> Path:
    return ext_fs(tmp_path / "boot.ext4", tree(tmp_path / "root", FILES, LINKS))


def _check_boot(capfd: pytest.CaptureFixture[str], image: Path, out: Path) -> str:
    """Boot ``image``'s default entry (the kernel, initrd and args in FILES); what pygrub said
    on stderr."""
    out.mkdir(exist_ok=True)
    assert main(["-q", "--output-format=simple0", f"--output-directory={out}", str(image)]) == 0
    said = capfd.readouterr()
    fields = _simple0(said.out)
    assert Path(fields["kernel"]).read_bytes() == KERNEL
    assert Path(fields["ramdisk"]).read_bytes() == INITRD
    assert fields["args"] == "root=/dev/xvda2 ro quiet"
    return said.err


@pytest.mark.parametrize("label", ["dos", "gpt"])
def test_second_partition_after_an_empty_fat_one(
    tmp_path: Path, ext4_boot: Path, capfd: pytest.CaptureFixture[str], label: str
) -> None:
    efi = fat_fs(tmp_path / "efi.fat", tree(tmp_path / "efi", {"/EFI/readme": "x"}), size_mib=8)
    kind = {"dos": ("b", "83"), "gpt": ("U", "L")}[label]
    image = partitioned(
        tmp_path / "disk.img",
        [Part(kind[0], 8, efi), Part(kind[1], 40, ext4_boot)],
        label=label,
    )
    assert "partition 2" in _check_boot(capfd, image, tmp_path / "out")


def test_logical_partition_in_an_extended_one(
    tmp_path: Path, ext4_boot: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    need("sfdisk")
    image = tmp_path / "disk.img"
    with open(image, "wb") as disk:
        disk.truncate(48 << 20)
    script = "label: dos\nstart=2048, size=90112, type=5\nstart=4096, size=83968, type=83\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=script, text=True, check=True)
    with open(image, "r+b") as disk:
        disk.seek(4096 * 512)
        disk.write(ext4_boot.read_bytes())
    _check_boot(capfd, image, tmp_path / "out")


def test_fat_with_extlinux(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    files = {
        "/extlinux.conf": "DEFAULT linux\nLABEL linux\n  LINUX /vmlinuz\n  INITRD /initrd.img\n"
        "  APPEND root=/dev/xvda2 ro quiet\n",
        "/vmlinuz": KERNEL,
        "/initrd.img": INITRD,
    }
    fat = fat_fs(tmp_path / "boot.fat", tree(tmp_path / "root", files))
    image = partitioned(tmp_path / "disk.img", [Part("c", 34, fat)])
    _check_boot(capfd, image, tmp_path / "out")


def test_iso9660_with_isolinux(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    files = {
        "/boot/isolinux/isolinux.cfg": "default live\nlabel live\n  kernel /live/vmlinuz\n"
        "  append initrd=/live/initrd.img root=/dev/xvda2 ro quiet\n",
        "/live/vmlinuz": KERNEL,
        "/live/initrd.img": INITRD,
    }
    image = iso_fs(tmp_path / "cd.iso", tree(tmp_path / "root", files))
    _check_boot(capfd, image, tmp_path / "out")


def test_qcow2_compressed_through_qemu(
    tmp_path: Path, ext4_boot: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    raw = partitioned(tmp_path / "disk.img", [Part("83", 40, ext4_boot)])
    image = qcow2(tmp_path / "disk.qcow2", raw)
    _check_boot(capfd, image, tmp_path / "out")
    raw.unlink()
    # A qcow2 on a backing file: QEMU follows the chain.
    need("qemu-img")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2",
         str(tmp_path / "top.qcow2")],
        check=True,
    )  # fmt: skip
    _check_boot(capfd, tmp_path / "top.qcow2", tmp_path / "out2")


# -- Debian's pygrub side by side on the same partitioned images


def _real_pygrub(root: Path) -> tuple[list[str], dict[str, str]]:
    scripts = sorted(root.glob("usr/lib/xen-*/bin/pygrub"))
    libs = sorted(root.glob("usr/lib/xen-*/lib/*/libxenfsimage.so.*"))
    if not scripts or not libs or not Path("/usr/bin/python3").exists():
        pytest.skip(f"Debian's pygrub is not under {root}, or there is no /usr/bin/python3")
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": str(libs[0].parent),
        "XEN_FSIMAGE_FSDIR": str(libs[0].parent / "xenfsimage"),
        "LC_ALL": "C.UTF-8",
    }
    return ["/usr/bin/python3", str(scripts[0])], env


@pytest.mark.parametrize("label", ["dos", "gpt"])
def test_same_choice_as_debian_pygrub(
    tmp_path: Path,
    ext4_boot: Path,
    capfd: pytest.CaptureFixture[str],
    label: str,
    xen_oracle_root: Path,
) -> None:
    command, env = _real_pygrub(xen_oracle_root)
    kind = "83" if label == "dos" else "L"
    image = partitioned(tmp_path / "disk.img", [Part(kind, 40, ext4_boot)], label=label)
    for extra in ([], ["--entry=0"], ["--entry=Debian GNU/Linux", "--args=console=hvc0"]):
        theirs_dir, ours_dir = tmp_path / "theirs", tmp_path / "ours"
        for d in (theirs_dir, ours_dir):
            d.mkdir(exist_ok=True)
        argv = ["-q", "--output-format=simple0", *extra, str(image)]
        real = subprocess.run(
            [*command, *argv, f"--output-directory={theirs_dir}"], env=env, capture_output=True
        )
        assert real.returncode == 0, real.stderr
        theirs = _simple0(real.stdout.decode())
        ours = _simple0(_pygrub(capfd, *argv, f"--output-directory={ours_dir}"))
        assert ours.get("args") == theirs.get("args")
        assert ours.keys() == theirs.keys()
        for key in ("kernel", "ramdisk") if "ramdisk" in ours else ("kernel",):
            assert Path(ours[key]).read_bytes() == Path(theirs[key]).read_bytes()
            Path(ours[key]).unlink()
            Path(theirs[key]).unlink()


# -- options and output formats


@pytest.fixture
def disk(tmp_path: Path, ext4_boot: Path) -> Path:
    return partitioned(tmp_path / "disk.img", [Part("83", 40, ext4_boot)])


def test_sxp_simple_and_list_formats(
    tmp_path: Path, disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sxp = _pygrub(capfd, "-q", f"--output-directory={out}", str(disk))
    kernel, ramdisk = sorted(out.glob("boot_kernel.*")), sorted(out.glob("boot_ramdisk.*"))
    assert len(kernel) == len(ramdisk) == 1
    assert sxp == format_sxp(str(kernel[0]), str(ramdisk[0]), "root=/dev/xvda2 ro quiet")
    assert sxp == (
        f"linux (kernel '{kernel[0]}')(ramdisk '{ramdisk[0]}')(args 'root=/dev/xvda2 ro quiet')"
    )
    simple = _pygrub(capfd, "-q", "-n", "--output-format=simple", "--entry=0", str(disk))
    assert simple == "kernel /boot/vmlinuz-6.1\nargs single\n\n"
    listing = _pygrub(capfd, "-l", str(disk))
    assert listing == (
        "title: Debian rescue\n  root: None\n  kernel: /boot/vmlinuz-6.1\n  args: single\n"
        "  initrd: None\n"
        "title: Debian GNU/Linux\n  root: d0p2\n  kernel: /vmlinuz\n"
        "  args: root=/dev/xvda2 ro quiet\n  initrd: /boot/initrd.img-6.1\n"
    )


def test_kernel_ramdisk_args_output_and_offset(
    tmp_path: Path, disk: Path, ext4_boot: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = tmp_path / "result"
    out = tmp_path / "out"
    out.mkdir()
    _pygrub(
        capfd, "-q", "--kernel=/boot/vmlinuz-6.1", "--ramdisk=/boot/initrd.img-6.1",
        "--args=console=hvc0", f"--output={result}", "--output-format=simple",
        f"--output-directory={out}", str(disk),
    )  # fmt: skip
    lines = result.read_text().split("\n")
    assert lines[2:] == ["args console=hvc0", "", ""]
    assert Path(lines[0].removeprefix("kernel ")).read_bytes() == KERNEL
    # --offset: the filesystem at that byte offset, whatever the partition table says.
    text = _pygrub(capfd, "-q", "-n", "--offset=1048576", "--args=x=1", str(disk))
    assert text.endswith("(args 'root=/dev/xvda2 ro quiet x=1')")


def test_isconfig(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "grub.cfg"
    config.write_text(GRUB2)
    assert _pygrub(capfd, "--isconfig", "-q", str(config)) == (
        "  kernel: /vmlinuz\n  initrd: /boot/initrd.img-6.1\n  args: root=/dev/xvda2 ro quiet\n"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--output-format=xml", "x"], "unknown output format xml"),
        (["--output-directory=/no/such/dir", "x"], "/no/such/dir is not an existing directory"),
        (["--runas=1000", "x"], "--runas is not supported"),
        (["-q"], ""),
    ],
)
def test_usage_errors(argv: list[str], said: str) -> None:
    with pytest.raises(UsageError) as error:
        main(argv)
    assert str(error.value).startswith(said)


def test_bad_images_say_what_and_leave_nothing(tmp_path: Path, disk: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(4 << 20))
    cases = {
        blank: "the whole disk: no ext2/3/4, FAT or ISO 9660 filesystem there",
        ext_fs(tmp_path / "plain.ext4", tree(tmp_path / "empty", {"/etc/x": "y"})): (
            "ext2/3/4, no boot config"
        ),
    }
    for image, cause in cases.items():
        with pytest.raises(XenliteError) as error:
            main(["-q", f"--output-directory={out}", str(image)])
        assert error.value.what == str(image)
        assert cause in error.value.cause
    with pytest.raises(XenliteError) as error:
        main(["-q", "--kernel=/boot/missing", f"--output-directory={out}", str(disk)])
    assert "/boot/missing" in error.value.what
    assert error.value.cause == "no such file"
    assert list(out.iterdir()) == []


def test_the_cli_verb_and_its_exit_codes(tmp_path: Path, disk: Path) -> None:
    xenlite = [str(Path(sys.executable).parent / "xenlite")]
    ok = subprocess.run([*xenlite, "pygrub", "-q", "-n", str(disk)], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(b"linux (kernel '/vmlinuz')(ramdisk '/boot/initrd.img-6.1')")
    interactive = subprocess.run(
        [*xenlite, "pygrub", str(disk)], capture_output=True, stdin=subprocess.DEVNULL
    )
    assert interactive.returncode == 1
    assert b"the interactive menu needs a terminal" in interactive.stderr
    usage = subprocess.run([*xenlite, "pygrub", "--bogus"], capture_output=True)
    assert usage.returncode == 1
    assert b"Usage: xenlite pygrub" in usage.stderr


def test_a_format_qemu_cannot_open_is_named_with_qemus_words(tmp_path: Path) -> None:
    from xenlite.boot.disk import open_disk

    need("qemu-img")
    raw = tmp_path / "plain.img"
    raw.write_bytes(bytes(1 << 20))
    with pytest.raises(XenliteError) as error:
        open_disk(raw, "qcow2")
    assert error.value.what == str(raw)
    assert "Image is not in qcow2 format" in error.value.cause


def test_the_interactive_menu_on_a_terminal(disk: Path) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        xenlite = str(Path(sys.executable).parent / "xenlite")
        proc = subprocess.Popen(
            [xenlite, "pygrub", "-n", str(disk)],
            stdin=slave,
            stderr=slave,
            stdout=subprocess.PIPE,
        )
        os.close(slave)
        slave = -1
        menu = b""
        while b"Boot which entry [1] (booting it in 5 s)? " not in menu:
            menu += os.read(master, 4096)
        assert b"   0  Debian rescue" in menu
        assert b"*  1  Debian GNU/Linux" in menu
        os.write(master, b"0\n")
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert out == b"linux (kernel '/boot/vmlinuz-6.1')(args 'single')"
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
