"""What a local channel's poll costs: the journal asked once a poll, not once a file, and
files in progress not looked at; what that memory must never cost: a file processed elsewhere
taken in again, or a left file rewritten in place missed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edigw.channels.base import AfterAction, Disposition, MemorySeenFiles, Readiness
from edigw.channels.local import LocalInboundChannel, LocalInboundSettings

T0 = 1_800_000_000.0


class CountingSeenFiles(MemorySeenFiles):
    """The journal's memory of processed files, telling which questions it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.singles = 0
        self.batches: list[set[str]] = []

    def seen(self, channel: str, path: str, size: int, mtime: float) -> bool:
        self.singles += 1
        return super().seen(channel, path, size, mtime)

    def seen_among(self, channel: str, versions: Mapping[str, tuple[int, float]]) -> set[str]:
        self.batches.append(set(versions))
        answers = MemorySeenFiles.seen  # not self.seen: that counts single questions
        return {
            path
            for path, (size, mtime) in versions.items()
            if answers(self, channel, path, size, mtime)
        }


def drop(folder: Path, count: int, *, mtime: float = T0 - 100) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for n in range(count):
        path = folder / f"K{n:04d}.csv"
        path.write_bytes(b"order;%d\n" % n)
        os.utime(path, (mtime + n, mtime + n))
        names.append(path.name)
    return names


def inbox(
    folder: Path, seen: CountingSeenFiles, *, max_files: int = 1000, after: str = "move"
) -> LocalInboundChannel:
    settings = LocalInboundSettings(
        path=folder,
        readiness=Readiness(interval=0),
        max_files_per_poll=max_files,
        after=AfterAction(action=after),  # type: ignore[arg-type]
    )
    return LocalInboundChannel(settings, seen=seen)


def test_a_poll_asks_the_journal_about_a_whole_listing_in_one_question(tmp_path: Path) -> None:
    seen = CountingSeenFiles()
    names = drop(tmp_path / "in", 50)
    ch = inbox(tmp_path / "in", seen)

    ch.poll(now=T0)

    assert seen.singles == 0
    assert seen.batches == [set(names)]


def test_a_file_unchanged_since_it_was_asked_about_is_asked_again_only_when_handed_out(
    tmp_path: Path,
) -> None:
    seen = CountingSeenFiles()
    names = drop(tmp_path / "in", 30)
    ch = inbox(tmp_path / "in", seen, max_files=10)
    ch.poll(now=T0)  # first look: every file asked about, none ready yet

    handed = [f.name for f in ch.poll(now=T0 + 1).files]

    assert handed == names[:10]  # oldest first
    assert seen.batches[1:] == [set(names[:10])]


def test_files_in_progress_are_not_asked_about(tmp_path: Path) -> None:
    seen = CountingSeenFiles()
    names = drop(tmp_path / "in", 20)
    ch = inbox(tmp_path / "in", seen, max_files=20)
    ch.poll(now=T0)
    assert len(ch.poll(now=T0 + 1).files) == 20
    (tmp_path / "in" / "late.csv").write_bytes(b"order;late\n")
    asked = len(seen.batches)

    ch.poll(now=T0 + 2)

    assert seen.batches[asked:] == [{"late.csv"}]
    assert set(names).isdisjoint(*seen.batches[asked:])


def test_a_file_remembered_elsewhere_after_it_was_first_asked_about_is_not_handed_out(
    tmp_path: Path,
) -> None:
    """Another gateway on the same journal processed and left it meanwhile."""
    seen = CountingSeenFiles()
    drop(tmp_path / "in", 1)
    ch = inbox(tmp_path / "in", seen, after="leave")
    ch.poll(now=T0)
    st = (tmp_path / "in" / "K0000.csv").stat()
    seen.remember(ch.key, "K0000.csv", st.st_size, st.st_mtime, "a" * 64)

    assert ch.poll(now=T0 + 1).files == []
    assert ch.poll(now=T0 + 2).files == []


def test_a_left_file_is_not_asked_about_again_while_unchanged(tmp_path: Path) -> None:
    seen = CountingSeenFiles()
    drop(tmp_path / "in", 1)
    ch = inbox(tmp_path / "in", seen, after="leave")
    ch.poll(now=T0)
    (incoming,) = ch.poll(now=T0 + 1).files
    assert ch.complete(incoming, Disposition(ok=True)).action == "left"
    asked = len(seen.batches)

    assert ch.poll(now=T0 + 2).files == []
    assert ch.poll(now=T0 + 3).files == []
    assert seen.batches[asked:] == []


def test_a_left_file_rewritten_in_place_is_asked_about_and_taken_again(tmp_path: Path) -> None:
    seen = CountingSeenFiles()
    drop(tmp_path / "in", 1)
    ch = inbox(tmp_path / "in", seen, after="leave")
    ch.poll(now=T0)
    (incoming,) = ch.poll(now=T0 + 1).files
    ch.complete(incoming, Disposition(ok=True))
    source = tmp_path / "in" / "K0000.csv"
    source.write_bytes(b"order;0 and more\n")
    os.utime(source, (T0 - 10, T0 - 10))

    ch.poll(now=T0 + 2)

    assert [f.name for f in ch.poll(now=T0 + 3).files] == ["K0000.csv"]
