"""What Ecolix last accepted per upserted object, and the document state ``unchanged``.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-10

An upsert whose payload is the one Ecolix last accepted for the same object is no longer
sent: the document is journalled ``unchanged``. ``accepted_payloads`` remembers, per Ecolix
(base URL), operation and target object, the hash of that payload and the last document
taken in for the object.

(0008 is being written beside this one; whoever lands last chains the revisions.)

The documents' state CHECK changes as in 0006: on SQLite the table is rebuilt, the partial
indexes dropped first and made again after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

DOC_STATES = ("pending", "sent", "done", "retry_wait", "failed", "skipped", "unchanged")
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
    op.create_table(
        "accepted_payloads",
        sa.Column("ecolix", sa.String(length=300), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ecolix", "operation", "target", name=op.f("pk_accepted_payloads")),
    )
    op.create_index(op.f("ix_accepted_payloads_document_id"), "accepted_payloads", ["document_id"])
    op.create_index(
        op.f("ix_accepted_payloads_operation_target"),
        "accepted_payloads",
        ["operation", "target"],
    )
    _rebuild(DOC_STATES)


def downgrade() -> None:
    op.execute(sa.text("UPDATE documents SET state = 'done' WHERE state = 'unchanged'"))
    _rebuild(tuple(s for s in DOC_STATES if s != "unchanged"))
    op.drop_index(op.f("ix_accepted_payloads_operation_target"), table_name="accepted_payloads")
    op.drop_index(op.f("ix_accepted_payloads_document_id"), table_name="accepted_payloads")
    op.drop_table("accepted_payloads")
