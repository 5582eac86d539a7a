"""Render a partner template over Ecolix records, streaming, into a file in a set encoding.

Why streaming: a web shop's catalogue can hold a million articles. The template's
``generate()`` yields text chunks while the records iterator pulls Ecolix pages lazily, and
the chunks are encoded and written as they come, so memory stays flat whatever the volume.

Why the encoding is done here and not by ``open(..., encoding=...)``: when a character cannot
be encoded (a ``ő`` for a cp1252 partner), the operator must learn *which record* holds it.
The chunks are encoded per record (the records iterator tells which record the template is
rendering), so the error names the record, its business key and the output line.

XML (``*.xml.j2``) is autoescaped, then re-read with lxml's streaming parser to prove it is
well-formed, and validated against the flow's XSD when it names one.

Why a sandbox: a template is text from a consultant or a partner, and it runs inside the
gateway, next to ``ECOLIX_TOKEN``. It is compiled in :class:`~edigw.jinja_sandbox.BoundedEnvironment`
(no attribute of functions, classes or modules, no ``__`` names, bounded values, work and
time) and can read files only through :class:`FolderLoader`: ``include``/``import`` of other
templates of its own folder. What it sees is what the export hands it (``records``, ``lookup``,
``now``...). A template that reaches further, or goes over a limit, fails the run and leaves no
file behind.
"""

from __future__ import annotations

import codecs
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.exceptions import SecurityError

from edigw.errors import DataProblem, MappingError, SourceDataError
from edigw.jinja_sandbox import TEMPLATE_LIMITS, BoundedEnvironment, Budget, Limits, Metered
from edigw.jinja_sandbox.budget import CHARS_PER_STEP
from edigw.model import Location
from edigw.outbound.filters import FilterError, make_filters

if TYPE_CHECKING:
    from lxml import etree

ENCODINGS = ("utf-8", "utf-8-sig", "cp1252")
"""Encodings a flow may ask for; anything else is refused at load time."""

XML_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "cp1252": "windows-1252"}
"""What to write in ``<?xml ... encoding="..."?>`` for each encoding (the ``xml_encoding``
template variable)."""

SCHEMA_LINE_LOOKUP_MAX_BYTES = 64 * 1024 * 1024
"""Files up to this size are re-parsed whole to give an XSD error its line number."""

WRITE_BATCH_CHUNKS = 2048
"""Chunks gathered before one encode + write (cut at a record boundary)."""

WRITE_BATCH_CHARS = 1 << 20
"""Characters gathered before a write even within one record, so one record's output (or a
header's) never piles up in memory."""

TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
"""What a template may ``include`` or ``import``: other templates, never data or settings."""

KEY_FIELDS = ("number", "code", "id", "article", "order", "purchase_order")
"""Fields tried, in order, to name a record in error messages."""


def is_xml_template(path: Path | str | None) -> bool:
    """``quotes.xml.j2`` and ``quotes.xml`` are XML templates: autoescaped and checked."""
    if path is None:
        return False
    name = Path(path).name.lower()
    if name.endswith(".j2"):
        name = name[:-3]
    return name.endswith(".xml")


def record_key(record: Any) -> str:
    """A short business name for a record, e.g. ``code=ART-0001``, for error messages."""
    if isinstance(record, Mapping):
        for field in KEY_FIELDS:
            value = record.get(field)
            if value is not None and not isinstance(value, Mapping | list):
                return f"{field}={value}"
    return "?"


class RecordTracker(Metered):
    """Iterates the records for the template and remembers which one it is rendering.

    ``index`` is 1-based (0 before the first record, for headers); ``current`` is the record
    handed out last. ``count`` is the number of records the template consumed; each earns
    the render's ``budget`` more work and time (the budget reads ``count`` when it settles).
    """

    __slots__ = ("_source", "count", "current", "index")

    def __init__(self, records: Iterable[Any], budget: Budget | None = None) -> None:
        self._source = iter(records)
        self.index = 0
        self.count = 0
        self.current: Any = None
        if budget is not None:
            budget.counter = self

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        record = next(self._source)
        self.index += 1
        self.count += 1
        self.current = record
        return record

    def describe(self, index: int | None = None, record: Any = None) -> str:
        if index is None:
            index, record = self.index, self.current
        if index == 0:
            return "the file header (before the first record)"
        return f"record {index} ({record_key(record)})"


