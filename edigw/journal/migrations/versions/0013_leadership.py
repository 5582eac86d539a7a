"""Several nodes on one PostgreSQL journal: live nodes, flow leases, file claims.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14

``nodes`` (a heartbeat per running node), ``flow_leases`` (who leads each flow, until when,
under which epoch) and ``file_claims`` (a source file version claimed before it is touched).
See ``edigw.journal.leases``. ``export_cursors.boundary``: the fingerprints of the records
at an export's mark, kept in the journal (they were in each node's ``data_dir``), so that
another node, or a new one with an empty disk, carries on without delivering them again.

(Written beside 0012, archive objects; whoever lands last chains them.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("export_cursors", sa.Column("boundary", sa.Text(), nullable=True))
    op.create_table(
        "nodes",
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_nodes")),
    )
    op.create_table(
        "flow_leases",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flow", name=op.f("pk_flow_leases")),
    )
    op.create_table(
        "file_claims",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flow", "path", "size", "mtime", name=op.f("pk_file_claims")),
    )


def downgrade() -> None:
    op.drop_table("file_claims")
    op.drop_table("flow_leases")
    op.drop_table("nodes")
    with op.batch_alter_table("export_cursors") as batch:
        batch.drop_column("boundary")
