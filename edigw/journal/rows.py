"""What the journal hands out and takes in: frozen dataclasses, one per kind of row, and the
conversions between them and the database's values (aware UTC datetimes, JSON text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping

from edigw.errors import DataProblem, JournalError
from edigw.journal.accepted import Upsert
from edigw.journal.schema import UNFINISHED_DOC_STATES, DocState
from edigw.model import Location


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document the pipeline found in a file, as handed to :meth:`Journal.add_documents`.

    ``state`` is ``pending`` (to be sent), ``failed`` (the mapping already found problems:
    ``error`` says why and ``error_location`` where, and ``payload`` may be ``None``) or
    ``done`` (an earlier reception of the same source already sent it: its Ecolix answer is
    copied in ``ecolix_*`` and ``note`` says which document that was) or ``unchanged`` (an
    upsert of the payload Ecolix last accepted for its object; ``note`` says which).
    ``upsert``: the object and payload hash of an upsert (``edigw.journal.accepted``); a
    pending one is recorded as on its way, an unchanged one is checked again on insert.
    ``problems`` are all of them: kept whole (up to ``MAX_KEPT``) when ``error`` had to be cut.
    """

    seq: int
    business_key: str
    operation: str
    payload: Mapping[str, Any] | None
    idempotency_key: str
    state: str = DocState.PENDING
    error: str | None = None
    error_location: str | Location | None = None
    problems: Sequence[DataProblem] = ()
    ecolix_status: int | None = None
    ecolix_object_id: str | None = None
    ecolix_response: Any = None
    note: str | None = None
    upsert: Upsert | None = None
    #: the version of the mapping that made it (``CompiledMapping`` files' short hash)
    mapping_version: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentCounts:
    """How many documents of a file were journalled, by what became of them at intake: what
    the file's ``parsed`` event says, and what a file journalled in batches
    (:meth:`Journal.add_document_batch`) had journalled before its last batch."""

    documents: int = 0
    failed: int = 0
    skipped: int = 0
    unchanged: int = 0
    done: int = 0
    pending: int = 0

    @classmethod
    def of(cls, docs: Sequence[NewDocument]) -> DocumentCounts:
        by_state: dict[str, int] = {}
        for doc in docs:
            by_state[doc.state] = by_state.get(doc.state, 0) + 1
        return cls(
            documents=len(docs),
            failed=by_state.get(DocState.FAILED, 0),
            skipped=by_state.get(DocState.SKIPPED, 0),
            unchanged=by_state.get(DocState.UNCHANGED, 0),
            done=by_state.get(DocState.DONE, 0),
            pending=by_state.get(DocState.PENDING, 0),
        )

    def __add__(self, other: DocumentCounts) -> DocumentCounts:
        return DocumentCounts(
            self.documents + other.documents,
            self.failed + other.failed,
            self.skipped + other.skipped,
            self.unchanged + other.unchanged,
            self.done + other.done,
            self.pending + other.pending,
        )

    def parsed_detail(self) -> str:
        """The ``parsed`` event's detail."""
        return (
            f"{self.documents} document(s), {self.failed} failed at mapping"
            + (f", {self.done} already done by an earlier reception" if self.done else "")
            + (f", {self.skipped} skipped by the mapping" if self.skipped else "")
            + (f", {self.unchanged} unchanged (not sent)" if self.unchanged else "")
        )


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    partner: str
    flow: str
    channel: str
    original_name: str
    source_path: str
    size: int
    sha256: str
    archive_path: str
    state: str
    error: str | None
    received_at: datetime
    parsed_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    #: the process reading it (``received``) or whose death its reading caused (``failed``)
    reader: str | None = None

    @property
    def ref(self) -> str:
        return f"F-{self.id}"


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    file_id: int
    partner: str
    flow: str
    seq: int
    business_key: str
    operation: str
    payload: dict[str, Any] | None
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str | None
    claimed_until: datetime | None
    ecolix_status: int | None
    ecolix_object_id: str | None
    ecolix_response: Any
    error: str | None
    error_location: str | None
    created_at: datetime
    updated_at: datetime
    #: tries that never reached Ecolix (connection refused, ...): not counted in ``attempts``
    not_sent: int = 0
    #: the version of the mapping that made it; ``None`` before journal revision 0011
    mapping_version: str | None = None

    @property
    def ref(self) -> str:
        return f"D-{self.id}"


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    file_id: int
    document_id: int | None
    at: datetime
    kind: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class RecentError:
    """One recent failure for ``edigw status``: which file/document, when, why, where."""

    ref: str
    at: datetime
    message: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """Counts of one partner/flow: files and documents by state, what waits, what failed."""

    partner: str
    flow: str
    files: Mapping[str, int]
    documents: Mapping[str, int]
    files_waiting: int
    documents_waiting: int
    next_retry_at: datetime | None
    last_errors: tuple[RecentError, ...] = field(default=())
    #: Failed and partially failed files by state, and failed documents, that an operator
    #: resolved; they are also counted in ``files`` and ``documents`` under their state.
    files_resolved: Mapping[str, int] = field(default_factory=dict)
    documents_resolved: int = 0
    #: Ecolix calls made for the documents (their ``attempts``: retries included, tries that
    #: never left not), by document state, like ``documents``.
    calls: Mapping[str, int] = field(default_factory=dict)

    @property
    def calls_per_document(self) -> float | None:
        """Calls made per finished document (done, failed, skipped or unchanged; ``None``
        before the first): 1.0 is one call each, more is retries, less is calls spared."""
        finished = [s for s in self.documents if s not in UNFINISHED_DOC_STATES]
        count = sum(self.documents[s] for s in finished)
        if not count:
            return None
        return sum(self.calls.get(s, 0) for s in finished) / count

    @property
    def waiting(self) -> int:
        """Documents not finished yet (pending, sent, or waiting for a retry)."""
        return self.documents_waiting


