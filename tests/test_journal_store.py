"""The journal records files and documents and their every transition, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from edigw.errors import JournalError
from edigw.journal import (
    DuplicateKeyError,
    Journal,
    NewDocument,
    StateError,
    UnknownIdError,
    wal_sync,
)
from edigw.model import Location
from tests.support.queued import done_claiming_next

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_hashes = count(1)


def add_file(
    journal: Journal,
    *,
    partner: str = "webshop",
    flow: str = "orders",
    sha256: str | None = None,
    now: datetime = T0,
) -> int:
    sha = sha256 or f"{next(_hashes):064x}"
    return journal.add_file(
        partner=partner,
        flow=flow,
        channel="local:inbox/webshop/orders",
        original_name="orders-0302.csv",
        source_path="/srv/inbox/webshop/orders/orders-0302.csv",
        size=1234,
        sha256=sha,
        archive_path=f"/data/archive/{sha[:2]}/{sha[2:4]}/{sha}",
        now=now,
    )


def doc(seq: int, file_id: int, **overrides: object) -> NewDocument:
    values: dict[str, object] = {
        "seq": seq,
        "business_key": f"CMD-{seq}",
        "operation": "orders.create",
        "payload": {"number": f"CMD-{seq}", "amount": "12.50", "label": "Crème brûlée"},
        "idempotency_key": f"key-{file_id}-{seq}",
    }
    values.update(overrides)
    return NewDocument(**values)  # type: ignore[arg-type]


def test_a_received_file_reads_back_with_aware_utc_timestamps(journal: Journal) -> None:
    paris = timezone(timedelta(hours=1))
    file_id = add_file(journal, now=datetime(2026, 3, 2, 10, 0, tzinfo=paris))

    row = journal.file(file_id)

    assert row.state == "received"
    assert row.original_name == "orders-0302.csv"
    assert row.size == 1234
    assert row.received_at == T0
    assert row.received_at.tzinfo is not None
    assert row.received_at.utcoffset() == timedelta(0)
    assert row.ref == f"F-{file_id}"


def test_naive_timestamps_are_refused(journal: Journal) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_file(journal, now=datetime(2026, 3, 2, 9, 0))


def test_an_unknown_file_id_is_a_journal_error_naming_it(journal: Journal) -> None:
    with pytest.raises(UnknownIdError, match="F-999 does not exist"):
        journal.file(999)


def test_documents_are_added_with_the_parsed_transition_in_file_order(journal: Journal) -> None:
    file_id = add_file(journal)

    ids = journal.add_documents(
        file_id, [doc(1, file_id), doc(2, file_id)], now=T0 + timedelta(seconds=1)
    )

    assert len(ids) == 2
    assert journal.file(file_id).state == "parsed"
    assert journal.file(file_id).parsed_at == T0 + timedelta(seconds=1)
    rows = journal.documents_of(file_id)
    assert [d.id for d in rows] == ids
    assert [d.state for d in rows] == ["pending", "pending"]
    assert rows[0].payload == {"number": "CMD-1", "amount": "12.50", "label": "Crème brûlée"}
    assert (rows[0].partner, rows[0].flow) == ("webshop", "orders")


def test_a_document_failed_at_mapping_keeps_its_reason_and_location(journal: Journal) -> None:
    file_id = add_file(journal)
    where = Location("orders-0302.csv", line=7, column=3)

    [doc_id] = journal.add_documents(
        file_id,
        [
            doc(
                1,
                file_id,
                payload=None,
                state="failed",
                error="date: not a date",
                error_location=where,
            )
        ],
        now=T0,
    )

    row = journal.document(doc_id)
    assert row.state == "failed"
    assert row.payload is None
    assert row.error == "date: not a date"
    assert row.error_location == "orders-0302.csv:7:3"


def test_an_idempotency_key_already_journalled_is_refused_and_nothing_is_written(
    journal: Journal,
) -> None:
    first = add_file(journal)
    [existing] = journal.add_documents(first, [doc(1, first, idempotency_key="K")], now=T0)
    second = add_file(journal)

    with pytest.raises(DuplicateKeyError, match=f"K \\(D-{existing}\\)") as caught:
        journal.add_documents(second, [doc(1, second), doc(2, second, idempotency_key="K")], now=T0)

    assert caught.value.keys == {"K": existing}
    assert journal.documents_of(second) == []
    assert journal.file(second).state == "received"


def test_a_refusal_of_the_journal_that_is_no_used_key_is_not_called_one(journal: Journal) -> None:
    file_id = add_file(journal)
    journal.add_document_batch(file_id, [doc(1, file_id)], now=T0)

    with pytest.raises(JournalError, match="cannot record documents") as caught:
        journal.add_document_batch(file_id, [doc(1, file_id, idempotency_key="other")], now=T0)

    assert not isinstance(caught.value, DuplicateKeyError)  # the same position, not a key
    assert [d.idempotency_key for d in journal.documents_of(file_id)] == [f"key-{file_id}-1"]


def test_an_idempotency_key_twice_in_one_file_is_refused(journal: Journal) -> None:
    file_id = add_file(journal)

    with pytest.raises(DuplicateKeyError, match="twice in this file"):
        journal.add_documents(
            file_id,
            [doc(1, file_id, idempotency_key="K"), doc(2, file_id, idempotency_key="K")],
            now=T0,
        )


def test_a_payload_that_is_not_json_is_a_journal_error(journal: Journal) -> None:
    file_id = add_file(journal)

    with pytest.raises(JournalError, match="not JSON-serialisable"):
        journal.add_documents(file_id, [doc(1, file_id, payload={"when": T0})], now=T0)


def test_find_done_file_only_matches_same_content_of_the_same_flow_that_is_done(
    journal: Journal,
) -> None:
    sha = "ab" * 32
    parsed = add_file(journal, sha256=sha)
    assert journal.find_done_file(partner="webshop", flow="orders", sha256=sha) is None
    journal.set_file_state(parsed, "done", now=T0)
    add_file(journal, flow="customers", sha256="cd" * 32)

    found = journal.find_done_file(partner="webshop", flow="orders", sha256=sha)

    assert found is not None and found.id == parsed
    assert journal.find_done_file(partner="webshop", flow="customers", sha256=sha) is None
    assert journal.find_done_file(partner="other", flow="orders", sha256=sha) is None


def test_set_file_state_stamps_the_transition_and_records_the_error(journal: Journal) -> None:
    file_id = add_file(journal)

    journal.set_file_state(
        file_id, "failed", now=T0 + timedelta(minutes=1), error="orders-0302.csv:1: empty file"
    )

    row = journal.file(file_id)
    assert row.state == "failed"
    assert row.error == "orders-0302.csv:1: empty file"
    assert row.finished_at == T0 + timedelta(minutes=1)
    assert journal.events_of(file_id)[-1].kind == "failed"


def test_an_unknown_file_state_is_refused(journal: Journal) -> None:
    file_id = add_file(journal)
    with pytest.raises(ValueError, match="lost"):
        journal.set_file_state(file_id, "lost", now=T0)


def test_files_filters_by_partner_flow_state_and_since_newest_first(journal: Journal) -> None:
    old = add_file(journal, now=T0)
    new = add_file(journal, now=T0 + timedelta(hours=1))
    other = add_file(journal, flow="customers", now=T0 + timedelta(hours=2))
    journal.set_file_state(new, "failed", now=T0, error="bad")

    assert [f.id for f in journal.files()] == [other, new, old]
    assert [f.id for f in journal.files(flow="orders")] == [new, old]
    assert [f.id for f in journal.files(state="failed")] == [new]
    assert [f.id for f in journal.files(since=T0 + timedelta(minutes=30))] == [other, new]
    assert [f.id for f in journal.files(limit=1)] == [other]


def test_a_document_goes_sent_then_done_with_the_ecolix_answer(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)

    journal.mark_sent(doc_id, now=T0)
    assert journal.document(doc_id).state == "sent"
    journal.mark_done(
        doc_id, now=T0, status=201, object_id="CMD-000123", response={"number": "CMD-000123"}
    )

    row = journal.document(doc_id)
    assert (row.state, row.attempts) == ("done", 1)
    assert (row.ecolix_status, row.ecolix_object_id) == (201, "CMD-000123")
    assert row.ecolix_response == {"number": "CMD-000123"}


def test_mark_done_twice_keeps_the_first_answer(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="A", response=None)

    journal.mark_done(doc_id, now=T0, status=200, object_id="B", response=None)

    assert journal.document(doc_id).ecolix_object_id == "A"


def test_every_attempt_counts(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)

    for attempt in range(3):
        journal.mark_sent(doc_id, now=T0)
        journal.mark_retry(
            doc_id, now=T0, next_attempt_at=T0 + timedelta(minutes=attempt + 1), reason="503"
        )

    row = journal.document(doc_id)
    assert (row.state, row.attempts, row.error) == ("retry_wait", 3, "503")
    assert row.next_attempt_at == T0 + timedelta(minutes=3)


def test_a_failed_document_keeps_reason_location_and_ecolix_answer(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_sent(doc_id, now=T0)

    journal.mark_failed(
        doc_id,
        now=T0,
        reason="422 /lines/0/article: unknown article",
        location=Location("orders-0302.csv", line=4),
        status=422,
        response={"errors": [{"pointer": "/lines/0/article"}]},
    )

    row = journal.document(doc_id)
    assert (row.state, row.ecolix_status, row.error_location) == (
        "failed",
        422,
        "orders-0302.csv:4",
    )
    assert row.ecolix_response == {"errors": [{"pointer": "/lines/0/article"}]}


def test_a_done_document_cannot_be_sent_failed_or_retried(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="A", response=None)

    with pytest.raises(StateError):
        journal.mark_sent(doc_id, now=T0)
    with pytest.raises(StateError):
        journal.mark_failed(doc_id, now=T0, reason="late")
    with pytest.raises(StateError):
        journal.mark_retry(doc_id, now=T0, next_attempt_at=T0, reason="late")


def test_replay_makes_a_failed_document_pending_with_the_new_payload_and_same_key(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id, idempotency_key="K1")], now=T0)
    journal.mark_sent(doc_id, now=T0)
    journal.mark_failed(doc_id, now=T0, reason="422", status=422)
    assert journal.finish_file_if_complete(file_id, now=T0) == "failed"

    journal.reset_for_replay(
        doc_id, payload={"number": "fixed"}, operation="orders.create", now=T0 + timedelta(days=1)
    )

    row = journal.document(doc_id)
    assert (row.state, row.attempts, row.error, row.ecolix_status) == ("pending", 0, None, None)
    assert row.payload == {"number": "fixed"}
    assert row.idempotency_key == "K1"
    assert journal.file(file_id).state == "parsed"
    assert [
        d.id
        for d in journal.claim_due_documents(
            now=T0 + timedelta(days=1), node="n", lease_seconds=60, limit=5
        )
    ] == [doc_id]


def test_replay_of_a_done_document_says_already_done(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="A", response=None)

    with pytest.raises(StateError, match="already done"):
        journal.reset_for_replay(doc_id, payload={}, operation="orders.create", now=T0)


def test_document_by_key_finds_the_original_answer(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id, idempotency_key="K9")], now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="CMD-9", response={"number": "CMD-9"})

    found = journal.document_by_key("K9")

    assert found is not None and (found.id, found.ecolix_object_id) == (doc_id, "CMD-9")
    assert journal.document_by_key("nope") is None


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        pytest.param(["done", "done"], "done", id="all-done"),
        pytest.param(["done", "failed"], "partially_failed", id="some-failed"),
        pytest.param(["failed", "failed"], "failed", id="all-failed"),
    ],
)
def test_a_file_finishes_by_its_documents_outcomes(
    journal: Journal, outcomes: list[str], expected: str
) -> None:
    file_id = add_file(journal)
    ids = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
    for doc_id, outcome in zip(ids, outcomes, strict=True):
        if outcome == "done":
            journal.mark_done(doc_id, now=T0, status=201, object_id="X", response=None)
        else:
            journal.mark_failed(doc_id, now=T0, reason="no")

    assert journal.finish_file_if_complete(file_id, now=T0 + timedelta(seconds=5)) == expected
    assert journal.file(file_id).state == expected
    assert journal.file(file_id).finished_at == T0 + timedelta(seconds=5)


def test_a_file_with_unfinished_documents_does_not_finish(journal: Journal) -> None:
    file_id = add_file(journal)
    first, _second = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
    journal.mark_done(first, now=T0, status=201, object_id="X", response=None)

    assert journal.finish_file_if_complete(file_id, now=T0) is None
    assert journal.file(file_id).state == "parsed"


def test_a_caller_sure_of_the_last_document_is_still_refused_while_one_is_unfinished(
    journal: Journal,
) -> None:
    """``last_finished`` skips only the quick look: the counts still decide (a document
    already done answers ``True`` again, whatever the others)."""
    file_id = add_file(journal)
    first, _second = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
    journal.mark_done(first, now=T0, status=201, object_id="X", response=None)
    again = journal.mark_done(first, now=T0, status=201, object_id="X", response=None)

    assert again is True
    assert journal.finish_file_if_complete(file_id, now=T0, last_finished=True) is None
    assert journal.file(file_id).state == "parsed"


def test_a_caller_sure_of_the_last_document_finishes_the_file(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    complete = journal.mark_done(
        doc_id, now=T0, status=201, object_id="X", response=None, file_id=file_id
    )

    assert complete is True
    assert journal.finish_file_if_complete(file_id, now=T0, last_finished=True) == "done"
    assert journal.finish_file_if_complete(file_id, now=T0, last_finished=True) is None


def test_only_one_caller_sees_a_file_finish(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="X", response=None)

    assert journal.finish_file_if_complete(file_id, now=T0) == "done"
    assert journal.finish_file_if_complete(file_id, now=T0) is None


def test_a_file_not_yet_parsed_does_not_finish(journal: Journal) -> None:
    file_id = add_file(journal)
    assert journal.finish_file_if_complete(file_id, now=T0) is None
    assert journal.file(file_id).state == "received"


def test_events_tell_the_whole_story_in_order(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_sent(doc_id, now=T0)
    journal.mark_retry(
        doc_id, now=T0, next_attempt_at=T0 + timedelta(minutes=1), reason="503 Service Unavailable"
    )
    journal.mark_sent(doc_id, now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id="CMD-1", response=None)
    journal.finish_file_if_complete(file_id, now=T0)
    journal.record_channel_action(file_id, action="move to done", ok=True, error=None, now=T0)

    story = [(e.kind, e.document_id) for e in journal.events_of(file_id)]

    assert story == [
        ("received", None),
        ("pending", doc_id),
        ("parsed", None),
        ("sent", doc_id),
        ("retry_wait", doc_id),
        ("sent", doc_id),
        ("done", doc_id),
        ("done", None),
        ("channel", None),
    ]
    retry = journal.events_of_document(doc_id)[2]
    assert retry.detail is not None and "503 Service Unavailable" in retry.detail


def test_status_counts_per_partner_flow_with_waiting_and_last_errors(journal: Journal) -> None:
    orders = add_file(journal)
    a, b, c = journal.add_documents(
        orders, [doc(1, orders), doc(2, orders), doc(3, orders)], now=T0
    )
    journal.mark_done(a, now=T0, status=201, object_id="X", response=None)
    journal.mark_failed(
        b, now=T0 + timedelta(seconds=1), reason="422 unknown article", location="o.csv:3"
    )
    journal.mark_retry(c, now=T0, next_attempt_at=T0 + timedelta(minutes=5), reason="503")
    broken = add_file(journal, flow="customers")
    journal.set_file_state(
        broken, "failed", now=T0 + timedelta(seconds=2), error="c.csv: empty file"
    )
    journal.record_channel_action(
        broken,
        action="move to error",
        ok=False,
        error="permission denied",
        now=T0 + timedelta(seconds=3),
    )

    rows = {(r.partner, r.flow): r for r in journal.status_counts()}

    assert set(rows) == {("webshop", "customers"), ("webshop", "orders")}
    order_status = rows["webshop", "orders"]
    assert dict(order_status.files) == {"parsed": 1}
    assert dict(order_status.documents) == {"done": 1, "failed": 1, "retry_wait": 1}
    assert (order_status.files_waiting, order_status.documents_waiting) == (1, 1)
    assert order_status.next_retry_at == T0 + timedelta(minutes=5)
    assert [(e.ref, e.message, e.location) for e in order_status.last_errors] == [
        (f"D-{b}", "422 unknown article", "o.csv:3")
    ]
    customer_status = rows["webshop", "customers"]
    assert [(e.ref, e.message) for e in customer_status.last_errors] == [
        (f"F-{broken}", "move to error failed: permission denied"),
        (f"F-{broken}", "c.csv: empty file"),
    ]


def test_status_counts_the_calls_made_per_finished_document(journal: Journal) -> None:
    file_id = add_file(journal)
    retried, once, refused, waiting = journal.add_documents(
        file_id, [doc(n, file_id) for n in (1, 2, 3, 4)], now=T0
    )
    for doc_id in (retried, retried, retried, once, waiting):
        journal.mark_sent(doc_id, now=T0)  # one call each time
    journal.mark_done(retried, now=T0, status=201, object_id="A", response=None)
    journal.mark_done(once, now=T0, status=201, object_id="B", response=None)
    journal.mark_failed(refused, now=T0, reason="422", location=None)  # never sent
    [row] = journal.status_counts()
    assert row.calls == {"done": 4, "failed": 0, "sent": 1}
    # 4 calls for the 3 finished documents; the one still in flight is not counted yet
    assert row.calls_per_document == pytest.approx(4 / 3)


def test_no_calls_per_document_before_one_is_finished(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    journal.mark_sent(doc_id, now=T0)

    [row] = journal.status_counts()

    assert row.calls_per_document is None


def test_next_retry_at_is_the_earliest_waiting_document(journal: Journal) -> None:
    assert journal.next_retry_at() is None
    file_id = add_file(journal)
    other = add_file(journal)
    [a] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
    [b] = journal.add_documents(other, [doc(1, other)], now=T0)
    journal.mark_retry(a, now=T0, next_attempt_at=T0 + timedelta(minutes=9), reason="503")
    journal.mark_retry(b, now=T0, next_attempt_at=T0 + timedelta(minutes=2), reason="429")

    assert journal.next_retry_at() == T0 + timedelta(minutes=2)


def test_documents_lists_failed_documents_across_files(journal: Journal) -> None:
    first, second = add_file(journal), add_file(journal, flow="customers")
    [a] = journal.add_documents(first, [doc(1, first)], now=T0)
    [b] = journal.add_documents(second, [doc(1, second)], now=T0)
    journal.mark_failed(a, now=T0, reason="no")
    journal.mark_failed(b, now=T0, reason="no")

    assert [d.id for d in journal.documents(state="failed")] == [a, b]
    assert [d.id for d in journal.documents(state="failed", flow="customers")] == [b]


def test_database_errors_leave_the_store_as_journal_errors(journal: Journal) -> None:
    file_id = add_file(journal)

    with pytest.raises(JournalError, match="journal: cannot record a file's documents") as caught:
        journal.add_documents(file_id, [doc(1, file_id, operation=None)], now=T0)

    assert not isinstance(caught.value, UnknownIdError)
    assert type(caught.value.__cause__).__module__.startswith("sqlalchemy")


def test_a_file_without_documents_finishes_done(journal: Journal) -> None:
    file_id = add_file(journal)

    assert journal.add_documents(file_id, [], now=T0) == []

    assert journal.finish_file_if_complete(file_id, now=T0) == "done"


def test_a_file_whose_documents_all_failed_at_mapping_finishes_failed(journal: Journal) -> None:
    file_id = add_file(journal)
    journal.add_documents(
        file_id, [doc(1, file_id, state="failed", error="bad", payload=None)], now=T0
    )

    assert journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=5) == []
    assert journal.finish_file_if_complete(file_id, now=T0) == "failed"
    assert journal.file(file_id).error == "1 of 1 document(s) failed"


def test_the_journal_is_a_context_manager(journal_url: str) -> None:
    with Journal.open(journal_url) as opened:
        file_id = add_file(opened)
    with Journal.open(journal_url, create=False) as again:
        assert again.file(file_id).state == "received"


def test_a_journal_folder_that_cannot_be_created_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")

    with pytest.raises(JournalError, match="cannot create the journal's folder"):
        Journal.open(f"sqlite:///{blocker}/journal.sqlite")


def _synchronous_at_commit(journal: Journal) -> list[int]:
    """Record SQLite's ``synchronous`` level at every commit (1 = NORMAL, 2 = FULL)."""
    seen: list[int] = []

    @event.listens_for(journal._engine, "commit")
    def _spy(conn: Connection) -> None:
        seen.append(conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0])  # type: ignore[union-attr]

    return seen


