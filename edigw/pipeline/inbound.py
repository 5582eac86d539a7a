"""Taking one inbound file in: archive, journal, map, and queue its documents.

Order of events, each step durable before the next (invariant 1 of the architecture)::

    archive (fsync'd, content-addressed) → journal the file → map from the *archived* copy
    → journal every document (pending or failed with its source location) in one transaction

Nothing is sent to Ecolix here: the dispatcher (``dispatch.py``) sends queued documents, so
a crash at any point leaves either an untouched source (taken again next poll) or a journal
that says exactly what is left to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from edigw.errors import DataProblem, EdigwError, SourceDataError
from edigw.journal.archive import Archive
from edigw.journal.store import FileRow, Journal, NewDocument
from edigw.model import MappedDocument
from edigw.pipeline.keys import idempotency_key, occurrences

FINAL_FILE_STATES = frozenset({"done", "partially_failed", "failed", "skipped_duplicate"})


class DocumentSource(Protocol):
    """What the pipeline needs of a compiled mapping (``edigw.mapping``)."""

    @property
    def target(self) -> str: ...

    def map_file(
        self, path: Path, *, source_name: str, encoding: str | None = None
    ) -> Iterator[MappedDocument]: ...


@dataclass(frozen=True, slots=True)
class FlowContext:
    """One inbound flow as the pipeline sees it: names, policies, compiled mapping."""

    partner: str
    flow: str
    channel: str
    mapping: DocumentSource
    duplicates: str = "skip"
    encoding: str | None = None

    @property
    def id(self) -> str:
        return f"{self.partner}/{self.flow}"


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of a file: its journal id, state, and whether it was already known."""

    file_id: int
    state: str
    documents: int
    failed: int
    resumed: bool = False
    already_final: bool = False

    @property
    def show_id(self) -> str:
        return f"F-{self.file_id}"


def ingest(
    source: Path,
    *,
    original_name: str,
    flow: FlowContext,
    journal: Journal,
    archive: Archive,
    now: datetime,
    source_path: str | None = None,
) -> Ingested:
    """Archive ``source``, journal it and its documents; return the file's state.

    A file whose bytes are already journalled for this flow and not yet disposed of (a crash
    between taking a file and moving its source away) is *resumed*, never taken twice.
    """
    archived = archive.store(source)
    existing = journal.latest_file_by_hash(
        partner=flow.partner, flow=flow.flow, sha256=archived.sha256
    )
    if existing is not None and not journal.source_disposed(existing.id):
        return _resume(existing, flow=flow, journal=journal, archive=archive, now=now)

    file_id = journal.add_file(
        partner=flow.partner,
        flow=flow.flow,
        channel=flow.channel,
        original_name=original_name,
        source_path=source_path or str(source),
        size=archived.size,
        sha256=archived.sha256,
        archive_path=str(archived.path),
        now=now,
    )
    if flow.duplicates == "skip":
        earlier = journal.find_done_file(
            partner=flow.partner, flow=flow.flow, sha256=archived.sha256
        )
        if earlier is not None and earlier.id != file_id:
            journal.set_file_state(
                file_id,
                "skipped_duplicate",
                now=now,
                error=f"same content as F-{earlier.id}, already done",
            )
            return Ingested(file_id, "skipped_duplicate", 0, 0)
    return _map_and_queue(
        file_id, archived.path, original_name, archived.sha256, flow=flow, journal=journal, now=now
    )


def _resume(
    row: FileRow, *, flow: FlowContext, journal: Journal, archive: Archive, now: datetime
) -> Ingested:
    if row.state == "received":
        # Crashed after journalling the file, before its documents: map it again.
        ingested = _map_and_queue(
            row.id,
            archive.path_of(row.sha256),
            row.original_name,
            row.sha256,
            flow=flow,
            journal=journal,
            now=now,
        )
        return Ingested(
            ingested.file_id, ingested.state, ingested.documents, ingested.failed, resumed=True
        )
    state = row.state
    if state == "parsed":
        # Crashed after the last document's outcome, before the file's: settle it now.
        state = journal.finish_file_if_complete(row.id, now=now) or state
    docs = journal.documents_of(row.id)
    return Ingested(
        row.id,
        state,
        len(docs),
        sum(1 for d in docs if d.state == "failed"),
        resumed=True,
        already_final=state in FINAL_FILE_STATES,
    )


def _map_and_queue(
    file_id: int,
    archived: Path,
    original_name: str,
    sha256: str,
    *,
    flow: FlowContext,
    journal: Journal,
    now: datetime,
) -> Ingested:
    try:
        mapped = list(
            flow.mapping.map_file(archived, source_name=original_name, encoding=flow.encoding)
        )
    except SourceDataError as exc:
        journal.set_file_state(file_id, "failed", now=now, error=str(exc))
        return Ingested(file_id, "failed", 0, 0)
    except EdigwError as exc:
        journal.set_file_state(file_id, "failed", now=now, error=f"{original_name}: {exc}")
        return Ingested(file_id, "failed", 0, 0)
    if not mapped:
        journal.set_file_state(
            file_id,
            "failed",
            now=now,
            error=f"{original_name}: no document found in the file (empty, or every record "
            "was skipped by the mapping)",
        )
        return Ingested(file_id, "failed", 0, 0)

    new_docs = [
        _new_document(seq, doc, occurrence, flow=flow, sha256=sha256)
        for seq, (doc, occurrence) in enumerate(
            zip(mapped, occurrences(d.key for d in mapped), strict=True), start=1
        )
    ]
    journal.add_documents(file_id, new_docs, now=now)
    failed = sum(1 for d in new_docs if d.state == "failed")
    state = journal.finish_file_if_complete(file_id, now=now) or "parsed"
    return Ingested(file_id, state, len(new_docs), failed)


def _new_document(
    seq: int, doc: MappedDocument, occurrence: int, *, flow: FlowContext, sha256: str
) -> NewDocument:
    key = idempotency_key(
        partner=flow.partner,
        flow=flow.flow,
        file_sha256=sha256,
        business_key=doc.key,
        occurrence=occurrence,
    )
    if doc.ok and doc.payload is not None:
        return NewDocument(
            seq=seq,
            business_key=doc.key,
            operation=doc.operation,
            payload=doc.payload,
            idempotency_key=key,
            state="pending",
        )
    return NewDocument(
        seq=seq,
        business_key=doc.key,
        operation=doc.operation,
        payload=doc.payload,
        idempotency_key=key,
        state="failed",
        error=describe_problems(doc.problems),
        error_location=str(doc.problems[0].location) if doc.problems[0].location else None,
    )


def describe_problems(problems: list[DataProblem]) -> str:
    """All of a document's problems, one per line, each with its place."""
    return "\n".join(str(p) for p in problems)
