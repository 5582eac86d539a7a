"""PostgreSQL's hot path in fewer statements: each of these does in one statement (data-modifying
``WITH`` queries) what the SQLite journal does in two to four, run in autocommit.

On PostgreSQL every statement is a round trip to the server and every transaction two more
(``BEGIN``, ``COMMIT``), and each costs the gateway's CPU in SQLAlchemy and the driver: a
document's claim, its outcome and its source's disposal were 20 statements and 8 transactions.
A single statement is atomic by itself, so these need no transaction around them.

Each covers the usual case only and says when it did not apply (a lease taken over from a dead
node, a document that was not its file's head): the caller then takes the general path, in one
transaction as before. All of a statement's parts see the same snapshot, taken before any of
them writes: what they read of the rows they change is the rows as they were.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Update,
    bindparam,
    cast,
    insert,
    literal,
    null,
    select,
    true,
    update,
)
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter

from edigw.journal.schema import (
    DocState,
    UtcDateTime,
    channel_actions,
    documents,
    events,
    files,
    unfinished_condition,
)


def _kind(kind: str) -> BindParameter[str]:
    return literal(kind, String())


class MergedStatements:
    """The PostgreSQL journal's merged statements, built once per journal."""

    def __init__(
        self,
        claim: Select[Any],
        claim_one_file: Select[Any],
        done: Update,
        file_finished: Update,
    ) -> None:
        d = documents
        now = bindparam("now", type_=UtcDateTime())
        node = bindparam("node", type_=String())
        doc_id = bindparam("doc_id", type_=Integer())

        self.claim = self._claim(claim, now, node)
        self.claim_one_file = self._claim(claim_one_file, now, node)

        # The head finished: it is done, its event written and the head handed to the next
        # unfinished document of its file, or nothing when the document was not its file's
        # head (the caller then recomputes the head in a transaction of its own). Ordered
        # files only: an unordered file's head hands over to the next of its business key and
        # its completion is asked under the file's lock (``edigw.journal.heads``), which the
        # general path does.
        ordered = (
            select(files.c.id).where(files.c.id == d.c.file_id, files.c.ordered == true()).exists()
        )
        was = select(d.c.file_head).where(d.c.id == doc_id).cte("was")
        finished = (
            done.where(d.c.file_head == true(), ordered)
            .values(file_head=False)
            .returning(d.c.file_id, d.c.seq)
            .cte("finished")
        )
        detail = bindparam("detail", type_=String())
        told = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(finished.c.file_id, doc_id, now, _kind(str(DocState.DONE)), detail),
        )
        # The snapshot predates the update: the finished document still looks unfinished.
        following = (
            select(d.c.id, d.c.seq)
            .where(
                d.c.file_id == select(finished.c.file_id).scalar_subquery(),
                unfinished_condition(),
                d.c.id != doc_id,
            )
            .order_by(d.c.seq)
            .limit(1)
            .cte("following")
        )
        handed = (
            update(d)
            .where(d.c.id == select(following.c.id).scalar_subquery())
            .values(file_head=True)
        )
        self.done = (
            select(
                was.c.file_head,
                select(finished.c.file_id).scalar_subquery().label("file_id"),
                select(following.c.seq).scalar_subquery().label("next_seq"),
            )
            .add_cte(told.cte("told"), nest_here=False)
            .add_cte(handed.cte("handed"), nest_here=False)
        )

        # A file closed and its event (returned); no row when it was not ``parsed`` any more.
        closed = file_finished.returning(files.c.id).cte("closed")
        self.file_finished_told = (
            insert(events)
            .from_select(
                ["file_id", "document_id", "at", "kind", "detail"],
                select(closed.c.id, null(), now, bindparam("state", type_=String()), detail),
            )
            .returning(events.c.id)
        )

        # A source's disposal and its line in the file's story.
        action = insert(channel_actions).values(
            file_id=bindparam("file_id", type_=Integer()),
            action=bindparam("action", type_=String()),
            ok=bindparam("ok"),
            error=bindparam("error", type_=String()),
            at=now,
            target=bindparam("target", type_=String()),
        )
        self.channel_action_told = (
            insert(events)
            .values(
                file_id=bindparam("file_id", type_=Integer()),
                document_id=null(),
                at=now,
                kind="channel",
                detail=bindparam("detail", type_=String()),
            )
            .add_cte(action.cte("action"))
        )

    @staticmethod
    def _claim(
        due: Select[Any], now: BindParameter[datetime], node: BindParameter[str]
    ) -> Select[Any]:
        """The next due document claimed and its attempt recorded (state ``sent``, attempts
        + 1, the ``sent`` event), unless another node held a lease on it: then it is only
        returned (``claimed`` false) and the caller records the lease's end in a transaction.
        Returns the document as it was before the claim."""
        d = documents
        picked = due.cte("picked")
        fresh = picked.c.claimed_by.is_(None)
        claimed = (
            update(d)
            .where(d.c.id == picked.c.id, fresh)
            .values(
                claimed_by=node,
                claimed_until=bindparam("until", type_=UtcDateTime()),
                state=str(DocState.SENT),
                attempts=d.c.attempts + 1,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        detail = (
            literal("attempt ", String())
            + cast(picked.c.attempts + 1, String())
            + literal(" by ", String())
            + node
        )
        told = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(picked.c.file_id, picked.c.id, now, _kind(str(DocState.SENT)), detail).where(
                fresh
            ),
        )
        return (
            select(picked, fresh.label("claimed"))
            .add_cte(claimed.cte("claimed"), nest_here=False)
            .add_cte(told.cte("told"), nest_here=False)
        )


__all__ = ["MergedStatements"]
