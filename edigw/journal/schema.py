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
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
    """Life of an exchanged file: received → parsed → done | partially_failed | failed.

    ``resolved``: a file that failed before its bytes were taken in (a transfer cut midway)
    and was then taken in whole as a later file; the problem is over, the row is history.
    """

    RECEIVED = "received"
    PARSED = "parsed"
    DONE = "done"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    SUPERSEDED = "superseded"


class DocState(StrEnum):
    """Life of a document: pending → sent → done | retry_wait | failed.

    ``skipped``: a mapping rule (``skip_if``) skipped it; journalled with its reason, never sent.
    ``unchanged``: an upsert whose payload is the one Ecolix last accepted for the same
    object (``accepted_payloads``); never sent, unless replayed with ``--force``.
    """

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"


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
    FileState.SUPERSEDED,
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

# ``sqlite_autoincrement``: the ids of files, documents, events and export runs are cursors and
# cache keys of a running gateway (alerts, the owners of files); on SQLite a plain INTEGER
# PRIMARY KEY hands out ``max(id) + 1`` again once a purge deleted the newest rows (0015).

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
    # The process reading the file (``host:pid:start``), written *before* its first byte is
    # read and cleared once its documents are journalled: a ``received`` file whose reader
    # is dead was being read when that process died. Kept on a file that failed because its
    # reading killed the process, so its bytes are never read in the gateway again.
    Column("reader", String(200)),
    Column("received_at", UtcDateTime, nullable=False),
    Column("parsed_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    # Whether the file's documents go to Ecolix strictly in file order (the flow's
    # ``ordered: true``), one head for the file; otherwise one head per business key
    # (``edigw.journal.heads``). Written once, with the file: a flow edited meanwhile never
    # changes the rule for documents already journalled. Files journalled before 0015: true.
    Column("ordered", Boolean, nullable=False, server_default=true()),
    CheckConstraint(_one_of("state", FileState), name="state"),
    Index(None, "partner", "flow", "sha256"),
    Index(None, "state"),
    Index(None, "received_at"),
    sqlite_autoincrement=True,
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("business_key", Text, nullable=False),
    # A 32-bit hash of business_key (``edigw.journal.heads.key_hash``): what the keys' index
    # holds, since a key may be longer than a PostgreSQL index entry may be. NULL for
    # documents journalled before 0015 (their files are ordered: the hash is never read).
    Column("key_hash", Integer),
    Column("operation", String(100), nullable=False),
    Column("payload", Text),
    Column("idempotency_key", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    # True for the first unfinished document of its file (an ordered file) or of its business
    # key within its file, the only ones that may be claimed: keeps "order per file" (or per
    # key) an index seek instead of a scan of the file's backlog.
    Column("file_head", Boolean, nullable=False),
    # Calls actually made (they may have reached Ecolix); ``not_sent``: tries that never
    # left (connection refused, DNS, connect timeout, a pause): they back off, never count.
    Column("attempts", Integer, nullable=False),
    Column("not_sent", Integer, nullable=False, server_default="0"),
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
    # The version of the mapping that made the document (a short hash of the mapping file,
    # its lookup tables and layout): a running gateway reloads edited mappings, and a
    # document keeps what it was mapped with. NULL for documents journalled before 0011.
    Column("mapping_version", String(16)),
    CheckConstraint(_one_of("state", DocState), name="state"),
    UniqueConstraint("idempotency_key"),
    UniqueConstraint("file_id", "seq"),
    Index(None, "state", "file_id", "seq"),
    sqlite_autoincrement=True,
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


# The next document of a business key in an unordered file (its head hand-over): one seek.
Index(
    "ix_documents_unfinished_keys",
    documents.c.file_id,
    documents.c.key_hash,
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
    sqlite_autoincrement=True,
)

# The full list of a file's or a document's problems, when its error text had to be cut
# (``edigw show --all``): JSON of {total, problems: [[location, pointer, message], ...]}, the
# first ``edigw.problems.MAX_KEPT`` only, zlib-compressed when large. One row per document
# (``document_id``) or per file (``document_id`` NULL), replaced when it fails again.
problems = Table(
    "problems",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("document_id", Integer, ForeignKey("documents.id")),
    Column("total", Integer, nullable=False),
    Column("compressed", Boolean, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index(None, "file_id"),
    Index(None, "document_id"),
)

# What the validation layers of an e-invoice flow found in a file (``edigw show``): every
# finding, in order, those that blocked the file (``blocking``) and the warnings it went on
# with; at most ``edigw.problems.MAX_KEPT`` per file, each message bounded. Replaced when the
# file is validated again (a resumed intake, a replay).
validation_findings = Table(
    "validation_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("layer", String(20), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("blocking", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("location", Text),
    Index(None, "file_id", "seq"),
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
    # Where the source went (the done or error folder), so a later replay can find it.
    Column("target", Text),
    Index(None, "file_id"),
    Index(None, "ok", "at"),
)

#: An operator's acknowledgement of a failure (``edigw resolve``): who, when and why. A
#: row without a document covers the file; one with a document covers that document. A
#: failure that happens after the resolution (a replay that fails again) is open again.
resolutions = Table(
    "resolutions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id"), nullable=False),
    Column("document_id", Integer, ForeignKey("documents.id")),
    Column("resolved_by", String(200), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index(None, "file_id", "at"),
    Index(None, "document_id"),
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
    # Delivered, but its done file could not be written after it: the flow's next runs write
    # it (``edigw.outbound.pending``), so the partner, who waits for it, takes the file.
    Column("done_file_owed", Boolean, nullable=False, server_default=false()),
    CheckConstraint(_one_of("state", RunState), name="state"),
    Index(None, "partner", "flow", "id"),
    sqlite_autoincrement=True,
)

export_cursors = Table(
    "export_cursors",
    metadata,
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("high_water_mark", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The fingerprints of the records *at* the mark, already delivered (``MarkStore``), so
    # that whichever node runs the export next does not deliver them again.
    Column("boundary", Text),
    PrimaryKeyConstraint("partner", "flow"),
)

#: An export file on its way to the partner: recorded *before* the channel is asked to
#: deliver it, deleted in the transaction that finishes its run and moves the mark. A row
#: left behind means a node died between delivering and journalling; the flow's next
#: leader completes it (``edigw.outbound.pending``): it checks whether the partner has the
#: file (``sha256``, ``size``), delivers the archived bytes again if not, then moves the
#: mark to ``mark_at`` with the ``boundary`` fingerprints, so no record is sent twice.
export_deliveries = Table(
    "export_deliveries",
    metadata,
    Column("run_id", Integer, ForeignKey("export_runs.id"), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("archive_path", Text),
    Column("records", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("mark_at", UtcDateTime),
    Column("boundary", Text),
    Column("recorded_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("run_id"),
)

export_sequences = Table(
    "export_sequences",
    metadata,
    Column("partner", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("last_seq", Integer, nullable=False),
    PrimaryKeyConstraint("partner", "flow"),
)

#: What Ecolix last accepted for each object an upsert writes, so that the same payload is
#: not sent again (``edigw.journal.accepted``). One row per (Ecolix, operation, target), the
#: target being the object's path (``/customers/C042``). ``document_id`` is the last document
#: taken in for the object; ``payload_sha256`` is NULL while it is on its way (what Ecolix
#: holds is unknown until it is accepted) and after any write the row cannot vouch for.
accepted_payloads = Table(
    "accepted_payloads",
    metadata,
    Column("ecolix", String(300), nullable=False),
    Column("operation", String(100), nullable=False),
    Column("target", String(500), nullable=False),
    Column("payload_sha256", String(64)),
    Column("document_id", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("ecolix", "operation", "target"),
    Index(None, "document_id"),
    Index(None, "operation", "target"),
)

#: The Ecolix call budget shared by every node of a PostgreSQL journal
#: (``edigw/journal/budget.py``): one row per call in flight or completed within the last
#: period, per agreement (the Ecolix base URL and the token's fingerprint). Rows leave as
#: soon as they no longer count, so the table holds about N rows per agreement. Unused on
#: SQLite, where one gateway keeps its budget in memory.
call_budget = Table(
    "call_budget",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("agreement", String(300), nullable=False),
    Column("node", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    # A call that no longer counts started before the window did: its row is found by both.
    Index(None, "agreement", "started_at"),
)

#: How many rows each agreement has in ``call_budget``, kept by ``edigw_take_call_slots``
#: (journal revision 0019) under the agreement's lock, so that taking a slot reads one row
#: instead of counting the agreement's calls.
call_budget_held = Table(
    "call_budget_held",
    metadata,
    Column("agreement", String(300), primary_key=True),
    Column("held", Integer, nullable=False),
)

# The archive in the journal's database (``archive: {kind: postgresql}``): each content's
# bytes are one PostgreSQL large object; this table names it by content address. Created on
# SQLite too (one schema everywhere), where it stays empty.
archive_objects = Table(
    "archive_objects",
    metadata,
    Column("sha256", String(64), nullable=False),
    Column("oid", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("sha256"),
)

# A shared archive folder's markers (``archive: {kind: folder}``): each node wrote a file
# named ``token`` into the folder; a node starting must read every other node's marker.
archive_markers = Table(
    "archive_markers",
    metadata,
    Column("node", String(400), nullable=False),
    Column("token", String(64), nullable=False),
    Column("folder", Text, nullable=False),
    Column("written_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("node"),
)

# --- Several nodes on one PostgreSQL journal (``edigw.journal.leadership``) ---------------
# Times in these three tables are the database's clock, never a node's: nodes whose clocks
# disagree still agree on who leads. A SQLite journal has one node; the tables stay empty.

#: The nodes running on this journal: each writes its row every lease renewal. A node seen
#: within the lease time is *live*; leadership is spread over the live nodes.
nodes = Table(
    "nodes",
    metadata,
    Column("node", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("node"),
)

#: Who leads each flow (polls an inbound flow, runs an export's schedule), until when. The
#: ``epoch`` grows each time the lease changes hands (or is taken again after lapsing): it
#: fences what an earlier leader claimed (``file_claims``).
flow_leases = Table(
    "flow_leases",
    metadata,
    Column("flow", String(200), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("flow"),
)

#: A source file version (flow, path, size, mtime) claimed by the leader that takes it in,
#: under the flow's lease epoch, before anything touches it; deleted once its source is
#: disposed of. A later leader (higher epoch) takes the claim over.
file_claims = Table(
    "file_claims",
    metadata,
    Column("flow", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("flow", "path", "size", "mtime"),
)
