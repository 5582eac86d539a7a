"""The journal's connections and transactions, which every part of the ``Journal`` shares.

SQLite: one writer connection behind a process lock, idle reader connections reused;
PostgreSQL: the engine's pool, reads and one-statement writes in autocommit (no ``BEGIN`` and
``COMMIT`` round trips). See ``dialect`` for what differs in the SQL itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, insert

from edigw.filemodes import DEFAULT_MODES, FileModes
from edigw.journal.dialect import Statements, lazy_commit_engine, translated
from edigw.journal.errors import JournalUnavailable
from edigw.journal.lock import GatewayLock, WriterTurn
from edigw.journal.prepared import Prepared
from edigw.journal.schema import events
from edigw.journal.wal_sync import WalSync
from edigw.problems import storable

_INSERT_EVENT = Prepared(insert(events))


class JournalBase:
    """The journal's engine, statements and transactions; the parts of ``Journal`` build on it."""

    def __init__(
        self,
        engine: Engine,
        *,
        url: str,
        barriers: bool = False,
        lazy_commits: bool = False,
        modes: FileModes = DEFAULT_MODES,
    ) -> None:
        self._engine = engine
        self._pg = engine.dialect.name == "postgresql"
        # PostgreSQL: the per-document writes' own pool, whose commits are not waited for
        # (``dialect.lazy_commit_engine``); None: every commit waits.
        self._lazy_engine = lazy_commit_engine(engine) if self._pg and lazy_commits else None
        self._reader = engine.execution_options(journal_read=True)
        self._sql = Statements(pg=self._pg)
        self._barriers = barriers
        # file id -> (partner, flow): never changes once written, read on every claim.
        self._owners: dict[int, tuple[str, str]] = {}
        # file id -> whether it keeps file order (``edigw.journal.heads``): written once.
        self._ordered_files: dict[int, bool] = {}
        # SQLite: this process's writers queue here, woken as soon as the lock is free, rather
        # than in SQLite's busy handler, which sleeps for milliseconds and lets one thread
        # starve the others; then each process's writer at ``_writer_turn``, the same way.
        self._write_lock: AbstractContextManager[object] = (
            nullcontext() if self._pg else threading.Lock()
        )
        # SQLite: writes are serialised by that lock anyway, so they share one connection
        # kept open, instead of a pool checkout, reset and check-in per transaction.
        self._writer: Connection | None = None
        self._readers_lock = threading.Lock()
        self._idle_readers: list[Connection] = []
        self.url = url
        database = engine.url.database
        self._gateway_lock = (
            GatewayLock(Path(database), modes=modes)
            if not self._pg and database is not None
            else None
        )
        # SQLite in a file (not in memory): its writers' turns, and its barriers' fsyncs.
        on_disk = Path(database) if not self._pg and database not in (None, ":memory:") else None
        self._writer_turn = WriterTurn(on_disk, modes=modes) if on_disk else None
        self._wal_sync = WalSync(on_disk) if on_disk else None

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _write(self, what: str, *, barrier: bool = False) -> Iterator[Connection]:
        """A write transaction; a ``barrier`` one is on disk when this returns, whatever
        ``synchronous``: on SQLite by an fsync of the WAL after the write lock is left
        (``wal_sync``), which other barriers waiting at the same time share.
        """
        if self._pg:
            with translated(what), self._engine.connect() as conn, conn.begin():
                yield conn
            return
        with self._write_lock, self._writer_turn or nullcontext(), translated(what):
            if self._writer is None:
                self._writer = self._engine.connect()
            conn = self._writer
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                # Whatever went wrong (a full disk, a broken connection), start afresh.
                self._writer = None
                conn.close()
                raise
            ticket = self._wal_sync.committed() if self._wal_sync is not None else 0
        if barrier:
            self._make_durable(what, ticket)

    def _make_durable(self, what: str, ticket: int | None = None) -> None:
        """SQLite: return once the commit of ``ticket`` (default: every commit this process
        has made) is on disk; a barrier made after its transaction (``_write``)."""
        if not self._barriers or self._wal_sync is None:
            return
        try:
            self._wal_sync.wait_durable(self._wal_sync.count if ticket is None else ticket)
        except OSError as err:
            msg = f"journal: cannot {what}: committed, but not made durable: {err}"
            raise JournalUnavailable(msg) from err

    @contextmanager
    def _savepoint(self, conn: Connection) -> Iterator[None]:
        """A savepoint in the open transaction ``conn``: an error inside undoes only what
        was written inside, and is raised. Sent as plain SQL (standard on both databases):
        ``begin_nested`` compiles its statements anew each time (55 µs against 12)."""
        conn.exec_driver_sql("SAVEPOINT edigw_part")
        try:
            yield
        except BaseException:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT edigw_part")
            conn.exec_driver_sql("RELEASE SAVEPOINT edigw_part")
            raise
        conn.exec_driver_sql("RELEASE SAVEPOINT edigw_part")

    @contextmanager
    def _write_single(
        self, what: str, *, barrier: bool = False, lazy: bool = False
    ) -> Iterator[Connection]:
        """A write made by one statement, which is atomic by itself: on PostgreSQL it runs
        in autocommit, one round trip instead of three (``BEGIN``, the statement, ``COMMIT``).

        ``lazy``: a write that is no barrier (a file received, its documents read, a claim, a
        document done), whose commit PostgreSQL does not wait to flush when the journal allows
        it, as SQLite syncs only barriers: a crash of the database server may lose it, which
        only makes the file be taken in again, or the document go again, under the same
        idempotency keys (``Journal.open``, ``synchronous``). The source leaves the inbox only
        after a barrier, whose flush covers every lazy commit before it.

        The caller writes with exactly one statement; reads before it are allowed (under READ
        COMMITTED a transaction would not make them any firmer). A caller that may need to
        write more opens ``_write``.
        """
        if not self._pg:
            with self._write(what, barrier=barrier) as conn:
                yield conn
            return
        engine = self._lazy_engine if lazy and self._lazy_engine is not None else self._engine
        with self._autocommitted(what, engine) as conn:
            yield conn

    @contextmanager
    def _autocommitted(self, what: str, engine: Engine | None = None) -> Iterator[Connection]:
        """PostgreSQL: a connection of the pool whose driver is in autocommit while it is lent.

        Set on the driver rather than as SQLAlchemy's isolation level, which SQLAlchemy would
        set and reset around every checkout: a third of a short statement's cost.
        """
        with translated(what), (engine or self._engine).connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None  # a connection just checked out
            driver.autocommit = True
            try:
                yield conn
            finally:
                try:
                    driver.autocommit = False
                except Exception:  # a broken connection never goes back to the pool as it is
                    with suppress(Exception):
                        conn.invalidate()

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        if self._pg:
            # In autocommit: under READ COMMITTED each statement of a transaction takes its
            # own snapshot anyway, so a read transaction only adds a BEGIN and a ROLLBACK, two
            # round trips, to every read.
            with self._autocommitted(what) as conn:
                yield conn
            return
        # SQLite: reads reuse idle open connections (WAL readers never block writers), one
        # short transaction per read, instead of a pool checkout and reset each time.
        with self._readers_lock:
            reading = self._idle_readers.pop() if self._idle_readers else None
        with translated(what):
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
            JournalBase._event_row(file_id, kind, now=now, document_id=document_id, detail=detail),
        )

    @staticmethod
    def _event_row(
        file_id: int,
        kind: str,
        *,
        now: datetime,
        document_id: int | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        """An ``events`` row, for a caller that inserts several in one statement."""
        return {
            "file_id": file_id,
            "document_id": document_id,
            "at": now,
            "kind": kind,
            "detail": None if detail is None else storable(detail),
        }
