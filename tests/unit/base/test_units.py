"""Memory sizes as xl and the Xen command line read them."""

from __future__ import annotations

import pytest

from xenlite.base.units import (
    GIB,
    KIB,
    MIB,
    TIB,
    format_bytes_human,
    format_kib,
    parse_mem_size_kb,
    parse_size_with_unit,
)


@pytest.mark.parametrize(
    ("text", "kib"),
    [
        ("512", 512 * 1024),  # a bare number is MiB in xl's code
        ("512m", 512 * 1024),
        ("512M", 512 * 1024),
        ("2g", 2 * 1024 * 1024),
        ("2G", 2 * 1024 * 1024),
        ("1t", 1024**3),
        ("1T", 1024**3),
        ("300k", 300),
        ("300K", 300),
        ("4096b", 4),
        ("4095B", 3),
        ("0", 0),
        (" 64", 64 * 1024),
        ("+8m", 8 * 1024),
    ],
)
def test_parse_mem_size_kb(text: str, kib: int) -> None:
    assert parse_mem_size_kb(text) == kib


@pytest.mark.parametrize("text", ["", "m", "abc", "12x", "12mb", "12 m", "-5", "1.5g", "9" * 30])
def test_parse_mem_size_kb_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="memory size"):
        parse_mem_size_kb(text)


@pytest.mark.parametrize(
    ("kib", "text"),
    [(0, "0K"), (512 * 1024, "512M"), (1024 * 1024, "1G"), (1536, "1536K"), (1024**3, "1T")],
)
def test_format_kib(kib: int, text: str) -> None:
    assert format_kib(kib) == text
    assert parse_mem_size_kb(text) == kib


def test_format_bytes_human() -> None:
    assert format_bytes_human(100) == "100 B"
    assert format_bytes_human(512 * MIB) == "512 MiB"
    assert format_bytes_human(3 * GIB // 2) == "1.5 GiB"
    assert format_bytes_human(2 * TIB) == "2 TiB"
    assert format_bytes_human(KIB) == "1 KiB"


@pytest.mark.parametrize(
    ("text", "default_unit", "size"),
    [
        ("1024M", "K", 1024 * MIB),
        ("2G", "K", 2 * GIB),
        ("512K", "K", 512 * KIB),
        ("512k", "K", 512 * KIB),
        ("4096B", "K", 4096),
        ("1t", "K", TIB),
        ("64", "K", 64 * KIB),  # Xen's default unit is kilo
        ("64", "M", 64 * MIB),
        ("64", "B", 64),
        ("0x10M", "K", 16 * MIB),
        ("010", "B", 8),
    ],
)
def test_parse_size_with_unit(text: str, default_unit: str, size: int) -> None:
    assert parse_size_with_unit(text, default_unit) == size


@pytest.mark.parametrize("text", ["", "G", "12Q", "1.5G", "12MB", "-1G"])
def test_parse_size_with_unit_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size_with_unit(text)


def test_parse_size_with_unit_rejects_unknown_default() -> None:
    with pytest.raises(ValueError, match="not one of"):
        parse_size_with_unit("1", "X")
