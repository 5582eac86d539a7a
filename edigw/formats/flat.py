"""Flat files (fichiers plats): records told apart by a record type, assembled into documents.

What the two flat readers share: the record objects, the structure check and the trailer
check. A reader's own module only cuts lines into ``(line, record layout, values)``; here
each header record becomes one document-level record whose ``children("LIG")`` are its detail
records, each with its own ``children(...)`` for sub-lines. Only the current document is held in
memory, so a 1 GB file maps in flat memory. A structure violation is a whole-file error naming
the line and what was expected there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.encoding import decode_error, resolve_encoding
from edigw.formats.layout import Child, FlatField, Layout, LayoutError, RecordLayout, load_layout
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits, over
from edigw.formats.text import check_text_file
from edigw.model import Location

__all__ = ["FlatReader", "FlatRecord", "Parsed", "assemble", "cut_number", "fail"]

Parsed = tuple[int, RecordLayout, list[str | None]]


class FlatRecord:
    """One record of a flat file; a header record carries its document below it."""

    __slots__ = ("file", "fixed", "kids", "layout", "line", "problem", "values")

    def __init__(
        self, file: str, layout: RecordLayout, values: list[str | None], line: int, *, fixed: bool
    ) -> None:
        self.file = file
        self.layout = layout
        self.values = values
        self.line = line
        self.fixed = fixed
        self.kids: dict[str, list[FlatRecord]] | None = None
        # Set on a header whose document went over the size limit: the engine fails the
        # document with it instead of mapping it (its records past the limit were not kept).
        self.problem: DataProblem | None = None

    @property
    def record_type(self) -> str:
        return self.layout.type

    @property
    def location(self) -> Location:
        return Location(self.file, line=self.line, record_type=self.layout.type)

    def value(self, selector: str) -> Any:
        position = self.layout.index.get(selector)
        return None if position is None else self.values[position]

    def where(self, selector: str) -> Location:
        position = self.layout.index.get(selector)
        if position is None:
            return Location(self.file, line=self.line, record_type=self.layout.type, field=selector)
        fld = self.layout.fields[position]
        if self.fixed:
            return Location(
                self.file,
                line=self.line,
                record_type=self.layout.type,
                field=selector,
                columns=fld.columns,
            )
        return Location(
            self.file,
            line=self.line,
            column=fld.index + 1,
            record_type=self.layout.type,
            field=selector,
        )

    def children(self, selector: str) -> Sequence[FlatRecord]:
        if self.kids is None:
            return ()
        return self.kids.get(selector, ())

    def add(self, child: FlatRecord, alias: str | None) -> int:
        """Attach ``child``; the number of its type under this record, for max checks."""
        if self.kids is None:
            self.kids = {}
        kids = self.kids.setdefault(child.layout.type, [])
        kids.append(child)
        if alias is not None:
            self.kids[alias] = kids
        return len(kids)


def fail(message: str, location: Location) -> MalformedFileError:
    return MalformedFileError(DataProblem(message, location))


def cut_number(text: str, fld: FlatField) -> str | None:
    """The number in ``text`` as a decimal string (implied decimals applied); ValueError if not.

    ``000001250`` with 2 implied decimals is ``12.50``; a sign may lead or trail.
    """
    digits = text.strip()
    if fld.pad not in " 0":
        digits = digits.strip(fld.pad)
    if not digits:
        return None
    sign = ""
    if digits[0] in "+-":
        sign, digits = digits[0], digits[1:].strip()
    elif digits[-1] in "+-":
        sign, digits = digits[-1], digits[:-1].strip()
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(text)
    sign = "-" if sign == "-" else ""
    places = fld.decimals
    if not places:
        return sign + (digits.lstrip("0") or "0")
    digits = digits.rjust(places + 1, "0")
    whole = digits[:-places].lstrip("0") or "0"
    return f"{sign}{whole}.{digits[-places:]}"


def number_problem(fld: FlatField, raw: str) -> str:
    if fld.decimals:
        return f"{raw!r} is not a number with {fld.decimals} implied decimals"
    return f"{raw!r} is not a whole number"


class _Open:
    """A record of the current document still accepting children."""

    __slots__ = ("counts", "record", "specs")

    def __init__(self, record: FlatRecord, specs: tuple[Child, ...]) -> None:
        self.record = record
        self.specs = specs
        self.counts: dict[str, int] = {}


def assemble(
    parsed: Iterable[Parsed],
    layout: Layout,
    file: str,
    *,
    fixed: bool,
    max_records: int | None = None,
) -> Iterator[FlatRecord]:
    """Header records with their documents below them, checking the declared structure.

    A document of more than ``max_records`` records is not held: its header carries a
    problem, and its further records are only counted (for the trailer's checks).
    """
    stack: list[_Open] = []
    in_document = 0
    oversized = False
    totals: dict[str, int] = {}
    everything = 0
    sums: dict[tuple[str, str], Decimal] = {
        (c.sum_record, c.sum_field): Decimal(0)
        for c in layout.checks
        if c.sum_record and c.sum_field
    }
    summed = {rtype for rtype, _ in sums}
    trailer: FlatRecord | None = None
    last = 0
    specs_of: dict[str, tuple[Child, ...]] = {}

    def index(children: Sequence[Child]) -> None:
        for kid in children:
            specs_of[kid.record] = kid.children
            index(kid.children)

    index(layout.children)
    limits = _limits(layout.children)

    def close(depth: int, line: int, found: str) -> None:
        """Close the open records deeper than ``depth``, checking their minimum children."""
        while len(stack) > depth:
            top = stack.pop()
            for spec in top.specs:
                if top.counts.get(spec.record, 0) < spec.min:
                    parent = top.record
                    msg = (
                        f"expected {spec.record} (at least {spec.min} under the "
                        f"{parent.layout.type} of line {parent.line}), found {found}"
                    )
                    raise fail(
                        msg,
                        Location(
                            file, line=line, record_type=None if found == "end of file" else found
                        ),
                    )

    for line, rec_layout, values in parsed:
        last = line
        record = FlatRecord(file, rec_layout, values, line, fixed=fixed)
        rtype = rec_layout.type
        everything += 1
        totals[rtype] = totals.get(rtype, 0) + 1
        if rtype in summed:
            _accumulate(sums, record, rtype)
        if trailer is not None:
            msg = (
                f"{rtype} record after the trailer {trailer.layout.type} of line {trailer.line}: "
                "expected end of file"
            )
            raise fail(
                msg,
                record.location,
            )
        if rtype == layout.header:
            if stack:
                document = stack[0].record
                close(0, line, rtype)
                yield document
            stack.append(_Open(record, layout.children))
            in_document, oversized = 0, False
            continue
        if rtype == layout.trailer:
            if stack:
                document = stack[0].record
                close(0, line, rtype)
                trailer = record
                _check_trailer(layout, record, totals, everything, sums)
                yield document
            else:
                trailer = record
                _check_trailer(layout, record, totals, everything, sums)
            continue
        if stack and rtype != layout.trailer:
            in_document += 1
            if oversized:
                continue
            if max_records is not None and in_document > max_records:
                oversized = True
                header = stack[0].record
                del stack[1:]
                msg = (
                    f"the document of the {header.layout.type} record at line {header.line} "
                    f"has more than {max_records:,} records, "
                    f"{over(max_records, 'max_lines_per_document')}"
                )
                header.problem = DataProblem(msg, header.location)
                header.kids = None
                continue
        parent_type = layout.parents.get(rtype)
        if parent_type is None:
            msg = f"{rtype} record is not part of the declared structure (header {layout.header})"
            raise fail(
                msg,
                record.location,
            )
        depth = len(stack) - 1
        while depth >= 0 and stack[depth].record.layout.type != parent_type:
            depth -= 1
        if depth < 0:
            if not stack:
                msg = f"{rtype} record before any {layout.header} header: expected {layout.header}"
                raise fail(
                    msg,
                    record.location,
                )
            msg = f"{rtype} record not expected here: it belongs under a {parent_type} record"
            raise fail(
                msg,
                record.location,
            )
        if len(stack) > depth + 1:
            close(depth + 1, line, rtype)
        holder = stack[depth]
        count = holder.counts[rtype] = holder.counts.get(rtype, 0) + 1
        holder.record.add(record, rec_layout.alias)
        most = limits[rtype]
        if count > most:
            msg = (
                f"{count} {rtype} records under the {parent_type} of line {holder.record.line}: "
                f"at most {most} expected"
            )
            raise fail(
                msg,
                record.location,
            )
        stack.append(_Open(record, specs_of.get(rtype, ())))
    if stack:
        document = stack[0].record
        close(0, last, "end of file")
        if layout.trailer and layout.trailer_required:
            msg = (
                f"end of file: the trailer {layout.trailer} is missing (expected after the last "
                f"{layout.header})"
            )
            raise fail(
                msg,
                Location(file, line=last),
            )
        yield document
    elif trailer is None and layout.trailer and layout.trailer_required and everything:
        msg = f"end of file: the trailer {layout.trailer} is missing"
        raise fail(msg, Location(file, line=last))


def _limits(children: Sequence[Child]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kid in children:
        out[kid.record] = kid.max
        out.update(_limits(kid.children))
    return out


def _accumulate(sums: dict[tuple[str, str], Decimal], record: FlatRecord, rtype: str) -> None:
    for key in sums:
        if key[0] != rtype:
            continue
        raw = record.value(key[1])
        if raw is None:
            continue
        try:
            sums[key] += Decimal(str(raw).replace(",", "."))
        except InvalidOperation:
            msg = f"{raw!r} is not a number (it enters a trailer total)"
            raise fail(msg, record.where(key[1])) from None


def _check_trailer(
    layout: Layout,
    trailer: FlatRecord,
    totals: Mapping[str, int],
    everything: int,
    sums: Mapping[tuple[str, str], Decimal],
) -> None:
    for chk in layout.checks:
        raw = trailer.value(chk.field)
        where = trailer.where(chk.field)
        try:
            declared = Decimal(str(raw).strip().replace(",", "."))
        except InvalidOperation:
            msg = f"{raw!r} is not a number"
            raise fail(msg, where) from None
        if chk.count is not None:
            actual = Decimal(everything if chk.count == "*" else totals.get(chk.count, 0))
            what = "records" if chk.count == "*" else f"{chk.count} records"
        else:
            assert chk.sum_record is not None and chk.sum_field is not None
            actual = sums[(chk.sum_record, chk.sum_field)]
            what = f"as the total of {chk.sum_record}.{chk.sum_field}"
        if declared != actual:
            if chk.count is not None:
                msg = f"the trailer announces {raw} {what}, the file has {actual}"
            else:
                msg = f"the trailer announces {raw} {what}, the file adds up to {actual}"
            raise fail(msg, where)


class Cutter(Protocol):
    """Turns an open text file into parsed records (the format-specific part)."""

    def __call__(self, handle: Any, layout: Layout, file: str) -> Iterator[Parsed]: ...


class FlatReader:
    """Streams a flat file: one document-level record per header, checked against the layout."""

    fixed = False

    def __init__(
        self,
        layout: Layout,
        *,
        encoding: str | None = None,
        limits: ReaderLimits = DEFAULT_LIMITS,
    ) -> None:
        self.layout = layout
        self.encoding = encoding if encoding not in (None, "auto") else layout.encoding
        self.limits = limits
        self.notes: list[str] = []
        self.path: Path | None = None  # the file being read, to locate quotes on errors
        self.text_encoding = ""
        self.physical_lines = -1  # as counted before reading, to check that all were read

    @classmethod
    def from_source(
        cls, source: Mapping[str, Any], *, limits: ReaderLimits = DEFAULT_LIMITS
    ) -> FlatReader:
        """From a mapping's ``source`` block: ``layout`` inline or a file (``_base`` resolves it)."""
        spec = source.get("layout")
        if spec is None:
            msg = "source.layout is required: the record layout, inline or as a layout file"
            raise LayoutError(msg)
        pinned = source.get("_layout")
        if isinstance(pinned, Layout):
            # the version compiled with the mapping: an edit of the layout file reaches
            # this flow only when the mapping is reloaded, whole (``edigw.pipeline.reload``)
            layout = pinned
        else:
            base = source.get("_base")
            layout = load_layout(spec, base=Path(base) if base else None)
        if layout.kind != ("fixed" if cls.fixed else "delimited"):
            msg = f"layout {layout.name} is {layout.kind}, not for format {source.get('format')}"
            raise LayoutError(msg)
        return cls(layout, encoding=source.get("encoding"), limits=limits)

    def check_selector(self, selector: str) -> str | None:
        """Load-time check: a field of some record, or a record type/alias (for ``each:``)."""
        if self.layout.resolve(selector) or selector in self.layout.field_names():
            return None
        return f"{selector!r} is neither a field nor a record type of layout {self.layout.name}"

    def cut(self, handle: Any, file: str) -> Iterator[Parsed]:
        raise NotImplementedError

    def open_text(self, path: Path, source_name: str) -> tuple[str, Any]:
        encoding, detected = resolve_encoding(path, self.encoding, source_name=source_name)
        if detected:
            self.notes.append(f"{source_name}: encoding {encoding} (detected)")
        self.physical_lines = check_text_file(
            path,
            source_name=source_name,
            encoding=encoding,
            limits=self.limits,
            check_lines=not (self.fixed and self.layout.record_length),
        )
        self.path, self.text_encoding = path, encoding
        return encoding, path.open(encoding=encoding, newline="")

    def records(self, path: Path, *, source_name: str) -> Iterator[FlatRecord]:
        encoding, handle = self.open_text(path, source_name)
        try:
            with handle:
                yield from assemble(
                    self.cut(handle, source_name),
                    self.layout,
                    source_name,
                    fixed=self.fixed,
                    max_records=self.limits.max_lines_per_document,
                )
        except UnicodeDecodeError as exc:
            raise decode_error(path, source_name, encoding) from exc


def record_layout(layout: Layout, rtype: str, line: int, file: str) -> RecordLayout | None:
    """The layout of record type ``rtype``; None to skip it, or an error naming known types."""
    found = layout.records.get(rtype)
    if found is not None or layout.skip_unknown:
        return found
    known = ", ".join(layout.records)
    msg = f"unknown record type {rtype!r} (known: {known})"
    raise fail(
        msg,
        Location(file, line=line, record_type=rtype or None),
    )
