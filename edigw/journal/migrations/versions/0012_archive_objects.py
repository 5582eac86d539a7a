"""The archive every node can read: large objects and shared-folder markers.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10

``archive_objects`` maps a content address (sha256) to the PostgreSQL large object holding
the bytes, for ``archive: {kind: postgresql}``. ``archive_markers`` keeps, per node, the
token of the marker file it wrote into a shared archive folder (``archive: {kind:
folder}``), so that a node starting can check it sees the same folder. New tables: nothing
to rebuild.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_objects",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("oid", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_archive_objects")),
    )
    op.create_table(
        "archive_markers",
        sa.Column("node", sa.String(length=400), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_archive_markers")),
    )


def downgrade() -> None:
    op.drop_table("archive_markers")
    op.drop_table("archive_objects")
