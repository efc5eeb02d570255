"""The start-up sweep of what no record owns: a stand-in QEMU (tests/qmp_greeter.py) in a
run directory nobody owns is killed and its directory removed; a live domain's directory
stays, and an interrupted atomic write's temporary file goes."""

from __future__ import annotations

from pathlib import Path

from qmp_greeter import greeter_argv
from xenlite.domain.orphans import sweep_files
from xenlite.qemu.process import attach, launch
from xenlite.qemu.runpaths import RunPaths


def test_sweep_kills_the_orphan_and_keeps_the_living(tmp_path: Path) -> None:
    run_root, records = tmp_path / "run", tmp_path / "records"
    orphan = RunPaths.in_directory(run_root / "7")
    process = launch(greeter_argv(orphan), orphan, timeout=20)
    try:
        orphan.pid_file.unlink()  # as if the launcher died before writing it
        (run_root / "3").mkdir()
        records.mkdir()
        (records / "3.json").write_text("{}")
        (records / ".4.json.123.tmp").write_text("{")
        swept = sweep_files(run_root, records, None, {3})
        assert swept.qemu_pids == [process.pid]
        assert swept.run_dirs == [str(run_root / "7")]
        assert swept.temp_files == [str(records / ".4.json.123.tmp")]
        assert not process.is_alive()
        assert sorted(p.name for p in run_root.iterdir()) == ["3"]
        assert sorted(p.name for p in records.iterdir()) == ["3.json"]
        assert attach(orphan) is None
    finally:
        process.kill()
        process.close()
