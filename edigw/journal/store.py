"""The exchange journal: every file, document, attempt and export run, durably.

One :class:`Journal` per process, shared by its threads. It speaks SQLAlchemy Core to SQLite
(the default, one node) or PostgreSQL (several nodes); the SQL is the same on both except
where claiming work must be atomic across nodes:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, so writers queue on the
  database lock (``busy_timeout``) instead of failing on a lock upgrade; WAL lets readers run
  beside them. Durability: see :meth:`Journal.open` (``synchronous``).
* PostgreSQL: claims use ``SELECT ... FOR UPDATE SKIP LOCKED`` so nodes never wait on, nor
  take, each other's documents.

Conventions: the store never reads the clock (every timestamp is a ``now`` argument, aware
UTC); ids are ints (operators see them as ``F-12``, ``D-40``, ``R-3``); rows come back as
frozen dataclasses; every SQLAlchemy error leaves this module as a :class:`JournalError`.
Every state change writes an event, so ``edigw show`` can tell the whole story.

``Journal`` is assembled here from one part per thing it keeps, each in its own module:
``files`` (files received), ``documents`` (documents and events), ``heads`` (each file's
next document), ``claims`` (leases on documents to send), ``sending`` (outcomes of calls),
``failures`` (resolutions, findings, problem lists), ``status`` (counts, gauges, alerts),
``remote`` (remote files, channel actions), ``exports``, ``nodes`` (leadership and file
claims) and ``retention``.
They share ``connection.JournalBase`` (transactions); what differs between SQLite and
PostgreSQL is in ``dialect``; rows and errors are in ``rows`` and ``errors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, exc, inspect, text
from sqlalchemy.engine import make_url

from edigw.errors import JournalError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders, open_private
from edigw.journal.conditions import FAILED_FILE_STATES
from edigw.journal.dialect import SQLITE_BUSY_TIMEOUT, postgres_engine, sqlite_engine, translated
from edigw.journal.errors import (
    DuplicateKeyError,
    JournalRefused,
    JournalUnavailable,
    JournalValueError,
    LeaseLostError,
    StateError,
    UnknownIdError,
)
from edigw.journal.exports import ExportsMixin
from edigw.journal.files import FilesMixin
from edigw.journal.nodes import NodesMixin
from edigw.journal.remote import SEEN_BATCH, RemoteMixin
from edigw.journal.retention import RetentionMixin
from edigw.journal.rows import (
    ChannelActionRow,
    DocumentCounts,
    DocumentRow,
    EventRow,
    ExportRunRow,
    FileListing,
    FileRow,
    JournalGauges,
    NewDocument,
    PurgeCounts,
    RecentError,
    ResolutionRow,
    StatusRow,
)
from edigw.journal.schema import VERSION_TABLE
from edigw.journal.sending import SendingMixin
from edigw.journal.status import LAST_ERRORS, StatusMixin

if TYPE_CHECKING:
    from alembic.config import Config

#: Key of the PostgreSQL advisory lock that serialises concurrent migrations of one database.
MIGRATION_LOCK_KEY = 0x6564_6967_7700  # "edigw"
MIGRATIONS = "edigw.journal:migrations"
#: The newest revision in ``migrations/versions`` (a test checks it against Alembic's view).
#: Known without Alembic, so that opening a journal already at head never imports it.
HEAD_REVISION = "0019"

Synchronous = Literal["full", "normal"]
#: The former name of :data:`Synchronous`, when it was SQLite's alone.
SqliteSync = Synchronous


__all__ = [
    "FAILED_FILE_STATES",
    "LAST_ERRORS",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "SEEN_BATCH",
    "SQLITE_BUSY_TIMEOUT",
    "ChannelActionRow",
    "DocumentCounts",
    "DocumentRow",
    "DuplicateKeyError",
    "EventRow",
    "ExportRunRow",
    "FileListing",
    "FileRow",
    "Journal",
    "JournalGauges",
    "JournalRefused",
    "JournalUnavailable",
    "JournalValueError",
    "LeaseLostError",
    "NewDocument",
    "PurgeCounts",
    "RecentError",
    "ResolutionRow",
    "SqliteSync",
    "StateError",
    "StatusRow",
    "Synchronous",
    "UnknownIdError",
]


def current_revision(conn: Connection) -> str | None:
    """The revision in the journal's version table, read as Alembic keeps it (one row);
    ``None`` for an empty database."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    value = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if value is None else str(value)


