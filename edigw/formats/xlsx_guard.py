"""An Excel workbook inspected before the Excel library reads it.

calamine (the Rust library behind the reader) reads a sheet whole into a dense grid from its
first to its last cell, 32 bytes per cell, and aborts the process when an allocation fails.
So a 4.9 KB workbook with one cell at ``XFD1048576`` asks for 512 GiB and kills the gateway,
and one at ``Z1000000`` costs 850 MB. Its other amplifiers: shared strings (every cell that
refers to one gets its own copy), one huge cell, zip members whose real size lies against the
zip's directory. This module measures each of them on the workbook's XML, streamed from the
zip with its size checked, before calamine sees the file:

* the zip: readable, at most ``MAX_ENTRIES`` parts, no part compressed like a bomb, all parts
  together under the flow's ``max_expanded_bytes`` (and the mapping's ``max_size``);
* the sheet's cells: the area from its first to its last cell holding a value, under
  ``max_cells``. The ``<dimension>`` a sheet declares is not trusted (it may lie either way,
  and Excel's own "used range" counts formatted empty cells, which calamine skips);
* every text (a cell's, a shared string's) under ``max_value_chars`` bytes as stored;
* the shared strings: at most ``max_cells`` of them, and the text the sheet's cells repeat
  from them under ``max_expanded_bytes``;
* control characters, raw or written ``_x0000_``: noted, so that the reader can name the
  first cell that holds one.

The common sheet (every cell written ``<c r="B7" ...>``, as Excel, LibreOffice and openpyxl
write them) is measured with a few C-level passes per megabyte; any other (cells without a
reference, namespace prefixes, unusual spacing) is measured exactly with lxml, reproducing
how calamine places its cells, which is slower but rare.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.limits import ReaderLimits, over
from edigw.formats.text import describe_control, first_control
from edigw.model import Location

DEFAULT_MAX_SIZE = 200 * 1024 * 1024  # the mapping's source.max_size default (uncompressed)
MAX_ENTRIES = 10_000
MAX_RATIO = 200  # uncompressed / compressed, per member of a reasonable size
MAX_MAIN_PART = 16 * 1024 * 1024  # workbook.xml and its relationships
CELL_BYTES = 32  # what calamine spends per cell of the area it reads
_CHUNK = 1 << 20
_DIGITS = b"0123456789"
_LETTERS_AND_ZERO = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0"
# The value of every attribute named r (or ending in r): cells' and rows' references, a
# duplicate r, unusual spacing or quotes included (calamine keeps a cell's last r).
_ANY_R = re.compile(rb"""r\s*=\s*["']([A-Za-z]*[0-9]+)""")
_CELL_START = re.compile(rb'<c r="([A-Za-z]+[0-9]+)"')
_ESCAPED_CONTROL = re.compile(rb"_x00(?:0[0-8BbCcEeFf]|1[0-9A-Fa-f])_")
_ESCAPED_CONTROL_TEXT = re.compile(r"_x00(?:0[0-8BbCcEeFf]|1[0-9A-Fa-f])_")
_CONTROL_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the reader needs to know once the workbook passed: whether some text holds a
    control character (the reader then finds the cell)."""

    controls: bool


@dataclass(slots=True)
class _Area:
    """Cells seen so far: their span, how many, what text they repeat from shared strings."""

    top: int = 1 << 30
    bottom: int = -1
    left: int = 1 << 30
    right: int = -1
    cells: int = 0
    repeated: int = 0

    def add(self, row: int, column: int) -> None:
        self.top = min(self.top, row)
        self.bottom = max(self.bottom, row)
        self.left = min(self.left, column)
        self.right = max(self.right, column)
        self.cells += 1

    @property
    def size(self) -> int:
        if self.bottom < 0:
            return 0
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)


def inspect_workbook(
    path: Path,
    name: str,
    *,
    sheet: str | int,
    limits: ReaderLimits,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Inspection:
    """Refuse the workbook when reading ``sheet`` would go over ``limits``; else say what the
    reader must still look at. Unknown sheets pass (calamine names the sheets it has)."""
    with _open_archive(path, name) as archive:
        check_members(archive, name, limits=limits, max_size=max_size)
        _check_other_parts(archive, name)
        part, sheet_name = _sheet_part(archive, sheet, name)
        if part is None:
            return Inspection(controls=False)
        lengths, controls = _shared_strings(archive, name, limits)
        area, sheet_controls = _scan_sheet(archive, part, name, sheet_name, limits, lengths)
    _check_area(area, name, sheet_name, limits)
    return Inspection(controls=controls or sheet_controls)


def check_archive(
    path: Path, source_name: str, *, max_size: int = DEFAULT_MAX_SIZE, limits: ReaderLimits
) -> None:
    """Refuse corrupt archives and zip bombs before any decompression happens."""
    with _open_archive(path, source_name) as archive:
        check_members(archive, source_name, limits=limits, max_size=max_size)


def _open_archive(path: Path, name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _malformed(name, f"not an .xlsx workbook (corrupt or another format): {exc}") from exc


def check_members(
    archive: zipfile.ZipFile, name: str, *, limits: ReaderLimits, max_size: int
) -> None:
    members = archive.infolist()
    if len(members) > MAX_ENTRIES:
        raise _malformed(name, f"the workbook holds {len(members)} parts; refused")
    total = sum(m.file_size for m in members)
    if total > max_size:
        msg = f"the workbook expands to {total:,} bytes, over the {max_size:,} byte limit; refused"
        raise _malformed(name, msg)
    if total > limits.max_expanded_bytes:
        msg = (
            f"the workbook expands to {total:,} bytes, "
            f"{over(limits.max_expanded_bytes, 'max_expanded_bytes', 'bytes')}"
        )
        raise _malformed(name, msg)
    for member in members:
        if member.file_size > 1 << 20 and member.file_size > MAX_RATIO * max(
            member.compress_size, 1
        ):
            msg = (
                f"part {member.filename} is compressed "
                f"{member.file_size // max(member.compress_size, 1)}:1 (a zip bomb?); refused"
            )
            raise _malformed(name, msg)
    if "xl/workbook.xml" not in {m.filename for m in members}:
        raise _malformed(name, "not an .xlsx workbook (no xl/workbook.xml)")


def _read_part(
    archive: zipfile.ZipFile, part: str, name: str, size: int = _CHUNK
) -> Iterator[bytes]:
    """The part's bytes in chunks; a size or checksum that lies against the zip's directory
    is an error naming the part (the zip module stops at the declared size and checks)."""
    declared = archive.getinfo(part).file_size
    total = 0
    try:
        with archive.open(part) as stream:
            while chunk := stream.read(size):
                total += len(chunk)
                yield chunk
    except (
        zipfile.BadZipFile,
        zlib.error,  # a deflate stream that is not one (its directory entry may look fine)
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,
    ) as exc:
        raise _corrupt_part(name, part, exc) from exc
    if total != declared:
        reason = f"{total:,} bytes where {declared:,} are declared"
        raise _corrupt_part(name, part, ValueError(reason))


def _corrupt_part(name: str, part: str, exc: BaseException) -> MalformedFileError:
    msg = (
        f"part {part} of the workbook is corrupt: its bytes do not match what the zip's "
        f"directory declares ({exc}); ask the partner to save the workbook again"
    )
    return _malformed(name, msg)


def _check_other_parts(archive: zipfile.ZipFile, name: str) -> None:
    """Every XML part is read through once, so that none is larger than the zip declares
    (calamine reads styles and relationships whole, trusting the directory)."""
    for info in archive.infolist():
        lowered = info.filename.lower()
        if lowered.endswith((".xml", ".rels")) and not lowered.startswith("xl/worksheets/"):
            if lowered.endswith("sharedstrings.xml"):
                continue  # measured string by string
            for _ in _read_part(archive, info.filename, name):
                pass


def _small_part(archive: zipfile.ZipFile, part: str, name: str) -> Any:
    info = archive.getinfo(part)
    if info.file_size > MAX_MAIN_PART:
        raise _malformed(name, f"part {part} is {info.file_size:,} bytes; refused")
    data = b"".join(_read_part(archive, part, name))
    try:
        # A parser per call: lxml parsers are not to be shared between threads.
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _malformed(name, f"part {part} is not readable XML: {exc}") from exc


def _sheet_part(archive: zipfile.ZipFile, sheet: str | int, name: str) -> tuple[str | None, str]:
    """The zip part of ``sheet`` (by name, or 1-based position as calamine counts), and the
    sheet's name; None when the workbook does not list it."""
    workbook = _small_part(archive, "xl/workbook.xml", name)
    sheets = [el for el in workbook.iter("{*}sheet")]
    if isinstance(sheet, int):
        chosen = sheets[sheet - 1] if 0 < sheet <= len(sheets) else None
    else:
        chosen = next((el for el in sheets if el.get("name") == sheet), None)
    if chosen is None:
        return None, str(sheet)
    sheet_name = chosen.get("name") or str(sheet)
    rel_id = chosen.get(f"{_DOC_RELS}id")
    names = set(archive.namelist())
    if "xl/_rels/workbook.xml.rels" not in names or rel_id is None:
        return None, sheet_name
    rels = _small_part(archive, "xl/_rels/workbook.xml.rels", name)
    target = next(
        (r.get("Target") for r in rels.iter(f"{_RELS}Relationship") if r.get("Id") == rel_id), None
    )
    if not target:
        return None, sheet_name
    part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
    if part not in names:
        msg = (
            f"the workbook lists sheet {sheet_name!r} but holds no part {part}: a corrupt workbook"
        )
        raise _malformed(name, msg)
    return part, sheet_name


