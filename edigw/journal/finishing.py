"""Settling a file once its documents are finished: ``done``, ``failed`` or
``partially_failed``, decided by counting its documents by state.

Kept apart from journalling documents: every path that finishes a document (a sender's done,
a failure, a skip, the mover's look, a restart) ends here, and exactly one caller must see
the file's transition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from edigw.journal.heads import HeadsMixin
from edigw.journal.rows import _aware
from edigw.journal.schema import UNFINISHED_DOC_STATES, DocState, FileState
from edigw.problems import storable


class FinishingMixin(HeadsMixin):
    """Closing parsed files whose documents are all finished."""

    def finish_file_if_complete(
        self, file_id: int, *, now: datetime, last_finished: bool = False
    ) -> str | None:
        """Close a parsed file whose documents are all finished; returns the state it took.

        ``done`` when every document is done (or it has none), ``failed`` when every one
        failed, ``partially_failed`` otherwise. Returns ``None`` while documents are still
        unfinished or when the file is not ``parsed``, so exactly one caller sees the
        transition and acts on it (moving the source, writing the error file).

        ``last_finished``: the caller just saw the file's last unfinished document finish
        (:meth:`mark_done` and the like returned true), so the quick look for a head that
        spares other callers the write is skipped; the counts decide as always.
        """
        now = _aware(now)
        merged = self._sql.merged
        if merged is not None:
            return self._finish_merged(
                file_id, now=now, statement=merged.file_finished_told, look=not last_finished
            )
        if not last_finished:
            with self._read("check a file's documents") as conn:
                # A file with an unfinished document has a head: one index seek, no write lock.
                if conn.execute(self._sql.has_head, {"fid": file_id}).first() is not None:
                    return None
        with self._write("finish a file", barrier=True) as conn:
            return self._finish_in(conn, file_id, now=now)

    def _finish_in(self, conn: Connection, file_id: int, *, now: datetime) -> str | None:
        """SQLite: finish a parsed file whose documents are all finished, in the open
        transaction ``conn`` (the caller makes it durable); its state, or None."""
        counts = self._finished_counts(conn, file_id)
        if counts is None:
            return None
        state, error, detail = _finished_file(counts)
        result = conn.execute(
            self._sql.file_finished,
            {"fid": file_id, "state": str(state), "error": error, "now": now},
        )
        if result.rowcount == 0:
            return None
        self._event(conn, file_id, state, now=now, detail=detail)
        return str(state)

    def _finished_counts(self, conn: Connection, file_id: int) -> dict[str, int] | None:
        """The file's documents counted by state, or None while one is unfinished."""
        counts: dict[str, int] = dict(
            conn.execute(self._sql.state_counts, {"fid": file_id}).all()  # type: ignore[arg-type]
        )
        if any(counts.get(s, 0) for s in UNFINISHED_DOC_STATES):
            return None
        return counts

    def _finish_merged(
        self,
        file_id: int,
        *,
        now: datetime,
        statement: Any,
        look: bool = True,
        counts: dict[str, int] | None = None,
    ) -> str | None:
        """PostgreSQL: :meth:`finish_file_if_complete` in autocommit, its last two writes in
        one statement; ``counts``, the file's documents by state as the caller just read them
        (none unfinished), are not read again. Under READ COMMITTED the counts read in a
        transaction were no firmer:
        the update's own condition (the file still ``parsed``) is what decides."""
        with self._write_single("finish a file", barrier=True) as conn:
            if look and conn.execute(self._sql.has_head, {"fid": file_id}).first() is not None:
                return None
            if counts is None:
                counts = self._finished_counts(conn, file_id)
            if counts is None:
                return None
            state, error, detail = _finished_file(counts)
            result = conn.execute(
                statement,
                {
                    "fid": file_id,
                    "state": str(state),
                    "error": error,
                    "now": now,
                    "detail": storable(detail),
                },
            )
            return None if result.first() is None else str(state)


def _finished_file(counts: dict[str, int]) -> tuple[FileState, str | None, str]:
    """The final state of a file whose documents are all finished (``counts`` by state), its
    error and its event's detail."""
    done, failed = counts.get(DocState.DONE, 0), counts.get(DocState.FAILED, 0)
    skipped = counts.get(DocState.SKIPPED, 0)
    unchanged = counts.get(DocState.UNCHANGED, 0)
    if failed == 0:
        state = FileState.DONE
    elif done + skipped + unchanged == 0:
        state = FileState.FAILED
    else:
        state = FileState.PARTIALLY_FAILED
    total = done + failed + skipped + unchanged
    error = None if failed == 0 else f"{failed} of {total} document(s) failed"
    detail = (
        f"{done} done, {failed} failed"
        + (f", {skipped} skipped by the mapping" if skipped else "")
        + (f", {unchanged} unchanged (not sent)" if unchanged else "")
    )
    return state, error, detail
