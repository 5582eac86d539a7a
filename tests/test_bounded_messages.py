"""A document with tens of thousands of bad lines: small error texts everywhere, the full list
on demand (``edigw show --all``). Once, one such order made a 13 MB message, stored in the
journal and in ``.error.txt``, and ``status --json`` grew to 15 MB.

No call reaches Ecolix here (every document fails at mapping), so the gateway points at a
closed port. The flow raises ``limits.max_lines_per_document`` (10,000 by default) above the
documents' 20,000 lines: the reader would otherwise refuse each one whole, before it is built,
and the problems whose text must stay bounded would never be found.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from edigw.problems import MAX_KEPT, MAX_MESSAGE
from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.support.cli import edigw
from tests.support.orderfiles import HEADER, OrderFactory

ABOUT_2_KB = MAX_MESSAGE + 64
LINES = 20_000
LIMITS = {"max_lines_per_document": 2 * LINES}
QUANTITY = 5  # column of ``quantite`` in the web-shop order format


def big_orders() -> str:
    """BIG-1: every line's quantity is not a number (20,000 problems); BIG-2: 20,000 valid
    lines, over the 500 Ecolix accepts (one problem quoting the whole list: 1.3 MB)."""
    factory = OrderFactory.from_seed()
    rows = []
    for number, quantity in (("BIG-1", "abc"), ("BIG-2", None)):
        fields = factory.order_rows(number, random.Random(1), max_lines=1)[0].split(";")
        if quantity is not None:
            fields[QUANTITY] = quantity
        rows += [";".join(fields)] * LINES
    return "\r\n".join([HEADER, *rows]) + "\r\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Any:
    return write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:9/api/v1",
        token="unused",
        flows={
            "webshop": {
                "orders": inbound_flow(
                    "ecommerce-orders-csv.yaml", "webshop", "orders", limits=LIMITS
                )
            }
        },
    )


@pytest.fixture
def processed(workspace: Any, tmp_path: Path) -> Any:
    source = tmp_path / "big.csv"
    source.write_text(big_orders(), encoding="utf-8-sig")
    result = edigw(workspace, "process", str(source), "--flow", "webshop/orders")
    assert result.exit_code == 1, result.output
    return workspace


def test_each_document_stores_about_2_kb_of_error_text(processed: Any) -> None:
    with processed.journal() as journal:
        [row] = journal.files()
        docs = journal.documents_of(row.id)
        events = journal.events_of(row.id)
    assert [d.state for d in docs] == ["failed", "failed"]
    big_1, big_2 = (d.error or "" for d in docs)
    assert len(big_1) <= ABOUT_2_KB
    assert big_1.endswith("more problems")
    assert "'abc' is not a decimal number" in big_1
    assert len(big_2) <= ABOUT_2_KB
    assert big_2.endswith("more characters)")
    assert all(len(e.detail or "") <= ABOUT_2_KB for e in events)


def test_show_prints_the_first_problems_and_how_to_see_them_all(processed: Any) -> None:
    result = edigw(processed, "show", "D-1")
    assert result.exit_code == 0, result.output
    assert len(result.output) < 10_000
    assert f"({LINES:,} problems in all: edigw show D-1 --all)" in result.output


def test_show_all_prints_every_problem_the_journal_keeps(processed: Any) -> None:
    result = edigw(processed, "show", "D-1", "--all")
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    assert f"      all {LINES:,} problems:" in lines
    assert sum("'abc' is not a decimal number" in line for line in lines) >= MAX_KEPT
    last = MAX_KEPT - 1
    assert any(f"[/lines/{last}/quantity]" in line for line in lines)
    assert (
        f"        … and {LINES - MAX_KEPT:,} more (the journal keeps the first {MAX_KEPT:,})"
        in lines
    )


def test_status_json_stays_small(processed: Any) -> None:
    result = edigw(processed, "status", "--json")
    assert result.exit_code == 0, result.output
    assert len(result.output) < 16_000
    status = json.loads(result.output)
    assert status["flows"][0]["documents_failed"] == 2


def test_the_error_report_beside_the_failed_file_stays_small(workspace: Any) -> None:
    inbox = workspace.inbox("webshop", "orders")
    (inbox / "big.csv").write_text(big_orders(), encoding="utf-8-sig")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), timeout=60, what="the file to fail")
        wait_until(lambda: (inbox / "error" / "big.csv.error.txt").exists(), what="the report")
    report = (inbox / "error" / "big.csv.error.txt").read_text(encoding="utf-8")
    assert len(report) < 4 * MAX_MESSAGE + 400
    assert "Reference: F-1 (edigw show F-1 --all)" in report
