"""Ecolix's answers read: a success's JSON body, an error answer's RFC 9457 problem turned
into the typed error that decides what the pipeline does next, and ``Retry-After``.

Pure functions of a response: the client (``edigw.ecolix.client``) does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from edigw.errors import (
    EcolixAuthError,
    EcolixConflictError,
    EcolixError,
    EcolixFinalError,
    EcolixNotFoundError,
    EcolixRetriableError,
    FieldError,
    Problem,
)


@dataclass(frozen=True, slots=True)
class EcolixResponse:
    """A successful answer to a write.

    ``replayed`` is True when Ecolix returned the stored answer of an earlier request with the
    same idempotency key (nothing new was created); ``object_id`` is the created or updated
    object's number or code, read from the field the contract names for this operation.
    ``dry_run``: the answer to a validation-only call; nothing was created (an ``object_id``
    is then what the write would have been given, and is not reserved).
    """

    operation: str
    status: int
    body: dict[str, Any]
    replayed: bool
    object_id: str | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ChainAnswer:
    """What one write of a dry-run chain would get: its status, and its answer's body or
    its problem (a refusal)."""

    operation: str
    status: int
    body: dict[str, Any]
    problem: Problem | None


def chain_answer(item: Any, reason: str, *, operation: str) -> ChainAnswer:
    """One result of a dry-run chain (``operation``) as a :class:`ChainAnswer`."""
    if not isinstance(item, dict):
        msg = f"Ecolix answered {operation} with a result that is not an object"
        raise EcolixFinalError(msg, operation=operation)
    status = int(item.get("status") or 0)
    raw = item.get("problem")
    problem = problem_from(raw, status, reason) if isinstance(raw, dict) else None
    body = item.get("body")
    return ChainAnswer(
        str(item.get("operation", "")), status, body if isinstance(body, dict) else {}, problem
    )


def success_body(operation: str, response: httpx.Response | bytes) -> dict[str, Any]:
    content = response if isinstance(response, bytes) else response.content
    if not content:
        return {}
    try:
        body = json.loads(content)
    except ValueError as exc:
        status = 200 if isinstance(response, bytes) else response.status_code
        msg = f"Ecolix answered {operation} with {status} but a body that is not JSON"
        problem = Problem(status=status, title="Invalid response body")
        raise EcolixRetriableError(msg, operation=operation, problem=problem) from exc
    return body if isinstance(body, dict) else {"items": body}


def problem_of(response: httpx.Response) -> Problem:
    """The RFC 9457 problem in an error answer, or the best a non-JSON body allows."""
    try:
        raw = response.json()
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        text = response.text.strip()[:500]
        return Problem(status=response.status_code, title=response.reason_phrase, detail=text)
    return problem_from(raw, response.status_code, response.reason_phrase)


def problem_from(raw: Mapping[str, Any], status: int, reason: str) -> Problem:
    errors = [
        FieldError(pointer=str(err.get("pointer", "")), message=str(err.get("message", "")))
        for err in raw.get("errors") or []
        if isinstance(err, dict)
    ]
    return Problem(
        status=status,
        type=str(raw.get("type") or "about:blank"),
        title=str(raw.get("title") or reason),
        detail=str(raw.get("detail") or ""),
        errors=errors,
        raw=dict(raw),
    )


def error_for(
    operation: str, response: httpx.Response, *, retry_after: float | None
) -> EcolixError:
    """Map an error answer to the class that decides what the pipeline does next."""
    problem = problem_of(response)
    status = response.status_code
    message = f"Ecolix refused {operation}: {problem}"
    if status == 429 or status >= 500:
        return EcolixRetriableError(
            f"Ecolix could not serve {operation} now: {problem}",
            operation=operation,
            problem=problem,
            retry_after=retry_after,
        )
    final_class: type[EcolixFinalError] = {
        401: EcolixAuthError,
        403: EcolixAuthError,
        404: EcolixNotFoundError,
        409: EcolixConflictError,
    }.get(status, EcolixFinalError)
    return final_class(message, operation=operation, problem=problem)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
