"""Lookup tables: two-column correspondences kept as CSV files beside the mapping.

A consultant maintains e.g. ``articles.csv`` (partner code → Ecolix code) in a spreadsheet;
the file is read once when the mapping loads. Delimiter (``;`` or ``,``) and encoding
(UTF-8, with or without BOM, or cp1252) are detected; duplicates and blank keys are errors
that name the table's line, so a correspondence is never silently ambiguous.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from edigw.errors import MappingError
from edigw.formats.encoding import detect_encoding


@dataclass(frozen=True, slots=True)
class LookupTable:
    """A loaded table: ``values[key] -> value``, with where it came from for messages."""

    path: Path
    key_column: str
    value_column: str
    values: dict[str, str]

    @property
    def name(self) -> str:
        return self.path.name


def load_table(path: Path, *, key: str, value: str) -> LookupTable:
    """Read ``path``; raise ``MappingError`` listing every problem found in it."""
    if not path.is_file():
        msg = f"{path}: lookup table not found"
        raise MappingError(msg)
    try:
        encoding = detect_encoding(path)
        text = path.read_text(encoding=encoding)
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read lookup table: {exc}"
        raise MappingError(msg) from exc
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = csv.reader(text.splitlines(), delimiter=delimiter)
    header = [h.strip() for h in next(rows, [])]
    problems: list[str] = []
    for column in (key, value):
        if column not in header:
            problems.append(
                f"{path}:1: column {column!r} not found (columns: {', '.join(header) or 'none'})"
            )
    if problems:
        raise MappingError(problems[0], problems)
    k, v = header.index(key), header.index(value)
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(k, v):
            problems.append(f"{path}:{number}: expected {max(k, v) + 1} columns, found {len(row)}")
            continue
        code = row[k].strip()
        if not code:
            problems.append(f"{path}:{number}: empty {key!r}")
            continue
        if code in values and values[code] != row[v].strip():
            problems.append(
                f"{path}:{number}: {code!r} already maps to {values[code]!r} at line "
                f"{first_line[code]}"
            )
            continue
        values[code] = row[v].strip()
        first_line.setdefault(code, number)
    if problems:
        raise MappingError(problems[0], problems)
    return LookupTable(path, key, value, values)
