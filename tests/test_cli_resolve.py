"""`edigw resolve`: acknowledging a failure takes it out of the open ones, and the story
keeps who, when and why."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import Workspace
from tests.support.cli import edigw, lines
from tests.support.shop import good_and_bad_customers


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Any) -> Workspace:
    """F-1 done (D-1..D-4), F-2 failed with two failed documents (D-5, D-6)."""
    return good_and_bad_customers(tmp_path, sandbox)


def customers_status(ws: Workspace) -> dict[str, Any]:
    [flow] = json.loads(edigw(ws, "status", "--json").output)["flows"]
    return {k: flow[k] for k in ("failed", "resolved", "documents_failed", "documents_resolved")}


def test_a_resolved_file_leaves_the_open_failures_and_show_tells_who_when_why(
    workspace: Workspace,
) -> None:
    result = edigw(
        workspace, "resolve", "F-2", "--note", "partner resends it Monday", "--by", "alice"
    )

    assert (result.exit_code, lines(result)) == (0, ["F-2 resolved by alice"])
    assert customers_status(workspace) == {
        "failed": 0,
        "resolved": 1,
        "documents_failed": 0,
        "documents_resolved": 2,
    }
    story = lines(edigw(workspace, "show", "F-2"))
    with workspace.journal() as journal:
        [resolution] = journal.resolutions_of(2)
    assert "  state     failed (resolved)" in story
    assert (
        f"  resolved  {resolution.at:%Y-%m-%d %H:%M} UTC by alice: partner resends it Monday"
        in story
    )
    assert any(line.endswith(" resolved by alice: partner resends it Monday") for line in story)


def test_resolving_a_document_leaves_its_file_open_until_each_failed_document_is(
    workspace: Workspace,
) -> None:
    assert edigw(workspace, "resolve", "D-5", "--note", "typo, fixed in Ecolix").exit_code == 0
    assert customers_status(workspace) == {
        "failed": 1,
        "resolved": 0,
        "documents_failed": 1,
        "documents_resolved": 1,
    }

    assert edigw(workspace, "resolve", "D-6", "--note", "typo, fixed in Ecolix").exit_code == 0
    assert customers_status(workspace)["resolved"] == 1


def test_the_author_defaults_to_the_user_running_the_command(workspace: Workspace) -> None:
    result = edigw(workspace, "resolve", "D-5", "--note", "known")

    assert lines(result) == [f"D-5 resolved by {getpass.getuser()}"]


def test_a_resolved_failure_is_not_replayed_by_replay_failed(workspace: Workspace) -> None:
    edigw(workspace, "resolve", "F-2", "--note", "partner resends it")

    result = edigw(workspace, "replay", "--failed", "--dry-run", token=False)

    assert lines(result) == ["nothing to replay"]


def test_resolved_and_unresolved_files_are_listed_apart(workspace: Workspace) -> None:
    edigw(workspace, "resolve", "F-2", "--note", "partner resends it")

    resolved = json.loads(edigw(workspace, "files", "--state", "resolved", "--json").output)
    unresolved = json.loads(edigw(workspace, "files", "--state", "unresolved", "--json").output)

    assert [(f["id"], f["failure"]) for f in resolved] == [("F-2", "resolved")]
    assert unresolved == []


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        pytest.param(
            ("F-1",),
            "Error: F-1 is done: only a failed or partially failed file can be resolved",
            id="done-file",
        ),
        pytest.param(
            ("D-1",), "Error: D-1 is done: only a failed document can be resolved", id="done-doc"
        ),
        pytest.param(("F-99",), "Error: F-99 does not exist in the journal", id="unknown"),
        pytest.param(
            ("R-1",),
            "Error: R-1 is an export run: only files (F-<n>) and documents (D-<n>) are resolved",
            id="export-run",
        ),
    ],
)
def test_what_cannot_be_resolved_is_refused_in_one_line(
    workspace: Workspace, ids: tuple[str, ...], message: str
) -> None:
    result = edigw(workspace, "resolve", *ids, "--note", "n")

    assert (result.exit_code, lines(result)) == (1, [message])


def test_each_id_is_tried_and_the_refused_ones_named(workspace: Workspace) -> None:
    result = edigw(workspace, "resolve", "D-5", "F-1", "D-6", "--note", "n", "--by", "bob")

    assert result.exit_code == 1
    assert lines(result) == [
        "D-5 resolved by bob",
        "D-6 resolved by bob",
        "Error: F-1 is done: only a failed or partially failed file can be resolved",
    ]


def test_a_resolution_needs_a_note(workspace: Workspace) -> None:
    result = edigw(workspace, "resolve", "F-2")

    assert result.exit_code == 2
    assert lines(result)[-1] == "Error: Missing option '--note'."
