"""Flat-file layouts: the record types of a partner's file, their fields and their hierarchy.

A layout is data (YAML), either inline in a mapping's ``source.layout`` or in a file of its own
shared by several mappings (a partner's specification is one layout used by several flows)::

    kind: fixed                      # or delimited
    encoding: cp1252
    record_type: {start: 1, length: 3}     # delimited: {column: 1}
    records:
      ENT:
        alias: header
        fields:
          - {name: order_number, start: 4, length: 10}
          - {name: amount, start: 14, length: 9, align: right, pad: "0", decimals: 2}
      LIG: {fields: [...]}
      FIN: {fields: [...]}
    structure:
      header: ENT                    # each ENT starts a document
      children:
        - {record: LIG, min: 1, max: 999, children: [{record: LOT, max: 10}]}
      trailer:
        record: FIN
        checks:
          - {field: line_count, count: LIG}
          - {field: total_quantity, sum: LIG.quantity}

Loading checks everything once (``LayoutError`` lists every problem with its key path), so a
bad layout fails ``edigw mapping check`` rather than the first file: fixed-width fields that
overlap or are out of order are refused naming the record type and the positions.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edigw.errors import MappingError

UNBOUNDED = 1 << 62


class LayoutError(MappingError):
    """A layout is invalid; ``problems`` holds every problem found, each with its key path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    """One field of a record: by order (delimited), by ``column``, or by ``start``/``length``."""

    name: str = Field(min_length=1, description="Field name, as the mapping's `from:` uses it.")
    column: int | None = Field(default=None, ge=1, description="Delimited: 1-based column.")
    start: int | None = Field(
        default=None, ge=1, description="Fixed-width: 1-based first position."
    )
    length: int | None = Field(default=None, ge=1, description="Fixed-width: number of characters.")
    align: Literal["left", "right"] | None = Field(
        default=None,
        description="Side the value sits on; padding fills the other (default left, right for numbers).",
    )
    pad: str | None = Field(
        default=None, min_length=1, max_length=1, description="Padding character."
    )
    decimals: int | None = Field(
        default=None, ge=0, le=8, description="Implied decimals: 000001250 with 2 reads 12.50."
    )
    numeric: bool = Field(
        default=False, description="The field holds an unsigned or signed integer."
    )


class RecordSpec(_Model):
    alias: str | None = Field(
        default=None, min_length=1, description="Another name for this record type."
    )
    length: int | None = Field(default=None, ge=1, description="Fixed-width: the record's length.")
    fields: list[str | FieldSpec] = Field(min_length=1)


class ChildSpec(_Model):
    record: str = Field(min_length=1)
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=1, description="Maximum occurrences under one parent.")
    children: list[ChildSpec] = Field(default_factory=list)


class CheckSpec(_Model):
    field: str = Field(min_length=1, description="Trailer field holding the declared figure.")
    count: str | None = Field(
        default=None, description="Record type (or * for every record) counted."
    )
    sum: str | None = Field(default=None, description="RECORD.field summed over the file.")

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        if (self.count is None) == (self.sum is None):
            msg = "a trailer check has exactly one of count: or sum:"
            raise ValueError(msg)
        return self


class TrailerSpec(_Model):
    record: str = Field(min_length=1)
    required: bool = True
    checks: list[CheckSpec] = Field(default_factory=list)


class StructureSpec(_Model):
    header: str = Field(min_length=1, description="Record type starting each document.")
    children: list[ChildSpec] = Field(default_factory=list)
    trailer: TrailerSpec | None = None


class RecordTypeSpec(_Model):
    column: int | None = Field(default=None, ge=1)
    start: int | None = Field(default=None, ge=1)
    length: int | None = Field(default=None, ge=1)


class LayoutSpec(_Model):
    kind: Literal["fixed", "delimited"]
    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1252", "latin-1"] | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    quote: str | None = Field(default=None, min_length=1, max_length=1)
    record_type: RecordTypeSpec
    record_length: int | None = Field(
        default=None,
        ge=1,
        description="Fixed-width without line endings: every record is this long.",
    )
    unknown_records: Literal["error", "skip"] = "error"
    records: dict[str, RecordSpec] = Field(min_length=1)
    structure: StructureSpec


# -- the compiled layout the readers use --------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlatField:
    """A compiled field: ``index`` (delimited, 0-based) or ``start``/``end`` (0-based slice)."""

    name: str
    index: int
    start: int
    end: int
    align: str
    pad: str
    decimals: int | None
    numeric: bool

    @property
    def columns(self) -> tuple[int, int]:
        """1-based inclusive column range, as partner specifications print it."""
        return (self.start + 1, self.end)


@dataclass(frozen=True, slots=True)
class RecordLayout:
    type: str
    alias: str | None
    fields: tuple[FlatField, ...]
    index: Mapping[str, int]
    length: int  # fixed-width: the record's length (the end of its last field by default)


@dataclass(frozen=True, slots=True)
class Child:
    record: str
    min: int
    max: int
    children: tuple[Child, ...]


