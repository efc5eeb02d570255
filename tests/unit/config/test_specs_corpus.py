"""Every disk and vif spec of the real-world corpus gives exactly Xen 4.17's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenlite.config.domain.libxl_json import struct_to_json
from xenlite.config.specs.disk import parse_disk_spec
from xenlite.config.specs.vif import parse_vif_spec

pytestmark = pytest.mark.shared


def _entries(shared_dir: Path, kind: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for path in sorted((shared_dir / "corpus" / "expected" / "xlcfg").glob("*.json")):
        data = json.loads(path.read_text())
        for entry in data.get(kind) or []:
            entries.append({**entry, "file": path.name})
    return entries


def test_corpus_disks(shared_dir: Path) -> None:
    entries = _entries(shared_dir, "disks")
    assert entries, "the corpus holds disk specs"
    for entry in entries:
        assert entry["rc"] == 0, entry  # every corpus disk spec parses in Xen
        assert isinstance(entry["spec"], str)
        got = struct_to_json(parse_disk_spec(entry["spec"]).to_device())
        assert got == entry["json"], entry["file"]
        assert list(got) == list(entry["json"]), entry["file"]


def test_corpus_vifs(shared_dir: Path) -> None:
    entries = _entries(shared_dir, "vifs")
    assert entries, "the corpus holds vif specs"
    for entry in entries:
        assert entry["rc"] == 0, entry
        assert isinstance(entry["spec"], str)
        spec, warnings = parse_vif_spec(entry["spec"], 0)
        got = struct_to_json(spec.to_device())
        assert got == entry["nic"], entry["file"]
        assert list(got) == list(entry["nic"]), entry["file"]
        stderr = entry.get("stderr") or ""
        assert isinstance(stderr, str)
        assert warnings == [line for line in stderr.split("\n") if line], entry["file"]
