"""CSV reader: one record per row, addressed by header name (or by position), with line numbers.

Values are handed over raw (strings, ``None`` when empty): typing, decimal commas and trims are
the mapping's business, so the same reader serves every flow. Whole-file problems (encoding,
unknown column, broken quoting) raise ``MalformedFileError`` naming the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.encoding import decode_error, resolve_encoding
from edigw.model import Location

MAX_FIELD_SIZE = 1 << 20  # one cell of a partner file never legitimately reaches 1 MB
# Without a header or ``columns``, columns are addressed by position: "1", "2", ...
POSITIONAL_NAMES = tuple(str(i) for i in range(1, 513))


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """Reader settings, from the mapping's ``source`` block."""

    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    columns: tuple[str, ...] = ()
    skip_lines: int = 0
    encoding: str | None = None

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> CsvOptions:
        return cls(
            delimiter=source.get("delimiter", ","),
            quote=source.get("quote", '"'),
            header=source.get("header", True),
            columns=tuple(source.get("columns", ())),
            skip_lines=source.get("skip_lines", 0),
            encoding=source.get("encoding"),
        )


class _Sheet:
    """What every row of one file shares: its name, the column index and the header line."""

    __slots__ = ("getters", "header_line", "index", "name", "names")

    def __init__(self, name: str, names: Sequence[str], header_line: int | None) -> None:
        self.name = name
        self.names = list(names)
        self.header_line = header_line
        self.index: dict[str, int] = {}
        seen: dict[str, int] = {}
        for position, column in enumerate(self.names):
            count = seen[column] = seen.get(column, 0) + 1  # repeated labels: Label#2, ...
            self.index.setdefault(column if count == 1 else f"{column}#{count}", position)
        self.getters: dict[tuple[str, ...], Callable[[list[str]], Sequence[str]] | None] = {}

    def getter(self, selectors: tuple[str, ...]) -> Callable[[list[str]], Sequence[str]] | None:
        """Cells at ``selectors`` in one call; None when one of them is not a column."""
        try:
            getter = self.getters[selectors]
        except KeyError:
            if not all(s in self.index for s in selectors):
                getter = None
            elif len(selectors) == 1:
                position = self.index[selectors[0]]
                getter = lambda cells: (cells[position],)  # noqa: E731
            else:
                getter = itemgetter(*(self.index[s] for s in selectors))
            self.getters[selectors] = getter
        return getter

    def unknown(self, selector: str) -> MalformedFileError:
        where = f"the header at line {self.header_line}" if self.header_line else "the columns"
        known = ", ".join(repr(n) for n in self.names if n) or "none"
        msg = f"column {selector!r} not found in {where} (columns: {known})"
        return MalformedFileError(DataProblem(msg, Location(self.name, line=self.header_line)))


class CsvRecord:
    """One data row: ``value("Qty")`` is the raw cell, ``None`` when empty or absent."""

    __slots__ = ("_sheet", "cells", "line")

    def __init__(self, sheet: _Sheet, cells: list[str], line: int) -> None:
        self._sheet = sheet
        self.cells = cells
        self.line = line

    @property
    def location(self) -> Location:
        return Location(self._sheet.name, line=self.line)

    def value(self, selector: str) -> Any:
        try:
            return self.cells[self._sheet.index[selector]] or None
        except IndexError:
            return None
        except KeyError:
            raise self._sheet.unknown(selector) from None

    def values_of(self, selectors: tuple[str, ...]) -> Sequence[str] | None:
        """The raw cells at ``selectors`` ('' when empty); None when the row is short or a
        selector is not a column (``value`` then says what is wrong)."""
        getter = self._sheet.getter(selectors)
        if getter is None:
            return None
        try:
            return getter(self.cells)
        except IndexError:
            return None

    def rows_of(
        self, records: Sequence[CsvRecord], selectors: tuple[str, ...]
    ) -> list[Sequence[str]] | None:
        """``values_of`` for each of ``records`` (rows of the same file as this one)."""
        sheet = self._sheet
        getter = sheet.getter(selectors)
        if getter is None:
            return None
        try:
            return [getter(r.cells) for r in records if r._sheet is sheet]
        except (IndexError, AttributeError):
            return None

    def where(self, selector: str) -> Location:
        position = self._sheet.index.get(selector)
        column = None if position is None else position + 1
        return Location(self._sheet.name, line=self.line, column=column, field=selector)

    def children(self, selector: str) -> Sequence[CsvRecord]:
        return ()


class CsvReader:
    """Streams a CSV file row by row; memory stays flat whatever the file size."""

    def __init__(self, options: CsvOptions) -> None:
        self.options = options
        self.notes: list[str] = []  # what the reader decided itself, for the operator

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> CsvReader:
        return cls(CsvOptions.from_source(source))

    def records(self, path: Path, *, source_name: str) -> Iterator[CsvRecord]:
        opts = self.options
        encoding, detected = resolve_encoding(path, opts.encoding)
        if detected:
            self.notes.append(f"{source_name}: encoding {encoding} (detected)")
        previous_limit = csv.field_size_limit()
        line = end = 0
        try:
            csv.field_size_limit(MAX_FIELD_SIZE)
            with path.open(encoding=encoding, newline="") as handle:
                for _ in range(opts.skip_lines):
                    if handle.readline():
                        line += 1
                rows = csv.reader(handle, delimiter=opts.delimiter, quotechar=opts.quote)
                base = line
                sheet: _Sheet | None = None
                if opts.columns:
                    sheet = _Sheet(source_name, opts.columns, None)
                end = base
                for cells in rows:
                    start = end + 1
                    end = base + rows.line_num
                    if sheet is None:
                        if opts.header:
                            sheet = _Sheet(source_name, _header(cells), start)
                            continue
                        sheet = _Sheet(source_name, POSITIONAL_NAMES, None)
                    if not cells or (not cells[0] and not any(cells)):
                        continue
                    yield CsvRecord(sheet, cells, start)
        except UnicodeDecodeError as exc:
            raise decode_error(path, source_name, encoding) from exc
        except csv.Error as exc:
            msg = f"unreadable CSV: {exc}"
            raise MalformedFileError(DataProblem(msg, Location(source_name, line=end + 1))) from exc
        finally:
            csv.field_size_limit(previous_limit)


def _header(cells: list[str]) -> list[str]:
    """Header names, trimmed, with trailing empty columns (``a;b;c;``) dropped."""
    names = [c.strip().lstrip("\ufeff") for c in cells]
    while names and not names[-1]:
        names.pop()
    return names
