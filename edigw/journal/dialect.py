"""Where SQLite and PostgreSQL differ, in one place: creating the engine (WAL, pragmas,
``BEGIN IMMEDIATE``), turning driver errors into ``JournalError``, the dialect's INSERT for
upserts, and the hot path's statements (``FOR UPDATE SKIP LOCKED`` claims on PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tenacity
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    create_engine,
    event,
    exc,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Select

from edigw.errors import JournalError
from edigw.journal.conditions import _DOC_COLUMNS, ONE, _state, _state_of_file
from edigw.journal.errors import JournalRefused, JournalUnavailable, JournalValueError
from edigw.journal.merged import MergedStatements
from edigw.journal.prepared import prepare_attributes
from edigw.journal.schema import (
    UNFINISHED_DOC_STATES,
    DocState,
    FileState,
    UtcDateTime,
    channel_actions,
    documents,
    files,
    head_condition,
    remote_files,
    unfinished_condition,
)

#: How long a SQLite writer waits for the lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 30.0


def _reason(err: exc.SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    message = str(orig) if orig is not None else str(err)
    return message.strip().splitlines()[0] if message.strip() else type(err).__name__


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn SQLAlchemy errors into JournalError naming what the journal was doing."""
    try:
        yield
    except exc.DataError as err:
        msg = f"journal: cannot {what}: the database refused a value: {_reason(err)}"
        raise JournalValueError(msg) from err
    except (exc.OperationalError, exc.InterfaceError) as err:
        msg = f"journal: cannot {what}: {_reason(err)}"
        raise JournalUnavailable(msg) from err
    except exc.DBAPIError as err:
        msg = f"journal: cannot {what}: {_reason(err)}"
        raise JournalRefused(msg) from err
    except exc.SQLAlchemyError as err:
        msg = f"journal: cannot {what}: {_reason(err)}"
        raise JournalError(msg) from err
    except sqlite3.OperationalError as err:  # the few statements sent straight to the driver
        msg = f"journal: cannot {what}: {err}"
        raise JournalUnavailable(msg) from err
    except sqlite3.Error as err:
        msg = f"journal: cannot {what}: {err}"
        raise JournalError(msg) from err


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL once; nodes opening a new journal together may meet here.

    Changing the journal mode needs the database to itself and SQLite's busy handler does
    not wait for that, so a connection that finds it locked tries again for a while.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e)
        ),
        wait=tenacity.wait_random(0.005, 0.05),
        stop=tenacity.stop_after_delay(SQLITE_BUSY_TIMEOUT),
        reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")


def sqlite_engine(url: str, *, synchronous: str) -> Engine:
    # No pool: the journal keeps its own few connections open (one writer, idle readers).
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        _use_wal(cursor)
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        reading = conn.get_execution_options().get("journal_read", False)
        # Straight to the driver: this runs for every transaction.
        conn.connection.dbapi_connection.execute("BEGIN" if reading else "BEGIN IMMEDIATE")  # type: ignore[union-attr]

    return engine


#: Connections each PostgreSQL pool keeps open (and up to 10 more while busier). A busy
#: gateway has more threads on the journal at once than SQLAlchemy's default of 5, and a
#: connection beyond the pool's size is closed when it is returned: the next one is a new
#: server process, whose caches fill again and whose statements are planned again before
#: they are prepared. With 5, a 500-file run opened 96 sessions and PostgreSQL spent a
#: quarter of its CPU on them (``docs/benchmarks.md``).
POOL_SIZE = 16


def postgres_engine(url: str) -> Engine:
    """The engine of a PostgreSQL journal: a pool shared by the journal's threads."""
    # No pre-ping (a round trip per transaction): a connection dropped by a server
    # restart fails one call with a JournalError and SQLAlchemy replaces the pool.
    with translated("connect"):
        return create_engine(url, pool_recycle=3600, pool_size=POOL_SIZE)


