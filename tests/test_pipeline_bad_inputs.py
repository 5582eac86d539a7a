"""Bad inputs each get a clear error and an error report, and the gateway keeps going."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.support.orderfiles import write_order_files

MAX_SIZE = 4000


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Any) -> Any:
    return write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {
                "orders": inbound_flow(
                    "ecommerce-orders-csv.yaml", "webshop", "orders", max_size=MAX_SIZE
                ),
                "orders-xml": inbound_flow("ecommerce-orders-xml.yaml", "webshop", "orders-xml"),
            }
        },
    )


def good_file(workspace: Any, prefix: str) -> None:
    write_order_files(
        workspace.inbox("webshop", "orders"), files=1, orders_per_file=1, prefix=prefix
    )


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param("empty.csv", b"", "empty", id="empty-file"),
        pytest.param(
            "undecodable.csv",
            b"num_commande;date_commande\n" + b"\x81\x8d\x8f\x90\x9d;28/11/2026\n",
            "undecodable.csv",
            id="undecodable-bytes",
        ),
        pytest.param("huge.csv", b"x" * (MAX_SIZE + 1), "larger than", id="over-the-size-limit"),
    ],
)
def test_a_bad_csv_file_fails_with_a_reason_and_the_gateway_keeps_going(
    workspace: Any, name: str, content: bytes, expected: str
) -> None:
    inbox = workspace.inbox("webshop", "orders")
    (inbox / name).write_bytes(content)
    good_file(workspace, "AFTERBAD")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 2), what="both outcomes")
        rows = {r.original_name: r for r in parts.journal.files(limit=100)}
    assert rows[name].state == "failed"
    assert expected.lower() in (rows[name].error or "").lower()
    assert name in (rows[name].error or "")
    others = [r for n, r in rows.items() if n != name]
    assert [r.state for r in others] == ["done"]
    report = inbox / "error" / f"{name}.error.txt"
    assert report.exists()
    assert f"F-{rows[name].id}" in report.read_text(encoding="utf-8")
    assert (inbox / "error" / name).exists(), "the bad file itself is kept, never lost"


def test_truncated_xml_fails_naming_the_file_and_the_line(workspace: Any) -> None:
    inbox = workspace.inbox("webshop", "orders-xml")
    root = Path(__file__).resolve().parents[1]
    sample = next((root / "samples" / "ecommerce" / "ecommerce-orders-xml").glob("*.xml"))
    data = sample.read_bytes()
    (inbox / "truncated.xml").write_bytes(data[: len(data) // 2])
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the outcome")
        row = parts.journal.files(limit=10)[0]
    assert row.state == "failed"
    assert "truncated.xml" in (row.error or "")
    assert ":" in (row.error or "")  # file:line
    assert (inbox / "error" / "truncated.xml.error.txt").exists()


@pytest.mark.parametrize(
    "raw_name",
    [
        pytest.param(b"bad\x01name.csv", id="control-character"),
        pytest.param(b"latin1-\xe9t\xe9.csv", id="not-utf8"),
    ],
)
def test_a_file_with_an_odd_name_is_reported_and_the_gateway_keeps_going(
    workspace: Any, raw_name: bytes
) -> None:
    inbox = workspace.inbox("webshop", "orders")
    with open(os.path.join(os.fsencode(inbox), raw_name), "wb") as out:
        out.write(b"num_commande\n")
    good_file(workspace, "AFTERODD")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 2), what="both outcomes")
        rows = parts.journal.files(limit=10)
    states = sorted(r.state for r in rows)
    assert states == ["done", "failed"]
    failed = next(r for r in rows if r.state == "failed")
    assert "name" in (failed.error or "")