class Journal(
    FilesMixin, SendingMixin, StatusMixin, RemoteMixin, ExportsMixin, NodesMixin, RetentionMixin
):
    """The exchange journal over one database (SQLite file or PostgreSQL).

    Each part lives in its own module (``files``, ``documents``, ``sending``, ``exports``,
    ``nodes``, ``retention``...); this class opens, migrates and closes the database.
    """

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = True,
        synchronous: Synchronous = "normal",
        modes: FileModes = DEFAULT_MODES,
    ) -> Journal:
        """Open the journal at ``url``; with ``create``, create or migrate it to the latest schema.

        Without ``create`` the database must exist and already be at the latest revision, so a
        read-only command never changes a journal that a newer or older edigw is running on.

        A SQLite journal created here gets ``modes`` (0600 by default, its folder 0700 when
        created too); SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.

        ``synchronous``, which commits wait for the disk:

        * ``normal`` (default): every commit survives any crash of edigw, and *barrier*
          commits are flushed to the disk before they return: those after which a source may
          be moved or deleted (a file's final state, channel actions, the SFTP memory) or a
          partner may receive a file (export runs, cursors, sequence numbers). A power cut (or,
          on PostgreSQL, a crash of the database server) can only lose the per-document
          commits since the last barrier, which merely makes the gateway send those documents
          again under the same idempotency keys: Ecolix answers with the stored result and
          creates nothing.

          - SQLite: WAL with ``synchronous=NORMAL``; a barrier commits, leaves the write lock,
            then waits for an fsync of the WAL, which barriers waiting together share
            (``wal_sync``).
          - PostgreSQL: the writes that are no barrier on the hot path (a file received, the
            documents of a file read whole, a document's claim and its end) commit with
            ``synchronous_commit = off`` (their own pool, ``dialect.lazy_commit_engine``);
            every other write waits for its commit, and so flushes those before it.
        * ``full``: every commit is flushed (on SQLite about twice the write cost, see
          ``benchmarks/journal.py``).
        """
        if synchronous not in ("full", "normal"):
            msg = f"synchronous must be 'full' or 'normal', not {synchronous!r}"
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
                    make_folders(path.parent, modes)
                except OSError as err:
                    msg = f"cannot create the journal's folder {path.parent}: {err}"
                    raise JournalError(msg) from err
                try:
                    os.close(open_private(path, modes, exclusive=True))
                except FileExistsError:
                    pass
                except OSError as err:
                    msg = f"cannot create the journal {path}: {err.strerror or err}"
                    raise JournalError(msg) from err
            elif not path.is_file():
                msg = f"no journal at {path} (run `edigw run` or `edigw process` once to create it)"
                raise JournalError(msg)
            engine = sqlite_engine(url, synchronous=synchronous.upper())
        elif backend == "postgresql":
            engine = postgres_engine(url)
        else:
            msg = f"journal URL {url!r}: only sqlite and postgresql journals are supported"
            raise JournalError(msg)
        journal = cls(
            engine,
            url=url,
            barriers=backend == "sqlite" and synchronous == "normal",
            lazy_commits=backend == "postgresql" and synchronous == "normal",
            modes=modes,
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

    def lock_for_gateway(self) -> None:
        """Make sure this is the only gateway on a SQLite journal (until :meth:`close`);
        ``JournalError`` names the journal and the running gateway's pid otherwise.
        PostgreSQL journals are shared by several nodes: nothing to lock."""
        if self._gateway_lock is not None:
            self._gateway_lock.acquire()

    def close(self) -> None:
        if self._gateway_lock is not None:
            self._gateway_lock.release()
        with self._write_lock:
            if self._writer_turn is not None:
                self._writer_turn.close()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if self._wal_sync is not None:
            self._wal_sync.close()
        with self._readers_lock:
            for conn in self._idle_readers:
                conn.close()
            self._idle_readers.clear()
        self._engine.dispose()
        if self._lazy_engine is not None:
            self._lazy_engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- schema

    @staticmethod
    def _alembic_config() -> Config:
        from alembic.config import Config  # Alembic and Mako (10 MB): only to migrate

        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        return config

    @classmethod
    def head_revision(cls) -> str:
        """The schema revision this version of edigw needs."""
        return HEAD_REVISION

    @classmethod
    def known_revisions(cls) -> frozenset[str]:
        """Every schema revision this version of edigw ships a migration for."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(cls._alembic_config())
        return frozenset(s.revision for s in script.walk_revisions())

    def revision(self) -> str | None:
        """The schema revision of the database (``None`` when it is empty)."""
        with translated("read the schema version"), self._reader.connect() as conn:
            return current_revision(conn)

    def migrate(self) -> None:
        """Upgrade the database to the latest schema (no-op when it is there already).

        Why Alembic: it is the SQLAlchemy project's own migration tool, keeps a version table
        (``schema_version``) and runs the same revision scripts on SQLite and PostgreSQL; the
        scripts ship inside the package and run on the journal's own connection, so there is
        no ``alembic.ini`` to install. The whole upgrade is one transaction (both backends
        have transactional DDL), serialised across nodes by ``BEGIN IMMEDIATE`` on SQLite and
        an advisory lock on PostgreSQL: nodes starting together migrate once.
        """
        with translated("migrate the schema"), self._reader.connect() as conn:
            if current_revision(conn) == HEAD_REVISION:  # the usual start: nothing to do
                return
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        config = self._alembic_config()
        with translated("migrate the schema"), self._engine.connect() as conn:
            # SQLite: a migration may rebuild a table that others refer to (its way to change
            # a constraint), which needs foreign keys off around the transaction; they are
            # checked before it commits.
            driver = None if self._pg else conn.connection.dbapi_connection
            if driver is not None:
                driver.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    if self._pg:
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                        )
                    context = MigrationContext.configure(
                        conn, opts={"version_table": VERSION_TABLE}
                    )
                    before = context.get_current_revision()
                    self._refuse_newer(before)
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                    if driver is not None and before != self.head_revision():
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                        if broken is not None:
                            msg = f"journal: the schema upgrade broke a reference: {tuple(broken)}"
                            raise JournalError(msg)
            finally:
                if driver is not None:
                    driver.execute("PRAGMA foreign_keys = ON")

    def _refuse_newer(self, current: str | None) -> None:
        """Refuse a journal at a revision this edigw does not know: a newer edigw migrated
        it, and this one can neither use its schema nor migrate it back."""
        if current not in (None, HEAD_REVISION) and current not in self.known_revisions():
            msg = (
                f"the journal at {self._where()} was migrated by a newer edigw "
                f"(revision {current}); upgrade edigw"
            )
            raise JournalError(msg)

    def _where(self) -> str:
        """The journal for people: its file, or its URL without the password."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            return str(parsed.database)
        return parsed.render_as_string(hide_password=True)

    def _check_revision(self) -> None:
        current, head = self.revision(), self.head_revision()
        self._refuse_newer(current)
        if current != head:
            msg = (
                f"the journal at {self._where()} is at schema revision {current or 'none'}, "
                f"this edigw needs {head}: start `edigw run` once to migrate it"
            )
            raise JournalError(msg)
