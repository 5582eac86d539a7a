"""Text encoding of partner files: detect it from the whole file, and say which, or why not.

French partners send both UTF-8 and Windows-1252 ("ANSI") files, often without saying which,
and Excel's "Unicode text" export is UTF-16. ``auto`` decides from the whole file (a guess
made from the first kilobytes would turn an ``é`` at line 90,000 into mojibake):

* a byte-order mark names the encoding: UTF-8, UTF-16 or UTF-32 (read as such);
* NUL bytes every other byte without a mark are UTF-16 without a BOM: refused by name
  (set ``encoding: utf-16-le`` to read it), rather than read as column names full of NULs;
* valid UTF-8 throughout is UTF-8;
* UTF-8 multibyte sequences *and* bytes invalid in UTF-8 are a file of mixed encodings (one
  cp1252 line pasted into a UTF-8 file): an error at the first bad byte, never a silent
  switch to cp1252 that would post "ZoÃ© MÃ¼ller" to Ecolix;
* high bytes and no UTF-8 sequence at all: cp1252, or latin-1 when it holds bytes cp1252
  leaves undefined.

The checks run in C chunk by chunk (the incremental decoder, ``translate``), so the pass
costs little next to parsing.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import BinaryIO

from edigw.errors import DataProblem, MalformedFileError
from edigw.model import Location

AUTO = "auto"
_CHUNK = 1 << 20
# Bytes that cp1252 leaves undefined: a file holding them is latin-1 (ISO 8859-1), not cp1252.
_CP1252_HOLES = b"\x81\x8d\x8f\x90\x9d"
_NOT_HOLES = bytes(b for b in range(256) if b not in _CP1252_HOLES)
# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ASCII = bytes(range(128))


def detect_encoding(path: Path, *, source_name: str | None = None) -> str:
    """The encoding of ``path`` read whole (see the module docstring); ``MalformedFileError``
    for UTF-16 without a BOM and for mixed encodings."""
    name = source_name or path.name
    with path.open("rb") as handle:
        head = handle.read(_CHUNK)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                return encoding
        _refuse_wide_without_bom(head, name)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0  # of the current chunk in the file
        chunk = head
        while chunk:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + max(exc.start - len(exc.object) + len(chunk), 0)
                return _not_utf8(handle, name, bad)
            offset += len(chunk)
            chunk = handle.read(_CHUNK)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _not_utf8(handle, name, max(offset - 3, 0))
    return "utf-8"


def _not_utf8(handle: BinaryIO, name: str, bad: int) -> str:
    """After a byte invalid in UTF-8 at offset ``bad``: cp1252/latin-1, or a mixed file.

    A well-formed UTF-8 multibyte sequence anywhere makes it a mixed file. The decoder finds
    them in C: with the invalid bytes dropped, a chunk holds one exactly when what is left is
    not ASCII (``isascii`` reads a flag of the string).
    """
    handle.seek(0)
    holes = False
    decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
    while chunk := handle.read(_CHUNK):
        if not decoder.decode(chunk).isascii():
            raise _mixed(handle, name, bad)
        holes = holes or bool(chunk.translate(None, _NOT_HOLES))
    return "latin-1" if holes else "cp1252"


def _mixed(handle: BinaryIO, name: str, bad: int) -> MalformedFileError:
    line, column, snippet = locate_offset(handle, bad, "utf-8")
    msg = (
        f"byte {snippet[:1].hex(' ').upper()} is not UTF-8, yet the file holds UTF-8 text "
        "elsewhere: a file of mixed encodings. Ask the partner for one encoding, or set the "
        "flow's encoding (utf-8 or cp1252) to read it as one"
    )
    return MalformedFileError(DataProblem(msg, Location(name, line=line, column=column)))


def _refuse_wide_without_bom(head: bytes, name: str) -> None:
    """UTF-16/32 text without a byte-order mark has NULs at fixed places between characters."""
    size = min(len(head), 4096) // 4 * 4
    sample = head[:size]
    if size < 4 or b"\x00" not in sample:
        return
    nul = [sample[i::4].count(0) / (size // 4) > 0.7 for i in range(4)]
    text = [sample[i::4].count(0) / (size // 4) < 0.3 for i in range(4)]
    if text[0] and nul[1] and nul[2] and nul[3]:
        wide = "UTF-32 little-endian (utf-32-le)"
    elif nul[0] and nul[1] and nul[2] and text[3]:
        wide = "UTF-32 big-endian (utf-32-be)"
    elif text[0] and nul[1] and text[2] and nul[3]:
        wide = "UTF-16 little-endian (utf-16-le)"
    elif nul[0] and text[1] and nul[2] and text[3]:
        wide = "UTF-16 big-endian (utf-16-be)"
    else:
        return
    msg = (
        f"the file looks like {wide} text without a byte-order mark (NUL bytes between the "
        "characters); set the flow's encoding to it, or ask the partner for UTF-8"
    )
    raise MalformedFileError(DataProblem(msg, Location(name, line=1)))


def resolve_encoding(
    path: Path, wanted: str | None, *, source_name: str | None = None
) -> tuple[str, bool]:
    """The encoding to read ``path`` with, and whether it was detected rather than given."""
    if wanted is None or wanted == AUTO:
        return detect_encoding(path, source_name=source_name), True
    try:
        codecs.lookup(wanted)
    except LookupError as exc:
        msg = f"unknown encoding {wanted!r}"
        raise MalformedFileError(DataProblem(msg, Location(source_name or path.name))) from exc
    return wanted, False


def ascii_compatible(encoding: str) -> bool:
    """Whether ``encoding`` writes ASCII (so NUL, tab and line ends) as the same single bytes:
    then byte-level checks see exactly the characters."""
    try:
        return _ASCII.decode(encoding) == _ASCII.decode("ascii") and codecs.lookup(
            encoding
        ).name not in ("utf-16", "utf-32", "utf-7")
    except (UnicodeDecodeError, LookupError):
        return False


def decode_error(path: Path, source_name: str, encoding: str) -> MalformedFileError:
    """A whole-file error naming the line and column of the first bytes ``encoding`` cannot
    decode."""
    line, column, snippet = _first_undecodable(path, encoding)
    msg = (
        f"cannot decode bytes {snippet!r} as {encoding}; set the flow's or mapping's "
        "encoding to the one the partner uses (utf-8, utf-8-sig, cp1252) or to auto"
    )
    return MalformedFileError(DataProblem(msg, Location(source_name, line=line, column=column)))


def _first_undecodable(path: Path, encoding: str) -> tuple[int | None, int | None, bytes]:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # The decoder may hold back a few bytes of the previous chunk: good enough.
                bad = offset + max(exc.start - len(exc.object) + len(chunk), 0)
                return locate_offset(handle, bad, encoding)
            offset += len(chunk)
    return None, None, b""


def locate_offset(handle: BinaryIO, offset: int, encoding: str) -> tuple[int, int, bytes]:
    """``(line, column, two bytes)`` of byte ``offset``: lines end with LF, CRLF or CR, the
    column counts characters of the line before it (as ``encoding`` reads them)."""
    handle.seek(0)
    line = 1
    start = 0  # offset of the current line
    read = 0
    previous_cr = False
    while read < offset:
        chunk = handle.read(min(_CHUNK, offset - read))
        if not chunk:
            break
        lf, cr, crlf = chunk.count(b"\n"), chunk.count(b"\r"), chunk.count(b"\r\n")
        if previous_cr and chunk.startswith(b"\n"):
            crlf += 1  # a CRLF across two chunks is one line end
        line += lf + cr - crlf
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last >= 0:
            start = read + last + 1
        previous_cr = chunk.endswith(b"\r")
        read += len(chunk)
    handle.seek(start)
    before = handle.read(offset - start)
    snippet = handle.read(2)
    column = len(before.decode(encoding, errors="replace")) + 1
    return line, column, snippet
