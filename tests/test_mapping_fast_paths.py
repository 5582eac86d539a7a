"""The engine's shortcuts (whole rows, lists straight from rows, plain decimals) give exactly what the
field-by-field path gives: same payloads, same problems, same locations and pointers.

``explain_file`` maps field by field (it traces every value), so it is the reference here.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from edigw.formats.xml import XmlReader
from edigw.mapping import load_mapping
from edigw.mapping.types import _decimal_converter, converter
from tests.fixtures.order_mappings import CSV_ORDERS_MAPPING, XLSX_ORDERS_MAPPING

CSV_ROWS = [
    "Order;Date;Customer;SKU;Qty;Price;Payment;Total;Transaction;Paid",
    "W-1;03/11/2026;c0001;SKU-1;2;12,50;CB;25,00;TX-1;03/11/2026 10:15",
    "W-1;03/11/2026;c0001; SKU-2 ;1;3;CB;25,00;TX-1;03/11/2026 10:15",
    "W-2;04/11/2026;C0002;SKU-1;;12,50;Paypal;1 234,50;TX-2;03/11/2026 10:15",
    "W-3;04/11/2026;C0003;SKU-9;1;12,50;CB;12,50;TX-3;03/11/2026 10:15",
    "W-4;04/11/2026;C0004;SKU-1;1;12.50;CB;12,50;TX-4;03/11/2026 10:15",
    "W-5;04/11/2026;C0005;SKU-1;+3;,5;Cash;0,50;TX-5;03/11/2026 10:15",
    "W-6;04/11/2026;C0006;SKU-1;1",
    "W-7;31/02/2026;;SKU-2;1 000;2,;CB;;",
    "W-8;05/11/2026;C0008;SKU-2;1;1,25;CB;1,25;TX-8;03/11/2026 10:15",
    "W-8;05/11/2026;C0008;;1;1,25;CB;1,25;TX-8;03/11/2026 10:15",
    "W-9;05/11/2026;C0009;SKU-2;1;1,25; ; ;;",
]

XML_MAPPING = """\
source:
  format: xml
  document_path: /o:Orders/o:Order
  namespaces: {o: "urn:example:shop:orders"}
documents: {per: element}
target: orders.create
key: "@id"
fields:
  customer_code: {from: o:Customer/@code, required: true}
  external_reference: "@id"
  order_date: {from: o:Date, type: date}
  delivery_address:
    fields:
      name: o:Ship/o:Name
      line1: o:Ship/o:Street
      postal_code: o:Ship/o:Zip
      city: o:Ship/o:City
      country: {from: o:Ship/o:Country, case: upper}
  lines:
    each: o:Lines/o:Line
    fields:
      article_code: {from: o:Sku, lookup: {table: articles.csv, key: partner_sku, value: ecolix_code}}
      quantity: {from: o:Qty, type: decimal}
      unit_price: {from: o:Price, type: decimal}
  payment:
    fields:
      method: {from: o:Payment/@method, map: {card: CARD, paypal: PAYPAL}}
      amount: {from: o:Payment/o:Amount, type: decimal}
      transaction_id: o:Payment/o:Transaction
      paid_at: {from: o:Payment/o:PaidAt, type: datetime}
