"""Exports inside the running gateway: each flow runs on its schedule."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from edigw.pipeline.assembly import open_parts
from edigw.pipeline.exports import export_scheduler_loop, first_run_at
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import ROOT, wait_until, write_workspace


def articles_export(outbox: str) -> dict[str, Any]:
    return {
        "direction": "outbound",
        "query": {"resource": "articles.list"},
        "template": str(ROOT / "templates" / "webshop-articles.csv.j2"),
        "filename": "{partner}_{flow}_{seq:05d}.csv",
        "channel": {"type": "local", "path": outbox},
        "schedule": {"every": 3600},
    }


def test_a_flow_that_never_ran_runs_at_once_then_one_step_after_its_last_run(
    tmp_path: Path, sandbox: Any
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={"webshop": {"articles": articles_export("outbox")}},
    )
    config = ws.load()
    flow = config.flow("webshop/articles")
    outbox = ws.root / "outbox"
    with open_parts(config) as parts:
        now = utc_now()
        assert first_run_at(parts, flow, now=now) == now
        signals = Signals()
        thread = threading.Thread(target=export_scheduler_loop, args=(parts, signals))
        thread.start()
        try:
            wait_until(lambda: bool(parts.journal.export_runs(limit=5)), what="the first run")
        finally:
            signals.stop.set()
            thread.join(30)
        runs = parts.journal.export_runs(limit=5)
        assert [r.state for r in runs] == ["delivered"]
        assert [p.name for p in outbox.iterdir()] == ["webshop_articles_00001.csv"]
        later = utc_now()
        assert first_run_at(parts, flow, now=later) >= runs[0].started_at + timedelta(seconds=3599)


def test_a_flow_with_a_delivery_a_killed_node_left_unfinished_runs_at_once(
    tmp_path: Path, sandbox: Any
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={"webshop": {"articles": articles_export("outbox")}},
    )
    config = ws.load()
    flow = config.flow("webshop/articles")
    with open_parts(config) as parts:
        now = utc_now()
        done = parts.journal.start_export_run(
            partner="webshop", flow="articles", mode="delta", window_from=None, now=now
        )
        parts.journal.finish_export_run(done, state="empty", now=now)
        later = now + timedelta(minutes=5)
        assert first_run_at(parts, flow, now=later) > later  # hourly: not due yet
        killed = parts.journal.start_export_run(
            partner="webshop", flow="articles", mode="delta", window_from=None, now=later
        )
        parts.journal.record_export_delivery(
            killed,
            file_name="webshop_articles_00001.csv",
            sha256="0" * 64,
            size=10,
            archive_path=None,
            records=1,
            calls=1,
            mark=None,
            now=later,
        )
        assert first_run_at(parts, flow, now=later) == later
