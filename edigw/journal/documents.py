"""Documents found in files: their rows, the events that tell their story, and the checks
made as they are inserted (idempotency keys, unchanged upserts). The intake's calls are
``reading``; reading documents back is ``document_reads``; settling their file, ``finishing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exc, insert

from edigw.journal import accepted
from edigw.journal.connection import _INSERT_EVENT
from edigw.journal.document_reads import DocumentReadsMixin
from edigw.journal.errors import DuplicateKeyError, JournalRefused, StateError
from edigw.journal.failures import _problem_row
from edigw.journal.finishing import FinishingMixin
from edigw.journal.heads import key_hash
from edigw.journal.rows import (
    DocumentCounts,
    NewDocument,
    _dumps,
)
from edigw.journal.schema import (
    DocState,
    FileState,
)
from edigw.journal.schema import problems as problem_lists
from edigw.problems import storable


def _heads_by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a file's documents with the first pending one of each business key its
    head (``edigw.journal.heads``), as the heads' statements would set them."""
    firsts: dict[str | None, int] = {}
    for row in sorted(rows, key=lambda row: row["seq"]):
        if row["state"] == DocState.PENDING:
            firsts.setdefault(row["business_key"], row["seq"])
    return [{**row, "file_head": firsts.get(row["business_key"]) == row["seq"]} for row in rows]


@dataclass(slots=True)
class _KeyCheck:
    """The file whose documents ``DocumentsMixin._keys_refused`` watches over."""

    file_id: int | None


def _repeated_keys(docs: Sequence[NewDocument]) -> dict[str, int | None]:
    """The idempotency keys found twice among ``docs`` (each with None: no document yet)."""
    seen: set[str] = set()
    repeated: dict[str, int | None] = {}
    for doc in docs:
        if doc.idempotency_key in seen:
            repeated[doc.idempotency_key] = None
        seen.add(doc.idempotency_key)
    return repeated


def _document_detail(doc: NewDocument) -> str:
    """The detail of a new document's event."""
    return storable(
        f"{doc.operation} {doc.business_key}"
        + (f": {doc.error}" if doc.error else "")
        + (f": {doc.note}" if doc.note else "")
    )


def _duplicate_keys(file_id: int | None, repeated: Mapping[str, int | None]) -> DuplicateKeyError:
    shown = ", ".join(
        f"{key} ({'D-' + str(d) if d is not None else 'twice in this file'})"
        for key, d in list(repeated.items())[:5]
    )
    msg = f"F-{file_id}: {len(repeated)} idempotency key(s) already used: {shown}"
    return DuplicateKeyError(msg, keys=repeated)


