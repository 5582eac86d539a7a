"""Done files still owed to partners, so a later run writes them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-17

An export file renamed into place whose done file could not be written (a full disk, a
server refusing it) is delivered, but a partner that waits for done files never takes it.
``export_runs.done_file_owed`` says so; each later run of the flow writes the done files
still owed and clears the flag (``edigw.outbound.pending``).

A column with a default is a plain ``ALTER TABLE ... ADD COLUMN`` on both databases. The
downgrade rebuilds ``export_runs`` on SQLite, keeping 0015's ``AUTOINCREMENT``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "export_runs",
        sa.Column("done_file_owed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("export_runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("done_file_owed")
