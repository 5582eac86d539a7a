"""One gateway per SQLite journal: a second one is refused at start, naming the journal and the
running gateway's pid; the lock goes with the process that holds it, however it ends."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edigw.errors import JournalError
from edigw.filemodes import FileModes
from edigw.journal import Journal
from edigw.journal.lock import lock_path


def test_a_second_gateway_on_the_same_sqlite_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    first, second = Journal.open(f"sqlite:///{path}"), Journal.open(f"sqlite:///{path}")
    try:
        first.lock_for_gateway()
        with pytest.raises(JournalError) as refused:
            second.lock_for_gateway()
    finally:
        first.close()
        second.close()
    assert str(refused.value) == (
        f"another gateway (pid {os.getpid()}) is running on the journal {path}: stop it "
        "first; one `edigw run` per SQLite journal (use PostgreSQL for several nodes)"
    )


def test_the_lock_is_released_when_the_journal_is_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    first = Journal.open(url)
    first.lock_for_gateway()
    first.lock_for_gateway()  # holding it already: nothing to do
    first.close()
    second = Journal.open(url)
    try:
        second.lock_for_gateway()
    finally:
        second.close()


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_the_lock_file_has_the_journals_file_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "journal.sqlite"
    previous = os.umask(0)  # every mode seen is the one edigw chose
    try:
        journal = Journal.open(f"sqlite:///{path}", modes=FileModes(mode))
        try:
            journal.lock_for_gateway()
        finally:
            journal.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(lock_path(path).stat().st_mode) == stat.S_IMODE(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_the_lock_of_a_killed_gateway_is_gone_with_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    Journal.open(url).close()
    script = textwrap.dedent(
        f"""
        import time
        from edigw.journal import Journal
        journal = Journal.open({url!r})
        journal.lock_for_gateway()
        print("locked", flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == b"locked"
            journal = Journal.open(url)
            try:
                with pytest.raises(JournalError, match=f"pid {holder.pid}"):
                    journal.lock_for_gateway()
                holder.send_signal(signal.SIGKILL)
                holder.wait(timeout=30)
                journal.lock_for_gateway()
            finally:
                journal.close()
        finally:
            holder.kill()


@pytest.mark.postgres
def test_postgresql_journals_are_shared_by_several_gateways(postgres_url: str) -> None:
    first, second = Journal.open(postgres_url), Journal.open(postgres_url)
    try:
        first.lock_for_gateway()
        second.lock_for_gateway()
    finally:
        first.close()
        second.close()
