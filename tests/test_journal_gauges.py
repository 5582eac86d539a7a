"""What metrics read from the journal: counts per flow and state, the oldest waiting document."""

from __future__ import annotations

from datetime import timedelta

from edigw.journal import Journal
from tests.test_journal_store import T0, add_file, doc


def test_gauges_count_files_and_documents_per_flow_and_state(journal: Journal) -> None:
    orders = add_file(journal)
    a, b, _pending = journal.add_documents(
        orders, [doc(1, orders), doc(2, orders), doc(3, orders)], now=T0
    )
    journal.mark_done(a, now=T0, status=201, object_id="X", response=None)
    journal.mark_retry(b, now=T0, next_attempt_at=T0 + timedelta(minutes=5), reason="503")
    broken = add_file(journal, flow="customers")
    journal.set_file_state(broken, "failed", now=T0, error="c.csv: empty file")

    gauges = journal.gauges()

    assert dict(gauges.files) == {
        ("webshop", "orders", "parsed"): 1,
        ("webshop", "customers", "failed"): 1,
    }
    assert dict(gauges.documents) == {
        ("webshop", "orders", "done"): 1,
        ("webshop", "orders", "retry_wait"): 1,
        ("webshop", "orders", "pending"): 1,
    }


def test_the_oldest_waiting_document_is_the_oldest_not_finished(journal: Journal) -> None:
    first = add_file(journal)
    (done,) = journal.add_documents(first, [doc(1, first)], now=T0)
    journal.mark_done(done, now=T0, status=201, object_id="X", response=None)
    later = add_file(journal, now=T0 + timedelta(minutes=1))
    journal.add_documents(later, [doc(1, later)], now=T0 + timedelta(minutes=1))

    gauges = journal.gauges()

    assert dict(gauges.oldest_waiting) == {("webshop", "orders"): T0 + timedelta(minutes=1)}


def test_a_flow_with_nothing_waiting_has_no_oldest(journal: Journal) -> None:
    orders = add_file(journal)
    (done,) = journal.add_documents(orders, [doc(1, orders)], now=T0)
    journal.mark_done(done, now=T0, status=201, object_id="X", response=None)

    assert dict(journal.gauges().oldest_waiting) == {}


def test_ping_reads_the_journal(journal: Journal) -> None:
    journal.ping()