def _commits_and_wal_fsyncs(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reaches the disk, in order: ``commit`` for each commit, ``fsync <name>`` for each
    fsync the journal makes after one (of its WAL, or of the folder of a new WAL)."""
    seen: list[str] = []

    @event.listens_for(journal._engine, "commit")
    def _spy(conn: Connection) -> None:
        seen.append("commit")

    def spied(real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            real(fd)
            seen.append(f"fsync {Path(os.readlink(f'/proc/self/fd/{fd}')).name}")

        return sync

    monkeypatch.setattr(os, "fsync", spied(os.fsync))
    monkeypatch.setattr(os, "fdatasync", spied(os.fdatasync))
    return seen


def test_sqlite_fsyncs_the_wal_after_each_commit_that_lets_a_source_be_disposed_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite") as journal:
        file_id = add_file(journal)
        [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
        seen = _commits_and_wal_fsyncs(journal, monkeypatch)

        journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=1)
        journal.mark_sent(doc_id, now=T0)
        journal.mark_done(doc_id, now=T0, status=201, object_id="X", response=None)
        per_document = list(seen)
        del seen[:]
        journal.finish_file_if_complete(file_id, now=T0)
        finished = list(seen)
        del seen[:]
        journal.record_channel_action(file_id, action="delete", ok=True, error=None, now=T0)
        journal.next_sequence("w", "articles")
        journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=1)

    assert per_document == ["commit"] * 3
    # the first fsync of a new WAL makes its name in the folder durable too
    assert finished == ["commit", f"fsync {tmp_path.name}", "fsync j.sqlite-wal"]
    assert seen == ["commit", "fsync j.sqlite-wal"] * 2 + ["commit"]


def test_a_files_last_document_done_finishes_the_file_in_the_same_call(journal: Journal) -> None:
    file_id = add_file(journal)
    first, last = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
    journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=2)

    before_last = journal.mark_done_finishing(
        first, now=T0, status=201, object_id="A", response=None, file_id=file_id
    )
    state_between = journal.file(file_id).state
    at_last = journal.mark_done_finishing(
        last, now=T0, status=201, object_id="B", response=None, file_id=file_id
    )

    assert before_last == (False, None, None)
    assert state_between == "parsed"
    assert at_last == (True, "done", None)
    assert journal.file(file_id).state == "done"
    assert [e.kind for e in journal.events_of(file_id)][-2:] == ["done", "done"]  # doc, file


def test_sqlite_finishes_a_file_with_its_last_document_in_one_commit_then_syncs_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite") as journal:
        file_id = add_file(journal)
        [doc_id] = journal.add_documents(file_id, [doc(1, file_id)], now=T0)
        journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=1)
        seen = _commits_and_wal_fsyncs(journal, monkeypatch)

        answer = journal.mark_done_finishing(
            doc_id, now=T0, status=201, object_id="X", response=None, file_id=file_id
        )

    assert answer == (True, "done", None)
    assert seen == ["commit", f"fsync {tmp_path.name}", "fsync j.sqlite-wal"]


def test_sqlite_records_a_done_and_claims_the_next_document_in_one_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite") as journal:
        file_id = add_file(journal)
        first, second = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
        journal.claim_for_sending(now=T0, node="n", lease_seconds=60)
        seen = _commits_and_wal_fsyncs(journal, monkeypatch)

        outcome = done_claiming_next(journal, first, now=T0, file_id=file_id)

    assert outcome.claimed is not None and outcome.claimed.id == second
    assert seen == ["commit"]


def test_sqlite_keeps_a_done_whose_claim_of_the_next_document_failed(tmp_path: Path) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite") as journal:
        file_id = add_file(journal)
        first, second = journal.add_documents(file_id, [doc(1, file_id), doc(2, file_id)], now=T0)
        journal.claim_for_sending(now=T0, node="n", lease_seconds=60)
        with journal._write("refuse claims") as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_claims BEFORE UPDATE OF state ON documents "
                "WHEN NEW.state = 'sent' BEGIN SELECT RAISE(ABORT, 'claims refused'); END"
            )

        outcome = done_claiming_next(journal, first, now=T0, file_id=file_id)

        assert outcome.claimed is None
        assert journal.document(first).state == "done"
        assert journal.document(second).state == "pending"


def test_sqlite_barriers_that_wait_together_share_an_fsync(tmp_path: Path) -> None:
    sync = wal_sync.WalSync(tmp_path / "j.sqlite")
    (tmp_path / "j.sqlite-wal").write_bytes(b"frames")
    first, second = sync.committed(), sync.committed()
    synced: list[int] = []
    real = sync._sync

    def counted() -> None:
        synced.append(1)
        real()

    sync._sync = counted  # type: ignore[method-assign]
    sync.wait_durable(second)
    sync.wait_durable(first)  # covered by the fsync made for the later commit
    third = sync.committed()
    sync.wait_durable(third)

    assert len(synced) == 2


def test_sqlite_barrier_commits_no_longer_switch_synchronous_to_full(tmp_path: Path) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite") as journal:
        file_id = add_file(journal)
        seen = _synchronous_at_commit(journal)
        journal.record_channel_action(file_id, action="delete", ok=True, error=None, now=T0)

    assert seen == [1]  # NORMAL: the write lock is not held while the disk syncs


def test_sqlite_in_full_mode_fsyncs_every_commit(tmp_path: Path) -> None:
    with Journal.open(f"sqlite:///{tmp_path}/j.sqlite", synchronous="full") as journal:
        file_id = add_file(journal)
        seen = _synchronous_at_commit(journal)
        journal.add_documents(file_id, [doc(1, file_id)], now=T0)
        journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=1)

    assert seen == [2, 2]
