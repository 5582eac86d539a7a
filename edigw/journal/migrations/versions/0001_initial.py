"""Initial journal schema: files, documents, events, SFTP memory, channel actions, exports.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_cursors",
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("high_water_mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner", "flow", name=op.f("pk_export_cursors")),
    )
    op.create_table(
        "export_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'delivered', 'failed', 'empty')",
            name=op.f("ck_export_runs_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_runs")),
    )
    op.create_index(
        op.f("ix_export_runs_partner_flow_id"),
        "export_runs",
        ["partner", "flow", "id"],
        unique=False,
    )

    op.create_table(
        "export_sequences",
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "flow", name=op.f("pk_export_sequences")),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("archive_path", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parsed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('received', 'parsed', 'done', 'partially_failed', 'failed', 'skipped_duplicate')",
            name=op.f("ck_files_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index(
        op.f("ix_files_partner_flow_sha256"), "files", ["partner", "flow", "sha256"], unique=False
    )
    op.create_index(op.f("ix_files_received_at"), "files", ["received_at"], unique=False)
    op.create_index(op.f("ix_files_state"), "files", ["state"], unique=False)

    op.create_table(
        "channel_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_channel_actions_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_actions")),
    )
    op.create_index(
        op.f("ix_channel_actions_file_id"), "channel_actions", ["file_id"], unique=False
    )
    op.create_index(op.f("ix_channel_actions_ok_at"), "channel_actions", ["ok", "at"], unique=False)

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("business_key", sa.Text(), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("file_head", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ecolix_status", sa.Integer(), nullable=True),
        sa.Column("ecolix_object_id", sa.Text(), nullable=True),
        sa.Column("ecolix_response", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_location", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'done', 'retry_wait', 'failed')",
            name=op.f("ck_documents_state"),
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_documents_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("file_id", "seq", name=op.f("uq_documents_file_id_seq")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_documents_idempotency_key")),
    )
    op.create_index(
        op.f("ix_documents_file_head_file_id_seq"),
        "documents",
        ["file_head", "file_id", "seq"],
        unique=False,
    )
    op.create_index(
        op.f("ix_documents_state_file_id_seq"),
        "documents",
        ["state", "file_id", "seq"],
        unique=False,
    )

    op.create_table(
        "remote_files",
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_remote_files_file_id_files")
        ),
        sa.PrimaryKeyConstraint("channel", "path", name=op.f("pk_remote_files")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_events_document_id_documents")
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_events_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_document_id"), "events", ["document_id"], unique=False)
    op.create_index(op.f("ix_events_file_id_id"), "events", ["file_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_file_id_id"), table_name="events")
    op.drop_index(op.f("ix_events_document_id"), table_name="events")

    op.drop_table("events")
    op.drop_table("remote_files")
    op.drop_index(op.f("ix_documents_state_file_id_seq"), table_name="documents")
    op.drop_index(op.f("ix_documents_file_head_file_id_seq"), table_name="documents")

    op.drop_table("documents")
    op.drop_index(op.f("ix_channel_actions_ok_at"), table_name="channel_actions")
    op.drop_index(op.f("ix_channel_actions_file_id"), table_name="channel_actions")

    op.drop_table("channel_actions")
    op.drop_index(op.f("ix_files_state"), table_name="files")
    op.drop_index(op.f("ix_files_received_at"), table_name="files")
    op.drop_index(op.f("ix_files_partner_flow_sha256"), table_name="files")

    op.drop_table("files")
    op.drop_table("export_sequences")
    op.drop_index(op.f("ix_export_runs_partner_flow_id"), table_name="export_runs")

    op.drop_table("export_runs")
    op.drop_table("export_cursors")
