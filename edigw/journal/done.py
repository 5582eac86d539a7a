"""A document done: Ecolix's success recorded, its line's next document made head, its file
settled when it was the last, and the sender's next document claimed, in as few turns at the
journal as each database allows (one transaction on SQLite, single statements on PostgreSQL).

The busiest path of the journal (once per document sent), kept apart from the other outcomes
of a call (``sending``) so that its shape per database can be read at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection

from edigw.journal import accepted
from edigw.journal.accepted import Upsert
from edigw.journal.claims import ClaimsMixin, NextClaim
from edigw.journal.connection import _INSERT_EVENT
from edigw.journal.dialect import translated
from edigw.journal.documents import DocumentsMixin
from edigw.journal.rows import DocumentRow, _aware, _dumps
from edigw.journal.schema import DocState
from edigw.problems import storable


class DoneOutcome(NamedTuple):
    """What :meth:`DoneMixin.mark_done_finishing` did."""

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


class DoneMixin(ClaimsMixin, DocumentsMixin):
    """Recording Ecolix's successes."""

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
        complete, _counts, _ask = self._done_counted(
            doc_id,
            now=now,
            status=status,
            object_id=object_id,
            response=response,
            upsert=upsert,
            file_id=file_id,
        )
        return complete

    def _done_counted(
        self,
        doc_id: int,
        *,
        now: datetime,
        status: int | None,
        object_id: str | None,
        response: Any,
        upsert: Upsert | None,
        file_id: int | None,
        ask: bool = True,
    ) -> tuple[bool, dict[str, int] | None, int | None]:
        """:meth:`mark_done`, and the file's documents counted by state when the PostgreSQL
        path of unordered files found it complete (the look and the count in one question,
        which settling the file then needs not ask again), else None.

        Without ``ask``, that question is left to the caller, which asks it in its next
        statement: the third item is then the file to ask about (else None)."""
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
                    return head.next_seq is None, None, None
                if not ask:
                    return False, None, head.file_id
                counts = self._finished_counts_of(head.file_id)
                return bool(counts), counts or None, None
        with self._write("mark a document done") as conn:
            complete = self._done_in(conn, doc_id, answer, now=now, upsert=upsert) is not None
            return complete, None, None

    def _finished_counts_of(self, file_id: int) -> dict[str, int]:
        """PostgreSQL: ``file_id``'s documents counted by state, none while one is unfinished.
        Asked once the done is committed: of two documents finishing at once, the later to
        ask sees both (``MergedStatements``)."""
        with self._read("ask whether a file is finished") as conn:
            rows = conn.execute(self._sql.finished_counts, {"fid": file_id})
            return {state: n for state, n in rows}

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
        merged = self._sql.merged
        if merged is not None:  # PostgreSQL
            # The question "is the file finished?" rides on the next claim's statement
            # when there is one (a claim of any file: the file's parameter is free).
            ride = claim_next is not None and claim_next.file_id is None
            complete, counts, ask = self._done_counted(
                doc_id,
                now=now,
                status=status,
                object_id=object_id,
                response=response,
                upsert=upsert,
                file_id=file_id,
                ask=not ride,
            )
            if ask is None:
                state = self._finish_done(file_id, complete=complete, counts=counts, now=now)
                return DoneOutcome(complete, state, self._claim_next(claim_next, now))
            assert claim_next is not None
            return self._claim_asking(claim_next, ask, now)
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

    def _claim_asking(self, claim_next: NextClaim, file_id: int, now: datetime) -> DoneOutcome:
        """PostgreSQL: the sender's next claim, asking in the same statement whether
        ``file_id``, whose document it has just done, is finished; the file settled if so."""
        try:
            claimed, counts = self._claim_for_sending(
                now=now,
                node=claim_next.node,
                lease_seconds=claim_next.lease_seconds,
                counting=file_id,
            )
        except BaseException:
            # The done stands: the file is still settled if it was the last, as without a
            # claim; then the claim's failure, for the sender's next claim to meet.
            counts = self._finished_counts_of(file_id)
            self._finish_done(file_id, complete=bool(counts), counts=counts or None, now=now)
            raise
        if counts is None:  # nothing was due: no row came back to carry the counts
            counts = self._finished_counts_of(file_id)
        state = self._finish_done(file_id, complete=bool(counts), counts=counts or None, now=now)
        return DoneOutcome(bool(counts), state, claimed)

    def _finish_done(
        self,
        file_id: int | None,
        *,
        complete: bool,
        counts: dict[str, int] | None,
        now: datetime,
    ) -> str | None:
        """PostgreSQL: settle ``file_id`` when its last document is done (its counts known
        from the look, or counted anew); its final state, else None."""
        merged = self._sql.merged
        if not complete or file_id is None or merged is None:
            return None
        return self._finish_merged(
            file_id,
            now=_aware(now),
            statement=merged.file_finished_told,
            look=False,
            counts=counts,
        )

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
