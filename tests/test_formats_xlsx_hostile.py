"""Excel workbooks that would make the Excel library allocate gigabytes, or lie about their
parts: each is refused before calamine reads it, naming the file, the cell and the limit."""

from __future__ import annotations

import random
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edigw.errors import MalformedFileError
from edigw.formats.limits import ReaderLimits
from edigw.formats.xlsx import XlsxReader
from tests.support import hostile


def rows(path: Path, limits: ReaderLimits | None = None, **options: object) -> list[list]:
    reader = XlsxReader.from_source(
        {"sheet": "Comptes", **options}, limits=limits or ReaderLimits()
    )
    return [r.cells for r in reader.records(path, source_name=path.name)]


def refusal(path: Path, limits: ReaderLimits | None = None) -> str:
    with pytest.raises(MalformedFileError) as caught:
        rows(path, limits)
    return str(caught.value)


def test_a_cell_at_the_last_excel_cell_is_refused_naming_the_area_and_the_limit(
    tmp_path: Path,
) -> None:
    path = hostile.far_cell(tmp_path / "orders.xlsx", "XFD1048576")
    assert path.stat().st_size < 6000
    assert refusal(path) == (
        "orders.xlsx Comptes!XFD1048576: the sheet's cells span 1,048,576 rows x 16,384 "
        "columns (A1:XFD1048576, 17,179,869,184 cells), over the limit of 2,000,000 cells "
        "(limits.max_cells)"
    )


def test_reading_the_last_excel_cell_no_longer_kills_the_process(tmp_path: Path) -> None:
    """Before: calamine asked for 512 GiB and the process aborted (SIGABRT). Under a 1 GB
    address-space limit the reader now fails cleanly, as an error."""
    path = hostile.far_cell(tmp_path / "orders.xlsx", "XFD1048576")
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from pathlib import Path
        from edigw.errors import MalformedFileError
        from edigw.formats.xlsx import XlsxReader
        try:
            list(XlsxReader(sheet="Comptes").records(Path({str(path)!r}), source_name="o.xlsx"))
        except MalformedFileError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith("refused: o.xlsx Comptes!XFD1048576: the sheet's cells span")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda xml: xml.replace('<dimension ref="A1:Z1000000"/>', ""),
            "Comptes!Z1000000: the sheet's cells span 1,000,000 rows x 26 columns",
            id="no-dimension",
        ),
        pytest.param(
            lambda xml: xml.replace('<dimension ref="A1:Z1000000"/>', '<dimension ref="A1:B3"/>'),
            "Comptes!Z1000000: the sheet's cells span 1,000,000 rows x 26 columns",
            id="dimension-that-lies",
        ),
        pytest.param(
            lambda xml: xml.replace('<c r="Z1000000"', '<c r="z1000000"'),
            "Comptes!Z1000000: the sheet's cells span 1,000,000 rows x 26 columns",
            id="lowercase-reference",
        ),
        pytest.param(
            lambda xml: xml.replace('<c r="Z1000000"', "<c r = 'Z1000000'"),
            "Comptes!Z1000000: the sheet's cells span 1,000,000 rows x 26 columns",
            id="unusual-quotes-and-spaces",
        ),
        pytest.param(
            lambda xml: xml.replace('<c r="Z1000000"', '<x:c xmlns:x="urn:x" r="Z1000000"').replace(
                "</is></c></row></sheetData>", "</is></x:c></row></sheetData>"
            ),
            "Comptes!Z1000000: the sheet's cells span 1,000,000 rows x 26 columns",
            id="namespace-prefix",
        ),
        pytest.param(
            lambda xml: xml.replace('<c r="Z1000000"', '<c r="A4" r="Z1000000"'),
            "part xl/worksheets/sheet1.xml of the workbook cannot be read (line 1, column",
            id="second-reference-attribute",
        ),
    ],
)
def test_a_far_cell_is_found_however_the_sheet_is_written(
    tmp_path: Path, change: object, expected: str
) -> None:
    path = hostile.far_cell(tmp_path / "o.xlsx", "Z1000000")
    hostile.rewrite_part(path, change)  # type: ignore[arg-type]
    assert expected in refusal(path)


