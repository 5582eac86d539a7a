"""Ecolix's JSON pointers traced back to the source: cells, computed values, constants, steps."""

from __future__ import annotations

from pathlib import Path

from edigw.errors import FieldError
from edigw.mapping import load_mapping
from edigw.mapping.refusals import located

ROOT = Path(__file__).resolve().parents[1]
MAPPING = """\
version: 1
source: {format: csv, delimiter: ";", decimal: ","}
target: customers.upsert
documents: {per: record}
key: code
fields:
  code: {from: code}
  name: {expr: "record.prenom ~ ' ' ~ record.nom"}
  payment_terms: {value: NET30}
  billing_address:
    fields:
      line1: {from: rue}
      postal_code: {from: cp}
      city: {from: ville}
      country: {value: FR}
then:
  - target: customers.upsert
    fields:
      code: {from: code}
      name: {from: nom}
      billing_address:
        fields:
          line1: {from: rue}
          postal_code: {from: cp}
          city: {from: ville}
          country: {value: FR}
"""
SAMPLE = "code;prenom;nom;rue;cp;ville\nC-1;Anne;Martin;1 rue X;69001;Lyon\nC-2;Paul;Durand;2 rue Y;75001;Paris\n"


def places(tmp_path: Path, *pointers: str, prefix: str = "", index: int = 1) -> list[str]:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    sample = tmp_path / "clients.csv"
    sample.write_text(SAMPLE, encoding="utf-8")
    compiled = load_mapping(mapping)
    records = compiled.reader().records(sample, source_name="clients.csv")
    for n, (document, trace) in enumerate(compiled.traceable_documents(records)):
        if n == index:
            errors = [FieldError(p, "refused") for p in pointers]
            return [str(e) for e in located(errors, trace(), document.location, prefix=prefix)]
    raise AssertionError(index)


def test_a_value_read_from_a_cell_is_placed_at_that_cell(tmp_path: Path) -> None:
    assert places(tmp_path, "/billing_address/postal_code") == [
        "clients.csv:3:5 field cp [/billing_address/postal_code]: refused"
    ]


def test_a_computed_value_names_its_expression_and_the_cells_it_read(tmp_path: Path) -> None:
    assert places(tmp_path, "/name") == [
        "clients.csv:3 computed by expression \"record.prenom ~ ' ' ~ record.nom\" from "
        "clients.csv:3:2 field prenom, clients.csv:3:3 field nom [/name]: refused"
    ]


def test_a_constant_is_placed_in_the_mapping(tmp_path: Path) -> None:
    assert places(tmp_path, "/payment_terms") == [
        "constant 'NET30' of the mapping (record at clients.csv:3) [/payment_terms]: refused"
    ]


def test_an_object_is_placed_at_its_record_and_the_whole_body_at_the_document(
    tmp_path: Path,
) -> None:
    assert places(tmp_path, "/billing_address", "/", "/vat_number/0") == [
        "clients.csv:3 [/billing_address]: refused",
        "clients.csv:3 [/]: refused",
        "clients.csv:3 [/vat_number/0]: refused",
    ]


def test_a_refused_step_is_traced_in_its_own_payload(tmp_path: Path) -> None:
    assert places(tmp_path, "/name", prefix="/then/0", index=0) == [
        "clients.csv:2:3 field nom [/name]: refused"
    ]
