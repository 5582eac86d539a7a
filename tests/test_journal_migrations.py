"""The journal's schema is built and versioned by its shipped Alembic migrations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from edigw.errors import JournalError
from edigw.journal import Journal
from edigw.journal.schema import VERSION_TABLE, metadata
from edigw.journal.store import HEAD_REVISION

TABLES = {
    "files",
    "accepted_payloads",
    "documents",
    "events",
    "remote_files",
    "channel_actions",
    "resolutions",
    "export_runs",
    "export_cursors",
    "export_sequences",
    "export_deliveries",
    "problems",
    "validation_findings",
    "nodes",
    "flow_leases",
    "file_claims",
    "call_budget",
    "call_budget_held",
    "archive_objects",
    "archive_markers",
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


def stamp(journal_url: str, revision: str) -> None:
    """Set the journal's schema revision, as another edigw's migration would have."""
    engine = create_engine(journal_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = :v"), {"v": revision})
    engine.dispose()


@pytest.mark.parametrize("create", [True, False], ids=["migrating", "read-only"])
def test_a_journal_migrated_by_a_newer_edigw_is_refused_and_left_as_it_is(
    journal_url: str, create: bool
) -> None:
    Journal.open(journal_url).close()
    stamp(journal_url, "0099")

    with pytest.raises(JournalError) as refused:
        Journal.open(journal_url, create=create)

    assert str(refused.value).startswith("the journal at ")
    assert str(refused.value).endswith(
        " was migrated by a newer edigw (revision 0099); upgrade edigw"
    )
    engine = create_engine(journal_url)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert current.get_current_revision() == "0099"
    engine.dispose()


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


def _upgrade_to(url: str, revision: str, *statements: str) -> None:
    """Bring an empty database to ``revision`` with the shipped migrations, then run
    ``statements`` on it (rows an older edigw wrote)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = Journal._alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _downgrade_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = Journal._alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def _file_columns(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return [c["name"] for c in inspect(engine).get_columns("files")]
    finally:
        engine.dispose()


def _add_reading(journal: Journal, name: str) -> int:
    return journal.add_file(
        partner="p",
        flow="f",
        channel="c",
        original_name=name,
        source_path=name,
        size=1,
        sha256="1" * 64,
        archive_path="a",
        now=datetime(2026, 1, 2, tzinfo=UTC),
        reader="host:12:345",
    )


def _assert_state_check_of_0004(journal: Journal, file_id: int) -> None:
    """The files' state CHECK is 0004's: ``superseded`` allowed, anything else refused."""
    now = datetime(2026, 1, 3, tzinfo=UTC)
    journal.set_file_state(file_id, "superseded", now=now)
    assert journal.file(file_id).state == "superseded"
    engine = create_engine(journal.url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE files SET state = 'lost' WHERE id = {file_id}")
    finally:
        engine.dispose()


OLD_FAILED_FILE = (
    "INSERT INTO files (partner, flow, channel, original_name, source_path, size, sha256,"
    " archive_path, state, error, received_at, updated_at) VALUES ('p', 'f', 'c', 'a.csv',"
    " 's', 1, 'h', 'a', 'failed', 'bad', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)


@pytest.mark.parametrize("old", ["0002", "0003"], ids=["before-resolutions", "resolutions"])
def test_an_older_journal_gets_the_rebuilt_files_table_then_the_reading_marker(
    journal_url: str, old: str
) -> None:
    _upgrade_to(journal_url, old, OLD_FAILED_FILE)

    journal = Journal.open(journal_url)
    try:
        assert journal.revision() == Journal.head_revision() == "0019"
        [old_file] = journal.files_with_content(partner="p", flow="f", sha256="h")
        assert (old_file.state, old_file.error, old_file.reader) == ("failed", "bad", None)
        reading = _add_reading(journal, "b.csv")
        assert [r.id for r in journal.readings()] == [reading]
        _assert_state_check_of_0004(journal, reading)
    finally:
        journal.close()


def test_the_reading_marker_goes_and_comes_back_keeping_0004s_files_table(
    journal_url: str,
) -> None:
    journal = Journal.open(journal_url)
    try:
        kept = _add_reading(journal, "a.csv")
    finally:
        journal.close()

    _downgrade_to(journal_url, "0004")  # SQLite: files rebuilt without the column
    assert "reader" not in _file_columns(journal_url)

    journal = Journal.open(journal_url)  # upgraded to head again
    try:
        assert journal.revision() == Journal.head_revision()
        row = journal.file(kept)
        assert (row.original_name, row.state, row.reader) == ("a.csv", "received", None)
        assert journal.readings() == []
        _assert_state_check_of_0004(journal, kept)
    finally:
        journal.close()
    test_the_migrations_build_exactly_the_schema_module(journal_url)


def test_a_journal_before_skipped_documents_upgrades_keeping_its_documents_and_indexes(
    journal_url: str,
) -> None:
    engine = create_engine(journal_url)
    with engine.begin() as conn:
        config = Journal._alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.exec_driver_sql(
            "INSERT INTO files (id, partner, flow, channel, original_name, source_path, size,"
            " sha256, archive_path, state, received_at, updated_at) VALUES (1, 'p', 'f', 'c',"
            " 'a.csv', 's', 1, 'h', 'a', 'parsed', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO documents (id, file_id, seq, business_key, operation, idempotency_key,"
            " state, file_head, attempts, created_at, updated_at) VALUES (1, 1, 1, 'K',"
            " 'orders.create', 'k1', 'failed', false, 0, '2026-01-01 00:00:00',"
            " '2026-01-01 00:00:00')"
        )
    engine.dispose()

    journal = Journal.open(journal_url)
    try:
        now = datetime(2026, 1, 2, tzinfo=UTC)
        journal.mark_skipped(1, now=now, reason="skipped: cancelled on the shop")
        assert journal.document(1).state == "skipped"
        assert journal.finish_file_if_complete(1, now=now) == "done"
    finally:
        journal.close()
    engine = create_engine(journal_url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("documents")}
    finally:
        engine.dispose()
    assert {"ix_documents_heads", "ix_documents_unfinished"} <= indexes


OLD_DOCUMENT = (
    "INSERT INTO documents (file_id, seq, business_key, operation, idempotency_key, state,"
    " file_head, attempts, not_sent, created_at, updated_at) VALUES (1, 1, 'K', 'orders.create',"
    " 'key-1', 'failed', false, 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)


def test_documents_journalled_before_0011_have_no_mapping_version(journal_url: str) -> None:
    _upgrade_to(journal_url, "0010", OLD_FAILED_FILE, OLD_DOCUMENT)

    journal = Journal.open(journal_url)
    try:
        [doc] = journal.documents_of(1)
        assert (doc.business_key, doc.mapping_version) == ("K", None)
    finally:
        journal.close()
    _downgrade_to(journal_url, "0010")


def test_the_head_revision_known_without_alembic_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Journal._alembic_config())
    assert script.get_current_head() == HEAD_REVISION


def _old_file(file_id: int) -> str:
    return (
        "INSERT INTO files (id, partner, flow, channel, original_name, source_path, size, sha256,"
        f" archive_path, state, received_at, updated_at) VALUES ({file_id}, 'p', 'f', 'c',"
        f" 'f{file_id}.csv', 's', 1, 'h{file_id}', 'a', 'done', '2026-01-01 00:00:00',"
        " '2026-01-01 00:00:00')"
    )


def _old_document(doc_id: int, file_id: int) -> str:
    return (
        "INSERT INTO documents (id, file_id, seq, business_key, operation, idempotency_key,"
        " state, file_head, attempts, not_sent, created_at, updated_at) VALUES"
        f" ({doc_id}, {file_id}, 1, 'K{doc_id}', 'orders.create', 'key-{doc_id}', 'done', false,"
        " 1, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )


def _old_event(event_id: int, file_id: int) -> str:
    return (
        f"INSERT INTO events (id, file_id, at, kind) VALUES ({event_id}, {file_id},"
        " '2026-01-01 00:00:00', 'done')"
    )


def _sequences_past_explicit_ids(url: str, tables: tuple[str, ...]) -> list[str]:
    """PostgreSQL: move the tables' sequences past the ids inserted by hand, where the rows
    of an older edigw, which took their ids from the sequences, left them."""
    if not url.startswith("postgresql"):
        return []
    return [
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in tables
    ]


def test_a_journal_at_0014_keeps_its_rows_and_then_never_hands_their_ids_out_again(
    journal_url: str,
) -> None:
    _upgrade_to(
        journal_url,
        "0014",
        _old_file(3),
        _old_file(7),
        _old_document(5, 3),
        _old_document(9, 7),
        _old_event(11, 3),
        _old_event(12, 7),
        *_sequences_past_explicit_ids(journal_url, ("files", "documents", "events")),
    )

    journal = Journal.open(journal_url)
    try:
        assert [(f.id, f.original_name, f.state) for f in journal.files()] == [
            (7, "f7.csv", "done"),
            (3, "f3.csv", "done"),
        ]
        assert [(d.id, d.business_key) for d in journal.documents_of(7)] == [(9, "K9")]
        assert [(e.id, e.kind) for e in journal.events_of(3)] == [(11, "done")]
        journal.purge(file_ids=[7], run_ids=[])
        later = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name="later.csv",
            source_path="s",
            size=1,
            sha256="0" * 64,
            archive_path="a",
            now=datetime(2026, 1, 2, tzinfo=UTC),
        )
        assert later > 7
        assert min(e.id for e in journal.events_of(later)) > 12
    finally:
        journal.close()
    test_the_migrations_build_exactly_the_schema_module(journal_url)


def test_the_downgrade_from_0015_keeps_the_rows(journal_url: str) -> None:
    _upgrade_to(journal_url, "0015", _old_file(4), _old_document(6, 4), _old_event(8, 4))

    _downgrade_to(journal_url, "0014")

    engine = create_engine(journal_url)
    try:
        with engine.connect() as conn:
            kept = [
                conn.exec_driver_sql(f"SELECT id FROM {table}").scalars().all()
                for table in ("files", "documents", "events")
            ]
    finally:
        engine.dispose()
    assert kept == [[4], [6], [8]]


def test_the_downgrade_from_0016_keeps_export_runs_and_their_ids_never_reused(
    journal_url: str,
) -> None:
    journal = Journal.open(journal_url)
    try:
        now = datetime(2026, 1, 2, tzinfo=UTC)
        kept = journal.start_export_run(
            partner="p", flow="f", mode="full", window_from=None, now=now
        )
        gone = journal.start_export_run(
            partner="p", flow="f", mode="full", window_from=None, now=now
        )
    finally:
        journal.close()
    _downgrade_to(journal_url, "0015")
    engine = create_engine(journal_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM export_runs WHERE id = {gone}")
    finally:
        engine.dispose()

    journal = Journal.open(journal_url)  # upgraded to head again
    try:
        assert journal.export_run(kept).done_file_owed is False
        later = journal.start_export_run(
            partner="p", flow="f", mode="full", window_from=None, now=now
        )
        assert later > gone
    finally:
        journal.close()


#: A slot taken through 0018's function, as an edigw before 0019 took it.
TAKE_BEFORE_0019 = "SELECT slot FROM edigw_take_call_slot('A', 'n', 1, 1, {calls}, 60.0, 30.0)"


def _taken_before_0019(url: str, calls: int) -> bool:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            slot = conn.exec_driver_sql(TAKE_BEFORE_0019.format(calls=calls)).scalar_one()
    finally:
        engine.dispose()
    return slot is not None


@pytest.mark.postgres
def test_calls_taken_before_0019_count_after_it_and_after_its_downgrade(
    postgres_url: str,
) -> None:
    from edigw.journal.budget import SharedLedger

    _upgrade_to(postgres_url, "0018", *[TAKE_BEFORE_0019.format(calls=10)] * 3)
    Journal.open(postgres_url).close()  # 0019: the count is not kept yet
    ledger = SharedLedger.open(postgres_url, "A", node="n", lease=30.0)
    try:
        assert [ledger.take(4, 60.0).granted for _ in range(2)] == [True, False]
    finally:
        ledger.close()
    _downgrade_to(postgres_url, "0018")
    assert [_taken_before_0019(postgres_url, 6) for _ in range(3)] == [True, True, False]
