"""Checks on a text file (CSV, flat file) before a reader parses it.

* **Control characters.** NUL and the other C0 controls (tab, CR and LF aside) have no place
  in a partner's text: PostgreSQL refuses NUL in text, XML exports break on them. Unless the
  flow allows them (``limits: {control_characters: allow}``), the first one fails the file,
  located by line and column and named (``U+0000 (NUL)``), so none reaches Ecolix or the
  journal.
* **Line length.** A line of 50 million separators is a list of 50 million cells: a line
  over ``limits.max_line_chars`` fails the file before any reader splits it.

Both run over the raw bytes when the encoding writes ASCII as single bytes (UTF-8, cp1252,
latin-1): one ``bytes.translate`` and two ``find`` per megabyte, all in C. UTF-16 and UTF-32
files are checked on their decoded text instead.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.encoding import ascii_compatible, locate_offset
from edigw.formats.limits import ReaderLimits, over
from edigw.model import Location

_CHUNK = 1 << 20
_C0 = bytes(b for b in range(32) if b not in b"\t\n\r")
_NOT_C0 = bytes(b for b in range(256) if b not in _C0)
_C0_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_LINES = re.compile(".*?(?:\r\n|\n|\r)|.+", re.DOTALL)  # lines as text files cut them
_C0_NAMES = [
    "NUL",
    "SOH",
    "STX",
    "ETX",
    "EOT",
    "ENQ",
    "ACK",
    "BEL",
    "BS",
    "HT",
    "LF",
    "VT",
    "FF",
    "CR",
    "SO",
    "SI",
    "DLE",
    "DC1",
    "DC2",
    "DC3",
    "DC4",
    "NAK",
    "SYN",
    "ETB",
    "CAN",
    "EM",
    "SUB",
    "ESC",
    "FS",
    "GS",
    "RS",
    "US",
]
_HINTS = {0: "NUL", 0x1A: "SUB, the old DOS end-of-file mark", 0x0C: "FF, form feed"}


def describe_control(code: int) -> str:
    """``U+0000 (NUL)``: how a control character is named in messages."""
    return f"U+{code:04X} ({_HINTS.get(code, _C0_NAMES[code])})"


def control_problem(code: int, location: Location, what: str = "") -> DataProblem:
    msg = (
        f"control character {describe_control(code)}{what}: refused (a partner file may not "
        "carry it; set limits.control_characters: allow on the flow to accept it)"
    )
    return DataProblem(msg, location)


def first_control(data: bytes) -> int:
    """Index of the first C0 control byte (tab, CR, LF aside) in ``data``, or -1."""
    found = data.translate(None, _NOT_C0)
    if not found:
        return -1
    return min(data.find(bytes((b,))) for b in set(found))


def check_text_file(
    path: Path,
    *,
    source_name: str,
    encoding: str,
    limits: ReaderLimits,
    check_lines: bool = True,
) -> int:
    """Refuse control characters and over-long lines in ``path`` (see the module docstring).

    Returns the number of physical lines (ended by LF, CRLF or CR, as Python's text files
    and the csv module count them), so that a reader can check that its records and the
    file's lines add up.
    """
    if not check_lines:  # records cut by length, not by lines
        limits = replace(limits, max_line_chars=1 << 62)
    if ascii_compatible(encoding):
        return _check_bytes(path, source_name, encoding, limits)
    return _check_decoded(path, source_name, encoding, limits)


def _check_bytes(path: Path, name: str, encoding: str, limits: ReaderLimits) -> int:
    refuse = limits.refuse_controls
    longest = limits.max_line_chars
    lines = 0
    last = b""
    with path.open("rb") as handle:
        offset = 0  # of the chunk in the file
        line_start = 0  # offset of the line being read
        while chunk := handle.read(_CHUNK):
            carriage = b"\r" in chunk  # most files end lines with LF only
            lines += chunk.count(b"\n")
            if carriage:
                lines += chunk.count(b"\r") - chunk.count(b"\r\n")
                if last == b"\r" and chunk.startswith(b"\n"):
                    lines -= 1  # one CRLF across two chunks
            last = chunk[-1:]
            if refuse:
                bad = first_control(chunk)
                if bad >= 0:
                    line, column, _ = locate_offset(handle, offset + bad, encoding)
                    where = Location(name, line=line, column=column)
                    raise MalformedFileError(control_problem(chunk[bad], where))
            newline = _first_newline(chunk, carriage=carriage)
            if newline < 0:
                if offset + len(chunk) - line_start > longest:
                    _check_line(handle, name, encoding, line_start, longest)
            else:
                if offset + newline - line_start > longest:
                    _check_line(handle, name, encoding, line_start, longest)
                if len(chunk) > longest:  # a small limit: lines inside the chunk too
                    _check_inner_lines(handle, chunk, offset, name, encoding, longest)
                end = (
                    max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) if carriage else chunk.rfind(b"\n")
                )
                line_start = offset + end + 1
            offset += len(chunk)
            handle.seek(offset)
    return lines + (1 if last not in (b"", b"\n", b"\r") else 0)


def _first_newline(chunk: bytes, *, carriage: bool = True) -> int:
    lf = chunk.find(b"\n")
    cr = chunk.find(b"\r") if carriage else -1
    return lf if cr < 0 else cr if lf < 0 else min(lf, cr)


def _check_inner_lines(
    handle: BinaryIO, chunk: bytes, offset: int, name: str, encoding: str, longest: int
) -> None:
    if max(map(len, chunk.splitlines())) <= longest:
        return
    position = 0
    for text in chunk.splitlines(keepends=True):
        if len(text.rstrip(b"\r\n")) > longest:
            _check_line(handle, name, encoding, offset + position, longest)
        position += len(text)


def _check_line(handle: BinaryIO, name: str, encoding: str, start: int, longest: int) -> None:
    """The line at byte ``start`` has over ``longest`` bytes: fail if also in characters."""
    handle.seek(start)
    head = handle.read(longest * 4 + 8)
    end = _first_newline(head)
    text = (head if end < 0 else head[:end]).decode(encoding, errors="replace")
    if len(text) <= longest:
        return
    line, _, _ = locate_offset(handle, start, encoding)
    msg = f"the line has more than {longest:,} characters, {over(longest, 'max_line_chars')}"
    raise MalformedFileError(DataProblem(msg, Location(name, line=line)))


def _check_decoded(path: Path, name: str, encoding: str, limits: ReaderLimits) -> int:
    """The same checks on decoded text (UTF-16, UTF-32), slower but rare."""
    line, column = 1, 1  # where the chunk starts
    run = 0  # characters of the current line before the chunk
    longest = limits.max_line_chars
    last = ""
    try:
        with path.open(encoding=encoding, newline="") as handle:
            while chunk := handle.read(_CHUNK):
                if last == "\r" and chunk.startswith("\n"):
                    chunk = chunk[1:]  # the LF of a CRLF across two chunks
                    if not chunk:
                        continue
                if limits.refuse_controls and (found := _C0_TEXT.search(chunk)):
                    at = _advance(line, column, chunk[: found.start()])
                    where = Location(name, line=at[0], column=at[1])
                    raise MalformedFileError(control_problem(ord(found.group()), where))
                for number, part in enumerate(_LINES.findall(chunk)):
                    size = len(part.rstrip("\r\n")) + (run if number == 0 else 0)
                    if size > longest:
                        msg = (
                            f"the line has more than {longest:,} characters, "
                            f"{over(longest, 'max_line_chars')}"
                        )
                        where = Location(name, line=line + number)
                        raise MalformedFileError(DataProblem(msg, where))
                    run = 0 if part.endswith(("\n", "\r")) else size
                line, column = _advance(line, column, chunk)
                last = chunk[-1:]
    except UnicodeDecodeError:
        return -1  # the reader reports it, located
    return line - (1 if last in ("", "\n", "\r") else 0)


def _advance(line: int, column: int, text: str) -> tuple[int, int]:
    """Line and column after ``text``, starting at ``line``/``column``."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    if not breaks:
        return line, column + len(text)
    last = max(text.rfind("\n"), text.rfind("\r"))
    return line + breaks, len(text) - last
