"""One export run: query Ecolix → render → archive → deliver → journal → advance the mark.

Order of the steps, and why::

    start run (journal)          the run is visible, with its window, before anything happens
    query + render (streaming)   Ecolix pages are pulled lazily by the template, into a temp file
    archive                      the exact bytes are kept (sha256) before they leave, for replay
    record delivery (journal)    the file (name, sha256, size) and the mark it moves to, first
    deliver (channel)            temp name + rename on the partner's side
    finish run + move the mark   one transaction: delivered, records, calls, file name, sha256,
                                 archived copy, and the high-water mark moved

A failed delivery never loses a change: the mark stays where it was. A node killed between
delivering and finishing leaves its recorded delivery behind; the flow's next run (on
whichever node leads it) first completes it (:mod:`edigw.outbound.pending`): the file is
checked at the partner's, delivered again from the archive if missing, and the mark moved,
so its records are not sent a second time in a new file.

Which records a delta run exports, and the mark they move to (records updated at the same
instant as the mark included): :mod:`edigw.outbound.marks`. Lookups for templates are in
:mod:`edigw.outbound.lookups`, the delivery and the replay of a file in
:mod:`edigw.outbound.delivery`, what a run is given and gives back in :mod:`edigw.outbound.flow`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from edigw.channels.base import Delivered, DeliveredIncompletely
from edigw.errors import DataProblem, EdigwError, SourceDataError
from edigw.outbound.delivery import deliver_once, owes_done_file
from edigw.outbound.fence import LeadershipLost as LeadershipLost
from edigw.outbound.fence import record_delivery
from edigw.outbound.filters import local_time
from edigw.outbound.flow import (
    PAGE_SIZE,
    ArchiveLike,
    Channel,
    Client,
    ExportFlow,
    ExportResult,
    Mode,
    State,
)
from edigw.outbound.lookups import Lookups, StaticLookups
from edigw.outbound.marks import DeltaTracker, MarkStore, _as_row
from edigw.outbound.naming import file_name
from edigw.outbound.query import plan_query
from edigw.outbound.render import load_template, render_to_file
from edigw.outbound.settings import require_settings

# --------------------------------------------------------------------------- the run


def run_export(
    flow_config: Any,
    *,
    client: Client,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel | None,
    now: datetime,
    full: bool = False,
    dry_run: bool = False,
    to_dir: Path | None = None,
    partner: str | None = None,
    flow: str | None = None,
    work_dir: Path | None = None,
    marks_dir: Path | None = None,
    template: jinja2.Template | None = None,
    fence: Callable[[], bool] | None = None,
) -> ExportResult:
    """Run one export of ``flow_config`` now; see the module docstring for the steps.

    ``template``: the flow's template as a running gateway pinned it (its last version
    that compiled, ``edigw.pipeline.reload``); without it, the template file is loaded now.

    ``full`` exports everything whatever the flow's mode. ``dry_run`` renders (into
    ``to_dir`` or a temp file, returned as ``result.path``) without journal, delivery or mark.
    ``to_dir`` without ``dry_run`` writes the file there instead of the partner's channel: it
    is journaled (delivered, to the operator's folder) and archived, so ``edigw replay`` can
    send it to the partner later, but the mark does not move (the partner did not get it).
    Errors are re-raised after the run is journaled as failed. ``work_dir`` holds the temp
    file; ``marks_dir`` the boundary fingerprints (default: ``export-marks`` beside
    ``work_dir``, so ``data_dir/export-marks`` in the gateway). ``fence``: whether this
    node still leads the flow (``edigw.outbound.fence``).
    """
    spec = ExportFlow.of(flow_config, partner=partner, flow=flow)
    mode: Mode = "full" if full or spec.mode == "full" else "delta"
    if marks_dir is None and work_dir is not None:
        marks_dir = Path(work_dir).parent / "export-marks"
    marks = MarkStore(journal, marks_dir)
    if not dry_run and to_dir is None and channel is not None:
        from edigw.outbound.pending import finish_pending_deliveries

        finish_pending_deliveries(
            spec.partner, spec.flow, journal=journal, archive=archive, channel=channel, now=now
        )
    mark = marks.load(spec.partner, spec.flow) if mode == "delta" else None
    window_from = mark.at if mark else None
    if template is None:
        template = load_template(spec.template, timezone=spec.timezone)
        require_settings(spec.template, spec.settings)
    local_now = local_time(now, spec.timezone)
    work = Path(work_dir or tempfile.gettempdir())
    work.mkdir(parents=True, exist_ok=True)
    if spec.split == "record":
        from edigw.outbound.per_record import Run, run_per_record

        return run_per_record(
            Run(spec, template, mode, mark, marks, now, local_now, work, fence),
            client=client,
            journal=journal,
            archive=archive,
            channel=channel,
            dry_run=dry_run,
            to_dir=to_dir,
        )
    run_id = None
    if not dry_run:
        run_id = journal.start_export_run(
            partner=spec.partner, flow=spec.flow, mode=mode, window_from=window_from, now=now
        )
    fd, temp_name = tempfile.mkstemp(prefix=".edigw-export-", suffix=".tmp", dir=work)
    os.close(fd)
    temp = Path(temp_name)
    calls = 0
    recorded = False
    delivered: Delivered | None = None
    trouble: DeliveredIncompletely | None = None
    try:
        query = plan_query(spec.resource, spec.filters)
        listing = client.iter_list(
            spec.resource, updated_since=window_from, page_size=PAGE_SIZE, **query.params
        )
        tracker = DeltaTracker(mark, resource=spec.resource)
        lookups = Lookups(client)
        context = {
            "lookup": lookups,
            "now": local_now,
            "partner": spec.partner,
            "flow": spec.flow,
            "mode": mode,
            "window_from": window_from,
            "settings": dict(spec.settings),
        }
        rendered = render_to_file(
            template,
            query.keep(tracker.filter(listing)),
            temp,
            encoding=spec.encoding,
            context=context,
            out_name=f"{spec.partner}/{spec.flow}",
            xsd=spec.xsd,
        )
        calls = int(getattr(listing, "calls", 0)) + lookups.calls
        new_mark = tracker.next_mark()
        common = {
            "mode": mode,
            "records": rendered.records,
            "calls": calls,
            "run_id": run_id,
            "window_from": window_from,
            "window_to": new_mark.at if new_mark else window_from,
            "skipped": tracker.skipped,
            "left_out": query.left_out,
        }
        if rendered.records == 0 and mode == "delta" and not spec.write_empty:
            temp.unlink(missing_ok=True)
            if run_id is not None:
                journal.finish_export_run(
                    run_id, state="empty", now=now, window_to=window_from, records=0, calls=calls
                )
            return ExportResult(state="empty", **common)  # type: ignore[arg-type]
        if dry_run:
            seq = 0
            name = file_name(
                spec.filename, partner=spec.partner, flow=spec.flow, now=local_now, seq=seq
            )
            preview = _place(temp, to_dir, name) if to_dir else _keep(temp, work)
            return ExportResult(state="dry-run", file_name=name, path=preview, **common)  # type: ignore[arg-type]
        seq = journal.next_sequence(spec.partner, spec.flow)
        name = file_name(
            spec.filename, partner=spec.partner, flow=spec.flow, now=local_now, seq=seq
        )
        stored = archive.store(temp)
        archive_path = Path(stored.path)
        target: Path | None = None
        if to_dir is not None:
            target = _place(temp, to_dir, name)
            state: State = "delivered"  # to the operator's folder; the mark stays
        else:
            if channel is None:
                msg = f"{spec.partner}/{spec.flow}: no channel to deliver to"
                raise EdigwError(msg)
            record_delivery(
                journal,
                fence,
                spec,
                run_id,
                file_name=name,
                sha256=stored.sha256,
                size=temp.stat().st_size,
                archive_path=stored.location,
                records=rendered.records,
                calls=calls,
                mark=_as_row(new_mark),
                now=now,
            )
            recorded = True
            delivered, trouble = deliver_once(channel, temp, name)
            state = "delivered"
        journal.finish_export_run(
            run_id,
            state=state,
            now=now,
            window_to=common["window_to"],
            records=rendered.records,
            calls=calls,
            file_name=delivered.name if delivered else name,
            sha256=stored.sha256,
            archive_path=stored.location,
            error=str(trouble) if trouble else None,
            mark=_as_row(new_mark) if delivered is not None else None,
            done_file_owed=owes_done_file(trouble),
        )
        if trouble is not None:
            raise trouble  # delivered and journalled so; what failed after is still told
        return ExportResult(
            state=state,
            file_name=delivered.name if delivered else name,
            path=target,
            sha256=stored.sha256,
            archive_path=archive_path,
            delivered=delivered,
            **common,  # type: ignore[arg-type]
        )
    except BaseException as exc:
        if recorded and (delivered is not None or not isinstance(exc, EdigwError)):
            raise  # delivered, or maybe: the next run completes it (edigw.outbound.pending)
        if run_id is not None:
            with contextlib.suppress(EdigwError):
                journal.finish_export_run(
                    run_id,
                    state="failed",
                    now=now,
                    window_to=window_from,
                    calls=calls,
                    error=str(exc) or type(exc).__name__,
                )
        raise
    finally:
        temp.unlink(missing_ok=True)


def _keep(temp: Path, work: Path) -> Path:
    """Move a dry run's temp file aside so the ``finally`` clean-up leaves it for the caller."""
    fd, name = tempfile.mkstemp(prefix="edigw-dry-run-", suffix=".out", dir=work)
    os.close(fd)
    os.replace(temp, name)
    return Path(name)


def _place(temp: Path, to_dir: Path, name: str) -> Path:
    to_dir.mkdir(parents=True, exist_ok=True)
    target = to_dir / name
    shutil.copyfile(temp, target)
    return target


def render_sample(
    template_path: Path,
    sample: Any,
    dest: Path,
    *,
    now: datetime,
    timezone: str | None = None,
    encoding: str = "utf-8",
    xsd: Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> int:
    """Render a template on sample data into ``dest`` (``edigw template test``); returns records.

    ``sample`` is a list of records, or ``{"records": [...], "lookups": {"articles.list":
    [...]}, "settings": {...}, "partner": ..., "flow": ...}`` when the template reads lookups
    or settings; ``settings`` (``--set NAME=VALUE``) win over the sample's. A setting the
    template needs and neither gives fails before rendering, naming it. XML output is checked
    like a real run's.
    """
    if isinstance(sample, list):
        sample = {"records": sample}
    if not isinstance(sample, Mapping) or not isinstance(sample.get("records"), list):
        msg = 'sample data must be a list of records or {"records": [...], "lookups": {...}}'
        raise SourceDataError(DataProblem(msg))
    template = load_template(template_path, timezone=timezone)
    settings = {**(sample.get("settings") or {}), **(settings or {})}
    require_settings(template_path, settings)
    context = {
        "settings": settings,
        "lookup": StaticLookups(sample.get("lookups") or {}),
        "now": local_time(now, timezone),
        "partner": sample.get("partner", "partner"),
        "flow": sample.get("flow", "flow"),
        "mode": "full",
        "window_from": None,
    }
    rendered = render_to_file(
        template, iter(sample["records"]), dest, encoding=encoding, context=context, xsd=xsd
    )
    return rendered.records
