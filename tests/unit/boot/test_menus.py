"""Boot menus read as Debian's pygrub reads them: the corpus of real GRUB legacy, GRUB 2
and extlinux configs (../shared/corpus/grub) with pygrub's recorded answers, and the valid
configs pygrub cannot read, where xenlite does better."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenlite.boot.extlinux import parse_extlinux
from xenlite.boot.grubmenu import grub_words, parse_grub2, parse_grub_legacy
from xenlite.boot.menu import BootMenu, BootMenuError, boot_choice, root_label, split_command

PARSERS = {"grub": parse_grub_legacy, "grub2": parse_grub2, "extlinux": parse_extlinux}

# Where pygrub raises on a real file: what xenlite boots instead, or the start of its error.
BETTER_THAN_PYGRUB = {
    # pygrub: "syntax error: closing brace without menuentry" (its menuentries sit in
    # functions; the top level hands over to another file).
    "0xAF_multiboot__boot_grub_grub.cfg": "no boot entries (it hands over to source",
    # pygrub: int() of 'uuid/...' from set root='mduuid/...' (an md RAID root).
    "ClementCastel_ubuntu-2204__boot_grub_grub.cfg": "/vmlinuz-5.15.0-100-generic",
    # pygrub: TypeError; the default entry only runs configfile.
    "DavidVogelxyz_multiboot-usb-device__boot_grub_grub.cfg": "boot entry 0 'Arch Linux >' "
    "loads no Linux kernel (it runs configfile",
    # pygrub: a function's nested '}' ends its skipping early.
    "DavidVogelxyz_multiboot-usb-device__boot_grub_inc-ubuntu.cfg.grub.cfg": "no boot entries",
    # pygrub: menuentry 'x'{ without a blank before the brace.
    "EastonLee_Troubleshooting-Installing-OS__boot_grub_grub.cfg": "/grub/grub.exe",
    # pygrub: IndexError; only search + configfile.
    "jwwilson-anyday_digitalocean__boot_efi_EFI_BOOT_grub.cfg": "no boot entries (it hands "
    "over to configfile $prefix/grub.cfg",
    # pygrub knows KERNEL, not LINUX: TypeError.
    "kovalev0_alt-visionfive2__boot_extlinux_extlinux.conf": "/vmlinuz",
    "thefossguy_archlinux-visionfive2__boot_extlinux_extlinux.conf": "/vmlinuz-linux-starfive-"
    "visionfive2",
    "utkarsh2102_dotfiles__boot_syslinux_syslinux.cfg.extlinux.conf": "../vmlinuz-linux",
    "yiyong-chen_micro-gentoo__boot_extlinux_extlinux.conf": "/gentoo/vmlinuz.xz",
    # pygrub: ValueError; chain-loading entries only.
    "magsilva_GrubRecoveryDisk__boot_grub_menu.lst": "boot entry 0 'Floppy' loads no Linux "
    "kernel (it runs chainloader +1)",
}


def _cases(shared: Path) -> list[tuple[dict[str, object], str]]:
    cases = []
    for answer in sorted((shared / "corpus" / "expected" / "grub").glob("*.json")):
        expected = json.loads(answer.read_text(encoding="utf-8"))
        config = shared / "corpus" / "grub" / str(expected["file"])
        cases.append((expected, config.read_text(encoding="utf-8", errors="surrogateescape")))
    return cases


def _menu(expected: dict[str, object], text: str) -> BootMenu:
    return PARSERS[str(expected["format"])](text, str(expected["config_path"]))


def test_corpus_agrees_with_pygrub_wherever_pygrub_boots(shared_dir: Path) -> None:
    cases = [(e, t) for e, t in _cases(shared_dir) if "kernel" in e]
    assert len(cases) == 29
    for expected, text in cases:
        menu = _menu(expected, text)
        choice = boot_choice(menu)
        got = (choice.kernel, choice.ramdisk, choice.args, choice.index)
        want = (expected["kernel"], expected["ramdisk"], expected["args"], expected["entry_index"])
        assert got == want, expected["file"]
        entries = expected["entries"]
        assert isinstance(entries, list)
        assert [(e.title, e.kernel, e.initrd, e.args, e.root) for e in menu.entries] == [
            (e["title"], e["kernel"], e["initrd"], e["args"], e["root"]) for e in entries
        ], expected["file"]


def test_corpus_files_pygrub_fails_on(shared_dir: Path) -> None:
    cases = [(e, t) for e, t in _cases(shared_dir) if "kernel" not in e]
    assert {str(e["file"]) for e, _ in cases} == set(BETTER_THAN_PYGRUB)
    for expected, text in cases:
        want = BETTER_THAN_PYGRUB[str(expected["file"])]
        result: str | BootMenuError
        try:
            result = boot_choice(_menu(expected, text)).kernel
        except BootMenuError as error:
            result = error
        if isinstance(result, BootMenuError):
            assert result.what.startswith(str(expected["config_path"]))
            assert result.fix
            result = result.cause
        assert result.startswith(want), (expected["file"], result)


# -- GRUB 2 defaults: where GRUB boots by name, xenlite boots what GRUB boots

GRUB2_MENU = """\
set default="${saved_entry}"
menuentry 'Debian' --class debian $menuentry_id_option 'gnulinux-simple-abc' {
    set root='hd0,msdos1'
    linux /vmlinuz-6.1 root=/dev/xvda1 ro
    initrd /intel-ucode.img /initrd.img-6.1
}
submenu 'Advanced options' $menuentry_id_option 'gnulinux-advanced-abc' {
    menuentry 'Debian, with Linux 6.1' --id 'gnulinux-6.1-advanced' {
        linux /vmlinuz-6.1 ro quiet
    }
    menuentry 'Debian, with Linux 5.10' --id 'gnulinux-5.10-advanced' {
        linux /vmlinuz-5.10 ro single
    }
}
menuentry 'Other'{
    linux16 /other
}
"""


@pytest.mark.parametrize(
    ("saved", "kernel", "args"),
    [
        ("", "/vmlinuz-6.1", "root=/dev/xvda1 ro"),
        ("2", "/vmlinuz-5.10", "ro single"),
        ("Other", "/other", ""),
        ("gnulinux-5.10-advanced", "/vmlinuz-5.10", "ro single"),
        ("1>1", "/vmlinuz-5.10", "ro single"),
        ("gnulinux-advanced-abc>gnulinux-6.1-advanced", "/vmlinuz-6.1", "ro quiet"),
        ("Advanced options>Debian, with Linux 5.10", "/vmlinuz-5.10", "ro single"),
        ("no such entry", "/vmlinuz-6.1", "root=/dev/xvda1 ro"),
    ],
)
def test_grub2_default_from_grubenv(saved: str, kernel: str, args: str) -> None:
    menu = parse_grub2(GRUB2_MENU, "/boot/grub/grub.cfg", env={"saved_entry": saved})
    choice = boot_choice(menu)
    assert (choice.kernel, choice.args) == (kernel, args)


def test_grub2_entries_places_and_initrds() -> None:
    menu = parse_grub2(GRUB2_MENU, "/boot/grub/grub.cfg")
    assert [e.place for e in menu.entries] == [(0,), (1, 0), (1, 1), (2,)]
    assert menu.entries[0].root == "d0p1"
    assert menu.entries[0].entry_id == "gnulinux-simple-abc"
    # Both initrds: they are concatenated into one ramdisk when extracted.
    assert menu.entries[0].initrd == "/intel-ucode.img /initrd.img-6.1"


def test_entry_option_by_index_or_title_as_pygrub() -> None:
    menu = parse_grub2(GRUB2_MENU, "/boot/grub/grub.cfg")
    assert boot_choice(menu, "3").kernel == "/other"
    assert boot_choice(menu, "Debian, with Linux 5.10").kernel == "/vmlinuz-5.10"
    # pygrub ignores an --entry that names nothing and boots the default.
    assert boot_choice(menu, "9").kernel == "/vmlinuz-6.1"
    assert boot_choice(menu, "nothing").kernel == "/vmlinuz-6.1"
    assert boot_choice(menu, None, "console=hvc0").args == "root=/dev/xvda1 ro console=hvc0"


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("menuentry 'a' {\n linux /a\n", "the file ends inside menuentry 'a'"),
        ("}\n", "'}' closes no menuentry, submenu or function"),
        ("menuentry 'a' {\nmenuentry 'b' {\n}\n}\n", "menuentry inside menuentry 'a'"),
    ],
)
def test_grub2_structure_errors_name_the_line(text: str, cause: str) -> None:
    with pytest.raises(BootMenuError) as error:
        boot_choice(parse_grub2(text, "/boot/grub/grub.cfg"))
    assert error.value.cause == cause
    assert error.value.what.startswith("/boot/grub/grub.cfg")


def test_grub_legacy_device_prefix_and_defaults() -> None:
    text = (
        "default=1\ntimeout 5\n"
        "title A\n root (hd0,0)\n kernel (hd0,0)/boot/a ro\n initrd /boot/a.img\n"
        "title B\n rootnoverify (hd1)\n kernel /boot/b\n"
    )
    menu = parse_grub_legacy(text, "/boot/grub/menu.lst")
    assert [(e.root, e.kernel, e.args) for e in menu.entries] == [
        ("d0p0", "/boot/a", "ro"),
        ("d1", "/boot/b", None),
    ]
    choice = boot_choice(menu)
    assert (choice.index, choice.kernel, choice.ramdisk, choice.args) == (1, "/boot/b", None, "")


def test_extlinux_default_label_mboot_and_linux_keyword() -> None:
    text = (
        "DEFAULT xen\n"
        "LABEL plain\n KERNEL /vmlinuz\n APPEND initrd=/initrd.img root=/dev/xvda1\n"
        "LABEL xen\n KERNEL mboot.c32\n APPEND /xen.gz dom0_mem=1G --- /vmlinuz ro --- /initrd\n"
        "LABEL modern\n LINUX /vmlinuz-6\n INITRD /initrd-6\n APPEND ro\n"
        "LABEL hdt\n COM32 hdt.c32\n KERNEL hdt.c32\n"
    )
    menu = parse_extlinux(text, "/boot/extlinux/extlinux.conf")
    assert [(e.title, e.kernel, e.initrd, e.args) for e in menu.entries] == [
        ("plain", "/vmlinuz", "/initrd.img", "root=/dev/xvda1"),
        ("xen", "/vmlinuz", "/initrd", "ro"),
        ("modern", "/vmlinuz-6", "/initrd-6", "ro"),
        ("hdt", "hdt.c32", None, None),
    ]
    assert boot_choice(menu).kernel == "/vmlinuz"
    with pytest.raises(BootMenuError, match=r"COM32 module hdt\.c32"):
        boot_choice(menu, "hdt")


@pytest.mark.parametrize(
    ("line", "split"),
    [
        ("default=0", ("default", "0")),
        ("default 0", ("default", "0")),
        ("kernel /vmlinuz a=b", ("kernel", "/vmlinuz a=b")),
        ("timeout\t5", ("timeout", "5")),
    ],
)
def test_split_command_as_pygrub(line: str, split: tuple[str, str]) -> None:
    assert split_command(line) == split


def test_grub_words_quoting() -> None:
    assert grub_words("""'a b' "c \\"d\\"" e\\ f {""") == ["a b", 'c "d"', "e f", "{"]


@pytest.mark.parametrize(
    ("device", "label"),
    [
        ("(hd0,0)", "d0p0"),
        ("hd0,msdos1", "d0p1"),
        ("hd1,gpt2", "d1p2"),
        ("(hd0)", "d0"),
        ("/dev/xvdb", "d1"),
        ("mduuid/edf04db8", "mduuid/edf04db8"),
    ],
)
def test_root_label(device: str, label: str) -> None:
    assert root_label(device) == label


def test_grub2_variables_in_kernel_and_initrd_paths() -> None:
    text = (
        'set kdir="/boot/kernels"\n'
        "menuentry 'k' {\n"
        "    set version=6.1\n"
        "    linux ${kdir}/vmlinuz-$version root=/dev/xvda1 $vt_handoff\n"
        "    initrd ${kdir}/initrd-${version} ${unset}/x\n"
        "}\n"
    )
    entry = parse_grub2(text, "/boot/grub/grub.cfg").entries[0]
    assert entry.kernel == "/boot/kernels/vmlinuz-6.1"
    assert entry.initrd == "/boot/kernels/initrd-6.1 /x"
    # The arguments as written, as pygrub passes them.
    assert entry.args == "root=/dev/xvda1 $vt_handoff"