def _shared_strings(
    archive: zipfile.ZipFile, name: str, limits: ReaderLimits
) -> tuple[array[int], bool]:
    """The length of each shared string (as stored), and whether one holds a control."""
    lengths: array[int] = array("q")
    controls = False
    parts = [n for n in archive.namelist() if n.lower().endswith("sharedstrings.xml")]
    for part in parts:
        stream = _PartStream(_read_part(archive, part, name))
        guarded = _guard(stream, name, limits)
        try:
            for _, si in etree.iterparse(
                guarded,
                events=("end",),
                tag="{*}si",
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                huge_tree=False,
            ):
                text = "".join(si.itertext())
                lengths.append(len(text))
                if len(lengths) > limits.max_cells:
                    msg = (
                        f"the workbook holds more than {limits.max_cells:,} shared strings, "
                        f"{over(limits.max_cells, 'max_cells')}"
                    )
                    raise _malformed(name, msg)
                if len(text) > limits.max_value_chars:
                    raise _value_too_long(name, f"shared string {len(lengths)}", limits)
                if not controls and (
                    _CONTROL_TEXT.search(text)
                    or ("_x" in text and _ESCAPED_CONTROL_TEXT.search(text))
                ):
                    controls = True
                si.clear()
                while si.getprevious() is not None:
                    del si.getparent()[0]
        except _Stop as exc:
            raise MalformedFileError(exc.problem) from None
        except etree.XMLSyntaxError as exc:
            raise _unreadable_part(name, part, exc) from exc
    return lengths, controls


