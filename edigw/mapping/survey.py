"""What a sample file holds: its columns, elements or terms, with the kind of their values.

``edigw mapping new`` scaffolds a mapping from it, and ``edigw mapping check --sample`` checks
a mapping's selectors against it. A survey reads the sample the way the mapping's reader will
(delimiter, encoding, sheet, header row, document path), or detects those when no mapping
exists yet, and keeps a few hundred values per column: enough to guess a type and a format,
never the whole file.

A survey is a tree of ``Level``: the records of a document (CSV rows, the XML document
element, the flat header record, the invoice), each with its ``Column``s (selector -> what
its values look like) and its ``lists`` (selectors of nested records, for ``each:``).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edigw.errors import EdigwError, MappingError
from edigw.mapping.guess import MAX_ROWS, Column, guess, text_kind, text_of

DELIMITERS = (";", ",", "\t", "|")
MAX_TEXT = 4_000_000  # characters of a text sample read: thousands of rows, never the whole file
MAX_PARSED = 50_000_000  # bytes of an XML or Excel sample parsed whole: give an extract beyond


def bounded(path: Path) -> None:
    """Refuse a sample too big to parse whole (XML, Excel): an extract says as much."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        msg = f"{path}: cannot read the sample: {exc}"
        raise SurveyError(msg) from exc
    if size > MAX_PARSED:
        msg = (
            f"{path.name} is {size:,} bytes: too big a sample to survey whole "
            f"(at most {MAX_PARSED:,}); give an extract of a few documents"
        )
        raise SurveyError(msg)


class SurveyError(EdigwError):
    """The sample cannot be surveyed (unreadable, or a kind of file that needs more input)."""


@dataclass(slots=True)
class Level:
    """The records at one level: their columns, and their nested records (``each:``)."""

    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    lists: dict[str, Level] = field(default_factory=dict)
    count: int = 0  # records seen at this level
    repeats: bool = False  # several per parent (a list), for XML elements
    more: Callable[[str], Level | None] | None = field(default=None, repr=False)

    def child(self, selector: str) -> Level | None:
        """The level of ``each: selector`` (a listed one, or any other the format can find)."""
        found = self.lists.get(selector)
        if found is None and self.more is not None:
            found = self.more(selector)
        return found


@dataclass(slots=True)
class Survey:
    """A surveyed sample: the source block a mapping needs, and its levels."""

    path: Path
    format: str
    source: dict[str, Any]
    top: Level
    notes: list[str] = field(default_factory=list)
    documents: int = 0  # documents (XML elements, header records) or data rows
    runs: dict[str, int] = field(default_factory=dict)  # column -> rows sharing a value in a run


# -- CSV -----------------------------------------------------------------------------------


def _decode(path: Path, encoding: str | None) -> tuple[str, str]:
    from edigw.formats.encoding import resolve_encoding

    try:
        name, _ = resolve_encoding(path, encoding)
        with path.open(encoding=name, newline="") as handle:
            text = handle.read(MAX_TEXT)
        if len(text) == MAX_TEXT:  # a big file: its first lines are enough
            text = text[: text.rfind("\n") + 1]
        return text, name
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path.name}: cannot read the sample: {exc}"
        raise SurveyError(msg) from exc
    except EdigwError as exc:
        raise SurveyError(str(exc)) from exc


def sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter splitting the first lines into the most, and most regular, columns."""
    best, best_score = ",", -1.0
    for candidate in DELIMITERS:
        counts = [len(next(csv.reader([line], delimiter=candidate))) for line in lines if line]
        if not counts or max(counts) < 2:
            continue
        modal = max(set(counts), key=counts.count)
        score = modal * counts.count(modal) / len(counts)
        if score > best_score:
            best, best_score = candidate, score
    return best


def survey_csv(
    path: Path,
    *,
    delimiter: str | None = None,
    quote: str = '"',
    encoding: str | None = None,
    header: bool | None = None,
    columns: Sequence[str] = (),
    skip_lines: int | None = None,
) -> Survey:
    """Columns of a CSV sample; options left None are detected."""
    text, used = _decode(path, encoding)
    lines = text.splitlines()
    notes = [f"encoding {used}" + (" (detected)" if encoding in (None, "auto") else "")]
    if delimiter is None:
        delimiter = sniff_delimiter(lines[:50])
        notes.append(f"delimiter {delimiter!r} (detected)")
    if skip_lines is None:
        skip_lines = _leading_titles(lines[:50], delimiter)
    rows = [
        r
        for r in csv.reader(
            io.StringIO("\n".join(lines[skip_lines:])), delimiter=delimiter, quotechar=quote
        )
    ]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        msg = f"{path.name}: the sample is empty; give a file holding a few records"
        raise SurveyError(msg)
    if header is None:
        header = not columns and bool(rows) and _looks_like_header(rows)
    names: list[str]
    if columns:
        names = list(columns)
    elif header and rows:
        names = [c.strip().lstrip("\ufeff") for c in rows[0]]
        while names and not names[-1]:
            names.pop()
        rows = rows[1:]
    else:
        width = max((len(r) for r in rows), default=0)
        names = [str(i) for i in range(1, width + 1)]
    data = rows[:MAX_ROWS]
    top = Level("rows", count=len(rows))
    for position, name in enumerate(_unique(names)):
        values = [_cell(r, position) for r in data]
        top.columns[name] = guess(name, values, label=f"column {position + 1}")
    source: dict[str, Any] = {"format": "csv"}
    if delimiter != ",":
        source["delimiter"] = delimiter
    if skip_lines:
        source["skip_lines"] = skip_lines
    if not header and not columns:
        source["header"] = False
    source["encoding"] = "auto" if used in ("utf-8", "utf-8-sig") else used
    survey = Survey(path, "csv", source, top, notes, len(rows))
    survey.runs = _runs(names, data)
    return survey


def _cell(row: Sequence[str], position: int) -> str | None:
    if position >= len(row):
        return None
    return row[position].strip() or None


def _unique(names: Iterable[str]) -> list[str]:
    """Repeated labels as the readers address them: ``Label``, ``Label#2``, ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen[name] = seen.get(name, 0) + 1
        out.append(name if count == 1 else f"{name}#{count}")
    return out


def _leading_titles(lines: Sequence[str], delimiter: str) -> int:
    """Lines before the header: those with fewer columns than the table that follows."""
    counts = [
        len(next(csv.reader([line], delimiter=delimiter))) if line.strip() else 0 for line in lines
    ]
    if not counts:
        return 0
    width = max(set(c for c in counts if c), key=counts.count, default=0)
    for index, count in enumerate(counts):
        if count >= width:
            return index
    return 0


def _looks_like_header(rows: Sequence[Sequence[str]]) -> bool:
    """A first row of distinct labels, none of them a number or a date."""
    first = [c.strip() for c in rows[0] if c.strip()]
    if not first or len(set(first)) < len(first):
        return False
    kinds = {text_kind([c])[0] for c in first}
    return kinds <= {"text", "email", "code"} and "code" not in kinds


def _runs(names: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, int]:
    """Per column: the longest run of consecutive rows sharing one value (grouping keys)."""
    runs: dict[str, int] = {}
    for position, name in enumerate(_unique(names)):
        longest = run = 0
        previous: str | None = None
        for row in rows:
            value = _cell(row, position)
            run = run + 1 if value is not None and value == previous else 1
            previous = value
            longest = max(longest, run)
        runs[name] = longest
    return runs


def record_types(path: Path, delimiter: str, encoding: str | None = None) -> list[str]:
    """The first-column words of a record-typed text file (HEADER/LINE, ENT/LIG), if it is one."""
    text, _ = _decode(path, encoding)
    first: list[str] = []
    widths: dict[str, set[int]] = {}
    for line in text.splitlines()[:200]:
        if not line.strip():
            continue
        cells = next(csv.reader([line], delimiter=delimiter))
        word = cells[0].strip()
        first.append(word)
        widths.setdefault(word, set()).add(len(cells))
    kinds = list(dict.fromkeys(first))
    if not 2 <= len(kinds) <= 6 or len(first) < 3:
        return []
    if not all(re.fullmatch(r"[A-Z][A-Z0-9_]{0,11}", k) for k in kinds):
        return []
    if len({min(w) for w in widths.values()}) < 2 and kinds[0] in first[1:2]:
        return []
    return kinds


# -- Excel ---------------------------------------------------------------------------------