@dataclass(frozen=True, slots=True)
class TrailerCheck:
    field: str
    count: str | None
    sum_record: str | None
    sum_field: str | None


@dataclass(frozen=True, slots=True)
class Layout:
    """A checked layout, ready for the readers."""

    name: str
    kind: str
    encoding: str | None
    delimiter: str
    quote: str | None
    type_column: int  # delimited: 0-based
    type_slice: tuple[int, int]  # fixed-width: 0-based slice
    record_length: int | None
    skip_unknown: bool
    records: Mapping[str, RecordLayout]
    aliases: Mapping[str, str]  # alias or type -> type
    header: str
    children: tuple[Child, ...]
    trailer: str | None
    trailer_required: bool
    checks: tuple[TrailerCheck, ...]
    parents: Mapping[str, str]  # record type -> its parent's type in the hierarchy

    def resolve(self, name: str) -> str | None:
        """The record type called ``name`` (type or alias), or None."""
        return self.aliases.get(name)

    def field_names(self) -> set[str]:
        return {f.name for r in self.records.values() for f in r.fields}


def load_layout(spec: str | Mapping[str, Any], *, base: Path | None = None) -> Layout:
    """The layout given inline (a mapping) or as a YAML file path (relative to ``base``)."""
    if isinstance(spec, str):
        path = Path(spec)
        if not path.is_absolute() and base is not None:
            path = base / path
        try:
            stat = path.stat()
        except OSError as exc:
            msg = f"layout file {spec}: not found ({path})"
            raise LayoutError(msg) from exc
        return _load_file(path.resolve(), stat.st_mtime_ns, stat.st_size)
    return _load_inline(json.dumps(spec, sort_keys=True, default=str))


@functools.lru_cache(maxsize=64)
def _load_inline(text: str) -> Layout:
    """Compiled once per distinct inline layout (a reader is made for every file)."""
    return compile_layout(json.loads(text), name="inline layout")


@functools.lru_cache(maxsize=64)
def _load_file(path: Path, mtime_ns: int, size: int) -> Layout:
    """Parsed once per version of the file: many files of one flow share one layout."""
    del mtime_ns, size  # part of the cache key only
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        msg = f"layout file {path.name}: unreadable: {exc}"
        raise LayoutError(msg) from exc
    if not isinstance(data, dict):
        msg = f"layout file {path.name}: a layout is a YAML mapping (kind:, records:, ...)"
        raise LayoutError(msg)
    return compile_layout(data, name=path.name)


def compile_layout(data: Mapping[str, Any], *, name: str) -> Layout:
    """Validate ``data`` and compile it; ``LayoutError`` lists every problem at once."""
    try:
        spec = LayoutSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{name}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        msg = f"{len(problems)} problem(s) in layout: {'; '.join(problems)}"
        raise LayoutError(msg, problems) from None
    problems = check(spec, name=name)
    if problems:
        msg = f"{len(problems)} problem(s) in layout: {'; '.join(problems)}"
        raise LayoutError(msg, problems)
    return _compile(spec, name)


def check(spec: LayoutSpec, *, name: str) -> list[str]:
    """Every problem of a schema-valid layout: positions, references, hierarchy."""
    problems: list[str] = []
    fixed = spec.kind == "fixed"
    where = f"{name}: "
    if fixed:
        if spec.record_type.start is None or spec.record_type.length is None:
            problems.append(f"{where}record_type: fixed-width needs start and length")
    elif spec.record_type.column is None:
        problems.append(f"{where}record_type: delimited needs column")
    names: dict[str, str] = {}
    for rtype, record in spec.records.items():
        for label in (rtype, record.alias):
            if label is None:
                continue
            if label in names and names[label] != rtype:
                problems.append(f"{where}records.{rtype}: name {label!r} is also {names[label]}")
            names[label] = rtype
        problems.extend(_check_fields(spec, rtype, record, where))
    known = set(spec.records)

    def ref(record: str, key: str) -> None:
        if record not in known:
            problems.append(f"{where}{key}: unknown record type {record!r}")

    ref(spec.structure.header, "structure.header")
    seen: set[str] = {spec.structure.header}

    def walk(children: Sequence[ChildSpec], key: str) -> None:
        for i, child in enumerate(children):
            ref(child.record, f"{key}.{i}.record")
            if child.record in seen:
                problems.append(f"{where}{key}.{i}: record {child.record} appears twice")
            seen.add(child.record)
            if child.max is not None and child.max < child.min:
                problems.append(f"{where}{key}.{i}: max {child.max} is below min {child.min}")
            walk(child.children, f"{key}.{i}.children")

    walk(spec.structure.children, "structure.children")
    trailer = spec.structure.trailer
    if trailer is not None:
        ref(trailer.record, "structure.trailer.record")
        if trailer.record in seen:
            problems.append(f"{where}structure.trailer: record {trailer.record} appears twice")
        fields = _field_names(spec.records.get(trailer.record))
        for i, chk in enumerate(trailer.checks):
            key = f"structure.trailer.checks.{i}"
            if chk.field not in fields:
                problems.append(
                    f"{where}{key}.field: {chk.field!r} is not a field of {trailer.record}"
                )
            if chk.count is not None and chk.count != "*" and chk.count not in seen:
                problems.append(f"{where}{key}.count: {chk.count!r} is not in the structure")
            if chk.sum is not None:
                rtype, _, fname = chk.sum.partition(".")
                if rtype not in seen or fname not in _field_names(spec.records.get(rtype)):
                    problems.append(
                        f"{where}{key}.sum: {chk.sum!r} is not RECORD.field of the structure"
                    )
    return problems


