"""Benchmark of the configuration layer; prints one JSON object.

- configs_per_second: full `xl create -n` pipeline in-process (grammar, specs, domain model,
  libxl JSON) over a set of real-world-shaped configs (the ../shared corpus when present,
  else the built-in demo config and the manual's example shapes);
- xl_version_ms / xl_create_dryrun_ms: wall time of `xl --version` and `xl create -n demo.cfg`
  as whole processes, median of 10 (target: xl --version <= 60 ms).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from xenlite.base.errors import ConfigError
from xenlite.config.domain.build import HostFacts, build_domain_config
from xenlite.config.domain.libxl_json import dumps_domain_config
from xenlite.config.xlcfg.grammar import parse

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XENLITE_SHARED", REPO.parent / "shared"))
XL = Path(sys.executable).with_name("xl")
VERSION_TARGET_MS = 60.0


def _inputs() -> list[tuple[str, str]]:
    corpus = SHARED / "corpus" / "xlcfg"
    if corpus.is_dir():
        files = sorted(p for p in corpus.iterdir() if p.is_file())
        return [(p.name, p.read_text(encoding="latin-1")) for p in files]
    demo = (resources.files("xenlite.config") / "demo.cfg").read_text(encoding="utf-8")
    return [("demo.cfg", demo)]


def _run_once(host: HostFacts, name: str, text: str) -> bool:
    """The whole `xl create -n` pipeline on one config; False when xl would reject it."""
    try:
        dumps_domain_config(build_domain_config(parse(text, name), host=host).config)
    except ConfigError:
        return False
    return True


def _configs_per_second(inputs: list[tuple[str, str]], seconds: float = 2.0) -> tuple[float, int]:
    host = HostFacts(nr_cpus=8)
    rejected = sum(not _run_once(host, name, text) for name, text in inputs)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for name, text in inputs:
            _run_once(host, name, text)
        done += len(inputs)
    return done / (time.perf_counter() - start), rejected


def _median_ms(argv: list[str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    inputs = _inputs()
    rate, rejected = _configs_per_second(inputs)
    demo = (resources.files("xenlite.config") / "demo.cfg").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "demo.cfg"
        cfg.write_text(demo, encoding="utf-8")
        version_ms = _median_ms([os.fspath(XL), "--version"])
        dryrun_ms = _median_ms(
            [os.fspath(XL), "create", "-q", "-n", os.fspath(cfg), 'kernel="/boot/vmlinuz"']
        )
    result = {
        "benchmark": "config",
        "inputs": len(inputs),
        "configs_per_second": round(rate, 1),
        "inputs_rejected": rejected,
        "xl_version_ms": round(version_ms, 1),
        "xl_version_target_ms": VERSION_TARGET_MS,
        "xl_version_within_target": version_ms <= VERSION_TARGET_MS,
        "xl_create_dryrun_ms": round(dryrun_ms, 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
