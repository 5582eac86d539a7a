"""Claiming documents: due ones only, in order per file, each to one node, recovered after a crash."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from edigw.journal import Journal, LeaseLostError, NewDocument
from tests.support.queued import done_claiming_next, received_file

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = 60.0


def queue_file(
    journal: Journal, docs: int, *, tag: str = "", failed: tuple[int, ...] = ()
) -> list[int]:
    """A parsed file with ``docs`` documents (seq 1..docs); returns their ids in order."""
    file_id = received_file(
        journal, partner="carrier", flow="appointments", name=f"rdv{tag}.csv", now=T0
    )
    return journal.add_documents(
        file_id,
        [
            NewDocument(
                seq=seq,
                business_key=f"RDV-{seq}",
                operation="delivery_notes.create",
                payload={"order": f"CMD-{seq}"},
                idempotency_key=f"{file_id}-{seq}",
                state="failed" if seq in failed else "pending",
                error="bad date" if seq in failed else None,
            )
            for seq in range(1, docs + 1)
        ],
        now=T0,
    )


def claim(
    journal: Journal, *, now: datetime = T0, node: str = "node-a", limit: int = 10
) -> list[int]:
    return [
        d.id
        for d in journal.claim_due_documents(now=now, node=node, lease_seconds=LEASE, limit=limit)
    ]


def finish(journal: Journal, doc_id: int) -> None:
    journal.mark_sent(doc_id, now=T0)
    journal.mark_done(doc_id, now=T0, status=201, object_id=f"BL-{doc_id}", response=None)


def test_a_claim_takes_the_first_document_of_each_file_in_file_order(journal: Journal) -> None:
    first = queue_file(journal, 3, tag="1")
    second = queue_file(journal, 2, tag="2")

    assert claim(journal) == [first[0], second[0]]


def test_a_claimed_document_records_node_and_lease(journal: Journal) -> None:
    [doc_id] = queue_file(journal, 1)

    [row] = journal.claim_due_documents(now=T0, node="node-a", lease_seconds=LEASE, limit=1)

    assert row.id == doc_id
    assert (row.claimed_by, row.claimed_until) == ("node-a", T0 + timedelta(seconds=LEASE))


def test_a_later_document_waits_until_the_earlier_one_of_its_file_is_finished(
    journal: Journal,
) -> None:
    a, b, c = queue_file(journal, 3)

    assert claim(journal) == [a]
    assert claim(journal, node="node-b") == []
    finish(journal, a)
    assert claim(journal) == [b]
    journal.mark_sent(b, now=T0)
    journal.mark_failed(b, now=T0, reason="422")
    assert claim(journal) == [c]


def test_a_document_waiting_for_a_retry_holds_back_the_rest_of_its_file(journal: Journal) -> None:
    a, _b = queue_file(journal, 2)
    assert claim(journal) == [a]
    journal.mark_sent(a, now=T0)
    journal.mark_retry(a, now=T0, next_attempt_at=T0 + timedelta(minutes=5), reason="503")

    assert claim(journal, now=T0 + timedelta(minutes=4)) == []
    assert claim(journal, now=T0 + timedelta(minutes=5)) == [a]


def test_documents_failed_at_mapping_do_not_hold_back_the_file(journal: Journal) -> None:
    _a, b, c = queue_file(journal, 3, failed=(1,))

    assert claim(journal) == [b]
    finish(journal, b)
    assert claim(journal) == [c]


def test_finished_documents_are_never_claimed(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    claim(journal)
    finish(journal, a)

    assert claim(journal, now=T0 + timedelta(days=1)) == []


def test_the_limit_caps_a_claim(journal: Journal) -> None:
    heads = [queue_file(journal, 1, tag=str(n))[0] for n in range(5)]

    assert claim(journal, limit=2) == heads[:2]
    assert claim(journal, limit=10) == heads[2:]


def test_a_claim_can_be_restricted_to_one_file(journal: Journal) -> None:
    queue_file(journal, 1, tag="1")
    [other] = queue_file(journal, 1, tag="2")
    file_id = journal.document(other).file_id

    assert [
        d.id
        for d in journal.claim_due_documents(
            now=T0, node="n", lease_seconds=LEASE, limit=5, file_id=file_id
        )
    ] == [other]


def test_a_sent_document_whose_node_died_is_claimed_again_after_its_lease(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    claim(journal, node="crashed")
    journal.mark_sent(a, now=T0)

    assert claim(journal, node="survivor", now=T0 + timedelta(seconds=LEASE - 1)) == []
    assert claim(journal, node="survivor", now=T0 + timedelta(seconds=LEASE)) == [a]
    row = journal.document(a)
    assert (row.state, row.claimed_by, row.attempts) == ("sent", "survivor", 1)
    recovered = journal.events_of_document(a)[-1]
    assert recovered.kind == "lease_expired"
    assert recovered.detail is not None and "crashed" in recovered.detail


def test_a_pending_document_claimed_by_a_dead_node_is_claimed_again_after_its_lease(
    journal: Journal,
) -> None:
    [a] = queue_file(journal, 1)
    claim(journal, node="crashed")

    assert claim(journal, node="survivor", now=T0 + timedelta(seconds=LEASE)) == [a]


def test_a_call_never_made_gives_the_document_back_with_its_attempt_undone(
    journal: Journal,
) -> None:
    [doc_id] = queue_file(journal, 1)
    doc = journal.claim_for_sending(now=T0, node="node-a", lease_seconds=LEASE)
    assert doc is not None and doc.attempts == 1

    journal.mark_not_sent(doc_id, now=T0, reason="not sent: the gateway is stopping")

    row = journal.document(doc_id)
    assert (row.state, row.attempts, row.claimed_by) == ("pending", 0, None)
    assert journal.events_of_document(doc_id)[-1].detail == "not sent: the gateway is stopping"
    assert claim(journal, node="node-b") == [doc_id]  # due again at once, for anyone


def test_a_done_claims_the_senders_next_document_with_its_attempt_recorded(
    journal: Journal,
) -> None:
    first, second = queue_file(journal, 2)
    assert claim_for_sending(journal) == first

    claimed = done_claiming_next(journal, first, now=T0, lease=LEASE).claimed

    row = journal.document(second)
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts, claimed.claimed_by) == (
        second,
        "sent",
        1,
        "node-a",
    )
    assert (row.state, row.attempts, row.claimed_by) == ("sent", 1, "node-a")
    assert journal.events_of_document(second)[-1].detail == "attempt 1 by node-a"
    assert journal.document(first).state == "done"


def test_a_done_claims_the_next_document_of_its_business_key_it_made_due(
    journal: Journal,
) -> None:
    file_id = received_file(journal, partner="carrier", flow="appointments", name="rdv.csv", now=T0)
    first, second = journal.add_documents(
        file_id,
        [
            NewDocument(
                seq=seq,
                business_key="RDV-1",  # the second changes what the first created
                operation="delivery_notes.create",
                payload={"order": "CMD-1", "version": seq},
                idempotency_key=f"{file_id}-{seq}",
            )
            for seq in (1, 2)
        ],
        now=T0,
    )
    assert claim_for_sending(journal) == first
    assert claim_for_sending(journal, node="node-b") is None  # not due before the first is done

    claimed = done_claiming_next(journal, first, now=T0, lease=LEASE).claimed

    assert claimed is not None and claimed.id == second


def test_a_done_with_nothing_left_due_claims_nothing_and_finishes_the_file(
    journal: Journal,
) -> None:
    [only] = queue_file(journal, 1)
    claim_for_sending(journal)

    outcome = done_claiming_next(journal, only, now=T0, lease=LEASE)

    assert outcome == (True, "done", None)


def claim_for_sending(journal: Journal, *, node: str = "node-a") -> int | None:
    doc = journal.claim_for_sending(now=T0, node=node, lease_seconds=LEASE)
    return None if doc is None else doc.id


def test_a_node_that_lost_its_lease_may_not_send(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    claim(journal, node="slow")
    claim(journal, node="fast", now=T0 + timedelta(seconds=LEASE))

    with pytest.raises(LeaseLostError, match="slow no longer holds"):
        journal.mark_sent(a, now=T0 + timedelta(seconds=LEASE), node="slow")
    journal.mark_sent(a, now=T0 + timedelta(seconds=LEASE), node="fast")


def test_a_lease_that_expired_is_lost_even_without_a_new_claim(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    claim(journal, node="slow")

    with pytest.raises(LeaseLostError):
        journal.mark_sent(a, now=T0 + timedelta(seconds=LEASE + 1), node="slow")


def _claim_all(url: str, node: str, results: list[int], barrier: threading.Barrier) -> None:
    journal = Journal.open(url, create=False)
    try:
        barrier.wait()
        while docs := journal.claim_due_documents(now=T0, node=node, lease_seconds=3600, limit=3):
            results.extend(d.id for d in docs)
            for d in docs:
                journal.mark_sent(d.id, now=T0, node=node)
                time.sleep(0.001)  # the HTTP call: other nodes claim meanwhile
                journal.mark_done(d.id, now=T0, status=201, object_id=node, response=None)
    finally:
        journal.close()


def test_concurrent_threads_never_claim_the_same_document(
    journal: Journal, journal_url: str
) -> None:
    expected = [doc_id for n in range(30) for doc_id in queue_file(journal, 4, tag=str(n))]
    nodes = 4
    barrier = threading.Barrier(nodes)
    results: list[list[int]] = [[] for _ in range(nodes)]
    threads = [
        threading.Thread(target=_claim_all, args=(journal_url, f"node-{n}", results[n], barrier))
        for n in range(nodes)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    claimed = [doc_id for r in results for doc_id in r]
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert sorted(claimed) == sorted(expected)
    assert sum(1 for r in results if r) > 1, "the claims were not actually concurrent"


def _claim_in_process(
    url: str,
    node: str,
    queue: multiprocessing.Queue[list[int]],
    start: multiprocessing.synchronize.Event,
) -> None:
    journal = Journal.open(url, create=False)
    claimed: list[int] = []
    try:
        start.wait()
        while docs := journal.claim_due_documents(now=T0, node=node, lease_seconds=3600, limit=2):
            for d in docs:
                claimed.append(d.id)
                journal.mark_sent(d.id, now=T0, node=node)
                time.sleep(0.001)  # the HTTP call: other nodes claim meanwhile
                journal.mark_done(d.id, now=T0, status=201, object_id=node, response=None)
    finally:
        journal.close()
        queue.put(claimed)


def test_concurrent_processes_never_claim_the_same_document_and_keep_file_order(
    journal: Journal, journal_url: str
) -> None:
    expected = [doc_id for n in range(20) for doc_id in queue_file(journal, 5, tag=str(n))]
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    start = context.Event()
    workers = [
        context.Process(target=_claim_in_process, args=(journal_url, f"proc-{n}", queue, start))
        for n in range(3)
    ]
    for w in workers:
        w.start()
    start.set()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0

    claimed = [doc_id for r in results for doc_id in r]
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert sorted(claimed) == sorted(expected)
    for file_docs in (expected[i : i + 5] for i in range(0, len(expected), 5)):
        sent_order = [
            e.document_id
            for e in journal.events_of(journal.document(file_docs[0]).file_id)
            if e.kind == "done" and e.document_id
        ]
        assert sent_order == file_docs


def test_sender_threads_sharing_one_journal_never_claim_the_same_document(journal: Journal) -> None:
    expected = [doc_id for n in range(20) for doc_id in queue_file(journal, 3, tag=str(n))]
    claimed: list[list[int]] = [[] for _ in range(4)]

    def sender(n: int) -> None:
        node = f"sender-{n}"
        while docs := journal.claim_due_documents(now=T0, node=node, lease_seconds=3600, limit=1):
            claimed[n].append(docs[0].id)
            journal.mark_sent(docs[0].id, now=T0, node=node)
            time.sleep(0.001)  # the HTTP call
            journal.mark_done(docs[0].id, now=T0, status=201, object_id=node, response=None)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = [doc_id for ids in claimed for doc_id in ids]
    assert sorted(everything) == sorted(expected)
    assert len(set(everything)) == len(everything)
    assert sum(1 for ids in claimed if ids) > 1


def test_claim_holders_lists_nodes_holding_unfinished_documents(journal: Journal) -> None:
    a, _ = queue_file(journal, 2, tag="1")
    [b] = queue_file(journal, 1, tag="2")
    claim(journal, node="node-a", limit=1)
    claim(journal, node="node-b", limit=1)
    finish(journal, b)

    assert journal.claim_holders() == ["node-a"]
    assert journal.document(a).claimed_by == "node-a"


def test_released_claims_of_a_dead_node_are_claimable_at_once(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    claim(journal, node="dead")

    assert journal.release_claims(["dead"], now=T0 + timedelta(seconds=1)) == 1
    assert claim(journal, node="alive", now=T0 + timedelta(seconds=1)) == [a]
    assert journal.release_claims([], now=T0) == 0


def claimed_by_node_b(journal: Journal) -> tuple[int, int]:
    """A one-document file whose document node-b claimed: (document id, file id)."""
    [doc_id] = queue_file(journal, 1)
    assert claim(journal, node="node-b") == [doc_id]
    return doc_id, journal.document(doc_id).file_id


def test_a_file_is_being_sent_elsewhere_while_another_node_holds_its_document(
    journal: Journal,
) -> None:
    a, file_id = claimed_by_node_b(journal)
    journal.mark_sent(a, now=T0, node="node-b")

    assert journal.sending_elsewhere(file_id, now=T0, node="node-a")
    assert not journal.sending_elsewhere(file_id, now=T0, node="node-b")
    assert not journal.sending_elsewhere(
        file_id, now=T0 + timedelta(seconds=LEASE + 1), node="node-a"
    ), "a lapsed lease is nobody's work"


def test_a_file_whose_last_document_is_done_but_not_settled_is_being_sent_elsewhere(
    journal: Journal,
) -> None:
    a, file_id = claimed_by_node_b(journal)
    finish(journal, a)

    assert journal.file(file_id).state == "parsed"
    assert journal.sending_elsewhere(file_id, now=T0, node="node-a")
    assert journal.finish_file_if_complete(file_id, now=T0) == "done"
    assert not journal.sending_elsewhere(file_id, now=T0, node="node-a")


def test_documents_no_sender_holds_are_not_being_sent_elsewhere(journal: Journal) -> None:
    [a] = queue_file(journal, 1)
    file_id = journal.document(a).file_id

    assert not journal.sending_elsewhere(file_id, now=T0, node="node-a")
