"""The archive keeps every original byte for byte, at its content address, durably."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from edigw.errors import ChannelError, JournalError
from edigw.journal import ArchiveMissingCopy, FolderArchive
from edigw.journal.archive import CHUNK


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_stored_file_lives_at_its_content_address(tmp_path: Path) -> None:
    data = "Référence;Quantité\nA-1;3\n".encode("cp1252")
    sha = hashlib.sha256(data).hexdigest()
    archive = FolderArchive(tmp_path / "archive")

    stored = archive.store(write(tmp_path / "orders.csv", data))

    assert stored.sha256 == sha
    assert stored.size == len(data)
    assert stored.path == tmp_path / "archive" / sha[:2] / sha[2:4] / sha
    assert stored.path.read_bytes() == data
    assert archive.path_of(sha) == stored.path


def test_the_source_is_left_untouched(tmp_path: Path) -> None:
    source = write(tmp_path / "orders.csv", b"a;b\n")
    FolderArchive(tmp_path / "archive").store(source)
    assert source.read_bytes() == b"a;b\n"


def test_archived_files_are_read_only(tmp_path: Path) -> None:
    stored = FolderArchive(tmp_path / "archive").store(write(tmp_path / "a", b"x"))
    assert stat.S_IMODE(stored.path.stat().st_mode) & 0o222 == 0


def test_storing_the_same_content_twice_is_idempotent(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    first = archive.store(write(tmp_path / "monday.csv", b"same bytes"))
    inode = first.path.stat().st_ino

    second = archive.store(write(tmp_path / "tuesday.csv", b"same bytes"))

    assert second == first
    assert second.path.stat().st_ino == inode
    assert list((tmp_path / "archive" / ".tmp").iterdir()) == []


def test_different_content_gets_different_addresses(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    a = archive.store(write(tmp_path / "a", b"one"))
    b = archive.store(write(tmp_path / "b", b"two"))
    assert a.path != b.path
    assert a.path.read_bytes() == b"one" and b.path.read_bytes() == b"two"


def test_a_damaged_archived_copy_is_repaired_when_the_content_is_stored_again(
    tmp_path: Path,
) -> None:
    archive = FolderArchive(tmp_path / "archive")
    stored = archive.store(write(tmp_path / "a", b"precious"))
    stored.path.chmod(0o644)
    stored.path.write_bytes(b"bit rot!")
    assert not archive.verify(stored.sha256)

    again = archive.store(write(tmp_path / "b", b"precious"))

    assert again.path.read_bytes() == b"precious"
    assert archive.verify(stored.sha256)


def test_a_large_file_is_streamed_in_chunks_and_hashed_whole(tmp_path: Path) -> None:
    block = os.urandom(CHUNK)
    source = tmp_path / "big.xml"
    with source.open("wb") as out:
        for _ in range(5):
            out.write(block)
        out.write(b"tail")
    expected = hashlib.sha256(block * 5 + b"tail").hexdigest()

    stored = FolderArchive(tmp_path / "archive").store(source)

    assert stored.sha256 == expected
    assert stored.size == 5 * CHUNK + 4


def test_an_empty_file_is_archived_too(tmp_path: Path) -> None:
    stored = FolderArchive(tmp_path / "archive").store(write(tmp_path / "empty.csv", b""))
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert stored.size == 0


def test_open_reads_back_the_archived_bytes(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    stored = archive.store(write(tmp_path / "a", b"<Order/>"))
    with archive.open(stored.sha256) as stream:
        assert stream.read() == b"<Order/>"


def test_opening_unknown_content_is_a_journal_error_naming_the_copy(tmp_path: Path) -> None:
    with pytest.raises(ArchiveMissingCopy, match=r"archived copy .*/00/00/0{64} is missing"):
        FolderArchive(tmp_path / "archive").open("0" * 64)
    with pytest.raises(JournalError, match=r"archived copy .*/00/00/0{64} is missing"):
        FolderArchive(tmp_path / "archive").local_copy("0" * 64)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABCDEF" + "0" * 58, "0" * 63])
def test_only_sha256_digests_address_the_archive(tmp_path: Path, bad: str) -> None:
    with pytest.raises(JournalError, match="not a sha256"):
        FolderArchive(tmp_path / "archive").path_of(bad)


def test_a_missing_source_is_a_channel_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match=r"cannot read .*gone\.csv"):
        FolderArchive(tmp_path / "archive").store(tmp_path / "gone.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_source_is_a_channel_error(tmp_path: Path) -> None:
    source = write(tmp_path / "locked.csv", b"x")
    source.chmod(0)
    with pytest.raises(ChannelError, match=r"locked\.csv"):
        FolderArchive(tmp_path / "archive").store(source)


def test_a_hash_other_than_expected_is_refused_and_nothing_is_archived(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    with pytest.raises(JournalError, match="expected " + "f" * 64):
        archive.store(write(tmp_path / "a", b"data"), expected_sha256="f" * 64)
    assert not archive.exists(hashlib.sha256(b"data").hexdigest())
    assert list((tmp_path / "archive" / ".tmp").iterdir()) == []


def test_a_source_growing_while_archived_is_refused(tmp_path: Path) -> None:
    """A partner still writing: the copy would be a torn file, so it is not archived."""
    source = write(tmp_path / "slow.csv", b"x" * (3 * CHUNK))
    archive = FolderArchive(tmp_path / "archive")
    real_open = Path.open

    def open_and_append(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        stream = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        if self == source:
            with real_open(source, "ab") as writer:
                writer.write(b"more lines\n")
        return stream

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", open_and_append)
        with pytest.raises(ChannelError, match="changed while it was being archived"):
            archive.store(source)
    assert list((tmp_path / "archive").glob("??/??/*")) == []


def test_store_bytes_archives_an_outbound_file(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    stored = archive.store_bytes(b"code;label\n")
    assert stored.path.read_bytes() == b"code;label\n"
    assert stored.sha256 == hashlib.sha256(b"code;label\n").hexdigest()


def test_concurrent_stores_of_the_same_content_agree(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    sources = [write(tmp_path / f"copy{n}", b"shared" * 1000) for n in range(6)]
    results: list[object] = []

    def store(source: Path) -> None:
        results.append(archive.store(source))

    threads = [threading.Thread(target=store, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 6 and len(set(results)) == 1
    assert archive.verify(hashlib.sha256(b"shared" * 1000).hexdigest())


def _spy_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


def test_store_fsyncs_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _spy_fsyncs(monkeypatch)
    stored = FolderArchive(tmp_path / "archive").store(write(tmp_path / "a", b"durable"))

    assert any(".tmp/incoming-" in path for path in synced), synced
    assert str(stored.path.parent) in synced


def test_a_store_that_is_not_yet_durable_syncs_nothing_until_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _spy_fsyncs(monkeypatch)
    archive = FolderArchive(tmp_path / "archive")

    stored = archive.store(write(tmp_path / "a", b"later"), durable=False)
    assert synced == []
    assert stored.path.read_bytes() == b"later"

    archive.make_durable(stored.sha256)
    assert str(stored.path) in synced
    assert str(stored.path.parent) in synced
    assert str(stored.path.parent.parent) in synced  # created by this store

    synced.clear()
    archive.make_durable(stored.sha256)
    assert synced == []  # once is enough


def test_bytes_from_memory_not_yet_durable_are_synced_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small inbound file the SFTP channel kept in memory: archived like a stored file."""
    synced = _spy_fsyncs(monkeypatch)
    archive = FolderArchive(tmp_path / "archive")

    stored = archive.store_bytes(b"in memory", durable=False)
    assert synced == []
    assert stored.path.read_bytes() == b"in memory"
    assert stored.sha256 == hashlib.sha256(b"in memory").hexdigest()

    archive.make_durable(stored.sha256)
    assert str(stored.path) in synced
    assert str(stored.path.parent) in synced
    assert str(stored.path.parent.parent) in synced


