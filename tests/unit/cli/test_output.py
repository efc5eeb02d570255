"""cli/output.py against the exact strings xl's printf formats give (xl_info.c, Xen 4.17).

The expected lines were produced by compiling xl's format strings ("%-40s %5d %5lu %5d
%c%c%c%c%c%c  %8.1f", "%-33s %4d %s", ...) with gcc and the same values.
"""

from __future__ import annotations

import json

import pytest

from xenlite.base.errors import RpcError
from xenlite.cli import output
from xenlite.rpc.contract import DomainInfo, ShutdownReason, domain_info_from_json

UUID = "59e1cf6c-6ab9-4879-90e7-adc8d1c63bf5"


def dom(**changes: object) -> DomainInfo:
    base: dict[str, object] = {
        "domid": 3,
        "name": "web01",
        "uuid": UUID,
        "current_memkb": 1048576,
        "outstanding_memkb": 0,
        "max_memkb": 1048576,
        "vcpu_online": 2,
        "max_vcpus": 2,
        "running": False,
        "blocked": True,
        "paused": False,
        "shutdown": False,
        "dying": False,
        "shutdown_reason": None,
        "cpupool": "Pool-0",
        "cpu_time_ns": 5624249999999,
        "start_time": 1700000000.0,
        "config": None,
    }
    base.update(changes)
    return domain_info_from_json(base)


DOM0 = dom(
    domid=0,
    name="Domain-0",
    uuid="00000000-0000-0000-0000-000000000000",
    current_memkb=768000,
    vcpu_online=4,
    running=True,
    blocked=False,
    cpu_time_ns=11794312345678,
)


