"""The host's books as xenlited opens them: memory (dom0_mem, xl.conf's autoballoon, and the
xend-config.sxp a host moved from xend keeps) and dom0's CPUs (dom0_max_vcpus,
dom0_vcpus_pin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlite.config.hostconf.bootopts import parse_xen_cmdline
from xenlite.config.hostconf.xend import parse_xend_config
from xenlite.config.hostconf.xlconf import Autoballoon, XlConf
from xenlite.daemon.main import dom0_placement, host_memory_book, load_host_xend
from xenlite.host.memory import DOM0_FLOOR_KIB

GIB = 1024 * 1024  # KiB


def _book(xend_text: str | None, conf: XlConf | None = None, cmdline: str = "") -> tuple:
    said: list[str] = []
    xend = None if xend_text is None else parse_xend_config(xend_text, "/etc/xen/xend-config.sxp")
    book = host_memory_book(parse_xen_cmdline(cmdline), conf or XlConf(), 8 * GIB,
                            said.append, xend)  # fmt: skip
    return book, said


def test_without_xend_the_book_is_xls() -> None:
    book, said = _book(None)
    assert (book.autoballoon, book.dom0_floor_kib) == (True, DOM0_FLOOR_KIB)
    assert said == ["Dom0 has 8064 MB of 8192 MB; autoballoon on"]
    book, _ = _book("(xend-relocation-server no)\n")  # a xend file that says nothing of it
    assert (book.autoballoon, book.dom0_floor_kib) == (True, DOM0_FLOOR_KIB)


def test_the_seeds_xend_floor_bounds_ballooning() -> None:
    # Seed 003: "(dom0-min-mem 1024)"; xend's rule turns ballooning on with it.
    book, said = _book("(dom0-min-mem 1024)\n")
    assert book.autoballoon
    assert book.dom0_floor_kib == 1024 * 1024
    assert (
        "/etc/xen/xend-config.sxp: dom0-min-mem 1024: dom0 balloons no lower than 1024 MB" in said
    )
    assert book.claimable_kib() == book.free_kib + book.dom0_kib - 1024 * 1024
    # Seed 002: "(dom0-min-mem 0) and (enable-dom0-ballooning no)": dom0 does not balloon.
    book, said = _book("(dom0-min-mem 0)\n(enable-dom0-ballooning no)\n")
    assert not book.autoballoon
    assert said[0].endswith("dom0-min-mem and enable-dom0-ballooning: autoballoon off "
                            "(xend's rule; xl.conf's autoballoon is auto)")  # fmt: skip


def test_xl_conf_that_says_autoballoon_goes_over_xend() -> None:
    book, said = _book("(enable-dom0-ballooning no)\n(dom0-min-mem 512)\n",
                       XlConf(autoballoon=Autoballoon.ON))  # fmt: skip
    assert book.autoballoon
    assert book.dom0_floor_kib == 512 * 1024  # the floor still holds
    assert "give way to xl.conf's autoballoon=on" in said[0]


def test_a_broken_xend_file_is_said_and_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XENLITE_ROOT", str(tmp_path))
    said: list[str] = []
    assert load_host_xend(said.append) is None
    assert said == []
    path = tmp_path / "etc/xen/xend-config.sxp"
    path.parent.mkdir(parents=True)
    path.write_text("(dom0-min-mem 256\n")
    assert load_host_xend(said.append) is None
    assert said[0].startswith(f"{path}: not used: ")
    path.write_text("(dom0-min-mem 256)\n")
    xend = load_host_xend(said.append)
    assert xend is not None
    assert xend.dom0_min_mem == 256


def test_dom0_keeps_cpus_only_when_pinned() -> None:
    first = sorted(os.sched_getaffinity(0))[0]
    said: list[str] = []
    assert dom0_placement(parse_xen_cmdline(""), 2, said.append) == (0, ())
    assert said == []
    assert dom0_placement(parse_xen_cmdline("dom0_max_vcpus=1"), 2, said.append) == (1, ())
    assert "add dom0_vcpus_pin to keep CPUs for dom0" in said[-1]
    pinned = dom0_placement(parse_xen_cmdline("dom0_max_vcpus=1 dom0_vcpus_pin"), 2, said.append)
    assert pinned == (1, (first,))
