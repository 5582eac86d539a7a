"""What every builder is handed, and what the engine, the compiler, the builders and the
grouping of records share: a document's context (``_Ctx``: its records, its problems and,
when traced, a ``Trace`` per target value), the ``Builder`` signature, and the sentinels and
helpers they all read.

Separate so that each of those modules can import these without importing one another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edigw.errors import DataProblem
from edigw.mapping.expressions import ReadingView, RecordView
from edigw.model import Location, Record

_MISSING: Any = object()  # nothing given or found (None is a value: an empty one)
_UNBOUNDED = 1 << 62  # a count of records no document reaches: no limit


@dataclass(frozen=True, slots=True)
class Trace:
    """Where one target value came from: for ``--explain`` and for locating schema errors."""

    pointer: str
    value: Any
    origin: str
    location: Location | None
    record: Location
    raw: Any = None
    #: what an expression read (``record['x']``, ``records[i].y``), in reading order
    inputs: tuple[Location, ...] = ()


class _Ctx:
    """Per-document state handed down the builders."""

    __slots__ = ("most", "problems", "records", "trace")

    def __init__(
        self, records: Sequence[Record], trace: dict[str, Trace] | None, most: int
    ) -> None:
        self.problems: list[DataProblem] = []
        self.records = records
        self.trace = trace
        self.most = most  # the longest list a document may have (max_lines_per_document)


class _Records:
    """``records`` in expressions: the document's records as read-only views (which note
    where they read, into ``seen``, when the document is traced)."""

    __slots__ = ("_records", "_seen")

    def __init__(self, records: Sequence[Record], seen: list[Location] | None = None) -> None:
        self._records = records
        self._seen = seen

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> RecordView:
        return self._view(self._records[index])

    def __iter__(self) -> Iterator[RecordView]:
        return (self._view(r) for r in self._records)

    def _view(self, record: Record) -> RecordView:
        return RecordView(record) if self._seen is None else ReadingView(record, self._seen)


Builder = Callable[[Record, _Ctx, str], Any]


def _truthy(value: Any) -> bool:
    return bool(value) and value not in ("false", "False", "0")
