"""Bounded errors, calls never sent, resolved transfers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

- ``problems``: the full list of a file's or document's problems when its error text was cut
  (``edigw show --all``);
- ``documents.not_sent``: tries that never reached Ecolix, counted apart from attempts;
- file state ``superseded``: a transfer cut midway whose file was then taken in whole;
- error texts already stored beyond 4 KB (a document with 200,000 bad lines made 13 MB) are
  cut to 2 KB, saying so: what was cut cannot be listed again, the file can be replayed.

On SQLite, changing the files' state CHECK means rebuilding the table (SQLite's documented
twelve-step way, which ``Journal.migrate`` prepares by turning foreign keys off around the
transaction and checking them before it commits).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FILE_STATES = (
    "received",
    "parsed",
    "done",
    "partially_failed",
    "failed",
    "skipped_duplicate",
    "superseded",
)
#: Texts longer than this are cut when upgrading; what stays is this many characters.
CUT_FROM = 4096
KEEP = 2000
CUT_COLUMNS = (
    ("files", "error"),
    ("documents", "error"),
    ("events", "detail"),
    ("channel_actions", "error"),
    ("export_runs", "error"),
)


def _state_check() -> str:
    return f"state IN ({', '.join(repr(s) for s in FILE_STATES)})"


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_problems_document_id_documents")
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_problems_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    op.create_index(op.f("ix_problems_file_id"), "problems", ["file_id"], unique=False)
    op.create_index(op.f("ix_problems_document_id"), "problems", ["document_id"], unique=False)
    with op.batch_alter_table("documents") as batch:
        batch.add_column(
            sa.Column("not_sent", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("files") as batch:  # SQLite: rebuilt; PostgreSQL: altered
        batch.drop_constraint(op.f("ck_files_state"), type_="check")
        batch.create_check_constraint(op.f("ck_files_state"), sa.text(_state_check()))
    for table, column in CUT_COLUMNS:
        op.execute(
            sa.text(
                f"UPDATE {table} SET {column} = substr({column}, 1, {KEEP}) || "
                f"'… (cut to {KEEP} characters when the journal was upgraded)' "
                f"WHERE length({column}) > {CUT_FROM}"
            )
        )
