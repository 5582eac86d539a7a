"""Resolutions (``edigw resolve``), file listings and where sources went, in the journal."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from edigw.journal import Journal, NewDocument, StateError, UnknownIdError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def received(
    journal: Journal,
    name: str,
    *,
    docs: tuple[str, ...] = ("pending",),
    flow: str = "orders",
    at: datetime = T0,
) -> int:
    """A file with one document per entry of ``docs`` (``pending`` or ``failed``)."""
    sha256 = hashlib.sha256(name.encode()).hexdigest()
    return journal.add_file(
        partner="webshop",
        flow=flow,
        channel="local:inbox",
        original_name=name,
        source_path=f"/in/{name}",
        size=10,
        sha256=sha256,
        archive_path=f"/archive/{sha256}",
        now=at,
        documents=[
            NewDocument(
                seq=n,
                business_key=f"{name}-{n}",
                operation="orders.create",
                payload={"n": n},
                idempotency_key=f"key-{name}-{n}",
                state=state,
                error="bad quantity" if state == "failed" else None,
            )
            for n, state in enumerate(docs, start=1)
        ],
    )


def failed_file(journal: Journal, name: str, *, at: datetime = T0) -> int:
    """A file that failed as a whole (no document: unreadable)."""
    file_id = received(journal, name, docs=(), at=at)
    journal.set_file_state(file_id, "failed", now=at, error=f"{name}: not a workbook")
    return file_id


def settle(journal: Journal, file_id: int, at: datetime = T0) -> str | None:
    return journal.finish_file_if_complete(file_id, now=at)


def test_a_resolved_file_is_no_longer_an_open_failure(journal: Journal) -> None:
    file_id = failed_file(journal, "broken.xlsx")
    assert journal.open_failures(file_id) == (True, set())

    resolution = journal.resolve_file(
        file_id, by="alice", note="partner resends it", now=T0 + timedelta(minutes=5)
    )

    assert (resolution.ref, resolution.resolved_by, resolution.note) == (
        f"F-{file_id}",
        "alice",
        "partner resends it",
    )
    assert journal.open_failures(file_id) == (False, set())
    assert journal.resolutions_of(file_id) == [resolution]
    [event] = [e for e in journal.events_of(file_id) if e.kind == "resolved"]
    assert event.detail == "by alice: partner resends it"


def test_resolving_a_file_resolves_its_failed_documents(journal: Journal) -> None:
    file_id = received(journal, "mixed.csv", docs=("failed", "failed"))
    assert settle(journal, file_id) == "failed"
    docs = journal.documents_of(file_id)
    assert journal.open_failures(file_id) == (True, {d.id for d in docs})

    journal.resolve_file(file_id, by="bob", note="known", now=T0 + timedelta(minutes=1))

    assert journal.open_failures(file_id) == (False, set())


def test_a_file_is_resolved_once_each_of_its_failed_documents_is(journal: Journal) -> None:
    file_id = received(journal, "two.csv", docs=("failed", "failed"))
    settle(journal, file_id)
    first, second = journal.documents_of(file_id)

    journal.resolve_document(first.id, by="bob", note="typo", now=T0 + timedelta(minutes=1))
    assert journal.open_failures(file_id) == (True, {second.id})

    journal.resolve_document(second.id, by="bob", note="typo", now=T0 + timedelta(minutes=2))
    assert journal.open_failures(file_id) == (False, set())


def test_a_failure_after_its_resolution_is_open_again(journal: Journal) -> None:
    file_id = received(journal, "again.csv", docs=("failed",))
    settle(journal, file_id)
    [doc] = journal.documents_of(file_id)
    journal.resolve_document(doc.id, by="bob", note="fixed", now=T0 + timedelta(minutes=1))

    journal.mark_failed(doc.id, now=T0 + timedelta(minutes=2), reason="still bad")

    assert journal.open_failures(file_id) == (True, {doc.id})


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        pytest.param(("pending",), r"is still in progress \(parsed\)", id="in-progress"),
        pytest.param((), "is done: only a failed or partially failed file", id="done"),
    ],
)
def test_only_a_failed_file_can_be_resolved(
    journal: Journal, docs: tuple[str, ...], message: str
) -> None:
    file_id = received(journal, "fine.csv", docs=docs)
    settle(journal, file_id)
    with pytest.raises(StateError, match=message):
        journal.resolve_file(file_id, by="alice", note="?", now=T0)


def test_only_a_failed_document_can_be_resolved(journal: Journal) -> None:
    file_id = received(journal, "pending.csv")
    [doc] = journal.documents_of(file_id)
    with pytest.raises(StateError, match=f"D-{doc.id} is pending: only a failed document"):
        journal.resolve_document(doc.id, by="alice", note="?", now=T0)


def test_resolving_an_unknown_id_names_it(journal: Journal) -> None:
    with pytest.raises(UnknownIdError, match="F-404 does not exist"):
        journal.resolve_file(404, by="alice", note="?", now=T0)
    with pytest.raises(UnknownIdError, match="D-404 does not exist"):
        journal.resolve_document(404, by="alice", note="?", now=T0)


def test_status_counts_resolved_failures_apart_and_leaves_them_out_of_last_errors(
    journal: Journal,
) -> None:
    resolved = failed_file(journal, "resolved.xlsx")
    open_ = failed_file(journal, "open.xlsx")
    mixed = received(journal, "mixed.csv", docs=("failed", "failed"))
    settle(journal, mixed)
    first, _ = journal.documents_of(mixed)
    journal.resolve_file(resolved, by="a", note="n", now=T0 + timedelta(minutes=1))
    journal.resolve_document(first.id, by="a", note="n", now=T0 + timedelta(minutes=1))

    [row] = journal.status_counts()

    assert (row.files_resolved, row.documents_resolved) == ({"failed": 1}, 1)
    refs = {e.ref for e in row.last_errors}
    assert f"F-{open_}" in refs
    assert f"F-{resolved}" not in refs
    assert f"D-{first.id}" not in refs


def test_file_listing_is_newest_first_with_document_counts(journal: Journal) -> None:
    older = received(journal, "commandes_20261128.csv", docs=("failed", "pending"))
    newer = received(journal, "commandes_20261129.csv", docs=("pending",))

    listing = journal.file_listing()

    assert [item.file.id for item in listing] == [newer, older]
    assert dict(listing[1].documents) == {"failed": 1, "pending": 1}
    assert not listing[1].open_failure  # still in progress: not a failure yet


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("20261128", ["commandes_20261128.csv"], id="text-anywhere"),
        pytest.param("COMMANDES_*.csv", ["commandes_20261128.csv"], id="glob-any-case"),
        pytest.param("*.xml", ["order_100%.xml"], id="suffix"),
        pytest.param("order_100%.xml", ["order_100%.xml"], id="like-characters-are-plain"),
        pytest.param("order?100*", ["order_100%.xml"], id="question-mark"),
        pytest.param("orderX100", [], id="underscore-is-not-a-wildcard"),
    ],
)
def test_file_listing_finds_files_by_name(
    journal: Journal, pattern: str, expected: list[str]
) -> None:
    received(journal, "commandes_20261128.csv")
    received(journal, "order_100%.xml")

    listing = journal.file_listing(name=pattern)

    assert [item.file.original_name for item in listing] == expected


def test_file_listing_filters_open_and_resolved_failures(journal: Journal) -> None:
    open_ = failed_file(journal, "open.xlsx")
    resolved = failed_file(journal, "resolved.xlsx")
    received(journal, "fine.csv")
    journal.resolve_file(resolved, by="a", note="n", now=T0 + timedelta(minutes=1))

    assert [i.file.id for i in journal.file_listing(resolved=False)] == [open_]
    assert [i.file.id for i in journal.file_listing(resolved=True)] == [resolved]


def test_channel_actions_keep_where_the_source_went(journal: Journal) -> None:
    file_id = failed_file(journal, "broken.xlsx")
    journal.record_channel_action(
        file_id, action="error-moved", ok=True, error=None, now=T0, target="/in/error/broken.xlsx"
    )

    [action] = journal.channel_actions(file_id=file_id)

    assert action.target == "/in/error/broken.xlsx"
    assert journal.events_of(file_id)[-1].detail == "error-moved to /in/error/broken.xlsx"


def test_a_purge_forgets_a_file_with_its_resolutions(journal: Journal) -> None:
    file_id = failed_file(journal, "broken.xlsx")
    journal.resolve_file(file_id, by="a", note="n", now=T0)
    journal.record_channel_action(file_id, action="error-moved", ok=True, error=None, now=T0)

    counts = journal.purge(file_ids=[file_id], run_ids=[])

    assert counts.files == 1
    assert journal.resolutions_of(file_id) == []


def test_latest_export_runs_gives_each_flows_last_run(journal: Journal) -> None:
    for flow in ("articles", "articles", "stock"):
        run = journal.start_export_run(
            partner="webshop", flow=flow, mode="full", window_from=None, now=T0
        )
        journal.finish_export_run(run, state="delivered", now=T0, records=1)

    latest = journal.latest_export_runs()

    assert {key: run.id for key, run in latest.items()} == {
        ("webshop", "articles"): 2,
        ("webshop", "stock"): 3,
    }