@pytest.mark.parametrize(
    ("decoy", "expected"),
    [
        pytest.param(
            "<!-- </sheetData> -->",
            "o.xlsx Comptes!C1000001: the sheet's cells span 1,000,001 rows x 3 columns",
            id="in-a-comment",
        ),
        pytest.param(
            '<row r="5"><c r="A5" x="></row></sheetData>"/></row>',
            "o.xlsx: part xl/worksheets/sheet1.xml of the workbook cannot be read (line 1, "
            "column 716): Unescaped '<' not allowed in attributes values",
            id="in-an-attribute",
        ),
    ],
)
def test_a_sheet_end_written_as_a_decoy_does_not_hide_the_cells_after_it(
    tmp_path: Path, decoy: str, expected: str
) -> None:
    """calamine reads on after a ``</sheetData>`` in a comment or an attribute value."""
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"),
        decoy + '<row r="1000001"><c r="C1000001" t="inlineStr"><is><t>far</t></is></c></row>',
    )
    assert refusal(path).startswith(expected)


def test_column_widths_and_conditional_formats_around_the_data_are_no_cells(
    tmp_path: Path,
) -> None:
    path = hostile.rewrite_part(
        hostile.workbook(tmp_path / "o.xlsx"),
        lambda xml: xml.replace(
            "<sheetData>",
            '<cols><col min="1" max="2" width="30" customWidth="1"/></cols><sheetData>',
        ).replace(
            "</sheetData>",
            '</sheetData><conditionalFormatting sqref="A1:B9"><cfRule type="expression" '
            'priority="1"><formula>A1=B1</formula></cfRule></conditionalFormatting>',
        ),
    )
    assert rows(path) == [["C1", "first"], ["C2", "second"]]


def test_cells_without_a_reference_are_placed_after_their_row_like_calamine_does(
    tmp_path: Path,
) -> None:
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"),
        '<row r="1000001"><c t="inlineStr"><is><t>far</t></is></c></row>',
    )
    assert "the sheet's cells span 1,000,001 rows x 2 columns (A1:B1000001" in refusal(path)


def test_a_formatted_empty_cell_far_away_costs_nothing_and_is_accepted(tmp_path: Path) -> None:
    """Excel's 'used range' counts formatted empty cells; calamine skips them."""
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"), '<row r="1048576"><c r="XFD1048576" s="0"/></row>'
    )
    assert rows(path) == [["C1", "first"], ["C2", "second"]]


def test_a_declared_dimension_larger_than_the_cells_is_not_held_against_the_file(
    tmp_path: Path,
) -> None:
    path = hostile.rewrite_part(
        hostile.workbook(tmp_path / "o.xlsx"),
        lambda xml: xml.replace('<dimension ref="A1:B3"/>', '<dimension ref="A1:XFD1048576"/>'),
    )
    assert rows(path) == [["C1", "first"], ["C2", "second"]]


def test_the_cell_limit_is_the_flows(tmp_path: Path) -> None:
    path = hostile.far_cell(tmp_path / "o.xlsx", "B100")
    assert refusal(path, ReaderLimits(max_cells=150)) == (
        "o.xlsx Comptes!B100: the sheet's cells span 100 rows x 2 columns (A1:B100, 200 "
        "cells), over the limit of 150 cells (limits.max_cells)"
    )


def test_a_huge_cell_fails_by_the_value_limit_naming_the_cell(tmp_path: Path) -> None:
    text = "".join(random.Random(17).choices(string.ascii_letters, k=1_500_000))
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"),
        f'<row r="4"><c r="A4" t="inlineStr"><is><t>{text}</t></is></c></row>',
    )
    assert refusal(path) == (
        "o.xlsx Comptes!A4: a cell holds more than 1,000,000 characters, over the limit of "
        "1,000,000 (limits.max_value_chars)"
    )


def test_a_huge_shared_string_fails_by_the_value_limit(tmp_path: Path) -> None:
    path = hostile.shared_strings_workbook(tmp_path / "o.xlsx", ["y" * 5000], [("A4", 0)])
    assert refusal(path, ReaderLimits(max_value_chars=1000)) == (
        "o.xlsx: shared string 1 has more than 1,000 characters, over the limit of 1,000 "
        "(limits.max_value_chars)"
    )


def test_shared_strings_repeated_into_gigabytes_are_refused(tmp_path: Path) -> None:
    """One 30,000-character string referred to by 4,000 cells is 120 MB in memory."""
    cells = [(f"{column}{row}", 0) for row in range(4, 404) for column in "ABCDEFGHIJ"]
    path = hostile.shared_strings_workbook(tmp_path / "o.xlsx", ["z" * 30_000], cells)
    assert refusal(path) == (
        "o.xlsx Comptes!A1: the sheet's cells repeat 120,000,000 characters of shared strings, "
        "over the limit of 104,857,600 (limits.max_expanded_bytes)"
    )


def test_shared_strings_in_reasonable_use_are_read(tmp_path: Path) -> None:
    path = hostile.shared_strings_workbook(
        tmp_path / "o.xlsx", ["alpha", "beta"], [("A4", 0), ("B4", 1)]
    )
    assert rows(path)[-1] == ["alpha", "beta"]


