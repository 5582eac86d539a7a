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
    durable_archive: bool = True,
    content: bytes | None = None,
) -> Ingested:
    """Archive ``source``, journal it and its documents; return the file's state.

    When the channel holds the file's bytes in memory (``content``), those are archived
    and ``source`` is never read.

    With ``durable_archive=False`` the archived copy is fsync'd later: the caller calls
    ``archive.make_durable(sha256)`` before it touches the source (the gateway does).

    A file whose bytes are already journalled for this flow and not yet disposed of (a crash
    between taking a file and moving its source away) is *resumed*, never taken twice.
    The mapping runs on the archived copy before the journal hears of the file, so that
    the file and its documents are one transaction; a crash in between leaves the source
    untouched, to be taken again.
    """
    archived = (
        archive.store(source, durable=durable_archive)
        if content is None
        else archive.store_bytes(content, durable=durable_archive)
    )
    earlier = journal.files_with_content(
        partner=flow.partner, flow=flow.flow, sha256=archived.sha256
    )
    if earlier and not journal.source_disposed(earlier[-1].id):
        return _resume(
            earlier[-1],
            reception=len(earlier),
            flow=flow,
            journal=journal,
            archive=archive,
            now=now,
        )

    def add_file(documents: list[NewDocument] | None = None) -> int:
        return journal.add_file(
            partner=flow.partner,
            flow=flow.flow,
            channel=flow.channel,
            original_name=original_name,
            source_path=source_path or str(source),
            size=archived.size,
            sha256=archived.sha256,
            archive_path=str(archived.path),
            now=now,
            documents=documents,
        )

    if earlier and flow.duplicates == "skip":
        file_id = add_file()
        reason = duplicate_reason(earlier)
        journal.set_file_state(file_id, "skipped_duplicate", now=now, error=reason)
        return Ingested(file_id, "skipped_duplicate", 0, 0)
    mapped = _map(archived.path, original_name, flow=flow)
    if isinstance(mapped, str):
        file_id = add_file()
        journal.set_file_state(file_id, "failed", now=now, error=mapped)
        return Ingested(file_id, "failed", 0, 0)
    reception = len(earlier) + 1
    new_docs = _new_documents(mapped, flow=flow, sha256=archived.sha256, reception=reception)
    file_id = add_file(new_docs)
    return _queued(file_id, new_docs, journal=journal, now=now)


def reception_of(row: FileRow, journal: Journal) -> int:
    """Which reception of its bytes in its flow a journalled file was (1 for the first)."""
    same = journal.files_with_content(partner=row.partner, flow=row.flow, sha256=row.sha256)
    return sum(1 for f in same if f.id <= row.id) or 1


def duplicate_reason(earlier: list[FileRow]) -> str:
    """Why a file whose bytes this flow already received is skipped, and what to do instead.

    Sending the same documents again under their first keys would only make Ecolix repeat
    its first answers; what failed the first time is sent again with ``edigw replay``.
    """
    done = next((f for f in earlier if f.state == "done"), None)
    if done is not None:
        return f"same content as F-{done.id}, already done"
    last = earlier[-1]
    return (
        f"same content as F-{last.id} ({last.state.replace('_', ' ')}): to send its failed "
        f"documents again, `edigw replay F-{last.id}`; to post the file again as new, "
        "set `duplicates: process` on the flow"
    )


def _resume(
    row: FileRow,
    *,
    reception: int,
    flow: FlowContext,
    journal: Journal,
    archive: Archive,
    now: datetime,
) -> Ingested:
    if row.state == "received":
        # Crashed after journalling the file, before its documents: map it again.
        mapped = _map(archive.path_of(row.sha256), row.original_name, flow=flow)
        if isinstance(mapped, str):
            journal.set_file_state(row.id, "failed", now=now, error=mapped)
            return Ingested(row.id, "failed", 0, 0, resumed=True)
        new_docs = _new_documents(mapped, flow=flow, sha256=row.sha256, reception=reception)
        journal.add_documents(row.id, new_docs, now=now)
        ingested = _queued(row.id, new_docs, journal=journal, now=now)
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


def _map(archived: Path, original_name: str, *, flow: FlowContext) -> list[MappedDocument] | str:
    """The file's documents, or why the file as a whole cannot be read."""
    try:
        mapped = list(
            flow.mapping.map_file(archived, source_name=original_name, encoding=flow.encoding)
        )
    except SourceDataError as exc:
        return str(exc)
    except EdigwError as exc:
        return f"{original_name}: {exc}"
    if not mapped:
        return (
            f"{original_name}: no document found in the file (empty, or every record "
            "was skipped by the mapping)"
        )
    return mapped


def _new_documents(
    mapped: list[MappedDocument], *, flow: FlowContext, sha256: str, reception: int
) -> list[NewDocument]:
    return [
        _new_document(seq, doc, occurrence, flow=flow, sha256=sha256, reception=reception)
        for seq, (doc, occurrence) in enumerate(
            zip(mapped, occurrences(d.key for d in mapped), strict=True), start=1
        )
    ]


def _queued(
    file_id: int, new_docs: list[NewDocument], *, journal: Journal, now: datetime
) -> Ingested:
    """A journalled file's state; settled at once when the mapping failed every document."""
    failed = sum(1 for d in new_docs if d.state == "failed")
    state = "parsed"
    if failed == len(new_docs):
        state = journal.finish_file_if_complete(file_id, now=now) or state
    return Ingested(file_id, state, len(new_docs), failed)


def _new_document(
    seq: int,
    doc: MappedDocument,
    occurrence: int,
    *,
    flow: FlowContext,
    sha256: str,
    reception: int,
) -> NewDocument:
    key = idempotency_key(
        partner=flow.partner,
        flow=flow.flow,
        file_sha256=sha256,
        business_key=doc.key,
        occurrence=occurrence,
        reception=reception,
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