def _unreadable_part(name: str, part: str, exc: etree.XMLSyntaxError) -> MalformedFileError:
    """lxml refuses what calamine might read (raw control characters above all): the part
    cannot be measured, so the workbook is refused, naming why."""
    message = re.sub(r",? line \d+, column \d+\s*$", "", (exc.msg or str(exc)).strip())
    found = re.search(
        r"(?:Char value (\d+))|(?:Char (0x[0-9A-Fa-f]+) out of allowed range)", message
    )
    if found:
        code = int(found.group(1) or found.group(2), 0 if found.group(2) else 10)
        message = f"it holds the control character {describe_control(code)}, which XML forbids"
    line, column = exc.position if exc.lineno else (None, None)
    where = f" (line {line}, column {column})" if line else ""
    return _malformed(name, f"part {part} of the workbook cannot be read{where}: {message}")


class _PartStream:
    """A zip part as a file for the parser, fed from ``_read_part``'s checked chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, b"")
            if not chunk:
                break
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


class _Stop(Exception):
    def __init__(self, problem: DataProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _guard(stream: _PartStream, name: str, limits: ReaderLimits) -> Any:
    """The stream, refusing a text of over ``max_value_chars`` bytes as it is read."""

    class Guarded:
        run = 0

        def read(self, size: int = -1) -> bytes:
            data = stream.read(size)
            first = data.find(b"<")
            if first < 0:
                self.run += len(data)
            else:
                if self.run + first > limits.max_value_chars:
                    raise _Stop(_value_too_long(name, "a text", limits).problems[0])
                self.run = len(data) - data.rfind(b"<") - 1
            if self.run > limits.max_value_chars:
                raise _Stop(_value_too_long(name, "a text", limits).problems[0])
            return data

    return Guarded()


def _scan_sheet(
    archive: zipfile.ZipFile,
    part: str,
    name: str,
    sheet: str,
    limits: ReaderLimits,
    lengths: array[int],
) -> tuple[_Area, bool]:
    """The sheet's area, and whether a text holds a control character."""
    longest = max(lengths, default=0)
    quick = _scan_common(archive, part, name, sheet, limits)
    if quick is not None:
        area, controls = quick
        # Bounds first (from A1, every cell repeating the longest shared string): the exact
        # count is only needed when they are over a limit.
        if (area.bottom + 1) * (
            area.right + 1
        ) <= limits.max_cells and area.cells * longest <= limits.max_expanded_bytes:
            return area, controls
    return _scan_exact(archive, part, name, sheet, limits, lengths)


