"""`xl create -n` on every corpus config: xenlite's JSON equals Xen 4.17's, or both refuse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xenlite.base.errors import ConfigError
from xenlite.config.domain.build import HostFacts, load_domain_config
from xenlite.config.domain.libxl_json import domain_config_from_json, domain_config_to_json

# Collection needs the file names before fixtures run: find ../shared as tests/conftest.py does.
_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("XENLITE_SHARED", _REPO.parent / "shared")) / "corpus"
FILES = sorted(p.name for p in (CORPUS / "xlcfg").glob("*")) if CORPUS.is_dir() else []

# Files where xenlite knowingly differs from xl 4.17, each with the reason (reviewed).
KNOWN_DEVIATIONS: dict[str, str] = {}


def _expected(shared_dir: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (shared_dir / "corpus" / "expected" / "xlcfg" / f"{name}.json").read_text()
    )
    return data


def test_corpus_is_complete(shared_dir: Path) -> None:
    names = sorted(p.name for p in (shared_dir / "corpus" / "xlcfg").iterdir())
    assert len(names) == 56
    assert names == FILES


@pytest.mark.parametrize("name", FILES)
def test_dryrun_matches_xl(shared_dir: Path, name: str) -> None:
    if name in KNOWN_DEVIATIONS:
        pytest.skip(KNOWN_DEVIATIONS[name])
    path = shared_dir / "corpus" / "xlcfg" / name
    dryrun = _expected(shared_dir, name)["xl_dryrun"]
    assert isinstance(dryrun, dict)
    host = HostFacts(nr_cpus=8)
    if dryrun["rc"] == 0:
        loaded = load_domain_config(str(path), host=host)
        got = domain_config_to_json(loaded.config)
        assert got == dryrun["config"]
        # and libxl's JSON reads back into the same model
        assert domain_config_from_json(got) == loaded.config
        return
    with pytest.raises(ConfigError) as info:
        load_domain_config(str(path), host=host)
    err = info.value
    assert err.path == str(path)
    assert err.line is not None
    stderr = str(dryrun.get("stderr", ""))
    first = stderr.splitlines()[0] if stderr else ""
    if "config parsing error" not in first:
        # a semantic refusal: xenlite words it as xl does
        words = first.removeprefix("xl: ").rstrip(".")
        assert words in str(err), (words, str(err))


def test_warnings_follow_xl(shared_dir: Path) -> None:
    name = "xen-project_xen__tools_examples_xmexample.hvm"
    loaded = load_domain_config(str(shared_dir / "corpus" / "xlcfg" / name), host=HostFacts(8))
    text = "\n".join(loaded.warnings)
    assert 'specifying "tsc_mode" as an integer is deprecated' in text
    assert 'using "kernel" directive to override HVM guest firmware' in text
    assert "WARNING: ignoring device_model directive." in text
    assert f"{name}:" in text  # every warning is located
