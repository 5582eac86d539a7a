"""CSV reader: columns by header or position, line numbers, encodings, whole-file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edigw.errors import MalformedFileError
from edigw.formats import READERS, reader_for
from edigw.formats.csv import CsvReader
from edigw.formats.encoding import detect_encoding


def read(path: Path, **source: object) -> list:
    reader = reader_for({"format": "csv", **source})
    return list(reader.records(path, source_name=path.name))


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_registry_is_read_only_and_keyed_by_format() -> None:
    assert {"csv", "xml", "xlsx"} <= set(READERS)
    with pytest.raises(TypeError):
        READERS["flat"] = READERS["csv"]  # type: ignore[index]


def test_values_are_addressed_by_header_name_and_empty_cells_are_none(tmp_path: Path) -> None:
    path = write(tmp_path, "Order;Qty;Note\nA1;3;\n")
    [record] = read(path, delimiter=";")
    assert record.value("Order") == "A1"
    assert record.value("Qty") == "3"
    assert record.value("Note") is None


def test_location_names_line_column_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "Order;Qty\nA1;3\nA2;4\n")
    second = read(path, delimiter=";")[1]
    assert str(second.location) == "f.csv:3"
    assert str(second.where("Qty")) == "f.csv:3:2 field Qty"


def test_a_quoted_field_spanning_lines_keeps_the_start_line_of_its_row(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,note\n1,"two\nlines"\n2,x\n')
    records = read(path)
    assert [r.location.line for r in records] == [2, 4]
    assert records[0].value("note") == "two\nlines"


def test_skip_lines_ignores_a_preamble_and_keeps_physical_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "Export du 01/02/2026\n\nid;qty\n7;1\n")
    [record] = read(path, delimiter=";", skip_lines=2)
    assert record.value("id") == "7"
    assert record.location.line == 4


def test_positional_columns_take_names_from_the_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "A1;3\n")
    [record] = read(path, delimiter=";", header=False, columns=["order", "qty"])
    assert (record.value("order"), record.value("qty")) == ("A1", "3")
    assert record.location.line == 1


def test_without_header_or_names_columns_are_numbered_from_one(tmp_path: Path) -> None:
    path = write(tmp_path, "A1;3\n")
    [record] = read(path, delimiter=";", header=False)
    assert record.value("2") == "3"


def test_trailing_empty_columns_and_short_rows_are_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path, "a;b;\n1;2;;;\n3\n")
    first, second = read(path, delimiter=";")
    assert first.value("b") == "2"
    assert second.value("b") is None


def test_blank_rows_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "a;b\n1;2\n;\n\n3;4\n")
    assert [r.value("a") for r in read(path, delimiter=";")] == ["1", "3"]


def test_an_unknown_column_is_a_whole_file_error_naming_the_header_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a;b\n1;2\n")
    [record] = read(path, delimiter=";")
    with pytest.raises(MalformedFileError) as caught:
        record.value("Qty")
    assert (
        str(caught.value)
        == "f.csv:1: column 'Qty' not found in the header at line 1 (columns: 'a', 'b')"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param("é;ü\n".encode(), "utf-8", id="utf-8"),
        pytest.param(b"\xef\xbb\xbfa\n", "utf-8-sig", id="bom"),
        pytest.param("Café;€\n".encode("cp1252"), "cp1252", id="cp1252"),
        pytest.param(b"a\x81b\xe9\n", "latin-1", id="latin-1"),
    ],
)
def test_encoding_is_detected(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected


def test_detected_encoding_is_reported_and_used(tmp_path: Path) -> None:
    path = write(tmp_path, "nom;ville\nLéa;Besançon\n", encoding="cp1252")
    reader = CsvReader.from_source({"delimiter": ";"})
    [record] = list(reader.records(path, source_name="clients.csv"))
    assert record.value("ville") == "Besançon"
    assert reader.notes == ["clients.csv: encoding cp1252 (detected)"]


def test_a_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffcode;name\nC1;x\n")
    [record] = read(path, delimiter=";", encoding="utf-8")
    assert record.value("code") == "C1"


def test_bytes_invalid_in_the_declared_encoding_fail_the_file_with_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n" + "x\n" * 3 + "Café\n", encoding="cp1252")
    with pytest.raises(MalformedFileError) as caught:
        read(path, encoding="utf-8")
    message = str(caught.value)
    assert message.startswith("f.csv:")
    assert message.startswith("f.csv:5:4: cannot decode bytes b'\\xe9\\n' as utf-8;")


def test_an_oversized_field_is_refused_cleanly(tmp_path: Path) -> None:
    path = write(tmp_path, 'a\n"' + ("x" * 600_000 + "\n") * 3 + '"\n')
    with pytest.raises(
        MalformedFileError,
        match=r"^f\.csv:2: a value has more than 1,000,000 characters, over the limit of "
        r"1,000,000 \(limits\.max_value_chars\)$",
    ):
        read(path)


def test_an_oversized_line_is_refused_before_it_is_split(tmp_path: Path) -> None:
    path = write(tmp_path, "a;b\n1;2\n" + ";" * 2_000_000 + "\n")
    with pytest.raises(
        MalformedFileError,
        match=r"^f\.csv:3: the line has more than 1,000,000 characters, over the limit of "
        r"1,000,000 \(limits\.max_line_chars\)$",
    ):
        read(path, delimiter=";")


def test_a_repeated_header_label_is_addressed_with_its_rank(tmp_path: Path) -> None:
    path = write(tmp_path, "Adresse;Adresse;Ville\n1 rue A;Bât. B;Lyon\n")
    [record] = read(path, delimiter=";")
    assert (record.value("Adresse"), record.value("Adresse#2")) == ("1 rue A", "Bât. B")
