"""Records into documents: one per record, one per run of consecutive records sharing a
key (``per: group``) or one per file (``per: file``), each within the most records a document
may have; and the time budget a file has to be read and mapped, looked at between documents.

Separate from the engine: this decides which records make a document, before any builder
runs, and is where a file's size and time limits are kept while it streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.limits import ReaderLimits, over
from edigw.mapping.context import _MISSING, _UNBOUNDED
from edigw.model import Location, Record


class _Group(list[Any]):
    """A document's records, with the location of its first record (computed once)."""

    __slots__ = ("location",)

    def __init__(self, record: Record, location: Location) -> None:
        super().__init__((record,))
        self.location = location


class _GroupProblem:
    """A marker heading a group whose records are not consecutive (a data problem)."""

    __slots__ = ("problem",)

    def __init__(self, problem: DataProblem) -> None:
        self.problem = problem


class _Oversized:
    """Stands for a document's records when there were too many to hold: its first one."""

    __slots__ = ("record",)

    def __init__(self, record: Record) -> None:
        self.record = record


def _too_many(record: Record, what: str, most: int) -> list[Any]:
    """The group that stands for a document of more than ``most`` records."""
    message = (
        f"the document {what}has more than {most:,} records, "
        f"{over(most, 'max_lines_per_document')}; it is refused before it is built"
    )
    return [_GroupProblem(DataProblem(message, record.location)), _Oversized(record)]


def _whole_file(
    records: Iterable[Record], most: int, budget: _Budget | None = None
) -> Iterator[list[Any]]:
    """``per: file``: every record in one document, at most ``most`` of them."""
    everything: list[Record] = []
    for record in records:
        if budget is not None and not len(everything) & 63:
            budget.check([record])
        if len(everything) == most:
            for _ in records:  # read on: the reader still checks the rest of the file
                pass
            yield _too_many(everything[0], "of the file ", most)
            return
        everything.append(record)
    if everything:
        yield everything


def _consecutive_groups(
    records: Iterable[Record], selectors: tuple[str, ...], most: int = _UNBOUNDED
) -> Iterator[list[Any]]:
    """Runs of consecutive records sharing the ``by`` value(s); a key seen again is a problem.

    A run longer than ``most`` records stops being held: it becomes one failed document
    (its first record and the problem), and its neighbours map as usual.
    """
    seen: dict[tuple[Any, ...], Location] = {}
    current: list[Any] = []
    current_key: tuple[Any, ...] | None = None
    single = selectors[0] if len(selectors) == 1 else None
    current_raw: Any = _MISSING
    room = most  # records the current run may still take
    for record in records:
        if single is not None:
            raw = record.value(single)
            if raw == current_raw:  # the common case: same text as the previous row
                if room > 0:
                    current.append(record)
                    room -= 1
                elif not room:
                    current = _overflow(current, current_key, selectors, most)
                    room = -1  # over: the run's further records are not held
                continue
            current_raw = raw
            key = (_clean(raw),)
        else:
            key = tuple(_clean(record.value(s)) for s in selectors)
        if current and key == current_key:
            if room > 0:
                current.append(record)
                room -= 1
            elif not room:
                current = _overflow(current, current_key, selectors, most)
                room = -1
            continue
        if current:
            yield current
        current_key = key
        room = most - 1
        if None in key:
            missing = selectors[key.index(None)]
            message = f"the grouping value {missing!r} is empty"
            current = [_GroupProblem(DataProblem(message, record.where(missing))), record]
        elif key in seen:
            message = (
                f"records of {' / '.join(map(str, key))} are not consecutive: this document "
                f"already started at {seen[key]}; sort the file by {', '.join(selectors)}"
            )
            current = [_GroupProblem(DataProblem(message, record.location)), record]
        else:
            location = seen[key] = record.location
            current = _Group(record, location)
    if current:
        yield current


def _overflow(
    current: list[Any], key: tuple[Any, ...] | None, selectors: tuple[str, ...], most: int
) -> list[Any]:
    """The run has more than ``most`` records: keep only what stands for it (no further
    record of the run is held)."""
    first = next(r for r in current if not isinstance(r, _GroupProblem))
    what = " / ".join(f"{s} {v}" for s, v in zip(selectors, key or (), strict=False))
    return _too_many(first, f"of {what} " if what else "", most)


class _Budget:
    """The time one file may take to read and map (``limits.max_seconds`` of ``clock``),
    looked at between documents: a cheap check, as records are read while documents are
    made."""

    __slots__ = ("clock", "deadline", "name", "seconds")

    def __init__(self, limits: ReaderLimits, clock: Callable[[], float], name: str) -> None:
        self.clock = clock
        self.seconds = limits.max_seconds
        self.deadline = clock() + limits.max_seconds
        self.name = name

    def check(self, group: Sequence[Any]) -> None:
        if self.clock() <= self.deadline:
            return
        first = next((r for r in group if not isinstance(r, _GroupProblem)), None)
        where = first.record if isinstance(first, _Oversized) else first
        message = (
            f"reading and mapping {self.name} took more than {self.seconds:g} s, "
            f"{over(self.seconds, 'max_seconds', 's')}; stopped at this record"
        )
        location = where.location if where is not None else Location(self.name)
        raise MalformedFileError(DataProblem(message, location))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value
