"""Retention: old finished exchanges are forgotten, whole, and nothing still needed goes."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edigw.errors import JournalError
from edigw.journal import FolderArchive, Journal, NewDocument

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=200)
SETTLED = ("done", "skipped_duplicate")


def exchange(
    journal: Journal,
    name: str,
    *,
    at: datetime = T0,
    state: str = "done",
    content: str | None = None,
    disposed: bool = True,
) -> int:
    """A file received at ``at`` with one document, finished in ``state``."""
    sha256 = hashlib.sha256((content or name).encode()).hexdigest()
    file_id = journal.add_file(
        partner="webshop",
        flow="orders",
        channel="local:inbox",
        original_name=name,
        source_path=f"/in/{name}",
        size=10,
        sha256=sha256,
        archive_path=f"/archive/{sha256}",
        now=at,
        documents=[
            NewDocument(
                seq=1,
                business_key=f"W-{name}",
                operation="orders.create",
                payload={"external_reference": name},
                idempotency_key=f"key-{name}",
            )
        ],
    )
    journal.set_file_state(file_id, state, now=at)
    if disposed:
        journal.record_channel_action(file_id, action="moved", ok=True, error=None, now=at)
    return file_id


def test_old_done_files_are_forgotten_with_their_documents_and_events(journal: Journal) -> None:
    old = exchange(journal, "old.csv")
    recent = exchange(journal, "recent.csv", at=LATER)

    ids = journal.purgeable_files(before=LATER, states=SETTLED)
    counts = journal.purge(file_ids=ids, run_ids=[])

    assert ids == [old]
    assert (counts.files, counts.documents) == (1, 1)
    assert counts.events >= 2  # the file's own story went with it
    assert [f.id for f in journal.files()] == [recent]
    assert journal.events_of(old) == []


def test_files_not_finished_failed_or_with_their_source_in_place_are_kept(
    journal: Journal,
) -> None:
    exchange(journal, "waiting.csv", state="parsed")
    failed = exchange(journal, "failed.csv", state="failed")
    exchange(journal, "stuck.csv", disposed=False)  # its move failed: it may be taken again

    assert journal.purgeable_files(before=LATER, states=SETTLED) == []
    assert journal.purgeable_files(before=LATER, states=(*SETTLED, "failed")) == [failed]


def test_only_finished_states_can_be_asked_for(journal: Journal) -> None:
    with pytest.raises(JournalError, match="only finished files"):
        journal.purgeable_files(before=LATER, states=("parsed",))


def test_an_old_reception_stays_while_a_later_reception_of_the_same_bytes_stays(
    journal: Journal,
) -> None:
    first = exchange(journal, "a.csv", content="same bytes")
    second = exchange(journal, "a-again.csv", content="same bytes", at=LATER)

    assert journal.purgeable_files(before=LATER, states=SETTLED) == []
    assert journal.purgeable_files(before=LATER + timedelta(days=1), states=SETTLED) == [
        first,
        second,
    ]


def test_the_memory_of_files_left_on_a_server_outlives_their_journal_entry(
    journal: Journal,
) -> None:
    file_id = exchange(journal, "left.csv")
    journal.remember_remote_file(
        channel="sftp:acme:/out",
        path="/out/left.csv",
        size=10,
        mtime=1.0,
        sha256="a" * 64,
        file_id=file_id,
        now=T0,
    )
    journal.purge(file_ids=[file_id], run_ids=[])

    assert journal.remote_file_seen(
        channel="sftp:acme:/out", path="/out/left.csv", size=10, mtime=1.0
    )


def test_contents_in_use_leave_out_what_is_about_to_be_forgotten(journal: Journal) -> None:
    old = exchange(journal, "old.csv")
    exchange(journal, "kept.csv", at=LATER)

    used = journal.contents_in_use(except_files=[old])

    assert used == {hashlib.sha256(b"kept.csv").hexdigest()}


def test_old_copies_nothing_points_at_are_deleted_and_the_rest_kept(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    kept = archive.store_bytes(b"kept")
    gone = archive.store_bytes(b"gone")
    fresh = archive.store_bytes(b"fresh, not journalled yet")
    now = time.time()
    for copy in (kept, gone):
        os.utime(copy.path, (now - 7200, now - 7200))

    would = archive.remove_unreferenced({kept.sha256}, untouched_for=3600, now=now, dry_run=True)
    assert would == (1, 4) and gone.path.exists()
    done = archive.remove_unreferenced({kept.sha256}, untouched_for=3600, now=now)

    assert done == (1, 4)
    assert not gone.path.exists() and not gone.path.parent.exists()  # empty folders go too
    assert kept.path.exists() and fresh.path.exists()


def test_storing_content_already_archived_marks_it_in_use_again(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    copy = archive.store_bytes(b"received again")
    os.utime(copy.path, (1.0, 1.0))

    archive.store_bytes(b"received again")

    assert archive.remove_unreferenced(set(), untouched_for=3600, now=time.time()) == (0, 0)
    assert copy.path.exists()


def _newest_ids(journal: Journal, file_id: int, run_id: int) -> tuple[int, int, int, int]:
    """The ids of a file, its last document, its last event and an export run."""
    return (
        file_id,
        max(d.id for d in journal.documents_of(file_id)),
        max(e.id for e in journal.events_of(file_id)),
        run_id,
    )


def _finished_run(journal: Journal, at: datetime) -> int:
    run_id = journal.start_export_run(
        partner="webshop", flow="stock", mode="full", window_from=None, now=at
    )
    journal.finish_export_run(run_id, state="empty", now=at, window_to=at, records=0, calls=0)
    return run_id


def test_ids_of_the_newest_rows_purged_are_never_handed_out_again(journal: Journal) -> None:
    exchange(journal, "older.csv")
    newest = exchange(journal, "newest.csv")
    before = _newest_ids(journal, newest, _finished_run(journal, T0))

    journal.purge(
        file_ids=journal.purgeable_files(before=LATER, states=SETTLED),
        run_ids=journal.old_export_runs(before=LATER),
    )
    assert journal.files() == []
    after = _newest_ids(
        journal, exchange(journal, "next.csv", at=LATER), _finished_run(journal, LATER)
    )

    assert all(new > old for new, old in zip(after, before, strict=True)), (before, after)
