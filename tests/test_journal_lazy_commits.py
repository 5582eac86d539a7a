"""A PostgreSQL journal's durability policy is SQLite's: per-document commits are not waited
for, every other write is (``Journal.open``, ``synchronous``).

A file's reception, its documents read whole, a document's claim and its end go through a
pool of their own whose sessions commit with ``synchronous_commit = off``; any other write waits for its commit, which flushes the WAL up
to itself and so every lazy commit before it. ``synchronous="full"`` waits for every commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event

from edigw.journal import Journal, NewDocument
from tests.support.queued import queued_document

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def statements_on(engine: Engine) -> list[str]:
    """The statements run on ``engine`` from now on (their first line)."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.strip().splitlines()[0])

    event.listen(engine, "before_cursor_execute", record)
    return seen


def synchronous_commit(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())


def claim_and_finish(journal: Journal) -> None:
    doc = journal.claim_for_sending(now=T0, node="node-a", lease_seconds=60.0)
    assert doc is not None
    journal.mark_done(doc.id, now=T0, status=201, object_id="CMD-1", response=None)


@pytest.fixture
def lazy_journal(postgres_url: str) -> Iterator[Journal]:
    with Journal.open(postgres_url) as journal:
        yield journal


def test_a_documents_claim_and_end_commit_without_waiting_for_the_disk(
    lazy_journal: Journal,
) -> None:
    queued_document(lazy_journal, now=T0)
    lazy = lazy_journal._lazy_engine
    assert lazy is not None
    on_lazy = statements_on(lazy)

    claim_and_finish(lazy_journal)

    assert len(on_lazy) == 2  # the claim, then the document done: one statement each
    assert synchronous_commit(lazy) == "off"


def test_a_files_reception_and_its_documents_commit_without_waiting_for_the_disk(
    lazy_journal: Journal,
) -> None:
    """As a poller takes a file in: received (if new), then its documents read whole."""
    lazy = lazy_journal._lazy_engine
    assert lazy is not None
    on_lazy, on_main = statements_on(lazy), statements_on(lazy_journal._engine)

    file_id = lazy_journal.add_file_if_new(
        partner="shop",
        flow="orders",
        channel="local:inbox",
        original_name="o.csv",
        source_path="/in/o.csv",
        size=10,
        sha256="a" * 64,
        archive_path="/archive/a",
        now=T0,
        reader="reader-1",
    )
    assert file_id is not None
    document = NewDocument(
        seq=1,
        business_key="CMD-1",
        operation="orders.create",
        payload={"number": "CMD-1"},
        idempotency_key="k-1",
    )
    lazy_journal.add_documents(file_id, [document], now=T0, reader="reader-1")

    assert len(on_lazy) == 2 and on_main == []  # one statement each, neither waited for
    assert lazy_journal.file(file_id).state == "parsed"


def test_a_file_finished_before_its_source_leaves_the_inbox_waits_for_its_commit(
    lazy_journal: Journal,
) -> None:
    """The barrier after which the source is moved: its flush covers every lazy commit
    before it, so nothing taken in is lost once the source is gone."""
    queued_document(lazy_journal, now=T0)
    claim_and_finish(lazy_journal)
    [file] = lazy_journal.files(limit=10)
    lazy = lazy_journal._lazy_engine
    assert lazy is not None
    on_lazy, on_main = statements_on(lazy), statements_on(lazy_journal._engine)

    assert lazy_journal.finish_file_if_complete(file.id, now=T0) == "done"

    assert on_lazy == [] and on_main


def test_every_other_write_waits_for_its_commit(lazy_journal: Journal) -> None:
    on_main = statements_on(lazy_journal._engine)

    queued_document(lazy_journal, now=T0)

    assert any(s.startswith("INSERT INTO documents") for s in on_main)
    assert synchronous_commit(lazy_journal._engine) == "on"


def test_synchronous_full_waits_for_every_commit(postgres_url: str) -> None:
    with Journal.open(postgres_url, synchronous="full") as journal:
        queued_document(journal, now=T0)
        on_main = statements_on(journal._engine)

        claim_and_finish(journal)

        assert journal._lazy_engine is None
        assert len(on_main) >= 2
        assert synchronous_commit(journal._engine) == "on"
