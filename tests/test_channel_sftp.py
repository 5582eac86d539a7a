"""The SFTP channel against a real OpenSSH sshd (tests/fixtures/sshd.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.channels.base import (
    AfterAction,
    Disposition,
    IncomingFile,
    JournalSeenFiles,
    MemorySeenFiles,
    Readiness,
    UploadSettings,
)
from edigw.channels.sftp import inbound as sftp_inbound
from edigw.channels.sftp import listing as sftp_listing
from edigw.channels.sftp.check import check_endpoint
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.inbound import SftpInboundChannel
from edigw.channels.sftp.outbound import SftpOutboundChannel
from edigw.channels.sftp.settings import (
    Backoff,
    SftpEndpointSettings,
    SftpInboundSettings,
    SftpOutboundSettings,
    SftpTimeouts,
)
from edigw.errors import ChannelError, HostKeyError
from edigw.journal import Journal
from tests.fixtures.sshd import SshServer, free_port, write_ed25519_key

pytestmark = pytest.mark.sftp

T0 = 1_800_000_000.0


@pytest.fixture
def endpoint(sshd: SshServer, tmp_path: Path) -> SftpEndpointSettings:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)
    return SftpEndpointSettings(
        name="acme",
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        key_file=sshd.client_key,
        known_hosts=known_hosts,
        timeouts=SftpTimeouts(connect=5, operation=10),
        keepalive=5,
    )


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """The partner's folder: the sshd runs on this machine, so tests write it directly."""
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder


@pytest.fixture
def connections(endpoint: SftpEndpointSettings) -> Iterator[SftpConnections]:
    conns = SftpConnections({"acme": endpoint})
    yield conns
    conns.close()


class Inbox:
    """Builds channels on the remote folder, sharing one SeenFiles memory (the journal)."""

    def __init__(self, connections: SftpConnections, remote: Path, staging: Path) -> None:
        self.connections = connections
        self.remote = remote
        self.staging = staging
        self.seen = MemorySeenFiles()

    def channel(
        self, connections: SftpConnections | None = None, **options: object
    ) -> SftpInboundChannel:
        options.setdefault("readiness", Readiness(mode="stable", interval=2))
        settings = SftpInboundSettings(endpoint="acme", path=str(self.remote), **options)  # type: ignore[arg-type]
        return SftpInboundChannel(
            settings, connections or self.connections, staging_dir=self.staging, seen=self.seen
        )


@pytest.fixture
def inbox(connections: SftpConnections, remote: Path, tmp_path: Path) -> Inbox:
    return Inbox(connections, remote, tmp_path / "staging")


