"""`--json` on show and replay: one JSON value, stable keys (docs/operations.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import Workspace
from tests.support.cli import edigw
from tests.support.shop import good_and_bad_customers

FILE_KEYS = [
    "archive_path",
    "error",
    "failure",
    "finished_at",
    "flow",
    "id",
    "name",
    "received_at",
    "sha256",
    "size",
    "source_path",
    "state",
]
DOCUMENT_KEYS = [
    "attempts",
    "business_key",
    "ecolix_object_id",
    "ecolix_status",
    "error",
    "error_location",
    "failure",
    "file",
    "id",
    "idempotency_key",
    "mapping_version",
    "next_attempt_at",
    "operation",
    "payload",
    "seq",
    "state",
]


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Any) -> Workspace:
    """F-1 done (D-1..D-4), F-2 failed (D-5, D-6)."""
    return good_and_bad_customers(tmp_path, sandbox)


def show(ws: Workspace, item: str) -> Any:
    result = edigw(ws, "show", item, "--json", token=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_show_json_of_a_file_has_the_file_its_documents_events_and_resolutions(
    workspace: Workspace,
) -> None:
    edigw(workspace, "resolve", "D-6", "--note", "typo", "--by", "alice")

    story = show(workspace, "F-2")

    assert sorted(story) == [
        "documents",
        "events",
        "file",
        "kind",
        "resolutions",
        "validation_findings",
    ]
    assert story["kind"] == "file"
    assert sorted(story["file"]) == FILE_KEYS
    assert (story["file"]["id"], story["file"]["state"], story["file"]["failure"]) == (
        "F-2",
        "failed",
        "open",
    )
    assert [sorted(d) for d in story["documents"]] == [DOCUMENT_KEYS, DOCUMENT_KEYS]
    assert [(d["id"], d["failure"]) for d in story["documents"]] == [
        ("D-5", "open"),
        ("D-6", "resolved"),
    ]
    assert story["documents"][1]["error_location"] == "clients_incomplets.csv:3:14 field pays"
    assert story["events"][0]["kind"] == "received"
    assert sorted(story["events"][0]) == ["at", "detail", "document", "kind"]
    [resolution] = story["resolutions"]
    assert {k: resolution[k] for k in ("resolves", "by", "note")} == {
        "resolves": "D-6",
        "by": "alice",
        "note": "typo",
    }


def test_show_json_of_a_document_keeps_that_document_and_its_events(
    workspace: Workspace,
) -> None:
    story = show(workspace, "D-2")

    assert story["kind"] == "document"
    assert [d["id"] for d in story["documents"]] == ["D-2"]
    assert {e["document"] for e in story["events"]} == {None, "D-2"}
    assert story["documents"][0]["ecolix_status"] == 201
    assert story["documents"][0]["payload"]["code"] == "WEB-10231"


def test_replay_json_lists_what_each_file_would_do(workspace: Workspace) -> None:
    result = edigw(workspace, "replay", "F-1", "F-2", "--dry-run", "--json", token=False)

    assert result.exit_code == 0, result.output
    first, second = json.loads(result.output)
    assert sorted(first) == [
        "already_done",
        "document",
        "error",
        "error_copy",
        "id",
        "new",
        "outcome",
        "sent_again",
        "skipped",
        "still_failing",
        "unchanged",
    ]
    assert (first["id"], first["outcome"], len(first["already_done"])) == (
        "F-1",
        "dry run, nothing changed",
        4,
    )
    assert [line.split(":")[0] for line in second["still_failing"]] == [
        "D-5 WEB-10290",
        "D-6 WEB-10291",
    ]
