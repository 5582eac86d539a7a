"""After a crash, a restarted gateway resumes the dead process's documents at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edigw.journal.rows import NewDocument
from edigw.journal.store import Journal
from edigw.pipeline.senders import dead_local_holders

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_only_dead_processes_of_this_host_are_judged_dead() -> None:
    holders = ["gw1:100", "gw1:200", "gw2:100", "gw1:notapid"]
    assert dead_local_holders(holders, host="gw1", alive=lambda pid: pid == 200) == ["gw1:100"]


def test_released_claims_make_documents_due_again(journal_url: str) -> None:
    journal = Journal.open(journal_url)
    try:
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name="a.csv",
            source_path="/a.csv",
            size=1,
            sha256="a" * 64,
            archive_path="",
            now=NOW,
        )
        journal.add_documents(
            file_id,
            [
                NewDocument(
                    seq=1,
                    business_key="K",
                    operation="orders.create",
                    payload={},
                    idempotency_key="key-1",
                )
            ],
            now=NOW,
        )
        [doc] = journal.claim_due_documents(now=NOW, node="gw1:100", lease_seconds=120, limit=1)
        journal.mark_sent(doc.id, now=NOW)
        later = NOW + timedelta(seconds=5)
        assert (
            journal.claim_due_documents(now=later, node="gw1:300", lease_seconds=120, limit=1) == []
        )
        assert journal.claim_holders() == ["gw1:100"]

        assert journal.release_claims(["gw1:100"], now=later) == 1

        [again] = journal.claim_due_documents(now=later, node="gw1:300", lease_seconds=120, limit=1)
        assert again.id == doc.id
        assert again.idempotency_key == "key-1"
    finally:
        journal.close()
