"""`edigw demo`: one command runs the whole gateway on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edigw.journal.store import Journal


def test_demo_processes_every_sample_and_runs_every_export(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "edigw.cli", "demo", "--dir", str(workspace)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Inbound files" in result.stdout and "Exports" in result.stdout

    journal = Journal.open(f"sqlite:///{workspace / 'edigw-data' / 'journal.sqlite'}")
    try:
        files = journal.files(limit=1000)
        runs = journal.export_runs(limit=100)
    finally:
        journal.close()
    by_state = {f.original_name: f.state for f in files}
    samples = Path(__file__).resolve().parents[1] / "samples"
    bad_samples = {p.name for p in (samples / "bad").rglob("*") if p.is_file()}
    assert bad_samples, "the demo shows deliberately bad samples"
    for name in bad_samples & set(by_state):
        assert by_state[name] in ("failed", "partially_failed"), name
    good = {name: state for name, state in by_state.items() if name not in bad_samples}
    assert len(good) >= 10, "every shipped good sample is dropped"
    assert set(good.values()) == {"done"}, good
    assert runs and {r.state for r in runs} <= {"delivered", "empty"}
    delivered = [r for r in runs if r.state == "delivered"]
    for run in delivered:
        assert any(workspace.rglob(run.file_name or "?")), run.file_name
    assert f"{len(files)} files" in result.stdout
