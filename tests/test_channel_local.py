"""The local drop-folder channel: readiness, claim-once, exclusions, after-actions, errors."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent

from edigw.channels import local
from edigw.channels.base import (
    AfterAction,
    Disposition,
    IncomingFile,
    MemorySeenFiles,
    Readiness,
    UploadSettings,
    change_since_read,
    error_report_name,
    is_candidate,
    name_problem,
)
from edigw.channels.local import (
    LocalInboundChannel,
    LocalInboundSettings,
    LocalOutboundChannel,
    LocalOutboundSettings,
)
from edigw.errors import ChannelError
from tests.fixtures.gateway import wait_until

T0 = 1_800_000_000.0


def channel(folder: Path, **options: object) -> LocalInboundChannel:
    folder.mkdir(parents=True, exist_ok=True)
    return LocalInboundChannel(LocalInboundSettings(path=folder, **options))  # type: ignore[arg-type]


def write(path: Path, data: bytes, *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def names(ch: LocalInboundChannel, now: float) -> list[str]:
    return [f.name for f in ch.poll(now=now).files]


# ------------------------------------------------------------------ readiness


def test_stable_file_is_taken_on_the_second_look_after_the_interval(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="stable", interval=2))
    write(tmp_path / "in/a.csv", b"x;y\n")
    assert names(ch, T0) == []
    assert names(ch, T0 + 1) == []
    assert names(ch, T0 + 2) == ["a.csv"]


def test_growing_file_with_preserved_mtime_is_not_taken_until_it_stops_growing(
    tmp_path: Path,
) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="stable", interval=2))
    old = T0 - 86_400  # a copy that keeps the original (old) mtime
    path = write(tmp_path / "in/a.csv", b"part one\n", mtime=old)
    assert names(ch, T0) == []
    with path.open("ab") as fh:
        fh.write(b"part two\n")
    os.utime(path, (old, old))
    assert names(ch, T0 + 5) == []
    taken = ch.poll(now=T0 + 10).files
    assert [f.name for f in taken] == ["a.csv"]
    assert taken[0].local_path.read_bytes() == b"part one\npart two\n"


def test_min_age_needs_an_old_mtime_and_an_unchanged_second_look(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="min_age", seconds=10))
    write(tmp_path / "in/young.csv", b"1", mtime=T0 - 5)
    write(tmp_path / "in/old.csv", b"1", mtime=T0 - 60)
    assert names(ch, T0) == []  # first look: nothing is trusted yet
    assert names(ch, T0 + 1) == ["old.csv"]
    assert names(ch, T0 + 6) == ["young.csv"]


def test_a_poll_tells_when_a_stable_file_it_left_may_be_ready(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="stable", interval=2))
    write(tmp_path / "in/a.csv", b"x;y\n")

    first = ch.poll(now=T0)

    assert first.files == []
    assert first.next_ready == T0 + 2
    taken = ch.poll(now=T0 + 2)
    assert [f.name for f in taken.files] == ["a.csv"]
    assert taken.next_ready is None  # nothing left waiting


def test_a_poll_tells_when_the_youngest_min_age_file_may_be_ready(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="min_age", seconds=10))
    write(tmp_path / "in/young.csv", b"1", mtime=T0 - 5)
    write(tmp_path / "in/old.csv", b"1", mtime=T0 - 60)

    assert ch.poll(now=T0).next_ready == T0  # old.csv needs only a second look
    assert ch.poll(now=T0 + 1).next_ready == T0 + 5  # young.csv: 10 s after its mtime


def test_a_poll_cannot_foresee_a_done_file(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="done_file", suffix=".ok"))
    write(tmp_path / "in/a.csv", b"1")

    assert ch.poll(now=T0).next_ready is None


def test_done_file_mode_waits_for_the_done_file_and_never_takes_it(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="done_file", suffix=".ok"))
    write(tmp_path / "in/a.csv", b"1")
    assert names(ch, T0) == []
    write(tmp_path / "in/a.csv.ok", b"")
    assert names(ch, T0) == ["a.csv"]


def test_done_file_is_moved_along_with_its_file(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="done_file"))
    write(tmp_path / "in/a.csv", b"1")
    write(tmp_path / "in/a.csv.ok", b"")
    [incoming] = ch.poll(now=T0).files
    assert ch.complete(incoming, Disposition(ok=True)).ok
    assert sorted(p.name for p in (tmp_path / "in/done").iterdir()) == ["a.csv", "a.csv.ok"]
    assert not (tmp_path / "in/a.csv.ok").exists()


# ------------------------------------------------------------------ selection


@pytest.mark.parametrize(
    ("name", "include", "exclude", "expected"),
    [
        pytest.param("a.csv", (), (), True, id="everything-by-default"),
        pytest.param("a.tmp", (), (), False, id="tmp-always-skipped"),
        pytest.param("a.csv.part", (), (), False, id="part-always-skipped"),
        pytest.param(".a.csv", (), (), False, id="dotfile-always-skipped"),
        pytest.param("a.csv.error.txt", (), (), False, id="error-report-skipped"),
        pytest.param("a.xml", ("*.csv",), (), False, id="include-filters"),
        pytest.param("a.CSV", ("*.csv",), (), False, id="globs-are-case-sensitive"),
        pytest.param("test_a.csv", ("*.csv",), ("test_*",), False, id="exclude-wins"),
        pytest.param("sub/a.csv", ("sub/*.csv",), (), True, id="path-pattern"),
    ],
)
def test_candidate_names(
    name: str, include: tuple[str, ...], exclude: tuple[str, ...], expected: bool
) -> None:
    assert is_candidate(name, include=include, exclude=exclude) is expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../etc/passwd", id="parent"),
        pytest.param("a/../../b", id="inner-parent"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("a\nb.csv", id="newline"),
        pytest.param("a\udcffb.csv", id="undecodable-byte"),
        pytest.param("a\\b.csv", id="backslash"),
    ],
)
def test_names_that_could_escape_or_mislead_are_refused(name: str) -> None:
    assert name_problem(name) is not None


def test_excluded_and_temporary_files_are_never_taken(tmp_path: Path) -> None:
    ch = channel(
        tmp_path / "in",
        include=("*.csv",),
        exclude=("draft_*",),
        readiness=Readiness(mode="stable", interval=0),
    )
    for name in ("a.csv", "b.csv.tmp", "c.csv.part", ".d.csv", "draft_e.csv", "f.xml"):
        write(tmp_path / "in" / name, b"1")
    ch.poll(now=T0)
    assert names(ch, T0 + 1) == ["a.csv"]


def test_oldest_first_and_capped_after_sorting(tmp_path: Path) -> None:
    ch = channel(
        tmp_path / "in", readiness=Readiness(mode="stable", interval=0), max_files_per_poll=2
    )
    for i, name in enumerate(["new.csv", "old.csv", "mid.csv"]):
        write(tmp_path / "in" / name, b"1", mtime=T0 - 100 + [50, 0, 20][i])
    ch.poll(now=T0)
    assert names(ch, T0 + 1) == ["old.csv", "mid.csv"]
    assert names(ch, T0 + 2) == ["new.csv"]


def test_recursion_stops_at_max_depth_and_skips_done_and_error_folders(tmp_path: Path) -> None:
    ch = channel(
        tmp_path / "in",
        readiness=Readiness(mode="stable", interval=0),
        recursive=True,
        max_depth=2,
    )
    write(tmp_path / "in/a.csv", b"1")
    write(tmp_path / "in/sub/b.csv", b"1")
    write(tmp_path / "in/sub/deeper/c.csv", b"1")
    write(tmp_path / "in/done/old.csv", b"1")
    write(tmp_path / "in/error/bad.csv", b"1")
    ch.poll(now=T0)
    assert sorted(names(ch, T0 + 1)) == ["a.csv", "sub/b.csv"]


# ------------------------------------------------------------------ claim once


def test_a_claimed_file_is_not_handed_out_again_before_complete(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="stable", interval=0))
    write(tmp_path / "in/a.csv", b"1")
    ch.poll(now=T0)
    assert names(ch, T0 + 1) == ["a.csv"]
    assert names(ch, T0 + 2) == []


def test_a_released_file_is_handed_out_again_once_it_is_ready_again(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(mode="stable", interval=2))
    write(tmp_path / "in/a.csv", b"1")
    ch.poll(now=T0)
    [incoming] = ch.poll(now=T0 + 2).files
    ch.release(incoming)  # its intake failed
    assert names(ch, T0 + 3) == []  # watched again from scratch: one look is not enough
    assert names(ch, T0 + 5) == ["a.csv"]


def test_concurrent_polls_from_events_and_rescans_claim_each_file_once(tmp_path: Path) -> None:
    ch = channel(
        tmp_path / "in", readiness=Readiness(mode="stable", interval=0), max_files_per_poll=1000
    )
    for i in range(200):
        write(tmp_path / "in" / f"f{i:03}.csv", b"1")
    ch.poll(now=T0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: names(ch, T0 + 1 + k), range(16)))
    taken = [n for r in results for n in r]
    assert len(taken) == 200
    assert len(set(taken)) == 200


def test_watchdog_wakes_the_poller_when_a_file_arrives(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    event = threading.Event()
    ch.wakeups(event)
    try:
        woken = False
        for attempt in range(20):  # the observer thread may not be watching yet
            write(tmp_path / f"in/a{attempt}.csv", b"1")
            if event.wait(timeout=0.5):
                woken = True
                break
        assert woken
    finally:
        ch.close()


def test_a_missing_folder_is_rescanned_not_watched_and_stops_nothing(tmp_path: Path) -> None:
    """`edigw run` on a fresh `edigw init` workspace: no inbox folder yet. The watcher is not
    started (it used to kill the flow's poll thread); each poll says the folder is missing."""
    ch = LocalInboundChannel(LocalInboundSettings(path=tmp_path / "missing"))
    try:
        ch.wakeups(threading.Event())
        with pytest.raises(ChannelError, match="does not exist"):
            ch.poll(now=T0)
    finally:
        ch.close()


def test_reading_and_removing_files_does_not_wake_the_poller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's own reads and moves are not arrivals (they woke it for nothing).

    What woke the channel is recorded, in the order the watcher tells it; a folder made
    after the reads and removals marks the end (events are told in order): no timer decides
    when the probes' own events are over, or when a wrong wake-up would have come."""
    told: list[str] = []
    wake = local._WakeHandler.on_any_event

    def recorded(self: local._WakeHandler, event: FileSystemEvent) -> None:
        told.append(os.fsdecode(event.src_path))
        wake(self, event)

    monkeypatch.setattr(local._WakeHandler, "on_any_event", recorded)
    folder = tmp_path / "in"
    ch = channel(folder)
    event = threading.Event()
    ch.wakeups(event)

    def marked(name: str) -> int:
        """Make the folder ``name``; once it is told, so is everything before it."""
        (folder / name).mkdir()
        wait_until(lambda: str(folder / name) in told, what=f"{name} told")
        return told.index(str(folder / name))

    try:
        for attempt in range(20):  # wait until the observer is watching
            write(folder / f"probe{attempt}.csv", b"1")
            if event.wait(timeout=0.5):
                break
        before = marked("before")
        for probe in folder.glob("probe*.csv"):
            probe.read_bytes()
            probe.unlink()
        after = marked("after")
        assert told[before + 1 : after] == []
    finally:
        ch.close()


# ------------------------------------------------------------------ after-actions


def ready_one(ch: LocalInboundChannel) -> object:
    ch.poll(now=T0)
    [incoming] = ch.poll(now=T0 + 60).files
    return incoming


def test_move_after_success_keeps_existing_done_files(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    write(tmp_path / "in/done/a.csv", b"yesterday")
    write(tmp_path / "in/a.csv", b"today")
    incoming = ready_one(ch)
    result = ch.complete(incoming, Disposition(ok=True))  # type: ignore[arg-type]
    assert result.ok and result.action == "moved"
    assert (tmp_path / "in/done/a.csv").read_bytes() == b"yesterday"
    assert (tmp_path / "in/done/a.1.csv").read_bytes() == b"today"
    assert not (tmp_path / "in/a.csv").exists()


def test_a_done_folder_removed_meanwhile_is_made_again_by_the_move(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    write(tmp_path / "in/a.csv", b"first")
    ch.complete(ready_one(ch), Disposition(ok=True))  # type: ignore[arg-type]
    (tmp_path / "in/done/a.csv").unlink()
    (tmp_path / "in/done").rmdir()
    write(tmp_path / "in/b.csv", b"second")

    result = ch.complete(ready_one(ch), Disposition(ok=True))  # type: ignore[arg-type]

    assert result.ok and result.action == "moved"
    assert (tmp_path / "in/done/b.csv").read_bytes() == b"second"


def test_a_dangling_link_in_the_done_folder_keeps_its_name(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    (tmp_path / "in/done").mkdir()
    (tmp_path / "in/done/a.csv").symlink_to(tmp_path / "nowhere")
    write(tmp_path / "in/a.csv", b"today")

    ch.complete(ready_one(ch), Disposition(ok=True))  # type: ignore[arg-type]

    assert (tmp_path / "in/done/a.csv").is_symlink()
    assert (tmp_path / "in/done/a.1.csv").read_bytes() == b"today"


def test_delete_after_success(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", after=AfterAction(action="delete"))
    write(tmp_path / "in/a.csv", b"1")
    result = ch.complete(ready_one(ch), Disposition(ok=True))  # type: ignore[arg-type]
    assert result.action == "deleted"
    assert list((tmp_path / "in").iterdir()) == []


def test_left_file_is_not_taken_again_while_unchanged_but_is_when_rewritten(
    tmp_path: Path,
) -> None:
    seen = MemorySeenFiles()
    folder = tmp_path / "in"
    folder.mkdir()
    settings = LocalInboundSettings(
        path=folder, after=AfterAction(action="leave"), readiness=Readiness(interval=0)
    )
    write(folder / "a.csv", b"1", mtime=T0 - 100)
    ch = LocalInboundChannel(settings, seen=seen)
    incoming = ready_one(ch)
    assert ch.complete(incoming, Disposition(ok=True)).action == "left"  # type: ignore[arg-type]
    restarted = LocalInboundChannel(settings, seen=seen)
    restarted.poll(now=T0)
    assert names(restarted, T0 + 60) == []
    write(folder / "a.csv", b"22", mtime=T0 - 50)
    restarted.poll(now=T0 + 61)
    assert names(restarted, T0 + 120) == ["a.csv"]


def test_failed_file_goes_to_error_folder_with_a_report(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    write(tmp_path / "in/a.csv", b"1")
    result = ch.complete(
        ready_one(ch),  # type: ignore[arg-type]
        Disposition(ok=False, reason="line 3: unknown article ZZ", show_id="F-7"),
    )
    assert result.ok and result.action == "error-moved"
    assert (tmp_path / "in/error/a.csv").read_bytes() == b"1"
    report = (tmp_path / "in/error/a.csv.error.txt").read_text()
    assert "Reason: line 3: unknown article ZZ" in report
    assert "edigw show F-7" in report


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("f" + "x" * 244 + ".csv", id="ascii-249-bytes"),
        pytest.param("é" * 125 + ".csv", id="two-byte-characters"),
    ],
)
def test_a_failed_file_with_a_name_near_the_limit_keeps_its_report(
    tmp_path: Path, name: str
) -> None:
    """``NAME.error.txt`` would be over 255 bytes: the report's name is cut, not lost."""
    ch = channel(tmp_path / "in")
    write(tmp_path / "in" / name, b"1")
    result = ch.complete(
        ready_one(ch),  # type: ignore[arg-type]
        Disposition(ok=False, reason="line 3: NUL", show_id="F-7"),
    )
    assert result.ok and result.action == "error-moved", result.detail
    assert (tmp_path / "in/error" / name).read_bytes() == b"1"
    [report] = (tmp_path / "in/error").glob("*.error.txt")
    assert report.name == error_report_name(name)
    assert len(report.name.encode()) <= 255
    assert report.name.startswith(name[:50])
    assert "Reason: line 3: NUL" in report.read_text()


def test_cut_report_names_of_two_long_names_differ() -> None:
    first, second = "a" * 250 + "1.csv", "a" * 250 + "2.csv"
    assert error_report_name(first) != error_report_name(second)
    assert error_report_name("a.csv") == "a.csv.error.txt"


def test_a_failed_after_action_is_returned_not_raised(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    write(tmp_path / "in/a.csv", b"1")
    incoming = ready_one(ch)
    (tmp_path / "in/a.csv").unlink()  # someone removed it meanwhile
    result = ch.complete(incoming, Disposition(ok=True))  # type: ignore[arg-type]
    assert not result.ok
    assert "a.csv" in result.detail


def test_a_file_the_after_action_could_not_move_is_not_handed_out_again(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", exclude=("done",))
    write(tmp_path / "in/done", b"a file where the done folder should be")
    write(tmp_path / "in/a.csv", b"1")
    incoming = ready_one(ch)
    result = ch.complete(incoming, Disposition(ok=True))  # type: ignore[arg-type]
    assert not result.ok
    assert (tmp_path / "in/a.csv").exists()
    ch.poll(now=T0 + 100)
    assert names(ch, T0 + 200) == []


# ------------------------------------------------------------------ problems


def test_dangling_link_is_reported_once(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    (tmp_path / "in/gone.csv").symlink_to(tmp_path / "in/nowhere.csv")
    first = ch.poll(now=T0).problems
    assert [(p.name, p.reason) for p in first] == [
        ("gone.csv", "cannot read: vanished or dangling link")
    ]
    assert ch.poll(now=T0 + 5).problems == []


def test_a_file_moved_away_during_the_listing_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway moves finished files while the poller lists: that is not a problem."""
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    path = write(tmp_path / "in/finished.csv", b"1")
    scandir = os.scandir

    def listing_then_gone(folder: Path) -> list[os.DirEntry[str]]:
        entries = list(scandir(folder))
        path.unlink(missing_ok=True)
        return entries

    monkeypatch.setattr("edigw.channels.local.os.scandir", listing_then_gone)
    result = ch.poll(now=T0)
    assert (result.files, result.problems) == ([], [])


def test_a_file_gone_between_listing_and_claim_is_released_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    path = write(tmp_path / "in/finished.csv", b"1")
    ch.poll(now=T0)
    scan = ch._scan

    def scan_then_gone(in_progress: Collection[str]) -> object:
        found = scan(in_progress)
        path.unlink()
        return found

    monkeypatch.setattr(ch, "_scan", scan_then_gone)
    result = ch.poll(now=T0 + 1)
    assert (result.files, result.problems) == ([], [])
    assert not ch._tracker.is_claimed("finished.csv")


def test_link_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    write(tmp_path / "secret.csv", b"secret")
    (tmp_path / "in/evil.csv").symlink_to(tmp_path / "secret.csv")
    result = ch.poll(now=T0)
    assert result.files == []
    assert [p.name for p in result.problems] == ["evil.csv"]
    assert "outside" in result.problems[0].reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    path = write(tmp_path / "in/a.csv", b"1")
    path.chmod(0)
    ch.poll(now=T0)
    result = ch.poll(now=T0 + 1)
    assert result.files == []
    assert [p.name for p in result.problems] == ["a.csv"]


def test_odd_bytes_in_a_name_are_reported_not_taken(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    os.close(os.open(os.path.join(os.fsencode(tmp_path / "in"), b"bad\xff.csv"), os.O_CREAT))
    result = ch.poll(now=T0)
    assert result.files == []
    assert len(result.problems) == 1
    assert "not valid UTF-8" in result.problems[0].reason


def test_file_above_max_size_is_claimed_as_a_problem_to_fail(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0), max_size=3)
    write(tmp_path / "in/big.csv", b"12345")
    ch.poll(now=T0)
    [problem] = ch.poll(now=T0 + 1).problems
    assert problem.incoming is not None
    assert "larger than the limit of 3" in problem.reason
    ch.complete(problem.incoming, Disposition(ok=False, reason=problem.reason, show_id="F-1"))
    assert (tmp_path / "in/error/big.csv.error.txt").exists()


def test_missing_folder_is_a_channel_error(tmp_path: Path) -> None:
    ch = LocalInboundChannel(LocalInboundSettings(path=tmp_path / "nope"))
    with pytest.raises(ChannelError, match="does not exist"):
        ch.poll(now=T0)


# ------------------------------------------------------------------ outbound


def test_outbound_folder_that_is_a_file_is_a_channel_error_naming_it(tmp_path: Path) -> None:
    src = write(tmp_path / "src.csv", b"a;b\n")
    write(tmp_path / "out", b"not a folder")
    out = LocalOutboundChannel(LocalOutboundSettings(path=tmp_path / "out"))
    with pytest.raises(ChannelError, match=f"{tmp_path / 'out'} is not a usable folder") as caught:
        out.deliver(src, "articles.csv")
    assert not caught.value.retriable
    assert (tmp_path / "out").read_bytes() == b"not a folder"


def test_outbound_delivery_puts_the_file_in_place_with_a_done_file(tmp_path: Path) -> None:
    src = write(tmp_path / "src.csv", b"a;b\n")
    out = LocalOutboundChannel(
        LocalOutboundSettings(path=tmp_path / "out", upload=UploadSettings(done_file=".ok"))
    )
    delivered = out.deliver(src, "articles.csv")
    assert (tmp_path / "out/articles.csv").read_bytes() == b"a;b\n"
    assert delivered.size == 4
    assert delivered.done_file == str(tmp_path / "out/articles.csv.ok")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "articles.csv",
        "articles.csv.ok",
    ]


@pytest.mark.parametrize(
    ("policy", "expected_name", "expected_old"),
    [
        pytest.param("replace", "a.csv", None, id="replace"),
        pytest.param("rename", "a.1.csv", b"old", id="rename"),
    ],
)
def test_outbound_policy_when_the_name_exists(
    tmp_path: Path, policy: str, expected_name: str, expected_old: bytes | None
) -> None:
    write(tmp_path / "out/a.csv", b"old")
    out = LocalOutboundChannel(
        LocalOutboundSettings(path=tmp_path / "out", upload=UploadSettings(if_exists=policy))  # type: ignore[arg-type]
    )
    delivered = out.deliver(write(tmp_path / "src", b"new"), "a.csv")
    assert delivered.name == expected_name
    assert (tmp_path / "out" / expected_name).read_bytes() == b"new"
    if expected_old is not None:
        assert (tmp_path / "out/a.csv").read_bytes() == expected_old


def test_outbound_fail_policy_refuses_and_leaves_no_temp_file(tmp_path: Path) -> None:
    write(tmp_path / "out/a.csv", b"old")
    out = LocalOutboundChannel(LocalOutboundSettings(path=tmp_path / "out"))
    with pytest.raises(ChannelError, match="already exists"):
        out.deliver(write(tmp_path / "src", b"new"), "a.csv")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.csv"]


# ------------------------------------------------------------------ changed after reading


def as_read(incoming: object, data: bytes) -> IncomingFile:
    """``incoming`` as the pipeline hands it back to ``complete``: with what it archived."""
    assert isinstance(incoming, IncomingFile)
    return replace(incoming, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_a_source_that_grew_after_it_was_read_is_left_in_place_and_offered_again(
    tmp_path: Path,
) -> None:
    ch = channel(tmp_path / "in", readiness=Readiness(interval=0))
    source = write(tmp_path / "in/a.csv", b"8 orders", mtime=T0 - 100)
    incoming = as_read(ready_one(ch), b"8 orders")
    write(source, b"8 orders + 12 more", mtime=T0 - 50)  # the writer went on

    result = ch.complete(incoming, Disposition(ok=True))

    assert (result.ok, result.action) == (True, "kept-changed")
    assert result.detail == "it changed after it was read (8 bytes read, 18 bytes now)"
    assert source.read_bytes() == b"8 orders + 12 more"
    assert not (tmp_path / "in/done").exists()
    ch.poll(now=T0 + 61)
    [again] = ch.poll(now=T0 + 120).files
    assert (again.name, again.size) == ("a.csv", 18)


def test_a_failed_source_that_changed_is_not_moved_to_the_error_folder(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    source = write(tmp_path / "in/a.csv", b"truncated", mtime=T0 - 100)
    incoming = as_read(ready_one(ch), b"truncated")
    write(source, b"truncated no more", mtime=T0 - 50)

    result = ch.complete(incoming, Disposition(ok=False, reason="line 2: cut short"))

    assert result.action == "kept-changed"
    assert source.exists()
    assert not (tmp_path / "in/error").exists()


def test_a_source_touched_but_unchanged_is_moved(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    source = write(tmp_path / "in/a.csv", b"same bytes", mtime=T0 - 100)
    incoming = as_read(ready_one(ch), b"same bytes")
    os.utime(source, (T0 - 10, T0 - 10))

    assert ch.complete(incoming, Disposition(ok=True)).action == "moved"
    assert (tmp_path / "in/done/a.csv").read_bytes() == b"same bytes"


def test_a_source_rewritten_with_the_same_size_is_left_in_place(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in", after=AfterAction(action="delete"))
    source = write(tmp_path / "in/a.csv", b"CMD-1;2", mtime=T0 - 100)
    incoming = as_read(ready_one(ch), b"CMD-1;2")
    write(source, b"CMD-1;3", mtime=T0 - 10)

    result = ch.complete(incoming, Disposition(ok=True))

    assert result.action == "kept-changed"
    assert result.detail == "it changed after it was read (same size, 7 bytes, other content)"
    assert source.read_bytes() == b"CMD-1;3"


def test_a_left_source_that_changed_is_not_remembered_as_processed(tmp_path: Path) -> None:
    seen = MemorySeenFiles()
    (tmp_path / "in").mkdir()
    settings = LocalInboundSettings(
        path=tmp_path / "in", after=AfterAction(action="leave"), readiness=Readiness(interval=0)
    )
    ch = LocalInboundChannel(settings, seen=seen)
    source = write(tmp_path / "in/a.csv", b"8 orders", mtime=T0 - 100)
    incoming = as_read(ready_one(ch), b"8 orders")
    write(source, b"8 orders + 12 more", mtime=T0 - 50)

    assert ch.complete(incoming, Disposition(ok=True)).action == "kept-changed"
    assert not seen.seen(ch.key, "a.csv", 8, T0 - 100)


@pytest.mark.parametrize(
    ("size", "mtime", "content", "expected"),
    [
        pytest.param(8, T0, b"", None, id="same size and mtime: no hash read"),
        pytest.param(9, T0, b"", "(8 bytes read, 9 bytes now)", id="other size"),
        pytest.param(8, T0 + 1, b"12345678", None, id="touched: same hash"),
        pytest.param(8, T0 + 1, b"87654321", "(same size, 8 bytes, other content)", id="rewritten"),
    ],
)
def test_whether_a_source_is_still_what_was_read(
    size: int, mtime: float, content: bytes, expected: str | None
) -> None:
    read = IncomingFile(
        channel="c",
        name="a.csv",
        local_path=Path("a.csv"),
        size=8,
        mtime=T0,
        remote_path="a.csv",
        sha256=hashlib.sha256(b"12345678").hexdigest(),
    )

    def digest() -> str:
        assert content, "the hash is read only when size and mtime leave a doubt"
        return hashlib.sha256(content).hexdigest()

    found = change_since_read(read, size=size, mtime=mtime, digest=digest)
    assert found == (None if expected is None else f"it changed after it was read {expected}")


# ------------------------------------------------------------------ clearing the error folder


def failed_into_error(ch: LocalInboundChannel, folder: Path, name: str = "a.csv") -> str:
    """A file taken in and failed: its copy and report now sit in the error folder."""
    write(folder / name, b"1")
    result = ch.complete(
        ready_one(ch),  # type: ignore[arg-type]
        Disposition(ok=False, reason="unknown customer", show_id="F-7"),
    )
    return result.target


def test_a_replayed_files_error_copy_goes_to_the_done_folder_and_its_report_away(
    tmp_path: Path,
) -> None:
    ch = channel(tmp_path / "in")
    target = failed_into_error(ch, tmp_path / "in")

    result = ch.clear_error("a.csv", target)

    assert (result.ok, result.action) == (True, "error-cleared")
    assert result.target == str((tmp_path / "in/done/a.csv").resolve())
    assert (tmp_path / "in/done/a.csv").read_bytes() == b"1"
    assert list((tmp_path / "in/error").iterdir()) == []


@pytest.mark.parametrize("action", ["delete", "leave"])
def test_a_replayed_files_error_copy_is_deleted_when_the_flow_does_not_move_files(
    tmp_path: Path, action: str
) -> None:
    ch = channel(tmp_path / "in", after=AfterAction(action=action))  # type: ignore[arg-type]
    target = failed_into_error(ch, tmp_path / "in")

    result = ch.clear_error("a.csv", target)

    assert (result.ok, result.target) == (True, "")
    assert list((tmp_path / "in/error").iterdir()) == []
    assert not (tmp_path / "in/done").exists()


def test_clearing_an_error_copy_someone_removed_still_removes_its_stale_report(
    tmp_path: Path,
) -> None:
    ch = channel(tmp_path / "in")
    target = failed_into_error(ch, tmp_path / "in")
    Path(target).unlink()

    result = ch.clear_error("a.csv", target)

    assert (result.ok, result.target) == (True, "")
    assert list((tmp_path / "in/error").iterdir()) == []


def test_clearing_refuses_a_path_outside_the_error_folder(tmp_path: Path) -> None:
    ch = channel(tmp_path / "in")
    elsewhere = write(tmp_path / "in/keep.csv", b"mine")

    result = ch.clear_error("keep.csv", str(elsewhere))

    assert not result.ok
    assert "is not in the flow's error folder" in result.detail
    assert elsewhere.read_bytes() == b"mine"
