"""The mapping engine: a mapping file compiled once into small closures, applied to records.

Compilation turns every target field into a function ``build(record, ctx, parent_pointer)``
that reads, trims, maps, looks up and converts one value. Applying a mapping is then a walk of
those functions per document, with no interpretation of the YAML left in the hot path.

The common fields (one value read, then only trimmed, cased, mapped, looked up, converted)
skip even those calls: an object takes its record's row at once (``values_of``, see
``edigw.formats``) and computes such fields in one loop, those of its child objects made
only of such fields included; a list of such objects is built straight from its items'
rows. A value off that path (empty, not found, not convertible) goes through its field's
own function, so problems, locations and pointers are the same either way.

Problems are collected per document, all at once, each with the source Location and the JSON
pointer of the target field. Payloads are validated against the contract's request schema of
the target operation; a schema error is traced back to the source value that produced it by
mapping the document a second time with tracing on (only failed documents pay for that).

This module keeps the compiled mapping (``CompiledMapping``): what a loaded mapping holds and
how it is applied to records. Beside it: ``grouping`` (records into documents, within the
size and time limits) and ``context`` (what every builder is handed, ``Trace``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema_rs

from edigw.errors import DataProblem, MappingError
from edigw.formats import reader_for
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits, over
from edigw.jinja_sandbox import BoundedEnvironment
from edigw.mapping import steps as placeholders
from edigw.mapping.context import _MISSING, _UNBOUNDED, Builder, Trace, _Ctx, _Records, _truthy
from edigw.mapping.exact import exact_number
from edigw.mapping.expression_checks import parse_expression
from edigw.mapping.expressions import (
    Expression,
    ExpressionError,
    ReadingView,
    RecordView,
    compile_expression,
    make_environment,
    number_reader,
)
from edigw.mapping.grouping import (
    _Budget,
    _consecutive_groups,
    _Group,
    _GroupProblem,
    _Oversized,
    _whole_file,
)
from edigw.mapping.loader import KeyPath, MappingSource, read_mapping
from edigw.mapping.lookups import ExpressionTables, LookupTable, load_table
from edigw.mapping.types import (
    check_format,
    converter,
    plain_decimal,
    to_string,
)
from edigw.model import Location, MappedDocument, MappedStep, Reader, Record

DEFAULT_TIMEZONE = "Europe/Paris"
_TYPE_OPTIONS = {
    "format": ("date", "datetime"),
    "scale": ("decimal",),
    "decimal": ("decimal",),
    "thousands": ("decimal", "int"),
    "true_values": ("bool",),
    "false_values": ("bool",),
}


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class _Step:
    """A compiled follow-up step: its operation, its payload's builder and validator."""

    target: str
    build: Builder
    validator: Any


@dataclass(frozen=True, slots=True)
class _SkipRule:
    """A compiled ``skip_if`` rule: where it is written, its expression and its reason."""

    index: int
    source: str
    reason: str
    test: Expression


@dataclass(frozen=True, slots=True)
class ExplainedDocument:
    """A mapped document with, for every target value, where it came from."""

    document: MappedDocument
    traces: list[Trace]


