"""A flow's high-water mark: which records a delta run exports, and the mark they move to.

Delta windows and records updated at the same instant as the mark
-----------------------------------------------------------------
The mark is the greatest ``updated_at`` among the records a delivered file held. The next run
asks Ecolix for ``updated_since=mark``, which the contract defines as *inclusive* (``>=``).
An exclusive bound would be simpler but loses data: a record committed just after our query
with the very same timestamp as the mark would never be exported. With the inclusive bound,
those late records come back, and so do the records at the mark that we already delivered;
the latter are dropped by de-duplication: kept next to the journal's mark (see
:class:`MarkStore`) are the fingerprints (hash of the record's JSON) of the delivered records whose ``updated_at`` equals
the mark (8 bytes each, see :class:`Fingerprints`). A record at the mark whose fingerprint is known was delivered unchanged; any other
record at the mark is new. Fingerprints, not ids, because an id alone cannot tell "the same
version" from "another change in the same instant", and because they work for every
resource without knowing its key. The set is usually tiny (records of one instant); it is
reset whenever the mark moves forward.

A second run after changes therefore exports exactly the records changed since, and nothing
is lost if writes land in the same instant as the mark.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from edigw.errors import DataProblem, SourceDataError
from edigw.model import Location
from edigw.outbound.filters import parse_datetime

UPDATED_AT = "updated_at"


class Fingerprints:
    """A compact set of 64-bit record fingerprints: 8 bytes each, sorted, searched by bisect.

    A bulk load can give a million records the very same ``updated_at``; a Python set of
    them would cost ~60 MB, this costs 8 MB, so memory stays flat whatever the export size.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[int] = ()) -> None:
        self._values = array("Q", sorted(set(values)))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect.bisect_left(self._values, value)
        return i < len(self._values) and self._values[i] == value

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Fingerprints):
            return self._values == other._values
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values.tobytes())

    def __repr__(self) -> str:
        return f"Fingerprints({len(self)})"

    def union(self, other: Iterable[int]) -> Fingerprints:
        return Fingerprints([*self._values, *other])

    def to_text(self) -> str:
        return base64.b64encode(self._values.tobytes()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Fingerprints:
        values = array("Q")
        values.frombytes(base64.b64decode(text, validate=True))
        return cls(values)


@dataclass(frozen=True, slots=True)
class Mark:
    """The high-water mark of a flow: an instant, and the records at it already delivered."""

    at: datetime
    fingerprints: Fingerprints = field(default_factory=Fingerprints)


# --------------------------------------------------------------------------- delta logic (pure)


def fingerprint(record: Mapping[str, Any]) -> int:
    """A stable 64-bit hash of a record's content (key order does not matter)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class DeltaTracker:
    """Filters a record stream against the mark and computes the next mark as it passes.

    Used as a generator wrapper between the Ecolix listing and the template, so it adds no
    pass over the data and keeps no record in memory.
    """

    def __init__(self, mark: Mark | None, *, resource: str) -> None:
        self.mark = mark
        self.resource = resource
        self.max_at: datetime | None = None
        self.at_max = array("Q")
        self.skipped = 0

    def filter(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        mark = self.mark
        index = 0
        for record in records:
            index += 1
            raw = record.get(UPDATED_AT)
            if raw is None:
                msg = f"Ecolix record has no {UPDATED_AT}, so no delta can be computed"
                raise SourceDataError(
                    DataProblem(msg, Location(self.resource, line=index, field=UPDATED_AT))
                )
            at = _aware(raw, self.resource, index)
            if mark is not None and (
                at < mark.at or (at == mark.at and fingerprint(record) in mark.fingerprints)
            ):
                self.skipped += 1
                continue
            if self.max_at is None or at > self.max_at:
                self.max_at = at
                self.at_max = array("Q", [fingerprint(record)])
            elif at == self.max_at:
                self.at_max.append(fingerprint(record))
            yield record

    def next_mark(self) -> Mark | None:
        """The mark after delivering what passed (``None`` when nothing passed)."""
        if self.max_at is None:
            return None
        if self.mark is not None and self.max_at == self.mark.at:
            return Mark(self.max_at, self.mark.fingerprints.union(self.at_max))
        return Mark(self.max_at, Fingerprints(self.at_max))


def _aware(raw: Any, resource: str, index: int) -> datetime:
    try:
        value = parse_datetime(raw)
    except ValueError as exc:
        msg = f"Ecolix record has an unreadable {UPDATED_AT}: {raw!r}"
        raise SourceDataError(
            DataProblem(msg, Location(resource, line=index, field=UPDATED_AT))
        ) from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        msg = f"Ecolix record has an {UPDATED_AT} without time zone: {raw!r}"
        raise SourceDataError(DataProblem(msg, Location(resource, line=index, field=UPDATED_AT)))
    return value


# --------------------------------------------------------------------------- marks


class MarkStore:
    """The flow's mark in the journal: the instant, and the fingerprints of the records at it.

    Both live in the journal (``export_cursors``), shared by every node: whichever node runs
    the export next (another node after a takeover, a new node with an empty disk) carries
    on without delivering the boundary records again. A mark written before the journal kept
    the fingerprints has them in ``<folder>/<partner>/<flow>.json``, trusted only when their
    instant equals the journal's; without them the boundary records are simply sent again
    (at-least-once, never a record lost).
    """

    def __init__(self, journal: Any, folder: Path | None) -> None:
        self._journal = journal
        self._folder = folder

    def _file(self, partner: str, flow: str) -> Path | None:
        return self._folder / partner / f"{flow}.json" if self._folder else None

    def load(self, partner: str, flow: str) -> Mark | None:
        stored = self._journal.export_mark(partner, flow)
        if stored is None:
            return None
        at, boundary = stored
        if boundary is not None:
            return Mark(at, Fingerprints.from_text(boundary))
        path = self._file(partner, flow)
        if path is None:
            return Mark(at)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if parse_datetime(data["at"]) == at:
                return Mark(at, Fingerprints.from_text(data["fingerprints"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return Mark(at)

    def save(self, partner: str, flow: str, mark: Mark, *, now: datetime) -> None:
        self._journal.advance_cursor(
            partner, flow, mark.at, now=now, boundary=mark.fingerprints.to_text()
        )


def _as_row(mark: Mark | None) -> tuple[datetime, str] | None:
    """A mark as the journal keeps it: its instant and its boundary fingerprints."""
    return None if mark is None else (mark.at, mark.fingerprints.to_text())
