"""Writers of several processes on one SQLite journal take turns on ``<journal>.writer``
(``edigw.journal.lock.WriterTurn``), woken by the kernel, not by SQLite's sleeping busy
handler. Another process is a real one: it holds the turn with ``flock`` for a while."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from edigw.journal import Journal
from edigw.journal.lock import WriterTurn
from tests.support.queued import received_file

HOLD = 0.6


def hold_turn(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the turn for ``seconds``; it prints once it holds it."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_turn_waits_until_another_process_lets_go(tmp_path: Path) -> None:
    turn = WriterTurn(tmp_path / "journal.sqlite")
    holder = hold_turn(turn.path, HOLD)
    started = time.monotonic()
    with turn:
        waited = time.monotonic() - started
    holder.communicate(timeout=10)
    turn.close()
    assert waited >= HOLD * 0.8


def test_the_journal_writes_in_its_turn(tmp_path: Path) -> None:
    database = tmp_path / "journal.sqlite"
    journal = Journal.open(f"sqlite:///{database}")
    try:
        received_file(journal, name="first.csv")
        holder = hold_turn(database.with_name("journal.sqlite.writer"), HOLD)
        done = threading.Event()
        writing = threading.Thread(
            target=lambda: (received_file(journal, name="second.csv"), done.set())
        )
        writing.start()
        assert not done.wait(HOLD / 3), "the write did not wait for its turn"
        holder.communicate(timeout=10)
        assert done.wait(10)
        writing.join()
        assert [row.original_name for row in journal.files()] == ["second.csv", "first.csv"]
    finally:
        journal.close()


def test_writes_go_on_without_a_turn_where_its_file_cannot_be_made(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    turn = WriterTurn(not_a_folder / "journal.sqlite")
    with turn:
        pass  # no file, no lock: SQLite's own lock still orders the writers
    assert not (not_a_folder / "journal.sqlite.writer").exists()