@dataclass(frozen=True)
class CompiledMapping:
    """A loaded mapping, ready to apply to any number of files (thread-safe, immutable)."""

    path: Path
    target: str
    source: Mapping[str, Any]
    per: str
    description: str
    _root: Builder = field(repr=False)
    _key: Builder = field(repr=False)
    _group_by: tuple[str, ...] = field(repr=False)
    _record_filter: Callable[[Record], bool] | None = field(repr=False)
    _document_filter: Callable[[dict[str, Any], Record], bool] | None = field(repr=False)
    _validator: Any = field(repr=False)
    _steps: tuple[_Step, ...] = field(default=(), repr=False)
    _before: tuple[_Step, ...] = field(default=(), repr=False)
    _skips: tuple[_SkipRule, ...] = field(default=(), repr=False)
    #: Every file this compiled version was made from: the mapping file, its lookup tables
    #: and its layout file; a running gateway watches them to reload the mapping.
    files: tuple[Path, ...] = ()

    def reader(
        self, *, encoding: str | None = None, limits: ReaderLimits = DEFAULT_LIMITS
    ) -> Reader:
        """A fresh reader for this mapping's source; ``encoding`` overrides the mapping's."""
        source = dict(self.source)
        if encoding and encoding != "auto":
            source["encoding"] = encoding
        return reader_for(source, limits)

    def map_file(
        self,
        path: Path,
        *,
        source_name: str,
        encoding: str | None = None,
        notes: list[str] | None = None,
        limits: ReaderLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[MappedDocument]:
        """Documents of ``path``, streaming. Whole-file problems raise ``MalformedFileError``.

        ``notes``, when given, receives what the reader decided on its own (e.g. the detected
        encoding), for the operator. ``limits`` is the flow's budget (defaults otherwise):
        the reader keeps within it, a document over ``max_lines_per_document`` fails alone
        before it is built, and reading and mapping the file may take ``max_seconds`` of
        ``clock``.
        """
        limits = limits or DEFAULT_LIMITS
        reader = self.reader(encoding=encoding, limits=limits)
        if notes is not None and hasattr(reader, "notes"):
            reader.notes = notes
        records = reader.records(path, source_name=source_name)
        budget = _Budget(limits, clock, source_name)
        yield from self._map(records, limits.max_lines_per_document, budget)

    def explain_file(
        self,
        path: Path,
        *,
        source_name: str,
        encoding: str | None = None,
        limits: ReaderLimits | None = None,
    ) -> Iterator[ExplainedDocument]:
        """Like ``map_file``, with the origin of every target value (slower: for people)."""
        limits = limits or DEFAULT_LIMITS
        reader = self.reader(encoding=encoding, limits=limits)
        records = reader.records(path, source_name=source_name)
        for group in self._groups(records, limits.max_lines_per_document):
            traces: dict[str, Trace] = {}
            document = self._document(group, traces, limits.max_lines_per_document)
            if document is not None:
                yield ExplainedDocument(document, list(traces.values()))

    def map_records(
        self, records: Iterable[Record], *, limits: ReaderLimits | None = None
    ) -> Iterator[MappedDocument]:
        """Documents made from already-read records (the core of ``map_file``)."""
        yield from self._map(records, (limits or DEFAULT_LIMITS).max_lines_per_document, None)

    def traceable_documents(
        self,
        records: Iterable[Record],
        *,
        source_name: str = "",
        limits: ReaderLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[tuple[MappedDocument, Callable[[], dict[str, Trace]]]]:
        """Each document (as ``map_file`` makes it, within the same ``limits``) with a
        function that maps it again, tracing where each value came from, by pointer (chain
        steps under ``/before/<i>`` and ``/then/<i>``). Call it before taking the next
        document: a streaming reader may reuse its records. Only the documents asked about
        pay for tracing."""
        limits = limits or DEFAULT_LIMITS
        most = limits.max_lines_per_document
        budget = _Budget(limits, clock, source_name)
        for group in self._groups(records, most, budget):
            budget.check(group)
            document = self._document(group, None, most)
            if document is not None:
                yield document, functools.partial(self._traces_of, group, most)

    def _traces_of(self, group: list[Record], most: int) -> dict[str, Trace]:
        traces: dict[str, Trace] = {}
        self._document(group, traces, most)
        return traces

    # -- internals ---------------------------------------------------------------------

    def _map(
        self, records: Iterable[Record], most: int, budget: _Budget | None
    ) -> Iterator[MappedDocument]:
        """Documents of ``records``; the time ``budget`` is looked at before each one (and
        every 64 records of a whole-file document)."""
        for group in self._groups(records, most, budget):
            if budget is not None:
                budget.check(group)
            document = self._document(group, None, most)
            if document is not None:
                yield document

    def _groups(
        self, records: Iterable[Record], most: int, budget: _Budget | None = None
    ) -> Iterator[list[Record]]:
        keep = self._record_filter
        if keep is not None:
            records = (r for r in records if keep(r))
        if self.per == "file":
            yield from _whole_file(records, most, budget)
        elif self.per == "group":
            yield from _consecutive_groups(records, self._group_by, most)
        else:
            for record in records:
                yield [record]

    def _document(
        self, group: list[Record], trace: dict[str, Trace] | None, most: int
    ) -> MappedDocument | None:
        first = group[0]
        location = group.location if isinstance(group, _Group) else None
        ctx = _Ctx(group, trace, most)
        if isinstance(first, _GroupProblem):
            ctx.problems.append(first.problem)
            group = group[1:]
            head: Any = group[0]
            if isinstance(head, _Oversized):
                return self._oversized(head.record, ctx)
            first = head
            ctx.records = group
        refused = getattr(first, "problem", None)
        if refused is not None:  # a reader would not hold this document (over its size)
            ctx.problems.append(refused)
            return self._oversized(first, ctx)
        if self._skips and not ctx.problems:
            skipped = self._skipped(first, group, ctx.problems)
            if skipped is not None:  # decided before mapping: an unpaid order lacks its payment
                key = self._key(first, _Ctx(group, None, most), "")
                where = location or first.location
                return MappedDocument(
                    key=str(key if key is not None else where),
                    operation=self.target,
                    location=where,
                    payload=None,
                    skipped=skipped,
                )
        payload = self._root(first, ctx, "") or {}
        problems = ctx.problems
        if trace is None:  # the key's problems join the document's, prefixed
            mark = len(problems)
            key = self._key(first, ctx, "")
            if len(problems) > mark:
                problems[mark:] = [
                    DataProblem(f"key: {p.message}", p.location) for p in problems[mark:]
                ]
        else:  # untraced: the key is no target field
            key_ctx = _Ctx(group, None, most)
            key = self._key(first, key_ctx, "")
            for problem in key_ctx.problems:
                problems.append(DataProblem(f"key: {problem.message}", problem.location))
        if location is None:
            location = first.location
        if key is None:
            key = str(location)
        keep = self._document_filter
        if keep is not None and not ctx.problems and not keep(payload, first):
            return None
        if not ctx.problems:
            validator = self._validator
            if validator is not None and not validator.is_valid(payload):
                ctx.problems.extend(self._schema_problems(group, payload))
        before = self._build_steps(first, ctx, group, self._before, "before")
        steps = self._build_steps(first, ctx, group, self._steps, "then")
        return MappedDocument(
            key=str(key),
            operation=self.target,
            location=location,
            payload=None if ctx.problems else payload,
            problems=ctx.problems,
            steps=() if ctx.problems else steps,
            before=() if ctx.problems else before,
        )

    def _oversized(self, record: Record, ctx: _Ctx) -> MappedDocument:
        """A document too large to build: failed with its size, keyed by its first record."""
        key_ctx = _Ctx([record], None, ctx.most)
        key = self._key(record, key_ctx, "")
        return MappedDocument(
            key=str(key) if key is not None else str(record.location),
            operation=self.target,
            location=record.location,
            payload=None,
            problems=ctx.problems,
        )

    def _skipped(
        self, first: Record, group: list[Record], problems: list[DataProblem]
    ) -> str | None:
        """The reason of the first ``skip_if`` rule that holds, with the rule; None when none
        does. A rule that cannot be evaluated is the document's problem, never a silent skip
        or send."""
        names = {"record": RecordView(first), "records": _Records(group)}
        for rule in self._skips:
            try:
                hit = _truthy(rule.test(**names))
            except ExpressionError as exc:
                problems.append(DataProblem(f"skip_if[{rule.index}]: {exc}", first.location))
                return None
            if hit:
                return f"skipped: {rule.reason} (rule skip_if[{rule.index}]: {rule.source})"
        return None

    def _build_steps(
        self,
        first: Record,
        ctx: _Ctx,
        group: list[Record],
        compiled: tuple[_Step, ...],
        where: str,
    ) -> tuple[MappedStep, ...]:
        """The chain steps' payloads (placeholders stay for the pipeline to fill)."""
        built = []
        for i, step in enumerate(compiled):
            prefix = f"/{where}/{i}"
            mark = len(ctx.problems)
            payload = step.build(first, ctx, prefix) or {}
            if len(ctx.problems) == mark and step.validator is not None:
                waiting = set(placeholders.placeholder_fields(payload))
                for error in step.validator.iter_errors(payload):
                    path = list(error.instance_path)
                    if path and str(path[0]) in waiting:
                        continue
                    pointer = prefix + "".join("/" + _escape(str(p)) for p in path)
                    message = error.message
                    if error.kind.name == "required":
                        pointer += "/" + _escape(str(error.kind.as_dict().get("property", "")))
                        message = "required by Ecolix but missing"
                    traces: dict[str, Trace] = {}
                    step.build(first, _Ctx(group, traces, ctx.most), prefix)
                    ctx.problems.append(
                        DataProblem(
                            f"{step.target}: {message}", _locate(pointer, traces, first), pointer
                        )
                    )
            built.append(MappedStep(step.target, payload))
        return tuple(built)

    def _schema_problems(self, group: list[Record], payload: dict[str, Any]) -> list[DataProblem]:
        traces: dict[str, Trace] = {}
        self._root(group[0], _Ctx(group, traces, _UNBOUNDED), "")
        problems = []
        for error in self._validator.iter_errors(payload):
            pointer = "".join("/" + _escape(str(p)) for p in error.instance_path)
            message = error.message
            kind = error.kind.name
            if kind == "required":
                pointer += "/" + _escape(str(error.kind.as_dict().get("property", "")))
                message = "required by Ecolix but missing"
            elif kind == "falseSchema":
                message = f"unexpected field {pointer.rsplit('/', 1)[-1]!r} for Ecolix"
            problems.append(DataProblem(message, _locate(pointer, traces, group[0]), pointer))
        return problems


def _locate(pointer: str, traces: Mapping[str, Trace], fallback: Record) -> Location:
    """The source location behind ``pointer``: its own value, else a value under or above it."""
    hit = traces.get(pointer)
    if hit is not None and hit.location is not None:
        return hit.location
    prefix = pointer + "/"
    for candidate, trace in traces.items():
        if candidate.startswith(prefix):
            return trace.record
    probe = pointer
    while probe:
        probe = probe.rsplit("/", 1)[0]
        hit = traces.get(probe)
        if hit is not None:
            return hit.record
    return fallback.location


# -- compilation ---------------------------------------------------------------------------


def load_mapping(path: Path) -> CompiledMapping:
    """Read, check and compile a mapping file; ``MappingError`` lists every problem at once."""
    source = read_mapping(path)
    return _Compiler(source).compile()


class _Compiler:
    """Walks the mapping data once, building closures and collecting problems with lines."""

    def __init__(self, source: MappingSource) -> None:
        self.source = source
        self.data = source.data
        self.problems: list[str] = []
        self.tables: dict[tuple[Path, str, str], LookupTable] = {}
        # Leaves that read one cell and only trim / case / translate / convert it: objects
        # made of them take the row at once (see ``_object_builder``).
        self.simple: dict[Builder, _Simple] = {}
        self.row_plans: dict[Builder, _RowPlan] = {}
        self.flat_objects: dict[Builder, _FlatObject] = {}
        src = self.data["source"]
        # Readers resolve the files they name (flat-file layouts) against the mapping's folder.
        src.setdefault("_base", str(source.path.parent.resolve()))
        self.decimal_sep: str = src.get("decimal", ".")
        self.thousands: str = src.get("thousands", "")
        # lookup('table.csv', key) in expressions reads the tables they name, loaded here
        self.expression_tables = ExpressionTables(source.path.parent)
        self.env: BoundedEnvironment = make_environment(
            decimal_sep=self.decimal_sep,
            thousands=self.thousands,
            lookup=self.expression_tables.lookup,
        )
        self.reader: Any = None
        try:
            self.reader = reader_for(src)
        except MappingError as exc:
            self.fail(("source",), str(exc))
        self.tz = self._timezone()

    def fail(self, keys: KeyPath, message: str) -> None:
        self.problems.append(f"{self.source.where(keys)}: {message}")

    def compile(self) -> CompiledMapping:
        data = self.data
        docs = data["documents"]
        per = "record" if docs["per"] == "element" else docs["per"]
        by = docs.get("by")
        group_by = (by,) if isinstance(by, str) else tuple(by or ())
        if per == "group" and not group_by:
            self.fail(("documents", "per"), "per: group needs `by:` (the column(s) of the key)")
        if per != "group" and group_by:
            self.fail(("documents", "by"), "`by:` only applies to per: group")
        for i, selector in enumerate(group_by):
            keys: KeyPath = ("documents", "by") if isinstance(by, str) else ("documents", "by", i)
            self._check_selector(selector, keys)
        root = self._object(data["fields"], ("fields",), "", in_list=False, per=per)
        key_spec = data["key"]
        if isinstance(key_spec, dict) and ("fields" in key_spec or "each" in key_spec):
            self.fail(("key",), "the key is one value, not an object or list")
            key_builder: Builder = _nothing
        else:
            key_builder = self._leaf(key_spec, ("key",), "", key=True)
        validator = self._validator(data["target"])
        steps = tuple(
            self._step(step, ("then", i), per=per) for i, step in enumerate(data.get("then", []))
        )
        before = tuple(
            self._step(step, ("before", i), per=per)
            for i, step in enumerate(data.get("before", []))
        )
        skips = self._skip_rules()
        record_filter = self._record_filter()
        document_filter = self._document_filter(docs)
        if self.problems:
            name = self.source.path.name
            first = self.problems[0]
            msg = f"{name}: {len(self.problems)} problem(s): {first}"
            raise MappingError(msg, self.problems)
        source = dict(data["source"])
        layout = getattr(self.reader, "layout", None)
        if layout is not None:
            source["_layout"] = layout  # pinned: see FlatReader.from_source
        return CompiledMapping(
            path=self.source.path,
            target=data["target"],
            source=source,
            per=per,
            description=data.get("description", ""),
            _root=root,
            _key=key_builder,
            _group_by=group_by,
            _record_filter=record_filter,
            _document_filter=document_filter,
            _validator=validator,
            _steps=steps,
            _before=before,
            _skips=skips,
            files=self._files(),
        )

    def _files(self) -> tuple[Path, ...]:
        """The mapping file, the lookup tables it loaded and its layout file, if any."""
        found = [self.source.path.resolve()]
        found += [path for path, _, _ in self.tables]
        found += [table.path for table in self.expression_tables.tables.values()]
        layout = self.data["source"].get("layout")
        if isinstance(layout, str):
            path = Path(layout)
            found.append((path if path.is_absolute() else self.source.path.parent / path).resolve())
        return tuple(dict.fromkeys(found))

    # -- pieces ------------------------------------------------------------------------

    def _step(self, spec: Mapping[str, Any], keys: KeyPath, *, per: str) -> _Step:
        """A follow-up step: its fields, where ``answer:`` and ``original:`` may appear at the
        top level (they become placeholders filled when the step is sent)."""
        items: list[tuple[str, Builder]] = []
        for name, field_spec in spec["fields"].items():
            field_keys = (*keys, "fields", name)
            if isinstance(field_spec, dict) and (
                "answer" in field_spec or "original" in field_spec
            ):
                items.append((name, self._placeholder(name, field_spec, field_keys)))
            else:
                items.append(
                    (name, self._field(name, field_spec, field_keys, in_list=False, per=per))
                )
        builder, _ = _object_builder(
            tuple(items), self.simple, self.flat_objects, suffix="", root=True
        )
        return _Step(
            spec["target"], builder, self._validator(spec["target"], keys=(*keys, "target"))
        )

    def _skip_rules(self) -> tuple[_SkipRule, ...]:
        rules = []
        for i, rule in enumerate(self.data.get("skip_if", [])):
            test = self._expression(rule["expr"], ("skip_if", i, "expr"))
            if test is not None:
                rules.append(_SkipRule(i, rule["expr"], rule["reason"], test))
        return tuple(rules)

    def _placeholder(self, name: str, spec: Mapping[str, Any], keys: KeyPath) -> Builder:
        if keys[0] == "before" and "answer" in spec:
            self.fail(
                keys,
                "`answer:` reads the answer to the document's own write, which a `before:` "
                "step comes before; use it in a `then:` step",
            )
        others = sorted(set(spec) - {"answer", "original", "description"})
        if others or ("answer" in spec and "original" in spec):
            shown = ", ".join(others) or "original"
            self.fail(keys, f"`answer:`/`original:` stands alone in a field (not with {shown})")
        if "answer" in spec:
            value = placeholders.answer(spec["answer"])
            origin = f"answer {value[placeholders.ANSWER]!r} of the first step, when sent"
        else:
            value = placeholders.original(spec["original"])
            origin = f"the archived original's {spec['original']}, when sent"
        suffix = "/" + _escape(name)

        def build(record: Record, ctx: _Ctx, parent: str) -> Any:
            if ctx.trace is not None:
                pointer = parent + suffix
                ctx.trace[pointer] = Trace(pointer, value, origin, None, record.location)
            return dict(value)

        return build

    def _timezone(self) -> ZoneInfo | None:
        name = self.data.get("timezone", DEFAULT_TIMEZONE)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(("timezone",), f"unknown time zone {name!r} (e.g. Europe/Paris)")
            return None

    def _validator(self, target: str, *, keys: KeyPath = ("target",)) -> Any:
        from edigw.ecolix.contract import ContractError, load_contract

        try:
            spec = load_contract().operation(target)
        except ContractError as exc:
            self.fail(keys, str(exc))
            return None
        schema = spec.request_schema
        if schema is None or not spec.target:
            self.fail(keys, f"{target} is not a write operation a mapping can target")
            return None
        return jsonschema_rs.validator_for(schema, validate_formats=True)

    def _expression(self, text: str, keys: KeyPath) -> Expression | None:
        try:
            compiled = compile_expression(self.env, text)
        except ValueError as exc:
            self.fail(keys, str(exc))
            return None
        tree = parse_expression(self.env, text)
        if tree is not None:
            for problem in self.expression_tables.load_for(tree):
                self.fail(keys, problem)
        return compiled

    def _record_filter(self) -> Callable[[Record], bool] | None:
        when = self.data.get("when")
        skip = self.data.get("skip")
        when_fn = self._expression(when, ("when",)) if when else None
        skip_fn = self._expression(skip, ("skip",)) if skip else None
        if when_fn is None and skip_fn is None:
            return None

        def keep(record: Record) -> bool:
            view = RecordView(record)
            try:
                if when_fn is not None and not _truthy(when_fn(record=view)):
                    return False
                return not (skip_fn is not None and _truthy(skip_fn(record=view)))
            except ExpressionError:
                return True  # the record stays; its fields will report what is wrong

        return keep

    def _document_filter(
        self, docs: Mapping[str, Any]
    ) -> Callable[[dict[str, Any], Record], bool] | None:
        when = docs.get("when")
        skip = docs.get("skip")
        when_fn = self._expression(when, ("documents", "when")) if when else None
        skip_fn = self._expression(skip, ("documents", "skip")) if skip else None
        if when_fn is None and skip_fn is None:
            return None

        def keep(payload: dict[str, Any], record: Record) -> bool:
            names = {"payload": payload, "record": RecordView(record)}
            try:
                if when_fn is not None and not _truthy(when_fn(**names)):
                    return False
                return not (skip_fn is not None and _truthy(skip_fn(**names)))
            except ExpressionError:
                return True

        return keep

    def _check_selector(self, selector: str, keys: KeyPath) -> None:
        check = getattr(self.reader, "check_selector", None)
        if check is not None:
            problem = check(selector)
            if problem:
                self.fail(keys, problem)

    def _object(
        self, fields: Mapping[str, Any], keys: KeyPath, suffix: str, *, in_list: bool, per: str
    ) -> Builder:
        items: list[tuple[str, Builder]] = []
        for name, spec in fields.items():
            items.append((name, self._field(name, spec, (*keys, name), in_list=in_list, per=per)))
        children = tuple(items)
        root = not keys[:-1] and suffix == ""
        builder, row_plan = _object_builder(
            children, self.simple, self.flat_objects, suffix=suffix, root=root
        )
        if row_plan is not None:
            self.row_plans[builder] = row_plan
        if not root and all(b in self.simple for _, b in children):
            self.flat_objects[builder] = (
                suffix,
                tuple((name, b, self.simple[b]) for name, b in children),
            )
        return builder

    def _field(self, name: str, spec: Any, keys: KeyPath, *, in_list: bool, per: str) -> Builder:
        suffix = "/" + _escape(name)
        if not isinstance(spec, dict):
            return self._leaf(spec, keys, suffix)
        if "fields" in spec:
            for option in ("from", "value", "expr", "type", "map", "lookup", "default"):
                if option in spec:
                    self.fail(
                        (*keys, option), f"{option!r} does not apply to a field with `fields`"
                    )
            return self._nested(spec, keys, suffix, in_list=in_list, per=per)
        if "each" in spec:
            self.fail((*keys, "each"), "a list (`each`) needs `fields` for its items")
            return _nothing
        return self._leaf(spec, keys, suffix)

    def _nested(
        self, spec: Mapping[str, Any], keys: KeyPath, suffix: str, *, in_list: bool, per: str
    ) -> Builder:
        fields_keys = (*keys, "fields")
        required = bool(spec.get("required", False))
        when = spec.get("when")
        when_fn = self._expression(when, (*keys, "when")) if when else None
        each = spec.get("each")
        if each is None:
            inner = self._object(spec["fields"], fields_keys, suffix, in_list=in_list, per=per)
            return _guarded_object(inner, when_fn, required=required, suffix=suffix)
        if each == "records":
            if in_list:
                self.fail((*keys, "each"), "`each: records` cannot be nested in another list")
            if per == "record":
                self.fail(
                    (*keys, "each"),
                    "`each: records` needs documents made of several records (per: group or file)",
                )
        else:
            self._check_selector(each, (*keys, "each"))
        item = self._object(spec["fields"], fields_keys, "", in_list=True, per=per)
        row_plan = self.row_plans.get(item) if when_fn is None else None
        return _list_builder(
            item, each, when_fn, required=required, suffix=suffix, row_plan=row_plan
        )

    def _leaf(self, spec: Any, keys: KeyPath, suffix: str, *, key: bool = False) -> Builder:
        if not isinstance(spec, dict):
            spec = {"from": spec}
        if "answer" in spec or "original" in spec:
            self.fail(
                keys,
                "`answer:` and `original:` are read only at the top level of a `then:` step "
                "(values known when that step is sent)",
            )
            return _nothing
        selector: str | None = spec.get("from")
        constant = spec.get("value", _MISSING)
        expr_text = spec.get("expr")
        if selector is None and constant is _MISSING and expr_text is None:
            self.fail(keys, "say where the value comes from: `from`, `value` or `expr`")
            return _nothing
        if constant is not _MISSING and (selector is not None or expr_text is not None):
            self.fail((*keys, "value"), "a constant `value` cannot be combined with `from`/`expr`")
        if selector is not None:
            self._check_selector(selector, (*keys, "from"))
        kind = "string" if key else spec.get("type", "string")
        for option, kinds in _TYPE_OPTIONS.items():
            if option in spec and kind not in kinds:
                self.fail((*keys, option), f"{option!r} applies to type {' or '.join(kinds)} only")
        fmt = spec.get("format")
        if fmt is not None:
            try:
                check_format(fmt, kind)
            except ValueError as exc:
                self.fail((*keys, "format"), str(exc))
                fmt = None
        decimal_sep = spec.get("decimal", self.decimal_sep)
        thousands = spec.get("thousands", self.thousands)
        convert = converter(
            kind,
            fmt=fmt,
            decimal_sep=decimal_sep,
            thousands=thousands,
            scale=spec.get("scale"),
            tz=self.tz,
            **{k: spec[k] for k in ("true_values", "false_values") if k in spec},
        )
        expr_fn = self._expression(expr_text, (*keys, "expr")) if expr_text else None
        when = spec.get("when")
        when_fn = self._expression(when, (*keys, "when")) if when else None
        value_map: dict[str, Any] | None = spec.get("map")
        table = self._table(spec["lookup"], (*keys, "lookup")) if "lookup" in spec else None
        on_miss = spec.get("on_miss", "fail")
        if "on_miss" in spec and value_map is None and table is None:
            self.fail((*keys, "on_miss"), "`on_miss` applies to `map` or `lookup` only")
        default = _MISSING
        if "default" in spec:
            try:
                default = convert(spec["default"])
            except ValueError as exc:
                self.fail((*keys, "default"), f"default {exc}")
        elif on_miss == "default" and (value_map is not None or table is not None):
            self.fail((*keys, "on_miss"), "on_miss: default needs a `default:` value")
        constant_value: Any = None
        if constant is not _MISSING:
            try:
                constant_value = convert(constant)
            except ValueError as exc:
                self.fail((*keys, "value"), str(exc))
        builder, simple = _leaf_builder(
            _LeafPlan(
                suffix=suffix,
                selector=selector,
                constant=constant_value if constant is not _MISSING else None,
                is_constant=constant is not _MISSING,
                expr=expr_fn,
                when=when_fn,
                trim=bool(spec.get("trim", True)),
                case=spec.get("case"),
                value_map=value_map,
                table=table,
                on_miss=on_miss,
                default=default,
                required=key or bool(spec.get("required", False)),
                convert=convert,
                plain=(
                    plain_decimal(decimal_sep, thousands, spec.get("scale"))
                    if kind == "decimal"
                    else None
                ),
                decimal_sep=decimal_sep,
                kind=kind,
                origin=_origin(selector, constant, expr_text),
                thousands=thousands,
            )
        )
        if simple is not None:
            self.simple[builder] = simple
        return builder

    def _table(self, spec: Mapping[str, str], keys: KeyPath) -> LookupTable | None:
        path = (self.source.path.parent / spec["table"]).resolve()
        cache_key = (path, spec["key"], spec["value"])
        if cache_key in self.tables:
            return self.tables[cache_key]
        try:
            table = load_table(path, key=spec["key"], value=spec["value"])
        except MappingError as exc:
            for problem in exc.problems:
                self.fail((*keys, "table"), problem)
            return None
        self.tables[cache_key] = table
        return table


def _origin(selector: str | None, constant: Any, expr: str | None) -> str:
    if expr is not None:
        base = f"expression {expr!r}"
        return f"{base} on {selector!r}" if selector else base
    if selector is not None:
        return repr(selector)
    return f"constant {constant!r}"


def _nothing(record: Record, ctx: _Ctx, parent: str) -> Any:
    return None


@dataclass(frozen=True, slots=True)
class _LeafPlan:
    suffix: str
    selector: str | None
    constant: Any
    is_constant: bool
    expr: Expression | None
    when: Expression | None
    trim: bool
    case: str | None
    value_map: dict[str, Any] | None
    table: LookupTable | None
    on_miss: str
    default: Any
    required: bool
    convert: Callable[[Any], Any]
    plain: re.Pattern[str] | None  # decimals: text that converts by replacing decimal_sep
    decimal_sep: str
    kind: str
    origin: str
    thousands: str = ""


_CASES: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
}


def _leaf_builder(plan: _LeafPlan) -> tuple[Builder, _Simple | None]:
    """One field's closure, and its ``_Simple`` form when it has one.

    Plan attributes are copied to locals: the hot path reads no YAML.
    """
    suffix = plan.suffix
    selector = plan.selector
    is_constant = plan.is_constant
    constant = plan.constant
    expr = plan.expr
    when = plan.when
    trim = plan.trim
    case = _CASES[plan.case] if plan.case else None
    value_map = plan.value_map
    table = plan.table.values if plan.table is not None else None
    table_name = plan.table.name if plan.table is not None else ""
    table_column = f" (key column {plan.table.key_column!r})" if plan.table is not None else ""
    on_miss = plan.on_miss
    default = plan.default
    has_default = default is not _MISSING
    required = plan.required
    convert = plan.convert
    origin = plan.origin
    # An expression on a decimal field computes with the value as a Decimal (read with the
    # field's separators); a value that does not read as one is handed over as it is.
    as_number = (
        number_reader(plan.decimal_sep, plan.thousands)
        if plan.kind == "decimal" and expr is not None
        else None
    )

    def where(record: Record) -> Location:
        return record.where(selector) if selector is not None else record.location

    def problem(record: Record, ctx: _Ctx, parent: str, message: str) -> None:
        pointer = parent + suffix if suffix else None
        ctx.problems.append(DataProblem(message, where(record), pointer))

    def note(
        record: Record,
        ctx: _Ctx,
        parent: str,
        raw: Any,
        value: Any,
        how: str,
        inputs: Sequence[Location] = (),
    ) -> None:
        assert ctx.trace is not None
        pointer = parent + suffix
        ctx.trace[pointer] = Trace(
            pointer,
            value,
            how,
            where(record) if selector is not None else None,
            record.location,
            raw,
            tuple(dict.fromkeys(inputs)),
        )

    def missing(record: Record, ctx: _Ctx, parent: str, raw: Any, why: str) -> Any:
        if required:
            problem(record, ctx, parent, why)
        elif ctx.trace is not None:
            note(record, ctx, parent, raw, None, f"{origin}: empty, omitted")
        return None

    def miss(text: str) -> str:
        """Why ``text`` has no translation: the value map's known keys, or the lookup table
        and its key column, so the consultant knows which row to add where."""
        if value_map is not None:
            known = ", ".join(repr(k) for k in list(value_map)[:8])
            more = f" and {len(value_map) - 8} more" if len(value_map) > 8 else ""
            return f"{text!r} is not in the value map (known: {known}{more})"
        return f"{text!r} not found in lookup table {table_name}{table_column}"

    def translate(record: Record, ctx: _Ctx, parent: str, value: Any) -> Any:
        text = value if isinstance(value, str) else to_string(value)
        translation = value_map if value_map is not None else table
        assert translation is not None
        hit = translation.get(text, _MISSING)
        if hit is not _MISSING:
            return hit
        if on_miss == "passthrough":
            return value
        if on_miss == "default":
            return _MISSING
        problem(record, ctx, parent, miss(text))
        return None

    def passed_through(value: Any) -> str:
        """After a failed conversion: say so when the value is a lookup or map miss kept as
        it is (``on_miss: passthrough``), not a value the partner wrote like that."""
        if on_miss != "passthrough" or (value_map is None and table is None):
            return ""
        text = value if isinstance(value, str) else to_string(value)
        translation = value_map if value_map is not None else table
        assert translation is not None
        if text in translation:
            return ""
        return f" ({miss(text)}; on_miss: passthrough kept it as it is)"

    def build_leaf(record: Record, ctx: _Ctx, parent: str) -> Any:
        if when is not None:
            try:
                if not _truthy(when(record=RecordView(record), records=_Records(ctx.records))):
                    return None
            except ExpressionError as exc:
                problem(record, ctx, parent, str(exc))
                return None
        value = constant if is_constant else record.value(selector) if selector else None
        raw = value
        if trim and value.__class__ is str:
            value = value.strip() or None
        seen: list[Location] = []  # what the expression read, when traced
        if expr is not None:
            if value is not None:
                if as_number is not None:
                    value = as_number(value)
                elif value.__class__ is float:
                    value = exact_number(value)
            try:
                if ctx.trace is None:
                    view, views = RecordView(record), _Records(ctx.records)
                else:  # note what the expression reads, for --explain and refusals
                    view, views = ReadingView(record, seen), _Records(ctx.records, seen)
                value = expr(value=value, record=view, records=views)
            except ExpressionError as exc:
                problem(record, ctx, parent, str(exc))
                return None
            if value == "":
                value = None
        if value is None:
            if has_default:
                if ctx.trace is not None:
                    note(record, ctx, parent, raw, default, f"{origin}: empty, default", seen)
                return default
            why = f"required value missing ({origin} is empty)"
            if not required and ctx.trace is not None:
                note(record, ctx, parent, raw, None, f"{origin}: empty, omitted", seen)
                return None
            return missing(record, ctx, parent, raw, why)
        if is_constant:
            if ctx.trace is not None:
                note(record, ctx, parent, raw, value, origin)
            return value
        if case is not None and value.__class__ is str:
            value = case(value)
        if value_map is not None or table is not None:
            value = translate(record, ctx, parent, value)
            if value is None:
                return None
            if value is _MISSING:
                if ctx.trace is not None:
                    note(record, ctx, parent, raw, default, f"{origin}: not mapped, default")
                return default if has_default else None
        try:
            result = convert(value)
        except ValueError as exc:
            problem(record, ctx, parent, str(exc) + passed_through(value))
            return None
        if ctx.trace is not None:
            note(record, ctx, parent, raw, result, origin, seen)
        return result

    if when is not None or expr is not None or is_constant or selector is None:
        return build_leaf, None
    translation = value_map if table is None else table if value_map is None else None
    if translation is None and (value_map is not None or table is not None):
        return build_leaf, None  # both a map and a lookup: rare, keep the general path
    fast_convert = None if plan.kind == "string" else convert

    def fast_leaf(record: Record, ctx: _Ctx, parent: str) -> Any:
        """The common case (a text cell, present, maybe mapped): no detours."""
        value = record.value(selector)
        if value.__class__ is not str:
            return build_leaf(record, ctx, parent)
        raw = value
        if trim:
            value = value.strip()
            if not value:
                return build_leaf(record, ctx, parent)
        if case is not None:
            value = case(value)
        if translation is not None:
            value = translation.get(value, _MISSING)
            if value.__class__ is not str:
                return build_leaf(record, ctx, parent)  # a miss, or a non-text target value
        if fast_convert is not None:
            try:
                value = fast_convert(value)
            except ValueError as exc:
                problem(record, ctx, parent, str(exc))
                return None
        if ctx.trace is not None:
            note(record, ctx, parent, raw, value, origin)
        return value

    text_only = translation is None or all(v.__class__ is str for v in translation.values())
    plain = plan.plain.fullmatch if plan.plain is not None else None
    steps = (trim, case, translation, fast_convert, plain, plan.decimal_sep)
    return fast_leaf, (selector, steps, text_only)


# A leaf that reads one cell and only trims, cases, translates and converts it:
# (selector, steps, text_only) where steps are (trim, case, translation, converter or None
# for text, plain decimal match or None, decimal separator). For a present value (text, or
# an Excel number or date, which are neither trimmed nor cased), the field's value is
# exactly what the loops in ``_object_builder`` and ``_rows_to_objects`` compute; anything
# else (an empty cell, a miss, a conversion error, tracing) goes through the field's own
# builder. ``text_only`` (no value map to numbers or booleans) lets lists made of such
# objects be built straight from rows (``_RowList``).
_Steps = tuple[
    bool,
    Callable[[str], str] | None,
    Mapping[str, Any] | None,
    Callable[[Any], Any] | None,
    Callable[[str], Any] | None,
    str,
]
_Simple = tuple[str, _Steps, bool]
# An object made only of such leaves: names, selectors, (name, *steps) per field.
_RowPlan = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[Any, ...], ...]]
# The same object as its parent sees it: its pointer suffix, (name, builder, leaf) per field.
_FlatObject = tuple[str, tuple[tuple[str, Builder, _Simple], ...]]
_NESTED = -2  # a step that opens a child object read from the parent's row
_INDEX_POINTERS = tuple(f"/{i}" for i in range(256))


