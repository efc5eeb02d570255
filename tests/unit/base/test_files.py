"""The one atomic write: old or new content, never a torn file, no temporaries left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlite.base.errors import HostError
from xenlite.base.files import is_temporary, temporary_name, write_atomic


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two", 0o644)
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["b.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_write_names_the_file_and_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    write_atomic(target, b"old")
    # The temporary's name is taken by a directory: the write cannot happen.
    temporary_name(target).mkdir()
    with pytest.raises(HostError) as info:
        write_atomic(target, b"new", fix="free the name")
    assert str(target) in str(info.value)
    assert info.value.fix == "free the name"
    assert target.read_bytes() == b"old"


def test_the_sweep_recognises_the_temporaries(tmp_path: Path) -> None:
    assert is_temporary(temporary_name(tmp_path / "3.json"))
    assert not is_temporary(tmp_path / "3.json")
