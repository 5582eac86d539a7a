"""The mapping engine on CSV: documents, fields, lookups, problems with locations and pointers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from textwrap import dedent

import pytest

from edigw.mapping import CompiledMapping, load_mapping
from edigw.model import MappedDocument

DATA = Path(__file__).parent / "data" / "mapping"
HEADER = "Order;Date;Customer;SKU;Qty;Price;Payment;Total;Transaction;Payé le;Status\n"


def row(order: str = "W-1", sku: str = "SKU-1", qty: str = "2", **kw: str) -> str:
    cells = {
        "Date": "03/11/2026",
        "Customer": "C0001",
        "Price": "12,50",
        "Payment": "CB",
        "Total": "30,00",
        "Transaction": "TX-1",
        "Payé le": "03/11/2026 10:15",
        "Status": "OK",
        **kw,
    }
    names = ["Date", "Customer", "Price", "Payment", "Total", "Transaction", "Payé le", "Status"]
    values = [order, cells["Date"], cells["Customer"], sku, qty, *(cells[n] for n in names[2:])]
    return ";".join(values) + "\n"


@pytest.fixture
def orders_mapping() -> CompiledMapping:
    return load_mapping(DATA / "orders-csv.yaml")


def run(mapping: CompiledMapping, tmp_path: Path, text: str) -> list[MappedDocument]:
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    return list(mapping.map_file(path, source_name="orders.csv"))


def test_rows_sharing_an_order_number_become_one_order_with_its_lines(
    orders_mapping: CompiledMapping,
) -> None:
    docs = list(orders_mapping.map_file(DATA / "orders.csv", source_name="orders.csv"))
    assert [d.key for d in docs] == ["W-1001", "W-1002"]
    assert docs[0].payload == {
        "customer_code": "C0001",
        "external_reference": "W-1001",
        "order_date": "2026-11-03",
        "lines": [
            {"article_code": "ART-0001", "quantity": "2", "unit_price": "12.50"},
            {"article_code": "ART-0002", "quantity": "1.5", "unit_price": "3.00"},
        ],
        "payment": {
            "method": "CARD",
            "amount": "1234.50",
            "transaction_id": "TX-1",
            "paid_at": "2026-11-03T10:15:00+01:00",
        },
    }
    assert str(docs[1].location) == "orders.csv:4"


def test_every_problem_of_a_document_is_reported_at_once_with_location_and_pointer(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    text = HEADER + row(sku="SKU-9", Date="31/02/2026", Payment="Cash") + row(qty="deux")
    [doc] = run(orders_mapping, tmp_path, text)
    assert doc.payload is None
    assert [str(p) for p in doc.problems] == [
        "orders.csv:2:2 field Date [/order_date]: '31/02/2026' is not a date in the format %d/%m/%Y",
        "orders.csv:2:4 field SKU [/lines/0/article_code]: 'SKU-9' not found in lookup table articles.csv (key column 'partner_sku')",
        "orders.csv:3:5 field Qty [/lines/1/quantity]: 'deux' is not a decimal number",
        "orders.csv:2:7 field Payment [/payment/method]: 'Cash' is not in the value map (known: 'CB', 'Paypal', 'Virement')",
    ]


def test_one_bad_order_does_not_sink_its_neighbours(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    text = HEADER + row("W-1") + row("W-2", qty="x") + row("W-3")
    docs = run(orders_mapping, tmp_path, text)
    assert [(d.key, d.ok) for d in docs] == [("W-1", True), ("W-2", False), ("W-3", True)]


def test_a_required_empty_value_names_its_column(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    [doc] = run(orders_mapping, tmp_path, HEADER + row(Customer=" "))
    assert [str(p) for p in doc.problems] == [
        "orders.csv:2:3 field Customer [/customer_code]: required value missing ('Customer' is empty)"
    ]


def test_contract_schema_errors_point_at_the_target_field_and_its_source(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    [doc] = run(orders_mapping, tmp_path, HEADER + row(Customer="C 01", Transaction=""))
    assert doc.payload is None
    found = {(str(p.location), p.pointer): p.message for p in doc.problems}
    assert set(found) == {
        ("orders.csv:2:3 field Customer", "/customer_code"),
        ("orders.csv:2:9 field Transaction", "/payment/transaction_id"),
    }
    assert (
        found["orders.csv:2:9 field Transaction", "/payment/transaction_id"]
        == "required by Ecolix but missing"
    )
    assert found["orders.csv:2:3 field Customer", "/customer_code"].startswith(
        '"C 01" does not match'
    )


def test_rows_of_one_order_must_be_consecutive(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    docs = run(orders_mapping, tmp_path, HEADER + row("W-1") + row("W-2") + row("W-1"))
    assert [d.ok for d in docs] == [True, True, False]
    assert str(docs[2].problems[0]) == (
        "orders.csv:4: records of W-1 are not consecutive: this document already started at "
        "orders.csv:2; sort the file by Order"
    )


def test_skip_drops_records_before_grouping(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    docs = run(orders_mapping, tmp_path, HEADER + row("W-1", Status="CANCELLED") + row("W-2"))
    assert [d.key for d in docs] == ["W-2"]


def write_mapping(tmp_path: Path, body: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(body), encoding="utf-8")
    shutil.copy(DATA / "articles.csv", tmp_path / "articles.csv")
    return path


CUSTOMERS = """\
source: {format: csv, delimiter: ";"}
documents: {per: record}
target: customers.upsert
key: code
fields:
  code: {from: code, case: upper}
  name: {expr: "record.first ~ ' ' ~ record['last'] | upper"}
  payment_terms: {from: terms, map: {"30": NET30}, on_miss: default, default: IMMEDIATE}
  billing_address:
    fields:
      line1: street
      postal_code: zip
      city: city
      country: {value: FR}