@dataclass(frozen=True, slots=True)
class JournalGauges:
    """What metrics read from the journal at each scrape (see :meth:`Journal.gauges`).

    Keys are ``(partner, flow, state)`` for the counts and ``(partner, flow)`` for
    ``oldest_waiting``: the creation time of the flow's oldest document not finished yet
    (pending, sent or waiting for a retry); flows with none are absent.
    """

    files: Mapping[tuple[str, str, str], int]
    documents: Mapping[tuple[str, str, str], int]
    oldest_waiting: Mapping[tuple[str, str], datetime]


@dataclass(frozen=True, slots=True)
class ChannelActionRow:
    id: int
    file_id: int | None
    action: str
    ok: bool
    error: str | None
    at: datetime
    target: str | None = None


@dataclass(frozen=True, slots=True)
class ResolutionRow:
    """An operator's acknowledgement of a failure (``edigw resolve``)."""

    id: int
    file_id: int
    document_id: int | None
    resolved_by: str
    note: str
    at: datetime

    @property
    def ref(self) -> str:
        return f"D-{self.document_id}" if self.document_id is not None else f"F-{self.file_id}"


@dataclass(frozen=True, slots=True)
class FileListing:
    """One line of ``edigw files``: the file, its documents by state, and whether its
    failure (if any) is still open, i.e. not resolved by an operator."""

    file: FileRow
    documents: Mapping[str, int]
    open_failure: bool


@dataclass(frozen=True, slots=True)
class ExportRunRow:
    id: int
    partner: str
    flow: str
    mode: str
    window_from: datetime | None
    window_to: datetime | None
    records: int
    calls: int
    file_name: str | None
    sha256: str | None
    archive_path: str | None
    state: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    #: Delivered, its done file not written yet (a later run of the flow writes it).
    done_file_owed: bool = False

    @property
    def ref(self) -> str:
        return f"R-{self.id}"


def _aware(value: datetime, name: str = "now") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{name} must be a timezone-aware datetime, got naive {value!r}"
        raise ValueError(msg)
    return value.astimezone(UTC)


def _maybe_aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else _aware(value, name)


def _dumps(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        msg = f"{what} is not JSON-serialisable: {err}"
        raise JournalError(msg) from err


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _file_row(m: RowMapping) -> FileRow:
    return FileRow(
        id=m["id"],
        partner=m["partner"],
        flow=m["flow"],
        channel=m["channel"],
        original_name=m["original_name"],
        source_path=m["source_path"],
        size=m["size"],
        sha256=m["sha256"],
        archive_path=m["archive_path"],
        state=m["state"],
        error=m["error"],
        received_at=m["received_at"],
        parsed_at=m["parsed_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
        reader=m["reader"],
    )


def _doc_row(m: Mapping[Any, Any]) -> DocumentRow:
    return DocumentRow(
        id=m["id"],
        file_id=m["file_id"],
        partner=m["partner"],
        flow=m["flow"],
        seq=m["seq"],
        business_key=m["business_key"],
        operation=m["operation"],
        payload=_loads(m["payload"]),
        idempotency_key=m["idempotency_key"],
        state=m["state"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        claimed_by=m["claimed_by"],
        claimed_until=m["claimed_until"],
        ecolix_status=m["ecolix_status"],
        ecolix_object_id=m["ecolix_object_id"],
        ecolix_response=_loads(m["ecolix_response"]),
        error=m["error"],
        error_location=m["error_location"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        not_sent=m["not_sent"],
        mapping_version=m.get("mapping_version"),
    )


def _run_row(m: RowMapping) -> ExportRunRow:
    return ExportRunRow(**{name: m[name] for name in ExportRunRow.__dataclass_fields__})


@dataclass(slots=True)
class PurgeCounts:
    """What a purge removed from the journal."""

    files: int = 0
    documents: int = 0
    events: int = 0
    export_runs: int = 0
