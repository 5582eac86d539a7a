"""The journal's schema is built and versioned by its shipped Alembic migrations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from edigw.errors import JournalError
from edigw.journal import Journal
from edigw.journal.schema import VERSION_TABLE, metadata

TABLES = {
    "files",
    "documents",
    "events",
    "remote_files",
    "channel_actions",
    "export_runs",
    "export_cursors",
    "export_sequences",
    VERSION_TABLE,
}


def test_an_empty_database_is_migrated_to_head_on_open(journal_url: str) -> None:
    journal = Journal.open(journal_url)
    try:
        assert journal.revision() == Journal.head_revision()
    finally:
        journal.close()
    engine = create_engine(journal_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_schema_module(journal_url: str) -> None:
    Journal.open(journal_url).close()
    engine = create_engine(journal_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrating_a_journal_at_head_changes_nothing(journal_url: str) -> None:
    journal = Journal.open(journal_url)
    try:
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name="n",
            source_path="s",
            size=1,
            sha256="0" * 64,
            archive_path="a",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        journal.migrate()
        assert journal.file(file_id).original_name == "n"
    finally:
        journal.close()


def test_opening_without_create_refuses_a_journal_that_is_not_at_head(journal_url: str) -> None:
    engine = create_engine(journal_url)
    with engine.begin() as conn:  # a database that exists but was never migrated
        conn.exec_driver_sql("CREATE TABLE unrelated (id INTEGER)")
    engine.dispose()

    with pytest.raises(JournalError, match="schema revision none, this edigw needs"):
        Journal.open(journal_url, create=False)


def test_opening_a_missing_sqlite_journal_without_create_says_where(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"no journal at .*missing\.sqlite"):
        Journal.open(f"sqlite:///{tmp_path}/missing.sqlite", create=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("not a url", "not a valid SQLAlchemy URL", id="garbage"),
        pytest.param("sqlite://", "must be a file path", id="sqlite-memory"),
        pytest.param("mysql://u@h/db", "only sqlite and postgresql", id="other-backend"),
    ],
)
def test_a_bad_journal_url_is_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(JournalError, match=message):
        Journal.open(url)


def test_nodes_starting_together_migrate_once(journal_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start_node() -> None:
        barrier.wait()
        try:
            Journal.open(journal_url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start_node) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    journal = Journal.open(journal_url, create=False)
    try:
        assert journal.revision() == Journal.head_revision()
    finally:
        journal.close()


def test_a_journal_at_the_first_revision_upgrades_with_its_documents(journal_url: str) -> None:
    engine = create_engine(journal_url)
    with engine.begin() as conn:
        config = Journal._alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql(
            "INSERT INTO files (id, partner, flow, channel, original_name, source_path, size,"
            " sha256, archive_path, state, received_at, updated_at) VALUES (1, 'p', 'f', 'c',"
            " 'a.csv', 's', 1, 'h', 'a', 'parsed', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO documents (id, file_id, seq, business_key, operation, idempotency_key,"
            " state, file_head, attempts, created_at, updated_at) VALUES (1, 1, 1, 'K',"
            " 'orders.create', 'k1', 'pending', true, 0, '2026-01-01 00:00:00',"
            " '2026-01-01 00:00:00')"
        )
    engine.dispose()

    journal = Journal.open(journal_url)
    try:
        assert journal.revision() == Journal.head_revision() != "0001"
        now = datetime(2026, 1, 2, tzinfo=UTC)
        [doc] = journal.claim_due_documents(now=now, node="n", lease_seconds=60, limit=5)
        assert (doc.id, doc.business_key) == (1, "K")
    finally:
        journal.close()


def test_an_unreachable_postgresql_server_is_a_journal_error() -> None:
    with pytest.raises(JournalError, match=r"journal: cannot migrate the schema: .*127\.0\.0\.1"):
        Journal.open("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