@dataclass(frozen=True, slots=True)
class Rendered:
    """What :func:`render_to_file` wrote."""

    path: Path
    records: int
    size: int
    lines: int


class PartnerEnvironment(BoundedEnvironment):
    """The template sandbox, with ``record.field`` reading dict keys first.

    Ecolix records are JSON objects (dicts). Stock Jinja tries ``getattr`` first and falls
    back to the key through an exception on every field access, which is the single largest
    cost of a big export; data keys first also means a field named ``items`` or ``keys``
    reads the data, not the dict method. The generated code reads the key of a plain dict
    inline (``dict_keys_first``); this method answers everything else.
    """

    dict_keys_first = True
    decimal_filters = frozenset({"dec"})  # edigw.outbound.filters.to_decimal

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


class FolderLoader(jinja2.FileSystemLoader):
    """Templates of one folder, by relative name: what ``include`` and ``import`` may read.

    An absolute name, a ``..``, a name that is not a template (``*.j2``: never the
    configuration or a key that happens to sit beside it) or a symbolic link leading out of the
    folder is refused with a sandbox error, not looked for.
    """

    def __init__(self, folder: Path, main: str | None = None) -> None:
        super().__init__(str(folder))
        self.folder = folder.resolve()
        self.main = main  # the flow's own template, whatever its name

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        parts = template.replace("\\", "/").split("/")
        if template.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            why = "an absolute path or '..' leads out of it"
        elif template != self.main and not template.lower().endswith(TEMPLATE_SUFFIXES):
            why = f"only templates ({', '.join('*' + s for s in TEMPLATE_SUFFIXES)}) may be read"
        else:
            source, filename, uptodate = super().get_source(environment, template)
            if Path(filename).resolve().is_relative_to(self.folder):
                return source, filename, uptodate
            why = "it is a link to a file outside it"
        msg = (
            f"template {template!r} refused: a template may include or import only the templates "
            f"of its own folder ({self.folder}), and {why}"
        )
        raise SecurityError(msg)


def make_environment(
    template_dir: Path,
    *,
    timezone: str | None = None,
    limits: Limits = TEMPLATE_LIMITS,
    main: str | None = None,
) -> PartnerEnvironment:
    """The sandbox for partner templates in ``template_dir`` (see the module docstring).

    ``StrictUndefined`` turns a misspelt field into an error instead of a silently empty
    column; templates use ``rec.get("field")`` or ``|default`` for optional fields.
    """
    env = PartnerEnvironment(
        loader=FolderLoader(template_dir, main),
        autoescape=is_xml_template,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        limits=limits,
    )
    filters = make_filters(timezone=timezone)
    env.filters.update(filters)
    env.text_filters.update(filters)  # numbers and text only
    return env


def load_template(
    path: Path, *, timezone: str | None = None, limits: Limits = TEMPLATE_LIMITS
) -> jinja2.Template:
    """Compile a template file once; syntax errors name the file and line."""
    env = make_environment(path.parent, timezone=timezone, limits=limits, main=path.name)
    try:
        return env.get_template(path.name)
    except jinja2.TemplateNotFound as exc:
        msg = f"{path}: template not found"
        raise MappingError(msg) from exc
    except jinja2.TemplateSyntaxError as exc:
        msg = f"{path}:{exc.lineno}: template syntax error: {exc.message}"
        raise MappingError(msg) from exc
    except SecurityError as exc:
        msg = f"{path}: {exc.message}"
        raise MappingError(msg) from exc


def check_encoding(encoding: str) -> str:
    if encoding.lower() not in ENCODINGS:
        msg = f"encoding {encoding!r} is not supported; use one of {', '.join(ENCODINGS)}"
        raise MappingError(msg)
    return encoding.lower()


