"""The version of the mapping that made each document.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A running gateway reloads a mapping when its file, lookup tables or layout change. Each
document records the version it was mapped with (a short hash of those files), so that
``edigw show`` tells which edit made a payload. Documents journalled before have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:  # SQLite: a plain ADD COLUMN
        batch.add_column(sa.Column("mapping_version", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("mapping_version")
