"""Heads per business key: an unordered file's documents of distinct keys are claimable at
once, those of one key one after the other in file order; an ordered file keeps one head."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edigw.journal import Journal, NewDocument
from edigw.journal.rows import DocumentCounts
from tests.support.queued import received_file

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = 60.0


def received(journal: Journal, *, ordered: bool, tag: str = "") -> int:
    return received_file(
        journal, partner="webshop", flow="orders", name=f"orders{tag}.csv", now=T0, ordered=ordered
    )


def rows(file_id: int, keys: list[str], *, first: int = 1) -> list[NewDocument]:
    """One pending document per key, in file order from position ``first``."""
    return [
        NewDocument(
            seq=seq,
            business_key=key,
            operation="orders.create",
            payload={"number": key, "seq": seq},
            idempotency_key=f"{file_id}-{seq}",
            state="pending",
        )
        for seq, key in enumerate(keys, start=first)
    ]


def queue_file(journal: Journal, keys: list[str], *, ordered: bool = False) -> list[int]:
    """A parsed file with one document per key (in this order); their ids in file order."""
    file_id = received(journal, ordered=ordered, tag="-".join(keys))
    return journal.add_documents(file_id, rows(file_id, keys), now=T0)


def claim(journal: Journal, *, now: datetime = T0, limit: int = 10) -> list[int]:
    return [
        d.id
        for d in journal.claim_due_documents(
            now=now, node="node-a", lease_seconds=LEASE, limit=limit
        )
    ]


def finish(journal: Journal, doc_id: int) -> bool:
    journal.mark_sent(doc_id, now=T0)
    return journal.mark_done(doc_id, now=T0, status=201, object_id=f"O-{doc_id}", response=None)


def test_documents_of_distinct_keys_in_one_unordered_file_are_claimable_at_once(
    journal: Journal,
) -> None:
    ids = queue_file(journal, ["C1", "C2", "C3"])

    assert claim(journal) == ids


def test_a_second_document_of_the_same_key_waits_for_the_first_to_finish(
    journal: Journal,
) -> None:
    first, other, second = queue_file(journal, ["C1", "C2", "C1"])

    assert claim(journal) == [first, other]
    assert claim(journal, now=T0 + timedelta(seconds=1)) == []
    finish(journal, first)
    assert claim(journal, now=T0 + timedelta(seconds=1)) == [second]


def test_an_ordered_file_keeps_one_head_whatever_its_keys(journal: Journal) -> None:
    a, b, _c = queue_file(journal, ["C1", "C2", "C3"], ordered=True)

    assert claim(journal) == [a]
    finish(journal, a)
    assert claim(journal) == [b]


def test_a_retry_wait_in_an_unordered_file_holds_back_only_its_key(journal: Journal) -> None:
    first, other, second = queue_file(journal, ["C1", "C2", "C1"])
    claim(journal, limit=1)
    journal.mark_sent(first, now=T0)
    journal.mark_retry(first, now=T0, next_attempt_at=T0 + timedelta(minutes=5), reason="503")

    assert claim(journal, now=T0 + timedelta(minutes=1)) == [other]
    assert second not in claim(journal, now=T0 + timedelta(minutes=2))


def test_a_final_failure_hands_its_keys_turn_to_the_next_document_of_the_key(
    journal: Journal,
) -> None:
    first, _other, second = queue_file(journal, ["C1", "C2", "C1"])
    claim(journal)
    journal.mark_sent(first, now=T0)
    journal.mark_failed(first, now=T0, reason="422 refused")

    assert claim(journal) == [second]


def test_batches_of_an_unordered_file_get_one_head_per_key_across_batches(
    journal: Journal,
) -> None:
    file_id = received(journal, ordered=False)
    early = journal.add_document_batch(file_id, rows(file_id, ["C1", "C2"]), now=T0)
    late = journal.add_documents(
        file_id,
        rows(file_id, ["C1", "C3"], first=3),
        now=T0,
        journalled=DocumentCounts(documents=2, pending=2),
    )

    assert claim(journal) == [early[0], early[1], late[1]]


def test_replaying_an_earlier_document_of_a_key_gives_the_key_back_to_it(
    journal: Journal,
) -> None:
    first, other, second = queue_file(journal, ["C1", "C2", "C1"])
    claim(journal, limit=1)
    journal.mark_sent(first, now=T0)
    journal.mark_failed(first, now=T0, reason="422 refused")

    journal.reset_for_replay(first, payload={"number": "C1"}, operation="orders.create", now=T0)

    assert claim(journal, now=T0 + timedelta(minutes=2)) == [first, other]
    assert second not in claim(journal, now=T0 + timedelta(minutes=3))


def test_an_unordered_file_is_complete_only_when_every_key_is_finished(
    journal: Journal,
) -> None:
    a, b = queue_file(journal, ["C1", "C2"])
    claim(journal)

    assert finish(journal, b) is False
    assert journal.finish_file_if_complete(journal.document(b).file_id, now=T0) is None
    assert finish(journal, a) is True
    assert journal.finish_file_if_complete(journal.document(a).file_id, now=T0) == "done"


def test_a_long_business_key_is_journalled_and_claimed(journal: Journal) -> None:
    long_key = "K" * 20_000
    first, second = queue_file(journal, [long_key, long_key])

    assert claim(journal) == [first]
    finish(journal, first)
    assert claim(journal) == [second]


def test_a_done_that_names_its_unordered_file_hands_the_head_to_the_keys_next(
    journal: Journal,
) -> None:
    """The sender names the file: on PostgreSQL an unordered one skips the statement that
    serves ordered files only, and the key's next document is its head all the same."""
    first, other, second = queue_file(journal, ["C1", "C2", "C1"])
    file_id = journal.document(first).file_id
    assert claim(journal) == [first, other]

    journal.mark_sent(first, now=T0)
    complete = journal.mark_done(
        first, now=T0, status=201, object_id="O-1", response=None, file_id=file_id
    )

    assert complete is False
    assert claim(journal, now=T0 + timedelta(seconds=1)) == [second]
