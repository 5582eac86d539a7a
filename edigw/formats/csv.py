"""CSV reader: one record per row, addressed by header name (or by position), with line numbers.

Values are handed over raw (strings, ``None`` when empty): typing, decimal commas and trims are
the mapping's business, so the same reader serves every flow. Whole-file problems (encoding,
unknown column, broken quoting, control characters, limits) raise ``MalformedFileError``
naming the file, line and column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edigw import suggest
from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.columns import ColumnRecord, Columns, Getter
from edigw.formats.encoding import decode_error, resolve_encoding
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits, over
from edigw.formats.text import check_text_file
from edigw.model import Location

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


class Quoting(Protocol):
    """What locating a quote needs: the quote and the separator."""

    @property
    def quote(self) -> str: ...

    @property
    def delimiter(self) -> str: ...


class _Sheet(Columns):
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
        self.getters: dict[tuple[str, ...], Getter | None] = {}

    def unknown(self, selector: str) -> MalformedFileError:
        where = f"the header at line {self.header_line}" if self.header_line else "the columns"
        problem = f"column {selector!r} not found in {where}"
        msg = suggest.unknown(problem, selector, [n for n in self.names if n], noun="columns")
        return MalformedFileError(DataProblem(msg, Location(self.name, line=self.header_line)))


class CsvRecord(ColumnRecord):
    """One data row: ``value("Qty")`` is the raw cell, ``None`` when empty or absent."""

    __slots__ = ("_sheet", "cells", "line")
    _sheet: _Sheet
    problem = None  # no reader-made problem (see edigw.formats): read fast by the engine

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

    def where(self, selector: str) -> Location:
        position = self._sheet.index.get(selector)
        column = None if position is None else position + 1
        return Location(self._sheet.name, line=self.line, column=column, field=selector)

    def children(self, selector: str) -> Sequence[CsvRecord]:
        return ()


class CsvReader:
    """Streams a CSV file row by row; memory stays flat whatever the file size.

    Strict: a quote left open is an error located where it opened (also at the end of the
    file, where Python's csv module would silently close it), and text after a closing quote
    is an error. A record whose quoted value spans lines is legitimate (an address with a
    line break) and is counted in the notes; but when the lines inside such a value look like
    records of their own (each holds the separators of a full row), a quote is missing and
    the records would be lost: that is an error. At the end, the records, blank lines and the
    lines inside quoted values must add up to the file's physical lines.
    """

    def __init__(self, options: CsvOptions, *, limits: ReaderLimits = DEFAULT_LIMITS) -> None:
        self.options = options
        self.limits = limits
        self.notes: list[str] = []  # what the reader decided itself, for the operator

    @classmethod
    def from_source(
        cls, source: Mapping[str, Any], *, limits: ReaderLimits = DEFAULT_LIMITS
    ) -> CsvReader:
        return cls(CsvOptions.from_source(source), limits=limits)

    def records(self, path: Path, *, source_name: str) -> Iterator[CsvRecord]:
        opts = self.options
        limits = self.limits
        encoding, detected = resolve_encoding(path, opts.encoding, source_name=source_name)
        if detected:
            self.notes.append(f"{source_name}: encoding {encoding} (detected)")
        physical = check_text_file(path, source_name=source_name, encoding=encoding, limits=limits)
        raise_field_size_limit(limits)
        spans = _Spans(source_name, opts, limits)
        line = end = 0
        try:
            with path.open(encoding=encoding, newline="") as handle:
                for _ in range(opts.skip_lines):
                    if handle.readline():
                        line += 1
                rows = csv.reader(
                    handle, delimiter=opts.delimiter, quotechar=opts.quote, strict=True
                )
                base = line
                sheet: _Sheet | None = None
                if opts.columns:
                    sheet = _Sheet(source_name, opts.columns, None)
                    spans.width = len(opts.columns)
                end = base
                # Values on one line are under max_line_chars; measure them one by one only
                # when the flow allows less for a value than for a line.
                longest = limits.max_value_chars if spans.check_values else None
                for cells in rows:
                    start = end + 1
                    end = base + rows.line_num
                    if end != start:
                        spans.spanning(cells, start, end, sheet, path, encoding)
                    if sheet is None:
                        if opts.header:
                            sheet = _Sheet(source_name, _header(cells), start)
                            spans.width = len(cells)
                            continue
                        sheet = _Sheet(source_name, POSITIONAL_NAMES, None)
                        spans.width = len(cells)
                    if not cells or (not cells[0] and not any(cells)):
                        continue
                    if longest is not None and max(map(len, cells)) > longest:
                        raise spans.too_long(cells, start)
                    yield CsvRecord(sheet, cells, start)
        except UnicodeDecodeError as exc:
            raise decode_error(path, source_name, encoding) from exc
        except csv.Error as exc:
            raise unreadable(
                exc,
                path=path,
                name=source_name,
                encoding=encoding,
                start=end + 1,
                quoting=opts,
                limits=limits,
            ) from exc
        if physical >= 0 and end != physical:
            msg = (
                f"the reader took {end:,} lines of the {physical:,} the file has; "
                "the file was not read whole (report this file to the edigw maintainers)"
            )
            raise MalformedFileError(DataProblem(msg, Location(source_name, line=end)))
        if spans.count:
            self.notes.append(
                f"{source_name}: {spans.count:,} record(s) span several lines (quoted line "
                f"breaks; the first at line {spans.first})"
            )


def raise_field_size_limit(limits: ReaderLimits) -> None:
    """csv's field size limit is one setting for the whole process: raise it, never lower it
    (another thread may be reading). Each flow's own ``max_value_chars`` is checked by the
    reader itself: every value lies on one line, under ``max_line_chars``, or spans lines,
    and then it is measured."""
    wanted = max(limits.max_value_chars, limits.max_line_chars) + 1
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)


class _Spans:
    """Records spanning lines: counted, checked, and the quotes behind errors located."""

    def __init__(self, name: str, options: CsvOptions, limits: ReaderLimits) -> None:
        self.name = name
        self.options = options
        self.limits = limits
        self.count = 0
        self.first: int | None = None
        self.width: int | None = None  # cells of a full row (the header's, else the first's)
        self.check_values = limits.max_value_chars < limits.max_line_chars

    def spanning(
        self,
        cells: list[str],
        start: int,
        end: int,
        sheet: _Sheet | None,
        path: Path,
        encoding: str,
    ) -> None:
        """A record from ``start`` to ``end``: refuse it when its quoted value swallowed
        lines that look like records, or when a value is over the limit."""
        self.count += 1
        if self.first is None:
            self.first = start
        if max(map(len, cells), default=0) > self.limits.max_value_chars:
            raise self.too_long(cells, start)
        separators = (self.width or 0) - 1
        if separators < 1:
            return
        delimiter = self.options.delimiter
        for value in cells:
            inner = value.splitlines()[1:]
            looks = [text for text in inner if text.count(delimiter) >= separators]
            if looks:
                line, column = open_quote(path, encoding, start, self.options) or (start, None)
                msg = (
                    f"a quoted value opened here runs to line {end} and swallows "
                    f"{len(looks)} line(s) that look like records of their own (they hold "
                    f"the {separators} separators of a row): a quote is probably missing"
                )
                raise MalformedFileError(
                    DataProblem(msg, Location(self.name, line=line, column=column))
                )

    def too_long(self, cells: list[str], start: int) -> MalformedFileError:
        longest = self.limits.max_value_chars
        column = max(range(len(cells)), key=lambda i: len(cells[i])) + 1
        msg = f"a value has more than {longest:,} characters, {over(longest, 'max_value_chars')}"
        return MalformedFileError(DataProblem(msg, Location(self.name, line=start, column=column)))


def unreadable(
    exc: csv.Error,
    *,
    path: Path,
    name: str,
    encoding: str,
    start: int,
    quoting: Quoting,
    limits: ReaderLimits,
) -> MalformedFileError:
    """csv's error for the record starting at line ``start``, located: where the quote left
    open opened, or where text follows a closing quote."""
    text = str(exc)
    line: int = start
    column: int | None = None
    if "unexpected end of data" in text:
        msg = (
            "a quoted value opened here is never closed (the file ends inside it): "
            "a quote is missing"
        )
        line, column = open_quote(path, encoding, start, quoting) or (start, None)
    elif "expected after" in text:
        msg = (
            f"text after the closing quote of a value ({text}): a quote inside a quoted "
            "value must be doubled"
        )
        line, column = after_closing_quote(path, encoding, start, quoting) or (start, None)
    elif "field larger than field limit" in text:
        longest = limits.max_value_chars
        msg = f"a value has more than {longest:,} characters, {over(longest, 'max_value_chars')}"
    else:
        msg = f"unreadable CSV: {text}"
    return MalformedFileError(DataProblem(msg, Location(name, line=line, column=column)))


def _physical_lines(path: Path, encoding: str, start: int) -> Iterator[tuple[int, str]]:
    """``(number, text)`` of the file's lines from line ``start`` on, as csv reads them."""
    with path.open(encoding=encoding, newline="", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if number >= start:
                yield number, text


def _scan_quotes(
    path: Path, encoding: str, start: int, options: Quoting
) -> Iterator[tuple[str, int, int]]:
    """Quote events of the record starting at line ``start``: ``("open", line, column)``
    when a quoted value opens, ``("close", ...)`` when it closes, ``("stray", ...)`` for text
    right after a closing quote; ends with the record."""
    quote, delimiter = options.quote, options.delimiter
    quoted = False
    closed = False  # just after a closing quote
    at_start = True  # at the start of a value
    for number, text in _physical_lines(path, encoding, start):
        i = 0
        while i < len(text):
            char = text[i]
            if quoted:
                if char == quote:
                    if text[i + 1 : i + 2] == quote:
                        i += 2
                        continue
                    quoted, closed = False, True
                    yield "close", number, i + 1
            elif char == quote and at_start:
                quoted = True
                yield "open", number, i + 1
            elif closed and char not in (delimiter, "\r", "\n"):
                yield "stray", number, i + 1
                closed = False
            else:
                closed = False
            at_start = not quoted and char in (delimiter, "\r", "\n")
            i += 1
        if not quoted:
            return


def open_quote(path: Path, encoding: str, start: int, options: Quoting) -> tuple[int, int] | None:
    """Where the quoted value left open at the end of the record's first line opened."""
    opened: tuple[int, int] | None = None
    for event, line, column in _scan_quotes(path, encoding, start, options):
        if event == "open":
            opened = (line, column)
        elif event == "close" and opened is not None and opened[0] == line:
            opened = None
        elif event == "close" and opened is not None:
            return opened  # the first value that spans lines
    return opened


def after_closing_quote(
    path: Path, encoding: str, start: int, options: Quoting
) -> tuple[int, int] | None:
    for event, line, column in _scan_quotes(path, encoding, start, options):
        if event == "stray":
            return line, column
    return None


def _header(cells: list[str]) -> list[str]:
    """Header names, trimmed, with trailing empty columns (``a;b;c;``) dropped."""
    names = [c.strip().lstrip("\ufeff") for c in cells]
    while names and not names[-1]:
        names.pop()
    return names
