"""Hostile and broken partner files, generated (no big file is committed).

Excel workbooks are written with openpyxl, then their parts rewritten by hand where a case
needs what openpyxl would never write (a cell at ``XFD1048576`` with a lying dimension, a
duplicated attribute, a zip directory that lies about a part's size).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl

SHEET = "xl/worksheets/sheet1.xml"
END = "</sheetData>"


def workbook(path: Path, rows: list[list[object]] | None = None, *, title: str = "Comptes") -> Path:
    """A small, clean workbook: a header and two rows (or ``rows``)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for row in rows or [["Code", "Name"], ["C1", "first"], ["C2", "second"]]:
        ws.append(row)
    wb.save(path)
    return path


def far_cell(path: Path, ref: str) -> Path:
    """A 5 KB workbook whose sheet has one more cell, at ``ref`` (e.g. ``XFD1048576``)."""
    workbook(path)
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None
    ws[ref] = "far"
    wb.save(path)
    return path


def rewrite_part(path: Path, change: Callable[[str], str], part: str = SHEET) -> Path:
    """Rewrite one XML part of the workbook with ``change``."""
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    parts[part] = change(parts[part].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in parts.items():
            dst.writestr(name, data)
    return path


def add_rows(path: Path, xml: str) -> Path:
    """Append raw ``<row>`` XML at the end of the sheet's data."""
    return rewrite_part(path, lambda text: text.replace(END, xml + END))


def add_part(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path


def lie_about_size(path: Path, part: str, size: int) -> Path:
    """Make the zip's directory (and the part's local header) declare ``size`` bytes for
    ``part`` whatever its real size."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(part).header_offset
    struct.pack_into("<I", data, offset + 22, size)
    encoded = part.encode()
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46 : position + 46 + name_length]) == encoded:
            struct.pack_into("<I", data, position + 24, size)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))
    return path


def shared_strings_workbook(path: Path, strings: list[str], cells: list[tuple[str, int]]) -> Path:
    """A workbook whose sheet's ``cells`` (reference, index) refer to ``strings``."""
    workbook(path)
    items = "".join(f"<si><t>{text}</t></si>" for text in strings)
    sst = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(cells)}" uniqueCount="{len(strings)}">{items}</sst>'
    )
    add_part(path, "xl/sharedStrings.xml", sst.encode())
    rows: dict[int, list[str]] = {}
    for ref, index in cells:
        number = int("".join(c for c in ref if c.isdigit()))
        rows.setdefault(number, []).append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
    xml = "".join(f'<row r="{n}">{"".join(c)}</row>' for n, c in sorted(rows.items()))
    return add_rows(path, xml)


def corrupt_deflate(path: Path, part: str) -> Path:
    """Make ``part``'s deflate stream invalid from its first byte (a block of the reserved
    type 3), sizes and directory unchanged: only decompressing it tells."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(part).header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    data[offset + 30 + name_length + extra_length] = 0xFF
    path.write_bytes(bytes(data))
    return path