def _field_names(record: RecordSpec | None) -> set[str]:
    if record is None:
        return set()
    return {f if isinstance(f, str) else f.name for f in record.fields}


def _check_fields(spec: LayoutSpec, rtype: str, record: RecordSpec, where: str) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    previous: FieldSpec | None = None
    for i, item in enumerate(record.fields):
        fld = FieldSpec(name=item) if isinstance(item, str) else item
        key = f"{where}records.{rtype}.fields.{i}"
        if fld.name in seen:
            problems.append(f"{key}: field {fld.name!r} is declared twice in {rtype}")
        seen.add(fld.name)
        if spec.kind == "delimited":
            if fld.start is not None or fld.length is not None:
                problems.append(f"{key}: start/length are for fixed-width layouts (use column)")
            continue
        if fld.start is None or fld.length is None:
            problems.append(f"{key}: fixed-width field {fld.name!r} needs start and length")
            continue
        if previous is not None and previous.start is not None and previous.length is not None:
            prev_end = previous.start + previous.length - 1
            this_end = fld.start + fld.length - 1
            if fld.start < previous.start:
                problems.append(
                    f"{key}: record {rtype}: field {fld.name!r} (positions {fld.start}-{this_end}) "
                    f"comes before the previous field {previous.name!r} "
                    f"(positions {previous.start}-{prev_end}); list fields in order"
                )
            elif fld.start <= prev_end:
                problems.append(
                    f"{key}: record {rtype}: field {fld.name!r} (positions {fld.start}-{this_end}) "
                    f"overlaps {previous.name!r} (positions {previous.start}-{prev_end})"
                )
        previous = fld
        if record.length is not None and fld.start + fld.length - 1 > record.length:
            problems.append(
                f"{key}: record {rtype}: field {fld.name!r} ends at position "
                f"{fld.start + fld.length - 1}, past the record length {record.length}"
            )
    return problems


def _compile(spec: LayoutSpec, name: str) -> Layout:
    fixed = spec.kind == "fixed"
    records: dict[str, RecordLayout] = {}
    aliases: dict[str, str] = {}
    for rtype, record in spec.records.items():
        fields: list[FlatField] = []
        column = 0
        for item in record.fields:
            fld = FieldSpec(name=item) if isinstance(item, str) else item
            number = fld.decimals is not None or fld.numeric
            if fld.column is not None:
                column = fld.column - 1
            start = (fld.start or 1) - 1
            end = start + (fld.length or 0)
            align = fld.align or ("right" if number else "left")
            pad = fld.pad or ("0" if number and align == "right" else " ")
            fields.append(
                FlatField(fld.name, column, start, end, align, pad, fld.decimals, fld.numeric)
            )
            column += 1
        length = record.length or max((f.end for f in fields), default=0) if fixed else 0
        records[rtype] = RecordLayout(
            rtype, record.alias, tuple(fields), {f.name: i for i, f in enumerate(fields)}, length
        )
        aliases[rtype] = rtype
        if record.alias:
            aliases[record.alias] = rtype

    def child(c: ChildSpec) -> Child:
        return Child(c.record, c.min, c.max or UNBOUNDED, tuple(child(x) for x in c.children))

    children = tuple(child(c) for c in spec.structure.children)
    parents: dict[str, str] = {}

    def link(parent: str, kids: Sequence[Child]) -> None:
        for kid in kids:
            parents[kid.record] = parent
            link(kid.record, kid.children)

    link(spec.structure.header, children)
    trailer = spec.structure.trailer
    checks = tuple(
        TrailerCheck(
            c.field,
            c.count,
            c.sum.partition(".")[0] if c.sum else None,
            c.sum.partition(".")[2] if c.sum else None,
        )
        for c in (trailer.checks if trailer else ())
    )
    rt = spec.record_type
    return Layout(
        name=name,
        kind=spec.kind,
        encoding=spec.encoding,
        delimiter=spec.delimiter or ";",
        quote=spec.quote,
        type_column=(rt.column or 1) - 1,
        type_slice=((rt.start or 1) - 1, (rt.start or 1) - 1 + (rt.length or 0)),
        record_length=spec.record_length,
        skip_unknown=spec.unknown_records == "skip",
        records=records,
        aliases=aliases,
        header=spec.structure.header,
        children=children,
        trailer=trailer.record if trailer else None,
        trailer_required=trailer.required if trailer else False,
        checks=checks,
        parents=parents,
    )
