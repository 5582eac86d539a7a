"""What edigw keeps for itself is readable by the gateway's user only (or its group, when
configured), whatever the process umask; what it hands to partners is left as their folder
gives it.

Tests run as root, who reads everything anyway: the modes are checked with ``stat``.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edigw.config import load_config
from edigw.errors import ConfigError
from edigw.filemodes import FileModes
from edigw.journal.archive_folder import FolderArchive
from edigw.pipeline.folders import create_folders, local_folders
from edigw.pipeline.health import HEALTH_FILE, HealthSnapshot, write_health
from edigw.pipeline.service import write_usage
from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)

NOT_ORDERS = "not;an;order\n1;2;3\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: every mode seen is the one edigw chose."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def workspace(root: Path, **security: Any) -> Any:
    ws = write_workspace(
        root,
        base_url="http://127.0.0.1:9/api/v1",  # nothing is sent: every file fails at mapping
        token="unused",
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )
    if security:
        config = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
        config["security"] = security
        ws.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return ws


def run_one_bad_file(ws: Any) -> tuple[Path, Path, dict[Path, int]]:
    """Drop a file that fails, wait for its report; (data_dir, report) while still running,
    with the journal's -wal and -shm open."""
    inbox = ws.inbox("webshop", "orders")
    (inbox / "bad.csv").write_text(NOT_ORDERS, encoding="utf-8")
    report = inbox / "error" / "bad.csv.error.txt"
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="the file's outcome")
        wait_until(report.exists, what="the error report")
        write_usage(parts, Path(parts.config.data_dir) / "usage.json")
        data = Path(parts.config.data_dir)
        modes = {p: mode(p) for p in [data, *data.rglob("*")] if "staging" not in p.parts}
        modes[report] = mode(report)
    return data, report, modes


@pytest.mark.usefixtures("open_umask")
def test_by_default_what_edigw_keeps_is_for_the_gateways_user_only(tmp_path: Path) -> None:
    data, report, modes = run_one_bad_file(workspace(tmp_path / "gw"))
    [copy] = [p for p in modes if p.is_file() and p.parent.parent.parent.name == "archive"]
    assert modes[copy] == 0o400
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "usage.json"):
        assert modes[data / name] == 0o600, name
    assert modes[report] == 0o600
    folders = [p for p in modes if p.is_dir()]
    assert data / "archive" / ".tmp" in folders
    assert {modes[p] for p in folders} == {0o700}


@pytest.mark.usefixtures("open_umask")
def test_file_mode_0640_lets_the_group_read(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "gw", file_mode="0640")
    data, report, modes = run_one_bad_file(ws)
    [copy] = [p for p in modes if p.is_file() and p.parent.parent.parent.name == "archive"]
    assert modes[copy] == 0o440
    assert modes[data / "journal.sqlite"] == 0o640
    assert modes[data / "journal.sqlite-wal"] == 0o640
    assert modes[report] == 0o640
    assert {modes[p] for p in modes if p.is_dir()} == {0o750}


@pytest.mark.usefixtures("open_umask")
def test_the_partners_file_keeps_its_own_mode(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "gw")
    inbox = ws.inbox("webshop", "orders")
    source = inbox / "bad.csv"
    source.write_text(NOT_ORDERS, encoding="utf-8")
    source.chmod(0o664)
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="the file's outcome")
        wait_until((inbox / "error" / "bad.csv").exists, what="the file moved")
    assert mode(inbox / "error" / "bad.csv") == 0o664


@pytest.mark.usefixtures("open_umask")
def test_run_creates_its_own_folders_private_and_the_partners_folders_as_the_umask_gives(
    tmp_path: Path,
) -> None:
    config = workspace(tmp_path / "gw", file_mode="0640").load()
    data, inbox = Path(config.data_dir), Path(config.inbound_flows()[0].channel.path)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(inbox)
    create_folders(local_folders(config), config.security.modes)
    assert mode(data) == mode(data / "archive") == 0o750
    assert mode(inbox) == mode(inbox / "error") == 0o777  # a partner writes there


@pytest.mark.usefixtures("open_umask")
def test_the_published_health_is_for_the_gateways_user_only(tmp_path: Path) -> None:
    snapshot = HealthSnapshot(at=datetime.now(UTC), node="gw:1", state="running")
    write_health(snapshot, tmp_path)
    assert mode(tmp_path / HEALTH_FILE) == 0o600
    write_health(snapshot, tmp_path, FileModes(0o640))
    assert mode(tmp_path / HEALTH_FILE) == 0o640


@pytest.mark.usefixtures("open_umask")
def test_an_archive_copy_is_read_only_for_its_owner(tmp_path: Path) -> None:
    archived = FolderArchive(tmp_path / "archive").store_bytes(b"order 1\n")
    assert mode(archived.path) == 0o400
    assert mode(archived.path.parent) == mode(tmp_path / "archive") == 0o700


def config_with(tmp_path: Path, security: str) -> Path:
    path = tmp_path / "edigw.yaml"
    path.write_text(
        "ecolix: {base_url: 'http://127.0.0.1:9/api/v1', token: t}\n" + security,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", 0o600, id="default"),
        pytest.param("security: {file_mode: '0640'}\n", 0o640, id="quoted"),
        pytest.param("security: {file_mode: 0640}\n", 0o640, id="unquoted-yaml-octal"),
        pytest.param("security: {file_mode: '660'}\n", 0o660, id="group-writes"),
    ],
)
def test_file_mode_is_read_as_octal(tmp_path: Path, text: str, expected: int) -> None:
    config = load_config(config_with(tmp_path, text), environ={})
    assert config.security.modes == FileModes(expected)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("'0644'", id="others-read"),
        pytest.param("'0700'", id="executable"),
        pytest.param("'0400'", id="owner-cannot-write"),
        pytest.param("'rw-------'", id="not-octal"),
    ],
)
def test_a_file_mode_that_would_not_protect_or_work_is_refused(tmp_path: Path, value: str) -> None:
    path = config_with(tmp_path, f"security:\n  file_mode: {value}\n")
    with pytest.raises(ConfigError, match=r"edigw\.yaml:3 security\.file_mode"):
        load_config(path, environ={})
