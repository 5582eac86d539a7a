"""An export that writes one file per record (``split: record``): one message per change.

Some partners want a message per business event, not a batch: the approved platform of the
French e-invoicing reform takes one lifecycle status (CDAR) per invoice status change. Such a
flow sets ``split: record``; its file-name pattern may name the record's fields
(``{record[number]}``), and its template sees the one record as ``record`` (and as the single
item of ``records``, so a batch template works unchanged).

Each file is its own journal run, in the steps of a batch run (start run, render, archive,
record the delivery, deliver, finish the run and move the mark in one transaction), record
after record; a node killed in between leaves the delivery for the next run to complete
(``edigw.outbound.pending``). Why the mark may advance after
each file: Ecolix lists are ordered by (``updated_at``, id) (the contract says so), so
when file *k* is delivered every record before it was delivered too; the mark of the
records so far (their greatest ``updated_at`` and the fingerprints at it) is exact. A
failure at record *k* leaves the mark after record *k - 1*: the next run starts with record
*k*, and a record already delivered is never sent twice, nor one skipped.

A run with no record journals one ``empty`` run (the schedule reads the last run), and
writes no file whatever ``write_empty`` says: a message per record has no empty form.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from edigw.channels.base import Delivered, DeliveredIncompletely
from edigw.errors import EdigwError
from edigw.outbound.delivery import deliver_once, owes_done_file
from edigw.outbound.export import _place
from edigw.outbound.fence import record_delivery
from edigw.outbound.flow import (
    PAGE_SIZE,
    ArchiveLike,
    Channel,
    Client,
    ExportFlow,
    ExportResult,
    Mode,
)
from edigw.outbound.lookups import Lookups
from edigw.outbound.marks import DeltaTracker, Mark, MarkStore, _as_row
from edigw.outbound.naming import file_name
from edigw.outbound.query import plan_query
from edigw.outbound.render import render_to_file


@dataclass(frozen=True, slots=True)
class Run:
    """What :func:`~edigw.outbound.export.run_export` settled before handing over."""

    spec: ExportFlow
    template: jinja2.Template
    mode: Mode
    mark: Mark | None
    marks: MarkStore
    now: datetime
    local_now: datetime
    work: Path
    #: whether this node still leads the flow (``edigw.outbound.fence``)
    fence: Callable[[], bool] | None = None


@dataclass(slots=True)
class _Tally:
    """Running totals of a split run, and the calls not yet booked on a journal run."""

    records: int = 0
    calls: int = 0
    booked: int = 0
    files: list[str] = field(default_factory=list)
    run_id: int | None = None
    last_path: Path | None = None
    delivered: Delivered | None = None
    archived: tuple[str, Path] | None = None

    def unbooked(self, calls_now: int) -> int:
        """Calls since the last journal run, which the next one books."""
        self.calls = calls_now
        fresh, self.booked = calls_now - self.booked, calls_now
        return fresh


def run_per_record(
    run: Run,
    *,
    client: Client,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel | None,
    dry_run: bool,
    to_dir: Path | None,
) -> ExportResult:
    """Export every record of the window as its own file; see the module docstring."""
    spec = run.spec
    window_from = run.mark.at if run.mark else None
    query = plan_query(spec.resource, spec.filters)
    listing = client.iter_list(
        spec.resource, updated_since=window_from, page_size=PAGE_SIZE, **query.params
    )
    tracker = DeltaTracker(run.mark, resource=spec.resource)
    lookups = Lookups(client)
    context = {
        "lookup": lookups,
        "now": run.local_now,
        "partner": spec.partner,
        "flow": spec.flow,
        "mode": run.mode,
        "window_from": window_from,
        "settings": dict(spec.settings),
    }
    tally = _Tally()

    def calls() -> int:
        return int(getattr(listing, "calls", 0)) + lookups.calls

    preview = None
    if dry_run and to_dir is None:
        fd, name = tempfile.mkstemp(prefix="edigw-dry-run-", suffix=".out", dir=run.work)
        os.close(fd)
        preview = Path(name)
    mark_before = run.mark
    for record in query.keep(tracker.filter(listing)):
        tally.records += 1
        if dry_run:
            name = _name(spec, run.local_now, tally.records, record)
            dest = to_dir / name if to_dir else preview
            assert dest is not None  # a dry run has a folder or a preview file
            _render(run, record, context, dest, append=to_dir is None)
            tally.files.append(name)
            tally.last_path = dest
            continue
        if channel is None and to_dir is None:
            msg = f"{spec.partner}/{spec.flow}: no channel to deliver to"
            raise EdigwError(msg)
        new_mark = tracker.next_mark()  # the record has passed the tracker
        _one_file(
            run,
            record,
            context,
            tally,
            journal=journal,
            archive=archive,
            channel=channel,
            to_dir=to_dir,
            window_from=mark_before.at if mark_before else None,
            mark=new_mark,
            calls=calls,
        )
        if to_dir is None and new_mark is not None:
            mark_before = new_mark
    tally.calls = calls()
    reached = tracker.next_mark()
    common: dict[str, Any] = {
        "mode": run.mode,
        "records": tally.records,
        "calls": tally.calls,
        "window_from": window_from,
        "window_to": reached.at if reached else window_from,
        "skipped": tracker.skipped,
        "left_out": query.left_out,
        "files": tuple(tally.files),
    }
    if tally.records == 0:
        if preview is not None:
            preview.unlink(missing_ok=True)
        run_id = None
        if not dry_run:
            run_id = journal.start_export_run(
                partner=spec.partner,
                flow=spec.flow,
                mode=run.mode,
                window_from=window_from,
                now=run.now,
            )
            journal.finish_export_run(
                run_id, state="empty", now=run.now, window_to=window_from, calls=tally.calls
            )
        return ExportResult(state="empty", run_id=run_id, **common)
    last = tally.files[-1]
    if dry_run:
        return ExportResult(state="dry-run", file_name=last, path=tally.last_path, **common)
    sha256, archive_path = tally.archived or (None, None)
    return ExportResult(
        state="delivered",
        run_id=tally.run_id,
        file_name=tally.delivered.name if tally.delivered else last,
        path=tally.last_path,
        sha256=sha256,
        archive_path=archive_path,
        delivered=tally.delivered,
        **common,
    )


def _name(spec: ExportFlow, local_now: datetime, seq: int, record: dict[str, Any]) -> str:
    return file_name(
        spec.filename,
        partner=spec.partner,
        flow=spec.flow,
        now=local_now,
        seq=seq,
        record=record,
    )


def _render(
    run: Run, record: dict[str, Any], context: dict[str, Any], dest: Path, *, append: bool
) -> None:
    """Render the one record into ``dest`` (or after what ``dest`` holds: a dry run's preview)."""
    spec = run.spec
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = dest
    if append:
        fd, name = tempfile.mkstemp(prefix=".edigw-export-", suffix=".tmp", dir=run.work)
        os.close(fd)
        target = Path(name)
    try:
        render_to_file(
            run.template,
            iter([record]),
            target,
            encoding=spec.encoding,
            context={**context, "record": record},
            out_name=f"{spec.partner}/{spec.flow}",
            xsd=spec.xsd,
        )
        if append:
            with dest.open("ab") as out:
                out.write(target.read_bytes())
    finally:
        if append:
            target.unlink(missing_ok=True)


def _one_file(
    run: Run,
    record: dict[str, Any],
    context: dict[str, Any],
    tally: _Tally,
    *,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel | None,
    to_dir: Path | None,
    window_from: datetime | None,
    mark: Mark | None,
    calls: Callable[[], int],
) -> None:
    """Render, archive, deliver and journal one record's file, as one export run; delivered
    to the partner, its run is finished with the flow's mark moved to ``mark`` (the records
    so far), the delivery being recorded first (see ``edigw.outbound.pending``)."""
    spec = run.spec
    run_id = journal.start_export_run(
        partner=spec.partner, flow=spec.flow, mode=run.mode, window_from=window_from, now=run.now
    )
    fd, temp_name = tempfile.mkstemp(prefix=".edigw-export-", suffix=".tmp", dir=run.work)
    os.close(fd)
    temp = Path(temp_name)
    recorded = False
    delivered: Delivered | None = None
    trouble: DeliveredIncompletely | None = None
    booked: int | None = None
    try:
        _render(run, record, context, temp, append=False)
        seq = journal.next_sequence(spec.partner, spec.flow)
        name = _name(spec, run.local_now, seq, record)
        stored = archive.store(temp)
        booked = tally.unbooked(calls())
        if to_dir is not None:
            tally.last_path = _place(temp, to_dir, name)
        else:
            record_delivery(
                journal,
                run.fence,
                spec,
                run_id,
                file_name=name,
                sha256=stored.sha256,
                size=temp.stat().st_size,
                archive_path=stored.location,
                records=1,
                calls=booked,
                mark=_as_row(mark),
                now=run.now,
            )
            recorded = True
            delivered, trouble = deliver_once(channel, temp, name)  # type: ignore[arg-type]
        at = _updated_at(record)
        journal.finish_export_run(
            run_id,
            state="delivered",
            now=run.now,
            window_to=at,
            records=1,
            calls=booked,
            file_name=delivered.name if delivered else name,
            sha256=stored.sha256,
            archive_path=stored.location,
            error=str(trouble) if trouble else None,
            mark=_as_row(mark) if delivered is not None else None,
            done_file_owed=owes_done_file(trouble),
        )
        tally.run_id = run_id
        tally.delivered = delivered
        tally.archived = (stored.sha256, Path(stored.path))
        tally.files.append(delivered.name if delivered else name)
        if trouble is not None:
            raise trouble  # delivered and journalled so; what failed after is still told
    except BaseException as exc:
        if recorded and (delivered is not None or not isinstance(exc, EdigwError)):
            raise  # delivered, or maybe: the next run completes it (edigw.outbound.pending)
        with contextlib.suppress(EdigwError):
            journal.finish_export_run(
                run_id,
                state="failed",
                now=run.now,
                window_to=window_from,
                calls=booked if booked is not None else tally.unbooked(calls()),
                error=str(exc) or type(exc).__name__,
            )
        raise
    finally:
        temp.unlink(missing_ok=True)


def _updated_at(record: dict[str, Any]) -> datetime | None:
    from edigw.outbound.filters import parse_datetime

    value = parse_datetime(record.get("updated_at"))
    return value if isinstance(value, datetime) else None
