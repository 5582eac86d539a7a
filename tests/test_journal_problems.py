"""What the journal keeps of errors (bounded texts, full lists), of calls never sent, and of
transfers that failed before a file arrived whole; on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from edigw.errors import DataProblem
from edigw.journal import Journal, NewDocument
from edigw.model import Location
from edigw.problems import MAX_KEPT, MAX_MESSAGE, ProblemEntry, ProblemList, describe

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ABOUT_2_KB = MAX_MESSAGE + 64
CHANNEL = "sftp:acme:/out"


def bad_lines(n: int) -> list[DataProblem]:
    return [
        DataProblem(
            "'abc' is not a decimal number",
            Location("big.csv", line=i + 2, column=6, field="quantite"),
            f"/lines/{i}/quantity",
        )
        for i in range(n)
    ]


def add_file(journal: Journal, *, name: str = "big.csv", sha256: str = "a" * 64) -> int:
    return journal.add_file(
        partner="webshop",
        flow="orders",
        channel=CHANNEL,
        original_name=name,
        source_path=f"/out/{name}",
        size=10,
        sha256=sha256,
        archive_path="",
        now=T0,
    )


def failed_doc(problems: list[DataProblem], *, seq: int = 1) -> NewDocument:
    return NewDocument(
        seq=seq,
        business_key=f"BIG-{seq}",
        operation="orders.create",
        payload=None,
        idempotency_key=f"k-{seq}",
        state="failed",
        error=describe(problems),
        error_location=problems[0].location,
        problems=problems,
    )


def pending_doc(seq: int = 1) -> NewDocument:
    return NewDocument(
        seq=seq,
        business_key=f"OK-{seq}",
        operation="orders.create",
        payload={"number": f"OK-{seq}"},
        idempotency_key=f"p-{seq}",
    )


# -- bounded errors, full lists ------------------------------------------------------------------


def test_a_document_with_20000_bad_lines_stores_2_kb_of_error_and_keeps_the_full_list(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [failed_doc(bad_lines(20_000))], now=T0)

    doc = journal.document(doc_id)
    assert doc.error is not None and len(doc.error) <= ABOUT_2_KB
    assert doc.error.endswith("more problems")
    assert all(len(e.detail or "") <= ABOUT_2_KB for e in journal.events_of(file_id))
    assert journal.problem_totals(file_id) == {doc_id: 20_000}
    full = journal.problems_of(file_id)[doc_id]
    assert (full.total, len(full.entries)) == (20_000, MAX_KEPT)
    assert str(full.entries[-1]) == str(bad_lines(MAX_KEPT)[-1])


def test_a_document_whose_error_holds_all_its_problems_keeps_no_second_copy(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    journal.add_documents(file_id, [failed_doc(bad_lines(3))], now=T0)
    assert journal.problems_of(file_id) == {}


def test_an_ecolix_refusal_keeps_a_bounded_reason_and_every_field_error(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [pending_doc()], now=T0)
    journal.mark_sent(doc_id, now=T0)
    errors = ProblemList.of(
        [ProblemEntry(None, f"/lines/{i}/article_code", "unknown article") for i in range(5_000)]
    )
    journal.mark_failed(doc_id, now=T0, reason="refused: " + "x; " * 1_000_000, problems=errors)

    doc = journal.document(doc_id)
    assert doc.error is not None and len(doc.error) <= MAX_MESSAGE
    assert journal.problems_of(file_id)[doc_id] == errors


def test_a_replayed_document_forgets_its_full_list(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [failed_doc(bad_lines(500))], now=T0)
    journal.reset_for_replay(doc_id, payload={"number": "BIG-1"}, operation="orders.create", now=T0)
    assert journal.problem_totals(file_id) == {}


def test_a_file_failing_as_a_whole_keeps_its_full_list(journal: Journal) -> None:
    file_id = add_file(journal)
    problems = bad_lines(12_000)
    journal.set_file_state(
        file_id, "failed", now=T0, error="big.csv: " + describe(problems), problems=problems
    )
    row = journal.file(file_id)
    assert row.error is not None and len(row.error) <= ABOUT_2_KB
    assert journal.problems_of(file_id)[None].total == 12_000


def test_every_error_text_the_journal_stores_is_bounded(journal: Journal) -> None:
    huge = "cannot move: " + "no space left; " * 500_000
    file_id = add_file(journal)
    journal.record_channel_action(file_id, action="moved", ok=False, error=huge, now=T0)
    journal.set_file_state(file_id, "failed", now=T0, error=huge)
    run_id = journal.start_export_run(
        partner="webshop", flow="stock", mode="full", window_from=None, now=T0
    )
    journal.finish_export_run(run_id, state="failed", now=T0, error=huge)

    assert len(journal.file(file_id).error or "") <= MAX_MESSAGE
    assert len(journal.channel_actions(file_id=file_id)[0].error or "") <= MAX_MESSAGE
    assert len(journal.export_run(run_id).error or "") <= MAX_MESSAGE
    assert all(len(e.detail or "") <= MAX_MESSAGE for e in journal.events_of(file_id))
    status = journal.status_counts()
    assert all(len(e.message) <= MAX_MESSAGE for row in status for e in row.last_errors)


def test_no_error_text_the_journal_stores_holds_a_control_character(journal: Journal) -> None:
    # PostgreSQL refuses NUL in text: an error quoting a partner's bytes must not be refused
    # in turn (it would be recorded again at every poll, and never stored).
    raw = "CMD\x00-1 \x1b[31m caf\udce9\r"
    shown = "CMD\\x00-1 \\x1b[31m caf\\udce9\\x0d"
    file_id = add_file(journal)
    [failed, sent] = journal.add_documents(
        file_id,
        [
            replace(failed_doc(bad_lines(1)), error=raw),
            pending_doc(seq=2),
        ],
        now=T0,
    )
    journal.mark_sent(sent, now=T0)
    journal.mark_failed(sent, now=T0, reason=raw)
    journal.record_channel_action(file_id, action="moved", ok=False, error=raw, now=T0)
    many = [DataProblem(raw)] * 200  # more than the error text holds: the list is kept
    journal.set_file_state(file_id, "failed", now=T0, error=raw, problems=many)
    run_id = journal.start_export_run(
        partner="webshop", flow="stock", mode="full", window_from=None, now=T0
    )
    journal.finish_export_run(run_id, state="failed", now=T0, error=raw)

    assert journal.file(file_id).error == shown
    assert journal.document(failed).error == shown
    assert journal.document(sent).error == shown
    assert journal.channel_actions(file_id=file_id)[0].error == shown
    assert journal.export_run(run_id).error == shown
    assert all("\x00" not in (e.detail or "") for e in journal.events_of(file_id))
    kept = journal.problems_of(file_id)[None]
    assert (kept.total, str(kept.entries[0])) == (200, shown)


def test_purge_forgets_the_full_lists_with_their_files(journal: Journal) -> None:
    file_id = add_file(journal)
    journal.add_documents(file_id, [failed_doc(bad_lines(500))], now=T0)
    journal.record_channel_action(file_id, action="moved", ok=True, error=None, now=T0)
    journal.purge(file_ids=[file_id], run_ids=[])
    assert journal.problem_totals(file_id) == {}


def test_an_upgraded_journal_has_its_huge_errors_cut(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        config = Journal._alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.exec_driver_sql(
            "INSERT INTO files (id, partner, flow, channel, original_name, source_path, size,"
            " sha256, archive_path, state, error, received_at, updated_at) VALUES (1, 'p', 'f',"
            " 'c', 'a.csv', 's', 1, 'h', 'a', 'failed', ?, '2026-01-01 00:00:00',"
            " '2026-01-01 00:00:00')",
            ("x" * 13_000_000,),
        )
    engine.dispose()

    with Journal.open(url) as journal:
        error = journal.file(1).error or ""
    assert len(error) < 2100
    assert error.endswith("(cut to 2000 characters when the journal was upgraded)")


# -- calls never sent ----------------------------------------------------------------------------


def test_a_call_never_sent_waits_like_a_retry_without_counting_an_attempt(
    journal: Journal,
) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [pending_doc()], now=T0)
    for n in range(1, 4):
        now = T0 + timedelta(minutes=n)
        claimed = journal.claim_for_sending(now=now, node="gw:1", lease_seconds=60)
        assert claimed is not None and claimed.attempts == 1
        journal.mark_retry(
            doc_id, now=now, next_attempt_at=now, reason="cannot reach Ecolix", sent=False
        )

    doc = journal.document(doc_id)
    assert (doc.state, doc.attempts, doc.not_sent) == ("retry_wait", 0, 3)
    assert doc.claimed_by is None
    [*_, last] = journal.events_of_document(doc_id)
    assert "not sent, no attempt counted" in (last.detail or "")


def test_a_replayed_document_starts_its_tries_afresh(journal: Journal) -> None:
    file_id = add_file(journal)
    [doc_id] = journal.add_documents(file_id, [pending_doc()], now=T0)
    journal.claim_for_sending(now=T0, node="gw:1", lease_seconds=60)
    journal.mark_retry(doc_id, now=T0, next_attempt_at=T0, reason="down", sent=False)
    journal.claim_for_sending(now=T0, node="gw:1", lease_seconds=60)
    journal.mark_failed(doc_id, now=T0, reason="refused")
    journal.reset_for_replay(doc_id, payload={"number": "OK-1"}, operation="orders.create", now=T0)
    doc = journal.document(doc_id)
    assert (doc.attempts, doc.not_sent) == (0, 0)


# -- transfers cut, then fetched -----------------------------------------------------------------


def failed_transfer(journal: Journal, name: str = "big.bin") -> int:
    """What the poller journals for a download cut midway: a file with no bytes, failed."""
    file_id = journal.add_file(
        partner="webshop",
        flow="orders",
        channel=CHANNEL,
        original_name=name,
        source_path=name,
        size=0,
        sha256="",
        archive_path="",
        now=T0,
    )
    journal.set_file_state(
        file_id, "failed", now=T0, error=f"{name}: download failed, will fetch again"
    )
    return file_id


def test_a_file_taken_in_whole_resolves_its_failed_transfers(journal: Journal) -> None:
    cut_1, cut_2 = failed_transfer(journal), failed_transfer(journal)
    fetched = add_file(journal, name="big.bin")

    assert [journal.file(f).state for f in (cut_1, cut_2)] == ["superseded", "superseded"]
    assert journal.file(cut_1).error == "big.bin: download failed, will fetch again"
    assert journal.events_of(cut_1)[-1].detail == f"taken in whole as F-{fetched}"
    assert any(
        e.kind == "resolves" and f"F-{cut_1}" in (e.detail or "")
        for e in journal.events_of(fetched)
    )
    [row] = journal.status_counts()
    assert row.files == {"superseded": 2, "received": 1}
    assert row.last_errors == ()


def test_a_file_of_another_name_or_flow_resolves_nothing(journal: Journal) -> None:
    cut = failed_transfer(journal)
    add_file(journal, name="other.bin")
    journal.add_file(
        partner="webshop",
        flow="invoices",
        channel=CHANNEL,
        original_name="big.bin",
        source_path="big.bin",
        size=1,
        sha256="b" * 64,
        archive_path="",
        now=T0,
    )
    assert journal.file(cut).state == "failed"


def test_a_failed_file_moved_to_the_error_folder_is_not_superseded_by_a_new_upload(
    journal: Journal,
) -> None:
    too_large = failed_transfer(journal)
    journal.record_channel_action(too_large, action="error-moved", ok=True, error=None, now=T0)
    add_file(journal, name="big.bin")
    assert journal.file(too_large).state == "failed"


def test_a_superseded_row_can_be_purged(journal: Journal) -> None:
    cut = failed_transfer(journal)
    add_file(journal, name="big.bin")
    later = T0 + timedelta(days=200)
    assert cut in journal.purgeable_files(before=later, states=["superseded"])
