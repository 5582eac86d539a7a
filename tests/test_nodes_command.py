"""``edigw nodes``: the nodes a PostgreSQL journal knows, and forgetting one retired for good,
so that the marker it left in a shared archive folder no longer stops the others starting."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner, Result

from edigw.cli import main
from edigw.config import GatewayConfig
from edigw.errors import JournalError
from edigw.journal import Journal
from edigw.journal.archive_markers import MARKERS
from tests.test_archive_nodes import node_config, start

pytestmark = pytest.mark.postgres

HOST = socket.gethostname()


def nodes(config: GatewayConfig, *args: str) -> Result:
    """``edigw nodes ARGS -c edigw.yaml``, in a shell without ECOLIX_TOKEN."""
    config_path = Path(config.data_dir).parent / "edigw.yaml"
    return CliRunner().invoke(
        main, ["nodes", *args, "-c", str(config_path)], env={"ECOLIX_TOKEN": None}
    )


def two_nodes(tmp_path: Path, journal: str) -> tuple[GatewayConfig, GatewayConfig, Path]:
    """Two nodes started once on one shared archive folder: the first, and one retired since."""
    folder = tmp_path / "nfs" / "archive"
    shared: dict[str, Any] = {"kind": "folder", "path": str(folder)}
    kept = node_config(tmp_path / "node-1", journal=journal, archive=shared)
    retired = node_config(tmp_path / "node-2", journal=journal, archive=shared)
    start(kept)
    start(retired)
    return kept, retired, folder


def name_of(config: GatewayConfig) -> str:
    return f"{HOST}:{Path(config.data_dir).resolve()}"


def heartbeat(journal: str, node: str, *, seconds_ago: float = 0) -> None:
    """A gateway process ``node`` said it was alive ``seconds_ago``."""
    j = Journal.open(journal)
    try:
        j.heartbeat(node, ttl=15)
    finally:
        j.close()
    engine = sqlalchemy.create_engine(journal)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "UPDATE nodes SET seen_at = now() - make_interval(secs => :s) WHERE node = :n"
            ),
            {"s": seconds_ago, "n": node},
        )
    engine.dispose()


def test_forgetting_a_retired_node_whose_marker_is_gone_lets_the_others_start(
    tmp_path: Path, postgres_url: str
) -> None:
    kept, retired, folder = two_nodes(tmp_path, postgres_url)
    for marker in (folder / MARKERS).iterdir():
        marker.unlink()  # the folder cleaned: node-2's marker (and node-1's) gone
    with pytest.raises(JournalError):
        start(kept)

    result = nodes(kept, "forget", name_of(retired))

    assert result.exit_code == 0, result.output
    assert result.output == f"forgot node {name_of(retired)}: removed its archive marker row\n"
    start(kept)  # starts again, with a new marker of its own


def test_the_listing_names_each_node_its_marker_and_whether_the_marker_is_there(
    tmp_path: Path, postgres_url: str
) -> None:
    kept, retired, folder = two_nodes(tmp_path, postgres_url)
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.connect() as conn:
        tokens = dict(
            conn.execute(sqlalchemy.text("SELECT node, token FROM archive_markers")).all()
        )
    engine.dispose()
    (folder / MARKERS / tokens[name_of(retired)]).unlink()
    heartbeat(postgres_url, "gw9:4242")

    result = nodes(kept)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    first, second = sorted(lines[:2])
    assert first.startswith(f"{name_of(kept)}  not seen, marker written ")
    assert first.endswith(f"{MARKERS}/{tokens[name_of(kept)]} in the folder")
    assert second.startswith(f"{name_of(retired)}  not seen, marker written ")
    assert second.endswith(f"{MARKERS}/{tokens[name_of(retired)]} MISSING from the folder")
    assert lines[2].startswith("gw9:4242  alive, last seen ")
    assert lines[2].endswith(" UTC  no archive marker")


def test_the_listing_in_json_has_one_object_per_node(tmp_path: Path, postgres_url: str) -> None:
    kept, retired, _ = two_nodes(tmp_path, postgres_url)

    result = nodes(kept, "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert sorted(n["node"] for n in listed) == sorted([name_of(kept), name_of(retired)])
    assert set(listed[0]) == {
        "node",
        "seen_at",
        "alive",
        "marker",
        "marker_written_at",
        "marker_present",
    }
    assert all(n["marker_present"] is True and n["alive"] is False for n in listed)


def test_forgetting_removes_the_marker_file_when_it_is_still_there(
    tmp_path: Path, postgres_url: str
) -> None:
    kept, retired, folder = two_nodes(tmp_path, postgres_url)

    result = nodes(kept, "forget", name_of(retired))

    assert result.exit_code == 0, result.output
    assert f"and its marker file {folder / MARKERS}/" in result.output
    assert len(list((folder / MARKERS).iterdir())) == 1  # node-1's only
    assert [n["node"] for n in json.loads(nodes(kept, "--json").output)] == [name_of(kept)]


def test_a_node_whose_host_was_seen_within_the_takeover_time_is_not_forgotten(
    tmp_path: Path, postgres_url: str
) -> None:
    kept, retired, folder = two_nodes(tmp_path, postgres_url)
    heartbeat(postgres_url, f"{HOST}:4242", seconds_ago=3)  # takeover: 15 s by default

    result = nodes(kept, "forget", name_of(retired))

    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: node {name_of(retired)} may still be running: {HOST}:4242 on its host was seen at "
    )
    assert result.output.endswith(
        "UTC, within the takeover time (15 s); stop it first, or add --force if it is another "
        "node\n"
    )
    assert len(list((folder / MARKERS).iterdir())) == 2  # nothing removed


def test_force_forgets_a_node_whose_host_was_seen_alive(tmp_path: Path, postgres_url: str) -> None:
    kept, retired, folder = two_nodes(tmp_path, postgres_url)
    heartbeat(postgres_url, f"{HOST}:4242")

    result = nodes(kept, "forget", name_of(retired), "--force")

    assert result.exit_code == 0, result.output
    assert len(list((folder / MARKERS).iterdir())) == 1


def test_a_gateway_not_seen_for_longer_than_the_takeover_time_is_forgotten(
    tmp_path: Path, postgres_url: str
) -> None:
    kept, _, _ = two_nodes(tmp_path, postgres_url)
    heartbeat(postgres_url, "gw9:4242", seconds_ago=60)

    result = nodes(kept, "forget", "gw9:4242")

    assert result.exit_code == 0, result.output
    assert result.output == "forgot node gw9:4242: removed its heartbeat row\n"


def test_an_unknown_node_is_one_line(tmp_path: Path, postgres_url: str) -> None:
    kept, _, _ = two_nodes(tmp_path, postgres_url)

    result = nodes(kept, "forget", "gw7:/srv/edigw/data")

    assert result.exit_code == 1
    assert result.output == (
        "Error: the journal knows no node gw7:/srv/edigw/data; `edigw nodes` lists those it knows\n"
    )
