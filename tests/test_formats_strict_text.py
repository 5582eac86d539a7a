"""Strict text: quotes, encodings, control characters and line lengths in CSV and flat files.

Each of these once lost data without a word: an unclosed quote swallowed orders, a cp1252
line turned a UTF-8 file into mojibake, a NUL byte reached Ecolix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edigw.errors import MalformedFileError
from edigw.formats import reader_for
from edigw.formats.csv import CsvReader
from edigw.formats.encoding import detect_encoding
from edigw.formats.limits import ReaderLimits

ORDERS = "Order;Customer;Qty;Note\n"

FIXED = {
    "kind": "fixed",
    "record_type": {"start": 1, "length": 3},
    "records": {
        "ENT": {"fields": [{"name": "number", "start": 4, "length": 5}]},
        "LIG": {"fields": [{"name": "sku", "start": 4, "length": 5}]},
    },
    "structure": {"header": "ENT", "children": [{"record": "LIG"}]},
}
DELIMITED = {
    "kind": "delimited",
    "delimiter": ";",
    "quote": '"',
    "record_type": {"column": 1},
    "records": {"ENT": {"fields": ["type", "number"]}, "LIG": {"fields": ["type", "sku", "note"]}},
    "structure": {"header": "ENT", "children": [{"record": "LIG"}]},
}


def write(tmp_path: Path, data: str | bytes, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(path: Path, limits: ReaderLimits | None = None, **source: object) -> list[list[str]]:
    reader = reader_for({"format": "csv", "delimiter": ";", **source}, limits or ReaderLimits())
    return [r.cells for r in reader.records(path, source_name=path.name)]  # type: ignore[attr-defined]


def refusal(path: Path, limits: ReaderLimits | None = None, **source: object) -> str:
    with pytest.raises(MalformedFileError) as caught:
        read(path, limits, **source)
    return str(caught.value)


# -- quotes ---------------------------------------------------------------------------------


def test_an_unclosed_quote_in_an_unmapped_last_column_is_located_where_it_opened(
    tmp_path: Path,
) -> None:
    """Before: the quote swallowed the three orders after it, and the file was 'done'."""
    path = write(
        tmp_path,
        ORDERS + 'A1;C1;1;ok\nA2;C2;2;"oops\nA3;C3;3;x\nA4;C4;4;y\nA5;C5;5;z\n',
    )
    assert refusal(path) == (
        "orders.csv:3:9: a quoted value opened here is never closed (the file ends inside "
        "it): a quote is missing"
    )


def test_an_unclosed_quote_in_a_mapped_column_is_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + 'A1;C1;1;ok\nA2;"C2;2;x\nA3;C3;3;x\n')
    assert refusal(path).startswith("orders.csv:3:4: a quoted value opened here is never closed")


def test_a_quote_closed_further_down_cannot_swallow_records_silently(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ORDERS + 'A1;C1;1;ok\nA2;C2;2;"oops\nA3;C3;3;x\nA4;C4;4;y"\nA5;C5;5;z\n',
    )
    assert refusal(path) == (
        "orders.csv:3:9: a quoted value opened here runs to line 5 and swallows 2 line(s) "
        "that look like records of their own (they hold the 3 separators of a row): a quote "
        "is probably missing"
    )


def test_a_quoted_line_break_is_read_and_counted_in_the_notes(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + 'A1;C1;1;"first line\nsecond line"\nA2;C2;2;x\n')
    reader = CsvReader.from_source({"delimiter": ";"})
    records = list(reader.records(path, source_name="orders.csv"))
    assert [r.cells[3] for r in records] == ["first line\nsecond line", "x"]
    assert [r.location.line for r in records] == [2, 4]
    assert reader.notes[-1] == (
        "orders.csv: 1 record(s) span several lines (quoted line breaks; the first at line 2)"
    )


def test_text_after_a_closing_quote_is_an_error_at_that_text(tmp_path: Path) -> None:
    """Before: '"Ecran 24" pouces"' was read as 'Ecran 24 pouces"'."""
    path = write(tmp_path, ORDERS + 'A1;C1;1;"Ecran 24" pouces"\n')
    assert refusal(path) == (
        "orders.csv:2:19: text after the closing quote of a value (';' expected after '\"'): "
        "a quote inside a quoted value must be doubled"
    )


def test_a_doubled_quote_inside_a_quoted_value_is_a_quote(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + 'A1;C1;1;"Ecran 24"" pouces"\n')
    assert read(path) == [["A1", "C1", "1", 'Ecran 24" pouces']]


def test_an_unclosed_quote_in_a_delimited_flat_file_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, 'ENT;1\nLIG;S1;"open\nLIG;S2;x\n', "in.txt")
    reader = reader_for({"format": "flat-delimited", "layout": DELIMITED})
    with pytest.raises(MalformedFileError) as caught:
        list(reader.records(path, source_name="in.txt"))
    assert str(caught.value) == (
        "in.txt:2:8: a quoted value opened here is never closed (the file ends inside it): "
        "a quote is missing"
    )


def test_a_quote_swallowing_flat_records_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, 'ENT;1\nLIG;S1;"open\nLIG;S2;x"\nLIG;S3;y\n', "in.txt")
    reader = reader_for({"format": "flat-delimited", "layout": DELIMITED})
    with pytest.raises(MalformedFileError) as caught:
        list(reader.records(path, source_name="in.txt"))
    assert str(caught.value).startswith(
        "in.txt:2:8: a quoted value opened here runs to line 3 and swallows lines that are "
        "records of their own (LIG ...)"
    )


# -- encodings ------------------------------------------------------------------------------


def test_a_utf8_file_with_one_cp1252_line_is_an_error_at_the_first_bad_byte(
    tmp_path: Path,
) -> None:
    """Before: read whole as cp1252, 'Zoé Müller' was posted as 'ZoÃ© MÃ¼ller'."""
    data = (ORDERS + "A1;Zoé Müller;1;ok\n").encode() + "A2;Besançon;2;x\n".encode("cp1252")
    path = write(tmp_path, data)
    assert refusal(path) == (
        "orders.csv:3:9: byte E7 is not UTF-8, yet the file holds UTF-8 text elsewhere: a "
        "file of mixed encodings. Ask the partner for one encoding, or set the flow's "
        "encoding (utf-8 or cp1252) to read it as one"
    )


def test_a_cp1252_file_without_utf8_sequences_stays_cp1252(tmp_path: Path) -> None:
    path = write(tmp_path, (ORDERS + "A1;Zoé Müller;1;Besançon\n").encode("cp1252"))
    assert detect_encoding(path) == "cp1252"
    assert read(path) == [["A1", "Zoé Müller", "1", "Besançon"]]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        pytest.param("utf-16", "utf-16", id="utf-16-bom"),
        pytest.param("utf-32", "utf-32", id="utf-32-bom"),
        pytest.param("utf-8-sig", "utf-8-sig", id="utf-8-bom"),
    ],
)
def test_a_byte_order_mark_names_the_encoding_and_the_file_is_read(
    tmp_path: Path, encoding: str, detected: str
) -> None:
    path = write(tmp_path, (ORDERS + "A1;Zoé;1;ok\n").encode(encoding))
    assert detect_encoding(path) == detected
    assert read(path) == [["A1", "Zoé", "1", "ok"]]


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        pytest.param("utf-16-le", "UTF-16 little-endian (utf-16-le)", id="le"),
        pytest.param("utf-16-be", "UTF-16 big-endian (utf-16-be)", id="be"),
        pytest.param("utf-32-le", "UTF-32 little-endian (utf-32-le)", id="utf-32-le"),
    ],
)
def test_utf16_without_a_byte_order_mark_is_refused_by_name(
    tmp_path: Path, encoding: str, named: str
) -> None:
    """Before: column names full of NUL characters and no word about the encoding."""
    path = write(tmp_path, (ORDERS + "A1;Zoé;1;ok\n").encode(encoding))
    assert refusal(path) == (
        f"orders.csv:1: the file looks like {named} text without a byte-order mark (NUL "
        "bytes between the characters); set the flow's encoding to it, or ask the partner "
        "for UTF-8"
    )
    assert read(path, encoding=encoding) == [["A1", "Zoé", "1", "ok"]]


# -- control characters ---------------------------------------------------------------------


def test_a_nul_byte_is_refused_with_its_line_column_and_name(tmp_path: Path) -> None:
    """Before: on PostgreSQL the file was never taken in, and the error came back every 2 s."""
    path = write(tmp_path, ORDERS + "A1;C1;1;ok\nA2;Zo\x00é;2;x\n")
    assert refusal(path) == (
        "orders.csv:3:6: control character U+0000 (NUL): refused (a partner file may not "
        "carry it; set limits.control_characters: allow on the flow to accept it)"
    )


def test_other_c0_controls_are_refused_but_tab_cr_and_lf_are_text(tmp_path: Path) -> None:
    assert "U+001A (SUB, the old DOS end-of-file mark)" in refusal(
        write(tmp_path, ORDERS + "A1;C1;1;ok\n\x1a")
    )
    path = write(tmp_path, ORDERS + "A1;C\t1;1;ok\r\nA2;C2;2;x\r\n", "tabs.csv")
    assert read(path) == [["A1", "C\t1", "1", "ok"], ["A2", "C2", "2", "x"]]


def test_a_flow_may_allow_control_characters(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + "A1;Zo\x00é;1;\x07\n")
    allowed = ReaderLimits(control_characters="allow")
    assert read(path, allowed) == [["A1", "Zo\x00é", "1", "\x07"]]


def test_a_control_character_in_a_utf16_file_is_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, (ORDERS + "A1;C\x001;1;ok\n").encode("utf-16"))
    assert refusal(path).startswith("orders.csv:2:5: control character U+0000 (NUL)")


def test_a_control_character_in_a_fixed_width_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "ENT00001\nLIGAB\x00CD\n", "in.txt")
    reader = reader_for({"format": "flat-fixed", "layout": FIXED})
    with pytest.raises(MalformedFileError) as caught:
        list(reader.records(path, source_name="in.txt"))
    assert str(caught.value).startswith("in.txt:2:6: control character U+0000 (NUL)")


# -- sizes ----------------------------------------------------------------------------------


def test_a_line_over_the_flows_limit_is_refused_before_it_is_split(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + "A1;C1;1;ok\n" + "A2;" + "x" * 500 + "\n")
    assert refusal(path, ReaderLimits(max_line_chars=100)) == (
        "orders.csv:3: the line has more than 100 characters, over the limit of 100 "
        "(limits.max_line_chars)"
    )


def test_a_long_value_on_one_line_is_measured_against_its_own_limit(tmp_path: Path) -> None:
    path = write(tmp_path, ORDERS + "A1;C1;1;" + "x" * 300 + "\n")
    assert refusal(path, ReaderLimits(max_value_chars=200)) == (
        "orders.csv:2:4: a value has more than 200 characters, over the limit of 200 "
        "(limits.max_value_chars)"
    )


def test_fixed_length_records_without_line_ends_are_not_one_long_line(tmp_path: Path) -> None:
    layout = {**FIXED, "record_length": 8}
    path = write(tmp_path, "ENT00001" + "LIGABCDE" * 50, "in.txt")
    reader = reader_for({"format": "flat-fixed", "layout": layout}, ReaderLimits(max_line_chars=20))
    [document] = list(reader.records(path, source_name="in.txt"))
    assert len(document.children("LIG")) == 50
