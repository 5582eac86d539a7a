"""The exchange journal: every file, document, attempt and export run, durably.

One :class:`Journal` per process, shared by its threads. It speaks SQLAlchemy Core to SQLite
(the default, one node) or PostgreSQL (several nodes); the SQL is the same on both except
where claiming work must be atomic across nodes:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, so writers queue on the
  database lock (``busy_timeout``) instead of failing on a lock upgrade; WAL lets readers run
  beside them. Durability: see :meth:`Journal.open` (``sqlite_synchronous``).
* PostgreSQL: claims use ``SELECT ... FOR UPDATE SKIP LOCKED`` so nodes never wait on, nor
  take, each other's documents.

Conventions: the store never reads the clock (every timestamp is a ``now`` argument, aware
UTC); ids are ints (operators see them as ``F-12``, ``D-40``, ``R-3``); rows come back as
frozen dataclasses; every SQLAlchemy error leaves this module as a :class:`JournalError`.
Every state change writes an event, so ``edigw show`` can tell the whole story.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import tenacity
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    RowMapping,
    Select,
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
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement

from edigw.errors import JournalError
from edigw.journal.schema import (
    FINAL_FILE_STATES,
    UNFINISHED_DOC_STATES,
    VERSION_TABLE,
    DocState,
    FileState,
    RunState,
    UtcDateTime,
    channel_actions,
    documents,
    events,
    export_cursors,
    export_runs,
    export_sequences,
    files,
    head_condition,
    remote_files,
    unfinished_condition,
)
from edigw.model import Location

#: How long a SQLite writer waits for the lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 30.0
#: Key of the PostgreSQL advisory lock that serialises concurrent migrations of one database.
MIGRATION_LOCK_KEY = 0x6564_6967_7700  # "edigw"
#: How many recent errors ``status_counts`` keeps per partner/flow.
LAST_ERRORS = 5
MIGRATIONS = "edigw.journal:migrations"

SqliteSync = Literal["full", "normal"]


# --------------------------------------------------------------------------- errors


class UnknownIdError(JournalError):
    """The file, document or export run does not exist in this journal."""


class StateError(JournalError):
    """The requested transition is not allowed from the row's current state."""


class LeaseLostError(StateError):
    """The node no longer holds the claim on the document (its lease expired)."""


class DuplicateKeyError(JournalError):
    """A document's idempotency key is already in the journal (or twice in one batch)."""

    def __init__(self, message: str, *, keys: Mapping[str, int | None]) -> None:
        super().__init__(message)
        #: idempotency key -> id of the document already holding it (None: twice in the batch)
        self.keys = dict(keys)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document the pipeline found in a file, as handed to :meth:`Journal.add_documents`.

    ``state`` is ``pending`` (to be sent) or ``failed`` (the mapping already found problems:
    ``error`` says why and ``error_location`` where, and ``payload`` may be ``None``).
    """

    seq: int
    business_key: str
    operation: str
    payload: Mapping[str, Any] | None
    idempotency_key: str
    state: str = DocState.PENDING
    error: str | None = None
    error_location: str | Location | None = None


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    partner: str
    flow: str
    channel: str
    original_name: str
    source_path: str
    size: int
    sha256: str
    archive_path: str
    state: str
    error: str | None
    received_at: datetime
    parsed_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def ref(self) -> str:
        return f"F-{self.id}"


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    file_id: int
    partner: str
    flow: str
    seq: int
    business_key: str
    operation: str
    payload: dict[str, Any] | None
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str | None
    claimed_until: datetime | None
    ecolix_status: int | None
    ecolix_object_id: str | None
    ecolix_response: Any
    error: str | None
    error_location: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def ref(self) -> str:
        return f"D-{self.id}"


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    file_id: int
    document_id: int | None
    at: datetime
    kind: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class RecentError:
    """One recent failure for ``edigw status``: which file/document, when, why, where."""

    ref: str
    at: datetime
    message: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """Counts of one partner/flow: files and documents by state, what waits, what failed."""

    partner: str
    flow: str
    files: Mapping[str, int]
    documents: Mapping[str, int]
    files_waiting: int
    documents_waiting: int
    next_retry_at: datetime | None
    last_errors: tuple[RecentError, ...] = field(default=())

    @property
    def waiting(self) -> int:
        """Documents not finished yet (pending, sent, or waiting for a retry)."""
        return self.documents_waiting


@dataclass(frozen=True, slots=True)
class ChannelActionRow:
    id: int
    file_id: int | None
    action: str
    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ExportRunRow:
    id: int
    partner: str
    flow: str
    mode: str
    window_from: datetime | None
    window_to: datetime | None
    records: int
    calls: int
    file_name: str | None
    sha256: str | None
    archive_path: str | None
    state: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    @property
    def ref(self) -> str:
        return f"R-{self.id}"


# --------------------------------------------------------------------------- helpers


def _aware(value: datetime, name: str = "now") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{name} must be a timezone-aware datetime, got naive {value!r}"
        raise ValueError(msg)
    return value.astimezone(UTC)


def _maybe_aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else _aware(value, name)


def _dumps(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        msg = f"{what} is not JSON-serialisable: {err}"
        raise JournalError(msg) from err


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _reason(err: exc.SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    message = str(orig) if orig is not None else str(err)
    return message.strip().splitlines()[0] if message.strip() else type(err).__name__


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn SQLAlchemy errors into JournalError naming what the journal was doing."""
    try:
        yield
    except exc.SQLAlchemyError as err:
        msg = f"journal: cannot {what}: {_reason(err)}"
        raise JournalError(msg) from err
    except sqlite3.Error as err:  # the few statements sent straight to the driver
        msg = f"journal: cannot {what}: {err}"
        raise JournalError(msg) from err


