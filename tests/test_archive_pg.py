"""The archive in the journal's PostgreSQL database: large objects streamed in chunks, read
by any node, whatever its local disk holds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edigw.errors import ChannelError, JournalError
from edigw.journal import ArchiveMissingCopy, Journal
from edigw.journal.archive_pg import PostgresArchive

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def database(postgres_url: str) -> str:
    """A journal schema migrated to head (archive_objects included)."""
    Journal.open(postgres_url).close()
    return postgres_url


@pytest.fixture
def archive(database: str, tmp_path: Path) -> Iterator[PostgresArchive]:
    opened = PostgresArchive(database, tmp_path / "node-1" / "archive-cache")
    yield opened
    opened.close()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_stored_file_reads_back_byte_for_byte(archive: PostgresArchive, tmp_path: Path) -> None:
    data = "Référence;Quantité\nA-1;3\n".encode("cp1252")

    stored = archive.store(write(tmp_path / "orders.csv", data))

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert stored.location.startswith("postgresql:large-object/")
    with archive.open(stored.sha256) as stream:
        assert stream.read() == data
    assert archive.exists(stored.sha256)
    assert archive.verify(stored.sha256)


def test_another_node_with_an_empty_disk_reads_the_copy(
    archive: PostgresArchive, database: str, tmp_path: Path
) -> None:
    data = b"<Order><Id>42</Id></Order>"
    stored = archive.store_bytes(data)
    other = PostgresArchive(database, tmp_path / "node-2" / "archive-cache")
    try:
        copy = other.local_copy(stored.sha256)
    finally:
        other.close()

    assert copy.read_bytes() == data
    assert copy.is_relative_to(tmp_path / "node-2")


def test_the_same_content_stored_twice_is_kept_once(
    archive: PostgresArchive, database: str, tmp_path: Path
) -> None:
    first = archive.store(write(tmp_path / "monday.csv", b"same bytes"))
    other = PostgresArchive(database, tmp_path / "node-2" / "archive-cache")
    try:
        second = other.store(write(tmp_path / "tuesday.csv", b"same bytes"))
    finally:
        other.close()

    assert second.location == first.location
    assert archive.remove_unreferenced(set(), untouched_for=0, now=9e9, dry_run=True) == (1, 10)


def test_a_content_that_does_not_match_the_expected_hash_is_refused(
    archive: PostgresArchive,
) -> None:
    with pytest.raises(JournalError, match=r"expected 0{64}"):
        archive.store_bytes(b"abc", expected_sha256="0" * 64)
    assert not archive.exists(hashlib.sha256(b"abc").hexdigest())


def test_a_source_that_cannot_be_read_is_a_channel_error(
    archive: PostgresArchive, tmp_path: Path
) -> None:
    with pytest.raises(ChannelError, match="cannot read"):
        archive.store(tmp_path / "gone.csv")


def test_a_missing_object_is_named_in_one_line(archive: PostgresArchive) -> None:
    with pytest.raises(ArchiveMissingCopy) as caught:
        archive.local_copy("ab" * 32)
    assert str(caught.value) == f"its archived copy {'ab' * 32} in the journal database is missing"


def test_purge_removes_the_objects_nothing_points_at_and_keeps_the_others(
    archive: PostgresArchive, tmp_path: Path
) -> None:
    kept = archive.store_bytes(b"still in the journal")
    dropped = archive.store_bytes(b"forgotten")

    assert archive.remove_unreferenced({kept.sha256}, untouched_for=0, now=9e9) == (1, 9)

    assert archive.exists(kept.sha256)
    assert not archive.exists(dropped.sha256)
    with pytest.raises(ArchiveMissingCopy):
        archive.local_copy(dropped.sha256)


def test_purge_leaves_recently_stored_objects_alone(archive: PostgresArchive) -> None:
    stored = archive.store_bytes(b"being taken in")
    assert archive.remove_unreferenced(set(), untouched_for=3600, now=time.time()) == (0, 0)
    assert archive.exists(stored.sha256)


_STREAMED = """
import json, os, sys, tracemalloc
from pathlib import Path
from edigw.journal.archive_pg import PostgresArchive

url, source, cache = sys.argv[1:4]
archive = PostgresArchive(url, Path(cache))
archive.exists("0" * 64)  # connected: the baseline includes the driver
other = PostgresArchive(url, Path(cache + "-node-2"))
other.exists("0" * 64)
def status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)

# The peak mark starts from now (a process started by fork/exec inherits its parent's
# ru_maxrss, which would hide growth): grown = peak while storing and reading - resident now.
Path("/proc/self/clear_refs").write_text("5")
before = status_kib("VmRSS")
tracemalloc.start()
stored = archive.store(Path(source))
copy = other.local_copy(stored.sha256)
peak = tracemalloc.get_traced_memory()[1]
after = status_kib("VmHWM")
print(json.dumps({
    "sha256": stored.sha256, "copy": str(copy), "grew_kib": after - before,
    "python_peak_kib": peak // 1024,
}))
"""


def test_a_50_mb_file_is_streamed_in_and_out_in_little_memory(
    database: str, tmp_path: Path
) -> None:
    size = 50 * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)

    # A process of its own: its peak resident memory is the store's and the read-back's.
    done = subprocess.run(
        [sys.executable, "-c", _STREAMED, database, str(source), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    assert result["sha256"] == digest.hexdigest()
    assert Path(result["copy"]).stat().st_size == size
    # Whole in memory would be 50 MiB at least; chunks of 1 MiB stay far below.
    print(
        f"50 MiB stored and read back: peak RSS grew {result['grew_kib']} KiB, "
        f"Python allocations peaked at {result['python_peak_kib']} KiB"
    )
    assert result["grew_kib"] < 16 * 1024, result
    assert result["python_peak_kib"] < 8 * 1024, result
