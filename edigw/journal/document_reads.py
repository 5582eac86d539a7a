"""Reading documents and their events back: by id, by idempotency key, a file's, filtered
lists, and what Ecolix accepted for upsert targets. Reads only, on the journal's readers.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select

from edigw.journal import accepted
from edigw.journal.conditions import _doc_select, _filtered
from edigw.journal.connection import JournalBase
from edigw.journal.errors import UnknownIdError
from edigw.journal.rows import DocumentRow, EventRow, _doc_row
from edigw.journal.schema import DocState, documents, events


class DocumentReadsMixin(JournalBase):
    """Documents and events, read back."""

    def accepted_payloads(
        self, keys: Collection[accepted.TargetKey]
    ) -> dict[accepted.TargetKey, accepted.Accepted]:
        """What the journal knows Ecolix accepted for these upsert targets
        (``edigw.journal.accepted``); targets it knows nothing of are left out."""
        if not keys:
            return {}
        with self._read("look up accepted payloads") as conn:
            return accepted.known(conn, keys)

    def document(self, doc_id: int) -> DocumentRow:
        with self._read("read a document") as conn:
            m = conn.execute(_doc_select().where(documents.c.id == doc_id)).mappings().first()
        if m is None:
            msg = f"D-{doc_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _doc_row(m)

    def document_by_key(self, idempotency_key: str) -> DocumentRow | None:
        """The document holding this idempotency key, if any (for "already done" replays)."""
        with self._read("find a document by key") as conn:
            m = (
                conn.execute(_doc_select().where(documents.c.idempotency_key == idempotency_key))
                .mappings()
                .first()
            )
        return None if m is None else _doc_row(m)

    def documents_of(self, file_id: int) -> list[DocumentRow]:
        """A file's documents in file order."""
        with self._read("list a file's documents") as conn:
            rows = conn.execute(
                _doc_select().where(documents.c.file_id == file_id).order_by(documents.c.seq)
            ).mappings()
            return [_doc_row(m) for m in rows]

    def documents(
        self,
        *,
        partner: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[DocumentRow]:
        """Documents, oldest first, filtered; ``since`` compares with ``updated_at``."""
        query = _filtered(
            _doc_select().order_by(documents.c.id),
            partner=partner,
            flow=flow,
            state=(documents.c.state, None if state is None else DocState(state)),
            since=(documents.c.updated_at, since),
            limit=limit,
        )
        with self._read("list documents") as conn:
            return [_doc_row(m) for m in conn.execute(query).mappings()]

    def events_of(self, file_id: int) -> list[EventRow]:
        """The story of a file and its documents, in the order it happened."""
        with self._read("read a file's events") as conn:
            rows = conn.execute(
                select(events).where(events.c.file_id == file_id).order_by(events.c.id)
            ).mappings()
            return [EventRow(**dict(m)) for m in rows]

    def events_of_document(self, doc_id: int) -> list[EventRow]:
        with self._read("read a document's events") as conn:
            rows = conn.execute(
                select(events).where(events.c.document_id == doc_id).order_by(events.c.id)
            ).mappings()
            return [EventRow(**dict(m)) for m in rows]
