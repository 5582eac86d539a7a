"""`edigw files`: received files newest first, found by flow, state, age and name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import ROOT, Workspace
from tests.support.cli import edigw, lines
from tests.support.shop import shop_workspace

GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-customers-csv" / "clients_export_20261128.csv"
BAD = ROOT / "samples" / "bad" / "ecommerce-customers-csv" / "clients_incomplets.csv"
ORDERS = ROOT / "samples" / "ecommerce" / "ecommerce-orders-csv" / "commandes_20261128.csv"


@pytest.fixture
def shop(tmp_path: Path, sandbox: Any) -> Workspace:
    """F-1 customers done, F-2 customers failed, F-3 orders done."""
    ws = shop_workspace(tmp_path / "gw", sandbox)
    for sample, flow in ((GOOD, "customers"), (BAD, "customers"), (ORDERS, "orders")):
        copy = tmp_path / sample.name
        shutil.copyfile(sample, copy)
        edigw(ws, "process", str(copy), "--flow", f"webshop/{flow}")
    return ws


def ids(result: Any) -> list[str]:
    return [item["id"] for item in json.loads(result.output)]


def test_files_are_listed_newest_first_with_their_documents(shop: Workspace) -> None:
    result = edigw(shop, "files", token=False)

    assert result.exit_code == 0, result.output
    assert lines(result)[:9] == [
        "Files",
        "",
        " id  received (UTC)   file / flow                 state  done failed",
        " " + "─" * 67,
        f" F-3 {received(shop, 3)} commandes_20261128.csv      done      3      0",
        "                      webshop/orders",
        f" F-2 {received(shop, 2)} clients_incomplets.csv      failed    0      2",
        "                      webshop/customers",
        f" F-1 {received(shop, 1)} clients_export_20261128.csv done      4      0",
    ]


def received(shop: Workspace, file_id: int) -> str:
    with shop.journal() as journal:
        return f"{journal.file(file_id).received_at:%Y-%m-%d %H:%M}"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(("--flow", "webshop/customers"), ["F-2", "F-1"], id="flow"),
        pytest.param(("--state", "failed"), ["F-2"], id="state"),
        pytest.param(("--state", "unresolved"), ["F-2"], id="unresolved"),
        pytest.param(("--name", "clients_*"), ["F-2", "F-1"], id="glob"),
        pytest.param(("--name", "INCOMPLETS"), ["F-2"], id="text-any-case"),
        pytest.param(("--since", "2d"), ["F-3", "F-2", "F-1"], id="since-duration"),
        pytest.param(("--since", "2999-01-01"), [], id="since-date"),
        pytest.param(("--limit", "1"), ["F-3"], id="limit"),
    ],
)
def test_files_are_found_by_flow_state_age_and_name(
    shop: Workspace, options: tuple[str, ...], expected: list[str]
) -> None:
    result = edigw(shop, "files", *options, "--json", token=False)

    assert result.exit_code == 0, result.output
    assert ids(result) == expected


def test_files_json_has_stable_keys(shop: Workspace) -> None:
    result = edigw(shop, "files", "--name", "incomplets", "--json")

    [item] = json.loads(result.output)
    assert sorted(item) == [
        "documents",
        "error",
        "failure",
        "finished_at",
        "flow",
        "id",
        "name",
        "received_at",
        "state",
    ]
    assert (item["id"], item["flow"], item["state"], item["failure"]) == (
        "F-2",
        "webshop/customers",
        "failed",
        "open",
    )
    assert item["documents"] == {
        "total": 2,
        "done": 0,
        "failed": 2,
        "skipped": 0,
        "unchanged": 0,
        "waiting": 0,
    }


def test_a_listing_cut_by_the_limit_says_so(shop: Workspace) -> None:
    result = edigw(shop, "files", "--limit", "2")

    assert lines(result)[-1] == "showing the newest 2: narrow the search or give --limit"


def test_no_match_says_so(shop: Workspace) -> None:
    result = edigw(shop, "files", "--name", "nothing-like-this")

    assert (result.exit_code, lines(result)) == (0, ["no file matches"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ("--since", "last week"),
            "Error: Invalid value: --since: 'last week' is neither a duration (2d, 12h, 30m) "
            "nor a date (2026-12-01)",
            id="since",
        ),
        pytest.param(
            ("--flow", "customers"),
            "Error: 'customers' is not a flow: write PARTNER/FLOW, e.g. webshop/orders",
            id="flow",
        ),
    ],
)
def test_a_bad_filter_is_refused_in_one_line(
    shop: Workspace, options: tuple[str, ...], message: str
) -> None:
    result = edigw(shop, "files", *options)

    assert result.exit_code in (1, 2)
    assert lines(result)[-1] == message
