"""Text encoding of partner files: detect UTF-8 (with or without BOM) or cp1252, and say which.

French partners send both UTF-8 and Windows-1252 ("ANSI") files, often without saying which.
A full pass that checks UTF-8 validity costs little next to parsing (it runs in C, chunk by
chunk), and a guess made from the first kilobytes would turn an ``é`` at line 90,000 into
mojibake, so detection reads the whole file once.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from edigw.errors import DataProblem, MalformedFileError
from edigw.model import Location

AUTO = "auto"
SUPPORTED = ("utf-8", "utf-8-sig", "cp1252", "latin-1")
_CHUNK = 1 << 20
# Bytes that cp1252 leaves undefined: a file holding them is latin-1 (ISO 8859-1), not cp1252.
_CP1252_HOLES = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` (valid throughout), else ``cp1252`` (or ``latin-1``)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    holes = False
    with path.open("rb") as handle:
        head = handle.read(3)
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        chunk = head + handle.read(_CHUNK)
        utf8 = True
        while chunk:
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if not utf8 and not holes:
                holes = any(hole in chunk for hole in _CP1252_HOLES)
            chunk = handle.read(_CHUNK)
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8"
    return "latin-1" if holes else "cp1252"


def resolve_encoding(path: Path, wanted: str | None) -> tuple[str, bool]:
    """The encoding to read ``path`` with, and whether it was detected rather than given."""
    if wanted is None or wanted == AUTO:
        return detect_encoding(path), True
    try:
        codecs.lookup(wanted)
    except LookupError as exc:
        msg = f"unknown encoding {wanted!r}"
        raise MalformedFileError(DataProblem(msg, Location(path.name))) from exc
    return wanted, False


def decode_error(path: Path, source_name: str, encoding: str) -> MalformedFileError:
    """A whole-file error naming the line of the first bytes ``encoding`` cannot decode."""
    line, snippet = _first_undecodable(path, encoding)
    msg = (
        f"cannot decode bytes {snippet!r} as {encoding}; set the flow's or mapping's "
        "encoding to the one the partner uses (utf-8, utf-8-sig, cp1252) or to auto"
    )
    return MalformedFileError(DataProblem(msg, Location(source_name, line=line)))


def _first_undecodable(path: Path, encoding: str) -> tuple[int | None, bytes]:
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # The decoder may hold back a few bytes of the previous chunk: good enough.
                start = max(exc.start - len(exc.object) + len(chunk), 0)
                return newlines + chunk[:start].count(b"\n") + 1, chunk[start : start + 2]
            newlines += chunk.count(b"\n")
    return None, b""
