"""The operator's use cases, one function each: run, process, status, show, replay.

The CLI parses options and renders; these functions open the parts a use case needs,
do the work and return plain data.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edigw.config import GatewayConfig, InboundFlow
from edigw.errors import ConfigError, EdigwError
from edigw.journal import FileState, PurgeCounts
from edigw.journal.store import DocumentRow, EventRow, ExportRunRow, FileRow, Journal
from edigw.pipeline.assembly import Parts, archive_of, open_parts
from edigw.pipeline.inbound import FINAL_FILE_STATES, ingest
from edigw.pipeline.replay import ReplayPlan, replay_file
from edigw.pipeline.runtime import Gateway, Signals, send_due, utc_now

log = logging.getLogger("edigw.service")

USAGE_FILE = "usage.json"
USAGE_EVERY = 5.0
_ID = re.compile(r"^\s*([FDR])-?(\d+)\s*$", re.IGNORECASE)


def parse_id(text: str) -> tuple[str, int]:
    """``F-12`` → ``("F", 12)``; files F, documents D, export runs R."""
    match = _ID.match(text)
    if not match:
        msg = f"{text!r} is not an id: use F-<n> (file), D-<n> (document) or R-<n> (export run)"
        raise EdigwError(msg)
    return match.group(1).upper(), int(match.group(2))


def inbound_flow(config: GatewayConfig, flow_id: str) -> InboundFlow:
    try:
        flow = config.flow(flow_id)
    except (KeyError, EdigwError) as exc:
        known = ", ".join(f.id for f in config.inbound_flows()) or "none"
        msg = f"unknown flow {flow_id!r} (inbound flows: {known})"
        raise ConfigError(msg) from exc
    if not isinstance(flow, InboundFlow):
        msg = f"flow {flow_id!r} is an export, not an inbound flow"
        raise ConfigError(msg)
    return flow


# --------------------------------------------------------------------------- run


def serve(
    config: GatewayConfig,
    *,
    senders: int,
    stop: threading.Event | None = None,
    extra_loops: Sequence[Callable[[Parts, Signals], None]] = (),
) -> None:
    """Run the gateway until SIGTERM/SIGINT (or ``stop`` is set)."""
    with open_parts(config) as parts:
        loops: list[Callable[[Signals], None]] = [
            lambda signals: _usage_loop(parts, signals),
            *(_bind(loop, parts) for loop in extra_loops),
        ]
        from edigw.pipeline.exports import export_scheduler_loop

        loops.append(lambda signals: export_scheduler_loop(parts, signals))
        gateway = Gateway(parts, senders=senders, extra_loops=loops)
        _on_signals(gateway.stop)
        gateway.start()
        log.info(
            "edigw running: %d inbound flows, %d exports, %d senders",
            len(parts.inbound),
            len(config.outbound_flows()),
            senders,
        )
        while not gateway.signals.stop.wait(0.5):
            if stop is not None and stop.is_set():
                gateway.stop()
        gateway.join(timeout=60)
        log.info("edigw stopped")


def _bind(loop: Callable[[Parts, Signals], None], parts: Parts) -> Callable[[Signals], None]:
    return lambda signals: loop(parts, signals)


def _on_signals(stop: Callable[[], None]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def _usage_loop(parts: Parts, signals: Signals) -> None:
    """Publish the client's call usage so ``edigw status`` (another process) can show it."""
    target = Path(parts.config.data_dir) / USAGE_FILE
    while not signals.stop.wait(USAGE_EVERY):
        write_usage(parts, target)
    write_usage(parts, target)


def write_usage(parts: Parts, target: Path) -> None:
    usage = parts.client.usage
    data = {
        "node": parts.node,
        "at": utc_now().isoformat(),
        "calls": usage.calls,
        "last_minute": usage.last_minute,
        "limit_per_minute": usage.limit_per_minute,
        "throttled": usage.throttled,
        "by_operation": dict(usage.by_operation),
    }
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(target)


# --------------------------------------------------------------------------- process


@dataclass(slots=True)
class FileStory:
    """Everything known about one file, for ``edigw show`` and ``edigw process``."""

    file: FileRow
    documents: list[DocumentRow]
    events: list[EventRow]
    with_payloads: bool = False


def process_file(
    config: GatewayConfig,
    flow_id: str,
    path: Path,
    *,
    clock: Callable[[], datetime] = utc_now,
    max_wait: float = 30.0,
) -> FileStory:
    """Take one file through a flow now and send its documents, waiting for the outcome.

    Documents that hit a temporary error stay in retry-wait; ``edigw run`` retries them.
    """
    flow = inbound_flow(config, flow_id)
    with open_parts(config, with_channels=False, flows={flow.id: flow}) as parts:
        runtime = parts.inbound[flow.id]
        ingested = ingest(
            path,
            original_name=path.name,
            flow=runtime.context,
            journal=parts.journal,
            archive=parts.archive,
            now=clock(),
            source_path=str(path.resolve()),
        )
        drain_file(parts, ingested.file_id, clock=clock, max_wait=max_wait)
        if parts.journal.file(ingested.file_id).state in FINAL_FILE_STATES:
            # The command leaves its file where it is: say so, as a channel would.
            parts.journal.record_channel_action(
                ingested.file_id, action="left", ok=True, error=None, now=clock()
            )
        return file_story_from(parts.journal, ingested.file_id)


