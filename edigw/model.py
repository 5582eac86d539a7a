"""The few data types that cross module boundaries.

Flow of an inbound file::

    channel ─▶ reader (Record, each with a Location) ─▶ mapping (MappedDocument)
            ─▶ pipeline (Operation: + idempotency key) ─▶ Ecolix client ─▶ Outcome ─▶ journal

They are plain dataclasses: no I/O, no behaviour beyond formatting, so every module can
import them without pulling in a library.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from edigw.errors import DataProblem


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value sits in a source file, as precisely as the format knows.

    ``file`` is the name the partner gave the file. The other fields are filled when the
    format knows them: line/column (CSV, XML, flat files), XPath (XML), cell (Excel,
    ``Sheet!C12``), record type, field name and column range (flat files). ``part`` names a
    file inside the file (the XML attached to a Factur-X PDF: ``invoice.pdf!factur-x.xml:12``)
    and ``term`` the business term a value stands for (e-invoices: ``BT-115 totals.payable``).
    """

    file: str
    line: int | None = None
    column: int | None = None
    xpath: str | None = None
    cell: str | None = None
    record_type: str | None = None
    field: str | None = None
    columns: tuple[int, int] | None = None
    part: str | None = None
    term: str | None = None

    def __str__(self) -> str:
        text = self.file if self.part is None else f"{self.file}!{self.part}"
        if self.cell:
            return f"{text} {self.cell}"
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        if self.xpath:
            text += f" {self.xpath}"
        if self.record_type:
            text += f" record {self.record_type}"
        if self.field:
            text += f" field {self.field}"
        if self.columns:
            text += f" (columns {self.columns[0]}-{self.columns[1]})"
        if self.term:
            text += f" ({self.term})"
        return text


class Record(Protocol):
    """One unit of source data as a reader yields it.

    A reader (CSV row, XML element, Excel row, flat-file record) hides its format behind
    these four members so that the mapping engine addresses every format the same way:
    a *selector* is a column name, an XPath, a header label or a flat-file field name.
    """

    @property
    def location(self) -> Location:
        """Where the record starts."""
        ...

    def value(self, selector: str) -> Any:
        """The raw value at ``selector`` (``None`` when absent or empty)."""
        ...

    def where(self, selector: str) -> Location:
        """The location of the value at ``selector``, for error messages."""
        ...

    def children(self, selector: str) -> Sequence[Record]:
        """Nested records at ``selector`` (XML sub-elements, flat-file detail records)."""
        ...


class Reader(Protocol):
    """Turns a file into records, streaming, each with its Location."""

    def records(self, path: Path, *, source_name: str) -> Iterator[Record]: ...


@dataclass(frozen=True, slots=True)
class MappedStep:
    """A further write of a document's chain (a mapping's ``before:`` or ``then:``).

    Its payload may hold placeholders resolved when it is sent (``edigw.mapping.steps``):
    a value of the first step's Ecolix answer, or the archived original file.
    """

    operation: str
    payload: dict[str, Any]


@dataclass(slots=True)
class MappedDocument:
    """What the mapping engine makes of one business document found in a file.

    ``payload`` is ``None`` when ``problems`` is not empty: a document is sent whole or not
    at all, and all its problems are reported at once. ``steps`` are the follow-up writes
    (empty for most mappings), sent in order after ``operation`` succeeded.
    """

    key: str
    operation: str
    location: Location
    payload: dict[str, Any] | None
    problems: list[DataProblem] = field(default_factory=list)
    steps: tuple[MappedStep, ...] = ()
    #: Writes made *before* ``operation`` (a mapping's ``before:``): the customer an order
    #: needs, upserted first. Each is a step of the chain, like ``steps``.
    before: tuple[MappedStep, ...] = ()
    #: Why the mapping skipped the document (a ``skip_if`` rule): it is journalled, never sent.
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def writes(self) -> list[MappedStep]:
        """The chain in order: ``before`` steps, the document's own write, ``steps``."""
        assert self.payload is not None
        return [*self.before, MappedStep(self.operation, self.payload), *self.steps]

    @property
    def main_position(self) -> int:
        """The chain position (1-based) of the document's own write."""
        return len(self.before) + 1


@dataclass(frozen=True, slots=True)
class Operation:
    """One Ecolix write, ready to send: operation id from the contract, body, idempotency key."""

    name: str
    payload: dict[str, Any]
    idempotency_key: str


class OutcomeKind(StrEnum):
    DONE = "done"
    RETRY_WAIT = "retry-wait"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt at one document ended."""

    kind: OutcomeKind
    status: int | None = None
    response: dict[str, Any] | None = None
    object_id: str | None = None
    reason: str = ""
    retry_at: datetime | None = None
    replayed: bool = False
