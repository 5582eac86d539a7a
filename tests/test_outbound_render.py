"""Streaming render: encodings, errors naming the record, XML checks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edigw.errors import MappingError, SourceDataError
from edigw.outbound.render import load_template, render_to_file

CSV_TEMPLATE = """code;label;price
{% for rec in records %}
{{ [rec.code, rec.label, rec.price|decimal(2, ",")]|csvrow }}
{% endfor %}
"""

XML_TEMPLATE = """<?xml version="1.0" encoding="{{ xml_encoding }}"?>
<items>
{% for rec in records %}
  <item code="{{ rec.code }}">{{ rec.label }}</item>
{% endfor %}
</items>
"""

XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="items"><xs:complexType><xs:sequence>
    <xs:element name="item" minOccurs="0" maxOccurs="unbounded"><xs:complexType>
      <xs:simpleContent><xs:extension base="xs:string">
        <xs:attribute name="code" type="xs:string" use="required"/>
      </xs:extension></xs:simpleContent></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
"""

RECORDS = [
    {"code": "A1", "label": "Café crème", "price": "1.5"},
    {"code": "A2", "label": "Cuillère; inox", "price": "-2.25"},
]


def _template(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_template(path, timezone="Europe/Paris")


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        pytest.param("utf-8", b"", id="utf-8"),
        pytest.param("utf-8-sig", b"\xef\xbb\xbf", id="bom"),
        pytest.param("cp1252", b"", id="cp1252"),
    ],
)
def test_csv_renders_in_the_flow_encoding(tmp_path, encoding, bom):
    tpl = _template(tmp_path, "a.csv.j2", CSV_TEMPLATE)
    out = tmp_path / "out.csv"
    result = render_to_file(tpl, iter(RECORDS), out, encoding=encoding)
    raw = out.read_bytes()
    assert raw.startswith(bom) and not raw[len(bom) :].startswith(b"\xef\xbb\xbf")
    rows = list(
        csv.reader(raw[len(bom) :].decode(encoding.replace("-sig", "")).splitlines(), delimiter=";")
    )
    assert rows == [
        ["code", "label", "price"],
        ["A1", "Café crème", "1,50"],
        ["A2", "Cuillère; inox", "-2,25"],
    ]
    assert result.records == 2
    assert result.size == len(raw)


def test_unencodable_character_names_the_record_and_output_line(tmp_path):
    tpl = _template(tmp_path, "a.csv.j2", CSV_TEMPLATE)
    out = tmp_path / "out.csv"
    records = [*RECORDS, {"code": "A3", "label": "Gőzfürdő", "price": "1"}]
    with pytest.raises(SourceDataError) as info:
        render_to_file(tpl, iter(records), out, encoding="cp1252", out_name="shop.csv")
    assert str(info.value) == (
        "shop.csv:4:5: record 3 (code=A3): character 'ő' (U+0151) cannot be encoded in cp1252; "
        "change the flow's encoding to utf-8 or correct the record in Ecolix"
    )
    assert not out.exists()


def test_missing_field_names_the_record_and_template_line(tmp_path):
    tpl = _template(tmp_path, "a.csv.j2", CSV_TEMPLATE)
    with pytest.raises(SourceDataError) as info:
        render_to_file(tpl, iter([{"code": "B7", "label": "x"}]), tmp_path / "o.csv")
    assert str(info.value).endswith(
        "a.csv.j2:3: record 1 (code=B7): 'dict object' has no attribute 'price'"
    )


def test_filter_error_names_the_record(tmp_path):
    tpl = _template(tmp_path, "a.csv.j2", CSV_TEMPLATE)
    with pytest.raises(
        SourceDataError, match=r"record 1 \(code=C1\): expected a number, got 'n/a'"
    ):
        render_to_file(
            tpl, iter([{"code": "C1", "label": "x", "price": "n/a"}]), tmp_path / "o.csv"
        )


def test_template_syntax_error_is_a_mapping_error_with_line(tmp_path):
    with pytest.raises(MappingError, match=r"bad.csv.j2:2: template syntax error"):
        _template(tmp_path, "bad.csv.j2", "x\n{% for %}\n")


