"""Lookup tables: correspondences kept as CSV files beside the mapping.

A consultant maintains e.g. ``articles.csv`` (partner code → Ecolix code) in a spreadsheet;
the file is read once when the mapping loads. Delimiter (``;`` or ``,``) and encoding
(UTF-8, with or without BOM, or cp1252) are detected; duplicates and blank keys are errors
that name the table's line, so a correspondence is never silently ambiguous.

Two uses: a field's ``lookup: {table, key, value}`` (:func:`load_table`), and
``lookup(table, key[, column])`` in expressions (:class:`ExpressionTables`), whose key is the
table's first column and whose value is its second column, or the column named.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import nodes

from edigw import suggest
from edigw.errors import MappingError
from edigw.formats.encoding import detect_encoding

_NO_DEFAULT: Any = object()


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


def _read(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """The table's header (names trimmed) and its rows."""
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
    return [h.strip() for h in next(rows, [])], rows


def load_table(path: Path, *, key: str, value: str) -> LookupTable:
    """Read ``path``; raise ``MappingError`` listing every problem found in it."""
    header, rows = _read(path)
    problems: list[str] = []
    for role, column in (("key", key), ("value", value)):
        if column not in header:
            problem = f"{path}:1: {role} column {column!r} not found in the table's header"
            problems.append(
                suggest.unknown(problem, column, [h for h in header if h], noun="columns")
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


@dataclass(frozen=True, slots=True)
class RowTable:
    """A table read whole, for ``lookup()`` in expressions: rows by their first column."""

    path: Path
    header: tuple[str, ...]
    rows: dict[str, tuple[str, ...]]

    @property
    def name(self) -> str:
        return self.path.name

    def column_problem(self, column: str) -> str | None:
        if column in self.header:
            return None
        return suggest.unknown(
            f"lookup table {self.name} has no column {column!r}",
            column,
            list(self.header),
            noun="columns",
        )


def load_rows(path: Path) -> RowTable:
    """Read ``path`` whole (at least two columns); ``MappingError`` lists every problem."""
    header, rows = _read(path)
    if len(header) < 2 or not all(header[:2]):
        msg = f"{path}:1: a lookup table needs a header of at least two columns (key, value)"
        raise MappingError(msg)
    problems: list[str] = []
    found: dict[str, tuple[str, ...]] = {}
    first_line: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = tuple(cell.strip() for cell in row)
        if len(cells) < len(header):
            problems.append(f"{path}:{number}: expected {len(header)} columns, found {len(cells)}")
            continue
        code = cells[0]
        if not code:
            problems.append(f"{path}:{number}: empty {header[0]!r}")
            continue
        if code in found and found[code] != cells[: len(header)]:
            problems.append(
                f"{path}:{number}: {code!r} is already at line {first_line[code]} with other values"
            )
            continue
        found[code] = cells[: len(header)]
        first_line.setdefault(code, number)
    if problems:
        raise MappingError(problems[0], problems)
    return RowTable(path, tuple(header), found)


@dataclass
class ExpressionTables:
    """The tables a mapping's expressions name in ``lookup('table.csv', key)``, loaded once
    when the mapping compiles (relative to its folder) and read by :meth:`lookup`."""

    base: Path
    tables: dict[str, RowTable] = field(default_factory=dict)

    def load_for(self, tree: nodes.Node) -> list[str]:
        """Load the tables ``lookup()`` calls in ``tree`` name; the problems found."""
        problems: list[str] = []
        calls = [tree] if isinstance(tree, nodes.Call) else []
        for call in [*calls, *tree.find_all(nodes.Call)]:
            if not (isinstance(call.node, nodes.Name) and call.node.name == "lookup"):
                continue
            problems.extend(self._load_call(call))
        return problems

    def _load_call(self, call: nodes.Call) -> list[str]:
        if len(call.args) < 2 or len(call.args) > 3:
            return ["lookup() takes a table, a key and optionally a column: lookup('t.csv', key)"]
        name_node = call.args[0]
        if not (isinstance(name_node, nodes.Const) and isinstance(name_node.value, str)):
            return [
                "lookup(): name the table as a quoted file name, e.g. lookup('articles.csv', x)"
            ]
        name = name_node.value
        if name not in self.tables:
            try:
                self.tables[name] = load_rows((self.base / name).resolve())
            except MappingError as exc:
                return list(exc.problems)
        column = call.args[2] if len(call.args) == 3 else None
        if isinstance(column, nodes.Const) and isinstance(column.value, str):
            problem = self.tables[name].column_problem(column.value)
            if problem:
                return [problem]
        return []

    def lookup(
        self, table: str, key: Any, column: str | None = None, default: Any = _NO_DEFAULT
    ) -> str:
        """``lookup(table, key[, column], default=...)`` in an expression: the value in the
        key's row, in its second column or ``column``; no row is an error naming the table and
        the key, unless a ``default`` is given."""
        found = self.tables.get(table)
        if found is None:
            msg = f"lookup table {table!r} is not loaded (name it as a quoted file name)"
            raise LookupError(msg)
        if column is None:
            index = 1
        elif column in found.header:
            index = found.header.index(column)
        else:
            raise LookupError(found.column_problem(str(column)))
        text = "" if key is None else str(key).strip()
        row = found.rows.get(text)
        if row is None:
            if default is not _NO_DEFAULT:
                return default  # type: ignore[no-any-return]
            msg = f"no row {text!r} in lookup table {found.name} (key column {found.header[0]!r})"
            raise LookupError(msg)
        return row[index]