def test_list_header_has_xls_literal_tabs() -> None:
    assert output.list_header() == (
        "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    )
    assert output.list_header(verbose=True).endswith(
        "Time(s)   UUID                            Reason-Code\tSecurity Label"
    )
    assert output.list_header(context=True).endswith("Time(s)   Security Label")


def test_list_rows_are_xls_printf_layout() -> None:
    assert output.list_row(DOM0) == (
        "Domain-0                                     0   750     4     r-----   11794.3"
    )
    # Mem adds the outstanding claim; the time goes through a C float (5624.249999999 s
    # prints as 5624.3, as xl prints it, where a double would give 5624.2).
    row = output.list_row(dom(outstanding_memkb=2048))
    assert row == "web01                                        3  1026     2     -b----    5624.3"


def test_format_list_is_header_then_rows() -> None:
    text = output.format_list([DOM0, dom()])
    assert text.splitlines() == [
        output.LIST_HEADER,
        "Domain-0                                     0   750     4     r-----   11794.3",
        "web01                                        3  1024     2     -b----    5624.3",
    ]
    assert text.endswith("\n")


@pytest.mark.parametrize(
    ("reason", "flags"),
    [
        ("poweroff", "---s--"),
        ("reboot", "---sr-"),
        ("suspend", "---ss-"),
        ("crash", "---sc-"),
        ("watchdog", "---sw-"),
        ("soft_reset", "---sS-"),
    ],
)
def test_shutdown_reason_letter_follows_rscwS(reason: str, flags: str) -> None:
    info = dom(blocked=False, shutdown=True, shutdown_reason=reason)
    assert output.state_flags(info) == flags


def test_reason_letter_only_when_shut_down_and_other_flags() -> None:
    # A reason reported for a domain that is not shut down is not shown (xl reads it as 0).
    assert output.state_flags(dom(shutdown_reason="crash")) == "-b----"
    assert output.state_flags(dom(blocked=False, paused=True)) == "--p---"
    assert output.state_flags(dom(blocked=False, dying=True)) == "-----d"
    both = dom(running=True, blocked=False, paused=True, shutdown=True, shutdown_reason="crash")
    assert output.state_flags(both) == "r-psc-"


def test_verbose_row_adds_uuid_reason_code_and_label() -> None:
    running = output.list_row(dom(), verbose=True)
    assert running.endswith(f"    5624.3 {UUID}        -                -")
    crashed = dom(blocked=False, shutdown=True, shutdown_reason="crash")
    assert output.list_row(crashed, verbose=True).endswith(f" {UUID}        3                -")
    assert output.list_row(dom(), context=True).endswith("    5624.3                -")


def test_list_long_is_yajl_json_of_domains_with_a_config() -> None:
    config = {"c_info": {"type": "pv", "name": "web01"}, "b_info": {"max_vcpus": 2}}
    text = output.format_list_long([DOM0, dom(config=config)])
    assert text == (
        "[\n"
        "    {\n"
        '        "domid": 3,\n'
        '        "config": {\n'
        '            "c_info": {\n'
        '                "type": "pv",\n'
        '                "name": "web01"\n'
        "            },\n"
        '            "b_info": {\n'
        '                "max_vcpus": 2\n'
        "            }\n"
        "        }\n"
        "    }\n"
        "]\n"
    )
    assert json.loads(text) == [{"domid": 3, "config": config}]


def test_vm_list_leaves_out_domain0_and_pads_the_name() -> None:
    text = output.format_vm_list([DOM0, dom(domid=2, name="win")])
    assert text == (
        "UUID                                  ID    name\n"
        f"{UUID}  2    win                           \n"
    )


@pytest.mark.parametrize(
    ("seconds", "long", "short"),
    [
        (0, " 0:00:00", " 0:00"),
        (3723, " 1:02:03", " 1:02"),
        (86400 + 3600 + 61, "1 day,  1:01:01", "1 day,  1:01"),
        (3 * 86400 + 4 * 3600 + 5 * 60 + 6, "3 days,  4:05:06", "3 days,  4:05"),
        (12 * 3600, "12:00:00", "12:00"),
    ],
)
def test_uptime_strings(seconds: int, long: str, short: str) -> None:
    assert output.uptime_to_string(seconds) == long
    assert output.uptime_to_string(seconds, short=True) == short


def test_uptime_rows() -> None:
    assert output.UPTIME_HEADER == "Name                                ID Uptime"
    assert output.uptime_row("Domain-0", 0, 3 * 86400 + 14706) == (
        "Domain-0                             0 3 days,  4:05:06"
    )
    assert output.uptime_row("web01", 3, 3723) == (
        "web01                                3  1:02:03"
    )
    assert output.uptime_short_row("10:11:12", "web01", 3, 3723) == (
        " 10:11:12 up  1:02, web01 (3)"
    )


def test_info_lines_and_field_filter() -> None:
    fields: list[tuple[str, object]] = [
        ("host", "scarlett"),
        ("nr_cpus", 4),
        ("virt_caps", "hvm hvm_directio"),
        ("free_memory", 4274),
        ("free_cpus", 0),
        ("xend_config_format", 4),
    ]
    assert output.format_info(fields) == (
        "host                   : scarlett\n"
        "nr_cpus                : 4\n"
        "virt_caps              : hvm hvm_directio\n"
        "free_memory            : 4274\n"
        "free_cpus              : 0\n"
        "xend_config_format     : 4\n"
    )
    # xl info free: every line that starts with "free", value only.
    assert output.format_info(fields, "free") == "4274\n0\n"
    assert output.format_info(fields, "nothing") == ""


def test_info_virt_caps_without_capabilities_has_no_trailing_blank() -> None:
    assert output.info_line("virt_caps", "") == "virt_caps              :"
    # ... and "xl info virt_caps" then prints nothing, as xl's maybe_printf does.
    assert output.format_info([("virt_caps", "")], "virt_caps") == ""


def test_domain_info_from_json_checks_fields() -> None:
    info = dom(shutdown=True, shutdown_reason="soft_reset")
    assert info.shutdown_reason is ShutdownReason.SOFT_RESET
    assert info.shutdown_reason.code == 5
    with pytest.raises(RpcError, match="current_memkb"):
        domain_info_from_json({"domid": 1, "name": "x", "uuid": UUID})
    with pytest.raises(RpcError, match="no libxl reason"):
        dom(shutdown_reason="exploded")
    with pytest.raises(RpcError, match="not a domain object"):
        domain_info_from_json([1, 2])


@pytest.mark.parametrize(
    ("text", "value", "digits"),
    [("3", 3, True), ("  7xyz", 7, True), ("-1", -1, True), ("abc", 0, False), ("", 0, False)],
)
def test_parse_c_long_is_strtol(text: str, value: int, digits: bool) -> None:
    assert output.parse_c_long(text) == (value, digits)


def test_domid_qualifier_is_all_digits() -> None:
    assert output.is_domid_qualifier("12")
    assert not output.is_domid_qualifier("web01")
    assert not output.is_domid_qualifier("1a")
