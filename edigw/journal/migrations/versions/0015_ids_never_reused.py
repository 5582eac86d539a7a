"""Ids that are never handed out twice on SQLite, so a purge cannot make one mean another row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-17

A SQLite ``INTEGER PRIMARY KEY`` without ``AUTOINCREMENT`` gives the next row ``max(id) + 1``:
once ``edigw purge`` deleted the newest rows, their ids came back. A running gateway keeps
ids as cursors and cache keys (alerts watch events above the last one they saw and remember
the documents they told about; the journal remembers each file's partner and flow by id), so
a reused id could hide a failure from the alerts or file a document under another flow.

On SQLite, ``files``, ``documents``, ``events`` and ``export_runs`` (whose ``R-`` references
operators and pending deliveries use) are rebuilt with ``AUTOINCREMENT``: SQLite then keeps
the highest id ever handed out in ``sqlite_sequence`` and never goes below it. The rebuild
copies the rows, ids included, so the sequence starts at the highest id each table holds (the
ids a purge took before this upgrade cannot be known any more). The documents' two partial
indexes are dropped first and made again after, as 0006 does. PostgreSQL's sequences never
go back: nothing to do there. The downgrade rebuilds the tables without ``AUTOINCREMENT``
(SQLite drops their ``sqlite_sequence`` rows with them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: The tables whose ids are cursors or cache keys, in the order they are rebuilt.
TABLES = ("files", "documents", "events", "export_runs")
UNFINISHED = ("pending", "sent", "retry_wait")


def _heads() -> sa.ColumnElement[bool]:
    return sa.column("file_head") == sa.true()


def _unfinished() -> sa.ColumnElement[bool]:
    return sa.column("state").in_([sa.literal_column(f"'{s}'") for s in UNFINISHED])


def _rebuild(*, autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.drop_index("ix_documents_unfinished", table_name="documents")
    op.drop_index("ix_documents_heads", table_name="documents")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    op.create_index(
        "ix_documents_heads",
        "documents",
        ["file_id", "seq"],
        sqlite_where=_heads(),
    )
    op.create_index(
        "ix_documents_unfinished",
        "documents",
        ["file_id", "seq"],
        sqlite_where=_unfinished(),
    )


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
