"""Heads per business key: ``files.ordered`` and the unfinished documents' keys index.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

An inbound flow's documents no longer all wait for the one before them in their file: unless
the flow says ``ordered: true``, each business key of a file has its own head (its first
unfinished document), so documents of distinct keys are sent concurrently
(``edigw.journal.heads``). ``files.ordered`` records which rule a file follows, written
with the file; every file journalled before this revision keeps file order (true).
``documents.key_hash`` (a 32-bit hash of the business key: a key may be longer than a
PostgreSQL index entry may be) and ``ix_documents_unfinished_keys`` make a key's hand-over a
seek: (file, key hash, seq) of the unfinished documents.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UNFINISHED = ("pending", "sent", "retry_wait")


def _unfinished() -> sa.ColumnElement[bool]:
    return sa.column("state").in_([sa.literal_column(f"'{s}'") for s in UNFINISHED])


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a batch rebuild of a SQLite table would lose what
    # 0015 gave it (AUTOINCREMENT) and the documents' partial indexes.
    op.add_column(
        "files", sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("documents", sa.Column("key_hash", sa.Integer(), nullable=True))
    op.create_index(
        "ix_documents_unfinished_keys",
        "documents",
        ["file_id", "key_hash", "seq"],
        sqlite_where=_unfinished(),
        postgresql_where=_unfinished(),
    )


def downgrade() -> None:
    op.drop_index("ix_documents_unfinished_keys", table_name="documents")
    op.drop_column("documents", "key_hash")  # SQLite >= 3.35 drops a column in place
    op.drop_column("files", "ordered")