"""


def test_constants_expressions_and_miss_defaults(tmp_path: Path) -> None:
    mapping = load_mapping(write_mapping(tmp_path, CUSTOMERS))
    sample = tmp_path / "c.csv"
    sample.write_text(
        "code;first;last;terms;street;zip;city\nc1;Léa;Martin;60;1 rue A;69001;Lyon\n"
    )
    [doc] = mapping.map_file(sample, source_name="c.csv")
    assert doc.payload == {
        "code": "C1",
        "name": "Léa MARTIN",
        "payment_terms": "IMMEDIATE",
        "billing_address": {
            "line1": "1 rue A",
            "postal_code": "69001",
            "city": "Lyon",
            "country": "FR",
        },
    }


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("record.__class__", id="dunder"),
        pytest.param("record._record", id="private"),
        pytest.param("''.__class__.__mro__", id="mro"),
    ],
)
def test_expressions_cannot_reach_python_internals(tmp_path: Path, expression: str) -> None:
    text = CUSTOMERS.replace(
        "\"record.first ~ ' ' ~ record['last'] | upper\"", json.dumps(expression)
    )
    mapping = load_mapping(write_mapping(tmp_path, text))
    sample = tmp_path / "c.csv"
    sample.write_text("code;first;last;terms;street;zip;city\nc1;L;M;30;r;1;L\n")
    [doc] = mapping.map_file(sample, source_name="c.csv")
    assert doc.payload is None
    assert "name" in (doc.problems[0].pointer or "")
    assert "c.csv:2" in str(doc.problems[0])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            CUSTOMERS.replace("key: code", "key: code\nfeilds: {}"),
            "m.yaml:5 feilds: unknown key 'feilds'",
            id="unknown-top-key",
        ),
        pytest.param(
            CUSTOMERS.replace("{from: code, case: upper}", "{from: code, case: shout}"),
            'm.yaml:6 fields.code.case: "shout" is not one of "upper", "lower" or "title"',
            id="bad-enum",
        ),
        pytest.param(
            CUSTOMERS.replace("line1: street", "line1: {from: street, format: '%d'}"),
            "m.yaml:11 fields.billing_address.fields.line1.format: 'format' applies to type date or datetime only",
            id="option-for-other-type",
        ),
        pytest.param(
            CUSTOMERS.replace('| upper"', '| upper +"'),
            "m.yaml:7 fields.name.expr: invalid expression",
            id="expression-syntax",
        ),
        pytest.param(
            CUSTOMERS.replace("target: customers.upsert", "target: customers.list"),
            'm.yaml:3 target: "customers.list" is not one of',
            id="read-operation",
        ),
        pytest.param(
            CUSTOMERS.replace(
                "city: city", "city: {from: city, lookup: {table: nope.csv, key: a, value: b}}"
            ),
            "m.yaml:13 fields.billing_address.fields.city.lookup.table:",
            id="missing-table",
        ),
        pytest.param(
            CUSTOMERS.replace("code: {from: code", "code: {fro: code"),
            "m.yaml:6 fields.code.fro: unknown key 'fro'",
            id="typo-in-field",
        ),
        pytest.param(
            CUSTOMERS.replace("documents: {per: record}", "documents: {per: group}"),
            "m.yaml:2 documents.per: per: group needs `by:`",
            id="group-without-by",
        ),
        pytest.param(
            CUSTOMERS + "  code: again\n",
            "m.yaml:15 fields.code: duplicate key",
            id="duplicate-key",
        ),
        pytest.param(
            CUSTOMERS.replace("fields:\n  code", "fields:\n  code: [\n  x"),
            "m.yaml:",
            id="yaml-syntax",
        ),
    ],
)
def test_mapping_errors_name_file_line_and_key(tmp_path: Path, body: str, expected: str) -> None:
    from edigw.errors import MappingError

    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, body))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_a_lookup_table_with_conflicting_entries_is_refused(tmp_path: Path) -> None:
    from edigw.errors import MappingError

    path = write_mapping(tmp_path, (DATA / "orders-csv.yaml").read_text())
    (tmp_path / "articles.csv").write_text("partner_sku;ecolix_code\nA;X\nA;Y\n")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert any(
        "articles.csv:3: 'A' already maps to 'X' at line 2" in p for p in caught.value.problems
    )


def test_a_lookup_miss_kept_as_it_is_names_the_table_and_key_when_it_fails_later(
    tmp_path: Path,
) -> None:
    """``on_miss: passthrough`` keeps an unknown value; when that value then cannot be
    converted, the message says it was a miss of which table and key column, not only that
    the value is no number."""
    text = (DATA / "orders-csv.yaml").read_text()
    text = text.replace(
        "      quantity: {from: Qty, type: decimal}",
        "      quantity:\n"
        "        from: SKU\n"
        "        lookup: {table: quantities.csv, key: sku, value: qty}\n"
        "        on_miss: passthrough\n"
        "        type: decimal",
    )
    path = write_mapping(tmp_path, text)
    (tmp_path / "articles.csv").write_text("partner_sku;ecolix_code\nSKU-1;ART-0001\nSKU-2;ART-2\n")
    (tmp_path / "quantities.csv").write_text("sku;qty\nSKU-1;3\n")
    docs = run(load_mapping(path), tmp_path, HEADER + row(sku="SKU-1") + row(sku="SKU-2"))
    assert docs[0].payload is None
    assert [str(p) for p in docs[0].problems] == [
        "orders.csv:3:4 field SKU [/lines/1/quantity]: 'SKU-2' is not a decimal number "
        "('SKU-2' not found in lookup table quantities.csv (key column 'sku'); "
        "on_miss: passthrough kept it as it is)"
    ]


INVOICE = """\
source: {format: csv, delimiter: ";", decimal: ","}
documents: {per: file}
target: orders.create
key: {expr: "'ORDER-' ~ (records | length)"}
fields:
  customer_code: {value: C0001}
  external_reference: {expr: "records[0]['ref']"}
  order_date: {value: "2026-11-03", type: date}
  lines:
    each: records
    when: "record.qty != '0'"
    fields:
      article_code: sku
      quantity: {from: qty, type: decimal}
  payment:
    fields:
      method: {value: CARD}
      amount: {value: "10", type: decimal}
      transaction_id: {value: T}
      paid_at: {value: "2026-11-03 10:00", type: datetime}