def _scan_common(
    archive: zipfile.ZipFile, part: str, name: str, sheet: str, limits: ReaderLimits
) -> tuple[_Area, bool] | None:
    """The quick pass: an upper bound of the area (from A1 to the largest row and column any
    ``r`` attribute names, however it is written). None when a cell does not start
    ``<c r="`` or an element has a namespace prefix: calamine would place it by its
    neighbours, so the exact pass must.

    The sheet's data (from ``<sheetData`` to ``</sheetData>``) is checked with a few counts
    per chunk; what follows it (conditional formats, merged cells, page setup) is checked
    more closely, for calamine goes on reading cells after a ``</sheetData>`` written in a
    comment or an attribute value.
    """
    area = _Area(top=0, left=0)
    columns: set[bytes] = set()
    controls = False
    tail = b""
    run = 0  # bytes since the last "<" before this chunk: a text being read
    longest = limits.max_value_chars
    last_ref = b"A1"
    # Chunks of at most half the longest text: a longer text spans a whole chunk.
    size = max(4096, min(_CHUNK, longest // 2))
    first_chunk, after = True, False
    for data in _read_part(archive, part, name, size):
        chunk = tail + data
        cut = chunk.rfind(b">") + 1
        chunk, tail = chunk[:cut], chunk[cut:]
        if not controls and limits.refuse_controls:
            controls = first_control(chunk) >= 0 or (
                b"_x00" in chunk and _ESCAPED_CONTROL.search(chunk) is not None
            )
        first = chunk.find(b"<")
        if first < 0:
            run += len(chunk)
        else:
            run += first
            if run <= longest:
                run = len(chunk) - chunk.rfind(b"<")
        if run > longest or len(tail) > longest:
            raise _value_too_long(name, f"{sheet}!{last_ref.decode()}", limits, cell=True)
        data_part, rest = chunk, b""
        if first_chunk:
            first_chunk = False
            start = chunk.find(b"<sheetData")  # a prefixed one is found by nothing: all counted
            if start > 0 and b":sheetData" not in chunk[:start]:
                data_part = chunk[start:]
        if not after:
            end = data_part.find(b"</sheetData>")
            if end >= 0:
                data_part, rest, after = data_part[:end], data_part[end:], True
        else:
            data_part, rest = b"", chunk
        cells = data_part.count(b'<c r="')
        if cells != data_part.count(b"<c") or b":c" in data_part or _cells_without_ref(rest):
            return None  # a cell without a leading r="...", or a prefixed element
        refs = _ANY_R.findall(chunk)
        if refs:
            found = _CELL_START.match(chunk, chunk.rfind(b'<c r="'))
            last_ref = found.group(1) if found else last_ref
            columns.update(map(bytes.rstrip, refs, repeat(_DIGITS)))
            # The largest row number, compared as text: without leading zeros and padded to
            # one width, text order is number order (and all of it runs in C).
            digits = map(bytes.lstrip, refs, repeat(_LETTERS_AND_ZERO))
            bottom = int(max(map(bytes.zfill, digits, repeat(16))) or b"0")
            area.bottom = max(area.bottom, bottom - 1)
        area.cells += cells + (rest.count(b'<c r="') if rest else 0)
    columns.discard(b"")
    if columns:
        area.right = max(_column_number(c) for c in columns) - 1
    return area, controls


def _cells_without_ref(text: bytes) -> bool:
    """Whether ``text`` may hold a cell calamine would place by its neighbours: a ``c``
    element (of any prefix, however spaced) that does not start ``<c r="``."""
    if not text or (b"c" not in text):
        return False
    plain = sum(text.count(b"<c" + end) for end in _TAG_ENDS)
    prefixed = any(b":c" + end in text for end in _TAG_ENDS)
    return prefixed or plain != text.count(b'<c r="')


_TAG_ENDS = (b" ", b"\t", b"\n", b"\r", b">", b"/")


def _column_number(letters: bytes) -> int:
    """b"A" → 1, b"Z" → 26, b"AA" → 27."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _reference(row: int, column: int) -> str:
    """0-based row and column → ``B7``."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


_REF = re.compile(r"([A-Za-z]+)([0-9]+)")


def _scan_exact(
    archive: zipfile.ZipFile,
    part: str,
    name: str,
    sheet: str,
    limits: ReaderLimits,
    lengths: array[int],
) -> tuple[_Area, bool]:
    """Every cell, placed as calamine places it: by its ``r`` reference, else after the
    previous cell of its row; only cells that hold a value count (calamine skips the
    others)."""
    area = _Area()
    controls = False
    row_index = col_index = 0
    stream = _PartStream(_read_part(archive, part, name))
    position: tuple[int, int] = (0, 0)
    holds = False
    shared = False
    try:
        context = etree.iterparse(
            _guard(stream, name, limits),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        for event, element in context:
            local = etree.QName(element).localname
            if event == "start":
                if local == "row":
                    number = element.get("r")
                    if number is not None and number.isdigit():
                        row_index = int(number) - 1
                elif local == "c":
                    ref = element.get("r")
                    found = _REF.fullmatch(ref) if ref else None
                    if found:
                        col_index = _column_number(found.group(1).encode()) - 1
                        position = (int(found.group(2)) - 1, col_index)
                    else:
                        position = (row_index, col_index)
                    holds = False
                    shared = element.get("t") == "s"
                continue
            if local in ("v", "t") and element.text:
                holds = True
                text = element.text
                if limits.refuse_controls and (
                    _CONTROL_TEXT.search(text) or _ESCAPED_CONTROL_TEXT.search(text)
                ):
                    controls = True
                if local == "v" and shared and text.strip().isdigit():
                    index = int(text)
                    area.repeated += lengths[index] if index < len(lengths) else 0
            elif local == "is":
                holds = True
            elif local == "c":
                if holds:
                    area.add(*position)
                col_index += 1
                element.clear()
            elif local == "row":
                row_index += 1
                col_index = 0
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
            elif local == "sheetData":
                break
    except _Stop as exc:
        raise MalformedFileError(exc.problem) from None
    except etree.XMLSyntaxError as exc:
        raise _unreadable_part(name, part, exc) from exc
    if area.repeated > limits.max_expanded_bytes:
        msg = (
            f"the sheet's cells repeat {area.repeated:,} characters of shared strings, "
            f"{over(limits.max_expanded_bytes, 'max_expanded_bytes')}"
        )
        raise _malformed(name, msg, cell=f"{sheet}!A1")
    return area, controls


def _check_area(area: _Area, name: str, sheet: str, limits: ReaderLimits) -> None:
    if area.size <= limits.max_cells:
        return
    rows = area.bottom - area.top + 1
    columns = area.right - area.left + 1
    first, last = _reference(area.top, area.left), _reference(area.bottom, area.right)
    msg = (
        f"the sheet's cells span {rows:,} rows x {columns:,} columns ({first}:{last}, "
        f"{area.size:,} cells), {over(limits.max_cells, 'max_cells', 'cells')}"
    )
    raise _malformed(name, msg, cell=f"{sheet}!{last}")


def _value_too_long(
    name: str, where: str, limits: ReaderLimits, *, cell: bool = False
) -> MalformedFileError:
    longest = limits.max_value_chars
    msg = (
        f"a cell holds more than {longest:,} characters, {over(longest, 'max_value_chars')}"
        if cell
        else f"{where} has more than {longest:,} characters, {over(longest, 'max_value_chars')}"
    )
    return _malformed(name, msg, cell=where if cell else None)


def _malformed(source_name: str, message: str, *, cell: str | None = None) -> MalformedFileError:
    return MalformedFileError(DataProblem(message, Location(source_name, cell=cell)))
