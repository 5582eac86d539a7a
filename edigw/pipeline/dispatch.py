"""Sending queued documents to Ecolix and recording each outcome.

One attempt at one document::

    journal: sent (attempts + 1, lease)  →  Ecolix write with the idempotency key
    →  journal: done | retry-wait (next attempt time) | failed (reason)

A crash between the call and the journal write leaves the document ``sent`` with an expired
lease; it is claimed again and re-sent under the same key, and Ecolix answers with the
stored result (``Idempotent-Replayed``): nothing is posted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import tenacity

from edigw.errors import (
    EcolixCallCancelled,
    EcolixConflictError,
    EcolixError,
    EcolixFinalError,
    EcolixRetriableError,
)
from edigw.journal.schema import DocState
from edigw.journal.store import DocumentRow, Journal

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_FIRST_DELAY = 30.0
DEFAULT_MAX_DELAY = 3600.0
DEFAULT_LEASE_SECONDS = 120.0


class EcolixWriter(Protocol):
    """The one client method the dispatcher needs (``EcolixClient.write``)."""

    def write(self, operation: str, payload: dict[str, Any], *, idempotency_key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When to try a document again after a temporary failure, and when to give up."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    first_delay: float = DEFAULT_FIRST_DELAY
    max_delay: float = DEFAULT_MAX_DELAY

    def delay(self, attempts: int, *, server_hint: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (exponential, jittered)."""
        wait = tenacity.wait_exponential_jitter(
            multiplier=self.first_delay, max=self.max_delay, jitter=self.first_delay / 4
        )
        state = tenacity.RetryCallState(
            retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={}
        )
        state.attempt_number = max(1, attempts)
        delay = float(wait(state))
        if server_hint is not None:
            delay = max(delay, server_hint)
        return min(delay, self.max_delay)


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of one attempt, as the journal recorded it."""

    document_id: int
    file_id: int
    state: str
    detail: str = ""
    file_state: str | None = None


def send_document(
    doc: DocumentRow,
    *,
    journal: Journal,
    client: EcolixWriter,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
    node: str | None = None,
) -> Sent:
    """Record an attempt at a claimed ``doc``, make it, and journal its outcome.

    With ``node``, the journal refuses (``LeaseLostError``) when this node's claim expired
    and another node may be sending the document: nothing is sent then. Senders use
    ``Journal.claim_for_sending`` + :func:`send_claimed`, which records the attempt in the
    claim's own transaction.
    """
    journal.mark_sent(doc.id, now=clock(), node=node)
    return send_claimed(
        replace(doc, attempts=doc.attempts + 1),
        journal=journal,
        client=client,
        schedule=schedule,
        clock=clock,
    )


def send_claimed(
    doc: DocumentRow,
    *,
    journal: Journal,
    client: EcolixWriter,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
) -> Sent:
    """Make the attempt already recorded for ``doc`` (``doc.attempts`` counts it) and
    journal its outcome; never raises an ``EcolixError``."""
    try:
        response = client.write(
            doc.operation, doc.payload or {}, idempotency_key=doc.idempotency_key
        )
    except EcolixCallCancelled as exc:
        journal.mark_not_sent(doc.id, now=clock(), reason=str(exc))
        return Sent(doc.id, doc.file_id, str(DocState.PENDING), str(exc))
    except EcolixRetriableError as exc:
        return _retry_or_give_up(doc, exc, journal=journal, schedule=schedule, clock=clock)
    except EcolixConflictError as exc:
        return _failed(
            doc, f"refused by Ecolix as a duplicate: {_reason(exc)}", exc, journal, clock
        )
    except EcolixFinalError as exc:
        return _failed(doc, f"refused by Ecolix: {_reason(exc)}", exc, journal, clock)
    except EcolixError as exc:  # an EcolixError of no subclass: treat as temporary
        return _retry_or_give_up(doc, exc, journal=journal, schedule=schedule, clock=clock)
    complete = journal.mark_done(
        doc.id,
        now=clock(),
        status=response.status,
        object_id=response.object_id,
        response=response.body,
    )
    detail = "already done (replayed by Ecolix)" if response.replayed else ""
    return Sent(
        doc.id, doc.file_id, "done", detail, _finish(doc, journal, clock, complete=complete)
    )


def _retry_or_give_up(
    doc: DocumentRow,
    exc: EcolixError,
    *,
    journal: Journal,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
) -> Sent:
    attempts = doc.attempts
    if attempts >= schedule.max_attempts:
        return _failed(
            doc,
            f"gave up after {attempts} attempts; last error: {_reason(exc)}",
            exc,
            journal,
            clock,
        )
    hint = exc.retry_after if isinstance(exc, EcolixRetriableError) else None
    now = clock()
    next_at = now + timedelta(seconds=schedule.delay(attempts, server_hint=hint))
    journal.mark_retry(doc.id, now=now, next_attempt_at=next_at, reason=_reason(exc))
    return Sent(
        doc.id, doc.file_id, "retry_wait", f"{_reason(exc)}; next attempt {next_at:%H:%M:%S}"
    )


def _failed(
    doc: DocumentRow,
    reason: str,
    exc: EcolixError,
    journal: Journal,
    clock: Callable[[], datetime],
) -> Sent:
    problem = exc.problem
    complete = journal.mark_failed(
        doc.id,
        now=clock(),
        reason=reason,
        status=problem.status if problem else None,
        response=problem.raw if problem else None,
    )
    return Sent(
        doc.id, doc.file_id, "failed", reason, _finish(doc, journal, clock, complete=complete)
    )


def _finish(
    doc: DocumentRow, journal: Journal, clock: Callable[[], datetime], *, complete: bool
) -> str | None:
    """The file's final state when this document was its last unfinished one."""
    return journal.finish_file_if_complete(doc.file_id, now=clock()) if complete else None


def _reason(exc: EcolixError) -> str:
    return str(exc.problem) if exc.problem else str(exc)