def _template_line(template: jinja2.Template, tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == template.filename:
            line = tb.tb_lineno  # Jinja rewrites tracebacks to template lines
        tb = tb.tb_next
    return line


class _Sink:
    """Encodes text per record into a binary file, counting lines for error locations."""

    def __init__(
        self,
        fh: Any,
        encoding: str,
        out_name: str,
        tracker: RecordTracker,
        budget: Budget | None = None,
    ) -> None:
        self._fh = fh
        self._budget = budget
        self._encode = codecs.getincrementalencoder(encoding)("strict").encode
        self._encoding = encoding
        self._out_name = out_name
        self._tracker = tracker
        self.lines = 1
        self.size = 0

    def write(self, chunks: list[str], owners: list[tuple[int, int, Any]]) -> None:
        """Encode and write ``chunks``; ``owners`` says from which chunk on each record's
        output starts, as ``(chunk position, record index, record)``."""
        text = "".join(chunks)
        if self._budget is not None:
            self._budget.spend(len(text) // CHARS_PER_STEP)  # writing is work too
        try:
            data = self._encode(text)
        except UnicodeEncodeError as exc:
            index, record = _owner_at(chunks, owners, exc.start)
            bad = exc.object[exc.start : exc.end]
            line = self.lines + text.count("\n", 0, exc.start)
            column = exc.start - text.rfind("\n", 0, exc.start)
            codes = " ".join(f"U+{ord(c):04X}" for c in bad)
            msg = (
                f"{self._tracker.describe(index, record)}: character {bad!r} ({codes}) "
                f"cannot be encoded in {self._encoding}; change the flow's encoding to "
                "utf-8 or correct the record in Ecolix"
            )
            raise SourceDataError(
                DataProblem(msg, Location(self._out_name, line=line, column=column))
            ) from exc
        self._fh.write(data)
        self.size += len(data)
        self.lines += text.count("\n")

    def close(self) -> None:
        tail = self._encode("", final=True)
        self._fh.write(tail)
        self.size += len(tail)


def _owner_at(
    chunks: list[str], owners: list[tuple[int, int, Any]], offset: int
) -> tuple[int, Any]:
    """The record whose output holds character ``offset`` of the joined ``chunks``."""
    position, seen = 0, 0
    for position, chunk in enumerate(chunks):  # noqa: B007 - position is used after the loop
        seen += len(chunk)
        if seen > offset:
            break
    found = (0, None)
    for start, index, record in owners:
        if start > position:
            break
        found = (index, record)
    return found


def render_to_file(
    template: jinja2.Template,
    records: Iterable[Any],
    dest: Path,
    *,
    encoding: str = "utf-8",
    context: Mapping[str, Any] | None = None,
    out_name: str | None = None,
    xsd: Path | None = None,
) -> Rendered:
    """Render ``template`` with ``records`` (lazily consumed) into ``dest``.

    The template sees ``records`` (a one-pass iterator), ``xml_encoding`` and ``context``.
    Errors become :class:`SourceDataError` naming the record being rendered and the template
    or output line; ``dest`` is removed on error so no half file is ever delivered.
    """
    encoding = check_encoding(encoding)
    out = out_name or dest.name
    budget = _budget(template)
    tracker = RecordTracker(records, budget)
    values = dict(context or {})
    values.update(records=tracker, xml_encoding=XML_ENCODING_NAMES[encoding])
    try:
        with dest.open("wb") as fh:
            sink = _Sink(fh, encoding, out, tracker, budget)
            _stream(template, values, sink, tracker, budget)
            sink.close()
        if is_xml_template(template.name or ""):
            check_xml(dest, xsd=xsd, out_name=out)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return Rendered(path=dest, records=tracker.count, size=sink.size, lines=sink.lines)


def _budget(template: jinja2.Template) -> Budget:
    """A render's budget: time is the processor time of this thread (see ``Budget``)."""
    return Budget(_sandbox(template).limits, clock=time.thread_time)


def _sandbox(template: jinja2.Template) -> BoundedEnvironment:
    env = template.environment
    if not isinstance(env, BoundedEnvironment):
        msg = f"{template.name}: templates render only in the sandbox (use load_template)"
        raise MappingError(msg)
    return env


def _stream(
    template: jinja2.Template,
    values: dict[str, Any],
    sink: _Sink,
    tracker: RecordTracker,
    budget: Budget,
) -> None:
    """Render into ``sink`` in batches cut at record boundaries, or sooner when what is
    gathered grows past ``WRITE_BATCH_CHARS``: a header or one record printing a big string in
    a loop never piles up in memory."""
    env = _sandbox(template)
    buf: list[str] = []
    owners: list[tuple[int, int, Any]] = [(0, 0, None)]
    owner_index = 0
    pending = 0
    most, size = WRITE_BATCH_CHARS, len  # locals: this loop runs per chunk
    previous = env.begin(budget)
    try:
        for chunk in template.generate(values):
            if tracker.index != owner_index:
                owner_index = tracker.index
                owners.append((len(buf), owner_index, tracker.current))
                if len(buf) > WRITE_BATCH_CHUNKS:
                    sink.write(buf, owners[:-1])
                    buf, pending = [], 0
                    owners = [(0, owner_index, tracker.current)]
            buf.append(chunk)
            pending += size(chunk)
            if pending > most:
                sink.write(buf, owners)
                buf, pending = [], 0
                owners = [(0, owner_index, tracker.current)]
        sink.write(buf, owners)
    except (
        jinja2.TemplateError,
        FilterError,
        TypeError,
        ValueError,
        ArithmeticError,
        RecursionError,
    ) as exc:
        if isinstance(exc, UnicodeError):
            raise
        line = _template_line(template, sys.exc_info()[2])
        where = Location(template.filename or template.name or "template", line=line)
        if isinstance(exc, RecursionError):
            message = "templates include or call each other too deeply (a loop?)"
        elif isinstance(exc, jinja2.TemplateError):
            message = exc.message or type(exc).__name__
        else:
            message = str(exc)
        msg = f"{tracker.describe()}: {message}"
        raise SourceDataError(DataProblem(msg, where)) from exc
    finally:
        env.end(previous)


def check_xml(path: Path, *, xsd: Path | None = None, out_name: str | None = None) -> None:
    """Prove a rendered file is well-formed XML (and valid against ``xsd``), streaming."""
    from lxml import etree  # 4 MB: imported by the first XML export, not by every gateway

    schema = load_xsd(xsd) if xsd is not None else None
    name = out_name or path.name
    try:
        for _event, element in etree.iterparse(str(path), events=("end",), schema=schema):
            if element.getparent() is not None and element.getparent().getparent() is None:
                element.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        last = exc.error_log.last_error if exc.error_log else None
        if (
            schema is not None
            and xsd is not None
            and last is not None
            and last.domain_name.startswith("SCHEMA")
        ):
            line = _schema_error_line(path, schema) or None
            msg = f"rendered file is not valid against {xsd.name}: {exc.msg}"
        else:
            line = exc.lineno or None
            msg = f"rendered file is not well-formed XML: {exc.msg}"
        raise SourceDataError(DataProblem(msg, Location(name, line=line))) from exc


def _schema_error_line(path: Path, schema: etree.XMLSchema) -> int | None:
    """The line of the first XSD error: streaming validation does not report lines, so a
    failing file that is small enough is parsed whole a second time to find it."""
    if path.stat().st_size > SCHEMA_LINE_LOOKUP_MAX_BYTES:
        return None
    from lxml import etree  # see check_xml

    schema.validate(etree.parse(str(path)))
    errors = list(schema.error_log)
    return int(errors[0].line) if errors else None


def load_xsd(path: Path) -> etree.XMLSchema:
    from lxml import etree  # see check_xml

    try:
        return etree.XMLSchema(etree.parse(str(path)))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        msg = f"{path}: cannot load XSD: {exc}"
        raise MappingError(msg) from exc


def render_to_text(
    template: jinja2.Template, records: Iterable[Any], *, context: Mapping[str, Any] | None = None
) -> str:
    """Render into a string (``template test`` and small previews only: not streaming)."""
    values = dict(context or {})
    budget = _budget(template)
    tracker = RecordTracker(records, budget)
    values.update(records=tracker, xml_encoding="UTF-8")
    parts: list[str] = []

    class _Collect:
        def write(self, chunks: list[str], owners: list[tuple[int, int, Any]]) -> None:
            parts.extend(chunks)

    _stream(template, values, _Collect(), tracker, budget)  # type: ignore[arg-type]
    return "".join(parts)
