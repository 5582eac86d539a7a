"""The journal's tables, defined once, in SQLAlchemy Core.

This module is the single description of the *current* schema; the Alembic migrations in
``edigw/journal/migrations/versions/`` are the frozen history that builds it, and a test
(``tests/test_journal_migrations.py``) proves that upgrading an empty database to head yields
exactly these tables on SQLite and PostgreSQL.

Portable on purpose: only types both backends share (JSON is kept as text so that what was
sent is stored byte for byte), named constraints (so that migrations can address them), and
timestamps through :class:`UtcDateTime`, which refuses naive datetimes and always hands back
timezone-aware UTC ones, whatever the backend stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Alembic's version table, named for what it means to an operator.
VERSION_TABLE = "schema_version"


class FileState(StrEnum):
    """Life of an exchanged file: received → parsed → done | partially_failed | failed."""

    RECEIVED = "received"
    PARSED = "parsed"
    DONE = "done"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    SKIPPED_DUPLICATE = "skipped_duplicate"


class DocState(StrEnum):
    """Life of a document: pending → sent → done | retry_wait | failed."""

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"


class RunState(StrEnum):
    """Life of an export run: running → delivered | failed | empty."""

    RUNNING = "running"
    DELIVERED = "delivered"
    FAILED = "failed"
    EMPTY = "empty"


#: Document states that still need work; a document in one of them holds back the later
#: documents of its file (order per file). Order matters: it is written into an index.
UNFINISHED_DOC_STATES = (DocState.PENDING, DocState.SENT, DocState.RETRY_WAIT)
FINAL_FILE_STATES = (
    FileState.DONE,
    FileState.PARTIALLY_FAILED,
    FileState.FAILED,
    FileState.SKIPPED_DUPLICATE,
)


def _one_of(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(m)) for m in enum)})"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as timezone-aware UTC.

    SQLite has no time zones: values are stored as naive UTC text in SQLAlchemy's fixed-width
    format, so comparisons in SQL stay correct. PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            msg = f"the journal only stores timezone-aware datetimes, got naive {value!r}"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - driver contract
            msg = f"unexpected timestamp {value!r} from the journal"
            raise TypeError(msg)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("channel", String(200), nullable=False),
    Column("original_name", Text, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("archive_path", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("error", Text),
    Column("received_at", UtcDateTime, nullable=False),
    Column("parsed_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(_one_of("state", FileState), name="state"),
    Index(None, "partner", "flow", "sha256"),
    Index(None, "state"),
    Index(None, "received_at"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("business_key", Text, nullable=False),
    Column("operation", String(100), nullable=False),
    Column("payload", Text),
    Column("idempotency_key", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    # True for the first unfinished document of its file, the only one that may be claimed:
    # keeps "order per file" an index seek instead of a scan of the file's backlog.
    Column("file_head", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("claimed_by", String(200)),
    Column("claimed_until", UtcDateTime),
    Column("ecolix_status", Integer),
    Column("ecolix_object_id", Text),
    Column("ecolix_response", Text),
    Column("error", Text),
    Column("error_location", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(_one_of("state", DocState), name="state"),
    UniqueConstraint("idempotency_key"),
    UniqueConstraint("file_id", "seq"),
    Index(None, "state", "file_id", "seq"),
)


def unfinished_condition() -> ColumnElement[bool]:
    """``state IN ('pending', 'sent', 'retry_wait')`` with literal states.

    Written identically in the partial index below and in the queries that must use it: both
    SQLite and PostgreSQL only use a partial index when the query repeats its condition.
    """
    return documents.c.state.in_(
        [literal_column(f"'{state}'", String()) for state in UNFINISHED_DOC_STATES]
    )


def head_condition() -> ColumnElement[bool]:
    """``file_head = true``, the condition of the heads' partial index."""
    return documents.c.file_head == true()


# Partial indexes hold only the rows the hot path looks for, so claims and head hand-overs
# stay index seeks however many finished documents the journal keeps, and the planner picks
# them even before the tables have statistics.
Index(
    "ix_documents_heads",
    documents.c.file_id,
    documents.c.seq,
    sqlite_where=head_condition(),
    postgresql_where=head_condition(),
)
Index(
    "ix_documents_unfinished",
    documents.c.file_id,
    documents.c.seq,
    sqlite_where=unfinished_condition(),
    postgresql_where=unfinished_condition(),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("document_id", Integer, ForeignKey("documents.id")),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text),
    Index(None, "file_id", "id"),
    Index(None, "document_id"),
)

remote_files = Table(
    "remote_files",
    metadata,
    Column("channel", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("file_id", Integer, ForeignKey("files.id")),
    Column("seen_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("channel", "path"),
)

channel_actions = Table(
    "channel_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id")),
    Column("action", String(40), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("at", UtcDateTime, nullable=False),
    Index(None, "file_id"),
    Index(None, "ok", "at"),
)

export_runs = Table(
    "export_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("window_from", UtcDateTime),
    Column("window_to", UtcDateTime),
    Column("records", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("file_name", Text),
    Column("sha256", String(64)),
    Column("archive_path", Text),
    Column("state", String(20), nullable=False),
    Column("error", Text),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    CheckConstraint(_one_of("state", RunState), name="state"),
    Index(None, "partner", "flow", "id"),
)

export_cursors = Table(
    "export_cursors",
    metadata,
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("high_water_mark", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("partner", "flow"),
)

export_sequences = Table(
    "export_sequences",
    metadata,
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("last_seq", Integer, nullable=False),
    PrimaryKeyConstraint("partner", "flow"),
)