def _row_reader(selectors: tuple[str, ...]) -> Callable[[Record], Sequence[Any] | None]:
    """The raw values at ``selectors`` in one go (``values_of`` when the record offers it)."""

    def row(record: Record) -> Sequence[Any] | None:
        values_of = getattr(record, "values_of", None)
        if values_of is not None:
            result: Sequence[Any] | None = values_of(selectors)
            return result
        return [record.value(s) for s in selectors]

    return row


def _object_builder(
    children: tuple[tuple[str, Builder], ...],
    simple: Mapping[Builder, _Simple],
    flat: Mapping[Builder, _FlatObject],
    *,
    suffix: str,
    root: bool,
) -> tuple[Builder, _RowPlan | None]:
    """An object's closure. Simple leaves, and those of child objects made only of simple
    leaves (``flat``), are computed in one loop over the record's row.

    An object made only of simple leaves also gets its ``_RowPlan``, for lists of it.
    """

    def build_object(record: Record, ctx: _Ctx, parent: str) -> Any:
        pointer = parent + suffix
        out: dict[str, Any] = {}
        for name, build in children:
            value = build(record, ctx, pointer)
            if value is not None:
                out[name] = value
        if out or root:
            return out
        return None

    selectors: list[str] = []
    plan: list[tuple[Any, ...]] = []
    fields: list[tuple[Any, ...]] = []
    nested_names: list[str] = []
    for name, build in children:
        leaf = simple.get(build)
        inner = flat.get(build)
        if leaf is not None:
            selector, leaf_steps, text_only = leaf
            if text_only:
                fields.append((name, *leaf_steps))
            plan.append((name, build, len(selectors), *leaf_steps, 0, ""))
            selectors.append(selector)
        elif inner is not None:  # an object of simple leaves: read from this row too
            inner_suffix, leaves = inner
            nested_names.append(name)
            slot = len(nested_names)
            plan.append((name, build, _NESTED, False, None, None, None, None, "", slot, ""))
            for leaf_name, leaf_build, (selector, leaf_steps, _) in leaves:
                step = (leaf_name, leaf_build, len(selectors), *leaf_steps, slot, inner_suffix)
                plan.append(step)
                selectors.append(selector)
        else:
            plan.append((name, build, -1, False, None, None, None, None, "", 0, ""))
    if not selectors:
        return build_object, None
    steps = tuple(plan)
    row_of = _row_reader(tuple(selectors))
    nested = tuple(nested_names)

    def build_row_object(record: Record, ctx: _Ctx, parent: str) -> Any:
        if ctx.trace is not None:
            return build_object(record, ctx, parent)
        row = row_of(record)
        if row is None:
            return build_object(record, ctx, parent)
        pointer = parent + suffix
        out: dict[str, Any] = {}
        targets = [out]
        for name, build, index, trim, case, translation, convert, plain, sep, slot, inner in steps:
            if index >= 0:
                value = row[index]
                if value.__class__ is str:
                    if trim:
                        value = value.strip()
                    if value:
                        if case is not None:
                            value = case(value)
                        if translation is not None:
                            value = translation.get(value, _MISSING)
                        if value.__class__ is str:
                            if plain is not None and plain(value):
                                targets[slot][name] = value.replace(sep, ".")
                                continue
                            if convert is None:
                                targets[slot][name] = value
                                continue
                            try:
                                targets[slot][name] = convert(value)
                                continue
                            except ValueError:
                                pass  # the field's builder reports it, with its location
                elif value is not None:  # a number, a date (Excel): no trim, no case
                    if translation is not None:
                        value = translation.get(to_string(value), _MISSING)
                    if value is not _MISSING:
                        try:
                            targets[slot][name] = (convert or to_string)(value)
                            continue
                        except ValueError:
                            pass
                value = build(record, ctx, pointer + inner if inner else pointer)
                if value is not None:
                    targets[slot][name] = value
            elif index == _NESTED:
                target: dict[str, Any] = {}
                out[name] = target
                targets.append(target)
            else:
                value = build(record, ctx, pointer)
                if value is not None:
                    out[name] = value
        if nested:
            for name, target in zip(nested, targets[1:], strict=True):
                if not target:
                    del out[name]  # an object without values is left out
        if out or root:
            return out
        return None

    row_plan = None
    if len(fields) == len(children):
        row_plan = (tuple(name for name, _ in children), tuple(selectors), tuple(fields))
    return build_row_object, row_plan