def test_a_part_larger_than_the_zip_declares_gets_a_true_message(tmp_path: Path) -> None:
    """Before: "sheet 'Comptes' not found (sheets: 'Comptes')"."""
    path = hostile.lie_about_size(hostile.workbook(tmp_path / "o.xlsx"), hostile.SHEET, 100)
    assert refusal(path) == (
        "o.xlsx: part xl/worksheets/sheet1.xml of the workbook is corrupt: its bytes do not "
        "match what the zip's directory declares (Bad CRC-32 for file "
        "'xl/worksheets/sheet1.xml'); ask the partner to save the workbook again"
    )


def test_a_part_smaller_than_the_zip_declares_is_refused_too(tmp_path: Path) -> None:
    path = hostile.lie_about_size(hostile.workbook(tmp_path / "o.xlsx"), "xl/styles.xml", 900_000)
    message = refusal(path)
    assert message.startswith("o.xlsx: part xl/styles.xml of the workbook is corrupt")
    assert "bytes where 900,000 are declared" in message


@pytest.mark.parametrize("part", ["xl/styles.xml", hostile.SHEET, "docProps/app.xml"])
def test_a_part_whose_compressed_bytes_are_not_deflate_is_refused_naming_it(
    tmp_path: Path, part: str
) -> None:
    """Found by benchmarks/fuzz_readers.py: zlib's error escaped the reader."""
    path = hostile.corrupt_deflate(hostile.workbook(tmp_path / "o.xlsx"), part)
    message = refusal(path)
    assert message.startswith(f"o.xlsx: part {part} of the workbook is corrupt")
    assert "invalid block type" in message


def test_a_workbook_over_the_flows_expanded_size_is_refused(tmp_path: Path) -> None:
    path = hostile.workbook(tmp_path / "o.xlsx")
    message = refusal(path, ReaderLimits(max_expanded_bytes=2000))
    assert message.startswith("o.xlsx: the workbook expands to ")
    assert message.endswith("bytes, over the limit of 2,000 bytes (limits.max_expanded_bytes)")


def test_an_ordinary_workbook_reads_as_before(tmp_path: Path) -> None:
    path = hostile.workbook(
        tmp_path / "o.xlsx",
        [["Code", "Qty", "Name"], ["C1", 3, "Zoé"], ["C2", 4.5, "Müller, Besançon"]],
    )
    assert rows(path) == [["C1", 3.0, "Zoé"], ["C2", 4.5, "Müller, Besançon"]]


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param('<c r="B4" t="inlineStr"><is><t>Zo_x0000_é</t></is></c>', id="escaped"),
        pytest.param('<c r="B4" t="inlineStr"><is><t>Zo\x00é</t></is></c>', id="raw"),
        pytest.param('<c r="B4" t="str"><v>Zo_x0001_é</v></c>', id="formula-text"),
    ],
)
def test_a_control_character_in_a_cell_is_refused_naming_the_cell(
    tmp_path: Path, cell: str
) -> None:
    path = hostile.add_rows(hostile.workbook(tmp_path / "o.xlsx"), f'<row r="4">{cell}</row>')
    message = refusal(path)
    assert message.startswith("o.xlsx Comptes!B4: control character U+000")
    assert message.endswith(
        ": refused (a partner file may not carry it; set limits.control_characters: allow "
        "on the flow to accept it)"
    )


def test_a_control_character_in_a_shared_string_is_refused_naming_the_cell(
    tmp_path: Path,
) -> None:
    path = hostile.shared_strings_workbook(
        tmp_path / "o.xlsx", ["fine", "bad_x001A_"], [("A4", 0), ("B5", 1)]
    )
    assert refusal(path).startswith(
        "o.xlsx Comptes!B5: control character U+001A (SUB, the old DOS end-of-file mark)"
    )


def test_a_flow_may_allow_control_characters_in_cells(tmp_path: Path) -> None:
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"),
        '<row r="4"><c r="A4" t="inlineStr"><is><t>Zo_x0000_é</t></is></c></row>',
    )
    assert rows(path, ReaderLimits(control_characters="allow"))[-1] == ["Zo\x00é", ""]


def test_tab_and_line_breaks_in_cells_are_text(tmp_path: Path) -> None:
    path = hostile.add_rows(
        hostile.workbook(tmp_path / "o.xlsx"),
        '<row r="4"><c r="A4" t="inlineStr"><is><t>a_x0009_b_x000D__x000A_c</t></is></c></row>',
    )
    assert rows(path)[-1] == ["a\tb\r\nc", ""]
