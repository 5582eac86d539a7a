"""Partial indexes for the claim path: file heads and unfinished documents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Replaces the full (file_head, file_id, seq) index: PostgreSQL without statistics (a fresh or
just-filled table) preferred scanning the whole file over it. The partial indexes hold only
heads and unfinished documents, so they stay small and are always the obvious plan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNFINISHED = ("pending", "sent", "retry_wait")


def _heads() -> sa.ColumnElement[bool]:
    return sa.column("file_head") == sa.true()


def _unfinished() -> sa.ColumnElement[bool]:
    return sa.column("state").in_([sa.literal_column(f"'{s}'") for s in UNFINISHED])


def upgrade() -> None:
    op.drop_index("ix_documents_file_head_file_id_seq", table_name="documents")
    op.create_index(
        "ix_documents_heads",
        "documents",
        ["file_id", "seq"],
        sqlite_where=_heads(),
        postgresql_where=_heads(),
    )
    op.create_index(
        "ix_documents_unfinished",
        "documents",
        ["file_id", "seq"],
        sqlite_where=_unfinished(),
        postgresql_where=_unfinished(),
    )


def downgrade() -> None:
    op.drop_index("ix_documents_unfinished", table_name="documents")
    op.drop_index("ix_documents_heads", table_name="documents")
    op.create_index(
        "ix_documents_file_head_file_id_seq", "documents", ["file_head", "file_id", "seq"]
    )
