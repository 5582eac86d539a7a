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
    ``Sheet!C12``), record type, field name and column range (flat files).
    """

    file: str
    line: int | None = None
    column: int | None = None
    xpath: str | None = None
    cell: str | None = None
    record_type: str | None = None
    field: str | None = None
    columns: tuple[int, int] | None = None

    def __str__(self) -> str:
        text = self.file
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


@dataclass(slots=True)
class MappedDocument:
    """What the mapping engine makes of one business document found in a file.

    ``payload`` is ``None`` when ``problems`` is not empty: a document is sent whole or not
    at all, and all its problems are reported at once.
    """

    key: str
    operation: str
    location: Location
    payload: dict[str, Any] | None
    problems: list[DataProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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