"""


def test_a_whole_file_document_lists_its_records_and_filters_items(tmp_path: Path) -> None:
    mapping = load_mapping(write_mapping(tmp_path, INVOICE))
    sample = tmp_path / "f.csv"
    sample.write_text("ref;sku;qty\nR-1;A1;1\nR-1;A2;0\nR-1;A3;2,5\n")
    [doc] = mapping.map_file(sample, source_name="f.csv")
    assert doc.key == "ORDER-3"
    assert doc.payload is not None
    assert doc.payload["lines"] == [
        {"article_code": "A1", "quantity": "1"},
        {"article_code": "A3", "quantity": "2.5"},
    ]
    assert doc.payload["payment"]["paid_at"] == "2026-11-03T10:00:00+01:00"


def test_document_skip_sees_the_finished_payload(tmp_path: Path) -> None:
    body = INVOICE.replace(
        "documents: {per: file}", 'documents: {per: file, skip: "payload.lines | length < 2"}'
    )
    mapping = load_mapping(write_mapping(tmp_path, body))
    sample = tmp_path / "f.csv"
    sample.write_text("ref;sku;qty\nR-1;A1;1\n")
    assert list(mapping.map_file(sample, source_name="f.csv")) == []


def test_the_flow_encoding_overrides_the_mapping(
    orders_mapping: CompiledMapping, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes((DATA / "orders.csv").read_bytes())
    from edigw.errors import MalformedFileError

    with pytest.raises(MalformedFileError, match="as utf-8"):
        list(orders_mapping.map_file(path, source_name="orders.csv", encoding="utf-8"))
    notes: list[str] = []
    docs = list(orders_mapping.map_file(path, source_name="orders.csv", notes=notes))
    assert len(docs) == 2
    assert notes == ["orders.csv: encoding cp1252 (detected)"]


def test_map_records_accepts_records_from_any_reader(orders_mapping: CompiledMapping) -> None:
    reader = orders_mapping.reader()
    records = list(reader.records(DATA / "orders.csv", source_name="orders.csv"))
    assert [d.key for d in orders_mapping.map_records(records)] == ["W-1001", "W-1002"]
