"""Excel .xlsx reader: one record per data row under a header row, addressed by header label.

python-calamine (Rust) reads a sheet about ten times faster than openpyxl's read-only mode,
and gives formulas as their cached values and date-formatted cells as dates. It returns every
number as a float: the mapping's ``string`` type turns ``3017620422003.0`` back into the EAN13
``"3017620422003"`` exactly (floats are exact up to 2**53).

The workbook is a zip archive: it is inspected before parsing (``xlsx_guard``) and refused
when corrupt, suspiciously compressed (zip bombs), larger than ``max_size`` once
uncompressed, or when reading it would go over the flow's limits (a cell at ``XFD1048576``,
a huge cell, shared strings repeated into gigabytes). Location: ``Sheet!C12``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import python_calamine

from edigw import suggest
from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.columns import ColumnRecord, Columns, Getter
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.formats.text import control_problem
from edigw.formats.xlsx_guard import DEFAULT_MAX_SIZE, inspect_workbook
from edigw.formats.xlsx_guard import check_archive as guard_archive
from edigw.model import Location

__all__ = ["DEFAULT_MAX_SIZE", "XlsxReader", "XlsxRecord", "check_archive", "column_letter"]

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(names: Sequence[str]) -> dict[str, int]:
    """Header label → position; a repeated label's later columns are ``Label#2``, ``Label#3``."""
    index: dict[str, int] = {}
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            continue
        count = seen[name] = seen.get(name, 0) + 1
        index.setdefault(name if count == 1 else f"{name}#{count}", position)
    return index


class _Sheet(Columns):
    __slots__ = ("file", "getters", "header_row", "index", "letters", "names", "sheet")

    def __init__(self, file: str, sheet: str, names: list[str], header_row: int) -> None:
        self.file = file
        self.sheet = sheet
        self.names = names
        self.header_row = header_row
        self.index = column_index(names)
        self.letters = [column_letter(i) for i in range(len(names))]
        self.getters: dict[tuple[str, ...], Getter | None] = {}

    def cell(self, column: int, row: int) -> Location:
        letter = column_letter(column)
        return Location(self.file, line=row, cell=f"{self.sheet}!{letter}{row}")

    def unknown(self, selector: str) -> MalformedFileError:
        msg = suggest.unknown(
            f"column {selector!r} not found in the header row",
            selector,
            list(self.index),
            noun="columns",
        )
        where = Location(
            self.file,
            line=self.header_row,
            cell=f"{self.sheet}!{self.header_row}:{self.header_row}",
        )
        return MalformedFileError(DataProblem(msg, where))


class XlsxRecord(ColumnRecord):
    """One data row; ``value("EAN")`` is the raw cell (str, float, bool, date), None if empty."""

    __slots__ = ("_sheet", "cells", "row")
    _sheet: _Sheet
    problem = None  # no reader-made problem (see edigw.formats): read fast by the engine

    def __init__(self, sheet: _Sheet, cells: list[Any], row: int) -> None:
        self._sheet = sheet
        self.cells = cells
        self.row = row

    @property
    def location(self) -> Location:
        return self._sheet.cell(0, self.row)

    def value(self, selector: str) -> Any:
        try:
            value = self.cells[self._sheet.index[selector]]
        except IndexError:
            return None
        except KeyError:
            raise self._sheet.unknown(selector) from None
        return None if value == "" else value

    def where(self, selector: str) -> Location:
        return self._sheet.cell(self._sheet.index.get(selector, 0), self.row)

    def children(self, selector: str) -> Sequence[XlsxRecord]:
        return ()


