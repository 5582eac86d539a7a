"""Local folders: `edigw run` creates what the configuration names; `config check` reports
what is missing, cannot be written, or would make a move cross file systems."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.errors import ConfigError
from edigw.pipeline.assembly import archive_of, open_parts
from edigw.pipeline.folders import (
    Folder,
    check_folders,
    create_folders,
    local_folders,
    not_writable,
)
from tests.fixtures.gateway import Workspace, inbound_flow, write_workspace

ENV = {"ECOLIX_TOKEN": "T"}


def workspace(root: Path, **flow_options: object) -> Workspace:
    flows = {
        "webshop": {
            "orders": inbound_flow(
                "ecommerce-orders-csv.yaml", "webshop", "orders", **flow_options
            ),
            "articles": {
                "direction": "outbound",
                "query": {"resource": "articles.list"},
                "template": str(Path(__file__).parents[1] / "templates/webshop-articles.csv.j2"),
                "channel": {"type": "local", "path": "outbox/webshop"},
            },
        }
    }
    ws = write_workspace(root, base_url="http://127.0.0.1:9/api/v1", token="T", flows=flows)
    shutil.rmtree(root / "inbox")  # as `edigw init` leaves it: no folder yet
    return ws


def check(ws: Workspace) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["config", "check", "-c", str(ws.config_path)], env=ENV)
    return result.exit_code, result.output.splitlines()


def roles(folders: list[Folder]) -> list[tuple[str, str]]:
    return [(folder.purpose, str(folder.path)) for folder in folders]


def test_the_configuration_names_inboxes_done_error_outboxes_archive_and_data(
    tmp_path: Path,
) -> None:
    ws = workspace(tmp_path)
    assert roles(local_folders(ws.load())) == [
        ("data folder", f"{tmp_path}/data"),
        ("archive", f"{tmp_path}/data/archive"),
        ("inbox of webshop/orders", f"{tmp_path}/inbox/webshop/orders"),
        ("done folder of webshop/orders", f"{tmp_path}/inbox/webshop/orders/done"),
        ("error folder of webshop/orders", f"{tmp_path}/inbox/webshop/orders/error"),
        ("outbox of webshop/articles", f"{tmp_path}/outbox/webshop"),
    ]


def test_a_flow_that_deletes_its_sources_has_no_done_folder(tmp_path: Path) -> None:
    ws = workspace(tmp_path, after={"action": "delete"})
    purposes = [folder.purpose for folder in local_folders(ws.load())]
    assert "done folder of webshop/orders" not in purposes
    assert "error folder of webshop/orders" in purposes


def test_an_sftp_flow_names_no_local_folder(tmp_path: Path) -> None:
    ws = workspace(tmp_path, channel={"type": "sftp", "endpoint": "p", "path": "/out"})
    text = ws.config_path.read_text(encoding="utf-8")
    endpoint = (
        f"sftp_endpoints:\n  p: {{host: h, username: u, password: x, known_hosts: {tmp_path}/kh}}\n"
    )
    ws.config_path.write_text(text + endpoint, encoding="utf-8")
    purposes = [folder.purpose for folder in local_folders(ws.load())]
    assert not any("webshop/orders" in purpose for purpose in purposes)


def test_a_sqlite_journal_outside_the_data_folder_needs_its_own_folder(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(
        text + f"journal: sqlite:///{tmp_path}/db/journal.sqlite\n", encoding="utf-8"
    )
    assert ("journal folder", f"{tmp_path}/db") in roles(local_folders(ws.load()))


def test_running_creates_every_missing_folder_and_logs_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace(tmp_path)
    config = ws.load()
    with caplog.at_level(logging.INFO, logger="edigw.folders"), open_parts(config):
        pass
    for folder in local_folders(config):
        assert folder.path.is_dir(), folder
    created = [r.getMessage() for r in caplog.records]
    assert f"created folder {tmp_path}/inbox/webshop/orders (inbox of webshop/orders)" in created
    assert f"created folder {tmp_path}/outbox/webshop (outbox of webshop/articles)" in created
    assert len(created) == len(local_folders(config))


def test_folders_that_exist_are_neither_created_nor_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace(tmp_path)
    folders = local_folders(ws.load())
    create_folders(folders)
    with caplog.at_level(logging.INFO, logger="edigw.folders"):
        assert create_folders(folders) == []
    assert caplog.records == []


def test_the_one_shot_commands_create_no_inbox(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with open_parts(ws.load(), with_channels=False):
        pass
    assert not (tmp_path / "inbox").exists()


def test_running_refuses_to_start_when_a_folder_cannot_be_created(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (tmp_path / "inbox").write_text("a file where the inboxes should go", encoding="utf-8")
    with pytest.raises(ConfigError) as raised, open_parts(ws.load()):
        pass
    assert raised.value.problems == [
        f"cannot create {tmp_path}/inbox/webshop/orders (inbox of webshop/orders): Not a directory",
        f"cannot create {tmp_path}/inbox/webshop/orders/done (done folder of webshop/orders): "
        "Not a directory",
        f"cannot create {tmp_path}/inbox/webshop/orders/error (error folder of webshop/orders): "
        "Not a directory",
    ]


# --------------------------------------------------------------------------- config check


def test_check_notes_the_missing_folders_that_run_will_create(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    code, lines = check(ws)
    assert code == 0, lines
    assert lines[1:] == [
        "note: 6 folders do not exist yet; `edigw run` creates them:",
        "  data  (data folder)",
        "  data/archive  (archive)",
        "  inbox/webshop/orders, with done/ and error/ in it  (inbox of webshop/orders)",
        "  outbox/webshop  (outbox of webshop/articles)",
    ]


def test_check_says_nothing_of_folders_once_they_all_exist(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    create_folders(local_folders(ws.load()))
    code, lines = check(ws)
    assert code == 0
    assert len(lines) == 1
    assert lines[0].startswith("ok ")


def test_check_reports_a_file_where_a_folder_should_be(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    create_folders(local_folders(ws.load()))
    outbox = tmp_path / "outbox" / "webshop"
    outbox.rmdir()
    outbox.write_text("oops", encoding="utf-8")
    code, lines = check(ws)
    assert code == 1
    assert lines == [f"Error: {outbox} (outbox of webshop/articles) is a file, not a folder"]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[list[Path]]:
    """Folders made immutable (even root cannot write into them), made mutable again after."""
    frozen: list[Path] = []
    yield frozen
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def freeze(path: Path, frozen: list[Path]) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support immutable folders")
    frozen.append(path)


def test_check_reports_a_folder_that_cannot_be_written(
    tmp_path: Path, immutable: list[Path]
) -> None:
    ws = workspace(tmp_path)
    create_folders(local_folders(ws.load()))
    error = tmp_path / "inbox" / "webshop" / "orders" / "error"
    freeze(error, immutable)
    code, lines = check(ws)
    assert code == 1
    assert lines == [
        f"Error: {error} (error folder of webshop/orders) cannot be written: Operation not permitted"
    ]


def test_check_reports_a_missing_folder_that_cannot_be_created(
    tmp_path: Path, immutable: list[Path]
) -> None:
    ws = workspace(tmp_path)
    create_folders(local_folders(ws.load()))
    outbox = tmp_path / "outbox"
    shutil.rmtree(outbox / "webshop")
    freeze(outbox, immutable)
    code, lines = check(ws)
    assert code == 1
    assert lines == [
        f"Error: {outbox}/webshop (outbox of webshop/articles) cannot be created in {outbox}: "
        "Operation not permitted"
    ]


def test_check_reports_a_done_folder_on_another_file_system(tmp_path: Path) -> None:
    elsewhere = Path("/dev/shm") / f"edigw-test-{uuid.uuid4().hex}"
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system at hand")
    elsewhere.mkdir()
    try:
        ws = workspace(tmp_path)
        create_folders(local_folders(ws.load()))
        done = tmp_path / "inbox" / "webshop" / "orders" / "done"
        done.rmdir()
        done.symlink_to(elsewhere)
        code, lines = check(ws)
    finally:
        shutil.rmtree(elsewhere)
    assert code == 1
    assert lines == [
        f"Error: {done} (done folder of webshop/orders) is on another file system than "
        f"{tmp_path}/inbox/webshop/orders: files cannot be moved there in one atomic step; "
        "put both on one file system"
    ]


def test_check_reports_a_file_in_the_way_of_a_missing_folder(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (tmp_path / "outbox").write_text("in the way", encoding="utf-8")
    code, lines = check(ws)
    assert code == 1
    assert lines == [
        f"Error: {tmp_path}/outbox/webshop (outbox of webshop/articles) cannot be created: "
        f"{tmp_path}/outbox is a file"
    ]


def test_found_folders_match_what_check_folders_reports(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    found = check_folders(ws.load())
    assert [c.folder for c in found] == local_folders(ws.load())
    assert all(c.missing and c.problem is None for c in found)


@pytest.mark.parametrize("kind", ["default", "postgresql"])
def test_the_archive_folder_created_at_start_is_the_one_the_archive_writes_into(
    tmp_path: Path, kind: str
) -> None:
    """A new node with an empty disk is healthy at once: the archive probe checks the very
    folder the gateway created (a postgresql archive's cache, not an unused data/archive)."""
    ws = workspace(tmp_path)
    if kind == "postgresql":
        text = ws.config_path.read_text(encoding="utf-8")
        ws.config_path.write_text(
            text + "journal: postgresql+psycopg://edigw@127.0.0.1:9/edigw\n"
            "archive: {kind: postgresql}\n",
            encoding="utf-8",
        )
    config = ws.load()
    archive = archive_of(config)
    try:
        create_folders(local_folders(config))
        assert not_writable(archive.root) is None
    finally:
        archive.close()
    assert (Path(config.data_dir) / "archive").exists() == (kind == "default")
