"""Record-typed delimited files: ``ENT;...`` / ``LIG;...`` lines, the type in a declared column.

Each record type names its columns in order (or by ``column``); numbers with ``decimals``
or ``numeric`` are checked as they are read. Structure and trailers: ``edigw.formats.flat``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, NamedTuple

from edigw.formats.csv import open_quote, raise_field_size_limit, unreadable
from edigw.formats.flat import FlatReader, Parsed, cut_number, fail, number_problem, record_layout
from edigw.formats.limits import over
from edigw.model import Location


class DelimitedRecordsReader(FlatReader):
    """Reads ``format: flat-delimited`` files, streaming."""

    fixed = False

    def cut(self, handle: Any, file: str) -> Iterator[Parsed]:
        layout = self.layout
        raise_field_size_limit(self.limits)
        if layout.quote is None:
            rows = csv.reader(
                handle, delimiter=layout.delimiter, quoting=csv.QUOTE_NONE, strict=True
            )
        else:
            rows = csv.reader(
                handle, delimiter=layout.delimiter, quotechar=layout.quote, strict=True
            )
        type_column = layout.type_column
        widths = {t: max(f.index for f in r.fields) + 1 for t, r in layout.records.items()}
        end = 0
        try:
            for cells in rows:
                line = end + 1
                end = rows.line_num
                if end != line:
                    self._spanning(cells, line, end, file)
                if not cells or not any(c.strip() for c in cells):
                    continue
                if line == 1 and cells[0].startswith("\ufeff"):
                    cells[0] = cells[0][1:]
                rtype = cells[type_column].strip() if type_column < len(cells) else ""
                rec = record_layout(layout, rtype, line, file)
                if rec is None:
                    continue
                fields = rec.fields
                width = widths[rtype]
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    msg = f"{len(cells)} fields where the layout of {rtype} declares {width}"
                    raise fail(
                        msg,
                        Location(file, line=line, column=width + 1, record_type=rtype),
                    )
                values: list[str | None] = []
                for fld in fields:
                    raw = cells[fld.index] if fld.index < len(cells) else ""
                    if fld.decimals is not None or fld.numeric:
                        try:
                            values.append(cut_number(raw, fld))
                        except ValueError:
                            raise fail(
                                number_problem(fld, raw),
                                Location(
                                    file,
                                    line=line,
                                    column=fld.index + 1,
                                    record_type=rtype,
                                    field=fld.name,
                                ),
                            ) from None
                    else:
                        values.append(raw or None)
                yield line, rec, values
            if self.physical_lines >= 0 and end != self.physical_lines:
                msg = (
                    f"the reader took {end:,} lines of the {self.physical_lines:,} the file "
                    "has; the file was not read whole (report this file to the edigw "
                    "maintainers)"
                )
                raise fail(msg, Location(file, line=end))
        except csv.Error as exc:
            assert self.path is not None
            raise unreadable(
                exc,
                path=self.path,
                name=file,
                encoding=self.text_encoding,
                start=end + 1,
                quoting=_Quoting(layout.quote or '"', layout.delimiter),
                limits=self.limits,
            ) from exc

    def _spanning(self, cells: list[str], start: int, end: int, file: str) -> None:
        """A record whose quoted value spans lines: refused when a line inside the value
        starts with a record type (a quote left open swallowed records), or when a value is
        over the size limit."""
        layout = self.layout
        longest = self.limits.max_value_chars
        if max(map(len, cells), default=0) > longest:
            msg = (
                f"a value has more than {longest:,} characters, {over(longest, 'max_value_chars')}"
            )
            raise fail(msg, Location(file, line=start))
        for value in cells:
            for inner in value.splitlines()[1:]:
                parts = inner.split(layout.delimiter)
                column = layout.type_column
                if len(parts) > column and parts[column].strip() in layout.records:
                    assert self.path is not None
                    quoting = _Quoting(layout.quote or '"', layout.delimiter)
                    at = open_quote(self.path, self.text_encoding, start, quoting)
                    line, col = at or (start, None)
                    msg = (
                        f"a quoted value opened here runs to line {end} and swallows lines "
                        f"that are records of their own ({parts[column].strip()} ...): a "
                        "quote is probably missing"
                    )
                    raise fail(msg, Location(file, line=line, column=col))


class _Quoting(NamedTuple):
    quote: str
    delimiter: str
