"""Heads per business key: an unordered file's documents of distinct keys are claimable at
once, those of one key one after the other in file order; an ordered file keeps one head."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from edigw.journal import Journal
from edigw.journal.rows import DocumentCounts
from tests.support.plans import generic_plan, statements_run
from tests.support.queued import (
    done_claiming_next,
    keyed_documents,
    received_file,
    sent_and_done,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = 60.0


def received(journal: Journal, *, ordered: bool, tag: str = "") -> int:
    return received_file(
        journal, partner="webshop", flow="orders", name=f"orders{tag}.csv", now=T0, ordered=ordered
    )


def queue_file(journal: Journal, keys: list[str], *, ordered: bool = False) -> list[int]:
    """A parsed file with one document per key (in this order); their ids in file order."""
    file_id = received(journal, ordered=ordered, tag="-".join(keys))
    return journal.add_documents(file_id, keyed_documents(file_id, keys), now=T0)


def claim(journal: Journal, *, now: datetime = T0, limit: int = 10) -> list[int]:
    return [
        d.id
        for d in journal.claim_due_documents(
            now=now, node="node-a", lease_seconds=LEASE, limit=limit
        )
    ]


def finish(journal: Journal, doc_id: int) -> bool:
    return sent_and_done(journal, doc_id, now=T0)


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
    early = journal.add_document_batch(file_id, keyed_documents(file_id, ["C1", "C2"]), now=T0)
    late = journal.add_documents(
        file_id,
        keyed_documents(file_id, ["C1", "C3"], first=3),
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


@pytest.mark.parametrize("named", [False, True], ids=["file-not-named", "file-named"])
def test_an_unordered_file_is_complete_only_when_every_key_is_finished(
    journal: Journal, named: bool
) -> None:
    """Named: as a sender does it, the one-statement path on PostgreSQL."""
    done = finish_named if named else finish
    a, b = queue_file(journal, ["C1", "C2"])
    file_id = journal.document(a).file_id
    claim(journal)

    assert done(journal, b) is False
    assert journal.finish_file_if_complete(file_id, now=T0) is None
    assert done(journal, a) is True
    assert journal.finish_file_if_complete(file_id, now=T0) == "done"
    assert [e.kind for e in journal.events_of(file_id)].count("done") == 3


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


def finish_named(journal: Journal, doc_id: int) -> bool:
    """``finish`` as a sender does it: naming the document's file."""
    return sent_and_done(journal, doc_id, now=T0, named=True)


