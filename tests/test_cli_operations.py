"""The operator's commands: process, show, status, replay — exit codes and the lines they print."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edigw.cli import main
from tests.fixtures.gateway import ROOT, inbound_flow, write_workspace

GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-customers-csv" / "clients_export_20261128.csv"
BAD = ROOT / "samples" / "bad" / "ecommerce-customers-csv" / "clients_incomplets.csv"


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Any) -> Any:
    return write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {
                "customers": inbound_flow("ecommerce-customers-csv.yaml", "webshop", "customers")
            }
        },
    )


def edigw(workspace: Any, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(
        main,
        [*args, "-c", str(workspace.config_path)],
        env=workspace.environ,
        catch_exceptions=False,
    )


def test_process_sends_a_file_and_prints_each_document(workspace: Any, tmp_path: Path) -> None:
    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    result = edigw(workspace, "process", str(source), "--flow", "webshop/customers")
    assert result.exit_code == 0, result.output
    assert f"F-1 {GOOD.name}  (webshop/customers)" in result.output
    assert "state     done" in result.output
    assert "customers.upsert  done" in result.output
    assert source.exists(), "process leaves the file where it is"


def test_process_exits_non_zero_and_names_the_place_of_each_error(
    workspace: Any, tmp_path: Path
) -> None:
    result = edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    assert result.exit_code == 1
    assert "state     failed" in result.output
    assert f"error at {BAD.name}:" in result.output


def test_process_refuses_an_unknown_flow_in_one_line(workspace: Any) -> None:
    result = edigw(workspace, "process", str(GOOD), "--flow", "webshop/nope")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: unknown flow 'webshop/nope' (inbound flows: webshop/customers)"
    )


def test_show_tells_the_story_of_a_file_with_payloads(workspace: Any, tmp_path: Path) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "show", "F-1")
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and "archive" in result.output
    assert '"code":' in result.output
    assert "Ecolix 20" in result.output


def test_show_of_a_document_shows_only_that_document(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "show", "D-2")
    assert result.exit_code == 0, result.output
    assert "D-2 " in result.output
    assert "D-1 " not in result.output


def test_show_refuses_a_malformed_id(workspace: Any) -> None:
    result = edigw(workspace, "show", "X-1")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: 'X-1' is not an id: use F-<n> (file), D-<n> (document) or R-<n> (export run)"
    )


def test_status_counts_files_per_flow(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    result = edigw(workspace, "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["flows"] == [
        {
            "flow": "webshop/customers",
            "files": 2,
            "done": 1,
            "partially_failed": 0,
            "failed": 1,
            "in_progress": 0,
            "documents_waiting": 0,
            "documents_failed": 2,
        }
    ]
    assert status["calls_per_minute"] == 100_000


def test_status_shows_a_table_the_last_errors_and_the_call_budget(workspace: Any) -> None:
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    result = edigw(workspace, "status")
    assert result.exit_code == 0, result.output
    assert "webshop/customers" in result.output
    text = " ".join(result.output.split())
    assert "Last errors:" in text
    assert BAD.name in text
    assert (
        "Ecolix calls in the last minute: unknown (no gateway running) of 100000 agreed per minute"
        in text
    )


def test_replay_of_a_done_file_reports_already_done_and_sends_nothing(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "replay", "F-1")
    assert result.exit_code == 0, result.output
    assert "F-1: done" in result.output
    assert result.output.count("already done") == 4
    assert "sent again" not in result.output


def test_replay_dry_run_changes_nothing(workspace: Any) -> None:
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    before = edigw(workspace, "show", "F-1").output
    result = edigw(workspace, "replay", "--failed", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "F-1: dry run, nothing changed" in result.output
    assert "still failing" in result.output
    assert edigw(workspace, "show", "F-1").output == before


def test_replay_needs_something_to_replay(workspace: Any) -> None:
    result = edigw(workspace, "replay")
    assert result.exit_code == 2
    assert "give IDs, --failed or --since" in result.output


def test_purge_forgets_finished_exchanges_then_their_archived_originals(
    workspace: Any, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from edigw.pipeline.service import ARCHIVE_GRACE, purge_history

    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    assert edigw(workspace, "process", str(source), "--flow", "webshop/customers").exit_code == 0
    config = workspace.load()
    [copy] = [p for p in (Path(config.data_dir) / "archive").rglob("*") if p.is_file()]
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    first = purge_history(config, before=tomorrow, include_failed=False, dry_run=False)
    assert (first.journal.files, first.journal.documents) == (1, 4)
    assert first.archive_copies == 0 and copy.exists()  # just stored: left for an hour
    assert "F-1 does not exist" in edigw(workspace, "show", "F-1").output

    aged = copy.stat().st_mtime - ARCHIVE_GRACE - 1
    os.utime(copy, (aged, aged))
    second = purge_history(config, before=tomorrow, include_failed=False, dry_run=False)
    assert (second.journal.files, second.archive_copies) == (0, 1)
    assert not copy.exists()


def test_purge_dry_run_counts_and_changes_nothing(workspace: Any, tmp_path: Path) -> None:
    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    edigw(workspace, "process", str(source), "--flow", "webshop/customers")
    result = edigw(workspace, "purge", "--older-than", "30", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would forget 0 files and 0 export runs from before" in result.output
    assert "would delete 0 archived copies (0.0 MB)" in result.output
    assert "F-1" in edigw(workspace, "show", "F-1").output
