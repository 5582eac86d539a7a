"""Export flows inside the running gateway: when each runs, and re-delivery of a run's file.

The export itself (query, render, archive, deliver, journal, high-water mark) lives in
``edigw.outbound.export``; this module only decides *when* and wires the live parts.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edigw.config import OutboundFlow
from edigw.errors import ConfigError, EdigwError, JournalError
from edigw.journal.archive import ArchiveMissingCopy
from edigw.journal.leases import HeldLease
from edigw.outbound.delivery import replay_export_run
from edigw.outbound.export import run_export
from edigw.outbound.fence import LeadershipLost, LeaseFence
from edigw.outbound.flow import ExportResult
from edigw.outbound.schedule import next_run
from edigw.pipeline.assembly import Parts, outbound_channel
from edigw.pipeline.leadership import Leadership, SharedLeadership
from edigw.pipeline.signals import Signals, utc_now

log = logging.getLogger("edigw.exports")

SCHEDULER_TICK = 1.0


def first_run_at(parts: Parts, flow: OutboundFlow, *, now: datetime) -> datetime:
    """A flow that never ran runs now, and so does one with a delivery a killed node left
    unfinished (the run completes it first, ``edigw.outbound.pending``); otherwise one
    schedule step after its last run."""
    last = parts.journal.export_runs(partner=flow.partner, flow=flow.name, limit=1)
    if not last or parts.journal.pending_export_deliveries(flow.partner, flow.name):
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
    fence: Callable[[], bool] | None = None,
) -> ExportResult:
    """Run one export of ``flow`` with the gateway's client, journal and archive (``fence``:
    whether this node still leads the flow, asked before the file is delivered)."""
    channel = None if (dry_run or to_dir is not None) else outbound_channel(flow, sftp=parts.sftp)
    pinned = parts.templates.get(flow.id)
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
            template=pinned.template if pinned is not None else None,
            fence=fence,
        )
    finally:
        if channel is not None:
            channel.close()


def still_leads(leader: Leadership, flow: str, epoch: int) -> bool:
    """Whether this node leads ``flow`` still under the lease ``epoch`` its run began with,
    in its own view."""
    return leader.epoch(flow) == epoch


def export_fence(leader: Leadership, flow: str, epoch: int) -> Callable[[], bool]:
    """The fence of a run of ``flow`` begun under ``epoch`` (``edigw.outbound.fence``): this
    node's own view and, among several nodes, the flow's lease in the journal, which the
    run's delivery record is conditional on (a node paused past its lease still believes
    it leads)."""
    own_view = functools.partial(still_leads, leader, flow, epoch)
    if isinstance(leader, SharedLeadership):
        return LeaseFence(own_view, HeldLease(flow, leader.node, epoch))
    return own_view


def export_scheduler_loop(
    parts: Parts,
    signals: Signals,
    *,
    clock: Callable[[], datetime] = utc_now,
    retired: threading.Event | None = None,
) -> None:
    """Run every export flow this node leads on its schedule until the gateway stops (or
    ``retired`` is set: ``edigw.yaml`` was reloaded with other exports, and a new scheduler
    takes over).

    When this node comes to lead a flow (at start, or taking it over from another node),
    the flow's next run is reckoned from its last run in the journal, whichever node ran it.
    """
    flows = parts.config.outbound_flows()
    if not flows:
        return
    retired = retired or threading.Event()
    leader = signals.leader
    due: dict[str, datetime] = {}
    epochs: dict[str, int | None] = {}
    while not (signals.stop.is_set() or retired.is_set()):
        for flow in flows:
            if signals.stop.is_set() or retired.is_set():
                break
            epoch = leader.epoch(flow.id)
            if epoch is None:  # another node runs this export
                continue
            now = clock()
            if epochs.get(flow.id) != epoch or flow.id not in due:
                epochs[flow.id] = epoch
                try:
                    due[flow.id] = first_run_at(parts, flow, now=now)
                except EdigwError as exc:
                    log.error("export %s: %s", flow.id, exc, extra={"flow": flow.id})
                    continue
            if due[flow.id] > now:
                continue
            try:
                result = export_now(
                    parts,
                    flow,
                    now=now,
                    fence=export_fence(leader, flow.id, epoch),
                )
                log.info(
                    "export %s: %s %s, %d records, %d calls",
                    flow.id,
                    result.show_id,
                    result.state,
                    result.records,
                    result.calls,
                    extra={"flow": flow.id},
                )
            except LeadershipLost as exc:
                log.warning("%s", exc, extra={"flow": flow.id})
            except EdigwError as exc:
                log.error("export %s failed: %s", flow.id, exc, extra={"flow": flow.id})
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
    except ArchiveMissingCopy as exc:
        msg = f"{run.file_name}: {exc}"
        raise JournalError(msg) from exc
    finally:
        channel.close()
    return f"delivered again as {delivered.name} ({delivered.size} bytes)"