def put(path: Path, data: bytes, *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def take(channel: SftpInboundChannel, *, start: float = T0) -> list[IncomingFile]:
    """Two looks far enough apart for the stable readiness: what the second one hands out."""
    channel.poll(now=start)
    return channel.poll(now=start + 10).files


# ------------------------------------------------------------------ pick-up and after-actions


def test_ready_file_is_downloaded_and_moved_to_done_remotely(inbox: Inbox, remote: Path) -> None:
    put(remote / "inv-1.csv", b"number;total\n1;12.50\n")
    channel = inbox.channel()
    [incoming] = take(channel)
    assert incoming.read_bytes() == b"number;total\n1;12.50\n"
    assert incoming.sha256 == hashlib.sha256(b"number;total\n1;12.50\n").hexdigest()
    assert incoming.remote_path == f"{remote}/inv-1.csv"
    result = channel.complete(incoming, Disposition(ok=True))
    assert result.ok and result.action == "moved"
    assert (remote / "done/inv-1.csv").exists()
    assert not (remote / "inv-1.csv").exists()
    assert not incoming.local_path.exists()  # staging is cleaned once the outcome is committed
    assert [p for p in inbox.staging.rglob("*") if p.is_file()] == []


def test_a_released_file_is_fetched_again_and_its_staged_copy_dropped(
    inbox: Inbox, remote: Path
) -> None:
    put(remote / "big.csv", b"x" * (2 << 20))  # large enough to be staged on disk
    channel = inbox.channel()
    [incoming] = take(channel)
    assert incoming.local_path.exists()
    channel.release(incoming)  # its intake failed
    assert not incoming.local_path.exists()
    [again] = take(channel, start=T0 + 20)
    assert again.name == "big.csv" and again.sha256 == incoming.sha256


def test_delete_after_success_removes_the_remote_file(inbox: Inbox, remote: Path) -> None:
    put(remote / "a.csv", b"1")
    channel = inbox.channel(after=AfterAction(action="delete"))
    [incoming] = take(channel)
    assert channel.complete(incoming, Disposition(ok=True)).action == "deleted"
    assert list(remote.iterdir()) == []


def test_failed_file_goes_to_remote_error_folder_with_a_report(inbox: Inbox, remote: Path) -> None:
    put(remote / "a.csv", b"1")
    channel = inbox.channel()
    [incoming] = take(channel)
    result = channel.complete(
        incoming, Disposition(ok=False, reason="line 2: unknown supplier", show_id="F-3")
    )
    assert result.ok and result.action == "error-moved"
    assert (remote / "error/a.csv").read_bytes() == b"1"
    report = (remote / "error/a.csv.error.txt").read_text()
    assert "Reason: line 2: unknown supplier" in report
    assert "F-3" in report


def test_a_failed_remote_move_is_returned_and_the_file_not_fetched_again(
    inbox: Inbox, remote: Path
) -> None:
    put(remote / "done", b"a file where the done folder should be")
    put(remote / "a.csv", b"1")
    channel = inbox.channel(exclude=("done",))
    [incoming] = take(channel)
    result = channel.complete(incoming, Disposition(ok=True))
    assert not result.ok
    assert result.action == "move"
    assert "a.csv" in result.detail or "done" in result.detail
    assert (remote / "a.csv").exists()
    assert take(channel, start=T0 + 100) == []


def test_oldest_first_capped_after_sorting(inbox: Inbox, remote: Path) -> None:
    put(remote / "new.csv", b"1", mtime=T0 - 10)
    put(remote / "old.csv", b"1", mtime=T0 - 300)
    put(remote / "mid.csv", b"1", mtime=T0 - 100)
    channel = inbox.channel(max_files_per_poll=2)
    assert [f.name for f in take(channel)] == ["old.csv", "mid.csv"]


def test_recursion_respects_the_depth_limit_and_skips_done_and_error(
    inbox: Inbox, remote: Path
) -> None:
    put(remote / "a.csv", b"1")
    put(remote / "2026/b.csv", b"1")
    put(remote / "2026/11/c.csv", b"1")
    put(remote / "done/d.csv", b"1")
    put(remote / "error/e.csv", b"1")
    channel = inbox.channel(recursive=True, max_depth=2)
    assert sorted(f.name for f in take(channel)) == ["2026/b.csv", "a.csv"]


def test_temporary_hidden_and_excluded_files_are_never_fetched(inbox: Inbox, remote: Path) -> None:
    for name in ("a.xml", "b.xml.tmp", "c.xml.part", ".d.xml", "e.csv"):
        put(remote / name, b"1")
    channel = inbox.channel(include=("*.xml",))
    assert [f.name for f in take(channel)] == ["a.xml"]


def test_odd_bytes_in_a_remote_name_are_reported_not_fetched(inbox: Inbox, remote: Path) -> None:
    os.close(os.open(os.path.join(os.fsencode(remote), b"bad\xff.csv"), os.O_CREAT | os.O_WRONLY))
    put(remote / "good.csv", b"1")
    channel = inbox.channel()
    first = channel.poll(now=T0)
    assert len(first.problems) == 1
    assert "not valid UTF-8" in first.problems[0].reason
    assert [f.name for f in channel.poll(now=T0 + 10).files] == ["good.csv"]


def test_staging_leftovers_of_a_dead_process_are_removed_those_of_a_live_one_kept(
    inbox: Inbox,
) -> None:
    inbox.channel().close()
    [slug_folder] = list(inbox.staging.iterdir())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    put(slug_folder / str(dead.pid) / "0001-half.csv", b"half")
    put(slug_folder / str(os.getppid()) / "0001-busy.csv", b"busy")
    channel = inbox.channel()
    assert not (slug_folder / str(dead.pid)).exists()
    assert (slug_folder / str(os.getppid()) / "0001-busy.csv").exists()
    channel.close()


def test_closing_the_old_channel_of_a_changed_flow_keeps_the_new_ones_staged_files(
    inbox: Inbox, remote: Path
) -> None:
    old = inbox.channel()  # a reload changed the flow: a new channel on the same folder
    new = inbox.channel()
    put(remote / "inv-1.csv", b"number;total\n1;12.50\n")
    [incoming] = take(new)

    old.close()  # the old flow's files are all disposed of

    assert incoming.read_bytes() == b"number;total\n1;12.50\n"
    put(remote / "inv-2.csv", b"number;total\n2;7.00\n")
    [second] = take(new, start=T0 + 100)  # it still stages
    assert (second.name, second.read_bytes()) == ("inv-2.csv", b"number;total\n2;7.00\n")
    new.close()
    assert not incoming.local_path.parent.exists()  # the last one out removes the folder


# ------------------------------------------------------------------ readiness


def test_file_written_slowly_is_not_read_until_complete(inbox: Inbox, remote: Path) -> None:
    channel = inbox.channel(readiness=Readiness(mode="stable", interval=5))
    path = put(remote / "slow.csv", b"header\n", mtime=T0 - 3600)
    assert channel.poll(now=T0).files == []
    for i, step in enumerate([6, 12, 18]):
        with path.open("ab") as fh:
            fh.write(f"line {i}\n".encode())
        os.utime(path, (T0 - 3600, T0 - 3600))  # the partner's copy keeps the old mtime
        assert channel.poll(now=T0 + step).files == []
    assert channel.poll(now=T0 + 22).files == []  # unchanged, but not yet for 5 s
    [incoming] = channel.poll(now=T0 + 24).files
    assert incoming.read_bytes() == b"header\nline 0\nline 1\nline 2\n"


def test_done_file_flow(inbox: Inbox, remote: Path) -> None:
    channel = inbox.channel(readiness=Readiness(mode="done_file", suffix=".ok"))
    put(remote / "a.xml", b"<a/>")
    assert channel.poll(now=T0).files == []
    put(remote / "a.xml.ok", b"")
    [incoming] = channel.poll(now=T0 + 1).files
    assert incoming.name == "a.xml"
    channel.complete(incoming, Disposition(ok=True))
    assert sorted(p.name for p in (remote / "done").iterdir()) == ["a.xml", "a.xml.ok"]
    assert list(remote.glob("a.xml*")) == []


def test_file_larger_than_max_size_is_not_downloaded_but_claimed_to_fail(
    inbox: Inbox, remote: Path
) -> None:
    put(remote / "big.csv", b"x" * 100)
    channel = inbox.channel(max_size=10)
    channel.poll(now=T0)
    result = channel.poll(now=T0 + 10)
    assert result.files == []
    [problem] = result.problems
    assert problem.incoming is not None
    assert "larger than the limit of 10" in problem.reason
    channel.complete(problem.incoming, Disposition(ok=False, reason=problem.reason))
    assert (remote / "error/big.csv.error.txt").exists()


# ------------------------------------------------------------------ small files: in memory, pipelined


def staged_files(inbox: Inbox) -> list[str]:
    return sorted(p.name for p in inbox.staging.rglob("*") if p.is_file())


def test_small_files_are_handed_over_from_memory_oldest_first_and_large_ones_staged(
    inbox: Inbox, remote: Path
) -> None:
    contents = {f"order-{i:02}.csv": f"ORD-{i};{'x' * i}\n".encode() for i in range(40)}
    contents["empty.csv"] = b""
    contents["medium.csv"] = os.urandom(40 << 10)  # above one read request: fetched alone
    contents["large.bin"] = os.urandom(2 << 20)  # streamed to a staging file
    for age, (name, data) in enumerate(reversed(contents.items())):
        put(remote / name, data, mtime=T0 - 100 - age)
    channel = inbox.channel(max_files_per_poll=100)
    files = take(channel)
    assert [f.name for f in files] == list(contents)  # oldest first, as listed
    for incoming in files:
        data = contents[incoming.name]
        assert incoming.read_bytes() == data
        assert incoming.size == len(data)
        assert incoming.sha256 == hashlib.sha256(data).hexdigest()
        assert (incoming.content is None) == (incoming.name == "large.bin")
    [large] = [f for f in files if f.name == "large.bin"]
    assert staged_files(inbox) == [large.local_path.name]  # no small file touched the disk
    for incoming in files:
        assert channel.complete(incoming, Disposition(ok=True)).ok
    assert sorted(p.name for p in (remote / "done").iterdir()) == sorted(contents)
    assert staged_files(inbox) == []


def test_small_files_beyond_the_memory_budget_of_a_poll_are_staged_on_disk(
    inbox: Inbox, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sftp_inbound, "_MAX_PENDING", 2500)
    for i in range(4):
        put(remote / f"f{i}.csv", bytes([65 + i]) * 1000, mtime=T0 - 100 + i)
    files = take(inbox.channel())
    assert [f.name for f in files] == ["f0.csv", "f1.csv", "f2.csv", "f3.csv"]
    assert [f.content is not None for f in files] == [True, True, False, False]
    for i, incoming in enumerate(files):
        assert incoming.read_bytes() == bytes([65 + i]) * 1000
    assert staged_files(inbox) == sorted(f.local_path.name for f in files[2:])


def after_listing(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> list[int]:
    """Run ``change`` right after the next listing (between the listing and the downloads)."""
    listed = sftp_listing._listdir_attr
    calls: list[int] = []

    def listing_then_change(sftp: Any, folder: str) -> Any:
        entries = listed(sftp, folder)
        if not calls:
            change()
        calls.append(1)
        return entries

    monkeypatch.setattr(sftp_listing, "_listdir_attr", listing_then_change)
    return calls


def test_a_file_whose_size_differs_from_the_listing_is_not_handed_over(
    inbox: Inbox, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(remote / "grew.csv", b"A;1\n", mtime=T0 - 100)
    put(remote / "shrank.csv", b"B;1\nB;2\n", mtime=T0 - 99)
    put(remote / "same.csv", b"C;1\n", mtime=T0 - 98)
    channel = inbox.channel()
    channel.poll(now=T0)

    def rewrite() -> None:
        put(remote / "grew.csv", b"A;1\nA;2\n", mtime=T0 - 100)
        put(remote / "shrank.csv", b"B;1\n", mtime=T0 - 99)

    after_listing(monkeypatch, rewrite)
    result = channel.poll(now=T0 + 10)
    assert [f.name for f in result.files] == ["same.csv"]
    assert sorted(p.name for p in result.problems) == ["grew.csv", "shrank.csv"]
    for problem in result.problems:
        assert "changed during download" in problem.reason and problem.incoming is None
    # watched again from scratch, then handed over once, with the content as it is now
    assert channel.poll(now=T0 + 20).files == []
    later = channel.poll(now=T0 + 30).files
    assert {f.name: f.read_bytes() for f in later} == {
        "grew.csv": b"A;1\nA;2\n",
        "shrank.csv": b"B;1\n",
    }
    assert staged_files(inbox) == []


def test_a_file_gone_after_the_listing_is_reported_and_its_neighbours_delivered(
    inbox: Inbox, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        put(remote / f"f{i:02}.csv", f"{i}\n".encode(), mtime=T0 - 100 + i)
    channel = inbox.channel()
    channel.poll(now=T0)
    after_listing(monkeypatch, lambda: (remote / "f07.csv").unlink())
    result = channel.poll(now=T0 + 10)
    assert [f.name for f in result.files] == [f"f{i:02}.csv" for i in range(30) if i != 7]
    assert [f.read_bytes() for f in result.files] == [
        f"{i}\n".encode() for i in range(30) if i != 7
    ]
    [problem] = result.problems
    assert problem.name == "f07.csv" and "will fetch again" in problem.reason
    assert channel.poll(now=T0 + 20).files == []  # gone: nothing more, nothing twice


def test_a_connection_cut_before_the_small_downloads_loses_nothing_and_takes_nothing_twice(
    inbox: Inbox, remote: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(20):
        put(remote / f"f{i:02}.csv", f"{i}\n".encode(), mtime=T0 - 100 + i)
    channel = inbox.channel()
    channel.poll(now=T0)
    after_listing(monkeypatch, sshd.kill_sessions)
    cut = channel.poll(now=T0 + 10)
    assert cut.files == []
    [problem] = cut.problems
    assert problem.name == "f00.csv" and "will fetch again" in problem.reason
    handed_out = [f for k in range(2, 5) for f in channel.poll(now=T0 + 10 * k).files]
    assert sorted(f.name for f in handed_out) == [f"f{i:02}.csv" for i in range(20)]
    assert all(f.read_bytes() == f"{int(f.name[1:3])}\n".encode() for f in handed_out)


# ------------------------------------------------------------------ memory across restarts


def test_restart_does_not_refetch_a_file_left_in_place(
    inbox: Inbox, remote: Path, endpoint: SftpEndpointSettings
) -> None:
    put(remote / "a.csv", b"1", mtime=T0 - 100)
    channel = inbox.channel(after=AfterAction(action="leave"))
    [incoming] = take(channel)
    assert channel.complete(incoming, Disposition(ok=True)).action == "left"
    channel.close()
    fresh = SftpConnections({"acme": endpoint})  # a restarted gateway: new connection, same journal
    try:
        restarted = inbox.channel(fresh, after=AfterAction(action="leave"))
        assert take(restarted, start=T0 + 100) == []
    finally:
        fresh.close()


def test_restart_memory_lives_in_the_journal(
    inbox: Inbox, remote: Path, endpoint: SftpEndpointSettings, journal_url: str
) -> None:
    put(remote / "a.csv", b"1", mtime=T0 - 100)
    with closing(Journal.open(journal_url)) as journal:
        inbox.seen = JournalSeenFiles(journal)  # type: ignore[assignment]
        channel = inbox.channel(after=AfterAction(action="leave"))
        [incoming] = take(channel)
        channel.complete(incoming, Disposition(ok=True))
    fresh = SftpConnections({"acme": endpoint})
    with closing(Journal.open(journal_url)) as reopened, closing(fresh):
        inbox.seen = JournalSeenFiles(reopened)  # type: ignore[assignment]
        restarted = inbox.channel(fresh, after=AfterAction(action="leave"))
        assert take(restarted, start=T0 + 100) == []
        put(remote / "a.csv", b"2", mtime=T0 - 10)
        assert [f.name for f in take(restarted, start=T0 + 200)] == ["a.csv"]


def test_same_name_with_new_content_is_processed_but_a_mere_touch_is_not(
    inbox: Inbox, remote: Path
) -> None:
    path = put(remote / "stock.csv", b"A;1\n", mtime=T0 - 100)
    channel = inbox.channel(after=AfterAction(action="leave"))
    [first] = take(channel)
    channel.complete(first, Disposition(ok=True))
    os.utime(path, (T0 - 50, T0 - 50))  # touched: same bytes
    assert take(channel, start=T0 + 100) == []
    put(path, b"A;2\n", mtime=T0 - 20)  # same name, new content
    [second] = take(channel, start=T0 + 200)
    assert second.read_bytes() == b"A;2\n"


def test_staged_downloads_are_readable_by_the_gateway_only(inbox: Inbox, remote: Path) -> None:
    put(remote / "big.bin", os.urandom(2 << 20))  # over the in-memory size: staged on disk
    previous = os.umask(0)
    try:
        [incoming] = take(inbox.channel(file_mode=0o640))
    finally:
        os.umask(previous)
    assert incoming.content is None
    assert stat.S_IMODE(incoming.local_path.stat().st_mode) == 0o640
    assert stat.S_IMODE(incoming.local_path.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE(inbox.staging.stat().st_mode) == 0o750


# ------------------------------------------------------------------ changed after reading


def test_a_remote_source_that_grew_after_it_was_read_is_left_and_fetched_again(
    inbox: Inbox, remote: Path
) -> None:
    path = put(remote / "orders.csv", b"8 orders\n", mtime=T0 - 100)
    channel = inbox.channel()
    [incoming] = take(channel)
    put(path, b"8 orders\n12 more\n", mtime=T0 - 50)  # the partner's writer went on

    result = channel.complete(incoming, Disposition(ok=True))

    assert (result.ok, result.action) == (True, "kept-changed")
    assert result.detail == "it changed after it was read (9 bytes read, 17 bytes now)"
    assert path.read_bytes() == b"8 orders\n12 more\n"
    assert not (remote / "done").exists()
    [again] = take(channel, start=T0 + 100)
    assert again.read_bytes() == b"8 orders\n12 more\n"


def test_a_remote_source_rewritten_with_the_same_size_is_left_but_a_touch_is_not(
    inbox: Inbox, remote: Path
) -> None:
    path = put(remote / "a.csv", b"CMD-1;2\n", mtime=T0 - 100)
    channel = inbox.channel(after=AfterAction(action="delete"))
    [incoming] = take(channel)
    put(path, b"CMD-1;3\n", mtime=T0 - 50)
    assert channel.complete(incoming, Disposition(ok=True)).action == "kept-changed"

    [again] = take(channel, start=T0 + 100)
    os.utime(path, (T0 - 10, T0 - 10))  # touched only: the same bytes
    assert channel.complete(again, Disposition(ok=True)).action == "deleted"
    assert not path.exists()


def test_a_left_remote_source_that_changed_is_fetched_again(inbox: Inbox, remote: Path) -> None:
    path = put(remote / "stock.csv", b"A;1\n", mtime=T0 - 100)
    channel = inbox.channel(after=AfterAction(action="leave"))
    [incoming] = take(channel)
    put(path, b"A;1\nB;2\n", mtime=T0 - 50)

    assert channel.complete(incoming, Disposition(ok=True)).action == "kept-changed"
    [again] = take(channel, start=T0 + 100)
    assert again.read_bytes() == b"A;1\nB;2\n"


# ------------------------------------------------------------------ connection failures


# paramiko's read-ahead thread dies with its own EOFError when the connection is cut while it
# still sends read requests; the download itself fails cleanly, which is what is checked here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_connection_killed_mid_download_file_is_fetched_again_and_delivered_once(
    inbox: Inbox, remote: Path, sshd: SshServer
) -> None:
    data = os.urandom(1 << 20) * 64
    put(remote / "big.bin", data)
    channel = inbox.channel()
    channel.poll(now=T0)
    killed = threading.Event()

    def kill_when_download_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for path in inbox.staging.rglob("*big.bin"):
                try:
                    if path.stat().st_size >= 1 << 20:
                        sshd.kill_sessions()
                        killed.set()
                        return
                except FileNotFoundError:
                    pass
            time.sleep(0.001)

    killer = threading.Thread(target=kill_when_download_started)
    killer.start()
    cut = channel.poll(now=T0 + 10)
    killer.join()
    assert killed.is_set()
    assert cut.files == []
    assert [p.name for p in cut.problems] == ["big.bin"]
    assert "will fetch again" in cut.problems[0].reason
    assert list(inbox.staging.rglob("*big.bin")) == []  # no half file handed out or left

    handed_out = []
    for k in range(2, 6):
        handed_out += channel.poll(now=T0 + 10 * k).files
        for incoming in handed_out[-1:]:
            if incoming.local_path.exists():
                assert hashlib.sha256(incoming.local_path.read_bytes()).hexdigest() == (
                    hashlib.sha256(data).hexdigest()
                )
                channel.complete(incoming, Disposition(ok=True))
    assert [f.name for f in handed_out] == ["big.bin"]
    assert (remote / "done/big.bin").stat().st_size == len(data)


def test_one_connection_is_reused_across_polls(inbox: Inbox, remote: Path, sshd: SshServer) -> None:
    before = set(sshd.session_pids())
    channel = inbox.channel()
    for k in range(4):
        put(remote / f"f{k}.csv", b"1")
        for incoming in channel.poll(now=T0 + 10 * k).files:
            channel.complete(incoming, Disposition(ok=True))
    listener_children = set(sshd.session_pids()) - before
    assert listener_children  # the connection is there...
    assert sorted(p.name for p in (remote / "done").iterdir()) == ["f0.csv", "f1.csv", "f2.csv"]
    # ...and it is one: one per-connection process tree, not one per poll.
    roots = {
        pid
        for pid in listener_children
        if psutil.Process(pid).ppid() == sshd.process.pid  # type: ignore[union-attr]
    }
    assert len(roots) == 1


def test_a_down_partner_fails_fast_and_backs_off(
    tmp_path: Path, endpoint: SftpEndpointSettings
) -> None:
    down = replace(endpoint, port=free_port())
    conns = SftpConnections({"acme": down}, backoff=Backoff(first=60))
    channel = SftpInboundChannel(
        SftpInboundSettings(endpoint="acme", path="/x"),
        conns,
        staging_dir=tmp_path / "staging",
        seen=MemorySeenFiles(),
    )
    with pytest.raises(ChannelError, match=r"cannot connect to 127\.0\.0\.1"):
        channel.poll(now=T0)
    with pytest.raises(ChannelError, match=r"unavailable \(next attempt in"):
        channel.poll(now=T0 + 5)


# ------------------------------------------------------------------ security


def test_unknown_host_key_is_refused_showing_the_fingerprint(
    endpoint: SftpEndpointSettings, inbox: Inbox
) -> None:
    endpoint.known_hosts.write_text("")
    with pytest.raises(HostKeyError, match=r"unknown host key .* SHA256:") as caught:
        inbox.channel().poll(now=T0)
    assert caught.value.fingerprint.startswith("SHA256:")
    assert caught.value.fingerprint in str(caught.value)


def test_changed_host_key_is_refused(
    endpoint: SftpEndpointSettings, inbox: Inbox, sshd: SshServer, tmp_path: Path
) -> None:
    other = write_ed25519_key(tmp_path / "impostor").split()
    endpoint.known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyError, match="has CHANGED"):
        inbox.channel().poll(now=T0)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_key_authentication_with_each_key_type(
    kind: str, endpoint: SftpEndpointSettings, sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    sshd.authorize(write_ed25519_key(tmp_path / f"id_{kind}", kind=kind))
    steps = check_endpoint(
        replace(endpoint, key_file=tmp_path / f"id_{kind}"), folders=[str(remote)]
    )
    assert all(step.ok for step in steps), steps


def test_encrypted_key_with_its_passphrase_from_a_secret_file(
    endpoint: SftpEndpointSettings, sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    sshd.authorize(write_ed25519_key(tmp_path / "id_locked", passphrase=b"s3cret phrase"))
    (tmp_path / "passphrase").write_text("s3cret phrase\n")
    locked = replace(endpoint, key_file=tmp_path / "id_locked")
    from_file = replace(locked, key_passphrase_file=tmp_path / "passphrase")
    from_env = replace(locked, key_passphrase="s3cret phrase")
    assert all(step.ok for step in check_endpoint(from_file, folders=[str(remote)]))
    assert all(step.ok for step in check_endpoint(from_env, folders=[str(remote)]))
    [*_, refused] = check_endpoint(locked, folders=[str(remote)])
    assert not refused.ok
    assert "is encrypted; set key_passphrase or key_passphrase_file" in refused.detail
    [*_, wrong] = check_endpoint(replace(locked, key_passphrase="guess"), folders=[str(remote)])
    assert not wrong.ok
    assert f"cannot load key file {tmp_path / 'id_locked'}" in wrong.detail
    assert "guess" not in wrong.detail


def test_wrong_key_gives_a_clear_error(
    endpoint: SftpEndpointSettings, remote: Path, tmp_path: Path
) -> None:
    write_ed25519_key(tmp_path / "stranger")
    stranger = replace(endpoint, key_file=tmp_path / "stranger")
    steps = check_endpoint(stranger, folders=[str(remote)])
    assert [(s.step, s.ok) for s in steps] == [
        ("connect", True),
        ("host key", True),
        ("authenticate", False),
    ]
    assert "authentication failed for" in steps[-1].detail
    assert "the server refused the credentials" in steps[-1].detail


def test_wrong_password_gives_a_clear_error_without_showing_it(
    endpoint: SftpEndpointSettings, tmp_path: Path
) -> None:
    bad = replace(endpoint, key_file=None, password="not-the-password-42")
    conns = SftpConnections({"acme": bad})
    with (
        pytest.raises(ChannelError, match=r"authentication failed .* with password") as caught,
        conns.session("acme"),
    ):
        pass
    conns.close()
    assert "not-the-password-42" not in str(caught.value)
    assert "not-the-password-42" not in repr(bad)


def test_check_reports_every_step(endpoint: SftpEndpointSettings, remote: Path) -> None:
    steps = check_endpoint(endpoint, folders=[str(remote)], write_folders=[str(remote)])
    assert [(s.step, s.ok) for s in steps] == [
        ("connect", True),
        ("host key", True),
        ("authenticate", True),
        (f"list {remote}", True),
        (f"write {remote}", True),
    ]
    assert list(remote.iterdir()) == []


# ------------------------------------------------------------------ outbound


def outbox(connections: SftpConnections, remote: Path, **upload: object) -> SftpOutboundChannel:
    return SftpOutboundChannel(
        SftpOutboundSettings(endpoint="acme", path=str(remote), upload=UploadSettings(**upload)),  # type: ignore[arg-type]
        connections,
    )


def test_upload_lands_under_its_name_with_a_done_file(
    connections: SftpConnections, remote: Path, tmp_path: Path
) -> None:
    src = put(tmp_path / "orders.csv", b"o;1\n" * 1000)
    delivered = outbox(connections, remote, done_file=".ok").deliver(src, "orders.csv")
    assert delivered.size == 4000
    assert delivered.path == f"{remote}/orders.csv"
    assert (remote / "orders.csv").read_bytes() == src.read_bytes()
    assert sorted(p.name for p in remote.iterdir()) == ["orders.csv", "orders.csv.ok"]


def test_upload_policies_when_the_name_exists(
    connections: SftpConnections, remote: Path, tmp_path: Path
) -> None:
    src = put(tmp_path / "new.csv", b"new")
    put(remote / "a.csv", b"old")
    with pytest.raises(ChannelError, match="already exists"):
        outbox(connections, remote).deliver(src, "a.csv")
    assert sorted(p.name for p in remote.iterdir()) == ["a.csv"]  # temp cleaned up
    assert outbox(connections, remote, if_exists="rename").deliver(src, "a.csv").name == "a.1.csv"
    assert (remote / "a.csv").read_bytes() == b"old"
    assert outbox(connections, remote, if_exists="replace").deliver(src, "a.csv").name == "a.csv"
    assert (remote / "a.csv").read_bytes() == b"new"


def test_a_dropped_connection_is_let_go_before_the_server_sees_it_close(
    connections: SftpConnections, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever sees the session end (the server, a test watching it) finds the connection
    no longer held: ``opened`` is False before the transport is closed."""
    connection = connections.connection("acme")
    with connection.session() as sftp:
        sftp.listdir(".")
    transport = connection._transport
    assert transport is not None
    held_at_close: list[bool] = []
    real_close = transport.close

    def close() -> None:
        held_at_close.append(connection.opened)
        real_close()

    monkeypatch.setattr(transport, "close", close)

    connection.drop()

    assert held_at_close == [False]
    assert not transport.is_active()


def test_connection_dropped_mid_upload_leaves_no_final_file_and_the_next_delivery_reconnects(
    connections: SftpConnections, remote: Path, sshd: SshServer, tmp_path: Path
) -> None:
    src = tmp_path / "big.csv"
    with src.open("wb") as fh:
        fh.truncate(256 << 20)
    temp = remote / ".orders.csv.part"
    killed = threading.Event()

    def kill_when_upload_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if temp.stat().st_size >= 1 << 20:
                    sshd.kill_sessions()
                    killed.set()
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    killer = threading.Thread(target=kill_when_upload_started)
    killer.start()
    with pytest.raises(ChannelError, match=r"upload of orders\.csv"):
        outbox(connections, remote).deliver(src, "orders.csv")
    killer.join()
    assert killed.is_set()
    assert not (remote / "orders.csv").exists()
    delivered = outbox(connections, remote).deliver(put(tmp_path / "ok.csv", b"ok"), "orders.csv")
    assert delivered.size == 2
    assert (remote / "orders.csv").read_bytes() == b"ok"


UPLOADER = """
import sys
from pathlib import Path
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.outbound import SftpOutboundChannel
from edigw.channels.sftp.settings import SftpEndpointSettings, SftpOutboundSettings
host, port, user, key, known_hosts, folder, src = sys.argv[1:]
endpoint = SftpEndpointSettings(name="acme", host=host, port=int(port), username=user,
                                key_file=Path(key), known_hosts=Path(known_hosts))
channel = SftpOutboundChannel(SftpOutboundSettings("acme", folder), SftpConnections({"acme": endpoint}))
channel.deliver(Path(src), "orders.csv")
"""


def test_a_crash_mid_upload_leaves_no_file_under_its_final_name(
    endpoint: SftpEndpointSettings, connections: SftpConnections, remote: Path, tmp_path: Path
) -> None:
    src = tmp_path / "huge.csv"
    with src.open("wb") as fh:
        fh.truncate(256 << 20)
    args = [endpoint.host, str(endpoint.port), endpoint.username, str(endpoint.key_file)]
    args += [str(endpoint.known_hosts), str(remote), str(src)]
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, *args])
    temp = remote / ".orders.csv.part"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if temp.exists() and temp.stat().st_size >= 1 << 20:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the upload finished before the crash could happen"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (remote / "orders.csv").exists()
    # the next run delivers over the stale temp file
    delivered = outbox(connections, remote).deliver(
        put(tmp_path / "small.csv", b"ok"), "orders.csv"
    )
    assert (remote / "orders.csv").read_bytes() == b"ok"
    assert delivered.size == 2
    assert not temp.exists()


def test_a_replayed_files_remote_error_copy_goes_to_done_and_its_report_away(
    inbox: Inbox, remote: Path
) -> None:
    put(remote / "a.csv", b"1")
    channel = inbox.channel()
    [incoming] = take(channel)
    failed = channel.complete(incoming, Disposition(ok=False, reason="refused", show_id="F-3"))

    result = channel.clear_error("a.csv", failed.target)

    assert (result.ok, result.action, result.target) == (
        True,
        "error-cleared",
        f"{remote}/done/a.csv",
    )
    assert (remote / "done/a.csv").read_bytes() == b"1"
    assert list((remote / "error").iterdir()) == []