def drain_file(
    parts: Parts, file_id: int, *, clock: Callable[[], datetime], max_wait: float
) -> None:
    """Send a file's due documents one by one until none is due (or ``max_wait`` passes)."""
    signals = Signals()
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        sent = send_due(parts, signals, clock=clock, file_id=file_id)
        if sent is None:
            break
        log.info("D-%d -> %s %s", sent.document_id, sent.state, sent.detail)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class FlowStatus:
    flow: str
    files: int
    done: int
    partially_failed: int
    failed: int
    in_progress: int
    documents_waiting: int
    documents_failed: int


@dataclass(slots=True)
class GatewayStatus:
    flows: list[FlowStatus]
    next_retry_at: datetime | None
    calls_last_minute: int | str
    calls_per_minute: int
    last_errors: list[str] = field(default_factory=list)
    channel_failures: list[str] = field(default_factory=list)


def gateway_status(config: GatewayConfig) -> GatewayStatus:
    journal = Journal.open(config.journal_url)
    try:
        rows = journal.status_counts()
        flows = []
        errors = []
        for row in rows:
            f = row.files
            flows.append(
                FlowStatus(
                    flow=f"{row.partner}/{row.flow}",
                    files=sum(f.values()),
                    done=f.get("done", 0) + f.get("skipped_duplicate", 0),
                    partially_failed=f.get("partially_failed", 0),
                    failed=f.get("failed", 0),
                    in_progress=row.files_waiting,
                    documents_waiting=row.documents_waiting,
                    documents_failed=row.documents.get("failed", 0),
                )
            )
            for e in row.last_errors:
                where = f" at {e.location}" if e.location else ""
                first_line = e.message.splitlines()[0] if e.message else ""
                errors.append(f"{e.at:%Y-%m-%d %H:%M} {e.ref}{where}: {first_line}")
        failures = [
            f"F-{a.file_id} {a.at:%Y-%m-%d %H:%M} {a.action}: {a.error}"
            for a in journal.channel_actions(failed_only=True, limit=20)
        ]
        return GatewayStatus(
            flows=flows,
            next_retry_at=journal.next_retry_at(),
            calls_last_minute=_calls_last_minute(Path(config.data_dir) / USAGE_FILE),
            calls_per_minute=config.ecolix.calls_per_minute,
            last_errors=sorted(errors, reverse=True)[:10],
            channel_failures=failures,
        )
    finally:
        journal.close()


def _calls_last_minute(path: Path) -> int | str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown (no gateway running)"
    at = datetime.fromisoformat(data["at"])
    if (utc_now() - at).total_seconds() > 2 * USAGE_EVERY + 5:
        return f"unknown (last report {at:%H:%M:%S} UTC, gateway stopped?)"
    return int(data["last_minute"])


# --------------------------------------------------------------------------- show


def file_story_from(journal: Journal, file_id: int, *, with_payloads: bool = False) -> FileStory:
    return FileStory(
        file=journal.file(file_id),
        documents=journal.documents_of(file_id),
        events=journal.events_of(file_id),
        with_payloads=with_payloads,
    )


def file_story(config: GatewayConfig, kind: str, number: int) -> FileStory:
    journal = Journal.open(config.journal_url)
    try:
        if kind == "D":
            doc = journal.document(number)
            story = file_story_from(journal, doc.file_id, with_payloads=True)
            story.documents = [d for d in story.documents if d.id == number]
            return story
        return file_story_from(journal, number, with_payloads=True)
    finally:
        journal.close()


def export_story(config: GatewayConfig, number: int) -> ExportRunRow:
    journal = Journal.open(config.journal_url)
    try:
        return journal.export_run(number)
    finally:
        journal.close()


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayItem:
    kind: str  # "F" (file, optionally one document) or "R" (export run)
    number: int
    document: int | None = None


@dataclass(slots=True)
class ReplayResult:
    item: ReplayItem
    plan: ReplayPlan | None = None
    outcome: str = ""
    error: str = ""

    def lines(self) -> list[str]:
        if self.item.kind == "R":
            return [f"R-{self.item.number}: {self.error or self.outcome}"]
        plan = self.plan
        head = f"F-{self.item.number}: {self.error or self.outcome}"
        if plan is None:
            return [head]
        lines = [head]
        lines += [f"  already done  {x}" for x in plan.already_done]
        lines += [f"  sent again    {x}" for x in plan.requeued]
        lines += [f"  new           {x}" for x in plan.added]
        lines += [f"  still failing {x}" for x in plan.still_failing]
        return lines


