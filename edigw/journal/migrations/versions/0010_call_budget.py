"""The Ecolix call budget shared by the nodes of a PostgreSQL journal.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

Several ``edigw run`` on one PostgreSQL journal share one agreement with the vendor (calls
per rolling minute, per customer). ``call_budget`` holds one row per call in flight or
completed within the last period, per agreement, so that every node applies the limiter's
rule to the calls of all nodes (``edigw/journal/budget.py``). A new table: nothing to
rebuild. (0008 is another branch's revision: if it is merged after this one, the last of the
two revises the other.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_budget",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agreement", sa.String(length=300), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_budget")),
    )
    op.create_index(op.f("ix_call_budget_agreement"), "call_budget", ["agreement"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_call_budget_agreement"), table_name="call_budget")
    op.drop_table("call_budget")