def test_the_last_two_keys_of_a_file_finishing_at_the_same_moment_leave_it_complete(
    journal: Journal,
) -> None:
    """Each asks whether the file is finished after its own done is written: of two done
    together, at least one sees the other and says so, or the file would never settle."""
    pairs = [queue_file(journal, [f"A{n}", f"B{n}"]) for n in range(12)]
    claim(journal, limit=100)
    for first, second in pairs:
        barrier = threading.Barrier(2)
        said: list[bool] = []

        def done(doc_id: int, barrier: threading.Barrier, said: list[bool]) -> None:
            barrier.wait()
            said.append(finish_named(journal, doc_id))

        threads = [threading.Thread(target=done, args=(d, barrier, said)) for d in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert True in said, f"neither last document of F-{journal.document(first).file_id}"


READER = "gw1:4242:123456"


def read_at_once(journal: Journal, keys: list[str]) -> list[int]:
    """A file read by the intake and journalled in one go (``reader``: no earlier batch)."""
    file_id = received_file(
        journal, partner="webshop", flow="orders", now=T0, ordered=False, reader=READER
    )
    return journal.add_documents(file_id, keyed_documents(file_id, keys), now=T0, reader=READER)


def test_a_file_read_at_once_has_one_head_per_key_from_the_start(journal: Journal) -> None:
    first, other, second, third = read_at_once(journal, ["C1", "C2", "C1", "C3"])

    assert claim(journal) == [first, other, third]
    finish(journal, first)
    assert claim(journal) == [second]


def test_a_file_read_at_once_gets_its_heads_with_its_rows_not_by_updates(
    journal: Journal,
) -> None:
    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DOCUMENTS"):
            updates.append(statement)

    event.listen(journal._engine, "before_cursor_execute", record)
    read_at_once(journal, ["C1", "C2", "C1"])

    assert updates == []


def test_a_node_that_knows_the_file_and_one_that_does_not_finish_its_last_two_keys_at_once(
    journal: Journal, journal_url: str
) -> None:
    """Two nodes: the one that took the file in knows it is unordered (one statement, then
    the question), the other does not yet (the general path: the question under the file's
    lock, before its commit). The first's whole done falls between the other's question and
    its commit: one of them must still see the file finished."""
    other = Journal.open(journal_url)  # no memory of the file: the general path
    asked, answered = threading.Event(), threading.Event()

    def hold_the_commit(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        first_unfinished = statement.lstrip().startswith("SELECT documents.seq")
        if first_unfinished and "key_hash" not in statement and not asked.is_set():
            asked.set()
            answered.wait(timeout=1.0)  # with the file's lock respected, never set in time

    try:
        mine, theirs = queue_file(journal, ["A", "B"])
        file_id = journal.document(mine).file_id
        claim(journal)
        for doc_id in (mine, theirs):
            journal.mark_sent(doc_id, now=T0)
        event.listen(other._engine, "after_cursor_execute", hold_the_commit)
        said: list[bool] = []

        def done(node: Journal, doc_id: int, first: threading.Event | None) -> None:
            if first is not None:
                first.wait(timeout=5.0)
            said.append(
                node.mark_done(
                    doc_id, now=T0, status=201, object_id="O", response=None, file_id=file_id
                )
            )
            if first is not None:
                answered.set()

        threads = [
            threading.Thread(target=done, args=(other, theirs, None)),
            threading.Thread(target=done, args=(journal, mine, asked)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert asked.is_set()
        assert True in said
    finally:
        other.close()


def two_keys_claimed(journal: Journal) -> tuple[int, int, int]:
    """An unordered file of two keys, both claimed: (first, last, the file)."""
    first, last = queue_file(journal, ["C1", "C2"])
    assert claim(journal) == [first, last]
    return first, last, journal.document(first).file_id


def done_finishing(journal: Journal, doc_id: int, file_id: int) -> Any:
    return journal.mark_done_finishing(
        doc_id, now=T0, status=201, object_id="X", response=None, file_id=file_id
    )


def test_an_unordered_files_last_document_done_settles_it_done_with_its_counts(
    journal: Journal,
) -> None:
    first, last, file_id = two_keys_claimed(journal)

    assert done_finishing(journal, first, file_id) == (False, None, None)
    assert journal.file(file_id).state == "parsed"
    assert done_finishing(journal, last, file_id) == (True, "done", None)
    assert journal.events_of(file_id)[-1].detail == "2 done, 0 failed"


def test_an_unordered_file_with_a_failed_document_settles_partially_failed_at_its_last_done(
    journal: Journal,
) -> None:
    failing, last, file_id = two_keys_claimed(journal)
    journal.mark_failed(failing, now=T0, reason="refused")

    assert done_finishing(journal, last, file_id) == (True, "partially_failed", None)
    row = journal.file(file_id)
    assert (row.state, row.error) == ("partially_failed", "1 of 2 document(s) failed")


def test_a_node_that_did_not_take_the_file_in_learns_its_order_with_its_claim(
    postgres_url: str,
) -> None:
    """PostgreSQL: the done of a document of an unordered file another node took in is one
    statement in autocommit, as on the node that took it in, not a transaction."""
    taker, sender = Journal.open(postgres_url), Journal.open(postgres_url)
    try:
        first, _second = queue_file(taker, ["C1", "C2"])
        file_id = taker.document(first).file_id
        claimed = sender.claim_for_sending(now=T0, node="sender", lease_seconds=LEASE)
        assert claimed is not None and claimed.id == first
        commits: list[str] = []
        for engine in (sender._engine, sender._lazy_engine):
            if engine is not None:
                event.listen(engine, "commit", lambda _conn: commits.append("commit"))

        outcome = done_finishing(sender, first, file_id)

        assert outcome.complete is False
        assert commits == []
        assert sender.document(first).state == "done"
    finally:
        taker.close()
        sender.close()


def two_keys_and_one_waiting(journal: Journal) -> tuple[int, int, int, int]:
    """An unordered file of two keys, both claimed, and a document due in another file:
    (first, last, waiting, the two keys' file)."""
    first, last, file_id = two_keys_claimed(journal)
    (waiting,) = queue_file(journal, ["D1"])
    return first, last, waiting, file_id


def test_an_unordered_files_last_done_claiming_the_next_settles_the_file(
    journal: Journal,
) -> None:
    first, last, waiting, file_id = two_keys_and_one_waiting(journal)

    outcome = done_claiming_next(journal, first, now=T0)
    assert (outcome.complete, outcome.file_state) == (False, None)
    assert outcome.claimed is not None and outcome.claimed.id == waiting
    outcome = done_claiming_next(journal, last, now=T0)

    assert outcome == (True, "done", None)
    assert journal.events_of(file_id)[-1].detail == "2 done, 0 failed"


def test_an_unordered_files_last_done_settles_it_when_the_next_claim_finds_one(
    journal: Journal,
) -> None:
    first, last, waiting, file_id = two_keys_and_one_waiting(journal)
    journal.mark_failed(first, now=T0, reason="refused")

    outcome = done_claiming_next(journal, last, now=T0)

    assert (outcome.complete, outcome.file_state) == (True, "partially_failed")
    assert outcome.claimed is not None and outcome.claimed.id == waiting
    assert journal.file(file_id).error == "1 of 2 document(s) failed"


def test_on_postgresql_a_done_asks_whether_its_file_is_finished_in_its_next_claim(
    postgres_url: str,
) -> None:
    """The done, then the claim that also counts the file's documents: two statements, not
    a third to ask."""
    journal = Journal.open(postgres_url)
    try:
        first, _last = queue_file(journal, ["C1", "C2"])
        queue_file(journal, ["D1"])
        file_id = journal.document(first).file_id
        claim(journal, limit=2)
        statements: list[str] = []
        for engine in (journal._engine, journal._lazy_engine):
            if engine is not None:
                event.listen(
                    engine,
                    "before_cursor_execute",
                    lambda _c, _cur, statement, *_a: statements.append(statement),
                )

        outcome = done_claiming_next(journal, first, now=T0, file_id=file_id)

        assert outcome.claimed is not None
        assert len(statements) == 2, statements
        assert "file_counts" in statements[1]
    finally:
        journal.close()


def test_the_last_two_keys_done_at_once_each_claiming_the_next_leave_the_file_complete(
    journal: Journal,
) -> None:
    """As with two plain dones: each asks after its own done is committed (here in its next
    claim), so of two done together at least one sees the other."""
    pairs = [queue_file(journal, [f"A{n}", f"B{n}"]) for n in range(8)]
    for n in range(20):
        queue_file(journal, [f"W{n}"])  # due documents for every claim to find
    claim(journal, limit=16)
    for first, second in pairs:
        file_id = journal.document(first).file_id
        barrier = threading.Barrier(2)
        said: list[bool] = []

        def done(doc_id: int, barrier: threading.Barrier, said: list[bool], fid: int) -> None:
            barrier.wait()
            said.append(done_claiming_next(journal, doc_id, now=T0).complete)

        threads = [
            threading.Thread(target=done, args=(d, barrier, said, file_id)) for d in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert True in said, f"neither last document of F-{file_id}"
        assert journal.file(file_id).state == "done"


def test_on_postgresql_a_claim_that_fails_after_the_last_done_still_settles_the_file(
    postgres_url: str,
) -> None:
    journal = Journal.open(postgres_url)
    try:
        first, last = queue_file(journal, ["C1", "C2"])
        file_id = journal.document(first).file_id
        claim(journal, limit=2)
        journal.mark_failed(first, now=T0, reason="refused")

        def refuse_the_claim(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            if "file_counts" in statement:
                raise RuntimeError("the claim failed")

        for engine in (journal._engine, journal._lazy_engine):
            if engine is not None:
                event.listen(engine, "before_cursor_execute", refuse_the_claim)

        with pytest.raises(RuntimeError, match="the claim failed"):
            done_claiming_next(journal, last, now=T0)

        assert journal.document(last).state == "done"
        assert journal.file(file_id).state == "partially_failed"
    finally:
        journal.close()


def test_on_postgresql_a_done_in_an_unordered_file_seeks_its_document_in_a_generic_plan(
    postgres_url: str,
) -> None:
    """The done statement runs prepared, again and again: once PostgreSQL plans it once for
    all values, it must still find the document by its id, not by a scan of the file's heads
    (every document of a file of distinct keys is a head: a done cost O(file))."""
    journal = Journal.open(postgres_url)
    try:
        first, *_rest = queue_file(journal, [f"K{n}" for n in range(200)])
        file_id = journal.document(first).file_id
        claim(journal, limit=200)
        with statements_run(journal, "WITH locked") as seen:
            journal.mark_done(
                first, now=T0, status=201, object_id="X", response=None, file_id=file_id
            )
        [done] = seen
    finally:
        journal.close()

    plan = generic_plan(postgres_url, done)
    updated = plan.split("CTE finished", 1)[1].split("CTE told", 1)[0]
    assert "Index Cond: (id = " in updated, plan
