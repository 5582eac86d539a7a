"""Excel reader: header rows (merged too), numbers, dates, formulas, stops, and hostile archives."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from edigw.errors import MalformedFileError
from edigw.formats.xlsx import XlsxReader, column_letter
from edigw.mapping import load_mapping

DATA = Path(__file__).parent / "data" / "mapping"


def workbook(path: Path, *, formula_cache: str | None = "6") -> Path:
    """A CRM export: a title, a merged two-column header, typed cells, a formula, a footer."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Comptes"
    ws["A1"] = "Export CRM du 28/11/2026"
    ws.append([])
    ws["A3"], ws["B3"], ws["D3"], ws["E3"], ws["F3"], ws["G3"], ws["H3"] = (
        "Code",
        "Adresse",
        "SIRET",
        "Créé le",
        "Total",
        "Actif",
        "CP",
    )
    ws.merge_cells("B3:C3")
    ws.append(
        ["c0001", "1 rue A", "Lyon", 73282932000074, dt.date(2026, 11, 3), "=3*2", True, 69001]
    )
    ws.append(["c0002", "2 rue B", "Nice", 73282932000082, 46329, "=3*2", False, 6000])
    ws.append([])
    ws.append(["c0003", "ignored after the empty row"])
    wb.save(path)
    if formula_cache is not None:
        _cache_formulas(path, formula_cache)
    return path


def _cache_formulas(path: Path, value: str) -> None:
    """openpyxl writes formulas without results; Excel stores the last result beside them."""
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet = sheet.replace("<f>3*2</f><v></v>", f"<f>3*2</f><v>{value}</v>")
    sheet = sheet.replace("<f>3*2</f><v />", f"<f>3*2</f><v>{value}</v>")
    assert f"<v>{value}</v>" in sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in parts.items():
            dst.writestr(name, data)


def rows(path: Path, **options: object) -> list:
    reader = XlsxReader.from_source({"sheet": "Comptes", "header_row": 3, **options})
    return list(reader.records(path, source_name=path.name))


def test_rows_under_the_header_stop_at_the_first_empty_row(tmp_path: Path) -> None:
    records = rows(workbook(tmp_path / "crm.xlsx"))
    assert [r.value("Code") for r in records] == ["c0001", "c0002"]


def test_a_merged_header_cell_names_every_column_it_spans(tmp_path: Path) -> None:
    first = rows(workbook(tmp_path / "crm.xlsx"))[0]
    assert first.value("Adresse") == "1 rue A"
    assert first.value("Adresse#2") == "Lyon"
    assert str(first.where("Adresse#2")) == "crm.xlsx Comptes!C4"


def test_locations_are_sheet_cells(tmp_path: Path) -> None:
    second = rows(workbook(tmp_path / "crm.xlsx"))[1]
    assert str(second.location) == "crm.xlsx Comptes!A5"
    assert str(second.where("SIRET")) == "crm.xlsx Comptes!D5"


def test_numbers_dates_booleans_and_cached_formula_values(tmp_path: Path) -> None:
    first, second = rows(workbook(tmp_path / "crm.xlsx"))
    assert first.value("SIRET") == 73282932000074.0
    assert first.value("Créé le") == dt.date(2026, 11, 3)
    assert second.value("Créé le") == 46329.0
    assert first.value("Total") == 6.0
    assert first.value("Actif") is True


def test_a_stop_marker_ends_the_data(tmp_path: Path) -> None:
    assert [r.value("Code") for r in rows(workbook(tmp_path / "crm.xlsx"), stop_at="c0002")] == [
        "c0001"
    ]


def test_sheets_are_found_by_position_too(tmp_path: Path) -> None:
    reader = XlsxReader(sheet=1, header_row=3)
    path = workbook(tmp_path / "crm.xlsx")
    assert len(list(reader.records(path, source_name="crm.xlsx"))) == 2


def test_an_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = workbook(tmp_path / "crm.xlsx")
    reader = XlsxReader(sheet="Clients")
    with pytest.raises(
        MalformedFileError, match=r"sheet 'Clients' not found \(sheets: 'Comptes'\)"
    ):
        list(reader.records(path, source_name="crm.xlsx"))


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("Code;Name\n")
    with pytest.raises(MalformedFileError, match=r"^fake\.xlsx: not an \.xlsx workbook"):
        rows(path)


def test_a_zip_bomb_is_refused_before_decompression(tmp_path: Path) -> None:
    path = workbook(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * (50 << 20))
    with pytest.raises(MalformedFileError, match=r"part xl/media/padding\.bin is compressed \d+:1"):
        rows(path)


def test_an_oversized_workbook_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "big.xlsx")
    with pytest.raises(MalformedFileError, match="over the 1,000 byte limit"):
        rows(path, max_size=1000)


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_an_excel_customer_export_maps_with_numeric_codes_intact(tmp_path: Path) -> None:
    path = workbook(tmp_path / "crm.xlsx")
    mapping = load_mapping(DATA / "customers-xlsx.yaml")
    docs = list(mapping.map_file(path, source_name="crm.xlsx"))
    assert [d.problems for d in docs] == [[], []]
    assert docs[0].payload == {
        "code": "C0001",
        "name": "Client C0001",
        "siret": "73282932000074",
        "billing_address": {
            "line1": "1 rue A",
            "postal_code": "69001",
            "city": "Lyon",
            "country": "FR",
        },
    }
    assert docs[1].payload is not None
    assert docs[1].payload["billing_address"]["postal_code"] == "06000"
