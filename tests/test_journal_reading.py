"""The journal knows which file is being read, by whom, before a byte of it is read; it tells
a value it refuses from a database it cannot reach; it records documents an earlier reading
of a changed source already sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edigw.journal import (
    DuplicateKeyError,
    Journal,
    JournalUnavailable,
    JournalValueError,
    NewDocument,
    StateError,
)
from tests.support.readonly import read_only

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
READER = "gw1:4242:123456"


def add_file(
    journal: Journal, *, name: str = "a.csv", reader: str | None = READER, ordered: bool = True
) -> int:
    return journal.add_file(
        partner="webshop",
        flow="orders",
        channel="local:/in",
        original_name=name,
        source_path=f"/in/{name}",
        size=10,
        sha256=name.encode().hex().ljust(64, "0")[:64],
        archive_path="",
        now=T0,
        reader=reader,
        ordered=ordered,
    )


def doc(seq: int, key: str = "CMD-1", **overrides: object) -> NewDocument:
    values: dict[str, object] = {
        "seq": seq,
        "business_key": key,
        "operation": "orders.create",
        "payload": {"number": key},
        "idempotency_key": f"key-{key}-{seq}",
    }
    values.update(overrides)
    return NewDocument(**values)  # type: ignore[arg-type]


def test_a_file_is_recorded_as_being_read_before_its_documents(journal: Journal) -> None:
    file_id = add_file(journal)
    [reading] = journal.readings()
    assert (reading.id, reading.state, reading.reader) == (file_id, "received", READER)

    journal.add_documents(file_id, [doc(1)], now=T0, reader=READER)

    assert journal.readings() == []
    assert journal.file(file_id).reader is None
    assert journal.file(file_id).state == "parsed"


def test_a_readings_events_are_written_in_order_each_document_then_the_file_parsed(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    ids = journal.add_documents(
        file_id,
        [
            doc(1, "CMD-1"),
            doc(2, "CMD-2", idempotency_key="k-2"),
            doc(3, "CMD-3", idempotency_key="k-3"),
        ],
        now=T0,
        reader=READER,
    )

    told = [(e.kind, e.document_id, e.detail) for e in journal.events_of(file_id)][1:]
    assert told == [
        ("pending", ids[0], "orders.create CMD-1"),
        ("pending", ids[1], "orders.create CMD-2"),
        ("pending", ids[2], "orders.create CMD-3"),
        ("parsed", None, "3 document(s), 0 failed at mapping"),
    ]


def test_a_key_already_used_refuses_a_reading_and_writes_nothing(journal: Journal) -> None:
    first = add_file(journal, name="first.csv")
    [used] = journal.add_documents(first, [doc(1, "CMD-1")], now=T0, reader=READER)
    second = add_file(journal, name="second.csv")

    with pytest.raises(DuplicateKeyError, match=f"D-{used}") as caught:
        journal.add_documents(
            second,
            [doc(1, "CMD-2"), doc(2, "CMD-1", idempotency_key="key-CMD-1-1")],
            now=T0,
            reader=READER,
        )

    assert caught.value.keys == {"key-CMD-1-1": used}
    assert journal.documents_of(second) == []
    row = journal.file(second)
    assert (row.state, row.reader) == ("received", READER)
    assert [e.kind for e in journal.events_of(second)] == ["received"]


def test_an_unordered_file_read_has_one_head_per_business_key(journal: Journal) -> None:
    file_id = add_file(journal, name="keys.csv", ordered=False)
    ids = journal.add_documents(
        file_id,
        [doc(1, "CMD-1"), doc(2, "CMD-2"), doc(3, "CMD-1")],
        now=T0,
        reader=READER,
    )

    claimed = journal.claim_due_documents(now=T0, node="n", lease_seconds=60, limit=10)
    assert [d.id for d in claimed] == ids[:2]  # the second CMD-1 waits for the first


def test_documents_are_refused_from_a_reader_whose_reading_was_settled_by_another(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    assert journal.fail_killed_reading(file_id, reader=READER, error="killed", now=T0)

    with pytest.raises(StateError, match=f"F-{file_id} is no longer being read by {READER}"):
        journal.add_documents(file_id, [doc(1)], now=T0, reader=READER)
    assert journal.documents_of(file_id) == []


def test_a_file_whose_reading_killed_the_gateway_keeps_its_reader(journal: Journal) -> None:
    file_id = add_file(journal)

    assert journal.fail_killed_reading(file_id, reader=READER, error="it killed us", now=T0)
    assert not journal.fail_killed_reading(file_id, reader=READER, error="again", now=T0)

    row = journal.file(file_id)
    assert (row.state, row.reader, row.error) == ("failed", READER, "it killed us")
    assert journal.readings() == []


def test_any_other_failure_ends_the_reading(journal: Journal) -> None:
    file_id = add_file(journal)
    journal.set_file_state(file_id, "failed", now=T0, error="unreadable")
    assert journal.file(file_id).reader is None


def test_a_replay_adds_documents_to_a_file_without_naming_a_reader(journal: Journal) -> None:
    file_id = add_file(journal)
    assert journal.fail_killed_reading(file_id, reader=READER, error="killed", now=T0)

    journal.add_documents(file_id, [doc(1)], now=T0)

    row = journal.file(file_id)
    assert (row.state, row.reader) == ("parsed", None)


def test_a_document_already_sent_by_an_earlier_reading_is_journalled_done_with_its_answer(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    already = doc(
        1,
        "CMD-1",
        state="done",
        ecolix_status=201,
        ecolix_object_id="ORD-9",
        ecolix_response={"number": "ORD-9"},
        note="already sent as D-1 by F-1",
    )
    journal.add_documents(file_id, [already, doc(2, "CMD-2")], now=T0, reader=READER)

    first, second = journal.documents_of(file_id)
    assert (first.state, first.ecolix_object_id, first.ecolix_response) == (
        "done",
        "ORD-9",
        {"number": "ORD-9"},
    )
    assert first.attempts == 0
    assert second.state == "pending"
    claimed = journal.claim_for_sending(now=T0, node="gw1:1", lease_seconds=60)
    assert claimed is not None and claimed.id == second.id
    assert any("already sent as D-1 by F-1" in (e.detail or "") for e in journal.events_of(file_id))


def test_sources_left_because_they_changed_are_listed_until_taken_again(
    journal: Journal,
) -> None:
    first = add_file(journal, name="a.csv", reader=None)
    journal.set_file_state(first, "done", now=T0)
    journal.record_channel_action(
        first, action="kept-changed", ok=True, error=None, now=T0, detail="it grew"
    )
    other = add_file(journal, name="b.csv", reader=None)
    journal.record_channel_action(other, action="moved", ok=True, error=None, now=T0)

    assert journal.changed_sources(partner="webshop", flow="orders", action="kept-changed") == {
        "/in/a.csv": first
    }
    assert journal.changed_sources(partner="webshop", flow="invoices", action="kept-changed") == {}

    journal.add_file(
        partner="webshop",
        flow="orders",
        channel="local:/in",
        original_name="a.csv",
        source_path="/in/a.csv",
        size=20,
        sha256="f" * 64,
        archive_path="",
        now=T0,
    )
    assert journal.changed_sources(partner="webshop", flow="orders", action="kept-changed") == {}


@pytest.mark.postgres
def test_a_value_postgresql_refuses_is_a_value_error_not_an_outage(postgres_url: str) -> None:
    journal = Journal.open(postgres_url)
    try:
        file_id = add_file(journal)
        with pytest.raises(JournalValueError, match="refused a value"):
            journal.add_documents(file_id, [doc(1, "CMD\x00-1")], now=T0, reader=READER)
        assert journal.file(file_id).state == "received"
    finally:
        journal.close()


def test_a_read_only_journal_is_unavailable_not_refusing_a_value(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal.open(f"sqlite:///{path}").close()
    with read_only(path):
        journal = Journal.open(f"sqlite:///{path}")
        try:
            with pytest.raises(JournalUnavailable, match="readonly database"):
                add_file(journal)
        finally:
            journal.close()
