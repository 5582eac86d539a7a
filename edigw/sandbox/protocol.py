"""The contract's HTTP conventions, as the sandbox speaks them: problem documents
(``application/problem+json``), JSON bodies and their schema errors as JSON pointers, list
cursors, and entity tags with the conditional answers they allow.

Kept in one place so that the gate, the reads, the writes and the sandbox-only controls all
answer alike, and each convention can be read and checked on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
from starlette.responses import Response

from edigw.ecolix.contract import OperationSpec
from edigw.sandbox import rules
from edigw.sandbox.rules import Pointed
from edigw.sandbox.store import Position, format_stamp

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str = "",
    errors: list[Pointed] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": rules.PROBLEM_BASE + kind, "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    if errors:
        doc["errors"] = [{"pointer": e.pointer, "message": e.message} for e in errors]
    doc.update(extra)
    return doc


def validation_failed(
    errors: list[Pointed], title: str = "The request body breaks the contract"
) -> dict[str, Any]:
    """The 422 problem that lists each of ``errors`` with its JSON pointer."""
    detail = "; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors)
    return problem(422, "validation-failed", title, detail, errors)


class ProblemResponse(Exception):
    """Raised inside handlers to answer with a problem document."""

    def __init__(self, status: int, doc: dict[str, Any], headers: Mapping[str, str] | None = None):
        super().__init__(doc.get("title", ""))
        self.status = status
        self.doc = doc
        self.headers = dict(headers or {})


def problem_response(
    status: int, doc: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dump(doc), status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def json_body(raw: bytes) -> Any:
    """``raw`` parsed as JSON; not JSON is a 400 problem."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemResponse(
            400, problem(400, "malformed-json", "The body is not JSON", str(exc))
        ) from None


def refuse_unknown_params(spec: OperationSpec, query: Mapping[str, str]) -> None:
    """A query parameter the operation does not declare is a 400 problem, never ignored."""
    unknown = sorted(set(query) - {p.name for p in spec.query_params})
    if unknown:
        raise ProblemResponse(
            400,
            problem(
                400,
                "bad-request",
                "Unknown query parameter",
                f"{spec.op_id} takes no parameter {', '.join(map(repr, unknown))}",
            ),
        )


def dump(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def schema_problems(validator: jsonschema_rs.Validator, body: Any) -> list[Pointed]:
    """Every schema error, pointing at the exact property (missing or unexpected ones too)."""
    found: list[Pointed] = []
    for error in validator.iter_errors(body):
        pointer = json_pointer(list(error.instance_path))
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            found.append(Pointed(f"{pointer}/{kind.property}", "required property is missing"))
        elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            found.extend(
                Pointed(f"{pointer}/{name}", "unexpected property (not in the contract)")
                for name in kind.unexpected
            )
        else:
            found.append(Pointed(pointer, error.message))
    return found


def encode_cursor(op_id: str, position: Position) -> str:
    raw = json.dumps([op_id, position.updated_at, position.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(op_id: str, cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, stamp, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        msg = "invalid cursor"
        raise ValueError(msg) from exc
    if name != op_id or not isinstance(stamp, str) or not isinstance(row_id, int):
        msg = "cursor of another list"
        raise ValueError(msg)
    return Position(stamp, row_id)


def parse_instant(text: str) -> str:
    """``updated_since`` as a store stamp (naive values are taken as UTC)."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return format_stamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def entity_tag(body: bytes) -> str:
    """A strong ETag of a list page: the same bytes, the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional(body: bytes, if_none_match: str | None) -> Response:
    """A list page with its ``ETag``, or 304 without a body when the caller already holds
    it (``If-None-Match`` names its tag, or ``*``; a weak ``W/`` tag compares too)."""
    tag = entity_tag(body)
    if if_none_match is not None:
        held = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if tag in held or "*" in held:
            return Response(status_code=304, headers={"ETag": tag})
    return Response(body, 200, media_type=JSON, headers={"ETag": tag})
