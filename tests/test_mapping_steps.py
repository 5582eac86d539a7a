"""Mapping follow-up steps (`then:`) and exact decimal arithmetic in expressions."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from edigw.errors import MappingError
from edigw.mapping import load_mapping
from edigw.mapping.sample import run_samples

INVOICES = """\
source: {format: csv, delimiter: ";"}
documents: {per: group, by: number}
target: supplier_invoices.create
key: number
fields:
  supplier:
    fields:
      siret: siret
  document_type: {value: invoice}
  number: number
  issue_date: {from: date, type: date}
  due_date: {from: date, type: date}
  currency: {value: EUR}
  lines:
    each: records
    fields:
      description: {value: Article}
      quantity: {value: "1", type: decimal}
      unit_price: {from: net, type: decimal}
      net_amount: {from: net, type: decimal}
      vat_rate: {value: "20.00"}
  vat_breakdown:
    each: records
    fields:
      rate: {value: "20.00"}
      base: {from: net, type: decimal}
      amount: {from: vat, type: decimal}
  totals:
    fields:
      net: {from: net, type: decimal}
      vat: {from: vat, type: decimal}
      gross: {expr: "record.net | decimal + record.vat | decimal", type: decimal}
"""
STEP = """\
then:
  - target: supplier_invoices.attach
    fields:
      id: {answer: id}
      file_name: {original: file_name}
      content_type: {value: text/csv}
      content_base64: {original: content_base64}
      sha256: {original: sha256}
"""
CSV = "number;siret;date;net;vat\nF-1;73282932000074;2026-11-02;100.10;20.02\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def sample(tmp_path: Path, text: str = CSV) -> Path:
    path = tmp_path / "invoices.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_follow_up_step_is_mapped_with_placeholders_for_what_comes_later(
    tmp_path: Path,
) -> None:
    mapping = load_mapping(write(tmp_path, INVOICES + STEP))
    (document,) = mapping.map_file(sample(tmp_path), source_name="invoices.csv")
    assert document.ok
    (step,) = document.steps
    assert step.operation == "supplier_invoices.attach"
    assert step.payload == {
        "id": {"$answer": "/id"},
        "file_name": {"$original": "file_name"},
        "content_type": "text/csv",
        "content_base64": {"$original": "content_base64"},
        "sha256": {"$original": "sha256"},
    }


def test_mapping_test_shows_every_step(tmp_path: Path) -> None:
    run = run_samples(load_mapping(write(tmp_path, INVOICES + STEP)), sample(tmp_path))
    (entry,) = run.documents
    assert entry["operation"] == "supplier_invoices.create"
    assert [s["operation"] for s in entry["then"]] == ["supplier_invoices.attach"]


def test_explain_traces_a_steps_values(tmp_path: Path) -> None:
    run = run_samples(
        load_mapping(write(tmp_path, INVOICES + STEP)), sample(tmp_path), explain=True
    )
    assert any(
        line.startswith('  /then/0/id = {"$answer": "/id"}  <-  answer \'/id\' of the first step')
        for line in run.explanations
    ), run.explanations


def test_a_step_value_the_contract_refuses_is_a_located_problem(tmp_path: Path) -> None:
    bad = STEP.replace("{value: text/csv}", "{value: Text/CSV}")
    mapping = load_mapping(write(tmp_path, INVOICES + bad))
    (document,) = mapping.map_file(sample(tmp_path), source_name="invoices.csv")
    assert not document.ok and document.steps == ()
    (problem,) = document.problems
    assert problem.pointer == "/then/0/content_type"
    assert problem.message.startswith("supplier_invoices.attach: ")
    assert str(problem.location) == "invoices.csv:2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            INVOICES.replace("number: number", "number: {answer: id}"),
            "m.yaml:10 fields.number: `answer:` and `original:` are read only at the top level "
            "of a `then:` step",
            id="answer-outside-a-step",
        ),
        pytest.param(
            INVOICES + STEP.replace("{original: file_name}", "{original: file_name, from: x}"),
            "m.yaml:37 then.0.fields.file_name: `answer:`/`original:` stands alone",
            id="answer-with-from",
        ),
        pytest.param(
            INVOICES + STEP.replace("supplier_invoices.attach", "supplier_invoices.delete"),
            "m.yaml:34 then.0.target:",
            id="unknown-step-target",
        ),
    ],
)
def test_a_misplaced_or_mistyped_step_fails_when_the_mapping_loads(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(write(tmp_path, text))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_decimal_arithmetic_in_an_expression_is_exact(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, INVOICES))
    (document,) = mapping.map_file(sample(tmp_path), source_name="invoices.csv")
    assert document.payload is not None
    assert document.payload["totals"]["gross"] == "120.12"  # float: 120.11999999999999


def test_decimal_arithmetic_on_an_empty_value_is_a_located_problem_not_zero(
    tmp_path: Path,
) -> None:
    mapping = load_mapping(write(tmp_path, INVOICES))
    csv = CSV.replace(";20.02\n", ";\n")
    (document,) = mapping.map_file(sample(tmp_path, csv), source_name="invoices.csv")
    pointers = {p.pointer: p.message for p in document.problems}
    assert "not a decimal number" in pointers["/totals/gross"]
