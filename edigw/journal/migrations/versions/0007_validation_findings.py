"""Validation findings of e-invoices.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

An e-invoice flow validates each file in layers (XSD, EN 16931, BR-FR) before mapping it.
``validation_findings`` keeps every finding of a file: those that blocked it and the
warnings it went on with (BR-FR warns by default), each with its layer, rule id, severity,
message and source location, for ``edigw show``. A new table: nothing to rebuild.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("layer", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_validation_findings_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_findings")),
    )
    op.create_index(
        op.f("ix_validation_findings_file_id_seq"),
        "validation_findings",
        ["file_id", "seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_validation_findings_file_id_seq"), table_name="validation_findings")
    op.drop_table("validation_findings")
