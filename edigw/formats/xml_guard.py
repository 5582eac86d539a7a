"""What the XML reader checks beyond well-formedness: entities, limits, control characters.

* **Entities.** A DTD that declares entities is refused (bombs); an entity reference the
  parser cannot expand (undeclared, or declared in an external DTD that is never loaded) is
  an error at its line and column. libxml2 would keep it out of the text and drop it from an
  attribute value with only a warning: ``XU-1&xxe;`` read as ``XU-1``. Both checks use the
  parser's own view (its DTD, its error log), so they hold in any encoding and after any
  prolog; a quick look at the file's head gives the usual case its line number. Documents
  held whole in memory (e-invoices, mapping samples) are parsed by ``parse_guarded``, with
  the same rules and guards.
* **Limits.** ``GuardedXml`` is the file as the parser reads it, measured as it goes: a text
  or attribute over ``max_value_chars``, a document element over ``max_document_bytes`` or
  ``max_document_tags``, fail the file before the parser builds them. libxml2 bounds nesting
  (256 levels) and one text (10 MB) itself; its errors are put in edigw's words, located.
* **Control characters.** XML 1.0 forbids the C0 controls (tab, CR, LF aside), raw or as
  references: the parser refuses them, and the error names the character.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.limits import XML_MAX_DEPTH, XML_MAX_TEXT, ReaderLimits, over
from edigw.formats.text import describe_control
from edigw.model import Location

_PROLOG_SCAN = 1 << 16

_ENTITY_REFUSAL = (
    "the XML declares entities in its DTD; edigw refuses them (entity-expansion bombs). "
    "Ask the partner to send the file without a DOCTYPE"
)


def refuse_entity_declarations(head: bytes, where: Location) -> None:
    """Refuse XML whose first bytes (``head``) declare DTD entities: the quick look.

    Entity declarations have no place in a partner feed and are how XML bombs work. This
    finds the common case before any parsing, with its line; the parser's own view of the
    DTD (``refuse_dtd_entities``, ``parse_guarded``) catches every other one, whatever the
    encoding or the length of the prolog. ``where`` keeps its ``part`` (a PDF's attachment).
    """
    doctype = head.find(b"<!DOCTYPE", 0, _PROLOG_SCAN)
    if doctype < 0:
        return
    entity = head.find(b"<!ENTITY", doctype, _PROLOG_SCAN)
    if entity >= 0:
        line = head[:entity].count(b"\n") + 1
        raise MalformedFileError(DataProblem(_ENTITY_REFUSAL, _at(where, line)))


def refuse_entity_declarations_in_file(path: Path, source_name: str) -> None:
    """``refuse_entity_declarations`` on the head of the file at ``path``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PROLOG_SCAN)
    except OSError as exc:
        raise MalformedFileError(
            DataProblem(f"cannot read XML: {exc}", Location(source_name))
        ) from exc
    refuse_entity_declarations(head, Location(source_name))


def parse_guarded(xml: bytes, where: Location) -> Any:
    """The root of a whole XML document held in memory (an e-invoice, a sample), parsed with
    the XML reader's rules and guards: no DTD loading, no entity expansion, no network, no
    huge trees; entity declarations refused in any encoding and after any prolog, and no
    entity reference ever dropped. Every problem is a ``MalformedFileError`` at ``where``
    (its ``part`` kept) and the line."""
    refuse_entity_declarations(xml[:_PROLOG_SCAN], where)
    parser = etree.XMLParser(  # one per call: lxml parsers are not shared between threads
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, where) from exc
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        codec = _wide_codec(xml[:256])[2]
        try:
            text = xml.decode(codec, errors="replace")
        except LookupError:
            text = xml.decode("utf-8", errors="replace")
        entity = text.find("<!ENTITY")
        line = text.count("\n", 0, entity) + 1 if entity >= 0 else None
        raise MalformedFileError(DataProblem(_ENTITY_REFUSAL, _at(where, line)))
    refuse_dropped_entities(parser.error_log, where)
    return root


def _at(where: Location, line: int | None, column: int | None = None) -> Location:
    return Location(where.file, line=line, column=column, part=where.part)


