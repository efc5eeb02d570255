"""xl vcpu-list's text, as xl_vcpu.c print_vcpuinfo() writes it (maps: tests/unit/config)."""

from __future__ import annotations

from xenlite.cli.commands.vcpu import HEADER, vcpu_row


def test_header_and_rows_in_xls_columns() -> None:
    assert HEADER == (
        "Name                                ID  VCPU   CPU State   Time(s) "
        "Affinity (Hard / Soft)\n"
    )
    online = {"vcpuid": 0, "online": True, "cpu": 2, "running": True, "blocked": False,
              "time_ns": 12_345_000_000, "hard": [0, 1, 2, 3], "soft": [0, 1, 2, 3]}  # fmt: skip
    assert vcpu_row("web01", 3, online, 4) == (
        "web01                                3     0    2   r--      12.3  all / all\n"
    )
    offline = {"vcpuid": 1, "online": False, "cpu": 0, "running": False, "blocked": False,
               "time_ns": 0, "hard": [0, 1, 2, 3], "soft": [0, 1, 2, 3]}  # fmt: skip
    assert vcpu_row("web01", 3, offline, 8) == (
        "web01                                3     1    -   --p       0.0  0-3 / 0-3\n"
    )
