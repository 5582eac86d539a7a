"""Fixed-width flat files: fields at 1-based positions, padded, with implied decimals.

Lines end with CRLF, LF, or nothing at all (``record_length``: one long line of fixed-length
records, the legacy way). Padding is stripped on the side the layout declares; a line longer
than its record, with text past the last field, is an overflow error naming the field and
its columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edigw.formats.flat import FlatReader, Parsed, cut_number, fail, number_problem, record_layout
from edigw.formats.layout import FlatField
from edigw.model import Location


class FixedWidthReader(FlatReader):
    """Reads ``format: flat-fixed`` files, streaming."""

    fixed = True

    def cut(self, handle: Any, file: str) -> Iterator[Parsed]:
        layout = self.layout
        start, end = layout.type_slice
        plans = {
            rtype: [
                (f, f.start, f.end, f.decimals is not None or f.numeric, f.pad != " ")
                for f in rec.fields
            ]
            for rtype, rec in layout.records.items()
        }
        for line, text in _lines(handle, layout.record_length):
            if not text.strip():
                continue
            if line == 1 and text.startswith("\ufeff"):
                text = text[1:]
            rtype = text[start:end].strip()
            rec = record_layout(layout, rtype, line, file)
            if rec is None:
                continue
            if len(text) > rec.length and text[rec.length :].strip():
                last = _last_field(rec.fields, rec.length)
                extra = text[rec.length :].rstrip()
                msg = (
                    f"the line overflows its last field: {len(extra)} more character(s) "
                    f"past column {rec.length} ({extra[:20]!r})"
                )
                raise fail(
                    msg,
                    Location(
                        file,
                        line=line,
                        record_type=rtype,
                        field=last.name,
                        columns=last.columns,
                    ),
                )
            values: list[str | None] = []
            for fld, begin, stop, number, unpad in plans[rtype]:
                raw = text[begin:stop]
                if number:
                    digits = raw.strip()
                    if digits.isdigit() and digits.isascii() and not fld.decimals:
                        values.append(digits.lstrip("0") or "0")
                        continue
                    try:
                        values.append(cut_number(raw, fld))
                    except ValueError:
                        msg = number_problem(fld, raw)
                        raise fail(
                            msg,
                            Location(
                                file,
                                line=line,
                                record_type=rtype,
                                field=fld.name,
                                columns=fld.columns,
                            ),
                        ) from None
                    continue
                value = raw.strip()
                if unpad and value:
                    value = value.lstrip(fld.pad) if fld.align == "right" else value.rstrip(fld.pad)
                values.append(value or None)
            yield line, rec, values


def _lines(handle: Any, record_length: int | None) -> Iterator[tuple[int, str]]:
    """``(number, text)`` per line, or per fixed-length record when the file has no line ends."""
    if record_length is None:
        for number, text in enumerate(handle, start=1):
            yield number, text.rstrip("\r\n")
        return
    number = 0
    while True:
        chunk = handle.read(record_length)
        if not chunk:
            return
        number += 1
        yield number, chunk.rstrip("\r\n")


def _last_field(fields: tuple[FlatField, ...], length: int) -> FlatField:
    return (
        max(fields, key=lambda f: f.end)
        if fields
        else FlatField("?", 0, 0, length, "left", " ", None, False)
    )