class DocumentsMixin(FinishingMixin, DocumentReadsMixin):
    """Journalling documents and their events."""

    @contextmanager
    def _keys_refused(
        self, docs: Sequence[NewDocument], file_id: int | None = None
    ) -> Iterator[_KeyCheck]:
        """Around a transaction inserting ``docs``, which is not preceded by a look for
        their idempotency keys: when the unique index refused it (a ``JournalRefused`` from
        an ``IntegrityError``, the transaction rolled back), the documents already holding
        those keys are looked for, and :class:`DuplicateKeyError` names them; any other
        refusal is raised as it came. A caller that makes the file in the transaction sets
        its id on what this yields."""
        check = _KeyCheck(file_id)
        try:
            yield check
        except JournalRefused as refused:
            if not docs or not isinstance(refused.__cause__, exc.IntegrityError):
                raise
            keys = sorted({doc.idempotency_key for doc in docs})
            with self._read("look for idempotency keys already used") as conn:
                found = conn.execute(self._sql.existing_keys, {"keys": keys}).all()
            if not found:
                raise
            raise _duplicate_keys(check.file_id, dict(found)) from None

    def _record_parsed(
        self,
        conn: Connection,
        file_id: int,
        docs: Sequence[NewDocument],
        rows: list[dict[str, Any]],
        *,
        now: datetime,
        reader: str | None = None,
        journalled: DocumentCounts | None = None,
        fresh: bool = False,
    ) -> list[int]:
        """Insert a file's (last) documents, move it to ``parsed`` and record what happened,
        within the caller's transaction: the one step :meth:`add_file` and
        :meth:`add_documents` share.

        ``fresh``: the file has no document in the journal yet (a new file, or the reading
        that journals all of a file at once): an unordered file's heads, one per key, are
        then known before the insert, and written with the rows."""
        unordered = not self._is_ordered(conn, file_id)
        keyed = fresh and journalled is None and unordered
        if keyed:
            rows = _heads_by_key(rows)
        ids, happened = self._insert_documents(conn, file_id, docs, rows, now=now)
        if journalled is not None or (unordered and not keyed):
            # Heads over the whole file: its earlier batches, or the keys of an unordered
            # file (which may have unfinished documents already: a replay adds steps).
            self._refresh_head(conn, file_id)
        counts = DocumentCounts.of(docs) + (journalled or DocumentCounts())
        happened.append(
            {
                "file_id": file_id,
                "document_id": None,
                "at": now,
                "kind": str(FileState.PARSED),
                "detail": counts.parsed_detail(),
            }
        )
        merged = self._sql.merged
        if merged is not None and reader is not None:
            # PostgreSQL: the move to parsed and every event in one statement.
            told = conn.execute(
                merged.parsed_told,
                {
                    "fid": file_id,
                    "now": now,
                    "holder": reader,
                    "document_ids": [e["document_id"] for e in happened],
                    "kinds": [e["kind"] for e in happened],
                    "details": [e["detail"] for e in happened],
                },
            )
            if told.rowcount == 0:
                raise self._not_read_by(conn, file_id, reader)
            return ids
        self._parsed(conn, file_id, now=now, reader=reader)
        conn.execute(_INSERT_EVENT, happened)
        return ids

    # ----------------------------------------------------------------- documents

    @staticmethod
    def _document_rows(
        docs: Sequence[NewDocument], *, now: datetime, heads: bool = True
    ) -> list[dict[str, Any]]:
        for doc in docs:
            allowed = (
                DocState.PENDING,
                DocState.FAILED,
                DocState.DONE,
                DocState.SKIPPED,
                DocState.UNCHANGED,
            )
            if DocState(doc.state) not in allowed:
                msg = (
                    "a new document is pending, failed, done, skipped or unchanged, "
                    f"not {doc.state}"
                )
                raise ValueError(msg)
        head = (
            min((d.seq for d in docs if d.state == DocState.PENDING), default=None)
            if heads
            else None
        )
        return [
            {
                "seq": doc.seq,
                "business_key": doc.business_key,
                "key_hash": key_hash(doc.business_key),
                "operation": doc.operation,
                "payload": _dumps(doc.payload, f"payload of document {doc.business_key}"),
                "idempotency_key": doc.idempotency_key,
                "state": DocState(doc.state),
                "file_head": doc.seq == head,
                "attempts": 0,
                "ecolix_status": doc.ecolix_status,
                "ecolix_object_id": doc.ecolix_object_id,
                "ecolix_response": _dumps(doc.ecolix_response, "Ecolix answer"),
                "error": None if doc.error is None else storable(doc.error),
                "error_location": None if doc.error_location is None else str(doc.error_location),
                "mapping_version": doc.mapping_version,
                "created_at": now,
                "updated_at": now,
            }
            for doc in docs
        ]

    def _insert_documents(
        self,
        conn: Connection,
        file_id: int,
        docs: Sequence[NewDocument],
        rows: list[dict[str, Any]],
        *,
        now: datetime,
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """Insert documents of a file (refusing repeated keys); return their ids and their
        events, for the caller to insert with its own in one statement."""
        repeated = _repeated_keys(docs)
        if repeated:
            raise _duplicate_keys(file_id, repeated)
        self._check_unchanged(conn, file_id, docs)
        if not rows:
            return [], []
        # A key already in the journal is refused by the unique index: no look before the
        # insert on the hot path (``_keys_refused`` names the documents holding it).
        result = conn.execute(
            self._sql.insert_documents, [{**row, "file_id": file_id} for row in rows]
        )
        ids = list(result.scalars())
        accepted.expect(
            conn,
            [
                (doc_id, doc.upsert)
                for doc_id, doc in zip(ids, docs, strict=True)
                if doc.upsert is not None and doc.state == DocState.PENDING
            ],
            now=now,
            pg=self._pg,
        )
        kept = [
            _problem_row(file_id, doc_id, doc.problems)
            for doc_id, doc in zip(ids, docs, strict=True)
            if doc.problems
        ]
        kept_rows = [row for row in kept if row is not None]
        if kept_rows:
            conn.execute(insert(problem_lists), kept_rows)
        happened = [
            {
                "file_id": file_id,
                "document_id": doc_id,
                "at": now,
                "kind": str(doc.state),
                "detail": _document_detail(doc),
            }
            for doc_id, doc in zip(ids, docs, strict=True)
        ]
        return ids, happened

    def _parsed(self, conn: Connection, file_id: int, *, now: datetime, reader: str | None) -> None:
        """Move a file whose documents are all journalled to ``parsed`` (only from
        ``received`` by ``reader`` when one is given); the caller records the event."""
        if reader is None:
            conn.execute(self._sql.file_parsed, {"fid": file_id, "now": now})
        else:
            parsed = conn.execute(
                self._sql.file_parsed_by_reader, {"fid": file_id, "now": now, "holder": reader}
            )
            if parsed.rowcount == 0:
                raise self._not_read_by(conn, file_id, reader)

    def _not_read_by(self, conn: Connection, file_id: int, reader: str) -> StateError:
        """Why a file could not be moved to ``parsed`` by ``reader``: another took it over."""
        current = conn.execute(self._sql.reading, {"fid": file_id}).first()
        state, holder = tuple(current) if current is not None else ("gone", None)
        msg = (
            f"F-{file_id} is no longer being read by {reader} "
            f"(it is {state}, reader {holder or 'none'})"
        )
        return StateError(msg)

    @staticmethod
    def _check_unchanged(conn: Connection, file_id: int, docs: Sequence[NewDocument]) -> None:
        """Refuse (``StateError``) ``unchanged`` documents whose object changed in the journal
        since they were judged: the intake tries again and judges afresh."""
        judged = [d.upsert for d in docs if d.state == DocState.UNCHANGED and d.upsert]
        if not judged:
            return
        rows = accepted.known(conn, (u.key for u in judged))
        moved = [
            u
            for u in judged
            if (r := rows.get(u.key)) is None or r.payload_sha256 != u.payload_sha256
        ]
        if moved:
            msg = (
                f"F-{file_id}: what Ecolix holds for {moved[0].target} changed while the file "
                "was read; it is read again"
            )
            raise StateError(msg)
