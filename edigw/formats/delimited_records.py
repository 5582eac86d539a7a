"""Record-typed delimited files: ``ENT;...`` / ``LIG;...`` lines, the type in a declared column.

Each record type names its columns in order (or by ``column``); numbers with ``decimals``
or ``numeric`` are checked as they are read. Structure and trailers: ``edigw.formats.flat``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from edigw.formats.flat import FlatReader, Parsed, cut_number, fail, number_problem, record_layout
from edigw.model import Location


class DelimitedRecordsReader(FlatReader):
    """Reads ``format: flat-delimited`` files, streaming."""

    fixed = False

    def cut(self, handle: Any, file: str) -> Iterator[Parsed]:
        layout = self.layout
        if layout.quote is None:
            rows = csv.reader(handle, delimiter=layout.delimiter, quoting=csv.QUOTE_NONE)
        else:
            rows = csv.reader(handle, delimiter=layout.delimiter, quotechar=layout.quote)
        type_column = layout.type_column
        widths = {t: max(f.index for f in r.fields) + 1 for t, r in layout.records.items()}
        end = 0
        try:
            for cells in rows:
                line = end + 1
                end = rows.line_num
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
        except csv.Error as exc:
            msg = f"unreadable delimited line: {exc}"
            raise fail(msg, Location(file, line=end + 1)) from exc
