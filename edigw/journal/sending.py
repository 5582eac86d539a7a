"""Sending documents: the outcomes of a call to Ecolix other than its success (retry,
failed, not sent, skipped) and replays. The claims that come before a call are in ``claims``;
a success, the busiest path, in ``done``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update

from edigw.errors import DataProblem
from edigw.journal import accepted
from edigw.journal.accepted import Upsert
from edigw.journal.done import DoneMixin
from edigw.journal.errors import StateError
from edigw.journal.failures import FailuresMixin
from edigw.journal.rows import _aware, _dumps
from edigw.journal.schema import (
    FINAL_FILE_STATES,
    DocState,
    FileState,
    documents,
    files,
)
from edigw.journal.schema import problems as problem_lists
from edigw.model import Location
from edigw.problems import ProblemList, bounded, storable


class SendingMixin(DoneMixin, FailuresMixin):
    """Recording what each call to Ecolix did."""

    def mark_retry(
        self,
        doc_id: int,
        *,
        now: datetime,
        next_attempt_at: datetime,
        reason: str,
        sent: bool = True,
    ) -> None:
        """Park an unfinished document until ``next_attempt_at`` (temporary failure).

        ``sent=False``: the call never left (connection refused, DNS, connect timeout, a
        pause): the attempt recorded for it is undone and counted in ``not_sent`` instead,
        so an outage, however long, never makes a document fail for too many attempts.
        The document must be ``sent`` then.
        """
        now = _aware(now)
        next_attempt_at = _aware(next_attempt_at, "next_attempt_at")
        reason = storable(reason)
        statement = self._sql.retry if sent else self._sql.retry_not_sent
        with self._write("schedule a retry") as conn:
            m = (
                conn.execute(
                    statement,
                    {"doc_id": doc_id, "now": now, "next_at": next_attempt_at, "reason": reason},
                )
                .mappings()
                .first()
            )
            if m is None:
                current = self._doc_state(conn, doc_id)
                msg = f"D-{doc_id} is {current['state']}: it cannot wait for a retry"
                raise StateError(msg)
            counted = "" if sent else "; not sent, no attempt counted"
            self._event(
                conn,
                m["file_id"],
                DocState.RETRY_WAIT,
                now=now,
                document_id=doc_id,
                detail=f"{reason}{counted}; next attempt at {next_attempt_at.isoformat()}",
            )

    def mark_not_sent(self, doc_id: int, *, now: datetime, reason: str) -> None:
        """Undo the attempt recorded for a call that was never made (the gateway stopped
        while it waited its turn): the document is pending again, due at once, its claim
        ended. Does nothing unless the document is ``sent``."""
        now = _aware(now)
        with self._write("give back a document not sent") as conn:
            m = conn.execute(self._sql.not_sent, {"doc_id": doc_id, "now": now}).mappings().first()
            if m is not None:
                self._event(
                    conn, m["file_id"], DocState.PENDING, now=now, document_id=doc_id, detail=reason
                )

    def mark_failed(
        self,
        doc_id: int,
        *,
        now: datetime,
        reason: str,
        location: str | Location | None = None,
        status: int | None = None,
        response: Any = None,
        problems: Sequence[DataProblem] | ProblemList = (),
    ) -> bool:
        """Fail a document for good with its reason (and source location, Ecolix answer).

        ``reason`` is kept within ``MAX_MESSAGE`` characters; ``problems`` (e.g. every field
        error Ecolix listed) are kept whole when the reason could not hold them all.
        Returns whether the file has no unfinished document left (see :meth:`mark_done`).
        """
        now = _aware(now)
        body = _dumps(response, f"Ecolix response of D-{doc_id}")
        where = None if location is None else str(location)
        reason = storable(reason)
        with self._write("mark a document failed") as conn:
            finished = (
                conn.execute(
                    self._sql.failed,
                    {
                        "doc_id": doc_id,
                        "now": now,
                        "reason": reason,
                        "where": where,
                        "status": status,
                        "response": body,
                    },
                )
                .mappings()
                .first()
            )
            if finished is None:
                self._doc_state(conn, doc_id)  # raises for an unknown id
                msg = f"D-{doc_id} is already done: it cannot fail"
                raise StateError(msg)
            if problems:
                self._keep_problems(conn, finished["file_id"], doc_id, problems)
            self._event(
                conn,
                finished["file_id"],
                DocState.FAILED,
                now=now,
                document_id=doc_id,
                detail=reason if where is None else f"{where}: {reason}",
            )
            return self._advance_head(conn, finished, doc_id)

    def mark_skipped(self, doc_id: int, *, now: datetime, reason: str) -> bool:
        """Skip a failed document that the (corrected) mapping now skips, with its reason.

        Returns whether the file has no unfinished document left (see :meth:`mark_done`).
        """
        now = _aware(now)
        reason = bounded(reason)
        with self._write("mark a document skipped") as conn:
            current = self._doc_state(conn, doc_id)
            if current["state"] != DocState.FAILED:
                msg = f"D-{doc_id} is {current['state']}: only a failed document can be skipped"
                raise StateError(msg)
            conn.execute(
                update(documents)
                .where(documents.c.id == doc_id)
                .values(state=DocState.SKIPPED, error=reason, updated_at=now)
            )
            conn.execute(problem_lists.delete().where(problem_lists.c.document_id == doc_id))
            self._event(
                conn,
                current["file_id"],
                DocState.SKIPPED,
                now=now,
                document_id=doc_id,
                detail=reason,
            )
            return conn.execute(self._sql.has_head, {"fid": current["file_id"]}).first() is None

    def reset_for_replay(
        self,
        doc_id: int,
        *,
        payload: Mapping[str, Any],
        operation: str,
        now: datetime,
        force: bool = False,
        upsert: Upsert | None = None,
        mapping_version: str | None = None,
    ) -> None:
        """Make a failed document pending again with a re-mapped payload (same idempotency key),
        made by the mapping version ``mapping_version``; with ``force``, an ``unchanged`` one
        too (sent although Ecolix accepted the same payload last, ``upsert`` saying for which
        object).

        Attempts start again from zero (the events keep the earlier ones), and a file that had
        finished goes back to ``parsed`` until its documents are finished again.
        """
        now = _aware(now)
        body = _dumps(payload, f"payload of D-{doc_id}")
        with self._write("reset a document for replay", barrier=True) as conn:
            current = self._doc_state(conn, doc_id)
            replayable = {DocState.FAILED, DocState.UNCHANGED} if force else {DocState.FAILED}
            if current["state"] not in replayable:
                detail = "already done" if current["state"] == DocState.DONE else current["state"]
                only = "a failed or unchanged" if force else "a failed"
                msg = f"D-{doc_id} is {detail}: only {only} document can be replayed"
                raise StateError(msg)
            if upsert is not None:
                accepted.expect(conn, [(doc_id, upsert)], now=now, pg=self._pg)
            file_id = current["file_id"]
            conn.execute(
                update(documents)
                .where(documents.c.id == doc_id)
                .values(
                    state=DocState.PENDING,
                    payload=body,
                    operation=operation,
                    mapping_version=mapping_version,
                    attempts=0,
                    not_sent=0,
                    error=None,
                    error_location=None,
                    ecolix_status=None,
                    ecolix_object_id=None,
                    ecolix_response=None,
                    next_attempt_at=None,
                    claimed_by=None,
                    claimed_until=None,
                    updated_at=now,
                )
            )
            conn.execute(problem_lists.delete().where(problem_lists.c.document_id == doc_id))
            self._event(conn, file_id, "replay", now=now, document_id=doc_id, detail=operation)
            self._refresh_head(conn, file_id, current["business_key"])
            reopened = conn.execute(
                update(files)
                .where(files.c.id == file_id, files.c.state.in_(FINAL_FILE_STATES))
                .values(state=FileState.PARSED, finished_at=None, updated_at=now)
            )
            if reopened.rowcount:
                self._event(
                    conn, file_id, FileState.PARSED, now=now, detail=f"reopened for D-{doc_id}"
                )
