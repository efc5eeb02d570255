"""The newc writer against Debian's real cpio (cpio -t / cpio -i) and the format's rules."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlite.base.proc import run_sync
from xenlite.guestkit.cpio import CpioArchive, EntryKind

CPIO = shutil.which("cpio")
needs_cpio = pytest.mark.skipif(
    CPIO is None, reason="GNU cpio is not installed (apt-get install cpio)"
)


def sample() -> CpioArchive:
    archive = CpioArchive()
    archive.add_file("init", b"#!/bin/sh\necho hi\n", 0o755)
    archive.add_file("etc/motd", b"hello\n")
    archive.add_file("etc/empty", b"")
    archive.add_file("lib/odd", b"abc", 0o600)  # length not a multiple of 4: needs padding
    archive.add_symlink("bin/sh", "busybox")
    archive.add_symlink("sbin/acpid", "/bin/busybox")
    archive.add_directory("tmp", 0o1777)
    archive.add_directory("root", 0o700)
    archive.add_device("dev/console", EntryKind.CHAR_DEVICE, 5, 1)
    archive.add_device("dev/vda", EntryKind.BLOCK_DEVICE, 254, 0, 0o660)
    return archive


def cpio_list(data: bytes) -> list[str]:
    result = run_sync(["cpio", "-itv", "--quiet"], input=data, timeout=30)
    return result.stdout.decode().splitlines()


@needs_cpio
def test_cpio_lists_every_member_with_type_mode_and_target() -> None:
    lines = cpio_list(sample().to_bytes())
    by_name = {line.split()[-1] if "->" not in line else line.split()[-3]: line for line in lines}
    assert sorted(by_name) == sorted(
        ["bin", "bin/sh", "dev", "dev/console", "dev/vda", "etc", "etc/empty", "etc/motd",
         "init", "lib", "lib/odd", "root", "sbin", "sbin/acpid", "tmp"]
    )  # fmt: skip
    assert by_name["init"].startswith("-rwxr-xr-x")
    assert by_name["lib/odd"].startswith("-rw-------")
    assert by_name["tmp"].startswith("drwxrwxrwt")
    assert by_name["root"].startswith("drwx------")
    assert by_name["bin"].startswith("drwxr-xr-x")  # implicit parent
    assert by_name["bin/sh"].startswith("lrwxrwxrwx")
    assert by_name["bin/sh"].endswith("bin/sh -> busybox")
    assert by_name["sbin/acpid"].endswith("sbin/acpid -> /bin/busybox")
    console = by_name["dev/console"].split()
    assert console[0] == "crw-------"
    assert console[4:6] == ["5,", "1"]
    vda = by_name["dev/vda"].split()
    assert vda[0] == "brw-rw----"
    assert vda[4:6] == ["254,", "0"]
    for line in lines:
        fields = line.split()
        assert fields[2:4] == ["root", "root"]
        assert "1970" in line  # the fixed mtime


@needs_cpio
def test_cpio_extracts_contents_modes_and_symlinks(tmp_path: Path) -> None:
    archive = sample()
    if os.geteuid() != 0:
        # Without CAP_MKNOD cpio -i cannot create the nodes; -t covers them above.
        archive = CpioArchive()
        for entry in sample().entries():
            if entry.kind is EntryKind.FILE:
                archive.add_file(entry.path, entry.data, entry.mode)
            elif entry.kind is EntryKind.SYMLINK:
                archive.add_symlink(entry.path, entry.data.decode())
            elif entry.kind is EntryKind.DIRECTORY:
                archive.add_directory(entry.path, entry.mode)
    run_sync(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        input=archive.to_bytes(),
        timeout=30,
        cwd=tmp_path,
    )
    assert (tmp_path / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((tmp_path / "init").stat().st_mode) == 0o755
    assert (tmp_path / "etc/motd").read_bytes() == b"hello\n"
    assert (tmp_path / "etc/empty").read_bytes() == b""
    assert (tmp_path / "lib/odd").read_bytes() == b"abc"
    assert stat.S_IMODE((tmp_path / "lib/odd").stat().st_mode) == 0o600
    assert os.readlink(tmp_path / "bin/sh") == "busybox"
    assert os.readlink(tmp_path / "sbin/acpid") == "/bin/busybox"
    assert stat.S_IMODE((tmp_path / "tmp").stat().st_mode) == 0o1777
    if os.geteuid() == 0:
        console = (tmp_path / "dev/console").lstat()
        assert stat.S_ISCHR(console.st_mode)
        assert (os.major(console.st_rdev), os.minor(console.st_rdev)) == (5, 1)
        vda = (tmp_path / "dev/vda").lstat()
        assert stat.S_ISBLK(vda.st_mode)
        assert (os.major(vda.st_rdev), os.minor(vda.st_rdev)) == (254, 0)


def test_output_is_deterministic_whatever_the_insertion_order() -> None:
    forward = CpioArchive()
    forward.add_file("a/b", b"1")
    forward.add_file("c", b"22")
    forward.add_symlink("a/d", "b")
    backward = CpioArchive()
    backward.add_symlink("a/d", "b")
    backward.add_file("c", b"22")
    backward.add_file("a/b", b"1")
    assert forward.to_bytes() == backward.to_bytes()
    assert forward.to_gzip() == backward.to_gzip()
    assert gzip.decompress(forward.to_gzip()) == forward.to_bytes()


def test_members_are_aligned_and_end_with_the_trailer() -> None:
    data = sample().to_bytes()
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    offset = 0
    names = []
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        ino, nlink, filesize, namesize = fields[0], fields[4], fields[6], fields[11]
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        names.append(name)
        if name == "TRAILER!!!":
            break
        assert nlink == (2 if stat.S_ISDIR(fields[1]) else 1)  # no hard links
        assert ino == len(names)  # distinct inode numbers
        data_start = offset + 110 + namesize
        data_start += -data_start % 4
        assert data_start % 4 == 0
        offset = data_start + filesize + (-filesize % 4)
    assert offset + 110 + len("TRAILER!!!") + 1 <= len(data)
    assert names.index("bin") < names.index("bin/sh")


def test_parents_precede_children_even_with_lookalike_names() -> None:
    archive = CpioArchive()
    archive.add_file("a-b", b"")
    archive.add_file("a/b", b"")
    archive.add_file("a.c", b"")
    paths = [e.path for e in archive.entries()]
    assert paths.index("a") < paths.index("a/b")


@pytest.mark.parametrize(
    ("path", "message"),
    [("", "archive root"), ("/", "archive root"), ("a/../b", "'..'"), ("a\0b", "NUL")],
)
def test_bad_names_are_refused(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CpioArchive().add_file(path, b"")


def test_leading_slash_is_dropped() -> None:
    archive = CpioArchive()
    archive.add_file("/etc/x", b"")
    assert "etc/x" in archive
    assert [e.path for e in archive.entries()] == ["etc", "etc/x"]


def test_conflicts_and_bad_modes_are_refused() -> None:
    archive = CpioArchive()
    archive.add_file("f", b"")
    with pytest.raises(ValueError, match="added twice"):
        archive.add_file("f", b"")
    with pytest.raises(ValueError, match="parent 'f'"):
        archive.add_file("f/g", b"")
    with pytest.raises(ValueError, match="already exists"):
        archive.add_directory("f")
    with pytest.raises(ValueError, match="permission bits"):
        archive.add_file("g", b"", 0o100644)
    with pytest.raises(ValueError, match="char or block"):
        archive.add_device("d", EntryKind.FILE, 1, 1)
    with pytest.raises(ValueError, match="non-empty target"):
        archive.add_symlink("l", "")


_component = st.text(alphabet="abcdefghij-_.0123456789", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)


@needs_cpio
@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.lists(_component, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=40),
        min_size=1,
        max_size=8,
    )
)
def test_cpio_round_trips_random_trees(files: dict[str, bytes]) -> None:
    archive = CpioArchive()
    added: dict[str, bytes] = {}
    for path, data in files.items():
        try:
            archive.add_file(path, data)
        except ValueError:
            continue  # a path that is also another file's directory
        added[path] = data
    result = run_sync(["cpio", "-it", "--quiet"], input=archive.to_bytes(), timeout=30)
    listed = set(result.stdout.decode().splitlines())
    assert set(added) <= listed
    assert listed == {e.path for e in archive.entries()}
