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
    false,
    func,
    insert,
    literal,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter

from edigw.journal.conditions import ONE
from edigw.journal.leases import DROP_FILE_CLAIM
from edigw.journal.prepared import prepare_attributes
from edigw.journal.schema import (
    DocState,
    FileState,
    UtcDateTime,
    channel_actions,
    documents,
    events,
    files,
    unfinished_condition,
)

#: The columns of each document ``read_recorded`` writes, each from an array named after it
#: with an ``s`` (``seqs``, ``business_keys``...).
READ_ARRAYS = (
    "seq",
    "business_key",
    "key_hash",
    "operation",
    "payload",
    "idempotency_key",
    "state",
    "file_head",
    "ecolix_status",
    "ecolix_object_id",
    "ecolix_response",
    "error",
    "error_location",
    "mapping_version",
)

#: The columns ``add_file_if_new`` writes, each from the parameter of its name.
_RECEIVED_COLUMNS = (
    "partner",
    "flow",
    "channel",
    "original_name",
    "source_path",
    "size",
    "sha256",
    "archive_path",
    "state",
    "reader",
    "ordered",
    "received_at",
    "updated_at",
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
        reception_known: Select[Any],
        file_parsed_by_reader: Update,
        finished_counts: Select[Any],
    ) -> None:
        now = bindparam("now", type_=UtcDateTime())
        node = bindparam("node", type_=String())
        doc_id = bindparam("doc_id", type_=Integer())

        # One document a claim (``ONE``: a generic plan PostgreSQL keeps, not one a call).
        self.claim = self._claim(claim.limit(ONE), now, node)
        self.claim_one_file = self._claim(claim_one_file.limit(ONE), now, node)
        # A claim that also counts the documents of the file ``fid`` by state, as
        # ``finished_counts`` does, in ``file_counts`` (a JSON object; NULL while one is
        # unfinished): a sender's "is the file of my last done finished?" asked in its next
        # claim, a statement begun after that done committed (``DoneMixin``).
        finished = finished_counts.subquery("finished")
        counts = select(func.json_object_agg(finished.c[0], finished.c[1])).scalar_subquery()
        self.claim_counting = self.claim.add_columns(counts.label("file_counts"))

        # The head finished: it is done, its event written and the head handed to the next
        # unfinished document of its line, or nothing when the document was not its line's
        # head (the caller then recomputes the head in a transaction of its own).
        # - ``done``: an ordered file, whose line is the file.
        # - ``done_of_key``: an unordered file, whose lines are its business keys
        #   (``edigw.journal.heads``). Whether the file is finished is not asked here: this
        #   statement's snapshot may miss the other keys' documents finishing at the same
        #   moment. The caller asks after this one committed, and the statement holds the
        #   file's row lock until then, as the general path does from before it asks until
        #   its commit: of two documents finishing at once, the later to ask sees both.
        self.done = self._done(done, now, doc_id, by_key=False)
        self.done_of_key = self._done(done, now, doc_id, by_key=True)

        # A file closed and its event (returned); no row when it was not ``parsed`` any more.
        detail = bindparam("detail", type_=String())
        closed = file_finished.returning(files.c.id).cte("closed")
        self.file_finished_told = (
            insert(events)
            .from_select(
                ["file_id", "document_id", "at", "kind", "detail"],
                select(closed.c.id, null(), now, bindparam("state", type_=String()), detail),
            )
            .returning(events.c.id)
        )

        # A file received, recorded with its event unless ``reception_known`` finds it may
        # not be new (``ReceptionMixin.add_file_if_new``): returns its id, or NULL.
        received = (
            insert(files)
            .from_select(
                _RECEIVED_COLUMNS,
                select(
                    *(bindparam(name, type_=files.c[name].type) for name in _RECEIVED_COLUMNS)
                ).where(~reception_known.exists()),
            )
            .returning(files.c.id)
            .cte("received")
        )
        told_received = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(received.c.id, null(), now, _kind(str(FileState.RECEIVED)), detail),
        )
        self.file_if_new = select(select(received.c.id).scalar_subquery().label("file_id")).add_cte(
            told_received.cte("told_received"), nest_here=False
        )

        # A file read moved to ``parsed`` (still ``received`` by its reader) and the events of
        # its reading, in their order, given as arrays; no row is written when the file was
        # not its reader's any more (``DocumentsMixin._record_parsed``).
        parsed = file_parsed_by_reader.returning(files.c.id).cte("parsed")
        told = (
            func.unnest(
                bindparam("document_ids", type_=ARRAY(Integer())),
                bindparam("kinds", type_=ARRAY(String())),
                bindparam("details", type_=ARRAY(String())),
            )
            .table_valued("document_id", "kind", "detail", with_ordinality="n")
            .render_derived()
            .alias("told")
        )
        self.parsed_told = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(parsed.c.id, told.c.document_id, now, told.c.kind, told.c.detail)
            .select_from(parsed.join(told, true()))
            .order_by(told.c.n),
        )

        # A whole file read at once (``DocumentsMixin._record_read``): the file moved to
        # ``parsed`` (still ``received`` by its reader), its documents and the events of its
        # reading (each document's, then the file's), every row given as arrays. Returns one
        # row per document (its id and position), or one empty row for a file without any;
        # none when the file was not its reader's any more, and then nothing is written.
        arrays = {
            name: bindparam(f"{name}s", type_=ARRAY(documents.c[name].type)) for name in READ_ARRAYS
        }
        rows = (
            func.unnest(*arrays.values())
            .table_valued(*READ_ARRAYS)
            .render_derived(with_types=False)
            .alias("r")
        )
        read = (
            insert(documents)
            .from_select(
                ["file_id", *READ_ARRAYS, "attempts", "created_at", "updated_at"],
                select(
                    parsed.c.id,
                    *(rows.c[name] for name in READ_ARRAYS),
                    literal(0, Integer()),
                    now,
                    now,
                ).select_from(parsed.join(rows, true())),
            )
            .returning(documents.c.id, documents.c.seq)
            .cte("read")
        )
        read_told = (
            func.unnest(
                bindparam("event_seqs", type_=ARRAY(Integer())),
                bindparam("kinds", type_=ARRAY(String())),
                bindparam("details", type_=ARRAY(String())),
            )
            .table_valued("seq", "kind", "detail", with_ordinality="n")
            .render_derived()
            .alias("e")
        )
        read_events = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(parsed.c.id, read.c.id, now, read_told.c.kind, read_told.c.detail)
            .select_from(
                parsed.join(read_told, true()).outerjoin(read, read.c.seq == read_told.c.seq)
            )
            .order_by(read_told.c.n),
        )
        self.read_recorded = (
            select(read.c.id, read.c.seq)
            .select_from(parsed.outerjoin(read, true()))
            .add_cte(read_events.cte("read_events"), nest_here=False)
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
        # ... and the node's claim on the source forgotten (``SourceClaim``).
        self.channel_action_told_forgetting = self.channel_action_told.add_cte(
            DROP_FILE_CLAIM.cte("forgotten")
        )
        prepare_attributes(self)  # each run straight on the driver

    @staticmethod
    def _done(
        done: Update, now: BindParameter[datetime], doc_id: BindParameter[int], *, by_key: bool
    ) -> Select[Any]:
        """The head done and its line handed on: returns ``file_head`` (the document's, before),
        ``file_id`` (``NULL`` when nothing was done: not a head, already done, another kind of
        file, no business key) and ``next_seq`` (the line's next head, ``NULL`` at its end)."""
        d = documents
        if by_key:
            # The file's row locked, as the general path locks it before it asks whether the
            # file is finished: a node asking that way waits for this statement's commit, or
            # this one for that node's, so that the later question sees both documents done.
            locked = (
                select(files.c.id)
                .where(
                    files.c.id == select(d.c.file_id).where(d.c.id == doc_id).scalar_subquery(),
                    files.c.ordered == false(),
                )
                .with_for_update(key_share=True)
                .cte("locked")
            )
            # The lock as a condition of its own (``locked`` is the document's file by
            # construction), not "file_id = locked": in a generic plan (the statement prepared,
            # run again and again) PostgreSQL would then seek the file's heads and filter them
            # by id, and every document of a file of distinct keys is a head: 7 ms a done in
            # a 10,000-document file, against one seek by the primary key.
            head_done = done.where(
                d.c.file_head == true(),
                select(locked.c.id).exists(),
                d.c.business_key.is_not(None),
            )
        else:
            ordered = select(files.c.id).where(files.c.id == d.c.file_id, files.c.ordered == true())
            head_done = done.where(d.c.file_head == true(), ordered.exists())
        was = select(d.c.file_head).where(d.c.id == doc_id).cte("was")
        finished = (
            head_done.values(file_head=False)
            .returning(d.c.file_id, d.c.seq, d.c.key_hash, d.c.business_key)
            .cte("finished")
        )
        detail = bindparam("detail", type_=String())
        told = insert(events).from_select(
            ["file_id", "document_id", "at", "kind", "detail"],
            select(finished.c.file_id, doc_id, now, _kind(str(DocState.DONE)), detail),
        )
        # The snapshot predates the update: the finished document still looks unfinished.
        line = [d.c.file_id == select(finished.c.file_id).scalar_subquery()]
        if by_key:  # the keys' index: (file, key hash, seq) of the unfinished documents
            line += [
                d.c.key_hash == select(finished.c.key_hash).scalar_subquery(),
                d.c.business_key == select(finished.c.business_key).scalar_subquery(),
            ]
        following = (
            select(d.c.id, d.c.seq)
            .where(*line, unfinished_condition(), d.c.id != doc_id)
            .order_by(d.c.seq)
            .limit(ONE)
            .cte("following")
        )
        handed = (
            update(d)
            .where(d.c.id == select(following.c.id).scalar_subquery())
            .values(file_head=True)
        )
        return (
            select(
                was.c.file_head,
                select(finished.c.file_id).scalar_subquery().label("file_id"),
                select(following.c.seq).scalar_subquery().label("next_seq"),
            )
            .add_cte(told.cte("told"), nest_here=False)
            .add_cte(handed.cte("handed"), nest_here=False)
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


__all__ = ["READ_ARRAYS", "MergedStatements"]