def survey_xlsx(
    path: Path,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    first_row: int | None = None,
) -> Survey:
    """Columns of a workbook's sheet; the sheet and header row are detected when not given."""
    import python_calamine

    from edigw.formats.limits import DEFAULT_LIMITS
    from edigw.formats.xlsx_guard import inspect_workbook

    def inspected(name: str | int) -> None:
        """The reader's guard before calamine reads a sheet (a cell at XFD1048576 would
        make it allocate 512 GiB)."""
        try:
            inspect_workbook(path, path.name, sheet=name, limits=DEFAULT_LIMITS)
        except EdigwError as exc:
            raise SurveyError(str(exc)) from exc

    bounded(path)
    try:
        inspected(sheet if sheet is not None else 1)
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except EdigwError as exc:
        raise SurveyError(str(exc)) from exc
    except Exception as exc:  # calamine raises several unrelated types for corrupt files
        msg = f"{path.name}: not a readable .xlsx workbook: {exc}"
        raise SurveyError(msg) from exc
    names = list(workbook.sheet_names)
    notes: list[str] = []
    chosen = sheet
    if chosen is None:
        for name in names:
            inspected(name)
        sizes = {n: len(workbook.get_sheet_by_name(n).to_python()) for n in names}
        chosen = max(names, key=lambda n: sizes[n]) if names else 1
        notes.append(f"sheet {chosen!r} (the fullest of {', '.join(map(repr, names))})")
    try:
        if isinstance(chosen, int):
            data = workbook.get_sheet_by_index(chosen - 1)
        else:
            data = workbook.get_sheet_by_name(chosen)
    except Exception as exc:
        msg = f"{path.name}: sheet {chosen!r} not found (sheets: {', '.join(map(repr, names))})"
        raise SurveyError(msg) from exc
    try:
        rows = data.to_python()
    except Exception as exc:  # calamine raises several unrelated types
        msg = f"{path.name}: sheet {data.name!r} is unreadable: {exc}"
        raise SurveyError(msg) from exc
    start_row, start_col = data.start if data.start else (0, 0)
    offset = start_row  # rows[i] is sheet row offset + i + 1
    if header_row is None:
        header_row = _header_row(rows) + offset + 1
        notes.append(f"header row {header_row} (detected)")
    index = header_row - offset - 1
    if not 0 <= index < len(rows):
        msg = f"{path.name}: sheet {data.name!r} has no header row {header_row}"
        raise SurveyError(msg)
    merged = [r for r in (data.merged_cell_ranges or []) if r[0][0] <= header_row - 1 <= r[1][0]]
    labels = [""] * start_col + [_label(c) for c in rows[index]]
    for (_, first_col), (_, last_col) in merged:
        if first_col < len(labels):
            for column in range(first_col + 1, last_col + 1):
                if column < len(labels) and not labels[column]:
                    labels[column] = labels[first_col]
    start = (first_row or header_row + 1) - offset - 1
    body: list[list[Any]] = []
    for cells in rows[start:]:
        cells = [""] * start_col + list(cells)
        if all(c == "" for c in cells):
            break
        body.append(cells)
    top = Level("rows", count=len(body))
    from edigw.formats.xlsx import column_letter

    seen: dict[str, int] = {}
    for position, label in enumerate(labels):
        if not label:
            continue
        count = seen[label] = seen.get(label, 0) + 1
        selector = label if count == 1 else f"{label}#{count}"
        values = [_xlsx_value(r, position) for r in body[:MAX_ROWS]]
        top.columns[selector] = guess(selector, values, label=column_letter(position))
    source: dict[str, Any] = {"format": "xlsx"}
    if sheet is not None or len(names) > 1:
        source["sheet"] = data.name
    if header_row != 1:
        source["header_row"] = header_row
    survey = Survey(path, "xlsx", source, top, notes, len(body))
    texts = [[text_of(c) for c in r] for r in body[:MAX_ROWS]]
    survey.runs = {
        sel: n for sel, n in _runs([lbl for lbl in labels], texts).items() if sel in top.columns
    }
    return survey