"""

PAYMENT = (
    '<Payment method="card"><Amount>3.00</Amount><Transaction>TX</Transaction>'
    "<PaidAt>2026-11-03T10:15:00+01:00</PaidAt></Payment>"
)


def order(
    number: int, lines: str, *, head: str = '<Customer code="C1"/>', tail: str = PAYMENT
) -> str:
    return (
        f'<Order id="W-{number}">{head}<Date>2026-11-03</Date>'
        f"<Lines>{lines}</Lines>{tail}</Order>\n"
    )


LINE = "<Line><Sku>SKU-1</Sku><Qty>2</Qty><Price>1.50</Price></Line>"
XML_ORDERS = [
    order(1, LINE * 3),
    order(2, LINE + "<Line><Sku>SKU-2</Sku><Qty/><Price>1.50</Price></Line>"),
    order(3, "<Line><Qty>1</Qty><Sku>SKU-9</Sku><Price>1.50</Price></Line>"),
    order(4, "<Line><Sku>SKU-1</Sku><Qty>1</Qty><Qty>7</Qty><Price>1,50</Price></Line>"),
    order(5, "<Line><Sku> SKU-2 </Sku><!-- note --><Price>2</Price><Qty>3</Qty></Line>"),
    order(6, LINE, head="<Customer/>", tail=""),
    order(7, LINE, tail='<Payment method="cash"><Amount>x</Amount></Payment>'),
    order(
        8,
        LINE,
        head='<Customer code="C1"/><Ship><Name>A</Name><City>Lyon</City><Country>fr</Country>'
        "</Ship><Ship><Zip>69001</Zip></Ship>",
    ),
    order(9, ""),
    order(10, "<Line><Sku>SKU-1</Sku><Qty>1</Qty><Price>2</Price><Extra>x</Extra></Line>"),
]


def write(folder: Path, mapping: str, name: str, text: str) -> tuple[Path, Path]:
    (folder / "articles.csv").write_text("partner_sku;ecolix_code\nSKU-1;ART-1\nSKU-2;ART-2\n")
    (folder / "m.yaml").write_text(mapping)
    data = folder / name
    data.write_text(text, encoding="utf-8")
    return folder / "m.yaml", data


def assert_same_as_field_by_field(mapping_path: Path, data: Path) -> None:
    mapping = load_mapping(mapping_path)
    fast = list(mapping.map_file(data, source_name=data.name))
    reference = [e.document for e in mapping.explain_file(data, source_name=data.name)]
    assert fast == reference
    assert [str(p) for d in fast for p in d.problems] == [
        str(p) for d in reference for p in d.problems
    ]


def test_csv_documents_match_the_field_by_field_path(tmp_path: Path) -> None:
    mapping, data = write(tmp_path, CSV_ORDERS_MAPPING, "orders.csv", "\n".join(CSV_ROWS) + "\n")
    assert_same_as_field_by_field(mapping, data)
    docs = list(load_mapping(mapping).map_file(data, source_name="orders.csv"))
    assert docs[0].ok  # the shortcuts did run on a good document
    assert docs[0].payload is not None
    assert docs[0].payload["lines"] == [
        {"article_code": "ART-1", "quantity": "2", "unit_price": "12.50"},
        {"article_code": "ART-2", "quantity": "1", "unit_price": "3"},
    ]


def test_xml_documents_match_the_field_by_field_path(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?>\n<Orders xmlns="urn:example:shop:orders">\n'
    text += "".join(XML_ORDERS) + "</Orders>\n"
    mapping, data = write(tmp_path, XML_MAPPING, "orders.xml", text)
    assert_same_as_field_by_field(mapping, data)
    docs = list(load_mapping(mapping).map_file(data, source_name="orders.xml"))
    assert docs[0].ok
    assert docs[0].payload is not None
    assert len(docs[0].payload["lines"]) == 3


def test_xml_rows_read_in_one_pass_equal_values_read_one_by_one(tmp_path: Path) -> None:
    data = tmp_path / "o.xml"
    data.write_text(
        dedent("""\
        <Orders xmlns="urn:example:shop:orders" xmlns:x="urn:x">
          <Order id="1" x:flag="y">
            <Customer code="C1">Acme</Customer><Customer code="C2">Other</Customer>
            <Ship><Name/><City>Lyon</City></Ship><Ship><Zip>69001</Zip></Ship>
            <Payment method="card"><Amount currency="EUR">3</Amount></Payment>
          </Order>
        </Orders>
        """)
    )
    namespaces = {"o": "urn:example:shop:orders", "x": "urn:x"}
    (record,) = XmlReader("/o:Orders/o:Order", namespaces).records(data, source_name="o.xml")
    selectors = (
        "@id",
        "@x:flag",
        "@missing",
        "o:Customer",
        "o:Customer/@code",
        "o:Ship/o:Name",
        "o:Ship/o:City",
        "o:Ship/o:Zip",
        "o:Payment/@method",
        "o:Payment/o:Amount",
        "o:Payment/o:Amount/@currency",
        "o:Customer[2]",
        "o:Missing",
        "o:Missing/o:Deeper",
        "o:Customer",
    )
    expected = [record.value(s) for s in selectors]
    assert [v or None for v in record.values_of(selectors)] == expected
    assert expected[:6] == ["1", "y", None, "Acme", "C1", None]


@pytest.mark.parametrize(
    ("decimal_sep", "thousands"), [(",", " "), (".", ","), (".", ""), (",", "."), (".", ".")]
)
def test_plain_decimals_convert_as_the_general_rules_do(decimal_sep: str, thousands: str) -> None:
    values = ["1", "12,50", "12.50", "1 234,5", "1,234.5", "+3", ",5", "5,", "007", "1.2.3"]
    values += ["x", "", " 4 ", "١٢", 3, 2.5]
    general = _decimal_converter(decimal_sep, thousands, None)
    fast = converter("decimal", decimal_sep=decimal_sep, thousands=thousands)

    def outcome(convert: object, value: object) -> str:
        try:
            return repr(convert(value))  # type: ignore[operator]
        except ValueError as exc:
            return f"error: {exc}"

    assert [outcome(fast, v) for v in values] == [outcome(general, v) for v in values]


def test_excel_documents_match_the_field_by_field_path(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    (tmp_path / "eans.csv").write_text(
        "ean;ecolix_code\n3017620420001;ART-1\n3017620420002;ART-2\n"
    )
    (tmp_path / "m.yaml").write_text(XLSX_ORDERS_MAPPING)
    day, paid = dt.date(2026, 11, 3), dt.datetime(2026, 11, 3, 10, 15)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Orders"
    ws.append(["Order", "Date", "Customer", "EAN", "Qty", "Price", "Payment", "Total"])
    ws["I1"], ws["J1"] = "Transaction", "Paid"
    rows = [
        ["W-1", day, "C1", 3017620420001, 2, 1.5, "CB", 3.5, "TX-1", paid],
        ["W-1", day, "C1", "3017620420002", "1", "2", "CB", 3.5, "TX-1", paid],
        ["W-2", day, "C2", 3017620420009, 2, 1.5, "Paypal", 3, "TX-2", paid],
        ["W-3", "03/11/2026", "C3", 3017620420001, True, "x", "CB", 3, 7, "soon"],
        ["W-4", day, 42, 3017620420002.0, 2.25, 1e-3, "Cash", None, "TX-4", day],
        ["W-5", day, "C5", 3017620420001, 2, 1.5],
    ]
    for row in rows:
        ws.append(row)
    data = tmp_path / "orders.xlsx"
    wb.save(data)
    assert_same_as_field_by_field(tmp_path / "m.yaml", data)
    docs = list(load_mapping(tmp_path / "m.yaml").map_file(data, source_name="orders.xlsx"))
    assert docs[0].ok
    assert docs[0].payload is not None
    assert [line["article_code"] for line in docs[0].payload["lines"]] == ["ART-1", "ART-2"]