class XlsxReader:
    """Reads one sheet: header row, first data row, stop at an empty row or a marker.

    The workbook is inspected first (``edigw.formats.xlsx_guard``): a workbook that would
    make the Excel library go over the flow's limits is refused before it reads anything.
    """

    def __init__(
        self,
        *,
        sheet: str | int = 1,
        header_row: int = 1,
        first_row: int | None = None,
        stop_at: str | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        limits: ReaderLimits = DEFAULT_LIMITS,
    ) -> None:
        self.sheet = sheet
        self.header_row = header_row
        self.first_row = first_row or header_row + 1
        self.stop_at = stop_at
        self.max_size = max_size
        self.limits = limits

    @classmethod
    def from_source(
        cls, source: Mapping[str, Any], *, limits: ReaderLimits = DEFAULT_LIMITS
    ) -> XlsxReader:
        return cls(
            sheet=source.get("sheet", 1),
            header_row=source.get("header_row", 1),
            first_row=source.get("first_row"),
            stop_at=source.get("stop_at"),
            max_size=source.get("max_size", DEFAULT_MAX_SIZE),
            limits=limits,
        )

    def records(self, path: Path, *, source_name: str) -> Iterator[XlsxRecord]:
        inspection = inspect_workbook(
            path, source_name, sheet=self.sheet, limits=self.limits, max_size=self.max_size
        )
        sheet = self._open_sheet(path, source_name)
        start_row, start_col = sheet.start if sheet.start else (0, 0)
        try:
            rows = sheet.iter_rows()
        except python_calamine.CalamineError as exc:  # pragma: no cover - defensive
            raise _malformed(source_name, f"unreadable sheet: {exc}") from exc
        merged = [
            r for r in (sheet.merged_cell_ranges or []) if r[0][0] <= self.header_row - 1 <= r[1][0]
        ]
        header: _Sheet | None = None
        pad = [""] * start_col
        header_row, first_row, stop_at = self.header_row, self.first_row, self.stop_at
        controls = inspection.controls
        number = start_row
        for cells in rows:
            number += 1
            if number < header_row:
                continue
            if start_col:
                cells = pad + cells
            if controls:
                _refuse_controls(cells, source_name, sheet.name, number)
            if number == header_row:
                header = _Sheet(source_name, sheet.name, _header(cells, merged), number)
                continue
            if number < first_row or header is None:
                continue
            if cells.count("") == len(cells):
                return
            if stop_at is not None:
                first = next((c for c in cells if c != ""), "")
                if isinstance(first, str) and first.strip() == stop_at:
                    return
            yield XlsxRecord(header, cells, number)
        if header is None:
            raise _malformed(
                source_name, f"sheet {sheet.name!r} has no header row {self.header_row}"
            )

    def _open_sheet(self, path: Path, source_name: str) -> Any:
        try:
            workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises several unrelated types for corrupt files
            raise _malformed(source_name, f"not a readable .xlsx workbook: {exc}") from exc
        names = workbook.sheet_names
        try:
            if isinstance(self.sheet, int):
                return workbook.get_sheet_by_index(self.sheet - 1)
            return workbook.get_sheet_by_name(self.sheet)
        except (python_calamine.WorksheetNotFound, IndexError) as exc:
            listed = ", ".join(repr(n) for n in names)
            raise _malformed(
                source_name, f"sheet {self.sheet!r} not found (sheets: {listed})"
            ) from exc
        except Exception as exc:  # a sheet that is listed but cannot be read
            raise _malformed(source_name, f"sheet {self.sheet!r} cannot be read: {exc}") from exc


def _refuse_controls(cells: list[Any], file: str, sheet: str, row: int) -> None:
    """The first cell of the row holding a control character (the workbook has one)."""
    for column, cell in enumerate(cells):
        if cell.__class__ is str:
            found = _CONTROL.search(cell)
            if found:
                where = Location(file, line=row, cell=f"{sheet}!{column_letter(column)}{row}")
                raise MalformedFileError(control_problem(ord(found.group()), where))


def _header(cells: list[Any], merged: list[tuple[tuple[int, int], tuple[int, int]]]) -> list[str]:
    """Header labels; a merged header cell names every column it spans."""
    names = [_label(c) for c in cells]
    for (_, first_col), (_, last_col) in merged:
        if first_col < len(names):
            label = names[first_col]
            for column in range(first_col + 1, last_col + 1):
                if column < len(names) and not names[column]:
                    names[column] = label
    return names


def _label(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def check_archive(path: Path, source_name: str, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Refuse corrupt archives and zip bombs before any decompression happens."""
    guard_archive(path, source_name, max_size=max_size, limits=DEFAULT_LIMITS)


def _malformed(source_name: str, message: str) -> MalformedFileError:
    return MalformedFileError(DataProblem(message, Location(source_name)))
