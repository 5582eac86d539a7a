"""Export deliveries recorded before they happen, so a node killed mid-way sends nothing twice.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-16

``export_deliveries``: one row per export file on its way to the partner, written before the
channel delivers it and deleted when the run is finished and the mark moved (one
transaction). See ``edigw.outbound.pending``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_deliveries",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("mark_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("boundary", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["export_runs.id"],
            name=op.f("fk_export_deliveries_run_id_export_runs"),
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_export_deliveries")),
    )


def downgrade() -> None:
    op.drop_table("export_deliveries")
