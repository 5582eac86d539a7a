"""Sending queued documents to Ecolix and recording each outcome.

One attempt at one document::

    journal: sent (attempts + 1, lease)  →  Ecolix write with the idempotency key
    →  journal: done | retry-wait (next attempt time) | failed (reason)

A crash between the call and the journal write leaves the document ``sent`` with an expired
lease; it is claimed again and re-sent under the same key, and Ecolix answers with the
stored result (``Idempotent-Replayed``): nothing is posted twice.

Only calls that may have reached Ecolix count as attempts: one that never left (Ecolix
unreachable, a pause it asked for) waits like a retry with the attempt undone, so a long
outage never makes a document fail for too many attempts. A ``Retry-After`` longer than
the policy's ``max_delay`` is honoured (up to ``MAX_SERVER_HINT``): the document is parked
until then rather than calling early. Error texts stay within ``edigw.problems.MAX_MESSAGE``
characters; the full list of Ecolix's field errors is kept for ``edigw show --all``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import tenacity

from edigw.errors import (
    EcolixCallCancelled,
    EcolixConflictError,
    EcolixError,
    EcolixFinalError,
    EcolixNotSentError,
    EcolixRetriableError,
    FieldError,
    Problem,
)
from edigw.journal.archive import Archive
from edigw.journal.claims import NextClaim
from edigw.journal.rows import DocumentRow
from edigw.journal.schema import DocState
from edigw.journal.store import Journal
from edigw.pipeline.chain import Blocked, chain_of, resolve
from edigw.pipeline.refusals import refusal_text
from edigw.pipeline.unchanged import upsert_of
from edigw.problems import ProblemEntry, ProblemList, bounded, cut

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_FIRST_DELAY = 30.0
DEFAULT_MAX_DELAY = 3600.0
DEFAULT_LEASE_SECONDS = 120.0
#: The longest ``Retry-After`` a document is parked for (a day): a longer or absurd hint is
#: asked again then, at the cost of one call.
MAX_SERVER_HINT = 86_400.0
#: An Ecolix error answer kept in the journal beyond this many bytes of JSON keeps its
#: first field errors only (all of them are in the document's full problem list).
MAX_RESPONSE_BYTES = 64 * 1024
_KEPT_RESPONSE_ERRORS = 100


class EcolixWriter(Protocol):
    """The one client method the dispatcher needs (``EcolixClient.write``)."""

    def write(self, operation: str, payload: dict[str, Any], *, idempotency_key: str) -> Any: ...


#: Finds the source places of the fields Ecolix refused in a document (None: unknown);
#: ``edigw.pipeline.refusals.RefusalLocator.locate``.
Locate = Callable[[DocumentRow, Sequence[FieldError]], list[ProblemEntry] | None]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When to try a document again after a temporary failure, and when to give up."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    first_delay: float = DEFAULT_FIRST_DELAY
    max_delay: float = DEFAULT_MAX_DELAY

    def delay(self, attempts: int, *, server_hint: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (exponential, jittered,
        at most ``max_delay``), or longer when Ecolix asked for it (``server_hint``, its
        ``Retry-After``, honoured up to ``MAX_SERVER_HINT``)."""
        wait = tenacity.wait_exponential_jitter(
            multiplier=self.first_delay, max=self.max_delay, jitter=self.first_delay / 4
        )
        state = tenacity.RetryCallState(
            retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={}
        )
        state.attempt_number = max(1, attempts)
        delay = min(float(wait(state)), self.max_delay)
        if server_hint is not None:
            delay = max(delay, min(server_hint, MAX_SERVER_HINT))
        return delay


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of one attempt, as the journal recorded it."""

    document_id: int
    file_id: int
    state: str
    detail: str = ""
    file_state: str | None = None
    #: The sender's next document, claimed with this one's done (``claim_next``).
    claimed: DocumentRow | None = None


def send_document(
    doc: DocumentRow,
    *,
    journal: Journal,
    client: EcolixWriter,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
    node: str | None = None,
    archive: Archive | None = None,
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
        archive=archive,
    )


def send_claimed(
    doc: DocumentRow,
    *,
    journal: Journal,
    client: EcolixWriter,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
    archive: Archive | None = None,
    locate: Locate | None = None,
    claim_next: NextClaim | None = None,
) -> Sent:
    """Make the attempt already recorded for ``doc`` (``doc.attempts`` counts it) and
    journal its outcome; never raises an ``EcolixError``.

    With ``claim_next``, a success also claims the sender's next document in the same
    journal transaction (``Sent.claimed``); the sender must send it or give it back.

    A follow-up step of a chain (``edigw.pipeline.chain``) is completed first from the
    earlier steps' answers and the archived original (``archive``); when an earlier step
    failed, the step fails without a call, naming it. A refusal is journalled with the
    source place of each field Ecolix refused, when ``locate`` can tell it.
    """
    payload = doc.payload or {}
    if chain_of(payload) is not None:
        resolved = resolve(doc, journal=journal, archive=archive)
        if isinstance(resolved, Blocked):
            complete = journal.mark_failed(doc.id, now=clock(), reason=resolved.reason)
            return Sent(
                doc.id,
                doc.file_id,
                "failed",
                resolved.reason,
                _finish(doc, journal, clock, complete=complete),
            )
        payload = resolved
    try:
        response = client.write(doc.operation, payload, idempotency_key=doc.idempotency_key)
    except EcolixCallCancelled as exc:
        journal.mark_not_sent(doc.id, now=clock(), reason=str(exc))
        return Sent(doc.id, doc.file_id, str(DocState.PENDING), str(exc))
    except EcolixNotSentError as exc:
        return _wait_not_sent(doc, exc, journal=journal, schedule=schedule, clock=clock)
    except EcolixRetriableError as exc:
        return _retry_or_give_up(doc, exc, journal=journal, schedule=schedule, clock=clock)
    except EcolixConflictError as exc:
        return _refused(doc, "refused by Ecolix as a duplicate", exc, journal, clock, locate)
    except EcolixFinalError as exc:
        return _refused(doc, "refused by Ecolix", exc, journal, clock, locate)
    except EcolixError as exc:  # an EcolixError of no subclass: treat as temporary
        return _retry_or_give_up(doc, exc, journal=journal, schedule=schedule, clock=clock)
    # Done, and the file finished when this was its last unfinished document: one
    # transaction on SQLite.
    outcome = journal.mark_done_finishing(
        doc.id,
        now=clock(),
        status=response.status,
        object_id=response.object_id,
        response=response.body,
        # An accepted upsert is what Ecolix now holds for its object (the row is found by
        # operation and target: which Ecolix was recorded when the document was taken in).
        upsert=upsert_of(doc.operation, payload, ecolix=""),
        file_id=doc.file_id,
        claim_next=claim_next,
    )
    detail = "already done (replayed by Ecolix)" if response.replayed else ""
    return Sent(doc.id, doc.file_id, "done", detail, outcome.file_state, outcome.claimed)


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


def _wait_not_sent(
    doc: DocumentRow,
    exc: EcolixNotSentError,
    *,
    journal: Journal,
    schedule: RetrySchedule,
    clock: Callable[[], datetime],
) -> Sent:
    """Back off as after a failed attempt, without counting one: the call never left.

    The delay grows with every try, sent or not (``attempts`` + ``not_sent``), so an outage
    costs one connect every ``max_delay`` at most; there is no giving up.
    """
    tries = doc.attempts + doc.not_sent  # doc.attempts counts this try, about to be undone
    now = clock()
    next_at = now + timedelta(seconds=schedule.delay(tries, server_hint=exc.retry_after))
    reason = _reason(exc)
    journal.mark_retry(doc.id, now=now, next_attempt_at=next_at, reason=reason, sent=False)
    return Sent(
        doc.id,
        doc.file_id,
        "retry_wait",
        f"{reason}; no attempt counted; next try {next_at:%H:%M:%S}",
    )


def _refused(
    doc: DocumentRow,
    what: str,
    exc: EcolixFinalError,
    journal: Journal,
    clock: Callable[[], datetime],
    locate: Locate | None,
) -> Sent:
    """Fail ``doc`` for a refusal, each field error with its source place when known."""
    problem = exc.problem
    entries = locate(doc, problem.errors) if locate and problem and problem.errors else None
    if entries is None or problem is None:
        return _failed(doc, f"{what}: {_reason(exc)}", exc, journal, clock)
    reason = f"{what}: {refusal_text(problem, entries)}"
    return _failed(doc, reason, exc, journal, clock, ProblemList.of(entries))


def _failed(
    doc: DocumentRow,
    reason: str,
    exc: EcolixError,
    journal: Journal,
    clock: Callable[[], datetime],
    problems: ProblemList | None = None,
) -> Sent:
    problem = exc.problem
    if problems is None and problem is not None:
        problems = _field_problems(problem)
    complete = journal.mark_failed(
        doc.id,
        now=clock(),
        reason=reason,
        status=problem.status if problem else None,
        response=_kept_response(problem) if problem else None,
        problems=problems or (),
    )
    return Sent(
        doc.id, doc.file_id, "failed", reason, _finish(doc, journal, clock, complete=complete)
    )


def _finish(
    doc: DocumentRow, journal: Journal, clock: Callable[[], datetime], *, complete: bool
) -> str | None:
    """The file's final state when this document was its last unfinished one."""
    if not complete:
        return None
    return journal.finish_file_if_complete(doc.file_id, now=clock(), last_finished=True)


