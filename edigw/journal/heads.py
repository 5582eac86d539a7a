"""Each file's head document: the first unfinished one, the only one that may be claimed."""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping

from edigw.journal.connection import JournalBase
from edigw.journal.errors import UnknownIdError


class HeadsMixin(JournalBase):
    """Finding and moving the head of a file's documents."""

    def _owner(self, conn: Connection, file_id: int) -> tuple[str, str]:
        """(partner, flow) of a file, remembered: it never changes once written."""
        owner = self._owners.get(file_id)
        if owner is None:
            row = conn.execute(self._sql.files_of, {"fids": [file_id]}).one()
            if len(self._owners) >= 10_000:
                self._owners.clear()
            owner = self._owners[file_id] = (row.partner, row.flow)
        return owner

    def _doc_state(self, conn: Connection, doc_id: int) -> RowMapping:
        m = conn.execute(self._sql.doc_state, {"doc_id": doc_id}).mappings().first()
        if m is None:
            msg = f"D-{doc_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return m

    def _first_unfinished(self, conn: Connection, file_id: int) -> int | None:
        """Position of the file's first unfinished document (three index seeks)."""
        value: int | None = conn.execute(self._sql.first_unfinished, {"fid": file_id}).scalar()
        return value

    def _refresh_head(self, conn: Connection, file_id: int) -> bool:
        """Point the file's head at its first unfinished document, whatever happened before.

        Returns whether the file has no unfinished document left."""
        head = self._first_unfinished(conn, file_id)
        conn.execute(self._sql.clear_heads, {"fid": file_id, "head": -1 if head is None else head})
        if head is not None:
            conn.execute(self._sql.set_head, {"fid": file_id, "head": head})
        return head is None

    def _advance_head(self, conn: Connection, finished: RowMapping, doc_id: int) -> bool:
        """A document finished: hand the file's head to the next unfinished document.

        The usual case (the head finished) is two statements whatever the file's size; any
        other case (a stale worker, a replay) recomputes the head from scratch. Returns
        whether the file has no unfinished document left.
        """
        file_id = finished["file_id"]
        if not finished["file_head"]:
            return self._refresh_head(conn, file_id)
        head = self._first_unfinished(conn, file_id)
        conn.execute(
            self._sql.move_head,
            {"doc_id": doc_id, "fid": file_id, "head": -1 if head is None else head},
        )
        return head is None
