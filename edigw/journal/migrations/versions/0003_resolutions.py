"""Resolutions (``edigw resolve``) and where a source was moved to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

An operator acknowledges a failure with ``edigw resolve F-12 --note ...``: the failure
leaves the counts of open failures, and the journal keeps who, when and why. Channel
actions keep their target (the done or error path), so that a successful replay can tidy
the copy its failure left in the error folder.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resolutions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_resolutions_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_resolutions_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resolutions")),
    )
    op.create_index(op.f("ix_resolutions_file_id_at"), "resolutions", ["file_id", "at"])
    op.create_index(op.f("ix_resolutions_document_id"), "resolutions", ["document_id"])
    with op.batch_alter_table("channel_actions") as batch:
        batch.add_column(sa.Column("target", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_actions") as batch:
        batch.drop_column("target")
    op.drop_index(op.f("ix_resolutions_document_id"), table_name="resolutions")
    op.drop_index(op.f("ix_resolutions_file_id_at"), table_name="resolutions")
    op.drop_table("resolutions")
