"""Documents skipped by a mapping rule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

A mapping's ``skip_if`` rules journal the documents they skip, in the new document state
``skipped`` (with the rule and its place as the error text), so that a cancelled or unpaid
web-shop order leaves a trace instead of nothing.

On SQLite, changing the documents' state CHECK means rebuilding the table (as 0004 did for
files); the two partial indexes of 0002 are dropped first and made again after, so that the
rebuild never depends on reflecting their conditions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DOC_STATES = ("pending", "sent", "done", "retry_wait", "failed", "skipped")
UNFINISHED = ("pending", "sent", "retry_wait")


def _state_check(states: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(s) for s in states)})"


def _heads() -> sa.ColumnElement[bool]:
    return sa.column("file_head") == sa.true()


def _unfinished() -> sa.ColumnElement[bool]:
    return sa.column("state").in_([sa.literal_column(f"'{s}'") for s in UNFINISHED])


def _rebuild(states: tuple[str, ...]) -> None:
    op.drop_index("ix_documents_unfinished", table_name="documents")
    op.drop_index("ix_documents_heads", table_name="documents")
    with op.batch_alter_table("documents") as batch:  # SQLite: rebuilt; PostgreSQL: altered
        batch.drop_constraint(op.f("ck_documents_state"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_state"), sa.text(_state_check(states)))
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


def upgrade() -> None:
    _rebuild(DOC_STATES)


def downgrade() -> None:
    op.execute(sa.text("UPDATE documents SET state = 'failed' WHERE state = 'skipped'"))
    _rebuild(tuple(s for s in DOC_STATES if s != "skipped"))
