"""Sending documents: the outcome of each call to Ecolix (done, retry, failed, not sent,
skipped) and replays. The claims that come before a call are in ``claims``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, update

from edigw.errors import DataProblem
from edigw.journal import accepted
from edigw.journal.accepted import Upsert
from edigw.journal.claims import ClaimsMixin, NextClaim
from edigw.journal.connection import _INSERT_EVENT
from edigw.journal.dialect import translated
from edigw.journal.documents import DocumentsMixin
from edigw.journal.errors import StateError
from edigw.journal.failures import FailuresMixin
from edigw.journal.rows import DocumentRow, _aware, _dumps
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


class DoneOutcome(NamedTuple):
    """What :meth:`SendingMixin.mark_done_finishing` did."""

    #: The file may be complete (no unfinished document left).
    complete: bool
    #: The file's final state when this call finished it.
    file_state: str | None
    #: The next document, claimed and its attempt recorded (``claim_next``), if one was due.
    claimed: DocumentRow | None


@dataclass(frozen=True, slots=True)
class _Answer:
    """Ecolix's success as the journal stores it: the document's columns and its event."""

    status: int | None
    object_id: str | None
    body: str | None
    told: str

    @classmethod
    def of(cls, doc_id: int, status: int | None, object_id: str | None, response: Any) -> _Answer:
        return cls(
            status,
            object_id,
            _dumps(response, f"Ecolix response of D-{doc_id}"),
            f"{status if status is not None else '-'} {object_id or ''}".strip(),
        )


class SendingMixin(ClaimsMixin, DocumentsMixin, FailuresMixin):
    """Recording what each call to Ecolix did."""

    def mark_done(
        self,
        doc_id: int,
        *,
        now: datetime,
        status: int | None,
        object_id: str | None,
        response: Any,
        upsert: Upsert | None = None,
        file_id: int | None = None,
    ) -> bool:
        """Record Ecolix's success. Idempotent: a document already done keeps its first answer.

        ``upsert``: the document was an upsert of this object and payload, now what Ecolix
        holds (``edigw.journal.accepted``), recorded in the same transaction.

        ``file_id``, the document's file when the caller knows it: on PostgreSQL a file known
        to be unordered takes the one-statement path of unordered files (a document done and
        its business key's next document made head), then one question: is the file
        finished? Any other file tries the one-statement path of ordered files.

        Returns whether the file may now be complete (no unfinished document left, or the
        document was already done): then :meth:`finish_file_if_complete` settles it.
        """
        now = _aware(now)
        answer = _Answer.of(doc_id, status, object_id, response)
        merged = self._sql.merged
        unordered = file_id is not None and self._ordered_files.get(file_id) is False
        if merged is not None and upsert is None:
            # PostgreSQL: one statement when the document is its line's head (the usual
            # case); anything else (already done, not the head, unknown) the general path.
            with self._write_single("mark a document done", lazy=True) as conn:
                head = conn.execute(
                    merged.done_of_key if unordered else merged.done,
                    {
                        "doc_id": doc_id,
                        "now": now,
                        "status": status,
                        "object_id": object_id,
                        "response": answer.body,
                        "detail": storable(answer.told),
                    },
                ).first()
            if head is not None and head.file_id is not None:
                if head.next_seq is not None or not unordered:
                    return head.next_seq is None
                # Asked once the done is committed: of two documents finishing at once, the
                # later to ask sees both (``MergedStatements``).
                with self._read("ask whether a file is finished") as conn:
                    return self._first_unfinished(conn, head.file_id) is None
        with self._write("mark a document done") as conn:
            return self._done_in(conn, doc_id, answer, now=now, upsert=upsert) is not None

    def mark_done_finishing(
        self,
        doc_id: int,
        *,
        now: datetime,
        status: int | None,
        object_id: str | None,
        response: Any,
        upsert: Upsert | None = None,
        file_id: int | None = None,
        claim_next: NextClaim | None = None,
    ) -> DoneOutcome:
        """:meth:`mark_done`, then :meth:`finish_file_if_complete` when the file may be
        complete, then with ``claim_next`` :meth:`claim_for_sending` for the sender's next
        document. On SQLite all three in one transaction, made durable before it returns when
        the file finished (a barrier: its source may be moved next): a sender takes one turn
        at the journal's lock a document, not two or three.

        When finishing the file fails, the done is committed all the same and the error
        raised after it, as two calls would (the mover finishes the file later); nothing is
        claimed then. A claim that fails leaves the done committed and claims nothing: the
        sender's own next claim meets the failure.
        """
        if self._pg:
            complete = self.mark_done(
                doc_id,
                now=now,
                status=status,
                object_id=object_id,
                response=response,
                upsert=upsert,
                file_id=file_id,
            )
            state = None
            if complete and file_id is not None:
                state = self.finish_file_if_complete(file_id, now=now, last_finished=True)
            return DoneOutcome(complete, state, self._claim_next(claim_next, now))
        now = _aware(now)
        answer = _Answer.of(doc_id, status, object_id, response)
        try:
            of_file, state, refused, claimed = self._done_finishing_in_one(
                doc_id, answer, now=now, upsert=upsert, claim_next=claim_next
            )
        except Exception:
            if claim_next is None:
                raise
            # Nothing was written: the done alone, as if no claim had been asked for (the
            # sender's own next claim meets whatever failed, if it was the claim).
            of_file, state, refused, claimed = self._done_finishing_in_one(
                doc_id, answer, now=now, upsert=upsert, claim_next=None
            )
        if refused is not None:
            with translated("finish a file"):
                raise refused
        if state is not None:
            self._make_durable("finish a file")
        return DoneOutcome(of_file is not None, state, claimed)

    def _done_finishing_in_one(
        self,
        doc_id: int,
        answer: _Answer,
        *,
        now: datetime,
        upsert: Upsert | None,
        claim_next: NextClaim | None,
    ) -> tuple[int | None, str | None, Exception | None, DocumentRow | None]:
        """SQLite's :meth:`mark_done_finishing` transaction: the done, the file finished (in
        a savepoint: a refusal is returned, the done stands) and the next claim. Returns the
        file's id when it may be complete, its final state, the refusal, the claimed row."""
        state, refused, claimed = None, None, None
        with self._write("mark a document done") as conn:
            # The done's event and the claim's in one statement: each statement lets
            # other threads take the interpreter while this one holds the write lock.
            happened: list[dict[str, Any]] = []
            of_file = self._done_in(conn, doc_id, answer, now=now, upsert=upsert, happened=happened)
            if of_file is not None:
                conn.execute(_INSERT_EVENT, happened)  # before the file's own
                happened = []
                try:
                    with self._savepoint(conn):
                        state = self._finish_in(conn, of_file, now=now)
                except Exception as exc:  # the done stands; the file is finished later
                    refused = exc
            if claim_next is not None and refused is None:
                claimed = self._claim_sending_in(
                    conn,
                    now=now,
                    node=claim_next.node,
                    until=now + timedelta(seconds=claim_next.lease_seconds),
                    file_id=claim_next.file_id,
                    happened=happened,
                )
            if happened:
                conn.execute(_INSERT_EVENT, happened)
        return of_file, state, refused, claimed

    def _done_in(
        self,
        conn: Connection,
        doc_id: int,
        answer: _Answer,
        *,
        now: datetime,
        upsert: Upsert | None,
        happened: list[dict[str, Any]] | None = None,
    ) -> int | None:
        """Record a document done in the open transaction ``conn``; returns its file's id
        when the file may now be complete (see :meth:`mark_done`), else None. With
        ``happened``, its event is added there for the caller to insert."""
        finished = (
            conn.execute(
                self._sql.done,
                {
                    "doc_id": doc_id,
                    "now": now,
                    "status": answer.status,
                    "object_id": answer.object_id,
                    "response": answer.body,
                },
            )
            .mappings()
            .first()
        )
        if finished is None:
            current = self._doc_state(conn, doc_id)  # raises for an unknown id
            return int(current["file_id"])  # already done: the first answer stands
        if upsert is not None:
            accepted.accept(
                conn, doc_id, upsert.operation, upsert.target, upsert.payload_sha256, now
            )
        event = self._event_row(
            finished["file_id"], DocState.DONE, now=now, document_id=doc_id, detail=answer.told
        )
        if happened is None:
            conn.execute(_INSERT_EVENT, event)
        else:
            happened.append(event)
        return int(finished["file_id"]) if self._advance_head(conn, finished, doc_id) else None

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