def lazy_commit_engine(engine: Engine) -> Engine:
    """PostgreSQL: a second pool on the journal's database whose sessions do not wait for
    their commits to reach the disk (``synchronous_commit = off``), for the hot path's
    writes that a SQLite journal does not sync either (``Journal.open``, ``synchronous``).

    Such a commit is visible to every session at once and survives any crash of edigw; only
    a crash of the database server may lose the last ones (at most three WAL writer delays,
    0.6 s by default), never out of order: a commit that waits (every other write, among
    them the barriers after which a source is moved) flushes the WAL up to itself, and so
    every lazy commit before it.
    """
    lazy = create_engine(engine.url, pool_recycle=3600, pool_size=POOL_SIZE)

    @event.listens_for(lazy, "connect")
    def _lazy_commits(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        dbapi_connection.commit()

    return lazy


def insert_for(*, pg: bool) -> Any:
    """The dialect's own INSERT, which has ``on_conflict_do_update`` (upserts)."""
    return postgresql.insert if pg else sqlite.insert


class Statements:
    """The hot path's statements, built once per journal.

    Reusing one statement object lets SQLAlchemy skip building, coercing and cache-keying it
    on every call, which is most of a small statement's cost; values travel as parameters.
    """

    def __init__(self, *, pg: bool) -> None:
        d = documents
        now = bindparam("now", type_=UtcDateTime())
        doc_id = bindparam("doc_id", type_=Integer())
        fid = bindparam("fid", type_=Integer())
        head = bindparam("head", type_=Integer())
        unfinished = [_state(s) for s in UNFINISHED_DOC_STATES]

        # Heads are unfinished by construction and only a retry_wait document has a
        # next_attempt_at, so "due" needs no test on state that a planner could mistake for
        # a reason to scan the (state, ...) index; the NOT IN is a guard, not a filter.
        due = and_(
            head_condition(),
            or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now),
            or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
            d.c.state.not_in([_state(DocState.DONE), _state(DocState.FAILED)]),
        )
        limit = bindparam("limit", type_=Integer())
        # No join here: alone, documents in (file_id, seq) order with a LIMIT is an obvious
        # walk of the small heads index, whatever the statistics say; the partner and flow
        # are read afterwards by primary key (files_of).
        columns = select(*_DOC_COLUMNS)
        self.claim = columns.where(due).order_by(d.c.file_id, d.c.seq).limit(limit)
        self.claim_one_file = (
            columns.where(due, d.c.file_id == fid).order_by(d.c.file_id, d.c.seq).limit(limit)
        )
        if pg:
            self.claim = self.claim.with_for_update(skip_locked=True, of=documents)
            self.claim_one_file = self.claim_one_file.with_for_update(
                skip_locked=True, of=documents
            )
        self.set_claim = (
            update(d)
            .where(d.c.id.in_(bindparam("ids", expanding=True)))
            .values(
                claimed_by=bindparam("node"),
                claimed_until=bindparam("until", type_=UtcDateTime()),
            )
        )
        self.doc_state = select(
            d.c.file_id,
            d.c.state,
            d.c.claimed_by,
            d.c.claimed_until,
            d.c.attempts,
            d.c.file_head,
            d.c.business_key,
        ).where(d.c.id == doc_id)
        self.sent = (
            update(d)
            .where(d.c.id == doc_id, d.c.state.in_(unfinished))
            .values(
                state=str(DocState.SENT),
                attempts=d.c.attempts + 1,
                next_attempt_at=None,
                updated_at=now,
            )
            .returning(d.c.file_id, d.c.attempts, d.c.claimed_by)
        )
        self.sent_by_node = self.sent.where(
            d.c.claimed_by == bindparam("node"), d.c.claimed_until > now
        )
        finished = (d.c.file_id, d.c.seq, d.c.file_head, d.c.business_key)
        done = (
            update(d)
            .where(d.c.id == doc_id, d.c.state != _state(DocState.DONE))
            .values(
                state=str(DocState.DONE),
                ecolix_status=bindparam("status", type_=Integer()),
                ecolix_object_id=bindparam("object_id"),
                ecolix_response=bindparam("response"),
                error=None,
                error_location=None,
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
        )
        self.done = done.returning(*finished)
        self.failed = (
            update(d)
            .where(d.c.id == doc_id, d.c.state != _state(DocState.DONE))
            .values(
                state=str(DocState.FAILED),
                error=bindparam("reason"),
                error_location=bindparam("where"),
                ecolix_status=bindparam("status", type_=Integer()),
                ecolix_response=bindparam("response"),
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
            .returning(*finished)
        )
        self.retry = (
            update(d)
            .where(d.c.id == doc_id, d.c.state.in_(unfinished))
            .values(
                state=str(DocState.RETRY_WAIT),
                next_attempt_at=bindparam("next_at", type_=UtcDateTime()),
                error=bindparam("reason"),
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
            .returning(d.c.file_id)
        )
        # A call that never left: parked like a retry, the attempt recorded for it undone.
        self.retry_not_sent = (
            update(d)
            .where(d.c.id == doc_id, d.c.state == str(DocState.SENT))
            .values(
                state=str(DocState.RETRY_WAIT),
                attempts=d.c.attempts - 1,
                not_sent=d.c.not_sent + 1,
                next_attempt_at=bindparam("next_at", type_=UtcDateTime()),
                error=bindparam("reason"),
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
            .returning(d.c.file_id)
        )
        self.not_sent = (
            update(d)
            .where(d.c.id == doc_id, d.c.state == str(DocState.SENT))
            .values(
                state=str(DocState.PENDING),
                attempts=d.c.attempts - 1,
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
            )
            .returning(d.c.file_id)
        )
        # One seek in the partial index of unfinished documents, whatever the file's size.
        # (ORDER BY + LIMIT, not min(): without statistics PostgreSQL aggregates the whole file.)
        self.first_unfinished = (
            select(d.c.seq)
            .where(d.c.file_id == fid, unfinished_condition())
            .order_by(d.c.seq)
            .limit(ONE)
        )
        # A finished file's documents counted by state; no row while one is unfinished (the
        # look above first, so an unfinished file costs the same seek): the look and the
        # count of the PostgreSQL done path in one round trip (``DoneMixin``).
        counted = d.alias("counted")
        self.finished_counts = (
            select(counted.c.state, func.count())
            .where(counted.c.file_id == fid, ~self.first_unfinished.exists())
            .group_by(counted.c.state)
        )
        self.clear_heads = (
            update(d)
            .where(d.c.file_head == true(), d.c.file_id == fid, d.c.seq != head)
            .values(file_head=False)
        )
        self.set_head = update(d).where(d.c.file_id == fid, d.c.seq == head).values(file_head=True)
        self.move_head = (
            update(d)
            .where(or_(d.c.id == doc_id, and_(d.c.file_id == fid, d.c.seq == head)))
            .values(file_head=d.c.id != doc_id)
        )
        self.claim_and_send = (
            update(d)
            .where(d.c.id == doc_id)
            .values(
                claimed_by=bindparam("node"),
                claimed_until=bindparam("until", type_=UtcDateTime()),
                state=str(DocState.SENT),
                attempts=d.c.attempts + 1,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        self.files_of = select(files.c.id, files.c.partner, files.c.flow, files.c.ordered).where(
            files.c.id.in_(bindparam("fids", expanding=True))
        )
        self.files_with_content = (
            select(files)
            .where(
                files.c.partner == bindparam("partner"),
                files.c.flow == bindparam("flow"),
                files.c.sha256 == bindparam("sha256"),
            )
            .order_by(files.c.id)
        )
        self.insert_file = insert(files).returning(files.c.id)
        self.file = select(files).where(files.c.id == fid)
        self.next_retry = select(func.min(d.c.next_attempt_at)).where(
            d.c.state == _state(DocState.RETRY_WAIT)
        )
        self.state_counts = (
            select(d.c.state, func.count()).where(d.c.file_id == fid).group_by(d.c.state)
        )
        self.file_finished = (
            update(files)
            .where(files.c.id == fid, files.c.state == _state_of_file(FileState.PARSED))
            .values(
                state=bindparam("state"),
                error=bindparam("error"),
                finished_at=now,
                updated_at=now,
            )
        )
        self.insert_channel_action = insert(channel_actions)
        self.remote_seen = select(remote_files.c.path).where(
            remote_files.c.channel == bindparam("channel"),
            remote_files.c.path == bindparam("path"),
            remote_files.c.size == bindparam("size"),
            remote_files.c.mtime == bindparam("mtime"),
        )
        self.remote_versions = select(
            remote_files.c.path, remote_files.c.size, remote_files.c.mtime
        ).where(
            remote_files.c.channel == bindparam("channel"),
            remote_files.c.path.in_(bindparam("paths", expanding=True)),
        )
        self.existing_keys = select(d.c.idempotency_key, d.c.id).where(
            d.c.idempotency_key.in_(bindparam("keys", expanding=True))
        )
        self.insert_documents = insert(d).returning(d.c.id, sort_by_parameter_order=True)
        self.file_parsed = (
            update(files)
            .where(files.c.id == fid)
            .values(
                state=str(FileState.PARSED),
                reader=None,
                parsed_at=now,
                updated_at=now,
            )
        )
        self.file_parsed_by_reader = self.file_parsed.where(
            files.c.state == _state_of_file(FileState.RECEIVED),
            files.c.reader == bindparam("holder"),
        )
        self.reading = select(files.c.state, files.c.reader).where(files.c.id == fid)
        self.has_head = select(d.c.id).where(head_condition(), d.c.file_id == fid).limit(ONE)
        # Failed rows of a file's name that never got its bytes (a transfer cut midway) and
        # were never disposed of: one seek in the (partner, flow, sha256) index.
        disposed = (
            select(channel_actions.c.id).where(channel_actions.c.file_id == files.c.id).exists()
        )
        self.moot_transfers = select(files.c.id).where(
            files.c.partner == bindparam("partner"),
            files.c.flow == bindparam("flow"),
            files.c.sha256 == literal_column("''", String()),
            files.c.channel == bindparam("channel"),
            files.c.original_name == bindparam("name"),
            files.c.state == _state_of_file(FileState.FAILED),
            files.c.id < fid,
            ~disposed,
        )
        self.resolve = (
            update(files)
            .where(files.c.id.in_(bindparam("ids", expanding=True)))
            .values(state=str(FileState.SUPERSEDED), updated_at=now)
        )
        # Whether a file may not be new (``add_file_if_new``): the flow has its bytes, or a
        # failure of its name and channel without content that ``add_file`` would resolve.
        # Wider than ``moot_transfers`` (any state): what it lets through needs no look.
        # Two lookups, each a seek in the index (partner, flow, sha256): as one condition with
        # an OR, the databases sought (partner, flow) alone and read every file of the flow for
        # each new one (125,000 rows for a 500-file drop).
        of_flow = (files.c.partner == bindparam("partner"), files.c.flow == bindparam("flow"))
        same_bytes = select(files.c.id).where(*of_flow, files.c.sha256 == bindparam("sha256"))
        cut_transfer = select(files.c.id).where(
            *of_flow,
            files.c.sha256 == literal_column("''", String()),
            files.c.channel == bindparam("channel"),
            files.c.original_name == bindparam("original_name"),
        )
        self.reception_known: Select[Any] = select(literal_column("1")).where(
            or_(same_bytes.exists(), cut_transfer.exists())
        )
        #: PostgreSQL: the hot path's merged statements (``merged``).
        self.merged = (
            MergedStatements(
                self.claim,
                self.claim_one_file,
                done,
                self.file_finished,
                self.reception_known,
                self.file_parsed_by_reader,
                self.finished_counts,
            )
            if pg
            else None
        )
        prepare_attributes(self)  # each run straight on the driver