def _guarded_object(
    inner: Builder, when: Expression | None, *, required: bool, suffix: str
) -> Builder:
    if when is None and not required:
        return inner

    def build(record: Record, ctx: _Ctx, parent: str) -> Any:
        if when is not None:
            try:
                if not _truthy(when(record=RecordView(record), records=_Records(ctx.records))):
                    return None
            except ExpressionError as exc:
                ctx.problems.append(DataProblem(str(exc), record.location, parent + suffix))
                return None
        value = inner(record, ctx, parent)
        if value is None and required:
            message = "required object missing (all its fields are empty)"
            ctx.problems.append(DataProblem(message, record.location, parent + suffix))
        return value

    return build


class _RowList:
    """A list of simple objects computed straight from its items' rows, in one loop without
    a call per field. Its methods return None when any value is not a present text value
    that translates (to text) and converts: the list is then built item by item, which says
    what is wrong and where.
    """

    __slots__ = ("from_rows", "selectors")

    def __init__(self, plan: _RowPlan) -> None:
        _, selectors, fields = plan
        self.selectors = selectors
        self.from_rows = _rows_to_objects(fields)

    def from_records(self, items: Sequence[Record]) -> list[Any] | None:
        """The list made of ``items`` (records that offer ``rows_of`` or ``values_of``)."""
        if not items:
            return None
        selectors = self.selectors
        rows_of = getattr(items[0], "rows_of", None)
        if rows_of is None:
            row_of = _row_reader(selectors)
            rows = [row_of(item) for item in items]
        else:
            rows = rows_of(items, selectors)
        if rows is None or len(rows) != len(items):
            return None
        return self.from_rows(rows)

    def from_children(self, record: Record, each: str, most: int) -> list[Any] | None:
        """The list made of ``record.children(each)``, read without making their records
        (None as well when there are more than ``most``: the builder says so)."""
        child_rows = getattr(record, "child_rows", None)
        if child_rows is None:
            items = record.children(each)
            return self.from_records(items) if len(items) <= most else None
        rows = child_rows(each, self.selectors)
        return self.from_rows(rows) if rows and len(rows) <= most else None


