"""The reading marker: which process is reading a file, recorded before it is read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A file whose reading killed the gateway (a native reader aborting, the OOM killer) used to
be journalled only after it was read, so every restart read it again and died again. The
file row is now written first, with the reading process in ``reader``; a ``received`` file
whose reader is dead is recognised at the next start.

Adding a nullable column is a plain ``ALTER TABLE ... ADD COLUMN`` on both databases, after
0004's rebuild of ``files`` on SQLite (which reflects the table, so a rebuild keeps whatever
columns it has). The downgrade rebuilds ``files`` on SQLite without the column, keeping the
state CHECK and the indexes 0004 left (``tests/test_journal_migrations.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("reader", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("reader")
