"""`edigw demo`: one command runs the whole gateway on the embedded defaults."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from edigw.journal.rows import ExportRunRow, FileRow
from edigw.journal.store import Journal

#: Shipped good samples (they map, Ecolix accepts them) that the e-invoice validation on
#: reception blocks, with a rule each is blocked by (as in test_einvoice_validation_gateway):
#: the FNFE-MPE 2017 Factur-X predates the Factur-X 1.09 rules. The demo shows a validation
#: that blocks; our own samples are valid (test_validation) and go through.
VALIDATION_BLOCKED = {
    "Facture_FR_EN16931.pdf": "[FACTUR-X_EN16931]",
}


@dataclass(frozen=True)
class Demo:
    workspace: Path
    result: subprocess.CompletedProcess[str]
    files: list[FileRow]
    runs: list[ExportRunRow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One run of ``edigw demo`` for the module's tests (it takes a while)."""
    workspace = tmp_path_factory.mktemp("demo") / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "edigw.cli", "demo", "--dir", str(workspace)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    journal = Journal.open(f"sqlite:///{workspace / 'edigw-data' / 'journal.sqlite'}")
    try:
        files = journal.files(limit=1000)
        runs = journal.export_runs(limit=100)
    finally:
        journal.close()
    return Demo(workspace, result, files, runs)


def test_demo_processes_every_sample_and_runs_every_export(demo: Demo) -> None:
    workspace, result, files, runs = demo.workspace, demo.result, demo.files, demo.runs
    assert "Inbound files" in result.stdout and "Exports" in result.stdout

    by_state = {f.original_name: f.state for f in files}
    samples = Path(__file__).resolve().parents[1] / "samples"
    bad_samples = {p.name for p in (samples / "bad").rglob("*") if p.is_file()}
    assert bad_samples, "the demo shows deliberately bad samples"
    for name in bad_samples & set(by_state):
        assert by_state[name] in ("failed", "partially_failed"), name
    good = {name: state for name, state in by_state.items() if name not in bad_samples}
    assert len(good) >= 10, "every shipped good sample is dropped"
    blocked = {f.original_name: f.error or "" for f in files}
    blocked = {name: blocked[name] for name in VALIDATION_BLOCKED}
    assert {name: good.pop(name) for name in blocked} == dict.fromkeys(blocked, "failed")
    for name, rule in VALIDATION_BLOCKED.items():
        assert blocked[name].startswith("validation failed") and rule in blocked[name], name
    assert set(good.values()) == {"done"}, good
    shops = {"orders_export_1.csv", "orders-export-2026_11_28-19_00_04.csv", "request_sql_7.csv"}
    assert shops <= set(good), "the web shops' order exports run too"
    assert "skipped" in result.stdout  # their cancelled, unpaid and refunded orders
    assert runs and {r.state for r in runs} <= {"delivered", "empty"}
    # every export the five packages name, the carriers' customers, articles and stock too
    assert {f"{r.partner}/{r.flow}" for r in runs} == {
        "webshop/articles",
        "webshop/stock",
        "webshop-plus/quotes",
        "webshop-plus/order-history",
        "webshop-plus/order-states",
        "crm/customers-export",
        "crm/quotes-export",
        "crm/orders-export",
        "carrier/customers-export",
        "carrier/articles-export",
        "carrier/stock-export",
        "carrier/orders",
        "carrier/orders-xml",
        "supplier/purchase-orders",
        "supplier/purchase-orders-csv",
        "supplier/einvoice-statuses",  # the lifecycle statuses sent to the platform (CDAR)
    }
    # the buyers' orders (UBL, Order-X) and the PEPPOL BIS 3 answers of every kind
    for name in [
        "UBL-Order-2.1-Example.xml",
        "order-x-comfort.xml",
        "BIS3_OrderResponse_Full_Example.xml",
        "OrderResponse_sc2.xml",  # accepted, no lines
        "OrderResponse_sc5.xml",  # rejected
        "order-response-snippet-2.xml",  # acknowledged
        "OrderResponse_PO-2026-0012_split-delivery.xml",
    ]:
        assert by_state[name] == "done", name
    delivered = [r for r in runs if r.state == "delivered"]
    for run in delivered:
        assert any(workspace.rglob(run.file_name or "?")), run.file_name
    assert f"{len(files)} files" in result.stdout
    look_closer(result.stdout)


def test_the_demo_exercises_every_flow_of_the_starter(demo: Demo) -> None:
    """Each inbound flow of ``edigw init``'s configuration receives at least one shipped
    sample, and each export runs: a flow added to the starter without a sample shows here."""
    config: dict[str, Any] = yaml.safe_load(
        (demo.workspace / "edigw.yaml").read_text(encoding="utf-8")
    )
    flows = {
        (partner, name): spec["direction"]
        for partner, flows in config["partners"].items()
        for name, spec in flows["flows"].items()
    }
    inbound = {flow for flow, direction in flows.items() if direction == "inbound"}
    outbound = {flow for flow, direction in flows.items() if direction == "outbound"}
    assert inbound and outbound
    assert inbound - {(f.partner, f.flow) for f in demo.files} == set()
    assert {(r.partner, r.flow) for r in demo.runs} == outbound


def test_the_demo_sends_a_cdar_status_for_each_supplier_invoice_it_decides(demo: Demo) -> None:
    """The demo refuses one received invoice and approves another in Ecolix, so the statuses
    export delivers their lifecycle messages instead of an empty run."""
    assert "Supplier invoices decided in Ecolix" in demo.result.stdout
    runs = [r for r in demo.runs if r.flow == "einvoice-statuses"]  # one run per message
    assert [(r.state, r.records) for r in runs] == [("delivered", 1)] * 2, runs
    cdar = sorted((demo.workspace / "outbox" / "supplier" / "einvoice-statuses").iterdir())
    codes = sorted(
        etree.parse(str(path)).findtext(".//{*}ProcessConditionCode") or "" for path in cdar
    )
    assert codes == ["205", "210"], [p.name for p in cdar]


def look_closer(stdout: str) -> None:
    """The commands the demo prints to look closer work as printed, in a fresh shell
    without ECOLIX_TOKEN (the demo's sandbox is gone by then)."""
    commands = [line.strip() for line in stdout.splitlines() if line.startswith("  edigw ")]
    assert [shlex.split(c)[1] for c in commands] == ["show", "files", "status"]
    env = {k: v for k, v in os.environ.items() if k != "ECOLIX_TOKEN"}
    for command in commands:
        args = shlex.split(command)[1:]
        ran = subprocess.run(
            [sys.executable, "-m", "edigw.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
