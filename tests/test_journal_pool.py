"""A PostgreSQL journal busy on many threads keeps its connections.

A connection beyond the pool's size is closed when it is returned, and its successor is a new
server process that fills its caches and plans its statements again: with SQLAlchemy's default
pool of 5, a 500-file run of ``benchmarks/pipeline.py`` opened 96 sessions.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from edigw.journal import Journal
from tests.support.queued import keyed_documents, received_file, sent_and_done

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
THREADS = 12
ROUNDS = 4


def test_a_journal_busy_on_twelve_threads_opens_no_connection_per_round(
    postgres_url: str,
) -> None:
    with Journal.open(postgres_url) as journal:
        file_id = received_file(journal, now=T0, ordered=False)
        keys = [f"K{n}" for n in range(THREADS * ROUNDS)]
        journal.add_documents(file_id, keyed_documents(file_id, keys), now=T0)
        opened: list[object] = []
        for engine in (journal._engine, journal._lazy_engine):
            assert engine is not None
            event.listen(engine, "connect", lambda *_a: opened.append(1))
        together = threading.Barrier(THREADS)
        failures: list[BaseException] = []

        def sender(n: int) -> None:
            try:
                for _ in range(ROUNDS):
                    together.wait(timeout=30)  # every thread on the journal at once
                    doc = journal.claim_for_sending(now=T0, node=f"n{n}", lease_seconds=60.0)
                    assert doc is not None
                    together.wait(timeout=30)
                    sent_and_done(journal, doc.id, now=T0)
            except BaseException as exc:  # reported below, from the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        done = [d for d in journal.documents_of(file_id) if d.state == "done"]
        assert len(done) == THREADS * ROUNDS

    # each thread needs one connection of each pool at most, opened once
    assert len(opened) <= 2 * THREADS, len(opened)
