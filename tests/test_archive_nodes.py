"""The archive every node can read, chosen in ``edigw.yaml``: a shared folder each node
proves it sees at start, or the journal's PostgreSQL database; ``replay`` works on any node,
and a copy that is not there is one line naming the file and the copy."""

from __future__ import annotations

import re
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from edigw.config import GatewayConfig, load_config
from edigw.errors import ConfigError, JournalError
from edigw.journal import Journal
from edigw.journal.archive_markers import MARKERS
from edigw.pipeline.assembly import archive_of
from tests.fixtures.gateway import ROOT, Workspace, inbound_flow, write_workspace
from tests.support.cli import edigw

GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-customers-csv" / "clients_export_20261128.csv"
ENV = {"ECOLIX_TOKEN": "t"}


def node_config(root: Path, *, journal: str, archive: dict[str, Any] | None) -> GatewayConfig:
    """A node's configuration: its own data folder under ``root``, the shared journal."""
    root.mkdir(parents=True, exist_ok=True)
    text = {
        "ecolix": {"base_url": "http://127.0.0.1:9/api/v1/", "token": "${ECOLIX_TOKEN}"},
        "data_dir": "data",
        "journal": journal,
    }
    if archive is not None:
        text["archive"] = archive
    path = root / "edigw.yaml"
    path.write_text(yaml.safe_dump(text), encoding="utf-8")
    return load_config(path, environ=ENV)


def start(config: GatewayConfig) -> None:
    """What a gateway's start does with its archive (``prepare_start``)."""
    Journal.open(config.journal_url).close()  # created, as the gateway's start does first
    archive = archive_of(config)
    try:
        archive.check_shared()
    finally:
        archive.close()


# ------------------------------------------------------------------ configuration


def test_the_postgresql_kind_needs_a_postgresql_journal(tmp_path: Path) -> None:
    (tmp_path / "edigw.yaml").write_text(
        textwrap.dedent("""\
            ecolix: {base_url: "http://127.0.0.1:9/api/v1/", token: t}
            archive:
              kind: postgresql
            """),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "edigw.yaml", environ=ENV)
    assert caught.value.problems == [
        "edigw.yaml:2 archive: kind postgresql keeps the archive in the journal database: set "
        "journal: to a PostgreSQL URL, or use kind folder"
    ]


def test_by_default_the_archive_stays_in_the_data_folder(tmp_path: Path) -> None:
    config = node_config(tmp_path, journal=f"sqlite:///{tmp_path}/j.sqlite", archive=None)
    archive = archive_of(config)
    assert archive.root == tmp_path / "data" / "archive"


# ------------------------------------------------------------------ a shared folder


def test_nodes_that_see_the_same_folder_start(tmp_path: Path) -> None:
    journal = f"sqlite:///{tmp_path}/journal.sqlite"
    shared = {"kind": "folder", "path": str(tmp_path / "nfs" / "archive")}
    first = node_config(tmp_path / "node-1", journal=journal, archive=shared)
    second = node_config(tmp_path / "node-2", journal=journal, archive=shared)

    start(first)
    start(second)
    start(first)  # a restart replaces its own marker

    assert len(list((tmp_path / "nfs" / "archive" / MARKERS).iterdir())) == 2


def test_a_node_whose_folder_is_not_the_shared_one_refuses_to_start(tmp_path: Path) -> None:
    journal = f"sqlite:///{tmp_path}/journal.sqlite"
    first = node_config(
        tmp_path / "node-1",
        journal=journal,
        archive={"kind": "folder", "path": str(tmp_path / "nfs" / "archive")},
    )
    start(first)
    # The second node's share is not mounted: the same path names an empty local folder.
    lost = tmp_path / "node-2" / "mnt" / "archive"
    second = node_config(
        tmp_path / "node-2", journal=journal, archive={"kind": "folder", "path": str(lost)}
    )

    with pytest.raises(JournalError) as caught:
        start(second)

    node = f"{socket.gethostname()}:{(tmp_path / 'node-1' / 'data').resolve()}"
    assert re.fullmatch(
        re.escape(f"the archive folder {lost} is not the one node {node} uses: its marker ")
        + rf"{MARKERS}/[0-9a-f]{{32}} \(written \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\) is not in "
        + r"it; mount the same shared folder as archive.path on every node",
        str(caught.value),
    ), str(caught.value)
    assert list((lost / MARKERS).iterdir()) == []  # it left no marker of its own


# ------------------------------------------------------------------ replay on another node


def shop_node(root: Path, sandbox: Any, journal: str, archive: dict[str, Any] | None) -> Workspace:
    ws = write_workspace(
        root,
        base_url=sandbox.base_url,
        token=sandbox.token,
        journal=journal,
        flows={
            "webshop": {
                "customers": inbound_flow("ecommerce-customers-csv.yaml", "webshop", "customers")
            }
        },
    )
    if archive is not None:
        text = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
        text["archive"] = archive
        ws.config_path.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    return ws


@pytest.mark.postgres
def test_replay_works_on_a_second_node_with_an_empty_disk(
    tmp_path: Path, sandbox: Any, postgres_url: str
) -> None:
    archive = {"kind": "postgresql"}
    first = shop_node(tmp_path / "node-1", sandbox, postgres_url, archive)
    second = shop_node(tmp_path / "node-2", sandbox, postgres_url, archive)
    assert edigw(first, "process", str(GOOD), "--flow", "webshop/customers").exit_code == 0

    result = edigw(second, "replay", "F-1")

    assert result.exit_code == 0, result.output
    assert "F-1: done" in result.output
    assert result.output.count("already done") == 4
    assert not (tmp_path / "node-2" / "data" / "archive").exists() or not any(
        (tmp_path / "node-2" / "data" / "archive").iterdir()
    )


@pytest.mark.postgres
def test_a_replay_that_finds_no_archived_copy_says_so_in_one_line(
    tmp_path: Path, sandbox: Any, postgres_url: str
) -> None:
    # Both nodes keep the default archive in their own data folder: not shared.
    first = shop_node(tmp_path / "node-1", sandbox, postgres_url, None)
    second = shop_node(tmp_path / "node-2", sandbox, postgres_url, None)
    assert edigw(first, "process", str(GOOD), "--flow", "webshop/customers").exit_code == 0
    copies = [p for p in (tmp_path / "node-1" / "data" / "archive").rglob("*") if p.is_file()]
    sha = copies[0].name
    copy = tmp_path / "node-2" / "data" / "archive" / sha[:2] / sha[2:4] / sha

    result = edigw(second, "replay", "F-1")

    assert "Traceback" not in result.output
    assert f"F-1: {GOOD.name}: its archived copy {copy} is missing\n" in result.output