def _label(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _xlsx_value(row: Sequence[Any], position: int) -> Any:
    if position >= len(row):
        return None
    value = row[position]
    return None if value == "" else value


def _header_row(rows: Sequence[Sequence[Any]]) -> int:
    """The first of the first 30 rows made of several text labels followed by data."""
    best, best_count = 0, 0
    for index, row in enumerate(rows[:30]):
        labels = [c for c in row if isinstance(c, str) and c.strip()]
        if len(labels) < 2 or len(labels) < sum(1 for c in row if c != ""):
            continue
        if (
            index + 1 < len(rows)
            and any(c != "" for c in rows[index + 1])
            and len(labels) > best_count
        ):
            best, best_count = index, len(labels)
            if best_count >= max(len(r) for r in rows[:30]) * 0.6:
                break
    return best


# -- flat files and e-invoices -------------------------------------------------------------


def survey_records(path: Path, source: Mapping[str, Any], *, base: Path | None = None) -> Survey:
    """Flat files and e-invoices: the declared fields or terms, valued from the sample."""
    from edigw.formats import reader_for

    block = dict(source)
    if base is not None:
        block.setdefault("_base", str(base))
    try:
        records = list(reader_for(block).records(path, source_name=path.name))
    except EdigwError as exc:
        raise SurveyError(str(exc)) from exc
    kind = str(source["format"])
    top = _einvoice_level(records) if kind == "einvoice" else _flat_level(records, block)
    clean = {k: v for k, v in source.items() if not k.startswith("_")}
    return Survey(path, kind, clean, top, [], len(records))


def _flat_level(records: Sequence[Any], source: Mapping[str, Any]) -> Level:
    from edigw.formats.layout import load_layout

    base = Path(source["_base"]) if "_base" in source else None
    layout = load_layout(source["layout"], base=base)

    def level(rtype: str, items: Sequence[Any], children: Sequence[Any]) -> Level:
        record = layout.records[rtype]
        out = Level(record.alias or rtype, count=len(items))
        for fld in record.fields:
            values = [r.value(fld.name) for r in items[:MAX_ROWS]]
            out.columns[fld.name] = guess(fld.name, values, label=f"{rtype}.{fld.name}")
        for child in children:
            kids = [k for r in items for k in r.children(child.record)]
            name = layout.records[child.record].alias or child.record
            sub = level(child.record, kids, child.children)
            sub.repeats = True
            out.lists[name] = sub
        return out

    return level(layout.header, records, layout.children)


def _einvoice_level(records: Sequence[Any]) -> Level:
    from edigw.einvoice.terms import GROUPS, TERMS

    def level(items: Sequence[Any], group: str | None, name: str) -> Level:
        out = Level(name, count=len(items))
        for term in TERMS:
            if term.group != group:
                continue
            values = [r.value(term.alias) for r in items[:MAX_ROWS]]
            out.columns[term.alias] = guess(term.alias, values, label=term.id or "derived")
        for grp in GROUPS:
            if grp.parent == group:
                kids = [k for r in items for k in r.children(grp.alias)]
                sub = level(kids, grp.id, grp.alias)
                sub.repeats = True
                out.lists[grp.alias] = sub
        return out

    return level(records, None, "invoice")


# -- which survey --------------------------------------------------------------------------


def sniff_format(path: Path) -> str:
    """``xlsx``, ``einvoice``, ``xml`` or ``csv`` from the content, never the file name."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        msg = f"{path}: cannot read the sample: {exc}"
        raise SurveyError(msg) from exc
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                if "xl/workbook.xml" in archive.namelist():
                    return "xlsx"
        except zipfile.BadZipFile:
            pass
        msg = f"{path.name}: a ZIP archive that is no .xlsx workbook"
        raise SurveyError(msg)
    if b"%PDF-" in head[:1024]:
        return "einvoice"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        from edigw.einvoice.detect import detect

        try:
            detect(path.read_bytes(), name=path.name)
        except (EdigwError, OSError):
            return "xml"
        return "einvoice"
    return "csv"


def survey_sample(path: Path, *, layout: str | None = None, base: Path | None = None) -> Survey:
    """Survey ``path`` with every reader option detected (``mapping new``).

    A record-typed text file (HEADER/LINE, ENT/LIG) needs its ``layout`` (a layout file).
    """
    if layout is not None:
        from edigw.formats.layout import load_layout

        try:
            found = load_layout(layout, base=base)
        except MappingError as exc:
            raise SurveyError(str(exc)) from exc
        kind = "flat-fixed" if found.kind == "fixed" else "flat-delimited"
        return survey_records(path, {"format": kind, "layout": layout}, base=base)
    kind = sniff_format(path)
    if kind == "xlsx":
        return survey_xlsx(path)
    if kind == "xml":
        from edigw.mapping.survey_xml import survey_xml

        return survey_xml(path)
    if kind == "einvoice":
        return survey_records(path, {"format": "einvoice"})
    survey = survey_csv(path)
    types = record_types(path, survey.source.get("delimiter", ","))
    if types:
        msg = (
            f"{path.name} holds records of several types ({', '.join(types)} in the first "
            "column): a flat file. Describe them in a layout file (docs/mappings.md, flat files) "
            "and pass it with --layout"
        )
        raise SurveyError(msg)
    return survey


def survey_for(source: Mapping[str, Any], path: Path, *, base: Path | None = None) -> Survey:
    """Survey ``path`` as the mapping whose ``source`` block is given will read it."""
    kind = source.get("format")
    if kind == "csv":
        return survey_csv(
            path,
            delimiter=source.get("delimiter", ","),
            quote=source.get("quote", '"'),
            encoding=source.get("encoding"),
            header=source.get("header", True),
            columns=source.get("columns", ()),
            skip_lines=source.get("skip_lines", 0),
        )
    if kind == "xlsx":
        return survey_xlsx(
            path,
            sheet=source.get("sheet", 1),
            header_row=source.get("header_row", 1),
            first_row=source.get("first_row"),
        )
    if kind == "xml":
        from edigw.mapping.survey_xml import survey_xml

        return survey_xml(
            path, document_path=source.get("document_path"), namespaces=source.get("namespaces")
        )
    return survey_records(path, source, base=base)
