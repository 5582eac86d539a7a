"""`edigw status` with an edigw.yaml that does not load still shows what it can."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edigw.journal import Journal
from edigw.pipeline.health import HealthSnapshot, LoopHealth, write_health
from tests.fixtures.gateway import Workspace
from tests.support.cli import edigw
from tests.support.shop import offline_orders_workspace

WIDE = 200
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return offline_orders_workspace(tmp_path)


def break_config(ws: Workspace) -> int:
    """Add a setting edigw does not know; the line it is on."""
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(text + "no_such_setting: 1\n", encoding="utf-8")
    return len(text.splitlines()) + 1


def healthy_snapshot() -> HealthSnapshot:
    poller = LoopHealth("poller webshop/orders", "poller", "webshop/orders", "running", NOW)
    return HealthSnapshot(at=datetime.now(UTC), node="gw:42", state="running", loops=(poller,))


def add_file(ws: Workspace) -> None:
    journal = Journal.open(ws.load().journal_url)
    try:
        journal.add_file(
            partner="webshop",
            flow="orders",
            channel="local:/in",
            original_name="a.csv",
            source_path="/in/a.csv",
            size=10,
            sha256="a" * 64,
            archive_path="",
            now=NOW,
        )
    finally:
        journal.close()


def test_status_with_an_invalid_configuration_names_the_error_and_fails(
    workspace: Workspace,
) -> None:
    line = break_config(workspace)

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    assert "The configuration is invalid" in result.output
    assert f"edigw.yaml:{line}" in result.output
    assert "no_such_setting" in result.output


def test_status_with_an_invalid_configuration_shows_the_health_last_published(
    workspace: Workspace,
) -> None:
    write_health(healthy_snapshot(), workspace.root / "data")
    break_config(workspace)

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    assert "Gateway: healthy (1 loops running, gw:42)" in result.output


def test_status_with_an_invalid_configuration_shows_the_journal_counts(
    workspace: Workspace,
) -> None:
    add_file(workspace)
    break_config(workspace)

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    row = next(line for line in result.output.splitlines() if "orders" in line)
    assert row.split()[-8] == "1"  # files


def test_status_with_an_invalid_configuration_finds_the_default_data_folder(
    workspace: Workspace,
) -> None:
    text = workspace.config_path.read_text(encoding="utf-8")
    workspace.config_path.write_text(
        text.replace("data_dir: data\n", "") + "no_such_setting: 1\n", encoding="utf-8"
    )
    (workspace.root / "edigw-data").mkdir()
    write_health(healthy_snapshot(), workspace.root / "edigw-data")

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    assert "Gateway: healthy" in result.output
    assert "Journal: unknown (no journal at" in result.output


def test_status_json_with_an_invalid_configuration_carries_error_health_and_journal(
    workspace: Workspace,
) -> None:
    write_health(healthy_snapshot(), workspace.root / "data")
    add_file(workspace)
    break_config(workspace)

    result = edigw(workspace, "status", "--json", columns=WIDE)

    assert result.exit_code == 1
    data = json.loads(result.output)
    assert "no_such_setting" in data["config_error"][0]
    assert data["health"]["snapshot"]["state"] == "running"
    assert [f["flow"] for f in data["journal"]["flows"]] == ["webshop/orders"]


def test_status_with_an_invalid_configuration_reads_data_dir_defaults_as_the_loader_does(
    workspace: Workspace,
) -> None:
    text = workspace.config_path.read_text(encoding="utf-8")
    workspace.config_path.write_text(
        text.replace("data_dir: data\n", "data_dir: ${EDIGW_TEST_UNSET_DATA:-elsewhere}\n")
        + "no_such_setting: 1\n",
        encoding="utf-8",
    )
    (workspace.root / "elsewhere").mkdir()
    write_health(healthy_snapshot(), workspace.root / "elsewhere")

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    assert "Gateway: healthy" in result.output
