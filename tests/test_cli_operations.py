"""The operator's commands: process, show, status, replay, purge — exit codes and the lines
they print, also in a shell without ECOLIX_TOKEN for those that only read the journal."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import (
    ROOT,
    Workspace,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.support.cli import edigw, lines
from tests.support.shop import (
    customers_workspace,
    new_customer,
    shop_workspace,
    unknown_customer_order,
)

GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-customers-csv" / "clients_export_20261128.csv"
BAD = ROOT / "samples" / "bad" / "ecommerce-customers-csv" / "clients_incomplets.csv"


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Any) -> Any:
    return customers_workspace(tmp_path / "gw", sandbox)


def test_process_sends_a_file_and_prints_each_document(workspace: Any, tmp_path: Path) -> None:
    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    result = edigw(workspace, "process", str(source), "--flow", "webshop/customers")
    assert result.exit_code == 0, result.output
    assert f"F-1 {GOOD.name}  (webshop/customers)" in result.output
    assert "state     done" in result.output
    assert "customers.upsert  done" in result.output
    assert source.exists(), "process leaves the file where it is"


def test_process_exits_non_zero_and_names_the_place_of_each_error(
    workspace: Any, tmp_path: Path
) -> None:
    result = edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    assert result.exit_code == 1
    assert "  state     failed" in lines(result)
    assert "      error    clients_incomplets.csv:3:14 field pays" in lines(result)


def test_process_refuses_an_unknown_flow_in_one_line(workspace: Any) -> None:
    result = edigw(workspace, "process", str(GOOD), "--flow", "webshop/nope")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: unknown flow 'webshop/nope' (inbound flows: webshop/customers)"
    )


def test_show_tells_the_story_of_a_file_with_payloads(workspace: Any, tmp_path: Path) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "show", "F-1")
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and "archive" in result.output
    assert '"code":' in result.output
    assert "      Ecolix   200 CUS-0005" in lines(result)


def test_show_of_a_document_shows_only_that_document(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "show", "D-2")
    assert result.exit_code == 0, result.output
    assert "D-2 " in result.output
    assert "D-1 " not in result.output


def test_show_refuses_a_malformed_id(workspace: Any) -> None:
    result = edigw(workspace, "show", "X-1")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: 'X-1' is not an id: use F-<n> (file), D-<n> (document) or R-<n> (export run)"
    )


def test_status_counts_files_per_flow(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    result = edigw(workspace, "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["flows"] == [
        {
            "flow": "webshop/customers",
            "configured": True,
            "health": "",
            "files": 2,
            "done": 1,
            "skipped": 0,
            "partially_failed": 0,
            "failed": 1,
            "resolved": 0,
            "in_progress": 0,
            "documents_waiting": 0,
            "documents_failed": 2,
            "documents_resolved": 0,
            "documents_skipped": 0,
            "documents_unchanged": 0,
            "calls_per_document": 0.667,  # 4 customers sent with one call each, 2 refused
        }
    ]
    assert status["calls_per_minute"] == 100_000
    assert status["shared_calls"] is None  # a SQLite journal: the budget is the gateway's own


def test_status_shows_a_table_the_last_errors_and_the_call_budget(workspace: Any) -> None:
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    result = edigw(workspace, "status")
    assert result.exit_code == 0, result.output
    assert " webshop" in lines(result)
    assert "   customers  -          1    0       0      1        0    0      2" in lines(result)
    # two refused documents, no call made for them (a line: 80 columns leave no room for more)
    assert "Ecolix calls per document: webshop/customers 0.00" in lines(result)
    text = " ".join(result.output.split())
    assert "Last open errors" in text
    assert BAD.name in text
    assert (
        "Ecolix calls in the last minute: unknown (no gateway running) of 100000 agreed per minute"
        in text
    )


def test_replay_of_a_done_file_reports_already_done_and_sends_nothing(workspace: Any) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    result = edigw(workspace, "replay", "F-1")
    assert result.exit_code == 0, result.output
    assert "F-1: done" in result.output
    assert result.output.count("already done") == 4
    assert "sent again" not in result.output


def test_replay_dry_run_changes_nothing(workspace: Any) -> None:
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")
    before = edigw(workspace, "show", "F-1").output
    result = edigw(workspace, "replay", "--failed", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "F-1: dry run, nothing changed" in result.output
    assert "still failing" in result.output
    assert edigw(workspace, "show", "F-1").output == before


def test_replay_needs_something_to_replay(workspace: Any) -> None:
    result = edigw(workspace, "replay")
    assert result.exit_code == 2
    assert "give IDs, --failed or --since" in result.output


def test_purge_forgets_finished_exchanges_then_their_archived_originals(
    workspace: Any, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from edigw.pipeline.retention import ARCHIVE_GRACE, purge_history

    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    assert edigw(workspace, "process", str(source), "--flow", "webshop/customers").exit_code == 0
    config = workspace.load()
    [copy] = [p for p in (Path(config.data_dir) / "archive").rglob("*") if p.is_file()]
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    first = purge_history(config, before=tomorrow, include_failed=False, dry_run=False)
    assert (first.journal.files, first.journal.documents) == (1, 4)
    assert first.archive_copies == 0 and copy.exists()  # just stored: left for an hour
    assert "F-1 does not exist" in edigw(workspace, "show", "F-1").output

    aged = copy.stat().st_mtime - ARCHIVE_GRACE - 1
    os.utime(copy, (aged, aged))
    second = purge_history(config, before=tomorrow, include_failed=False, dry_run=False)
    assert (second.journal.files, second.archive_copies) == (0, 1)
    assert not copy.exists()


def test_purge_dry_run_counts_and_changes_nothing(workspace: Any, tmp_path: Path) -> None:
    source = tmp_path / GOOD.name
    shutil.copyfile(GOOD, source)
    edigw(workspace, "process", str(source), "--flow", "webshop/customers")
    result = edigw(workspace, "purge", "--older-than", "30", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would forget 0 files and 0 export runs from before" in result.output
    assert "would delete 0 archived copies (0.0 MB)" in result.output
    assert "F-1" in edigw(workspace, "show", "F-1").output


# ------------------------------------------------------------------ without ECOLIX_TOKEN


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("status",), id="status"),
        pytest.param(("status", "--json"), id="status-json"),
        pytest.param(("show", "F-2"), id="show-file"),
        pytest.param(("show", "D-5", "--json"), id="show-document"),
        pytest.param(("files", "--name", "clients"), id="files"),
        pytest.param(("replay", "F-2", "--dry-run"), id="replay-dry-run"),
        pytest.param(("purge", "--older-than", "30", "--dry-run"), id="purge-dry-run"),
        pytest.param(("resolve", "F-2", "--note", "partner resends"), id="resolve"),
    ],
)
def test_commands_that_only_read_the_journal_need_no_ecolix_token(
    workspace: Any, args: tuple[str, ...]
) -> None:
    edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers")
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")

    result = edigw(workspace, *args, token=False)

    assert result.exit_code == 0, result.output


def test_replay_without_ecolix_token_names_the_variable_in_one_line(workspace: Any) -> None:
    edigw(workspace, "process", str(BAD), "--flow", "webshop/customers")

    result = edigw(workspace, "replay", "F-1", token=False)

    assert result.exit_code == 1
    assert lines(result) == [
        "Error: ECOLIX_TOKEN is not set: replay sends documents to Ecolix "
        "(--dry-run needs no token) (edigw.yaml:3 ecolix.token)"
    ]


def test_process_without_ecolix_token_names_the_variable_in_one_line(workspace: Any) -> None:
    result = edigw(workspace, "process", str(GOOD), "--flow", "webshop/customers", token=False)

    assert result.exit_code == 1
    assert lines(result) == [
        "Error: edigw.yaml:3 ecolix.token: environment variable ECOLIX_TOKEN is not set"
    ]


# ------------------------------------------------------------------ status


def test_status_lists_flows_that_never_received_a_file_and_counts_duplicates_apart(
    tmp_path: Path, sandbox: Any
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {
                "customers": inbound_flow("ecommerce-customers-csv.yaml", "webshop", "customers"),
                "orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders"),
            }
        },
    )
    edigw(ws, "process", str(GOOD), "--flow", "webshop/customers")
    edigw(ws, "process", str(GOOD), "--flow", "webshop/customers")  # the same bytes again

    result = edigw(ws, "status", "--json")

    flows = {row["flow"]: row for row in json.loads(result.output)["flows"]}
    assert list(flows) == ["webshop/customers", "webshop/orders"]
    assert (flows["webshop/customers"]["done"], flows["webshop/customers"]["skipped"]) == (1, 1)
    assert flows["webshop/orders"]["files"] == 0
    assert "   orders     -          0    0       0      0        0    0      0" in lines(
        edigw(ws, "status")
    )


# ------------------------------------------------------------------ Ecolix's reasons, once


@pytest.fixture
def shop(tmp_path: Path, sandbox: Any) -> Workspace:
    return shop_workspace(tmp_path / "gw", sandbox)


def test_an_ecolix_refusal_reason_is_printed_once(shop: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    order = unknown_customer_order(tmp_path, f"CUS-{tag}", f"WEB-{tag}")
    edigw(shop, "process", str(order), "--flow", "webshop/orders")

    result = edigw(shop, "show", "F-1", columns=200)

    assert result.exit_code == 0, result.output
    assert result.output.count(f"unknown customer 'CUS-{tag}'") == 1
    assert (
        f"      error    refused by Ecolix: 422 Unknown customer; order_WEB-{tag}.csv:2:3 field "
        f"code_client [/customer_code]: unknown customer 'CUS-{tag}'"
    ) in lines(result)
    assert any(line.endswith(" D-1 failed (reason above)") for line in lines(result))


# ------------------------------------------------------------------ replay tidies error/


def test_a_replay_that_makes_a_failed_file_done_puts_its_error_copy_away(
    shop: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    inbox = shop.inbox("webshop", "orders")
    unknown_customer_order(inbox, f"CUS-{tag}", f"WEB-{tag}")
    report = inbox / "error" / f"order_WEB-{tag}.csv.error.txt"
    with running_gateway(shop) as parts:
        wait_until(files_final(parts, 1), what="the order to fail")
        wait_until(report.exists, what="the error report")
    assert f"unknown customer 'CUS-{tag}'" in report.read_text(encoding="utf-8")
    created = edigw(
        shop, "process", str(new_customer(tmp_path, f"CUS-{tag}")), "--flow", "webshop/customers"
    )
    assert created.exit_code == 0, created.output

    result = edigw(shop, "replay", "F-1")

    assert result.exit_code == 0, result.output
    done = (inbox / "done" / f"order_WEB-{tag}.csv").resolve()
    assert lines(result) == [
        "F-1: done",
        f"  sent again    D-1 WEB-{tag}",
        f"  error copy moved to {done}, its report removed",
    ]
    assert done.exists()
    assert list((inbox / "error").iterdir()) == []
    story = lines(edigw(shop, "show", "F-1", columns=300))
    assert any(line.endswith(f"channel error-cleared to {done}") for line in story)
