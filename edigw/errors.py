"""Every error edigw raises on purpose, in one tree.

The class decides what happens next, so callers catch by class, never by message::

    EdigwError
    ├── ConfigError            edigw.yaml is wrong: fix the file, restart (path + line)
    ├── SourceDataError        a partner file or one of its documents is wrong (Location)
    │   └── MalformedFileError the whole file cannot be read (encoding, truncated XML, ...)
    │       └── NotAnInvoiceError  an e-invoice flow got something else (an order, a status, ...)
    ├── MappingError           a mapping file or lookup table is wrong (file + line + key)
    ├── EcolixError            Ecolix refused or could not answer
    │   ├── EcolixRetriableError   network, timeout, 429, 502/503/504: retry-wait
    │   │   └── EcolixNotSentError     the request never left: retry-wait, no attempt counted
    │   └── EcolixFinalError       any other 4xx: the document fails with the reason
    │       ├── EcolixAuthError        401/403
    │       ├── EcolixNotFoundError    404
    │       └── EcolixConflictError    409 (business duplicate, idempotency key reuse)
    ├── ChannelError           a folder or SFTP server misbehaved
    │   └── HostKeyError       an SFTP server presented an unknown or changed host key
    └── JournalError           the exchange journal cannot be read or written

Third-party exceptions (httpx, paramiko, lxml, openpyxl, SQLAlchemy) are translated into
these at the module that calls the library (``raise ... from exc``) and never leak further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edigw.model import Location
from edigw.problems import MAX_MESSAGE, cut, summarize


class EdigwError(Exception):
    """Base class: the message is meant for a person (what, where, what to do next)."""


class ConfigError(EdigwError):
    """The configuration file is invalid; ``problems`` lists every problem found at once."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


@dataclass(frozen=True, slots=True)
class DataProblem:
    """One thing wrong with source data: where it is, which target field, and why."""

    message: str
    location: Location | None = None
    pointer: str | None = None  # JSON pointer into the Ecolix payload, when known

    def __str__(self) -> str:
        parts = [str(self.location)] if self.location else []
        if self.pointer is not None:
            parts.append(f"[{self.pointer}]")
        parts.append(self.message)
        return " ".join(parts) if len(parts) == 1 else f"{' '.join(parts[:-1])}: {parts[-1]}"


class SourceDataError(EdigwError):
    """Source data is wrong; carries every problem found (not only the first).

    Its message names the first problems only (``MAX_MESSAGE`` characters, then "… and N
    more problems"): ``problems`` has them all.
    """

    def __init__(self, problems: Sequence[DataProblem] | DataProblem) -> None:
        if isinstance(problems, DataProblem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(
            summarize((str(p) for p in self.problems), sep="; ", total=len(self.problems))
        )

    @property
    def location(self) -> Location | None:
        return self.problems[0].location if self.problems else None


class MalformedFileError(SourceDataError):
    """The file as a whole cannot be read: nothing in it is processed."""


class NotAnInvoiceError(MalformedFileError):
    """An e-invoice flow received a file that is no e-invoice; ``found`` names what it is.

    ``found`` is a short stable key (``order-x``, ``cdar``, ``ubl-order``, ``zugferd-1``,
    ``pdf-without-invoice``, ``html``, ...) for code; the message says it for people.
    """

    def __init__(self, problem: DataProblem, *, found: str) -> None:
        super().__init__(problem)
        self.found = found


class MappingError(EdigwError):
    """A mapping file, layout or lookup table is invalid (raised at load time)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a problem's ``errors`` list: a JSON pointer into the request body."""

    pointer: str
    message: str


@dataclass(slots=True)
class Problem:
    """An RFC 9457 problem document as Ecolix returned it."""

    status: int
    type: str = "about:blank"
    title: str = ""
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """``422 Unknown customer: /customer_code: unknown customer 'CUS-9'``: each reason
        once (Ecolix often repeats its field errors in ``detail``), within ``MAX_MESSAGE``."""
        head = f"{self.status} {self.title or self.type}"
        if self.detail:
            head += f": {cut(self.detail, MAX_MESSAGE // 2)}"
        errors = [e for e in self.errors if not (e.message and e.message in self.detail)]
        if not errors:
            return head
        text = summarize(
            (f"{err.pointer or '/'}: {err.message}" for err in errors),
            limit=MAX_MESSAGE - len(head),
            sep="; ",
            total=len(errors),
        )
        return f"{head}; {text}"


class EcolixError(EdigwError):
    """Ecolix refused or could not answer a call."""

    def __init__(
        self, message: str, *, operation: str = "", problem: Problem | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.problem = problem

    @property
    def status(self) -> int | None:
        return self.problem.status if self.problem else None


class EcolixRetriableError(EcolixError):
    """Temporary: try again later (``retry_after`` seconds when Ecolix said so)."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        problem: Problem | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, operation=operation, problem=problem)
        self.retry_after = retry_after


class EcolixNotSentError(EcolixRetriableError):
    """Temporary, and the request never left: connection refused, name not resolved, connect
    or pool timeout, or a pause Ecolix asked for. Ecolix cannot have seen it, so the
    document waits without an attempt counted (an outage never uses up its attempts)."""


class EcolixCallCancelled(EcolixError):
    """The call was not made: the client was told to stop waiting (the gateway is stopping
    while the call waited for the agreed budget, a server pause or a retry)."""


class EcolixFinalError(EcolixError):
    """Ecolix will refuse this request again as long as it is unchanged."""


class EcolixAuthError(EcolixFinalError):
    """The token is missing, wrong or lacks the rights for this package."""


class EcolixNotFoundError(EcolixFinalError):
    """The addressed object does not exist in Ecolix."""


class EcolixConflictError(EcolixFinalError):
    """A business duplicate, or an idempotency key reused with another body."""


class ChannelError(EdigwError):
    """A drop folder or remote server could not be read or written."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class HostKeyError(ChannelError):
    """The SFTP server's host key is unknown or changed: never connect blindly."""

    def __init__(self, message: str, *, fingerprint: str = "") -> None:
        super().__init__(message, retriable=False)
        self.fingerprint = fingerprint


class JournalError(EdigwError):
    """The exchange journal could not be read or written."""
