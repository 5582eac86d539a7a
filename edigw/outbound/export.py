"""One export run: query Ecolix → render → archive → deliver → journal → advance the mark.

Order of the steps, and why::

    start run (journal)          the run is visible, with its window, before anything happens
    query + render (streaming)   Ecolix pages are pulled lazily by the template, into a temp file
    archive                      the exact bytes are kept (sha256) before they leave, for replay
    deliver (channel)            temp name + rename on the partner's side
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
instant as the mark included): :mod:`edigw.outbound.marks`. What a run is given and gives back:
:mod:`edigw.outbound.flow`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from edigw.channels.base import Delivered, DeliveredIncompletely
from edigw.errors import DataProblem, EdigwError, JournalError, SourceDataError
from edigw.jinja_sandbox import Waits
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
from edigw.outbound.marks import DeltaTracker, MarkStore, _as_row
from edigw.outbound.naming import file_name
from edigw.outbound.query import plan_query
from edigw.outbound.render import load_template, render_to_file
from edigw.outbound.settings import require_settings

# --------------------------------------------------------------------------- lookups


class Lookups(Waits):
    """``lookup(resource, key)`` for templates: a whole Ecolix list as a dict by ``key``.

    A carrier file needs article weights and an order list does not carry them; fetching each
    article would cost one call per line. A lookup reads the list once per run, page by page
    at the maximum page size, only if the template asks for it, and counts its calls. It is
    never filtered by ``updated_since``: references need every object, not only the changed.
    The time it waits for Ecolix does not count against the template's time limit (``Waits``).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.calls = 0

    def __call__(self, resource: str, key: str = "code") -> dict[str, dict[str, Any]]:
        table = self._tables.get((resource, key))
        if table is None:
            listing = self._client.iter_list(resource, page_size=PAGE_SIZE)
            table = {str(item.get(key)): item for item in listing}
            self.calls += int(getattr(listing, "calls", 0))
            self._tables[(resource, key)] = table
        return table


class StaticLookups(Waits):
    """Lookups from sample data (``template test``): ``{"articles.list": [...], ...}``."""

    def __init__(self, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        self._tables = tables
        self.calls = 0

    def __call__(self, resource: str, key: str = "code") -> dict[str, Mapping[str, Any]]:
        return {str(item.get(key)): item for item in self._tables.get(resource, ())}


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


def deliver_once(
    channel: Channel, local_file: Path, name: str
) -> tuple[Delivered, DeliveredIncompletely | None]:
    """Deliver ``local_file`` as ``name``. A step failing after the file was in place (its
    done file...) does not make it undelivered: it is returned with the delivery, for the
    caller to journal the delivery first and tell the failure after (never to resend)."""
    try:
        return channel.deliver(local_file, name), None
    except DeliveredIncompletely as exc:
        return exc.delivered, exc


def owes_done_file(trouble: DeliveredIncompletely | None) -> bool:
    """Whether a delivery that failed after its file was in place left its done file
    unwritten: the run says so, and the flow's next runs write it (``edigw.outbound.pending``)."""
    return trouble is not None and trouble.done_file_owed


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


def replay_export_run(
    run_id: int,
    *,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel,
    now: datetime | None = None,
) -> Delivered:
    """Deliver the archived file of export run ``run_id`` again, under its original name.

    The mark is not touched (the records were already accounted for). With ``now`` the
    re-delivery is journaled as a new run in mode ``replay``.
    """
    run = journal.export_run(run_id)
    if run is None:
        msg = f"R-{run_id}: no such export run"
        raise JournalError(msg)
    sha256 = _field(run, "sha256")
    name = _field(run, "file_name")
    if not sha256 or not name:
        msg = f"R-{run_id}: the run produced no file ({_field(run, 'state')}), nothing to replay"
        raise JournalError(msg)
    with tempfile.TemporaryDirectory(prefix="edigw-replay-") as tmp:
        local = Path(tmp) / "replay"
        copy_archived(archive, sha256, local)
        new_id = None
        if now is not None:
            new_id = journal.start_export_run(
                partner=_field(run, "partner"),
                flow=_field(run, "flow"),
                mode="replay",
                window_from=_field(run, "window_from"),
                now=now,
            )
        try:
            delivered, trouble = deliver_once(channel, local, name)
        except EdigwError as exc:
            if new_id is not None:
                journal.finish_export_run(new_id, state="failed", now=now, error=str(exc))
            raise
        if new_id is not None:
            journal.finish_export_run(
                new_id,
                state="delivered",
                now=now,
                window_to=_field(run, "window_to"),
                records=_field(run, "records") or 0,
                file_name=delivered.name,
                sha256=sha256,
                archive_path=_field(run, "archive_path"),
                error=str(trouble) if trouble else None,
                done_file_owed=owes_done_file(trouble),
            )
        if trouble is not None:
            raise trouble
    return delivered


def _field(run: Any, name: str) -> Any:
    return run.get(name) if isinstance(run, Mapping) else getattr(run, name, None)


def copy_archived(archive: ArchiveLike, sha256: str, dest: Path) -> None:
    """Copy the archived file ``sha256`` to ``dest`` (a folder archive or a database one)."""
    source = archive.open(sha256)
    if isinstance(source, str | os.PathLike):
        shutil.copyfile(source, dest)
        return
    with source as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)
