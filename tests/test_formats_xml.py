"""XML reader: document path, namespaced XPaths, locations, streaming, and hostile files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edigw.errors import MalformedFileError, MappingError
from edigw.formats.xml import XmlReader
from edigw.mapping import load_mapping

DATA = Path(__file__).parent / "data" / "mapping"
NS = {"o": "urn:example:shop:orders"}


def reader(path: str = "/o:Orders/o:Order") -> XmlReader:
    return XmlReader(path, NS)


def records(path: Path, document_path: str = "/o:Orders/o:Order") -> list:
    return list(reader(document_path).records(path, source_name=path.name))


def test_one_record_per_element_at_the_document_path() -> None:
    first, second = records(DATA / "orders.xml")
    assert first.value("@id") == "W-2001"
    assert second.value("o:Customer/@code") == "C0002"
    assert first.value("o:Ship/o:City") == "Lyon"
    assert second.value("o:Ship/o:City") is None


def test_locations_give_line_and_xpath() -> None:
    first, second = records(DATA / "orders.xml")
    assert str(second.location) == "orders.xml:13 /o:Orders/o:Order[2]"
    assert str(first.where("o:Date")) == "orders.xml:5 /o:Orders/o:Order[1]/o:Date"
    assert str(first.where("o:Payment/@method")) == (
        "orders.xml:11 /o:Orders/o:Order[1]/o:Payment/@method"
    )


def test_children_are_records_with_their_own_xpath() -> None:
    first = records(DATA / "orders.xml")[0]
    lines = first.children("o:Lines/o:Line")
    assert [line.value("o:Sku") for line in lines] == ["SKU-1", "SKU-2"]
    assert str(lines[1].location) == "orders.xml:9 /o:Orders/o:Order[1]/o:Lines/o:Line[2]"


def test_full_xpath_expressions_work_beside_plain_paths() -> None:
    first = records(DATA / "orders.xml")[0]
    assert first.value("count(o:Lines/o:Line)") == 2
    assert first.value("o:Lines/o:Line[o:Sku='SKU-2']/o:Price") == "3.00"


def test_elements_of_the_same_name_elsewhere_are_not_documents(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    path.write_text(
        '<Orders xmlns="urn:example:shop:orders"><Order id="1"><Order id="nested"/></Order>'
        '<Archive><Order id="old"/></Archive><Order id="2"/></Orders>'
    )
    assert [r.value("@id") for r in records(path)] == ["1", "2"]


def test_records_are_detached_so_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    orders = "".join(f'<Order id="{i}"><Qty>1</Qty></Order>' for i in range(50))
    path.write_text(f'<Orders xmlns="urn:example:shop:orders">{orders}</Orders>')
    seen = []
    for record in reader().records(path, source_name="f.xml"):
        assert record.element.getparent() is None
        seen.append(record.value("@id"))
    assert len(seen) == 50


def test_the_root_element_as_document_path_gives_one_record(tmp_path: Path) -> None:
    path = tmp_path / "inv.xml"
    path.write_text('<Invoice xmlns="urn:example:shop:orders"><ID>F1</ID></Invoice>')
    [record] = records(path, "/o:Invoice")
    assert record.value("o:ID") == "F1"


def test_entity_expansion_bombs_are_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    path.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE Orders [\n<!ENTITY lol0 "lol">{entities}]>\n'
        '<Orders xmlns="urn:example:shop:orders"><Order id="&lol9;"/></Orders>'
    )
    with pytest.raises(MalformedFileError) as caught:
        records(path)
    assert str(caught.value).startswith(
        "bomb.xml:3: the XML declares entities in its DTD; edigw refuses them"
    )


def test_external_dtds_are_neither_loaded_nor_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = tmp_path / "f.xml"
    path.write_text(
        f'<!DOCTYPE Orders SYSTEM "file://{secret}">\n'
        '<Orders xmlns="urn:example:shop:orders"><Order id="1"/></Orders>'
    )
    [record] = records(path)
    assert record.value("@id") == "1"


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_text('<Orders xmlns="urn:example:shop:orders">\n<Order id="1">\n<Qty>1</Qty>\n')
    with pytest.raises(
        MalformedFileError,
        match=r"^cut\.xml:4:1: malformed XML: Premature end of data in tag Order line 2$",
    ):
        records(path)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        pytest.param(
            "o:Date, type: date",
            "/o:Orders/o:Date, type: date",
            "orders-xml.yaml:14 fields.order_date.from: XPath '/o:Orders/o:Date' is absolute",
            id="absolute-xpath",
        ),
        pytest.param(
            "from: o:Qty,",
            "from: 'o:Qty[',",
            "orders-xml.yaml:26 fields.lines.fields.quantity.from: invalid XPath 'o:Qty['",
            id="xpath-syntax",
        ),
        pytest.param(
            "from: o:Qty,",
            "from: x:Qty,",
            "orders-xml.yaml:26 fields.lines.fields.quantity.from: namespace prefix 'x' is not declared",
            id="unknown-prefix",
        ),
        pytest.param(
            "document_path: /o:Orders/o:Order",
            "document_path: /o:Orders/o:Order[1]",
            "orders-xml.yaml:4 source: document_path '/o:Orders/o:Order[1]' must be a plain path",
            id="document-path-predicate",
        ),
    ],
)
def test_bad_xpaths_fail_the_mapping_at_load_time(
    tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    text = (DATA / "orders-xml.yaml").read_text()
    assert replace in text
    path = tmp_path / "orders-xml.yaml"
    path.write_text(text.replace(replace, by))
    (tmp_path / "articles.csv").write_text((DATA / "articles.csv").read_text())
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_an_xml_order_feed_maps_to_orders() -> None:
    mapping = load_mapping(DATA / "orders-xml.yaml")
    docs = list(mapping.map_file(DATA / "orders.xml", source_name="orders.xml"))
    assert [d.key for d in docs] == ["W-2001", "W-2002"]
    assert all(d.ok for d in docs), [d.problems for d in docs]
    assert docs[0].payload is not None
    assert docs[0].payload["delivery_address"]["country"] == "FR"
    assert docs[0].payload["lines"][1] == {
        "article_code": "ART-0002",
        "quantity": "1",
        "unit_price": "3.00",
    }
    assert docs[1].payload is not None
    assert "delivery_address" not in docs[1].payload


def test_xml_problems_point_at_line_and_xpath(tmp_path: Path) -> None:
    mapping = load_mapping(DATA / "orders-xml.yaml")
    path = tmp_path / "o.xml"
    path.write_text(
        (DATA / "orders.xml").read_text().replace("<Qty>2</Qty>", "<Qty>two</Qty>"),
        encoding="utf-8",
    )
    first = next(iter(mapping.map_file(path, source_name="o.xml")))
    assert [str(p) for p in first.problems] == [
        "o.xml:8 /o:Orders/o:Order[1]/o:Lines/o:Line[1]/o:Qty [/lines/0/quantity]: "
        "'two' is not a decimal number"
    ]
