"""An export file reaches the partner once: a renamed delivery found after a kill, and a
step failing after the file is in place, send no record a second time (local and SFTP)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.channels.base import UploadSettings
from edigw.channels.local import LocalOutboundChannel, LocalOutboundSettings
from edigw.errors import ChannelError
from tests.test_outbound_export import Gateway, _gateway, _sftp_carrier

TAKEN = "webshop-articles_0002.csv"
RENAMED = "webshop-articles_0002.1.csv"


class NodeDied(BaseException):
    """SIGKILL: the process ends where it stands and writes nothing more."""


@pytest.fixture
def fresh(sandbox_factory: Any, tmp_path: Path) -> Iterator[Gateway]:
    yield from _gateway(sandbox_factory(), tmp_path)


def local(gw: Gateway, upload: UploadSettings) -> LocalOutboundChannel:
    return LocalOutboundChannel(LocalOutboundSettings(gw.outbox, upload))


def killed_after_delivering(gw: Gateway, flow: Any, channel: Any) -> None:
    """A run whose node dies once the channel delivered, before the journal knows it."""

    def killed(*args: Any, **kwargs: Any) -> None:
        raise NodeDied

    with pytest.MonkeyPatch.context() as dying:
        dying.setattr(gw.journal, "finish_export_run", killed)
        with pytest.raises(NodeDied):
            gw.run(flow, channel=channel)


def renamed_delivery_is_recognised(gw: Gateway, channel: Any, folder: Path) -> None:
    flow = gw.flow("webshop-articles.csv.j2", "articles.list")
    gw.run(flow, channel=channel)
    gw.sandbox.touch("articles", keys=["ART-0004"])
    (folder / TAKEN).write_text("left by the partner")
    killed_after_delivering(gw, flow, channel)
    [pending] = gw.journal.pending_export_deliveries("p", flow.flow)
    assert pending.file_name == TAKEN
    assert (folder / RENAMED).exists()

    assert gw.run(flow, channel=channel).state == "empty"

    assert {p.name for p in folder.iterdir()} == {"webshop-articles_0001.csv", TAKEN, RENAMED}
    run = gw.journal.export_run(pending.run_id)
    assert (run.state, run.file_name) == ("delivered", RENAMED)
    assert gw.journal.cursor("p", flow.flow) == pending.mark_at


def test_after_a_kill_a_locally_renamed_delivery_is_recognised_not_sent_again(fresh):
    channel = local(fresh, UploadSettings(if_exists="rename"))
    renamed_delivery_is_recognised(fresh, channel, fresh.outbox)


@pytest.mark.sftp
def test_after_a_kill_a_delivery_renamed_on_the_sftp_server_is_recognised_not_sent_again(
    fresh, sshd, tmp_path
):
    with _sftp_carrier(sshd, tmp_path, UploadSettings(if_exists="rename")) as (channel, remote):
        renamed_delivery_is_recognised(fresh, channel, remote)


def test_a_numbered_name_past_the_first_free_one_is_not_taken_for_the_delivery(tmp_path):
    channel = LocalOutboundChannel(
        LocalOutboundSettings(tmp_path, UploadSettings(if_exists="rename"))
    )
    digest = hashlib.sha256(b"b").hexdigest()
    (tmp_path / "x.csv").write_text("a")
    (tmp_path / "x.2.csv").write_text("b")
    assert channel.delivered_as("x.csv", size=1, sha256=digest) is None  # x.1.csv was free
    (tmp_path / "x.1.csv").write_text("c")
    assert channel.delivered_as("x.csv", size=1, sha256=digest) == "x.2.csv"


NEXT = "webshop-articles_0002.csv"


def done_file_failing_sends_nothing_twice(gw: Gateway, channel: Any, folder: Path) -> None:
    """The second run's done file cannot be written once its file is in place."""
    flow = gw.flow("webshop-articles.csv.j2", "articles.list")
    gw.run(flow, channel=channel)
    touched = gw.sandbox.touch("articles", keys=["ART-0004"])

    with pytest.raises(ChannelError):  # told, once the journal knows the file delivered
        gw.run(flow, channel=channel)

    [run] = gw.journal.export_runs(partner="p", flow=flow.flow, limit=1)
    assert (run.state, run.file_name, run.records) == ("delivered", NEXT, len(touched))
    assert gw.journal.cursor("p", flow.flow) == run.window_to
    assert gw.run(flow, channel=channel).state == "empty"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".ok")) == [
        "webshop-articles_0001.csv",
        NEXT,
    ]


def test_a_local_done_file_failing_after_the_file_is_in_place_sends_no_record_twice(
    fresh, tmp_path
):
    channel = local(fresh, UploadSettings(done_file=".ok"))
    fresh.outbox.mkdir()
    (fresh.outbox / f"{NEXT}.ok").symlink_to(tmp_path / "nowhere" / "x")  # cannot be created
    done_file_failing_sends_nothing_twice(fresh, channel, fresh.outbox)


@pytest.mark.sftp
def test_an_sftp_done_file_failing_after_the_rename_sends_no_record_twice(fresh, sshd, tmp_path):
    with _sftp_carrier(sshd, tmp_path, UploadSettings(done_file=".ok")) as (channel, remote):
        (remote / f"{NEXT}.ok").mkdir()  # a folder where the done file goes: its upload fails
        done_file_failing_sends_nothing_twice(fresh, channel, remote)


def done_file_is_written_by_the_next_run(
    gw: Gateway, channel: Any, folder: Path, obstacle: Path
) -> None:
    """The second run's done file cannot be written; once it can, the third run writes it."""
    flow = gw.flow("webshop-articles.csv.j2", "articles.list")
    gw.run(flow, channel=channel)
    gw.sandbox.touch("articles", keys=["ART-0004"])
    with pytest.raises(ChannelError):
        gw.run(flow, channel=channel)
    [owing] = gw.journal.export_runs(partner="p", flow=flow.flow, limit=1)
    assert owing.done_file_owed
    assert not (folder / f"{NEXT}.ok").is_file()
    if obstacle.is_dir():
        obstacle.rmdir()
    else:
        obstacle.unlink()

    assert gw.run(flow, channel=channel).state == "empty"

    assert (folder / f"{NEXT}.ok").is_file()
    run = gw.journal.export_run(owing.id)
    assert not run.done_file_owed
    assert f"{NEXT}.ok written at" in (run.error or "")  # journalled, after what failed
    assert gw.journal.owed_done_files("p", flow.flow) == []


def test_a_local_done_file_that_failed_after_the_file_was_in_place_is_written_by_the_next_run(
    fresh, tmp_path
):
    channel = local(fresh, UploadSettings(done_file=".ok"))
    fresh.outbox.mkdir()
    obstacle = fresh.outbox / f"{NEXT}.ok"
    obstacle.symlink_to(tmp_path / "nowhere" / "x")  # cannot be created, until removed
    done_file_is_written_by_the_next_run(fresh, channel, fresh.outbox, obstacle)


@pytest.mark.sftp
def test_an_sftp_done_file_that_failed_after_the_rename_is_written_by_the_next_run(
    fresh, sshd, tmp_path
):
    with _sftp_carrier(sshd, tmp_path, UploadSettings(done_file=".ok")) as (channel, remote):
        obstacle = remote / f"{NEXT}.ok"
        obstacle.mkdir()  # a folder where the done file goes: its upload fails, until removed
        done_file_is_written_by_the_next_run(fresh, channel, remote, obstacle)