def test_xml_templates_are_autoescaped(tmp_path):
    tpl = _template(tmp_path, "items.xml.j2", XML_TEMPLATE)
    out = tmp_path / "items.xml"
    render_to_file(tpl, iter([{"code": 'a"<', "label": "Fish & <Chips>"}]), out)
    from lxml import etree

    item = etree.parse(str(out)).getroot()[0]
    assert item.get("code") == 'a"<'
    assert item.text == "Fish & <Chips>"


def test_csv_templates_are_not_escaped(tmp_path):
    tpl = _template(tmp_path, "a.csv.j2", "{% for r in records %}{{ r.label }}\n{% endfor %}")
    out = tmp_path / "a.csv"
    render_to_file(tpl, iter([{"label": "A & B <c>"}]), out)
    assert out.read_text() == "A & B <c>\n"


def test_malformed_xml_output_is_refused_with_its_line(tmp_path):
    tpl = _template(
        tmp_path, "broken.xml.j2", "<a>\n{% for r in records %}<b>{{ r.x }}</c>\n{% endfor %}</a>\n"
    )
    out = tmp_path / "broken.xml"
    with pytest.raises(
        SourceDataError, match=r"broken.xml:2: rendered file is not well-formed XML"
    ):
        render_to_file(tpl, iter([{"x": 1}]), out)
    assert not out.exists()


def test_xml_is_validated_against_the_flow_xsd(tmp_path):
    xsd = tmp_path / "items.xsd"
    xsd.write_text(XSD)
    tpl = _template(tmp_path, "items.xml.j2", XML_TEMPLATE)
    render_to_file(tpl, iter(RECORDS), tmp_path / "ok.xml", xsd=xsd)
    bad = _template(
        tmp_path,
        "bad.xml.j2",
        XML_TEMPLATE.replace("<item code", "<thing code").replace("</item>", "</thing>"),
    )
    with pytest.raises(
        SourceDataError,
        match=r"bad.xml:3: rendered file is not valid against items.xsd: Element 'thing'",
    ):
        render_to_file(bad, iter(RECORDS), tmp_path / "bad.xml", xsd=xsd)


def test_render_consumes_records_lazily(tmp_path):
    seen: list[int] = []

    def produce():
        for i in range(3):
            seen.append(i)
            yield {"code": f"X{i}", "label": "l", "price": "1"}

    tpl = _template(tmp_path, "a.csv.j2", CSV_TEMPLATE)
    gen = produce()
    assert seen == []
    render_to_file(tpl, gen, tmp_path / "o.csv")
    assert seen == [0, 1, 2]


def test_a_field_named_like_a_dict_method_reads_the_record(tmp_path):
    tpl = _template(
        tmp_path, "m.csv.j2", "{% for r in records %}{{ r.items }};{{ r.keys }}\n{% endfor %}"
    )
    out = tmp_path / "m.csv"
    render_to_file(tpl, iter([{"items": "3", "keys": "k"}]), out)
    assert out.read_text() == "3;k\n"


def test_fields_of_values_that_are_not_plain_dicts_are_read_through_the_sandbox(tmp_path):
    text = (
        "{% for r in records %}{% set c = r.code %}{{ c.lower() }};{{ loop.index }}\n{% endfor %}"
    )
    tpl = _template(tmp_path, "v.csv.j2", text)
    out = tmp_path / "v.csv"
    render_to_file(tpl, iter(RECORDS), out)
    assert out.read_text() == "a1;1\na2;2\n"


def test_a_line_and_its_line_break_name_the_record_they_come_from(tmp_path):
    tpl = _template(
        tmp_path, "n.csv.j2", "head\n{% for r in records %}[{{ r.code }}]\n{% endfor %}"
    )
    out = tmp_path / "n.csv"
    records = [{"code": "A1"}, {"code": "A\u0151"}]
    with pytest.raises(SourceDataError, match=r"n.csv:3:.*record 2 \(code=A\u0151\)"):
        render_to_file(tpl, iter(records), out, encoding="cp1252")