def select_replay(
    config: GatewayConfig,
    ids: Sequence[str],
    *,
    failed: bool,
    since: datetime | None,
    flow: str | None,
) -> list[ReplayItem]:
    """Turn ``edigw replay`` arguments into the files (and export runs) to replay."""
    items: list[ReplayItem] = []
    journal = Journal.open(config.journal_url)
    try:
        for text in ids:
            kind, number = parse_id(text)
            if kind == "D":
                items.append(ReplayItem("F", journal.document(number).file_id, number))
            else:
                items.append(ReplayItem(kind, number))
        if failed or since is not None:
            partner, name = flow.split("/", 1) if flow else (None, None)
            states = ("failed", "partially_failed") if failed else (None,)
            for state in states:
                for row in journal.files(
                    partner=partner, flow=name, state=state, since=since, limit=100_000
                ):
                    items.append(ReplayItem("F", row.id))
    finally:
        journal.close()
    return list(dict.fromkeys(sorted(items, key=lambda i: (i.kind, i.number, i.document or 0))))


def replay_items(
    config: GatewayConfig,
    items: Sequence[ReplayItem],
    *,
    dry_run: bool,
    clock: Callable[[], datetime] = utc_now,
) -> Iterator[ReplayResult]:
    """Replay each item in turn, sending what was requeued; yields one result per item."""
    with open_parts(config, with_channels=False) as parts:
        for item in items:
            try:
                yield _replay_one(parts, item, dry_run=dry_run, clock=clock)
            except EdigwError as exc:
                yield ReplayResult(item, error=str(exc))


def _replay_one(
    parts: Parts, item: ReplayItem, *, dry_run: bool, clock: Callable[[], datetime]
) -> ReplayResult:
    if item.kind == "R":
        from edigw.pipeline.exports import replay_export

        if dry_run:
            run = parts.journal.export_run(item.number)
            return ReplayResult(item, outcome=f"would deliver {run.file_name} again")
        return ReplayResult(item, outcome=replay_export(parts, item.number))
    row = parts.journal.file(item.number)
    flow_id = f"{row.partner}/{row.flow}"
    runtime = parts.inbound.get(flow_id)
    if runtime is None:
        return ReplayResult(item, error=f"flow {flow_id} is no longer configured")
    plan = replay_file(
        row.id,
        flow=runtime.context,
        journal=parts.journal,
        archive=parts.archive,
        now=clock(),
        only_document=item.document,
        dry_run=dry_run,
    )
    if plan.error:
        return ReplayResult(item, plan, error=plan.error)
    if dry_run:
        return ReplayResult(item, plan, outcome="dry run, nothing changed")
    drain_file(parts, row.id, clock=clock, max_wait=60.0)
    state = parts.journal.file(row.id).state
    outcome = state if state in FINAL_FILE_STATES else f"{state} (documents waiting for a retry)"
    return ReplayResult(item, plan, outcome=outcome)


# --------------------------------------------------------------------------- retention


#: A purge leaves archive copies stored less than this long ago (seconds): a file is
#: archived a moment before the journal hears of it.
ARCHIVE_GRACE = 3600.0
#: What a purge forgets unless told to take failed files too.
SETTLED_STATES = (str(FileState.DONE), str(FileState.SKIPPED_DUPLICATE))


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What ``purge_history`` removed, or would remove (``dry_run``: the journal counts are
    those of files and export runs only)."""

    before: datetime
    dry_run: bool
    journal: PurgeCounts
    archive_copies: int
    archive_bytes: int


def purge_history(
    config: GatewayConfig, *, before: datetime, include_failed: bool, dry_run: bool
) -> PurgeReport:
    """Forget finished files received before ``before`` (failed ones only with
    ``include_failed``) and export runs started before it, then delete the archive copies
    the journal no longer points at.

    The journal goes first: an interrupted purge leaves copies nothing points at (the next
    purge removes them), never a journal entry without its original.
    """
    journal = Journal.open(config.journal_url)
    try:
        states = FINAL_FILE_STATES if include_failed else SETTLED_STATES
        file_ids = journal.purgeable_files(before=before, states=states)
        run_ids = journal.old_export_runs(before=before)
        keep = journal.contents_in_use(except_files=file_ids, except_runs=run_ids)
        if dry_run:
            counts = PurgeCounts(files=len(file_ids), export_runs=len(run_ids))
        else:
            counts = journal.purge(file_ids=file_ids, run_ids=run_ids)
        copies, freed = archive_of(config).remove_unreferenced(
            keep, untouched_for=ARCHIVE_GRACE, now=time.time(), dry_run=dry_run
        )
    finally:
        journal.close()
    return PurgeReport(before, dry_run, counts, copies, freed)
