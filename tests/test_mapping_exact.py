"""Money in expressions is exact: decimals, rounding helpers, ``lookup()``, floats refused."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from edigw.errors import MappingError
from edigw.mapping import load_mapping
from edigw.mapping.expressions import RecordView, compile_expression, make_environment
from edigw.mapping.sample import check_mappings
from edigw.model import Location

ROOT = Path(__file__).resolve().parents[1]
HEADER = "code;montant;taux;pays\n"


BASE = """\
version: 1
source: {{format: csv, delimiter: ";", decimal: ","}}
target: orders.create
documents: {{per: group, by: code}}
key: code
fields:
  customer_code: {{from: code}}
  external_reference: {{from: code}}
  order_date: {{value: "2026-11-28", type: date}}
  lines:
    each: records
    fields:
      article_code: {{value: ART-0001}}
      quantity: {{value: "1", type: decimal}}
  payment:
    fields:
      method: {{value: CARD}}
      transaction_id: {{value: TX-1}}
      paid_at: {{value: "2026-11-28T10:00:00Z", type: datetime}}
      amount: {amount}
  delivery_address:
    fields:
      line1: {{value: "1 rue X"}}
      postal_code: {{value: "69001"}}
      city: {{value: Lyon}}
      country: {country}
"""


def mapped(
    tmp_path: Path,
    row: str,
    *,
    amount: str = "{from: montant, type: decimal}",
    country: str = "{value: FR}",
    tables: dict[str, str] | None = None,
) -> Any:
    """The documents of an orders.create mapping over one CSV ``row``."""
    for name, text in (tables or {}).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(BASE.format(amount=amount, country=country), encoding="utf-8")
    sample = tmp_path / "s.csv"
    sample.write_text(HEADER + row, encoding="utf-8")
    compiled = load_mapping(mapping)
    return list(compiled.map_file(sample, source_name="s.csv"))


def amount_of(tmp_path: Path, expr: str, row: str) -> Any:
    [doc] = mapped(tmp_path, row, amount=f"{{from: montant, type: decimal, expr: {expr!r}}}")
    if doc.problems:
        return [p.message for p in doc.problems]
    return doc.payload["payment"]["amount"]


def country_of(tmp_path: Path, expr: str, row: str) -> Any:
    [doc] = mapped(tmp_path, row, country=f"{{expr: {expr!r}}}", tables={"countries.csv": TABLE})
    return doc


TABLE = "pays;code_iso;zone\nFrance;FR;EU\nSuisse;CH;CH\n"


def test_a_decimal_fields_value_is_a_decimal_read_with_the_sources_separator(
    tmp_path: Path,
) -> None:
    assert amount_of(tmp_path, "value * 1.2", "W-1;10,50;20;France\n") == "12.600"


def test_numbers_written_in_an_expression_are_exact(tmp_path: Path) -> None:
    assert amount_of(tmp_path, "0.3 - 0.1 + value", "W-1;0;20;France\n") == "0.2"
    assert amount_of(tmp_path, "round_half_up(value / 3, 2)", "W-1;1;20;France\n") == "0.33"


def test_the_decimal_filter_reads_a_column_with_the_sources_separator(tmp_path: Path) -> None:
    expr = "round_half_up(value * (1 + record.taux | decimal / 100), 2)"
    assert amount_of(tmp_path, expr, "W-1;100,00;5,5;France\n") == "105.50"


def test_a_value_that_is_no_number_reaches_the_expression_as_text(tmp_path: Path) -> None:
    expr = "value | replace(' EUR', '')"
    assert amount_of(tmp_path, expr, "W-1;12,50 EUR;20;France\n") == "12.50"


def test_a_float_meeting_a_decimal_is_refused_with_why(tmp_path: Path) -> None:
    [message] = amount_of(tmp_path, "value | float * 1.2", "W-1;10,50;20;France\n")
    assert "mixes an exact decimal with a float" in message
    assert "'| decimal' instead of '| float'" in message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param("round_half_up(value, 2)", "2.35", id="half-up"),
        pytest.param("round_half_even(value, 2)", "2.34", id="half-even"),
        pytest.param("round_half_up(value, 0)", "2", id="no-places"),
    ],
)
def test_rounding_helpers_round_decimals_as_named(tmp_path: Path, expr: str, expected: str) -> None:
    assert amount_of(tmp_path, expr, "W-1;2,345;20;France\n") == expected


def test_division_by_zero_says_so(tmp_path: Path) -> None:
    [message] = amount_of(tmp_path, "value / 0", "W-1;1;20;France\n")
    assert message.endswith("failed: division by zero")


def test_lookup_finds_the_second_column_or_the_one_named(tmp_path: Path) -> None:
    doc = country_of(tmp_path, "lookup('countries.csv', record.pays)", "W-1;1;20;Suisse\n")
    zone = country_of(tmp_path, "lookup('countries.csv', record.pays, 'zone')", "W-1;1;20;France\n")
    assert doc.payload["delivery_address"]["country"] == "CH"
    assert zone.payload["delivery_address"]["country"] == "EU"


def test_a_missing_row_names_the_table_and_the_key(tmp_path: Path) -> None:
    doc = country_of(tmp_path, "lookup('countries.csv', record.pays)", "W-1;1;20;Belgique\n")
    [problem] = doc.problems
    assert problem.message.endswith(
        "failed: no row 'Belgique' in lookup table countries.csv (key column 'pays')"
    )
    assert problem.pointer == "/delivery_address/country"


def test_a_lookup_default_stands_for_a_missing_row(tmp_path: Path) -> None:
    expr = "lookup('countries.csv', record.pays, default='FR')"
    doc = country_of(tmp_path, expr, "W-1;1;20;Belgique\n")
    assert doc.payload["delivery_address"]["country"] == "FR"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        pytest.param(
            "lookup('nowhere.csv', record.pays)", "nowhere.csv: lookup table not found", id="table"
        ),
        pytest.param(
            "lookup('countries.csv', record.pays, 'zonne')",
            "lookup table countries.csv has no column 'zonne'; did you mean 'zone'?",
            id="column",
        ),
        pytest.param(
            "lookup(record.pays, record.pays)",
            "lookup(): name the table as a quoted file name",
            id="named-by-a-value",
        ),
    ],
)
def test_a_lookup_that_cannot_work_fails_the_mapping_when_it_loads(
    tmp_path: Path, expr: str, fragment: str
) -> None:
    with pytest.raises(MappingError) as refused:
        country_of(tmp_path, expr, "W-1;1;20;France\n")
    assert any(fragment in p for p in refused.value.problems), refused.value.problems


def test_mapping_check_knows_lookup_and_the_rounding_helpers(tmp_path: Path) -> None:
    (tmp_path / "countries.csv").write_text(TABLE, encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        dedent(
            """\
            version: 1
            source: {format: csv, delimiter: ";", decimal: ","}
            target: customers.upsert
            documents: {per: record}
            key: code
            fields:
              code: {from: code}
              name: {expr: "lookup('countries.csv', record.pays) ~ round_half_up(record.montant, 2) ~ round_half_even(1, 0)"}
              billing_address:
                fields:
                  line1: {value: "1 rue X"}
                  postal_code: {value: "69001"}
                  city: {value: Lyon}
                  country: {value: FR}
            """
        ),
        encoding="utf-8",
    )
    [result] = check_mappings([mapping])
    assert result.problems == []


class _ExcelRow:
    """A record as the Excel reader gives it: numbers are floats."""

    location = Location("s.xlsx", line=2)

    def __init__(self, **cells: Any) -> None:
        self.cells = cells

    def value(self, selector: str) -> Any:
        return self.cells.get(selector)

    def where(self, selector: str) -> Location:
        return Location("s.xlsx", line=2, cell=f"Feuil1!{selector}2")

    def children(self, selector: str) -> list[Any]:
        return []


def test_excel_numbers_are_exact_in_expressions() -> None:
    env = make_environment()
    total = compile_expression(env, "record.price * record.qty + 0.1")
    code = compile_expression(env, "record.ean ~ ''")
    row = RecordView(_ExcelRow(price=0.1, qty=3.0, ean=3017620422003.0))
    assert total(record=row) == Decimal("0.4")
    assert code(record=row) == "3017620422003"


def test_no_shipped_mapping_computes_with_float() -> None:
    for path in sorted((ROOT / "mappings").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bfloat\b", text), path.name
