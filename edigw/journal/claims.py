"""Claiming documents to send: leases on due documents, taken by one node at a time, and the
attempt about to be made recorded with the claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from edigw.journal.connection import _INSERT_EVENT
from edigw.journal.errors import LeaseLostError, StateError
from edigw.journal.heads import HeadsMixin
from edigw.journal.rows import DocumentRow, _aware, _doc_row
from edigw.journal.schema import (
    UNFINISHED_DOC_STATES,
    DocState,
    FileState,
    documents,
    events,
    files,
)


@dataclass(frozen=True, slots=True)
class NextClaim:
    """Who claims the next document, in the transaction that records the last one's done."""

    node: str
    lease_seconds: float
    file_id: int | None = None


class ClaimsMixin(HeadsMixin):
    """Claiming due documents for a node, and giving claims back."""

    def claim_due_documents(
        self,
        *,
        now: datetime,
        node: str,
        lease_seconds: float,
        limit: int,
        file_id: int | None = None,
    ) -> list[DocumentRow]:
        """Claim up to ``limit`` documents that are due, for ``node``, until now + lease.

        Due: pending, retry_wait whose time has come, or any unfinished document whose lease
        expired (its node crashed or hung: the idempotency key makes sending again safe).
        Only heads are ever due (the first unfinished document of each business key in its
        file, or of the file when ordered: ``edigw.journal.heads``), so they reach Ecolix in
        order. Ordered by file, then position in the file; atomic across
        threads, processes and nodes. ``file_id`` restricts the claim to one file (``edigw
        process``, ``edigw replay``).
        """
        now = _aware(now)
        until = now + timedelta(seconds=lease_seconds)
        params: dict[str, Any] = {"now": now, "limit": limit}
        if file_id is not None:
            params["fid"] = file_id
        query = self._sql.claim_one_file if file_id is not None else self._sql.claim
        with self._write("claim documents") as conn:
            claimed = conn.execute(query, params).mappings().all()
            if not claimed:
                return []
            owners = {
                row.id: (row.partner, row.flow)
                for row in conn.execute(
                    self._sql.files_of, {"fids": sorted({m["file_id"] for m in claimed})}
                )
            }
            found = [
                _doc_row({**m, "partner": owners[m["file_id"]][0], "flow": owners[m["file_id"]][1]})
                for m in claimed
            ]
            conn.execute(
                self._sql.set_claim, {"ids": [d.id for d in found], "node": node, "until": until}
            )
            recovered = [d for d in found if d.claimed_by is not None]
            if recovered:
                conn.execute(
                    insert(events),
                    [
                        {
                            "file_id": d.file_id,
                            "document_id": d.id,
                            "at": now,
                            "kind": "lease_expired",
                            "detail": f"{d.state}, lease of {d.claimed_by} ended "
                            f"{d.claimed_until.isoformat() if d.claimed_until else '-'}; "
                            f"claimed again by {node}",
                        }
                        for d in recovered
                    ],
                )
        return [replace(d, claimed_by=node, claimed_until=until) for d in found]

    def claim_for_sending(
        self,
        *,
        now: datetime,
        node: str,
        lease_seconds: float,
        file_id: int | None = None,
    ) -> DocumentRow | None:
        """Claim the next due document and record the attempt about to be made, atomically.

        The same choice as :meth:`claim_due_documents` with ``limit=1``, followed by
        :meth:`mark_sent` for ``node``, in one transaction instead of two: this is every
        sender's hot path. Returns the document as it now is (``sent``, attempts counted,
        claimed by ``node``), or ``None`` when nothing is due.
        """
        claimed, _counts = self._claim_for_sending(
            now=now, node=node, lease_seconds=lease_seconds, file_id=file_id
        )
        return claimed

    def _claim_for_sending(
        self,
        *,
        now: datetime,
        node: str,
        lease_seconds: float,
        file_id: int | None = None,
        counting: int | None = None,
    ) -> tuple[DocumentRow | None, dict[str, int] | None]:
        """:meth:`claim_for_sending`; on PostgreSQL with ``counting`` (a file id, no
        ``file_id``), the same statement also counts that file's documents by state as
        ``finished_counts`` does (none while one is unfinished): a sender's question after a
        done rides on its next claim. The counts are None when no row came back (nothing
        due) or on SQLite: the caller asks on its own then."""
        now = _aware(now)
        until = now + timedelta(seconds=lease_seconds)
        params: dict[str, Any] = {"now": now, "limit": 1}
        if file_id is not None:
            params["fid"] = file_id
        merged = self._sql.merged
        counts: dict[str, int] | None = None
        if merged is not None:
            # PostgreSQL: one statement in the usual case; a lease taken over from another
            # node (its end is written first) takes the general path below.
            asking = counting is not None and file_id is None
            if asking:
                statement, params["fid"] = merged.claim_counting, counting
            else:
                statement = merged.claim_one_file if file_id is not None else merged.claim
            with self._write_single("claim a document to send", lazy=True) as conn:
                picked = (
                    conn.execute(statement, {**params, "node": node, "until": until})
                    .mappings()
                    .first()
                )
                if picked is None:
                    return None, None
                if asking:
                    counts = dict(picked["file_counts"] or {})
                if picked["claimed"]:
                    partner, flow = self._owner(conn, picked["file_id"])
                    doc = _doc_row({**picked, "partner": partner, "flow": flow})
                    return _sent(doc, node=node, until=until, now=now), counts
        with self._write("claim a document to send") as conn:
            claimed = self._claim_sending_in(conn, now=now, node=node, until=until, file_id=file_id)
            return claimed, counts

    def _claim_sending_in(
        self,
        conn: Connection,
        *,
        now: datetime,
        node: str,
        until: datetime,
        file_id: int | None,
        happened: list[dict[str, Any]] | None = None,
    ) -> DocumentRow | None:
        """Claim the next due document and record its attempt in the open transaction
        ``conn`` (:meth:`claim_for_sending`'s general path). With ``happened``, its events
        are added there for the caller to insert, instead of inserted here."""
        params: dict[str, Any] = {"now": now, "limit": 1}
        if file_id is not None:
            params["fid"] = file_id
        query = self._sql.claim_one_file if file_id is not None else self._sql.claim
        m = conn.execute(query, params).mappings().first()
        if m is None:
            return None
        partner, flow = self._owner(conn, m["file_id"])
        doc = _doc_row({**m, "partner": partner, "flow": flow})
        conn.execute(
            self._sql.claim_and_send,
            {"doc_id": doc.id, "node": node, "until": until, "now": now},
        )
        attempts = doc.attempts + 1
        events_now = happened is None
        happened = [] if happened is None else happened
        if doc.claimed_by is not None:
            happened.append(
                {
                    "file_id": doc.file_id,
                    "document_id": doc.id,
                    "at": now,
                    "kind": "lease_expired",
                    "detail": f"{doc.state}, lease of {doc.claimed_by} ended "
                    f"{doc.claimed_until.isoformat() if doc.claimed_until else '-'}; "
                    f"claimed again by {node}",
                }
            )
        happened.append(
            {
                "file_id": doc.file_id,
                "document_id": doc.id,
                "at": now,
                "kind": str(DocState.SENT),
                "detail": f"attempt {attempts} by {node}",
            }
        )
        if events_now:
            conn.execute(_INSERT_EVENT, happened)
        return _sent(doc, node=node, until=until, now=now)

    def claim_holders(self) -> list[str]:
        """The nodes that hold a lease on an unfinished document right now or recently."""
        with self._read("list claim holders") as conn:
            return [
                row[0]
                for row in conn.execute(
                    select(documents.c.claimed_by)
                    .where(
                        documents.c.claimed_by.is_not(None),
                        documents.c.state.in_(list(UNFINISHED_DOC_STATES)),
                    )
                    .distinct()
                )
            ]

    def sending_elsewhere(self, file_id: int, *, now: datetime, node: str) -> bool:
        """Whether another sender has the file's work in hand: a live lease on one of its
        documents, or its last document finished and the file not settled yet (on
        PostgreSQL the two are recorded in turn). A command that sends a file itself
        (replay, process) waits for it instead of reporting a file under way as its outcome.
        """
        with self._read("look for documents being sent") as conn:
            held = conn.execute(
                select(documents.c.id)
                .where(
                    documents.c.file_id == file_id,
                    documents.c.state == DocState.SENT,
                    documents.c.claimed_until > _aware(now),
                    documents.c.claimed_by != node,
                )
                .limit(1)
            ).first()
            if held is not None:
                return True
            state = conn.execute(select(files.c.state).where(files.c.id == file_id)).scalar()
            return state == FileState.PARSED and self._first_unfinished(conn, file_id) is None

    def release_claims(self, holders: Sequence[str], *, now: datetime) -> int:
        """End the leases of ``holders`` (processes known to be dead) so their work resumes now."""
        if not holders:
            return 0
        now = _aware(now)
        with self._write("release claims") as conn:
            result = conn.execute(
                update(documents)
                .where(
                    documents.c.claimed_by.in_(list(holders)),
                    documents.c.claimed_until > now,
                    documents.c.state.in_(list(UNFINISHED_DOC_STATES)),
                )
                .values(claimed_until=now)
            )
            return int(result.rowcount or 0)

    def mark_sent(self, doc_id: int, *, now: datetime, node: str | None = None) -> None:
        """Record an attempt about to be made (before the HTTP call): attempts += 1.

        With ``node``, refuses (:class:`LeaseLostError`) unless that node still holds an
        unexpired claim: a node that lost its lease must not send.
        """
        now = _aware(now)
        statement = self._sql.sent if node is None else self._sql.sent_by_node
        with self._write("mark a document sent") as conn:
            m = (
                conn.execute(statement, {"doc_id": doc_id, "now": now, "node": node})
                .mappings()
                .first()
            )
            if m is None:
                current = self._doc_state(conn, doc_id)
                if current["state"] not in UNFINISHED_DOC_STATES:
                    msg = f"D-{doc_id} is {current['state']}: it cannot be sent again"
                    raise StateError(msg)
                msg = f"D-{doc_id}: {node} no longer holds its claim"
                raise LeaseLostError(msg)
            by = f" by {m['claimed_by']}" if m["claimed_by"] else ""
            self._event(
                conn,
                m["file_id"],
                DocState.SENT,
                now=now,
                document_id=doc_id,
                detail=f"attempt {m['attempts']}{by}",
            )

    def _claim_next(self, claim_next: NextClaim | None, now: datetime) -> DocumentRow | None:
        if claim_next is None:
            return None
        return self.claim_for_sending(
            now=now,
            node=claim_next.node,
            lease_seconds=claim_next.lease_seconds,
            file_id=claim_next.file_id,
        )


def _sent(doc: DocumentRow, *, node: str, until: datetime, now: datetime) -> DocumentRow:
    """``doc`` as :meth:`SendingMixin.claim_for_sending` left it: claimed by ``node``, its
    attempt about to be made recorded."""
    return replace(
        doc,
        state=str(DocState.SENT),
        attempts=doc.attempts + 1,
        next_attempt_at=None,
        claimed_by=node,
        claimed_until=until,
        updated_at=now,
    )
