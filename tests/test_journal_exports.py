"""Export runs, delta cursors, file sequences, SFTP memory and channel actions in the journal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from edigw.journal import Journal, UnknownIdError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_export_run_starts_running_and_finishes_delivered_with_its_figures(
    journal: Journal,
) -> None:
    run_id = journal.start_export_run(
        partner="webshop", flow="articles", mode="delta", window_from=T0, now=T0
    )
    assert journal.export_run(run_id).state == "running"

    journal.finish_export_run(
        run_id,
        state="delivered",
        now=T0 + timedelta(seconds=3),
        window_to=T0 + timedelta(seconds=1),
        records=250,
        calls=1,
        file_name="webshop_articles_00001.csv",
        sha256="a" * 64,
        archive_path="/archive/aa/aa/" + "a" * 64,
    )

    run = journal.export_run(run_id)
    assert (run.state, run.records, run.calls, run.file_name) == (
        "delivered",
        250,
        1,
        "webshop_articles_00001.csv",
    )
    assert (run.window_from, run.window_to) == (T0, T0 + timedelta(seconds=1))
    assert run.finished_at == T0 + timedelta(seconds=3)
    assert run.ref == f"R-{run_id}"


def test_a_failed_export_run_keeps_its_error(journal: Journal) -> None:
    run_id = journal.start_export_run(
        partner="webshop", flow="stock", mode="full", window_from=None, now=T0
    )

    journal.finish_export_run(run_id, state="failed", now=T0, error="sftp acme: connection refused")

    run = journal.export_run(run_id)
    assert (run.state, run.error, run.window_from) == (
        "failed",
        "sftp acme: connection refused",
        None,
    )


def test_an_export_run_cannot_finish_running(journal: Journal) -> None:
    run_id = journal.start_export_run(partner="w", flow="a", mode="full", window_from=None, now=T0)
    with pytest.raises(ValueError, match="not running"):
        journal.finish_export_run(run_id, state="running", now=T0)


def test_an_unknown_export_run_is_named(journal: Journal) -> None:
    with pytest.raises(UnknownIdError, match="R-77"):
        journal.export_run(77)
    with pytest.raises(UnknownIdError, match="R-77"):
        journal.finish_export_run(77, state="empty", now=T0)


def test_export_runs_are_listed_newest_first_per_flow(journal: Journal) -> None:
    a = journal.start_export_run(
        partner="w", flow="articles", mode="full", window_from=None, now=T0
    )
    b = journal.start_export_run(partner="w", flow="stock", mode="full", window_from=None, now=T0)
    c = journal.start_export_run(partner="w", flow="articles", mode="delta", window_from=T0, now=T0)

    assert [r.id for r in journal.export_runs()] == [c, b, a]
    assert [r.id for r in journal.export_runs(flow="articles")] == [c, a]
    assert [r.id for r in journal.export_runs(partner="w", flow="articles", limit=1)] == [c]


def test_a_flow_never_exported_has_no_cursor(journal: Journal) -> None:
    assert journal.cursor("webshop", "articles") is None


def test_the_cursor_only_moves_forward(journal: Journal) -> None:
    journal.advance_cursor("webshop", "articles", T0, now=T0)
    journal.advance_cursor("webshop", "articles", T0 + timedelta(hours=1), now=T0)
    journal.advance_cursor("webshop", "articles", T0 + timedelta(minutes=5), now=T0)

    assert journal.cursor("webshop", "articles") == T0 + timedelta(hours=1)
    assert journal.cursor("webshop", "stock") is None


def test_a_reset_cursor_starts_over(journal: Journal) -> None:
    journal.advance_cursor("webshop", "articles", T0, now=T0)
    journal.reset_cursor("webshop", "articles")
    assert journal.cursor("webshop", "articles") is None


def test_sequences_count_per_flow_from_one(journal: Journal) -> None:
    assert [journal.next_sequence("w", "articles") for _ in range(3)] == [1, 2, 3]
    assert journal.next_sequence("w", "stock") == 1


def test_concurrent_sequence_numbers_are_all_distinct(journal: Journal) -> None:
    taken: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            n = journal.next_sequence("w", "articles")
            with lock:
                taken.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(taken) == list(range(1, 41))


def test_a_remote_file_is_seen_while_its_size_and_mtime_are_unchanged(journal: Journal) -> None:
    journal.remember_remote_file(
        channel="acme:/out",
        path="/out/a.csv",
        size=10,
        mtime=1700000000.0,
        sha256="b" * 64,
        file_id=None,
        now=T0,
    )

    assert journal.remote_file_seen(
        channel="acme:/out", path="/out/a.csv", size=10, mtime=1700000000.0
    )
    assert not journal.remote_file_seen(
        channel="acme:/out", path="/out/a.csv", size=11, mtime=1700000000.0
    )
    assert not journal.remote_file_seen(
        channel="acme:/out", path="/out/a.csv", size=10, mtime=1700000001.0
    )
    assert not journal.remote_file_seen(
        channel="other:/out", path="/out/a.csv", size=10, mtime=1700000000.0
    )


def test_a_touched_remote_file_is_recognised_by_its_hash(journal: Journal) -> None:
    journal.remember_remote_file(
        channel="acme:/out",
        path="/out/a.csv",
        size=10,
        mtime=1.0,
        sha256="b" * 64,
        file_id=None,
        now=T0,
    )

    assert journal.remote_file_seen_with_hash(
        channel="acme:/out", path="/out/a.csv", sha256="b" * 64
    )
    assert not journal.remote_file_seen_with_hash(
        channel="acme:/out", path="/out/a.csv", sha256="c" * 64
    )


def test_remembering_a_new_version_replaces_the_old_one(journal: Journal) -> None:
    journal.remember_remote_file(
        channel="acme:/out",
        path="/out/a.csv",
        size=10,
        mtime=1.0,
        sha256="b" * 64,
        file_id=None,
        now=T0,
    )
    journal.remember_remote_file(
        channel="acme:/out",
        path="/out/a.csv",
        size=12,
        mtime=2.0,
        sha256="c" * 64,
        file_id=None,
        now=T0,
    )

    assert journal.remote_file_seen(channel="acme:/out", path="/out/a.csv", size=12, mtime=2.0)
    assert not journal.remote_file_seen(channel="acme:/out", path="/out/a.csv", size=10, mtime=1.0)
    assert not journal.remote_file_seen_with_hash(
        channel="acme:/out", path="/out/a.csv", sha256="b" * 64
    )


def _file(journal: Journal, sha: str = "d" * 64) -> int:
    return journal.add_file(
        partner="w",
        flow="o",
        channel="sftp:acme",
        original_name="a.csv",
        source_path="/out/a.csv",
        size=1,
        sha256=sha,
        archive_path="/a",
        now=T0,
    )


def test_failed_channel_actions_are_listed_for_the_operator(journal: Journal) -> None:
    file_id = _file(journal)
    journal.record_channel_action(
        file_id, action="move to /out/done", ok=False, error="permission denied", now=T0
    )
    journal.record_channel_action(file_id, action="delete", ok=True, error=None, now=T0)

    failed = journal.channel_actions(failed_only=True)

    assert [(a.file_id, a.action, a.ok, a.error) for a in failed] == [
        (file_id, "move to /out/done", False, "permission denied")
    ]
    assert len(journal.channel_actions(file_id=file_id)) == 2


def test_a_source_is_disposed_only_after_a_successful_channel_action(journal: Journal) -> None:
    file_id = _file(journal)
    assert not journal.source_disposed(file_id)
    journal.record_channel_action(file_id, action="move", ok=False, error="busy", now=T0)
    assert not journal.source_disposed(file_id)
    journal.record_channel_action(file_id, action="move", ok=True, error=None, now=T0)
    assert journal.source_disposed(file_id)


def test_the_latest_file_with_the_same_content_is_found_whatever_its_state(
    journal: Journal,
) -> None:
    first = _file(journal)
    second = _file(journal)
    _file(journal, sha="f" * 64)

    found = journal.latest_file_by_hash(partner="w", flow="o", sha256="d" * 64)

    assert found is not None and found.id == second != first
    assert journal.latest_file_by_hash(partner="w", flow="other", sha256="d" * 64) is None


def test_a_whole_listing_is_looked_up_in_the_remote_files_memory_at_once(
    journal: Journal,
) -> None:
    for n in range(1_201):  # more than two batches of SEEN_BATCH paths
        journal.remember_remote_file(
            channel="acme:/in",
            path=f"/in/{n}.csv",
            size=n,
            mtime=1700000000.5,
            sha256="c" * 64,
            file_id=None,
            now=T0,
        )
    listing = {f"/in/{n}.csv": (n, 1700000000.5) for n in range(1_201)}
    listing["/in/7.csv"] = (8, 1700000000.5)  # another size since
    listing["/in/9.csv"] = (9, 1700000001.5)  # another mtime since
    listing["/in/new.csv"] = (3, 1700000000.5)  # never remembered

    seen = journal.remote_files_seen(channel="acme:/in", versions=listing)

    assert seen == {f"/in/{n}.csv" for n in range(1_201)} - {"/in/7.csv", "/in/9.csv"}
    assert journal.remote_files_seen(channel="other:/in", versions=listing) == set()
    assert journal.remote_files_seen(channel="acme:/in", versions={}) == set()
