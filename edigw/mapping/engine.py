"""The mapping engine: a mapping file compiled once into small closures, applied to records.

Compilation turns every target field into a function ``build(record, ctx, parent_pointer)``
that reads, trims, maps, looks up and converts one value. Applying a mapping is then a walk of
those functions per document, with no interpretation of the YAML left in the hot path.

Problems are collected per document, all at once, each with the source Location and the JSON
pointer of the target field. Payloads are validated against the contract's request schema of
the target operation; a schema error is traced back to the source value that produced it by
mapping the document a second time with tracing on (only failed documents pay for that).

This module keeps the compiled mapping (``CompiledMapping``): what a loaded mapping holds and
how it is applied to records. Beside it: ``compiler`` (``load_mapping``: a mapping file into
builders and a ``CompiledMapping``), ``builders`` (the closures, and their shortcuts for the
common fields), ``grouping`` (records into documents, within the size and time limits) and
``context`` (what every builder is handed, ``Trace``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edigw.errors import DataProblem
from edigw.formats import reader_for
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.mapping import steps as placeholders
from edigw.mapping.context import _UNBOUNDED, Builder, Trace, _Ctx, _Records, _truthy
from edigw.mapping.expressions import Expression, ExpressionError, RecordView
from edigw.mapping.grouping import (
    _Budget,
    _consecutive_groups,
    _Group,
    _GroupProblem,
    _Oversized,
    _whole_file,
)
from edigw.model import Location, MappedDocument, MappedStep, Reader, Record


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