def refuse_dtd_entities(tree: Any, path: Path, guarded: GuardedXml) -> None:
    """The parser's own view of the DTD: any entity declared (general or parameter) in any
    encoding, after any prolog, fails the file."""
    dtd = tree.docinfo.internalDTD
    if dtd is None or not any(True for _ in dtd.iterentities()):
        return
    line = _line_of(path, guarded.codec, "<!ENTITY")
    raise MalformedFileError(DataProblem(_ENTITY_REFUSAL, Location(guarded.name, line=line)))


def _line_of(path: Path, encoding: str, text: str) -> int | None:
    """The first line holding ``text``, reading ``path`` as ``encoding`` (errors path)."""
    try:
        with path.open(encoding=encoding, errors="replace", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                if text in line:
                    return number
    except (LookupError, OSError, UnicodeError):
        pass
    return None


def refuse_dropped_entities(log: Any, where: Location) -> None:
    """libxml2 keeps an entity it cannot expand (undeclared, or declared in an external
    DTD it does not load) out of the text, or drops it from an attribute value, with only a
    warning: ``XU-1&xxe;`` would be read as ``XU-1``. Edigw never drops one."""
    for entry in log:
        if "ENTITY" in entry.type_name:  # WAR_UNDECLARED_ENTITY and its kin
            raise MalformedFileError(_entity_problem(entry.message, entry, where))


def _entity_problem(message: str, entry: Any, where: Location) -> DataProblem:
    found = re.search(r"Entity '([^']+)'", message)
    name = f"&{found.group(1)};" if found else "an entity reference"
    msg = (
        f"the entity reference {name} is not defined here (edigw neither loads DTDs nor "
        "drops what it cannot expand): ask the partner to write the character itself, or "
        "only &amp; &lt; &gt; &quot; &apos; and &#...; references"
    )
    return DataProblem(msg, _at(where, entry.line or None, entry.column or None))


def syntax_error(exc: etree.XMLSyntaxError, where: Location) -> MalformedFileError:
    """libxml2's error, in edigw's words where it is about a limit or a forbidden character."""
    entry = next((e for e in exc.error_log if e.level >= etree.ErrorLevels.ERROR), None)
    message = exc.msg or str(exc)
    line, column = exc.position if exc.lineno else (None, None)
    if entry is not None and (not exc.lineno or "no element found" in message):
        message, line, column = entry.message, entry.line, entry.column
    if entry is not None and "ENTITY" in entry.type_name:
        return MalformedFileError(_entity_problem(entry.message, entry, where))
    where = _at(where, line or None, column or None)
    control = _CONTROL.search(message)
    if control:
        code = int(control.group(1) or control.group(2), 0 if control.group(2) else 10)
        return MalformedFileError(
            DataProblem(
                f"control character {describe_control(code)}: XML 1.0 forbids it "
                "(the flow's control_characters setting cannot admit it in XML)",
                where,
            )
        )
    if "Excessive depth" in message:
        return MalformedFileError(
            DataProblem(
                f"elements nested deeper than {XML_MAX_DEPTH} levels, edigw's XML limit", where
            )
        )
    if "too long" in message or "huge" in message or "Buffer size limit" in message:
        return MalformedFileError(
            DataProblem(
                f"a text or attribute value over {XML_MAX_TEXT:,} bytes, edigw's XML limit", where
            )
        )
    message = re.sub(r", line \d+, column \d+\s*$", "", message.strip())
    return MalformedFileError(DataProblem(f"malformed XML: {message}", where))


_CONTROL = re.compile(
    r"(?:invalid (?:xml)?Char value (\d+))|(?:Char (0x[0-9A-Fa-f]+) out of allowed range)"
)


class Refused(Exception):
    """Raised from inside the parser's read: the file went over a limit."""

    def __init__(self, problem: DataProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class GuardedXml:
    """The file as the parser reads it, measured as it goes (all in C: two ``find`` and a
    ``count`` per 32 KB block): a text or attribute over ``max_value_chars``, and a document
    element (with what precedes it) over ``max_document_bytes`` or ``max_document_tags``,
    fail the file before the parser builds them."""

    def __init__(self, raw: BinaryIO, name: str, limits: ReaderLimits) -> None:
        self.raw = raw
        self.name = name
        self.limits = limits
        self.read_bytes = 0
        self.window_start = 0  # where the current document element's bytes began
        self.run = 0  # bytes since the last '<'
        self.tags = 0  # '<' since the current document element began: its size as a tree
        head = raw.read(256)
        raw.seek(0)
        self.lt, self.unit, self.codec = _wide_codec(head)

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if not data:
            return data
        start = self.read_bytes
        self.read_bytes += len(data)
        longest = self.limits.max_value_chars * self.unit
        first = data.find(self.lt)
        if first < 0:
            self.run += len(data)
        else:
            self.run += first
            if self.run > longest:
                self._too_long(start + first - self.run)
            if len(data) > longest:  # a small limit: texts inside the block too
                position = 0
                for piece in data.split(self.lt):
                    if len(piece) > longest:
                        self._too_long(start + position)
                    position += len(piece) + len(self.lt)
            self.run = len(data) - data.rfind(self.lt) - len(self.lt)
        if self.run > longest:
            self._too_long(self.read_bytes - self.run)
        self.tags += data.count(self.lt)
        if self.read_bytes - self.window_start > self.limits.max_document_bytes:
            self._too_big()
        if self.tags > self.limits.max_document_tags:
            self._too_many_tags()
        return data

    def document_done(self) -> None:
        self.window_start = self.read_bytes
        self.tags = 0

    def _too_long(self, offset: int) -> None:
        longest = self.limits.max_value_chars
        msg = (
            f"a text or attribute value of more than {longest:,} characters, "
            f"{over(longest, 'max_value_chars')}"
        )
        raise Refused(DataProblem(msg, Location(self.name, line=self._line_at(offset))))

    def _too_big(self) -> None:
        most = self.limits.max_document_bytes
        msg = (
            f"a document element (with what precedes it) has grown over {most:,} bytes by "
            f"this line, {over(most, 'max_document_bytes')}; it is refused before it is built"
        )
        where = Location(self.name, line=self._line_at(self.read_bytes))
        raise Refused(DataProblem(msg, where))

    def _too_many_tags(self) -> None:
        most = self.limits.max_document_tags
        msg = (
            f"a document element (with what precedes it) has grown over {most:,} tags by "
            f"this line, {over(most, 'max_document_tags')}; it is refused before it is built"
        )
        raise Refused(DataProblem(msg, Location(self.name, line=self._line_at(self.read_bytes))))

    def _line_at(self, offset: int) -> int:
        try:
            newline = "\n".encode(self.codec)[-self.unit :]  # without a BOM
        except LookupError:
            newline = b"\n"
        self.raw.seek(0)
        lines, read = 1, 0
        while read < offset:
            block = self.raw.read(min(1 << 20, offset - read))
            if not block:
                break
            lines += block.count(newline)
            read += len(block)
        return lines


def _wide_codec(head: bytes) -> tuple[bytes, int, str]:
    """How a file whose first bytes are ``head`` writes "<", its bytes per unit, and the codec
    to find its lines with (a BOM, "<" in a wide encoding, else the declared encoding)."""
    for start, lt, unit, codec in _WIDE:
        if head.startswith(start):
            return lt, unit, codec
    declared = re.search(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)""", head)
    return b"<", 1, declared.group(1).decode() if declared else "utf-8"


# How the file starts (a BOM, or "<" in a wide encoding): its "<", bytes per unit, codec.
_WIDE = (
    (b"\xff\xfe\x00\x00", b"<\x00\x00\x00", 4, "utf-32"),
    (b"\x00\x00\xfe\xff", b"\x00\x00\x00<", 4, "utf-32"),
    (b"<\x00\x00\x00", b"<\x00\x00\x00", 4, "utf-32-le"),
    (b"\x00\x00\x00<", b"\x00\x00\x00<", 4, "utf-32-be"),
    (b"\xff\xfe", b"<\x00", 2, "utf-16"),
    (b"\xfe\xff", b"\x00<", 2, "utf-16"),
    (b"<\x00", b"<\x00", 2, "utf-16-le"),
    (b"\x00<", b"\x00<", 2, "utf-16-be"),
)