def _rows_to_objects(
    fields: tuple[tuple[Any, ...], ...],
) -> Callable[[list[Any]], list[Any] | None]:
    def by_rows(rows: list[Any]) -> list[Any] | None:
        out: list[Any] = []
        append = out.append
        for row in rows:
            if row is None:
                return None
            item: dict[str, Any] = {}
            for (name, trim, case, translation, convert, plain, sep), value in zip(
                fields, row, strict=False
            ):
                if value.__class__ is not str:
                    if value is None:
                        return None
                    if translation is not None:  # a number, a date (Excel): no trim, no case
                        value = translation.get(to_string(value))
                        if value is None:
                            return None
                    try:
                        item[name] = (convert or to_string)(value)
                    except ValueError:
                        return None
                    continue
                if trim:
                    value = value.strip()
                if not value:
                    return None
                if case is not None:
                    value = case(value)
                if translation is not None:
                    value = translation.get(value)
                    if value is None:
                        return None
                if plain is not None and plain(value):
                    value = value.replace(sep, ".")
                elif convert is not None:
                    try:
                        value = convert(value)
                    except ValueError:
                        return None
                item[name] = value
            append(item)
        return out

    return by_rows


def _list_builder(
    item: Builder,
    each: str,
    when: Expression | None,
    *,
    required: bool,
    suffix: str,
    row_plan: _RowPlan | None = None,
) -> Builder:
    from_records = each == "records"
    by_rows = _RowList(row_plan) if row_plan is not None else None

    def build_list(record: Record, ctx: _Ctx, parent: str) -> Any:
        pointer = parent + suffix
        if by_rows is not None and ctx.trace is None:
            if from_records:
                done = by_rows.from_records(ctx.records)
            else:
                done = by_rows.from_children(record, each, ctx.most)
            if done is not None:
                return done
        items = ctx.records if from_records else record.children(each)
        if len(items) > ctx.most:
            message = (
                f"the list {each!r} has {len(items):,} items, "
                f"{over(ctx.most, 'max_lines_per_document')}; the document is refused"
            )
            ctx.problems.append(DataProblem(message, record.location, pointer))
            return None
        out: list[Any] = []
        for element in items:
            if when is not None:
                try:
                    if not _truthy(when(record=RecordView(element), records=_Records(ctx.records))):
                        continue
                except ExpressionError as exc:
                    ctx.problems.append(DataProblem(str(exc), element.location, pointer))
                    continue
            n = len(out)
            value = item(element, ctx, pointer + (_INDEX_POINTERS[n] if n < 256 else f"/{n}"))
            if value is not None:
                out.append(value)
        if out:
            return out
        if required:
            where = "records" if from_records else repr(each)
            message = f"required list is empty (no {where} with values)"
            ctx.problems.append(DataProblem(message, record.location, pointer))
        return None

    return build_list
