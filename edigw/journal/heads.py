"""Heads: the documents that may be claimed, the first unfinished one of each line of a file.

An *ordered* file (its flow's ``ordered: true``) is one line: its documents reach Ecolix
strictly in file order, one at a time. Any other file has a line per business key: the
documents of one key (one customer, one order, a document's chain of steps) go in file order,
one at a time, so an older value is never written after a newer one; documents of distinct
keys are independent and sent concurrently. A document failing for good finishes its line's
turn like a success (the next of its line becomes the head); one waiting for a retry holds
back its line only: the whole file when ordered, its key's later documents otherwise.

``file_head`` marks heads (partial index ``ix_documents_heads``, what claims walk); a
hand-over is a seek in the partial index of unfinished documents, per file
(``ix_documents_unfinished``) or per file and key hash (``ix_documents_unfinished_keys``).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    String,
    bindparam,
    false,
    func,
    select,
    update,
)

from edigw.journal.conditions import ONE
from edigw.journal.connection import JournalBase
from edigw.journal.errors import UnknownIdError
from edigw.journal.prepared import Prepared
from edigw.journal.schema import (
    documents,
    files,
    head_condition,
    unfinished_condition,
)


def key_hash(business_key: str) -> int:
    """A business key's 32-bit hash (signed, as an SQL ``INTEGER``): what the keys' index
    holds in place of a key that may be longer than an index entry may be."""
    digest = hashlib.blake2b(business_key.encode("utf-8", "surrogatepass"), digest_size=4)
    return int.from_bytes(digest.digest(), "big", signed=True)


_d = documents
_fid = bindparam("fid", type_=Integer())
_head = bindparam("head", type_=Integer())
_hash = bindparam("hash", type_=Integer())
_key = bindparam("key", type_=String())

#: the rule a file follows, written once with it
_FILE_ORDERED = Prepared(select(files.c.ordered).where(files.c.id == _fid))

#: PostgreSQL: the file's row, locked until commit by whoever asks whether the file is
#: finished (``FOR NO KEY UPDATE``: events referencing the file are still inserted meanwhile)
_LOCK_FILE = select(files.c.id).where(files.c.id == _fid).with_for_update(key_share=True)

#: the first unfinished document of one key in a file: one seek in the keys' index
_FIRST_OF_KEY = Prepared(
    select(_d.c.seq)
    .where(
        _d.c.file_id == _fid,
        _d.c.key_hash == _hash,
        unfinished_condition(),
        _d.c.business_key == _key,
    )
    .order_by(_d.c.seq)
    .limit(ONE)
)

#: no head among the key's unfinished documents but ``head`` (a replay moved the key's turn
#: back). No test on ``file_head``: it would let a planner walk all the file's heads instead
#: of seeking the key's few documents.
_CLEAR_KEY_HEADS = Prepared(
    update(_d)
    .where(
        _d.c.file_id == _fid,
        _d.c.key_hash == _hash,
        unfinished_condition(),
        _d.c.business_key == _key,
        _d.c.seq != _head,
    )
    .values(file_head=False)
)

# The first unfinished document of every key of a file: one pass over the file's unfinished
# documents, in the order of their key (a window function, where a correlated "no earlier
# one of the key" lets PostgreSQL without statistics compare every pair).
_ranked = (
    select(
        _d.c.id,
        func.row_number()
        .over(partition_by=(_d.c.key_hash, _d.c.business_key), order_by=_d.c.seq)
        .label("turn"),
    )
    .where(_d.c.file_id == _fid, unfinished_condition())
    .subquery("ranked")
)
_FIRSTS = select(_ranked.c.id).where(_ranked.c.turn == 1)

#: every head of a file that is not (or no longer) the first unfinished of its key
_CLEAR_FILE_KEY_HEADS = Prepared(
    update(_d)
    .where(head_condition(), _d.c.file_id == _fid, _d.c.id.not_in(_FIRSTS))
    .values(file_head=False)
)

#: the first unfinished document of every key of a file, made a head
_SET_FILE_KEY_HEADS = Prepared(
    update(_d).where(_d.c.id.in_(_FIRSTS), _d.c.file_head == false()).values(file_head=True)
)


class HeadsMixin(JournalBase):
    """Finding and moving the heads of a file's documents."""

    def _owner(self, conn: Connection, file_id: int) -> tuple[str, str]:
        """(partner, flow) of a file, remembered: it never changes once written. Whether it
        keeps file order is remembered with it: a file another process took in (another
        node, the intake of ``--processes 2``) is then known to the done of its documents,
        which takes the one-statement path of its kind of file (``DoneMixin.mark_done``)."""
        owner = self._owners.get(file_id)
        if owner is None:
            row = conn.execute(self._sql.files_of, {"fids": [file_id]}).one()
            if len(self._owners) >= 10_000:
                self._owners.clear()
            owner = self._owners[file_id] = (row.partner, row.flow)
            if file_id not in self._ordered_files:
                if len(self._ordered_files) >= 10_000:
                    self._ordered_files.clear()
                self._ordered_files[file_id] = bool(row.ordered)
        return owner

    def _is_ordered(self, conn: Connection, file_id: int) -> bool:
        """Whether a file keeps file order (one head), remembered: written once with it."""
        ordered = self._ordered_files.get(file_id)
        if ordered is None:
            value = conn.execute(_FILE_ORDERED, {"fid": file_id}).scalar()
            if len(self._ordered_files) >= 10_000:
                self._ordered_files.clear()
            ordered = self._ordered_files[file_id] = bool(value) if value is not None else True
        return ordered

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

    def _first_of_key(self, conn: Connection, file_id: int, key: str) -> int | None:
        """Position of the first unfinished document of ``key`` in the file (one seek)."""
        value: int | None = conn.execute(
            _FIRST_OF_KEY, {"fid": file_id, "hash": key_hash(key), "key": key}
        ).scalar()
        return value

    def _refresh_head(self, conn: Connection, file_id: int, key: str | None = None) -> bool:
        """Point the heads at the first unfinished document of each line, whatever happened
        before: the file's, or (an unordered file) the ``key``'s, or every key's when no key
        is given (a file journalled in batches).

        Returns whether the file has no unfinished document left."""
        if self._is_ordered(conn, file_id):
            head = self._first_unfinished(conn, file_id)
            conn.execute(
                self._sql.clear_heads, {"fid": file_id, "head": -1 if head is None else head}
            )
            if head is not None:
                conn.execute(self._sql.set_head, {"fid": file_id, "head": head})
            return head is None
        if key is None:
            conn.execute(_CLEAR_FILE_KEY_HEADS, {"fid": file_id})
            conn.execute(_SET_FILE_KEY_HEADS, {"fid": file_id})
        else:
            head = self._first_of_key(conn, file_id, key)
            conn.execute(
                _CLEAR_KEY_HEADS,
                {
                    "fid": file_id,
                    "hash": key_hash(key),
                    "key": key,
                    "head": -1 if head is None else head,
                },
            )
            if head is not None:
                conn.execute(self._sql.set_head, {"fid": file_id, "head": head})
        return self._unordered_file_finished(conn, file_id)

    def _unordered_file_finished(self, conn: Connection, file_id: int) -> bool:
        """Whether an unordered file has no unfinished document left, asked once one of its
        documents finished.

        Its documents finish concurrently: on PostgreSQL the last two, finishing at once,
        would each see the other unfinished (neither transaction committed), and nobody would
        settle the file. So the question waits for the file's row lock: the second asks once
        the first committed, and sees it. (SQLite writes one transaction at a time.)"""
        if self._pg:
            conn.execute(_LOCK_FILE, {"fid": file_id})
        return self._first_unfinished(conn, file_id) is None

    def _advance_head(self, conn: Connection, finished: RowMapping, doc_id: int) -> bool:
        """A document finished: hand its line's head to the line's next unfinished document.

        The usual case (the head finished) is two statements whatever the file's size (three
        in an unordered file: the file may still have other lines); any other case (a stale
        worker, a replay) recomputes the line's head from scratch. Returns whether the file
        has no unfinished document left.
        """
        file_id = finished["file_id"]
        ordered = self._is_ordered(conn, file_id)
        key = None if ordered else finished["business_key"]
        if not finished["file_head"]:
            return self._refresh_head(conn, file_id, key)
        head = (
            self._first_unfinished(conn, file_id)
            if key is None
            else self._first_of_key(conn, file_id, key)
        )
        conn.execute(
            self._sql.move_head,
            {"doc_id": doc_id, "fid": file_id, "head": -1 if head is None else head},
        )
        if key is None:
            return head is None
        return self._unordered_file_finished(conn, file_id)
