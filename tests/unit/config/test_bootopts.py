"""The Xen command line (xen-command-line.pandoc) and GRUB_CMDLINE_XEN in grub defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.hostconf.bootopts import (
    Dom0Mem,
    LogLevel,
    LogLevels,
    MemSize,
    Scheduler,
    SerialPort,
    VcpuRange,
    XenBootOptions,
    dom0_pinned_cpus,
    format_size,
    parse_size,
    parse_xen_cmdline,
    read_grub_default,
    resolve_dom0_mem,
    resolve_dom0_mem_max,
    resolve_dom0_vcpus,
)

GIB_KIB = 1024 * 1024
MIB = 2**20
GIB = 2**30


def test_defaults() -> None:
    opts = parse_xen_cmdline("")
    assert opts == XenBootOptions()
    assert opts.dom0_mem is None
    assert opts.dom0_mem_set is False
    assert opts.dom0_max_vcpus is None
    assert opts.dom0_vcpus_pin is False
    assert opts.sched is Scheduler.CREDIT2
    assert opts.sched_credit_tslice_ms == 30
    assert opts.sched_ratelimit_us == 1000
    assert opts.loglvl == LogLevels(LogLevel.INFO, LogLevel.INFO)
    assert opts.guest_loglvl == LogLevels(LogLevel.NONE, LogLevel.WARNING)
    assert opts.console_to_ring is False
    assert opts.noreboot is False
    assert opts.mem is None
    assert opts.com1 is None
    assert opts.com2 is None
    assert opts.console == ("com1", "vga")
    assert opts.conring_size == 16 * 1024
    assert opts.maxcpus is None
    assert opts.nosmp is False
    assert opts.given == ()
    assert opts.unrecognised == ()


# --- what administrators write (../shared/seeds) ----------------------------------------------


def test_seed_dom0_mem_512m() -> None:
    opts = parse_xen_cmdline("dom0_mem=512M")
    assert opts.dom0_mem == Dom0Mem(amount=MemSize(512 * MIB))
    assert opts.dom0_mem_set
    assert resolve_dom0_mem(opts, 16 * GIB_KIB) == 512 * 1024
    assert resolve_dom0_mem_max(opts, 16 * GIB_KIB) is None


def test_seed_dom0_mem_with_max() -> None:
    opts = parse_xen_cmdline("dom0_mem=512M,max:512M")
    assert opts.dom0_mem == Dom0Mem(amount=MemSize(512 * MIB), maximum=MemSize(512 * MIB))
    assert str(opts.dom0_mem) == "512M,max:512M"
    assert resolve_dom0_mem(opts, 8 * GIB_KIB) == 512 * 1024
    assert resolve_dom0_mem_max(opts, 8 * GIB_KIB) == 512 * 1024


def test_seed_vcpus_and_pin() -> None:
    opts = parse_xen_cmdline("dom0_max_vcpus=2 dom0_vcpus_pin")
    assert opts.dom0_max_vcpus == VcpuRange(2, 2)
    assert opts.dom0_vcpus_pin is True
    assert opts.given == ("dom0_max_vcpus", "dom0_vcpus_pin")
    assert resolve_dom0_vcpus(opts, 8) == 2


def test_seed_dom0_max_vcpus_1() -> None:
    opts = parse_xen_cmdline("dom0_max_vcpus=1 dom0_vcpus_pin")
    assert opts.dom0_max_vcpus == VcpuRange(1, 1)
    assert resolve_dom0_vcpus(opts, 4) == 1
    # dom0_vcpus_pin: vCPU i on the i-th host CPU, so dom0 keeps CPU 0 of 0-3.
    assert dom0_pinned_cpus(opts, [3, 1, 0, 2]) == (0,)
    assert dom0_pinned_cpus(parse_xen_cmdline("dom0_max_vcpus=1"), [0, 1]) == ()
    assert dom0_pinned_cpus(parse_xen_cmdline("dom0_vcpus_pin"), [2, 3]) == (2, 3)


def test_seed_bare_number_is_kib() -> None:
    # "kernel /boot/xen.gz dom0_mem=131072 noreboot" (GRUB legacy): the image is skipped.
    opts = parse_xen_cmdline("/boot/xen.gz dom0_mem=131072 noreboot")
    assert opts.dom0_mem == Dom0Mem(amount=MemSize(128 * MIB))
    assert opts.noreboot is True
    assert opts.unrecognised == ()
    assert resolve_dom0_mem(opts, 4 * GIB_KIB) == 131072


def test_seed_serial_console() -> None:
    opts = parse_xen_cmdline("com1=9600,8n1 console=com1,vga")
    assert opts.com1 == SerialPort(text="9600,8n1", baud=9600, data_bits=8, parity="n", stop_bits=1)
    assert opts.console == ("com1", "vga")


def test_seed_with_spaces_in_dom0_mem_is_an_error() -> None:
    # A blog's "dom0_mem=512M, max: 512M": Xen sees "dom0_mem=512M," then "max:".
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("rhgb quiet dom0_mem=512M, max: 512M", source="grub")
    err = info.value
    assert (err.path, err.line, err.col, err.key) == ("grub", 1, 25, "dom0_mem")
    assert "trailing comma" in err.cause
    assert err.fix is not None
    assert "dom0_mem=512M,max:512M" in err.fix


def test_seed_files_command_lines(shared_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    for seed in sorted((shared_dir / "seeds").glob("*.txt")):
        lines += re.findall(r"^GRUB_CMDLINE_XEN=.*$", seed.read_text(), re.MULTILINE)
    assert 'GRUB_CMDLINE_XEN="com1=9600,8n1 console=com1,vga"' in lines
    grub = tmp_path / "grub"
    grub.write_text("\n".join(lines) + "\n")
    # The last assignment wins, as in the shell.
    assert read_grub_default(grub) == "noreboot"
    grub.write_text(lines[0] + "\n")
    opts = parse_xen_cmdline(read_grub_default(grub))
    assert opts.com1 is not None
    assert opts.com1.baud == 9600
    assert opts.console == ("com1", "vga")


def test_seed_xen_dmesg_command_line(shared_dir: Path) -> None:
    text = (shared_dir / "seeds" / "004_45492c7cfd6602fd.txt").read_text()
    match = re.search(r"\(XEN\) Command line: (.*)", text)
    assert match is not None
    opts = parse_xen_cmdline(match.group(1))
    assert opts.noreboot is True
    assert opts.dom0_mem == Dom0Mem(amount=MemSize(GIB))
    assert resolve_dom0_mem(opts, 4 * GIB_KIB) == GIB_KIB


# --- dom0_mem ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512M", Dom0Mem(amount=MemSize(512 * MIB))),
        ("512m", Dom0Mem(amount=MemSize(512 * MIB))),
        ("1G", Dom0Mem(amount=MemSize(GIB))),
        ("1T", Dom0Mem(amount=MemSize(2**40))),
        ("4096K", Dom0Mem(amount=MemSize(4 * MIB))),
        ("8192B", Dom0Mem(amount=MemSize(8192))),
        ("0x100000", Dom0Mem(amount=MemSize(GIB))),
        ("-1G", Dom0Mem(amount=MemSize(GIB, minus=True))),
        ("25%", Dom0Mem(amount=MemSize(percent=25))),
        ("1G+25%", Dom0Mem(amount=MemSize(GIB, percent=25))),
        ("-10%", Dom0Mem(amount=MemSize(percent=10, minus=True))),
        (
            "-1G,min:512M,max:4G",
            Dom0Mem(
                amount=MemSize(GIB, minus=True),
                minimum=MemSize(512 * MIB),
                maximum=MemSize(4 * GIB),
            ),
        ),
        ("min:1G", Dom0Mem(minimum=MemSize(GIB))),
        ("max:2G", Dom0Mem(maximum=MemSize(2 * GIB))),
    ],
)
def test_dom0_mem_forms(value: str, expected: Dom0Mem) -> None:
    assert parse_xen_cmdline(f"dom0_mem={value}").dom0_mem == expected


def test_dom0_mem_repeated_accumulates() -> None:
    opts = parse_xen_cmdline("dom0_mem=512M dom0_mem=max:1G")
    assert opts.dom0_mem == Dom0Mem(amount=MemSize(512 * MIB), maximum=MemSize(GIB))


@pytest.mark.parametrize(
    ("cmdline", "host_kib", "expected_kib"),
    [
        # No dom0_mem: all but 1/16, the reserve capped at 128 MiB.
        ("", 16 * GIB_KIB, 16 * GIB_KIB - 128 * 1024),
        ("", 1 * GIB_KIB, GIB_KIB - GIB_KIB // 16),
        ("dom0_mem=0", 16 * GIB_KIB, 16 * GIB_KIB - 128 * 1024),
        ("dom0_mem=512M", 16 * GIB_KIB, 512 * 1024),
        ("dom0_mem=-1G", 16 * GIB_KIB, 15 * GIB_KIB),
        ("dom0_mem=-1G,min:512M,max:4G", 16 * GIB_KIB, 4 * GIB_KIB),
        # "All but 1G" of 1G is 0 pages, which Xen reads as "not given": the default.
        ("dom0_mem=-1G,min:512M,max:4G", 1 * GIB_KIB, GIB_KIB - GIB_KIB // 16),
        ("dom0_mem=256M,min:1G", 16 * GIB_KIB, GIB_KIB),
        # max wins over min.
        ("dom0_mem=min:2G,max:1G", 16 * GIB_KIB, GIB_KIB),
        ("dom0_mem=25%", 16 * GIB_KIB, 4 * GIB_KIB),
        ("dom0_mem=1G+25%", 16 * GIB_KIB, 5 * GIB_KIB),
        ("dom0_mem=-10%", 10 * GIB_KIB, 9 * GIB_KIB),
        # More than the host has: all of it.
        ("dom0_mem=64G", 16 * GIB_KIB, 16 * GIB_KIB),
        # "All but" more than the host: Xen's unsigned arithmetic gives all of it.
        ("dom0_mem=-64G", 16 * GIB_KIB, 16 * GIB_KIB),
        # Whole pages only.
        ("dom0_mem=1025K", 16 * GIB_KIB, 1024),
    ],
)
def test_resolve_dom0_mem(cmdline: str, host_kib: int, expected_kib: int) -> None:
    assert resolve_dom0_mem(parse_xen_cmdline(cmdline), host_kib) == expected_kib


def test_resolve_dom0_mem_max() -> None:
    opts = parse_xen_cmdline("dom0_mem=1G,max:-2G")
    assert resolve_dom0_mem_max(opts, 16 * GIB_KIB) == 14 * GIB_KIB
    assert resolve_dom0_mem_max(parse_xen_cmdline("dom0_mem=max:64G"), GIB_KIB) == GIB_KIB


@pytest.mark.parametrize(
    ("cmdline", "col", "needle"),
    [
        ("dom0_mem=", 10, "expected an amount"),
        ("dom0_mem=abc", 10, "expected an amount"),
        ("dom0_mem=512X", 13, "unexpected 'X'"),
        ("dom0_mem=100%", 10, "not below 100%"),
        ("dom0_mem=1G+2G", 13, "only one size"),
        ("dom0_mem=25%+1G", 13, "unexpected '+1G'"),
        ("dom0_mem=min:", 14, "expected an amount"),
        ("dom0_mem=512M,,max:1G", 15, "expected an amount"),
        ("noreboot  dom0_mem=max:x", 24, "expected an amount"),
    ],
)
def test_dom0_mem_errors_are_located(cmdline: str, col: int, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(cmdline)
    err = info.value
    assert (err.path, err.line, err.col, err.key) == ("<xen command line>", 1, col, "dom0_mem")
    assert needle in err.cause
    assert err.fix


def test_memsize_and_dom0_mem_text() -> None:
    assert str(MemSize(GIB, percent=25)) == "1G+25%"
    assert str(MemSize(percent=10, minus=True)) == "-10%"
    assert str(MemSize(0)) == "0"
    mem = parse_xen_cmdline("dom0_mem=-1G,min:512M,max:4G").dom0_mem
    assert str(mem) == "-1G,min:512M,max:4G"


# --- dom0_max_vcpus --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "resolved_on_6"),
    [
        ("4", VcpuRange(4, 4), 4),
        ("0", VcpuRange(1, 1), 1),
        ("4-8", VcpuRange(4, 8), 6),
        ("8-", VcpuRange(8, None), 8),
        ("-2", VcpuRange(1, 2), 2),
        ("2-4", VcpuRange(2, 4), 4),
    ],
)
def test_dom0_max_vcpus(value: str, expected: VcpuRange, resolved_on_6: int) -> None:
    opts = parse_xen_cmdline(f"dom0_max_vcpus={value}")
    assert opts.dom0_max_vcpus == expected
    assert resolve_dom0_vcpus(opts, 6) == resolved_on_6


@pytest.mark.parametrize(("table_pcpus", "expected"), [(2, 4), (4, 4), (6, 6), (8, 8), (10, 8)])
def test_dom0_max_vcpus_pandoc_table(table_pcpus: int, expected: int) -> None:
    assert resolve_dom0_vcpus(parse_xen_cmdline("dom0_max_vcpus=4-8"), table_pcpus) == expected


def test_no_dom0_max_vcpus_means_all_cpus() -> None:
    assert resolve_dom0_vcpus(parse_xen_cmdline(""), 12) == 12


@pytest.mark.parametrize(
    ("value", "col"), [("x", 16), ("4-x", 18), ("4x", 17), ("8-4", 18), ("-", 17)]
)
def test_dom0_max_vcpus_errors(value: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(f"dom0_max_vcpus={value}")
    assert info.value.col == col
    assert info.value.key == "dom0_max_vcpus"
    assert info.value.fix is not None


# --- booleans --------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["dom0_vcpus_pin", "console_to_ring", "noreboot", "nosmp"])
@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        ("", True),
        ("=1", True),
        ("=yes", True),
        ("=on", True),
        ("=true", True),
        ("=enable", True),
        ("=0", False),
        ("=no", False),
        ("=off", False),
        ("=false", False),
        ("=disable", False),
    ],
)
def test_boolean_spellings(option: str, suffix: str, expected: bool) -> None:
    opts = parse_xen_cmdline(option + suffix)
    assert getattr(opts, option) is expected
    assert opts.given == (option,)


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("no-dom0_vcpus_pin", False),
        ("dom0_vcpus_pin no-dom0_vcpus_pin", False),
        ("no-dom0_vcpus_pin dom0_vcpus_pin", True),
        # Stacking no- with a value inverts it, as kernel.c does.
        ("no-dom0_vcpus_pin=0", True),
        ("no-dom0_vcpus_pin=1", False),
    ],
)
def test_no_prefix(cmdline: str, expected: bool) -> None:
    assert parse_xen_cmdline(cmdline).dom0_vcpus_pin is expected


@pytest.mark.parametrize("value", ["maybe", "YES", "On", "2", ""])
def test_bad_boolean(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(f"noreboot console_to_ring={value}")
    assert info.value.key == "console_to_ring"
    assert info.value.col == 26
    assert info.value.fix is not None
    assert "disable" in info.value.fix


def test_no_prefix_on_a_non_boolean_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("noreboot no-dom0_mem")
    assert (info.value.col, info.value.key) == (10, "no-dom0_mem")


# --- scheduler -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["credit", "credit2", "rtds", "null", "arinc653"])
def test_sched(name: str) -> None:
    assert parse_xen_cmdline(f"sched={name}").sched == Scheduler(name)


def test_sched_unknown() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("sched=sedf")
    assert (info.value.col, info.value.key) == (7, "sched")
    assert info.value.fix == "use one of credit, credit2, rtds, null, arinc653"


def test_sched_tunables() -> None:
    opts = parse_xen_cmdline("sched_credit_tslice_ms=5 sched_ratelimit_us=0")
    assert opts.sched_credit_tslice_ms == 5
    assert opts.sched_ratelimit_us == 0
    assert parse_xen_cmdline("sched_ratelimit_us=0x10").sched_ratelimit_us == 16
    assert parse_xen_cmdline("sched_ratelimit_us=010").sched_ratelimit_us == 8


@pytest.mark.parametrize(
    ("cmdline", "col"),
    [
        ("sched_credit_tslice_ms=0", 24),
        ("sched_credit_tslice_ms=1001", 24),
        ("sched_credit_tslice_ms=ten", 24),
        ("sched_ratelimit_us=500001", 20),
        ("sched_ratelimit_us=-1", 20),
        ("sched_ratelimit_us=5ms", 21),
    ],
)
def test_sched_tunable_errors(cmdline: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(cmdline)
    assert info.value.col == col
    assert info.value.key == cmdline.split("=")[0]
    assert info.value.fix is not None


# --- log levels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", LogLevels(LogLevel.ALL, LogLevel.ALL)),
        ("none", LogLevels(LogLevel.NONE, LogLevel.NONE)),
        ("error/warning", LogLevels(LogLevel.ERROR, LogLevel.WARNING)),
        ("info/debug", LogLevels(LogLevel.INFO, LogLevel.DEBUG)),
        # A rate-limited level below the level is raised to it, as Xen does.
        ("debug/error", LogLevels(LogLevel.DEBUG, LogLevel.DEBUG)),
    ],
)
def test_loglvl(value: str, expected: LogLevels) -> None:
    opts = parse_xen_cmdline(f"loglvl={value} guest_loglvl={value}")
    assert opts.loglvl == expected
    assert opts.guest_loglvl == expected


def test_loglvl_text() -> None:
    assert str(LogLevels(LogLevel.NONE, LogLevel.WARNING)) == "none/warning"
    assert str(LogLevels(LogLevel.ALL, LogLevel.ALL)) == "all"


@pytest.mark.parametrize(("value", "col"), [("loud", 8), ("all/loud", 12), ("", 8)])
def test_loglvl_errors(value: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(f"loglvl={value}")
    assert info.value.col == col
    assert info.value.fix is not None
    assert "none, error, warning, info, debug, all" in info.value.fix


# --- sizes and counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16k", 16 * 1024),
        ("16K", 16 * 1024),
        ("512", 512 * 1024),
        ("1G", GIB),
        ("2t", 2 * 2**40),
        ("100B", 100),
        ("100b", 100),
        ("0x10M", 16 * MIB),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected
    opts = parse_xen_cmdline(f"mem={text} conring_size={text}")
    assert opts.mem == expected
    assert opts.conring_size == expected


@pytest.mark.parametrize("text", ["", "G", "1Q", "1GB", "5%", "-1G"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_size(text)
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(f"mem={text}")
    assert info.value.key == "mem"
    assert info.value.fix is not None


def test_format_size() -> None:
    assert [format_size(n) for n in (GIB, 512 * MIB, 1536 * 1024, 100, 0)] == [
        "1G",
        "512M",
        "1536K",
        "100B",
        "0",
    ]


def test_counts() -> None:
    opts = parse_xen_cmdline("maxcpus=4 nosmp")
    assert opts.maxcpus == 4
    assert opts.nosmp is True
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("maxcpus=-1")
    assert (info.value.col, info.value.key) == (9, "maxcpus")


def test_value_option_without_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("noreboot maxcpus")
    assert (info.value.col, info.value.key) == (10, "maxcpus")
    assert info.value.cause == "needs a value"
    assert info.value.fix == "write maxcpus=<value> (see xen-command-line(7))"


# --- serial and console ----------------------------------------------------------------------


def test_com1_full_positional() -> None:
    port = parse_xen_cmdline("com1=115200/1843200,8n1,0x3f8,4,00:1f.0,00:1c.0").com1
    assert port == SerialPort(
        text="115200/1843200,8n1,0x3f8,4,00:1f.0,00:1c.0",
        baud=115200,
        base_baud=1843200,
        data_bits=8,
        parity="n",
        stop_bits=1,
        io_base=0x3F8,
        irq=4,
        port_bdf="00:1f.0",
        bridge_bdf="00:1c.0",
    )


def test_com_named_pairs_and_auto() -> None:
    opts = parse_xen_cmdline(
        "com1=baud=115200,parity=n,stop-bits=1,io-base=0x3f8,reg-width=4 com2=auto,,pci,msi"
    )
    assert opts.com1 is not None
    assert (opts.com1.baud, opts.com1.parity, opts.com1.stop_bits) == (115200, "n", 1)
    assert opts.com1.io_base == 0x3F8
    assert opts.com1.extra == (("reg-width", "4"),)
    assert opts.com2 is not None
    assert opts.com2.baud is None
    assert opts.com2.device == "pci"
    assert opts.com2.msi is True


def test_com_mixed_positional_then_named() -> None:
    port = parse_xen_cmdline("com1=115200,8n1,0x3f8,4,reg-width=4,reg-shift=2").com1
    assert port is not None
    assert port.irq == 4
    assert port.extra == (("reg-width", "4"), ("reg-shift", "2"))


@pytest.mark.parametrize(
    ("value", "col"),
    [
        ("fast", 6),
        ("115200,9x1", 13),
        ("115200,8n1,0x3f8,4,zz", 25),
        ("115200,8n1,0x3f8,4,00:1f.0,00:1c.0,7", 41),
        ("speed=9600", 6),
        ("baud=9600,8n1", 16),
        ("parity=q", 13),
    ],
)
def test_com_errors(value: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline(f"com1={value}")
    assert (info.value.col, info.value.key) == (col, "com1")
    assert info.value.fix is not None


def test_console_list() -> None:
    assert parse_xen_cmdline("console=com1H,vga,dbgp").console == ("com1H", "vga", "dbgp")
    assert parse_xen_cmdline("console=none").console == ("none",)


def test_console_unknown_item() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("console=com1,tty0")
    assert (info.value.col, info.value.key) == (14, "console")
    assert "'tty0'" in info.value.cause


# --- everything else -------------------------------------------------------------------------


def test_unrecognised_options_are_kept_raw_in_order() -> None:
    opts = parse_xen_cmdline("iommu=no-intremap dom0_mem=1G ucode=scan smt=0 flask=disabled x2apic")
    assert opts.unrecognised == (
        ("iommu", "no-intremap"),
        ("ucode", "scan"),
        ("smt", "0"),
        ("flask", "disabled"),
        ("x2apic", None),
    )
    assert opts.given == ("dom0_mem",)


def test_no_prefix_of_unknown_option_stays_raw() -> None:
    assert parse_xen_cmdline("no-hpet").unrecognised == (("no-hpet", None),)


def test_last_value_wins() -> None:
    opts = parse_xen_cmdline("sched=credit sched=rtds")
    assert opts.sched is Scheduler.RTDS
    assert opts.given == ("sched",)


def test_wrapped_command_line_positions() -> None:
    with pytest.raises(ConfigError) as info:
        parse_xen_cmdline("noreboot\n  sched=bvt", source="/etc/xenlite/host.cfg")
    err = info.value
    assert (err.path, err.line, err.col) == ("/etc/xenlite/host.cfg", 2, 9)
    assert str(err).startswith("/etc/xenlite/host.cfg:2:9: sched: ")


def test_to_json() -> None:
    opts = parse_xen_cmdline(
        "dom0_mem=-1G,min:512M,max:4G dom0_max_vcpus=2-4 loglvl=all com1=115200,8n1 foo=bar"
    )
    data = opts.to_json()
    assert data["dom0_mem"] == "-1G,min:512M,max:4G"
    assert data["dom0_max_vcpus"] == {"min": 2, "max": 4}
    assert data["loglvl"] == "all"
    assert data["guest_loglvl"] == "none/warning"
    assert data["sched"] == "credit2"
    assert data["com1"] == "115200,8n1"
    assert data["console"] == ["com1", "vga"]
    assert data["unrecognised"] == [["foo", "bar"]]
    assert data["cmdline"] == opts.cmdline


# --- grub defaults ---------------------------------------------------------------------------


def _grub(tmp_path: Path, text: str, name: str = "grub") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "cmdline"),
    [
        pytest.param(
            'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet"\n'
            'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=512M,max:512M"\n'
            "GRUB_CMDLINE_XEN='dom0_max_vcpus=1 dom0_vcpus_pin'\n",
            "dom0_max_vcpus=1 dom0_vcpus_pin dom0_mem=512M,max:512M",
            id="plain-assignments",
        ),
        pytest.param(
            "# comment\n"
            'MEM="512M"\n'
            'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=${MEM}"  # trailing comment\n'
            'GRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT dom0_max_vcpus=2"\n'
            "GRUB_CMDLINE_XEN_DEFAULT+=' noreboot'\n"
            "export GRUB_CMDLINE_XEN=loglvl=all\\ guest_loglvl=all\n",
            "loglvl=all guest_loglvl=all dom0_mem=512M dom0_max_vcpus=2 noreboot",
            id="expansion-and-append",
        ),
        pytest.param(
            'GRUB_CMDLINE_XEN="a=\\"b\\" \\\n c=${UNSET:-d} e=${UNSET-f} $1"\n'
            "echo GRUB_CMDLINE_XEN=ignored\n"
            "X=1 GRUB_CMDLINE_XEN_DEFAULT=temporary some-command\n",
            'a="b"  c=d e=f',
            id="escapes-defaults-and-continuations",
        ),
    ],
)
def test_grub_shell_assignments(tmp_path: Path, text: str, cmdline: str) -> None:
    assert read_grub_default(_grub(tmp_path, text)) == cmdline


def test_grub_debian_xen_cfg_drop_in(tmp_path: Path) -> None:
    _grub(tmp_path, 'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G"\n')
    drop_ins = tmp_path / "grub.d"
    drop_ins.mkdir()
    (drop_ins / "xen.cfg").write_text(
        'echo "Including Xen overrides from /etc/default/grub.d/xen.cfg"\n'
        'if [ "$XEN_OVERRIDE_GRUB_DEFAULT" = "" ]; then\n'
        '  echo "WARNING: GRUB_DEFAULT changed to boot into Xen by default!"\n'
        "  XEN_OVERRIDE_GRUB_DEFAULT=1\n"
        "fi\n"
        'if [ "$XEN_OVERRIDE_GRUB_DEFAULT" = "1" ]; then\n'
        '  GRUB_DEFAULT=$( (grep "^menuentry" /boot/grub/grub.cfg |\n'
        "      sed -n 's/x/y/p') | head -1)\n"
        "fi\n"
        'GRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT dom0_max_vcpus=1"\n'
    )
    (drop_ins / "other.txt").write_text("GRUB_CMDLINE_XEN=ignored\n")
    assert read_grub_default(tmp_path / "grub") == "dom0_mem=1G dom0_max_vcpus=1"
    assert read_grub_default(tmp_path / "grub", drop_ins=False) == "dom0_mem=1G"
    # The drop-in read on its own.
    assert read_grub_default(drop_ins / "xen.cfg") == "dom0_max_vcpus=1"


def test_grub_without_xen_variables(tmp_path: Path) -> None:
    assert read_grub_default(_grub(tmp_path, "GRUB_TIMEOUT=5\n")) == ""


def test_grub_command_substitution_in_xen_line_is_an_error(tmp_path: Path) -> None:
    path = _grub(tmp_path, 'MEM=$(free -m)\nGRUB_CMDLINE_XEN="dom0_mem=$MEM"\n')
    with pytest.raises(ConfigError) as info:
        read_grub_default(path)
    err = info.value
    assert (err.path, err.line, err.col, err.key) == (str(path), 2, 28, "GRUB_CMDLINE_XEN")
    assert "$(...)" in err.cause


def test_grub_backquotes_are_an_error(tmp_path: Path) -> None:
    path = _grub(tmp_path, "GRUB_CMDLINE_XEN_DEFAULT=`cat /x`\n")
    with pytest.raises(ConfigError) as info:
        read_grub_default(path)
    assert (info.value.line, info.value.col) == (1, 26)


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ('GRUB_CMDLINE_XEN="dom0_mem=1G\n', 1, 18),
        ("\nGRUB_CMDLINE_XEN='x\n", 2, 18),
        ("A=${B\n", 1, 3),
        ("A=$(echo\n", 1, 3),
    ],
)
def test_grub_unterminated(tmp_path: Path, text: str, line: int, col: int) -> None:
    path = _grub(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_grub_default(path)
    assert (info.value.path, info.value.line, info.value.col) == (str(path), line, col)
    assert info.value.fix is not None


def test_grub_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_grub_default(tmp_path / "grub")
    assert info.value.path == str(tmp_path / "grub")
    assert "not found" in info.value.cause
