"""Ecolix refusals traced to their cells, in the gateway.

Ecolix refuses a document with JSON pointers (``/lines/1/article_code``); the operator needs
the file, line and column. Nothing is recorded for that on the happy path: when a document
is refused, its file is mapped again from the archive, as far as that document, and the
document traced (``CompiledMapping.traceable_documents``), so the refusal is journalled with
the source place of every value refused (``edigw.mapping.refusals``)::

    refused by Ecolix: 422 Payment does not match the order total;
    commandes.csv:2:9 field montant_paye_ttc [/payment/amount]: payment 314.60 does not …

Costs, measured rather than guessed: a refusal costs mapping its file up to the document
again, never a byte or a microsecond more per document sent. The documents of a file are
sent in order, so the reading of a file is kept open between its refusals (a few files at
a time, :data:`OPEN_READINGS`): a file whose every document is refused is read once more in
all, not once per document.

The document found must map to the very payload that was sent (the mapping may have changed
since the file was read): otherwise, and whenever the file cannot be read again, the
refusal is journalled as Ecolix gave it, with its pointers and no place; a wrong cell would
be worse than none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edigw.errors import FieldError, Problem
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.journal.archive import Archive
from edigw.journal.rows import DocumentRow
from edigw.journal.store import Journal
from edigw.mapping.context import Trace
from edigw.mapping.refusals import chain_prefix, located
from edigw.mapping.steps import CHAIN
from edigw.model import MappedDocument
from edigw.pipeline.chain import chain_of
from edigw.pipeline.inbound import FlowContext
from edigw.problems import MAX_MESSAGE, ProblemEntry, cut, summarize

log = logging.getLogger(__name__)

#: Files whose reading stays open between refusals (each holds one reader at rest).
OPEN_READINGS = 4

_Traced = Iterator[tuple[MappedDocument, Callable[[], dict[str, Trace]]]]


def refusal_text(problem: Problem, entries: Sequence[ProblemEntry]) -> str:
    """Ecolix's refusal with the source place of each field it refused:
    ``422 Title; place [/pointer]: message; ...`` (Ecolix's detail too, when it says more
    than its field errors), within ``MAX_MESSAGE`` characters."""
    head = f"{problem.status} {problem.title or problem.type}"
    if problem.detail and not all(e.message and e.message in problem.detail for e in entries):
        head += f": {cut(problem.detail, MAX_MESSAGE // 2)}"
    if not entries:
        return head
    text = summarize(
        (str(e) for e in entries), limit=MAX_MESSAGE - len(head), sep="; ", total=len(entries)
    )
    return f"{head}; {text}"


class _WorkClock:
    """Seconds spent reading a file again, not counting the waits between its refusals: the
    flow's ``max_seconds`` bounds the reading, not how long it is kept open."""

    __slots__ = ("_since", "_spent")

    def __init__(self) -> None:
        self._spent = 0.0
        self._since: float | None = None

    def __call__(self) -> float:
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self._spent + running

    @contextmanager
    def running(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._spent += time.monotonic() - self._since
            self._since = None


@dataclass(slots=True)
class _Reading:
    """A file being mapped again, stopped after the last document asked about."""

    mapping: Any
    documents: _Traced
    clock: _WorkClock

    def close(self) -> None:
        close = getattr(self.documents, "close", None)
        if close is not None:
            close()


class RefusalLocator:
    """Finds the source places of the values Ecolix refused in a journalled document.

    ``flows`` gives a flow's live context (its current mapping and encoding) by
    ``partner/flow``. Thread-safe: each reading is used by one sender at a time.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        archive: Archive,
        flows: Callable[[str], FlowContext | None],
        open_readings: int = OPEN_READINGS,
    ) -> None:
        self._journal = journal
        self._archive = archive
        self._flows = flows
        self._open = open_readings
        self._lock = threading.Lock()
        self._readings: OrderedDict[int, _Reading] = OrderedDict()

    def locate(self, doc: DocumentRow, errors: Sequence[FieldError]) -> list[ProblemEntry] | None:
        """``errors`` with their source places; None when they cannot be told (the flow is
        gone, the file cannot be read again, the mapping no longer makes what was sent)."""
        if not errors or doc.payload is None:
            return None
        try:
            return self._locate(doc, errors)
        except Exception:  # a refusal is journalled in any case, with or without places
            log.warning(
                "D-%d: the source of Ecolix's refusal cannot be told", doc.id, exc_info=True
            )
            return None

    def close(self) -> None:
        with self._lock:
            readings = list(self._readings.values())
            self._readings.clear()
        for reading in readings:
            reading.close()

    # -- internals -------------------------------------------------------------------------

    def _locate(self, doc: DocumentRow, errors: Sequence[FieldError]) -> list[ProblemEntry] | None:
        assert doc.payload is not None
        flow = self._flows(f"{doc.partner}/{doc.flow}")
        mapping = flow.mapping if flow is not None else None
        if flow is None or not hasattr(mapping, "traceable_documents"):
            return None
        chain = chain_of(doc.payload)
        position = 1 if chain is None else chain[0]
        sent = {k: v for k, v in doc.payload.items() if k != CHAIN}
        row = self._journal.file(doc.file_id)
        path = self._archive.local_copy(row.sha256)
        found = self._find(
            doc.file_id,
            mapping,
            lambda clock: _traced(
                mapping, path, row.original_name, flow.encoding, flow.limits, clock
            ),
            key=doc.business_key,
            wanted=lambda d: _canonical(_payload_of(d, position)) == _canonical(sent),
        )
        if found is None:
            log.info(
                "D-%d: %s no longer maps to what was sent: its refusal is kept without places",
                doc.id,
                row.ref,
            )
            return None
        document, traces = found
        return located(errors, traces, document.location, prefix=chain_prefix(document, position))

    def _find(
        self,
        file_id: int,
        mapping: Any,
        start: Callable[[_WorkClock], _Traced],
        *,
        key: str,
        wanted: Callable[[MappedDocument], bool],
    ) -> tuple[MappedDocument, dict[str, Trace]] | None:
        """The document ``key`` that ``wanted`` accepts, traced: searched from where the
        file's reading stopped, then once from the start (a retry, a replay)."""
        with self._lock:
            reading = self._readings.pop(file_id, None)
        if reading is not None and reading.mapping is not mapping:
            reading.close()
            reading = None
        resumed = reading is not None
        if reading is None:
            reading = _begin(mapping, start)
        found = _search(reading, key, wanted)
        if found is None and resumed:
            reading.close()
            reading = _begin(mapping, start)
            found = _search(reading, key, wanted)
        if found is None:
            reading.close()
            return None
        self._keep(file_id, reading)
        return found

    def _keep(self, file_id: int, reading: _Reading) -> None:
        with self._lock:
            self._readings[file_id] = reading
            evicted = []
            while len(self._readings) > self._open:
                evicted.append(self._readings.popitem(last=False)[1])
        for old in evicted:
            old.close()


def _begin(mapping: Any, start: Callable[[_WorkClock], _Traced]) -> _Reading:
    clock = _WorkClock()
    return _Reading(mapping, start(clock), clock)


def _search(
    reading: _Reading, key: str, wanted: Callable[[MappedDocument], bool]
) -> tuple[MappedDocument, dict[str, Trace]] | None:
    with reading.clock.running():
        for document, trace in reading.documents:
            if document.key == key and document.ok and wanted(document):
                return document, trace()  # traced now: the reader may reuse its records next
    return None


def _traced(
    mapping: Any,
    path: Path,
    source_name: str,
    encoding: str | None,
    limits: ReaderLimits | None,
    clock: _WorkClock,
) -> _Traced:
    """The file's documents read again as at intake: same encoding, same limits."""
    limits = limits or DEFAULT_LIMITS
    records = mapping.reader(encoding=encoding, limits=limits).records(
        path, source_name=source_name
    )
    documents: _Traced = mapping.traceable_documents(
        records, source_name=source_name, limits=limits, clock=clock
    )
    return documents


def _payload_of(document: MappedDocument, position: int) -> Mapping[str, Any] | None:
    """The payload of the write at chain ``position`` (1-based: ``before:`` steps, the
    document's own write, ``then:`` steps)."""
    if document.payload is None:
        return None
    writes = document.writes()
    return writes[position - 1].payload if position <= len(writes) else None


def _canonical(payload: Any) -> str:
    return json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