def test_content_found_already_archived_is_synced_in_full_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy written, never synced, by a gateway that then crashed is made durable too."""
    archive = FolderArchive(tmp_path / "archive")
    stored = archive.store(write(tmp_path / "a", b"seen before"), durable=False)
    restarted = FolderArchive(tmp_path / "archive")
    synced = _spy_fsyncs(monkeypatch)

    restarted.store(write(tmp_path / "again", b"seen before"), durable=False)
    restarted.make_durable(stored.sha256)

    assert synced == [
        str(stored.path),
        str(stored.path.parent),
        str(stored.path.parent.parent),
        str(tmp_path / "archive"),
    ]


def test_temporary_files_left_by_a_crash_are_removed_once_old(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    archive.store_bytes(b"creates the folders")
    temp_dir = tmp_path / "archive" / ".tmp"
    crashed = temp_dir / "incoming-crashed"
    crashed.write_bytes(b"half a file")
    os.utime(crashed, (1_000_000.0, 1_000_000.0))
    in_progress = temp_dir / "incoming-now"
    in_progress.write_bytes(b"being written")
    os.utime(in_progress, (1_009_990.0, 1_009_990.0))

    removed = archive.remove_stale_temp_files(older_than=3600, now=1_010_000.0)

    assert removed == 1
    assert not crashed.exists()
    assert in_progress.exists()


def _contents_sharing(prefix_len: int) -> tuple[bytes, bytes]:
    """Two contents whose hashes start alike (``prefix_len`` hex digits): same fan-out."""
    seen: dict[str, bytes] = {}
    n = 0
    while True:
        data = b"content %d" % n
        prefix = hashlib.sha256(data).hexdigest()[:prefix_len]
        if prefix in seen:
            return seen[prefix], data
        seen[prefix] = data
        n += 1


def test_contents_sharing_both_fan_out_folders_are_both_archived(tmp_path: Path) -> None:
    first, second = _contents_sharing(4)
    archive = FolderArchive(tmp_path / "archive")

    a = archive.store(write(tmp_path / "a", first))
    b = archive.store(write(tmp_path / "b", second))

    assert a.path.parent == b.path.parent
    assert a.path.read_bytes() == first
    assert b.path.read_bytes() == second


def test_a_store_makes_the_temporary_folder_again_when_it_was_removed(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")
    archive.store(write(tmp_path / "a", b"first"))
    (tmp_path / "archive" / ".tmp").rmdir()

    stored = archive.store(write(tmp_path / "b", b"second"))

    assert stored.path.read_bytes() == b"second"
    assert list((tmp_path / "archive" / ".tmp").iterdir()) == []


def test_a_store_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    archive = FolderArchive(tmp_path / "archive")

    archive.store(write(tmp_path / "a", b"new"))
    archive.store(write(tmp_path / "b", b"new"))  # found archived already
    archive.store_bytes(b"from memory")

    assert list((tmp_path / "archive" / ".tmp").iterdir()) == []
