"""What ``--json`` prints: plain, JSON-ready data with stable keys.

One function per thing an operator looks at. Keys are always present (``null`` when
unknown), ids are the ones people type (``F-12``, ``D-40``, ``R-5``), times are ISO 8601
in UTC, and the shapes are documented in ``docs/operations.md`` ("Output for scripts").
A key is never renamed or removed without saying so in the changelog; new keys may come.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edigw.journal.rows import (
        DocumentRow,
        EventRow,
        ExportRunRow,
        FileListing,
        FileRow,
        ResolutionRow,
    )
    from edigw.outbound.flow import ExportResult
    from edigw.pipeline.replay import ReplayResult
    from edigw.pipeline.stories import FileStory

#: Document states still waiting for their outcome.
WAITING_STATES = ("pending", "sent", "retry_wait")
FAILED_STATES = ("failed", "partially_failed")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def failure_of(state: str, *, open_: bool) -> str | None:
    """``open`` or ``resolved`` for a failure, ``None`` for anything that did not fail."""
    if state not in (*FAILED_STATES,):
        return None
    return "open" if open_ else "resolved"


def file_data(row: FileRow, *, open_failure: bool) -> dict[str, Any]:
    return {
        "id": row.ref,
        "flow": f"{row.partner}/{row.flow}",
        "name": row.original_name,
        "state": row.state,
        "failure": failure_of(row.state, open_=open_failure),
        "error": row.error,
        "size": row.size,
        "sha256": row.sha256 or None,
        "archive_path": row.archive_path or None,
        "source_path": row.source_path,
        "received_at": _time(row.received_at),
        "finished_at": _time(row.finished_at),
    }


def document_data(doc: DocumentRow, *, open_failure: bool) -> dict[str, Any]:
    return {
        "id": doc.ref,
        "file": f"F-{doc.file_id}",
        "seq": doc.seq,
        "business_key": doc.business_key,
        "operation": doc.operation,
        "state": doc.state,
        "failure": failure_of(doc.state, open_=open_failure),
        "attempts": doc.attempts,
        "next_attempt_at": _time(doc.next_attempt_at),
        "idempotency_key": doc.idempotency_key,
        "mapping_version": doc.mapping_version,
        "error": doc.error,
        "error_location": doc.error_location,
        "ecolix_status": doc.ecolix_status,
        "ecolix_object_id": doc.ecolix_object_id,
        "payload": doc.payload,
    }


def event_data(event: EventRow) -> dict[str, Any]:
    return {
        "at": _time(event.at),
        "kind": event.kind,
        "document": None if event.document_id is None else f"D-{event.document_id}",
        "detail": event.detail,
    }


def resolution_data(resolution: ResolutionRow) -> dict[str, Any]:
    return {
        "resolves": resolution.ref,
        "by": resolution.resolved_by,
        "note": resolution.note,
        "at": _time(resolution.at),
    }


def story_data(story: FileStory) -> dict[str, Any]:
    """``edigw show F-12 --json`` (``kind`` file) and ``edigw show D-40 --json``
    (``kind`` document: its file, that document, and the events about either)."""
    return {
        "kind": "document" if story.kind == "D" else "file",
        "file": file_data(story.file, open_failure=story.open_failure),
        "documents": [
            document_data(d, open_failure=d.id in story.open_documents) for d in story.documents
        ],
        "events": [event_data(e) for e in story.events],
        "resolutions": [resolution_data(r) for r in story.resolutions],
        "validation_findings": [
            {
                "layer": f.layer,
                "rule": f.rule,
                "severity": f.severity,
                "blocking": f.blocking,
                "message": f.message,
                "location": f.location,
            }
            for f in story.findings
        ],
    }


def export_run_data(run: ExportRunRow) -> dict[str, Any]:
    """``edigw show R-5 --json``: ``{"kind": "export_run", "export_run": ...}``."""
    return {
        "kind": "export_run",
        "export_run": {
            "id": run.ref,
            "flow": f"{run.partner}/{run.flow}",
            "mode": run.mode,
            "state": run.state,
            "window_from": _time(run.window_from),
            "window_to": _time(run.window_to),
            "records": run.records,
            "calls": run.calls,
            "file_name": run.file_name,
            "sha256": run.sha256,
            "archive_path": run.archive_path,
            "error": run.error,
            "started_at": _time(run.started_at),
            "finished_at": _time(run.finished_at),
        },
    }


def document_counts(states: Mapping[str, int]) -> dict[str, int]:
    return {
        "total": sum(states.values()),
        "done": states.get("done", 0),
        "failed": states.get("failed", 0),
        "skipped": states.get("skipped", 0),
        "unchanged": states.get("unchanged", 0),
        "waiting": sum(states.get(s, 0) for s in WAITING_STATES),
    }


def listing_data(item: FileListing) -> dict[str, Any]:
    """One element of ``edigw files --json``."""
    row = item.file
    return {
        "id": row.ref,
        "flow": f"{row.partner}/{row.flow}",
        "name": row.original_name,
        "state": row.state,
        "failure": failure_of(row.state, open_=item.open_failure),
        "received_at": _time(row.received_at),
        "finished_at": _time(row.finished_at),
        "documents": document_counts(item.documents),
        "error": row.error,
    }


def export_result_data(flow: str, result: ExportResult, *, dry_run: bool) -> dict[str, Any]:
    """``edigw export --json``."""
    delivered = result.delivered
    return {
        "id": result.show_id,
        "flow": flow,
        "dry_run": dry_run,
        "state": result.state,
        "mode": result.mode,
        "records": result.records,
        "left_out": result.left_out,
        "calls": result.calls,
        "file_name": delivered.name if delivered else result.file_name,
        "files": list(result.files),
        "path": delivered.path if delivered else (str(result.path) if result.path else None),
        "window_from": _time(result.window_from),
        "window_to": _time(result.window_to),
    }


def replay_data(result: ReplayResult) -> dict[str, Any]:
    """One element of ``edigw replay --json``."""
    item, plan = result.item, result.plan
    return {
        "id": f"{item.kind}-{item.number}",
        "document": None if item.document is None else f"D-{item.document}",
        "outcome": result.outcome or None,
        "error": result.error or None,
        "already_done": list(plan.already_done) if plan else [],
        "sent_again": list(plan.requeued) if plan else [],
        "new": list(plan.added) if plan else [],
        "still_failing": list(plan.still_failing) if plan else [],
        "skipped": list(plan.skipped) if plan else [],
        "unchanged": list(plan.unchanged) if plan else [],
        "error_copy": result.error_copy or None,
    }