def _reason(exc: EcolixError) -> str:
    return bounded(str(exc.problem) if exc.problem else str(exc))


def _field_problems(problem: Problem) -> ProblemList:
    """Ecolix's field errors as a full problem list (pointer and message, no file place)."""
    return ProblemList.of([ProblemEntry(None, e.pointer or "/", e.message) for e in problem.errors])


def _kept_response(problem: Problem) -> dict[str, Any]:
    """The error answer as Ecolix gave it, unless it is huge (over ``MAX_RESPONSE_BYTES``):
    then its status, type, title, the start of its detail and its first field errors,
    saying what was left out (the field errors are all in the full problem list)."""
    raw = problem.raw
    if len(json.dumps(raw, ensure_ascii=False, default=str)) <= MAX_RESPONSE_BYTES:
        return raw
    errors = raw.get("errors")
    errors = errors if isinstance(errors, list) else []
    return {
        "status": problem.status,
        "type": problem.type,
        "title": cut(problem.title, 500),
        "detail": cut(problem.detail, 2000),
        "errors": [e for e in errors[:_KEPT_RESPONSE_ERRORS] if len(str(e)) < 2000],
        "edigw_note": f"answer of {len(json.dumps(raw, default=str)):,} bytes cut; "
        f"{len(errors):,} field errors in all (edigw show --all)",
    }
