"""Export flows inside the running gateway: when each runs, and re-delivery of a run's file.

The export itself (query, render, archive, deliver, journal, high-water mark) lives in
``edigw.outbound.export``; this module only decides *when* and wires the live parts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edigw.config import OutboundFlow
from edigw.errors import ConfigError, EdigwError
from edigw.outbound.export import ExportResult, replay_export_run, run_export
from edigw.outbound.schedule import next_run
from edigw.pipeline.assembly import Parts, outbound_channel
from edigw.pipeline.runtime import Signals, utc_now

log = logging.getLogger("edigw.exports")

SCHEDULER_TICK = 1.0


def first_run_at(parts: Parts, flow: OutboundFlow, *, now: datetime) -> datetime:
    """A flow that never ran runs now; otherwise one schedule step after its last run."""
    last = parts.journal.export_runs(partner=flow.partner, flow=flow.name, limit=1)
    if not last:
        return now
    return max(now, next_run(flow.schedule, last[0].started_at, timezone=flow.timezone))


def export_now(
    parts: Parts,
    flow: OutboundFlow,
    *,
    now: datetime,
    full: bool = False,
    dry_run: bool = False,
    to_dir: Path | None = None,
) -> ExportResult:
    """Run one export of ``flow`` with the gateway's client, journal and archive."""
    channel = None if (dry_run or to_dir is not None) else outbound_channel(flow, sftp=parts.sftp)
    try:
        return run_export(
            flow,
            client=parts.client,
            journal=parts.journal,
            archive=parts.archive,
            channel=channel,
            now=now,
            full=full,
            dry_run=dry_run,
            to_dir=to_dir,
            work_dir=Path(parts.config.data_dir) / "work",
        )
    finally:
        if channel is not None:
            channel.close()


def export_scheduler_loop(
    parts: Parts, signals: Signals, *, clock: Callable[[], datetime] = utc_now
) -> None:
    """Run every export flow on its schedule until the gateway stops."""
    flows = parts.config.outbound_flows()
    if not flows:
        return
    due = {flow.id: first_run_at(parts, flow, now=clock()) for flow in flows}
    while not signals.stop.is_set():
        for flow in flows:
            if signals.stop.is_set():
                break
            now = clock()
            if due[flow.id] > now:
                continue
            try:
                result = export_now(parts, flow, now=now)
                log.info(
                    "export %s: %s %s, %d records, %d calls",
                    flow.id,
                    result.show_id,
                    result.state,
                    result.records,
                    result.calls,
                )
            except EdigwError as exc:
                log.error("export %s failed: %s", flow.id, exc)
            due[flow.id] = next_run(flow.schedule, now, timezone=flow.timezone)
        signals.stop.wait(SCHEDULER_TICK)


def replay_export(parts: Parts, run_id: int) -> str:
    """Deliver an export run's archived file again to its flow's channel."""
    run = parts.journal.export_run(run_id)
    flow = parts.config.flow(f"{run.partner}/{run.flow}")
    if not isinstance(flow, OutboundFlow):
        msg = f"R-{run_id}: flow {run.partner}/{run.flow} is no longer an export flow"
        raise ConfigError(msg)
    channel = outbound_channel(flow, sftp=parts.sftp)
    try:
        delivered = replay_export_run(
            run_id, journal=parts.journal, archive=parts.archive, channel=channel, now=utc_now()
        )
    finally:
        channel.close()
    return f"delivered again as {delivered.name} ({delivered.size} bytes)"