def _file_row(m: RowMapping) -> FileRow:
    return FileRow(
        id=m["id"],
        partner=m["partner"],
        flow=m["flow"],
        channel=m["channel"],
        original_name=m["original_name"],
        source_path=m["source_path"],
        size=m["size"],
        sha256=m["sha256"],
        archive_path=m["archive_path"],
        state=m["state"],
        error=m["error"],
        received_at=m["received_at"],
        parsed_at=m["parsed_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
    )


def _doc_row(m: Mapping[Any, Any]) -> DocumentRow:
    return DocumentRow(
        id=m["id"],
        file_id=m["file_id"],
        partner=m["partner"],
        flow=m["flow"],
        seq=m["seq"],
        business_key=m["business_key"],
        operation=m["operation"],
        payload=_loads(m["payload"]),
        idempotency_key=m["idempotency_key"],
        state=m["state"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        claimed_by=m["claimed_by"],
        claimed_until=m["claimed_until"],
        ecolix_status=m["ecolix_status"],
        ecolix_object_id=m["ecolix_object_id"],
        ecolix_response=_loads(m["ecolix_response"]),
        error=m["error"],
        error_location=m["error_location"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _run_row(m: RowMapping) -> ExportRunRow:
    return ExportRunRow(**{name: m[name] for name in ExportRunRow.__dataclass_fields__})


_DOC_COLUMNS = [c for c in documents.c if c.name != "file_head"]


def _filtered(
    query: Select[Any],
    *,
    partner: str | None,
    flow: str | None,
    state: tuple[ColumnElement[Any], str | None],
    since: tuple[ColumnElement[Any], datetime | None],
    limit: int | None,
) -> Select[Any]:
    """``query`` narrowed to what an operator asked for (a listing's filters): ``state`` and
    ``since`` pair the column to compare with the wanted value (``None``: any)."""
    if partner is not None:
        query = query.where(files.c.partner == partner)
    if flow is not None:
        query = query.where(files.c.flow == flow)
    if state[1] is not None:
        query = query.where(state[0] == state[1])
    if since[1] is not None:
        query = query.where(since[0] >= _aware(since[1], "since"))
    return query if limit is None else query.limit(limit)


def _doc_select() -> Select[Any]:
    return select(*_DOC_COLUMNS, files.c.partner, files.c.flow).join(
        files, files.c.id == documents.c.file_id
    )


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


def _sqlite_engine(url: str, *, synchronous: str) -> Engine:
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


_INSERT_EVENT = insert(events)


def _state_of_file(state: str) -> ColumnElement[str]:
    return literal_column(f"'{FileState(state)}'", String())


def _state(state: str) -> ColumnElement[str]:
    """A state as an SQL literal, not a parameter: PostgreSQL's generic plans for prepared
    statements then still know which state is asked for and pick the (state, ...) index."""
    return literal_column(f"'{DocState(state)}'", String())


class _Statements:
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
        finished = (d.c.file_id, d.c.seq, d.c.file_head)
        self.done = (
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
            .returning(*finished)
        )
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
            .limit(1)
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
        self.files_of = select(files.c.id, files.c.partner, files.c.flow).where(
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
        self.existing_keys = select(d.c.idempotency_key, d.c.id).where(
            d.c.idempotency_key.in_(bindparam("keys", expanding=True))
        )
        self.insert_documents = insert(d).returning(d.c.id, sort_by_parameter_order=True)
        self.file_parsed = (
            update(files)
            .where(files.c.id == fid)
            .values(
                state=str(FileState.PARSED),
                parsed_at=now,
                updated_at=now,
            )
        )
        self.has_head = select(d.c.id).where(head_condition(), d.c.file_id == fid).limit(1)


# --------------------------------------------------------------------------- the journal


class Journal:
    """The exchange journal over one database (SQLite file or PostgreSQL)."""

    def __init__(self, engine: Engine, *, url: str, barriers: bool = False) -> None:
        self._engine = engine
        self._reader = engine.execution_options(journal_read=True)
        self._pg = engine.dialect.name == "postgresql"
        self._sql = _Statements(pg=self._pg)
        self._barriers = barriers
        # file id -> (partner, flow): never changes once written, read on every claim.
        self._owners: dict[int, tuple[str, str]] = {}
        # SQLite: this process's writers queue here, woken as soon as the lock is free, rather
        # than in SQLite's busy handler, which sleeps for milliseconds and lets one thread
        # starve the others. Other processes still meet at the database lock.
        self._write_lock: AbstractContextManager[object] = (
            nullcontext() if self._pg else threading.Lock()
        )
        # SQLite: writes are serialised by that lock anyway, so they share one connection
        # kept open, instead of a pool checkout, reset and check-in per transaction.
        self._writer: Connection | None = None
        self._readers_lock = threading.Lock()
        self._idle_readers: list[Connection] = []
        self.url = url

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls, url: str, *, create: bool = True, sqlite_synchronous: SqliteSync = "normal"
    ) -> Journal:
        """Open the journal at ``url``; with ``create``, create or migrate it to the latest schema.

        Without ``create`` the database must exist and already be at the latest revision, so a
        read-only command never changes a journal that a newer or older edigw is running on.

        ``sqlite_synchronous`` (ignored on PostgreSQL, which syncs every commit):

        * ``normal`` (default): WAL with ``synchronous=NORMAL``, so every commit survives any
          crash of edigw, and *barrier* commits are fsync'd: those after which a source may be
          moved or deleted (a file's final state, channel actions, the SFTP memory) or a
          partner may receive a file (export runs, cursors, sequence numbers). A power cut can
          only lose the per-document commits since the last barrier, which merely makes the
          gateway send those documents again under the same idempotency keys: Ecolix answers
          with the stored result and creates nothing.
        * ``full``: every commit is fsync'd (about twice the write cost, see
          ``benchmarks/journal.py``).
        """
        if sqlite_synchronous not in ("full", "normal"):
            msg = f"sqlite_synchronous must be 'full' or 'normal', not {sqlite_synchronous!r}"
            raise ValueError(msg)
        try:
            parsed = make_url(url)
        except exc.ArgumentError as err:
            msg = f"journal URL {url!r} is not a valid SQLAlchemy URL: {err}"
            raise JournalError(msg) from err
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                msg = f"journal URL {url!r}: the SQLite journal must be a file path"
                raise JournalError(msg)
            path = Path(database)
            if create:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    msg = f"cannot create the journal's folder {path.parent}: {err}"
                    raise JournalError(msg) from err
            elif not path.is_file():
                msg = f"no journal at {path} (run `edigw run` or `edigw process` once to create it)"
                raise JournalError(msg)
            engine = _sqlite_engine(url, synchronous=sqlite_synchronous.upper())
        elif backend == "postgresql":
            # No pre-ping (a round trip per transaction): a connection dropped by a server
            # restart fails one call with a JournalError and SQLAlchemy replaces the pool.
            with _translated("connect"):
                engine = create_engine(url, pool_recycle=3600)
        else:
            msg = f"journal URL {url!r}: only sqlite and postgresql journals are supported"
            raise JournalError(msg)
        journal = cls(
            engine, url=url, barriers=backend == "sqlite" and sqlite_synchronous == "normal"
        )
        try:
            if create:
                journal.migrate()
            else:
                journal._check_revision()
        except BaseException:
            engine.dispose()
            raise
        return journal

    def close(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._readers_lock:
            for conn in self._idle_readers:
                conn.close()
            self._idle_readers.clear()
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- schema

    @staticmethod
    def _alembic_config() -> Config:
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        return config

    @classmethod
    def head_revision(cls) -> str:
        """The schema revision this version of edigw needs."""
        head = ScriptDirectory.from_config(cls._alembic_config()).get_current_head()
        if head is None:  # pragma: no cover - the package always ships migrations
            msg = "edigw ships no journal migrations"
            raise JournalError(msg)
        return head

    def revision(self) -> str | None:
        """The schema revision of the database (``None`` when it is empty)."""
        with _translated("read the schema version"), self._reader.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()

    def migrate(self) -> None:
        """Upgrade the database to the latest schema (no-op when it is there already).

        Why Alembic: it is the SQLAlchemy project's own migration tool, keeps a version table
        (``schema_version``) and runs the same revision scripts on SQLite and PostgreSQL; the
        scripts ship inside the package and run on the journal's own connection, so there is
        no ``alembic.ini`` to install. The whole upgrade is one transaction (both backends
        have transactional DDL), serialised across nodes by ``BEGIN IMMEDIATE`` on SQLite and
        an advisory lock on PostgreSQL: nodes starting together migrate once.
        """
        config = self._alembic_config()
        with _translated("migrate the schema"), self._engine.begin() as conn:
            if self._pg:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _check_revision(self) -> None:
        current, head = self.revision(), self.head_revision()
        if current != head:
            msg = (
                f"the journal at {self.url} is at schema revision {current or 'none'}, "
                f"this edigw needs {head}: start `edigw run` once to migrate it"
            )
            raise JournalError(msg)

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _write(self, what: str, *, barrier: bool = False) -> Iterator[Connection]:
        """A write transaction; a ``barrier`` one is fsync'd whatever ``sqlite_synchronous``.

        (In WAL mode, syncing one commit makes every earlier commit durable too.)
        """
        if self._pg:
            with _translated(what), self._engine.connect() as conn, conn.begin():
                yield conn
            return
        with self._write_lock, _translated(what):
            if self._writer is None:
                self._writer = self._engine.connect()
            conn = self._writer
            driver = conn.connection.dbapi_connection if barrier and self._barriers else None
            try:
                if driver is not None:
                    driver.execute("PRAGMA synchronous = FULL")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    if driver is not None:
                        driver.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                # Whatever went wrong (a full disk, a broken connection), start afresh.
                self._writer = None
                conn.close()
                raise

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        if self._pg:
            with _translated(what), self._reader.connect() as conn:
                yield conn
            return
        # SQLite: reads reuse idle open connections (WAL readers never block writers), one
        # short transaction per read, instead of a pool checkout and reset each time.
        with self._readers_lock:
            reading = self._idle_readers.pop() if self._idle_readers else None
        with _translated(what):
            if reading is None:
                reading = self._reader.connect()
            try:
                transaction = reading.begin()
                try:
                    yield reading
                finally:
                    transaction.rollback()  # a read has nothing to commit
            except BaseException:
                reading.close()
                raise
        with self._readers_lock:
            self._idle_readers.append(reading)

    @staticmethod
    def _event(
        conn: Connection,
        file_id: int,
        kind: str,
        *,
        now: datetime,
        document_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            _INSERT_EVENT,
            {
                "file_id": file_id,
                "document_id": document_id,
                "at": now,
                "kind": kind,
                "detail": detail,
            },
        )

    # ----------------------------------------------------------------- files

    def add_file(
        self,
        *,
        partner: str,
        flow: str,
        channel: str,
        original_name: str,
        source_path: str,
        size: int,
        sha256: str,
        archive_path: str,
        now: datetime,
        documents: Sequence[NewDocument] | None = None,
    ) -> int:
        """Record a file received (already archived); returns its id.

        With ``documents`` (what the mapping found in it) the file is recorded ``parsed``
        with them in the same transaction, as :meth:`add_documents` would: one commit per
        file instead of two on the pipeline's hot path, and the same events.
        """
        now = _aware(now)
        rows = None if documents is None else self._document_rows(documents, now=now)
        with self._write("record a received file") as conn:
            file_id: int = conn.execute(
                self._sql.insert_file,
                {
                    "partner": partner,
                    "flow": flow,
                    "channel": channel,
                    "original_name": original_name,
                    "source_path": source_path,
                    "size": size,
                    "sha256": sha256,
                    "archive_path": archive_path,
                    "state": FileState.RECEIVED,
                    "received_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            self._owners[file_id] = (partner, flow)
            self._event(
                conn,
                file_id,
                FileState.RECEIVED,
                now=now,
                detail=f"{original_name} ({size} bytes, sha256 {sha256}) from {channel}",
            )
            if documents is not None and rows is not None:
                self._insert_documents(conn, file_id, documents, rows, now=now)
        return file_id

    def files_with_content(self, *, partner: str, flow: str, sha256: str) -> list[FileRow]:
        """Every file of this flow with these bytes, oldest first (usually none or one).

        One indexed query answers both questions the pipeline asks of a new file: was it
        taken before a crash (the latest one, not yet disposed of) and was it already done.
        """
        with self._read("look for files by content") as conn:
            rows = conn.execute(
                self._sql.files_with_content,
                {"partner": partner, "flow": flow, "sha256": sha256},
            ).mappings()
            return [_file_row(m) for m in rows]

    def find_done_file(self, *, partner: str, flow: str, sha256: str) -> FileRow | None:
        """The earliest file of this flow with the same content that ended ``done``, if any."""
        with self._read("look for a duplicate file") as conn:
            m = (
                conn.execute(
                    select(files)
                    .where(
                        files.c.partner == partner,
                        files.c.flow == flow,
                        files.c.sha256 == sha256,
                        files.c.state == FileState.DONE,
                    )
                    .order_by(files.c.id)
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if m is None else _file_row(m)

    def latest_file_by_hash(self, *, partner: str, flow: str, sha256: str) -> FileRow | None:
        """The latest file of this flow with this content, whatever its state.

        The pipeline uses it to *resume* a file taken before a crash instead of taking the
        same source a second time.
        """
        with self._read("look for a file by content") as conn:
            m = (
                conn.execute(
                    select(files)
                    .where(
                        files.c.partner == partner,
                        files.c.flow == flow,
                        files.c.sha256 == sha256,
                    )
                    .order_by(files.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if m is None else _file_row(m)

    def source_disposed(self, file_id: int) -> bool:
        """Whether the file's source was already moved, deleted or left (successfully)."""
        with self._read("check a source's disposal") as conn:
            found = conn.execute(
                select(channel_actions.c.id)
                .where(channel_actions.c.file_id == file_id, channel_actions.c.ok == true())
                .limit(1)
            ).first()
        return found is not None

    def set_file_state(
        self, file_id: int, state: str, *, now: datetime, error: str | None = None
    ) -> None:
        """Move a file to ``state`` (any state: the pipeline owns the transitions).

        ``parsed_at`` is stamped on ``parsed``, ``finished_at`` on a final state; ``error``
        replaces the file's error when given.
        """
        state = FileState(state)
        now = _aware(now)
        values: dict[str, Any] = {"state": state, "updated_at": now}
        if state == FileState.PARSED:
            values["parsed_at"] = now
        if state in FINAL_FILE_STATES:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        with self._write("change a file's state", barrier=True) as conn:
            result = conn.execute(update(files).where(files.c.id == file_id).values(**values))
            if result.rowcount == 0:
                msg = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg)
            self._event(conn, file_id, state, now=now, detail=error)

    def file(self, file_id: int) -> FileRow:
        with self._read("read a file") as conn:
            m = conn.execute(self._sql.file, {"fid": file_id}).mappings().first()
        if m is None:
            msg = f"F-{file_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _file_row(m)

    def files(
        self,
        *,
        partner: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[FileRow]:
        """Files, newest first, filtered; ``since`` compares with ``received_at``; no limit: None."""
        query = _filtered(
            select(files).order_by(files.c.id.desc()),
            partner=partner,
            flow=flow,
            state=(files.c.state, None if state is None else FileState(state)),
            since=(files.c.received_at, since),
            limit=limit,
        )
        with self._read("list files") as conn:
            return [_file_row(m) for m in conn.execute(query).mappings()]

    # ----------------------------------------------------------------- documents

    def add_documents(
        self, file_id: int, docs: Sequence[NewDocument], *, now: datetime
    ) -> list[int]:
        """Record the documents found in a file and move the file to ``parsed``, atomically.

        Returns the new ids in the order of ``docs``. Raises :class:`DuplicateKeyError`
        (nothing written) when an idempotency key is already in the journal or twice in
        ``docs``: the pipeline decides what a repeated document means.
        """
        now = _aware(now)
        rows = self._document_rows(docs, now=now)
        with self._write("record a file's documents") as conn:
            if not conn.execute(select(files.c.id).where(files.c.id == file_id)).first():
                msg_0 = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg_0)
            return self._insert_documents(conn, file_id, docs, rows, now=now)

    @staticmethod
    def _document_rows(docs: Sequence[NewDocument], *, now: datetime) -> list[dict[str, Any]]:
        for doc in docs:
            if DocState(doc.state) not in (DocState.PENDING, DocState.FAILED):
                msg = f"a new document is pending or failed, not {doc.state}"
                raise ValueError(msg)
        head = min((d.seq for d in docs if d.state == DocState.PENDING), default=None)
        return [
            {
                "seq": doc.seq,
                "business_key": doc.business_key,
                "operation": doc.operation,
                "payload": _dumps(doc.payload, f"payload of document {doc.business_key}"),
                "idempotency_key": doc.idempotency_key,
                "state": DocState(doc.state),
                "file_head": doc.seq == head,
                "attempts": 0,
                "error": doc.error,
                "error_location": None if doc.error_location is None else str(doc.error_location),
                "created_at": now,
                "updated_at": now,
            }
            for doc in docs
        ]

    def _insert_documents(
        self,
        conn: Connection,
        file_id: int,
        docs: Sequence[NewDocument],
        rows: list[dict[str, Any]],
        *,
        now: datetime,
    ) -> list[int]:
        """Insert a file's documents (refusing repeated keys), their events, and ``parsed``."""
        seen: dict[str, int | None] = {}
        repeated: dict[str, int | None] = {}
        for doc in docs:
            if doc.idempotency_key in seen:
                repeated[doc.idempotency_key] = None
            seen[doc.idempotency_key] = None
        if seen:
            existing = conn.execute(self._sql.existing_keys, {"keys": list(seen)}).all()
            repeated.update({key: doc_id for key, doc_id in existing})
        if repeated:
            shown = ", ".join(
                f"{key} ({'D-' + str(d) if d is not None else 'twice in this file'})"
                for key, d in list(repeated.items())[:5]
            )
            msg = f"F-{file_id}: {len(repeated)} idempotency key(s) already used: {shown}"
            raise DuplicateKeyError(msg, keys=repeated)
        ids: list[int] = []
        failed = sum(1 for d in docs if d.state == DocState.FAILED)
        events_rows: list[dict[str, Any]] = []
        if rows:
            result = conn.execute(
                self._sql.insert_documents, [{**row, "file_id": file_id} for row in rows]
            )
            ids = list(result.scalars())
            events_rows = [
                {
                    "file_id": file_id,
                    "document_id": doc_id,
                    "at": now,
                    "kind": str(doc.state),
                    "detail": f"{doc.operation} {doc.business_key}"
                    + (f": {doc.error}" if doc.error else ""),
                }
                for doc_id, doc in zip(ids, docs, strict=True)
            ]
        conn.execute(self._sql.file_parsed, {"fid": file_id, "now": now})
        events_rows.append(
            {
                "file_id": file_id,
                "document_id": None,
                "at": now,
                "kind": str(FileState.PARSED),
                "detail": f"{len(docs)} document(s), {failed} failed at mapping",
            }
        )
        conn.execute(_INSERT_EVENT, events_rows)
        return ids

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
        Only the first unfinished document of each file is ever due, so a file's documents
        reach Ecolix in order. Ordered by file, then position in the file; atomic across
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
        now = _aware(now)
        until = now + timedelta(seconds=lease_seconds)
        params: dict[str, Any] = {"now": now, "limit": 1}
        if file_id is not None:
            params["fid"] = file_id
        query = self._sql.claim_one_file if file_id is not None else self._sql.claim
        with self._write("claim a document to send") as conn:
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
            happened = []
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
            conn.execute(_INSERT_EVENT, happened)
        return replace(
            doc,
            state=str(DocState.SENT),
            attempts=attempts,
            next_attempt_at=None,
            claimed_by=node,
            claimed_until=until,
            updated_at=now,
        )

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

    def mark_done(
        self,
        doc_id: int,
        *,
        now: datetime,
        status: int | None,
        object_id: str | None,
        response: Any,
    ) -> bool:
        """Record Ecolix's success. Idempotent: a document already done keeps its first answer.

        Returns whether the file may now be complete (no unfinished document left, or the
        document was already done): then :meth:`finish_file_if_complete` settles it.
        """
        now = _aware(now)
        body = _dumps(response, f"Ecolix response of D-{doc_id}")
        with self._write("mark a document done") as conn:
            finished = (
                conn.execute(
                    self._sql.done,
                    {
                        "doc_id": doc_id,
                        "now": now,
                        "status": status,
                        "object_id": object_id,
                        "response": body,
                    },
                )
                .mappings()
                .first()
            )
            if finished is None:
                self._doc_state(conn, doc_id)  # raises for an unknown id
                return True  # already done: the first answer stands
            self._event(
                conn,
                finished["file_id"],
                DocState.DONE,
                now=now,
                document_id=doc_id,
                detail=f"{status if status is not None else '-'} {object_id or ''}".strip(),
            )
            return self._advance_head(conn, finished, doc_id)

    def mark_retry(
        self, doc_id: int, *, now: datetime, next_attempt_at: datetime, reason: str
    ) -> None:
        """Park an unfinished document until ``next_attempt_at`` (temporary failure)."""
        now = _aware(now)
        next_attempt_at = _aware(next_attempt_at, "next_attempt_at")
        with self._write("schedule a retry") as conn:
            m = (
                conn.execute(
                    self._sql.retry,
                    {"doc_id": doc_id, "now": now, "next_at": next_attempt_at, "reason": reason},
                )
                .mappings()
                .first()
            )
            if m is None:
                current = self._doc_state(conn, doc_id)
                msg = f"D-{doc_id} is {current['state']}: it cannot wait for a retry"
                raise StateError(msg)
            self._event(
                conn,
                m["file_id"],
                DocState.RETRY_WAIT,
                now=now,
                document_id=doc_id,
                detail=f"{reason}; next attempt at {next_attempt_at.isoformat()}",
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
    ) -> bool:
        """Fail a document for good with its reason (and source location, Ecolix answer).

        Returns whether the file has no unfinished document left (see :meth:`mark_done`).
        """
        now = _aware(now)
        body = _dumps(response, f"Ecolix response of D-{doc_id}")
        where = None if location is None else str(location)
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
            self._event(
                conn,
                finished["file_id"],
                DocState.FAILED,
                now=now,
                document_id=doc_id,
                detail=reason if where is None else f"{where}: {reason}",
            )
            return self._advance_head(conn, finished, doc_id)

    def reset_for_replay(
        self, doc_id: int, *, payload: Mapping[str, Any], operation: str, now: datetime
    ) -> None:
        """Make a failed document pending again with a re-mapped payload (same idempotency key).

        Attempts start again from zero (the events keep the earlier ones), and a file that had
        finished goes back to ``parsed`` until its documents are finished again.
        """
        now = _aware(now)
        body = _dumps(payload, f"payload of D-{doc_id}")
        with self._write("reset a document for replay", barrier=True) as conn:
            current = self._doc_state(conn, doc_id)
            if current["state"] != DocState.FAILED:
                detail = "already done" if current["state"] == DocState.DONE else current["state"]
                msg = f"D-{doc_id} is {detail}: only a failed document can be replayed"
                raise StateError(msg)
            file_id = current["file_id"]
            conn.execute(
                update(documents)
                .where(documents.c.id == doc_id)
                .values(
                    state=DocState.PENDING,
                    payload=body,
                    operation=operation,
                    attempts=0,
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
            self._event(conn, file_id, "replay", now=now, document_id=doc_id, detail=operation)
            self._refresh_head(conn, file_id)
            reopened = conn.execute(
                update(files)
                .where(files.c.id == file_id, files.c.state.in_(FINAL_FILE_STATES))
                .values(state=FileState.PARSED, finished_at=None, updated_at=now)
            )
            if reopened.rowcount:
                self._event(
                    conn, file_id, FileState.PARSED, now=now, detail=f"reopened for D-{doc_id}"
                )

    def document(self, doc_id: int) -> DocumentRow:
        with self._read("read a document") as conn:
            m = conn.execute(_doc_select().where(documents.c.id == doc_id)).mappings().first()
        if m is None:
            msg = f"D-{doc_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _doc_row(m)

    def document_by_key(self, idempotency_key: str) -> DocumentRow | None:
        """The document holding this idempotency key, if any (for "already done" replays)."""
        with self._read("find a document by key") as conn:
            m = (
                conn.execute(_doc_select().where(documents.c.idempotency_key == idempotency_key))
                .mappings()
                .first()
            )
        return None if m is None else _doc_row(m)

    def documents_of(self, file_id: int) -> list[DocumentRow]:
        """A file's documents in file order."""
        with self._read("list a file's documents") as conn:
            rows = conn.execute(
                _doc_select().where(documents.c.file_id == file_id).order_by(documents.c.seq)
            ).mappings()
            return [_doc_row(m) for m in rows]

    def documents(
        self,
        *,
        partner: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[DocumentRow]:
        """Documents, oldest first, filtered; ``since`` compares with ``updated_at``."""
        query = _filtered(
            _doc_select().order_by(documents.c.id),
            partner=partner,
            flow=flow,
            state=(documents.c.state, None if state is None else DocState(state)),
            since=(documents.c.updated_at, since),
            limit=limit,
        )
        with self._read("list documents") as conn:
            return [_doc_row(m) for m in conn.execute(query).mappings()]

    def finish_file_if_complete(self, file_id: int, *, now: datetime) -> str | None:
        """Close a parsed file whose documents are all finished; returns the state it took.

        ``done`` when every document is done (or it has none), ``failed`` when every one
        failed, ``partially_failed`` otherwise. Returns ``None`` while documents are still
        unfinished or when the file is not ``parsed``, so exactly one caller sees the
        transition and acts on it (moving the source, writing the error file).
        """
        now = _aware(now)
        with self._read("check a file's documents") as conn:
            # A file with an unfinished document has a head: one index seek, no write lock.
            if conn.execute(self._sql.has_head, {"fid": file_id}).first() is not None:
                return None
        with self._write("finish a file", barrier=True) as conn:
            counts: dict[str, int] = dict(
                conn.execute(self._sql.state_counts, {"fid": file_id}).all()  # type: ignore[arg-type]
            )
            if any(counts.get(s, 0) for s in UNFINISHED_DOC_STATES):
                return None
            done, failed = counts.get(DocState.DONE, 0), counts.get(DocState.FAILED, 0)
            if failed == 0:
                state = FileState.DONE
            elif done == 0:
                state = FileState.FAILED
            else:
                state = FileState.PARTIALLY_FAILED
            error = None if failed == 0 else f"{failed} of {done + failed} document(s) failed"
            result = conn.execute(
                self._sql.file_finished,
                {"fid": file_id, "state": str(state), "error": error, "now": now},
            )
            if result.rowcount == 0:
                return None
            self._event(
                conn,
                file_id,
                state,
                now=now,
                detail=f"{done} done, {failed} failed",
            )
            return str(state)

    def events_of(self, file_id: int) -> list[EventRow]:
        """The story of a file and its documents, in the order it happened."""
        with self._read("read a file's events") as conn:
            rows = conn.execute(
                select(events).where(events.c.file_id == file_id).order_by(events.c.id)
            ).mappings()
            return [EventRow(**dict(m)) for m in rows]

    def events_of_document(self, doc_id: int) -> list[EventRow]:
        with self._read("read a document's events") as conn:
            rows = conn.execute(
                select(events).where(events.c.document_id == doc_id).order_by(events.c.id)
            ).mappings()
            return [EventRow(**dict(m)) for m in rows]

    def status_counts(self) -> list[StatusRow]:
        """Per partner/flow (sorted): files and documents by state, waiting work, last errors."""
        with self._read("count states") as conn:
            file_counts = conn.execute(
                select(files.c.partner, files.c.flow, files.c.state, func.count()).group_by(
                    files.c.partner, files.c.flow, files.c.state
                )
            ).all()
            doc_counts = conn.execute(
                select(files.c.partner, files.c.flow, documents.c.state, func.count())
                .join(files, files.c.id == documents.c.file_id)
                .group_by(files.c.partner, files.c.flow, documents.c.state)
            ).all()
            retries = conn.execute(
                select(files.c.partner, files.c.flow, func.min(documents.c.next_attempt_at))
                .join(files, files.c.id == documents.c.file_id)
                .where(documents.c.state == DocState.RETRY_WAIT)
                .group_by(files.c.partner, files.c.flow)
            ).all()
            failed_docs = conn.execute(
                select(
                    files.c.partner,
                    files.c.flow,
                    documents.c.id,
                    documents.c.updated_at,
                    documents.c.error,
                    documents.c.error_location,
                )
                .join(files, files.c.id == documents.c.file_id)
                .where(documents.c.state == DocState.FAILED)
                .order_by(documents.c.updated_at.desc(), documents.c.id.desc())
                .limit(200)
            ).all()
            failed_files = conn.execute(
                select(files.c.partner, files.c.flow, files.c.id, files.c.updated_at, files.c.error)
                .where(files.c.state == FileState.FAILED)
                .order_by(files.c.updated_at.desc(), files.c.id.desc())
                .limit(200)
            ).all()
            failed_actions = conn.execute(
                select(
                    files.c.partner,
                    files.c.flow,
                    channel_actions.c.file_id,
                    channel_actions.c.at,
                    channel_actions.c.action,
                    channel_actions.c.error,
                )
                .join(files, files.c.id == channel_actions.c.file_id)
                .where(channel_actions.c.ok == False)  # noqa: E712 - SQL expression
                .order_by(channel_actions.c.at.desc(), channel_actions.c.id.desc())
                .limit(200)
            ).all()

        keys: set[tuple[str, str]] = set()
        by_files: dict[tuple[str, str], dict[str, int]] = {}
        by_docs: dict[tuple[str, str], dict[str, int]] = {}
        for partner, flow, state, count in file_counts:
            keys.add((partner, flow))
            by_files.setdefault((partner, flow), {})[state] = count
        for partner, flow, state, count in doc_counts:
            keys.add((partner, flow))
            by_docs.setdefault((partner, flow), {})[state] = count
        next_retry = {(p, f): at for p, f, at in retries}
        errors: dict[tuple[str, str], list[RecentError]] = {}
        for p, f, doc_id, at, error, location in failed_docs:
            errors.setdefault((p, f), []).append(
                RecentError(f"D-{doc_id}", at, error or "", location)
            )
        for p, f, file_id, at, error in failed_files:
            errors.setdefault((p, f), []).append(RecentError(f"F-{file_id}", at, error or ""))
        for p, f, file_id, at, action, error in failed_actions:
            errors.setdefault((p, f), []).append(
                RecentError(f"F-{file_id}", at, f"{action} failed: {error or 'unknown error'}")
            )
        result = []
        for key in sorted(keys):
            file_states, doc_states = by_files.get(key, {}), by_docs.get(key, {})
            recent = sorted(errors.get(key, []), key=lambda e: e.at, reverse=True)
            result.append(
                StatusRow(
                    partner=key[0],
                    flow=key[1],
                    files=file_states,
                    documents=doc_states,
                    files_waiting=sum(
                        file_states.get(s, 0) for s in (FileState.RECEIVED, FileState.PARSED)
                    ),
                    documents_waiting=sum(doc_states.get(s, 0) for s in UNFINISHED_DOC_STATES),
                    next_retry_at=next_retry.get(key),
                    last_errors=tuple(recent[:LAST_ERRORS]),
                )
            )
        return result

    def next_retry_at(self) -> datetime | None:
        """When the earliest document waiting for a retry becomes due (``None``: none waits)."""
        with self._read("find the next retry") as conn:
            value: datetime | None = conn.execute(self._sql.next_retry).scalar()
        return value

    # ----------------------------------------------------------------- SFTP memory, channel actions

    def remember_remote_file(
        self,
        *,
        channel: str,
        path: str,
        size: int,
        mtime: float,
        sha256: str,
        file_id: int | None,
        now: datetime,
    ) -> None:
        """Remember what sits at ``path`` on a remote channel (the latest version replaces)."""
        now = _aware(now)
        values = {
            "channel": channel,
            "path": path,
            "size": size,
            "mtime": mtime,
            "sha256": sha256,
            "file_id": file_id,
            "seen_at": now,
        }
        dialect_insert = postgresql.insert if self._pg else sqlite.insert
        statement = dialect_insert(remote_files).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[remote_files.c.channel, remote_files.c.path],
            set_={
                k: statement.excluded[k] for k in ("size", "mtime", "sha256", "file_id", "seen_at")
            },
        )
        with self._write("remember a remote file", barrier=True) as conn:
            conn.execute(statement)

    def remote_file_seen(self, *, channel: str, path: str, size: int, mtime: float) -> bool:
        """Whether the file at ``path`` still has the size and mtime remembered for it."""
        with self._read("look up a remote file") as conn:
            return (
                conn.execute(
                    self._sql.remote_seen,
                    {"channel": channel, "path": path, "size": size, "mtime": mtime},
                ).first()
                is not None
            )

    def remote_file_seen_with_hash(self, *, channel: str, path: str, sha256: str) -> bool:
        """Whether the content remembered at ``path`` has this hash (touched, not changed)."""
        with self._read("look up a remote file") as conn:
            return (
                conn.execute(
                    select(remote_files.c.path).where(
                        remote_files.c.channel == channel,
                        remote_files.c.path == path,
                        remote_files.c.sha256 == sha256,
                    )
                ).first()
                is not None
            )

    def record_channel_action(
        self, file_id: int | None, *, action: str, ok: bool, error: str | None, now: datetime
    ) -> None:
        """Record what was done to a source after its outcome (move, delete, error file...)."""
        now = _aware(now)
        with self._write("record a channel action", barrier=True) as conn:
            conn.execute(
                self._sql.insert_channel_action,
                {"file_id": file_id, "action": action, "ok": ok, "error": error, "at": now},
            )
            if file_id is not None:
                detail = action if ok else f"{action} failed: {error or 'unknown error'}"
                self._event(conn, file_id, "channel", now=now, detail=detail)

    def channel_actions(
        self, *, file_id: int | None = None, failed_only: bool = False, limit: int | None = 100
    ) -> list[ChannelActionRow]:
        """Channel actions, newest first."""
        query = select(channel_actions).order_by(channel_actions.c.id.desc())
        if file_id is not None:
            query = query.where(channel_actions.c.file_id == file_id)
        if failed_only:
            query = query.where(channel_actions.c.ok == False)  # noqa: E712 - SQL expression
        if limit is not None:
            query = query.limit(limit)
        with self._read("list channel actions") as conn:
            return [ChannelActionRow(**dict(m)) for m in conn.execute(query).mappings()]

    # ----------------------------------------------------------------- exports

    def start_export_run(
        self, *, partner: str, flow: str, mode: str, window_from: datetime | None, now: datetime
    ) -> int:
        now = _aware(now)
        with self._write("start an export run") as conn:
            run_id: int = conn.execute(
                insert(export_runs)
                .values(
                    partner=partner,
                    flow=flow,
                    mode=mode,
                    window_from=_maybe_aware(window_from, "window_from"),
                    records=0,
                    calls=0,
                    state=RunState.RUNNING,
                    started_at=now,
                )
                .returning(export_runs.c.id)
            ).scalar_one()
        return run_id

    def finish_export_run(
        self,
        run_id: int,
        *,
        state: str,
        now: datetime,
        window_to: datetime | None = None,
        records: int = 0,
        calls: int = 0,
        file_name: str | None = None,
        sha256: str | None = None,
        archive_path: str | None = None,
        error: str | None = None,
    ) -> None:
        run_state = RunState(state)
        if run_state == RunState.RUNNING:
            msg = "an export run finishes delivered, failed or empty, not running"
            raise ValueError(msg)
        now = _aware(now)
        with self._write("finish an export run", barrier=True) as conn:
            result = conn.execute(
                update(export_runs)
                .where(export_runs.c.id == run_id)
                .values(
                    state=run_state,
                    finished_at=now,
                    window_to=_maybe_aware(window_to, "window_to"),
                    records=records,
                    calls=calls,
                    file_name=file_name,
                    sha256=sha256,
                    archive_path=archive_path,
                    error=error,
                )
            )
            if result.rowcount == 0:
                msg_0 = f"R-{run_id} does not exist in the journal"
                raise UnknownIdError(msg_0)

    def export_run(self, run_id: int) -> ExportRunRow:
        with self._read("read an export run") as conn:
            m = (
                conn.execute(select(export_runs).where(export_runs.c.id == run_id))
                .mappings()
                .first()
            )
        if m is None:
            msg = f"R-{run_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _run_row(m)

    def export_runs(
        self, *, partner: str | None = None, flow: str | None = None, limit: int | None = 50
    ) -> list[ExportRunRow]:
        """Export runs, newest first."""
        query = select(export_runs).order_by(export_runs.c.id.desc())
        if partner is not None:
            query = query.where(export_runs.c.partner == partner)
        if flow is not None:
            query = query.where(export_runs.c.flow == flow)
        if limit is not None:
            query = query.limit(limit)
        with self._read("list export runs") as conn:
            return [_run_row(m) for m in conn.execute(query).mappings()]

    def cursor(self, partner: str, flow: str) -> datetime | None:
        """The delta export's high-water mark for this flow (``None``: never exported)."""
        with self._read("read an export cursor") as conn:
            value: datetime | None = conn.execute(
                select(export_cursors.c.high_water_mark).where(
                    export_cursors.c.partner == partner, export_cursors.c.flow == flow
                )
            ).scalar()
        return value

    def advance_cursor(
        self, partner: str, flow: str, high_water_mark: datetime, *, now: datetime
    ) -> None:
        """Move the high-water mark forward; a mark older than the stored one is ignored."""
        now = _aware(now)
        mark = _aware(high_water_mark, "high_water_mark")
        dialect_insert = postgresql.insert if self._pg else sqlite.insert
        statement = dialect_insert(export_cursors).values(
            partner=partner, flow=flow, high_water_mark=mark, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[export_cursors.c.partner, export_cursors.c.flow],
            set_={"high_water_mark": statement.excluded.high_water_mark, "updated_at": now},
            where=export_cursors.c.high_water_mark < statement.excluded.high_water_mark,
        )
        with self._write("advance an export cursor", barrier=True) as conn:
            conn.execute(statement)

    def reset_cursor(self, partner: str, flow: str) -> None:
        """Forget the high-water mark: the next delta export starts from the beginning."""
        with self._write("reset an export cursor", barrier=True) as conn:
            conn.execute(
                export_cursors.delete().where(
                    export_cursors.c.partner == partner, export_cursors.c.flow == flow
                )
            )

    def next_sequence(self, partner: str, flow: str) -> int:
        """The next number of this flow's sequence (1, 2, ...), atomically across nodes."""
        dialect_insert = postgresql.insert if self._pg else sqlite.insert
        statement = dialect_insert(export_sequences).values(partner=partner, flow=flow, last_seq=1)
        upsert = statement.on_conflict_do_update(
            index_elements=[export_sequences.c.partner, export_sequences.c.flow],
            set_={"last_seq": export_sequences.c.last_seq + 1},
        ).returning(export_sequences.c.last_seq)
        with self._write("take the next sequence number", barrier=True) as conn:
            value: int = conn.execute(upsert).scalar_one()
        return value

    # ----------------------------------------------------------------- retention

    def purgeable_files(self, *, before: datetime, states: Collection[str]) -> list[int]:
        """Files the journal may forget: received before ``before``, in one of ``states``
        (final states only), their source moved, deleted or left, and no later reception of
        the same bytes in the same flow kept (a kept reception keeps its number, which its
        documents' idempotency keys depend on)."""
        before = _aware(before, "before")
        wanted = [str(FileState(s)) for s in states]
        not_final = set(wanted) - {str(s) for s in FINAL_FILE_STATES}
        if not_final:
            msg = f"only finished files can be purged, not {', '.join(sorted(not_final))}"
            raise JournalError(msg)

        def purgeable(f: Any) -> ColumnElement[bool]:
            disposed = (
                select(channel_actions.c.id)
                .where(channel_actions.c.file_id == f.c.id, channel_actions.c.ok == true())
                .exists()
            )
            return and_(f.c.received_at < before, f.c.state.in_(wanted), disposed)

        later = files.alias("later")
        kept_later = (
            select(later.c.id)
            .where(
                later.c.partner == files.c.partner,
                later.c.flow == files.c.flow,
                later.c.sha256 == files.c.sha256,
                later.c.id > files.c.id,
                ~purgeable(later),
            )
            .exists()
        )
        query = select(files.c.id).where(purgeable(files), ~kept_later).order_by(files.c.id)
        with self._read("find files to purge") as conn:
            return [row[0] for row in conn.execute(query)]

    def old_export_runs(self, *, before: datetime) -> list[int]:
        """Finished export runs started before ``before``."""
        query = (
            select(export_runs.c.id)
            .where(
                export_runs.c.started_at < _aware(before, "before"),
                export_runs.c.state != str(RunState.RUNNING),
            )
            .order_by(export_runs.c.id)
        )
        with self._read("find export runs to purge") as conn:
            return [row[0] for row in conn.execute(query)]

    def contents_in_use(
        self, *, except_files: Collection[int] = (), except_runs: Collection[int] = ()
    ) -> set[str]:
        """The sha256 of every file and export run the journal keeps (but those named): the
        archive copies it still points at."""
        skip_files, skip_runs = set(except_files), set(except_runs)
        used: set[str] = set()
        with self._read("list archived contents") as conn:
            for file_id, sha256 in conn.execute(select(files.c.id, files.c.sha256)):
                if file_id not in skip_files and sha256:
                    used.add(sha256)
            runs = select(export_runs.c.id, export_runs.c.sha256).where(
                export_runs.c.sha256.is_not(None)
            )
            for run_id, sha256 in conn.execute(runs):
                if run_id not in skip_runs:
                    used.add(sha256)
        return used

    def purge(self, *, file_ids: Sequence[int], run_ids: Sequence[int]) -> PurgeCounts:
        """Forget files with their documents, events and source moves, and export runs.

        What is remembered of remote files stays (so a file left on a partner's server is
        still not fetched again), without its link to the file. Batches of 500, one
        transaction each: an interrupted purge leaves whole files, never half of one.
        """
        counts = PurgeCounts()
        for batch in _batches(file_ids):
            with self._write("purge files", barrier=True) as conn:
                conn.execute(
                    update(remote_files)
                    .where(remote_files.c.file_id.in_(batch))
                    .values(file_id=None)
                )
                counts.events += _deleted(conn, events, events.c.file_id.in_(batch))
                _deleted(conn, channel_actions, channel_actions.c.file_id.in_(batch))
                counts.documents += _deleted(conn, documents, documents.c.file_id.in_(batch))
                counts.files += _deleted(conn, files, files.c.id.in_(batch))
        for batch in _batches(run_ids):
            with self._write("purge export runs", barrier=True) as conn:
                counts.export_runs += _deleted(conn, export_runs, export_runs.c.id.in_(batch))
        return counts


@dataclass(slots=True)
class PurgeCounts:
    """What a purge removed from the journal."""

    files: int = 0
    documents: int = 0
    events: int = 0
    export_runs: int = 0


def _batches(ids: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _deleted(conn: Connection, table: Any, condition: ColumnElement[bool]) -> int:
    return int(conn.execute(table.delete().where(condition)).rowcount or 0)
