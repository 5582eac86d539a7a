"""`edigw status` shows the health the running gateway publishes in data_dir/health.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from edigw.journal import Journal
from edigw.journal.schema import VERSION_TABLE
from edigw.pipeline.health import (
    STALE_AFTER,
    Condition,
    HealthSnapshot,
    LoopHealth,
    PublishedHealth,
    read_health,
    write_health,
)
from edigw.render import HEALTH_WIDTH
from tests.fixtures.gateway import Workspace
from tests.support.cli import edigw, lines
from tests.support.shop import offline_orders_workspace

#: Wide enough for each problem on one line (how they wrap at 80 columns: test_render.py).
WIDE = 200
SINCE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return offline_orders_workspace(tmp_path)


def snapshot(at: datetime, *, state: str = "running", trouble: bool = False) -> HealthSnapshot:
    poller = LoopHealth("poller webshop/orders", "poller", "webshop/orders", "running", SINCE)
    conditions: tuple[Condition, ...] = ()
    if trouble:
        poller = LoopHealth(
            "poller webshop/orders",
            "poller",
            "webshop/orders",
            "restarting",
            SINCE,
            restarts=2,
            last_error="RuntimeError: poll bug",
            last_crash_at=SINCE,
        )
        conditions = (Condition("journal", "journal: database is locked", SINCE),)
    return HealthSnapshot(
        at=at,
        node="gw:42",
        state=state,  # type: ignore[arg-type]
        loops=(poller, LoopHealth("sender 0", "sender", None, "running", SINCE)),
        conditions=conditions,
    )


def status(ws: Workspace, *args: str) -> str:
    result = edigw(ws, "status", *args, columns=WIDE)
    assert result.exit_code == 0, result.output
    return "\n".join(lines(result))


def flow_health(output: str) -> str:
    """What the health column of the webshop/orders row says (its lines joined)."""
    shown = output.splitlines()
    header = next(line for line in shown if "partner/flow" in line)
    start = header.index("health")
    end = start + HEALTH_WIDTH
    at = next(n for n, line in enumerate(shown) if line.startswith("   orders "))
    cell = [shown[at][start:end].strip()]
    for line in shown[at + 1 :]:
        if not line.strip() or line[:start].strip():
            break
        cell.append(line[start:end].strip())
    return " ".join(part for part in cell if part)


def data_dir(ws: Workspace) -> Path:
    return ws.root / "data"


def test_status_says_the_running_gateway_is_healthy(workspace: Workspace) -> None:
    write_health(snapshot(datetime.now(UTC)), data_dir(workspace))
    output = status(workspace)
    assert "Gateway: healthy (2 loops running, gw:42)" in output.splitlines()
    assert flow_health(output) == "ok"


def test_status_shows_a_restarting_loop_and_the_conditions(workspace: Workspace) -> None:
    write_health(snapshot(datetime.now(UTC), trouble=True), data_dir(workspace))
    output = status(workspace)
    assert flow_health(output) == "poller restarting"
    shown = output.splitlines()
    at = shown.index("Gateway: running, unhealthy (gw:42)")
    assert shown[at + 1 : at + 3] == [
        "  loop poller webshop/orders: restarting since 2026-12-01 08:00:00 UTC, 2 restarts, "
        "last error: RuntimeError: poll bug",
        "  journal: journal: database is locked (since 2026-12-01 08:00:00 UTC)",
    ]


def test_status_calls_a_report_older_than_three_intervals_stale(workspace: Workspace) -> None:
    old = datetime.now(UTC) - timedelta(seconds=STALE_AFTER + 30)
    write_health(snapshot(old, trouble=True), data_dir(workspace))
    output = status(workspace)
    assert f"Gateway: unknown: last report {old:%Y-%m-%d %H:%M:%S} UTC" in output
    assert "(gateway killed or hung?)" in output
    assert "poll bug" not in output  # old news is not shown as current trouble
    assert flow_health(output) == "-"


def test_status_says_a_gateway_that_stopped_is_not_running(workspace: Workspace) -> None:
    at = datetime.now(UTC) - timedelta(hours=3)
    write_health(snapshot(at, state="stopped"), data_dir(workspace))
    assert f"Gateway: not running (stopped at {at:%Y-%m-%d %H:%M:%S} UTC)" in status(workspace)


def test_status_says_when_no_gateway_ever_ran(workspace: Workspace) -> None:
    assert "Gateway: unknown (no gateway has run here yet)" in status(workspace)


def test_status_json_carries_the_health(workspace: Workspace) -> None:
    write_health(snapshot(datetime.now(UTC), trouble=True), data_dir(workspace))
    data = json.loads(status(workspace, "--json"))
    assert data["flows"][0]["health"] == "poller restarting"
    assert "health_problems" not in data  # the snapshot holds them
    health = data["health"]
    assert health["stale"] is False
    assert health["summary"] == "running, unhealthy (gw:42)"
    assert health["snapshot"]["healthy"] is False
    assert health["snapshot"]["loops"][0]["state"] == "restarting"
    assert health["snapshot"]["conditions"][0]["name"] == "journal"


def test_a_damaged_health_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "health.json").write_text("{not json", encoding="utf-8")
    published = read_health(tmp_path, now=datetime.now(UTC))
    assert published.snapshot is None
    assert published.summary.startswith(f"unknown ({tmp_path / 'health.json'} cannot be read:")


def test_each_flow_and_export_has_the_health_the_running_gateway_published(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    loops = (
        LoopHealth("poller webshop/orders", "poller", "webshop/orders", "running", SINCE),
        LoopHealth("watcher webshop/orders", "watcher", "webshop/orders", "running", SINCE),
        LoopHealth("poller supplier/invoices", "poller", "supplier/invoices", "running", SINCE),
        LoopHealth("exporter", "exporter", None, "restarting", SINCE, restarts=1),
    )
    down = Condition("channel supplier/invoices", "cannot connect", SINCE, "supplier/invoices")
    published = read_health_of(HealthSnapshot(now, "gw:42", "running", loops, (down,)), tmp_path)

    health = published.by_flow(exports=["webshop/articles"])

    assert health == {
        "": "running, unhealthy (gw:42)",
        "webshop/orders": "ok",
        "supplier/invoices": "channel trouble",
        "webshop/articles": "exporter restarting",
    }
    assert published.problems() == [
        "loop exporter: restarting since 2026-12-01 08:00:00 UTC, 1 restarts",
        "channel supplier/invoices: cannot connect (since 2026-12-01 08:00:00 UTC)",
    ]


def test_no_flow_health_is_told_from_a_gateway_that_stopped(tmp_path: Path) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    published = read_health_of(snapshot(at, state="stopped", trouble=True), tmp_path)
    assert published.by_flow(exports=["webshop/articles"]) == {"": published.summary}
    assert published.problems() == []


def read_health_of(snap: HealthSnapshot, folder: Path) -> PublishedHealth:
    """``snap`` written as health.json, then read back as ``edigw status`` reads it."""
    write_health(snap, folder)
    return read_health(folder, now=datetime.now(UTC))


def test_status_on_a_journal_a_newer_edigw_migrated_is_a_one_line_error(
    workspace: Workspace,
) -> None:
    journal_url = workspace.load().journal_url
    Journal.open(journal_url).close()
    engine = create_engine(journal_url)
    with engine.begin() as conn:  # what a newer edigw's migration leaves
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    engine.dispose()

    result = edigw(workspace, "status", columns=WIDE)

    assert result.exit_code == 1
    journal = workspace.root / "data" / "journal.sqlite"
    assert result.output == (
        f"Error: the journal at {journal} was migrated by a newer edigw (revision 0099); "
        "upgrade edigw\n"
    )
