"""`edigw config check` and `edigw config schema`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main


@pytest.fixture
def starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    CliRunner().invoke(main, ["init", str(tmp_path)])
    monkeypatch.setenv("ECOLIX_TOKEN", "T")
    monkeypatch.setenv("EDIGW_COMPANY_NAME", "Outillage Durand SAS")  # the starter asks for it
    monkeypatch.setenv("EDIGW_COMPANY_SIREN", "552081317")  # and the statuses for this
    return tmp_path / "edigw.yaml"


def test_check_reports_what_the_configuration_holds(starter: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check", "-c", str(starter)])

    assert result.exit_code == 0, result.output
    assert (
        result.output.splitlines()[0]
        == f"ok {starter}: 5 partners, 21 inbound flows (21 mappings), 16 exports"
    )


def test_check_lists_every_configuration_problem(starter: Path) -> None:
    text = starter.read_text(encoding="utf-8")
    text = text.replace("calls_per_minute: 600", "calls_per_minute: lots")
    text = text.replace("mappings/crm-customers-xlsx.yaml", "mappings/crm.yaml")
    starter.write_text(text, encoding="utf-8")
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if "mappings/crm.yaml" in t)

    result = CliRunner().invoke(main, ["config", "check", "-c", str(starter)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: edigw.yaml:12 ecolix.calls_per_minute: must be a whole number, got 'lots'",
        f"edigw.yaml:{line} partners.crm.flows.customers.mapping: file not found "
        f"({starter.parent}/mappings/crm.yaml)",
    ]


def test_check_reports_a_broken_mapping_with_its_line(starter: Path) -> None:
    mapping = starter.parent / "mappings" / "ecommerce-orders-csv.yaml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8").replace("type: date,", "type: day,"),
        encoding="utf-8",
    )

    result = CliRunner().invoke(main, ["config", "check", "-c", str(starter)])

    assert result.exit_code == 1
    assert result.output.startswith("Error: ecommerce-orders-csv.yaml:23 fields.order_date.type:")


def test_schema_describes_every_key() -> None:
    result = CliRunner().invoke(main, ["config", "schema"])

    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "ecolix",
        "data_dir",
        "journal",
        "archive",
        "retry",
        "supervisor",
        "alerts",
        "nodes",
        "http",
        "processes",
        "log_format",
        "security",
        "sftp_endpoints",
        "partners",
        "settings",
    }
    assert all("description" in prop for prop in schema["properties"].values())
