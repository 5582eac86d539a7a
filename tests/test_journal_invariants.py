"""Whatever happens to a file's documents, exactly its first unfinished one may be claimed.

The journal keeps a "head" flag per file so that claims stay index seeks; these property-based
tests drive random sequences of claims, attempts, outcomes, lease expiries and replays and
check after every step that the flag still says what the states say, on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edigw.journal import Journal, NewDocument, StateError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNFINISHED = {"pending", "sent", "retry_wait"}
_batches = count()

step = st.tuples(
    st.sampled_from(["claim", "sent", "done", "retry", "fail", "replay", "tick"]),
    st.integers(min_value=0, max_value=7),
)


def _queue(journal: Journal, batch: int, shapes: list[list[bool]]) -> list[int]:
    file_ids = []
    for n, failed_at_mapping in enumerate(shapes):
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name=f"{batch}-{n}.csv",
            source_path="s",
            size=1,
            sha256="0" * 64,
            archive_path="a",
            now=T0,
        )
        journal.add_documents(
            file_id,
            [
                NewDocument(
                    seq=seq,
                    business_key=f"K{seq}",
                    operation="orders.create",
                    payload=None if failed else {"n": seq},
                    idempotency_key=f"inv-{batch}-{n}-{seq}",
                    state="failed" if failed else "pending",
                    error="mapping" if failed else None,
                )
                for seq, failed in enumerate(failed_at_mapping, start=1)
            ],
            now=T0,
        )
        file_ids.append(file_id)
    return file_ids


def _check(journal: Journal, file_ids: list[int], claimed_now: list[int], now: datetime) -> None:
    for file_id in file_ids:
        docs = journal.documents_of(file_id)
        unfinished = [d.seq for d in docs if d.state in UNFINISHED]
        due_first = min(unfinished) if unfinished else None
        for doc_id in claimed_now:
            doc = journal.document(doc_id)
            if doc.file_id == file_id:
                assert doc.seq == due_first, f"claimed seq {doc.seq}, first unfinished {due_first}"
    for file_id in file_ids:
        # A file whose first unfinished document is pending and unleased must offer it (the
        # probe's lease ends at once, so it changes nothing for the steps that follow).
        docs = journal.documents_of(file_id)
        unfinished = [d for d in docs if d.state in UNFINISHED]
        if (
            unfinished
            and unfinished[0].state == "pending"
            and (unfinished[0].claimed_until is None or unfinished[0].claimed_until <= now)
        ):
            offered = journal.claim_due_documents(
                now=now, node="probe", lease_seconds=0, limit=1, file_id=file_id
            )
            assert [d.id for d in offered] == [unfinished[0].id]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shapes=st.lists(st.lists(st.booleans(), min_size=1, max_size=4), min_size=1, max_size=3),
    steps=st.lists(step, max_size=30),
)
def test_only_the_first_unfinished_document_of_a_file_is_ever_claimed(
    journal: Journal, shapes: list[list[bool]], steps: list[tuple[str, int]]
) -> None:
    file_ids = _queue(journal, next(_batches), shapes)
    all_ids = [d.id for f in file_ids for d in journal.documents_of(f)]
    now = T0
    for action, pick in steps:
        doc_id = all_ids[pick % len(all_ids)]
        claimed_now: list[int] = []
        try:
            if action == "claim":
                claimed_now = [
                    d.id
                    for d in journal.claim_due_documents(
                        now=now, node="n", lease_seconds=60, limit=3
                    )
                    if d.file_id in file_ids
                ]
            elif action == "sent":
                journal.mark_sent(doc_id, now=now)
            elif action == "done":
                journal.mark_done(doc_id, now=now, status=201, object_id="x", response=None)
            elif action == "retry":
                journal.mark_retry(
                    doc_id, now=now, next_attempt_at=now + timedelta(seconds=30), reason="503"
                )
            elif action == "fail":
                journal.mark_failed(doc_id, now=now, reason="422")
            elif action == "replay":
                journal.reset_for_replay(
                    doc_id, payload={"n": 0}, operation="orders.create", now=now
                )
            else:
                now += timedelta(seconds=45)
        except StateError:
            continue  # a transition the journal refuses is fine; the invariant must still hold
        _check(journal, file_ids, claimed_now, now)
