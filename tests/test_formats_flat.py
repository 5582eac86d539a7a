"""Flat-file readers: record types, hierarchy, trailers, fixed-width positions and padding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edigw.errors import MalformedFileError
from edigw.formats import reader_for
from edigw.formats.flat import FlatRecord
from edigw.formats.layout import LayoutError, compile_layout
from edigw.model import Location

DELIMITED: dict[str, Any] = {
    "kind": "delimited",
    "delimiter": ";",
    "record_type": {"column": 1},
    "records": {
        "ENT": {"alias": "order", "fields": ["type", "number", "date"]},
        "LIG": {
            "alias": "lines",
            "fields": ["type", "n", "article", {"name": "qty", "decimals": 2}],
        },
        "LOT": {"fields": ["type", "lot", "qty"]},
        "FIN": {"fields": ["type", "orders", "lines", "total"]},
    },
    "structure": {
        "header": "ENT",
        "children": [
            {"record": "LIG", "min": 1, "max": 3, "children": [{"record": "LOT", "max": 2}]}
        ],
        "trailer": {
            "record": "FIN",
            "checks": [
                {"field": "orders", "count": "ENT"},
                {"field": "lines", "count": "LIG"},
                {"field": "total", "sum": "LIG.qty"},
            ],
        },
    },
}

FIXED: dict[str, Any] = {
    "kind": "fixed",
    "record_type": {"start": 1, "length": 1},
    "records": {
        "H": {
            "fields": [
                {"name": "type", "start": 1, "length": 1},
                {"name": "number", "start": 2, "length": 6},
                {"name": "name", "start": 8, "length": 8},
            ]
        },
        "D": {
            "fields": [
                {"name": "type", "start": 1, "length": 1},
                {"name": "code", "start": 2, "length": 5, "align": "right", "pad": "_"},
                {"name": "amount", "start": 7, "length": 9, "decimals": 2},
            ]
        },
    },
    "structure": {"header": "H", "children": [{"record": "D"}]},
}


def read(tmp_path: Path, data: bytes, layout: dict[str, Any], fmt: str, **extra: Any) -> list[Any]:
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    reader = reader_for({"format": fmt, "layout": layout, **extra})
    return list(reader.records(path, source_name="in.txt"))


def error(tmp_path: Path, data: bytes, layout: dict[str, Any], fmt: str) -> str:
    with pytest.raises(MalformedFileError) as caught:
        read(tmp_path, data, layout, fmt)
    return str(caught.value)


GOOD = b"ENT;A1;20261128\nLIG;1;ART-1;000001250\nLOT;L1;5\nLIG;2;ART-2;100\nENT;A2;20261129\nLIG;1;ART-3;1\nFIN;2;3;13.51\n"


def test_each_header_is_one_document_with_its_detail_records_below_it(tmp_path: Path) -> None:
    first, second = read(tmp_path, GOOD, DELIMITED, "flat-delimited")

    assert [first.value("number"), second.value("number")] == ["A1", "A2"]
    assert [line.value("article") for line in first.children("LIG")] == ["ART-1", "ART-2"]
    assert [line.value("article") for line in second.children("lines")] == ["ART-3"]


def test_sub_lines_hang_under_their_detail_record(tmp_path: Path) -> None:
    first, _ = read(tmp_path, GOOD, DELIMITED, "flat-delimited")

    lots = [[lot.value("lot") for lot in line.children("LOT")] for line in first.children("LIG")]
    assert lots == [["L1"], []]


def test_implied_decimals_are_applied(tmp_path: Path) -> None:
    first, _ = read(tmp_path, GOOD, DELIMITED, "flat-delimited")

    assert [line.value("qty") for line in first.children("LIG")] == ["12.50", "1.00"]


def test_a_delimited_value_locates_its_line_column_record_and_field(tmp_path: Path) -> None:
    first, _ = read(tmp_path, GOOD, DELIMITED, "flat-delimited")

    where = first.children("LIG")[1].where("article")
    assert where == Location("in.txt", line=4, column=3, record_type="LIG", field="article")
    assert str(where) == "in.txt:4:3 record LIG field article"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"ENT;A1;x\nLIG;1;a;1\nLIG;2;a;1\nLIG;3;a;1\nLIG;4;a;1\n",
            "in.txt:5 record LIG: 4 LIG records under the ENT of line 1: at most 3 expected",
            id="too-many",
        ),
        pytest.param(
            b"ENT;A1;x\nENT;A2;x\nLIG;1;a;1\nFIN;2;1;0.01\n",
            "in.txt:2 record ENT: expected LIG (at least 1 under the ENT of line 1), found ENT",
            id="too-few",
        ),
        pytest.param(
            b"ENT;A1;x\nLOT;L;1\n",
            "in.txt:2 record LOT: LOT record not expected here: it belongs under a LIG record",
            id="sub-line-without-its-line",
        ),
        pytest.param(
            b"ENT;A1;x\nLIG;1;a;1\n",
            "in.txt:2: end of file: the trailer FIN is missing (expected after the last ENT)",
            id="missing-trailer",
        ),
        pytest.param(
            b"ENT;A1;x\nLIG;1;a;1\nFIN;1;1;0.01\nENT;A2;x\n",
            "in.txt:4 record ENT: ENT record after the trailer FIN of line 3: expected end of file",
            id="after-trailer",
        ),
        pytest.param(
            b"ENT;A1;x\nLIG;1;a;100\nFIN;1;1;2.00\n",
            "in.txt:3:4 record FIN field total: the trailer announces 2.00 as the total of "
            "LIG.qty, the file adds up to 1.00",
            id="control-total",
        ),
        pytest.param(
            b"ENT;A1;x;extra\n",
            "in.txt:1:4 record ENT: 4 fields where the layout of ENT declares 3",
            id="extra-field",
        ),
    ],
)
def test_structure_violations_name_the_line_and_what_was_expected(
    tmp_path: Path, data: bytes, message: str
) -> None:
    assert error(tmp_path, data, DELIMITED, "flat-delimited") == message


def test_unknown_records_can_be_skipped_by_policy(tmp_path: Path) -> None:
    layout = {**DELIMITED, "unknown_records": "skip"}

    (document,) = read(
        tmp_path, b"ENT;A1;x\nCOM;hello\nLIG;1;a;1\nFIN;1;1;0.01\n", layout, "flat-delimited"
    )

    assert len(document.children("LIG")) == 1


H = "H000042Dupré   "
D = "D__A12000001250"


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_fixed_width_fields_are_cut_at_their_positions_and_unpadded(
    tmp_path: Path, ending: bytes
) -> None:
    data = ending.join(x.encode("cp1252") for x in (H, D)) + ending

    (document,) = read(tmp_path, data, {**FIXED, "encoding": "cp1252"}, "flat-fixed")

    assert [document.value("number"), document.value("name")] == ["000042", "Dupré"]
    (detail,) = document.children("D")
    assert [detail.value("code"), detail.value("amount")] == ["A12", "12.50"]


def test_a_file_without_line_endings_is_cut_by_record_length(tmp_path: Path) -> None:
    layout = {**FIXED, "record_length": 15, "encoding": "latin-1"}
    data = (H + D + D).encode("latin-1")

    (document,) = read(tmp_path, data, layout, "flat-fixed")

    assert document.value("name") == "Dupré"
    assert [d.location.line for d in document.children("D")] == [2, 3]


def test_a_fixed_width_value_locates_its_column_range(tmp_path: Path) -> None:
    (document,) = read(tmp_path, f"{H}\n{D}\n".encode(), FIXED, "flat-fixed")

    where = document.children("D")[0].where("amount")
    assert str(where) == "in.txt:2 record D field amount (columns 7-15)"


def test_a_negative_implied_decimal_keeps_its_sign(tmp_path: Path) -> None:
    (document,) = read(tmp_path, f"{H}\nD__A12-00000125\n".encode(), FIXED, "flat-fixed")

    assert document.children("D")[0].value("amount") == "-1.25"


def test_a_short_line_leaves_its_missing_fields_empty(tmp_path: Path) -> None:
    (document,) = read(tmp_path, b"H000042\n", FIXED, "flat-fixed")

    assert document.value("name") is None


def test_a_document_is_handed_over_before_the_rest_of_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(f"{H}\n{D}\n{H}\n{D}\nXbroken\n", encoding="cp1252")
    reader = reader_for({"format": "flat-fixed", "layout": FIXED, "encoding": "cp1252"})
    records = reader.records(path, source_name="big.txt")

    first = next(records)  # the unknown record at line 5 is not read yet

    assert isinstance(first, FlatRecord)
    assert first.line == 1
    with pytest.raises(MalformedFileError) as caught:
        next(records)
    assert str(caught.value).startswith("big.txt:5 record X: unknown record type 'X'")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(
            {"structure": {"header": "X"}},
            "t: structure.header: unknown record type 'X'",
            id="unknown-header",
        ),
        pytest.param(
            {"record_type": {"column": 1}},
            "t: record_type: fixed-width needs start and length",
            id="fixed-without-type-position",
        ),
    ],
)
def test_a_bad_layout_is_refused_with_every_problem(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(LayoutError) as caught:
        compile_layout({**FIXED, **change}, name="t")

    assert problem in caught.value.problems


def test_delimited_fields_may_be_placed_by_column(tmp_path: Path) -> None:
    layout = {
        **DELIMITED,
        "records": {
            **DELIMITED["records"],
            "ENT": {
                "fields": ["type", {"name": "date", "column": 4}, {"name": "number", "column": 2}]
            },
        },
    }

    first, _ = read(tmp_path, GOOD.replace(b"ENT;A1;", b"ENT;A1;x;"), layout, "flat-delimited")

    assert (first.value("number"), first.value("date")) == ("A1", "20261128")
