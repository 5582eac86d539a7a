"""Documents of a file being read: journalled at once when the whole file is read, or in
batches as a big file is read, and dropped when a reading was cut short.

The intake's calls into the journal; the rows, events and checks they share are
``documents``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from edigw.journal.connection import _INSERT_EVENT
from edigw.journal.documents import (
    DocumentsMixin,
    _document_detail,
    _duplicate_keys,
    _heads_by_key,
    _repeated_keys,
)
from edigw.journal.errors import StateError, UnknownIdError
from edigw.journal.merged import READ_ARRAYS, MergedStatements
from edigw.journal.rows import DocumentCounts, NewDocument, _aware
from edigw.journal.schema import FileState, accepted_payloads, documents, events
from edigw.journal.schema import problems as problem_lists


class ReadingMixin(DocumentsMixin):
    """Journalling the documents of files being read."""

    def add_documents(
        self,
        file_id: int,
        docs: Sequence[NewDocument],
        *,
        now: datetime,
        reader: str | None = None,
        journalled: DocumentCounts | None = None,
    ) -> list[int]:
        """Record the documents found in a file and move the file to ``parsed``, atomically.

        With ``reader``, the file must still be ``received`` and marked as read by that
        process (another node may have judged the reading dead meanwhile: :class:`StateError`,
        nothing written). The reading marker is cleared either way.

        ``journalled``: what :meth:`add_document_batch` already recorded of this file (a big
        file journalled as it is read): these are its last documents, the file's heads are
        its first unfinished documents (of the file, or of each key: ``edigw.journal.heads``)
        whichever batch they came in, and the ``parsed`` event counts them all.

        Returns the new ids in the order of ``docs``. Raises :class:`DuplicateKeyError`
        (nothing written) when an idempotency key is already in the journal or twice in
        ``docs``: the pipeline decides what a repeated document means.
        """
        now = _aware(now)
        rows = self._document_rows(docs, now=now, heads=journalled is None)
        merged = self._sql.merged
        if (
            merged is not None
            and reader is not None
            and journalled is None
            and file_id in self._ordered_files
            and not any(doc.problems or doc.upsert for doc in docs)
        ):
            return self._record_read(merged, file_id, docs, rows, now=now, reader=reader)
        with self._keys_refused(docs, file_id), self._write("record a file's documents") as conn:
            # With a reader, the file's move to parsed checks it (no statement more on the
            # hot path), and a refusal rolls the documents back.
            if reader is None and not conn.execute(self._sql.reading, {"fid": file_id}).first():
                msg_0 = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg_0)
            # Read by ``reader``: the file is still ``received``, and what an earlier reading
            # cut short journalled of it was dropped before this one began.
            return self._record_parsed(
                conn,
                file_id,
                docs,
                rows,
                now=now,
                reader=reader,
                journalled=journalled,
                fresh=reader is not None,
            )

    def _record_read(
        self,
        merged: MergedStatements,
        file_id: int,
        docs: Sequence[NewDocument],
        rows: list[dict[str, Any]],
        *,
        now: datetime,
        reader: str,
    ) -> list[int]:
        """PostgreSQL: :meth:`add_documents` for a whole file read at once by ``reader``,
        in one statement in autocommit instead of a transaction of three (five round trips).
        Only for documents with nothing else to keep (no problems apart, no upsert to
        remember), in a file whose order is known."""
        repeated = _repeated_keys(docs)
        if repeated:
            raise _duplicate_keys(file_id, repeated)
        if self._ordered_files[file_id] is False:
            rows = _heads_by_key(rows)
        params: dict[str, Any] = {f"{name}s": [row[name] for row in rows] for name in READ_ARRAYS}
        detail = DocumentCounts.of(docs).parsed_detail()
        params |= {
            "fid": file_id,
            "now": now,
            "holder": reader,
            "event_seqs": [doc.seq for doc in docs] + [None],
            "kinds": [str(doc.state) for doc in docs] + [str(FileState.PARSED)],
            "details": [_document_detail(doc) for doc in docs] + [detail],
        }
        what = "record a file's documents"
        with self._keys_refused(docs, file_id), self._write_single(what, lazy=True) as conn:
            found = conn.execute(merged.read_recorded, params).all()
            if not found:
                raise self._not_read_by(conn, file_id, reader)
        ids = {seq: doc_id for doc_id, seq in found if doc_id is not None}
        return [ids[doc.seq] for doc in docs]

    def add_document_batch(
        self,
        file_id: int,
        docs: Sequence[NewDocument],
        *,
        now: datetime,
        reader: str | None = None,
    ) -> list[int]:
        """Record some documents of a file still being read, which stays ``received``.

        A big file is journalled as it is read, so that its documents are never all held in
        memory; none of them is due (no head) until :meth:`add_documents` records the last
        ones and moves the file to ``parsed``. A reading cut short leaves these behind: the
        next reading first drops them (:meth:`discard_read_documents`). With ``reader``, the
        file must still be read by that process (:class:`StateError`, nothing written).
        """
        now = _aware(now)
        rows = self._document_rows(docs, now=now, heads=False)
        what = "record documents of a file being read"
        with self._keys_refused(docs, file_id), self._write(what) as conn:
            current = conn.execute(self._sql.reading, {"fid": file_id}).first()
            if current is None:
                msg = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg)
            state, holder = tuple(current)
            if state != FileState.RECEIVED or (reader is not None and holder != reader):
                msg = (
                    f"F-{file_id} is no longer being read by {reader or 'this intake'} "
                    f"(it is {state}, reader {holder or 'none'})"
                )
                raise StateError(msg)
            ids, happened = self._insert_documents(conn, file_id, docs, rows, now=now)
            if happened:
                conn.execute(_INSERT_EVENT, happened)
            return ids

    def discard_read_documents(self, file_id: int) -> int:
        """Drop what a reading cut short journalled of a file still ``received`` (batches of
        :meth:`add_document_batch`, never due, never sent), with their events and problems,
        so that the file is read again from its start; returns how many were dropped. The
        documents of a file past ``received`` are never touched."""
        d = documents
        with self._write("drop the documents of a reading cut short") as conn:
            current = conn.execute(self._sql.reading, {"fid": file_id}).first()
            if current is None or current[0] != FileState.RECEIVED:
                return 0
            ids = select(d.c.id).where(d.c.file_id == file_id).scalar_subquery()
            conn.execute(
                delete(events).where(events.c.file_id == file_id, events.c.document_id.in_(ids))
            )
            conn.execute(
                delete(problem_lists).where(
                    problem_lists.c.file_id == file_id, problem_lists.c.document_id.in_(ids)
                )
            )
            conn.execute(delete(accepted_payloads).where(accepted_payloads.c.document_id.in_(ids)))
            return int(conn.execute(delete(d).where(d.c.file_id == file_id)).rowcount or 0)
