"""The contract's operations answered: the gate every request passes, the reads, and the
writes with their dry runs, over the state one sandbox's requests share (``Sandbox``).

Each request passes the same gate, in this order: the per-token rate limit (sliding window,
``limits``' moving window), injected faults (``/_sandbox/faults``), the bearer token. A write
then runs entirely inside the store's write transaction: idempotency look-up, validation
against the contract's request schema, the business rule (``rules.py``), and the stored
result — so two requests with one key can never both execute.

A dry run (``?dry_run=true``) takes exactly that path, the real handler included, inside a
savepoint that is always rolled back, and stores no result against its key: its answer is
the write's, and nothing is left of it but the call it cost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import jsonschema_rs
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

from edigw.ecolix.contract import Contract, OperationSpec, load_contract
from edigw.errors import ConfigError
from edigw.sandbox import rules
from edigw.sandbox.admin import CallLog, Faults
from edigw.sandbox.protocol import (
    JSON,
    PROBLEM_JSON,
    ProblemResponse,
    conditional,
    decode_cursor,
    dump,
    encode_cursor,
    json_body,
    parse_instant,
    problem,
    problem_response,
    refuse_unknown_params,
    schema_problems,
    validation_failed,
)
from edigw.sandbox.rules import BusinessRuleError, Pointed
from edigw.sandbox.store import SandboxStore, StoredResponse, Tx, utc_now
from edigw.sandbox.writes import WRITES

DEFAULT_RATE_LIMIT = "600/minute"
PAGE_DEFAULT, PAGE_MAX = 100, 1000
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # as the contract's header schema
DRY_RUN = "dry_run"
DRY_RUNS = "dry_runs.create"  # a chain of writes checked as one

# list operation -> (stored kind, {query parameter: field of the stored object})
LISTS: dict[str, tuple[str, dict[str, str]]] = {
    "articles.list": ("article", {}),
    "stock.list": ("stock", {"warehouse": "warehouse", "article": "article_code"}),
    "customers.list": ("customer", {}),
    "quotes.list": ("quote", {"customer": "customer_code", "status": "status"}),
    "orders.list": ("order", {"customer": "customer_code", "status": "status"}),
    "order_states.list": ("order_state", {"customer": "customer_code"}),
    "delivery_notes.list": ("delivery_note", {"carrier": "carrier_code"}),
    "purchase_orders.list": ("purchase_order", {"supplier": "supplier_code", "status": "status"}),
    "supplier_invoices.list": (
        "supplier_invoice",
        {"supplier": "supplier_code", "status": "status"},
    ),
    "supplier_invoice_states.list": (
        "supplier_invoice_state",
        {"supplier": "supplier_code", "status": "status"},
    ),
    "suppliers.list": ("supplier", {}),
}
GETS = {
    "customers.get": "customer",
    "quotes.get": "quote",
    "orders.get": "order",
    "purchase_orders.get": "purchase_order",
    "supplier_invoices.get": "supplier_invoice",
    "supplier_invoices.get_attachment": "supplier_invoice_attachment",
}


def parse_rate_limit(text: str) -> RateLimitItem:
    """``600/min``, ``600/minute``, ``10/s``, ``5000/hour`` → a ``limits`` item."""
    amount, _, unit = text.strip().partition("/")
    units = {"s": "second", "sec": "second", "min": "minute", "m": "minute", "h": "hour"}
    normalized = f"{amount.strip()}/{units.get(unit.strip(), unit.strip())}"
    try:
        return parse(normalized)
    except ValueError as exc:
        msg = f"invalid rate limit {text!r}: expected N/second, N/minute or N/hour (e.g. 600/min)"
        raise ConfigError(msg) from exc


@dataclass(frozen=True, slots=True)
class Gate:
    """What the gate learned about a request that may proceed."""

    scope: str
    headers: dict[str, str]


class Sandbox:
    """State shared by the requests of one sandbox: store, contract, limiter, faults."""

    def __init__(
        self,
        store: SandboxStore,
        *,
        token: str,
        rate_limit: str = DEFAULT_RATE_LIMIT,
        clock: Callable[[], datetime] = utc_now,
        contract: Contract | None = None,
    ) -> None:
        self.store = store
        self.token = token
        self.clock = clock
        self.contract = contract or load_contract()
        self.limit = parse_rate_limit(rate_limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.faults = Faults()
        self.calls = CallLog()
        self.validators = {
            spec.op_id: jsonschema_rs.validator_for(spec.request_schema, validate_formats=True)
            for spec in self.contract.operations()
            if spec.request_schema is not None
        }
        self.param_validators = {
            (spec.op_id, p.name): jsonschema_rs.validator_for(p.schema, validate_formats=True)
            for spec in self.contract.operations()
            for p in spec.query_params
        }
        missing = [
            s.op_id
            for s in self.contract.operations()
            if s.op_id not in WRITES
            and s.op_id not in LISTS
            and s.op_id not in GETS
            and s.op_id != DRY_RUNS
        ]
        if missing:
            msg = f"the sandbox has no handler for contract operations {missing}"
            raise ConfigError(msg)

    # ------------------------------------------------------------------ gate
    def authorized(self, request: Request) -> str | None:
        """The presented bearer token, or None."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None

    def gate(self, request: Request) -> Gate | Response:
        presented = self.authorized(request) or ""
        scope = hashlib.sha256(presented.encode()).hexdigest()[:24]
        allowed = self.limiter.hit(self.limit, scope)
        stats = self.limiter.get_window_stats(self.limit, scope)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "X-RateLimit-Limit": str(self.limit.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(reset),
        }
        if not allowed:
            retry = str(max(1, reset))
            doc = problem(
                429,
                "rate-limited",
                "Too many requests",
                f"over {self.limit.amount} calls per {self.limit.GRANULARITY.name}; "
                f"retry in {retry} s",
            )
            return problem_response(429, doc, {**headers, "Retry-After": retry})
        fault = self.faults.take()
        if fault is not None:
            status, retry_after = fault
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            doc = problem(status, "unavailable", "Injected fault", "sandbox fault injection")
            return problem_response(status, doc, {**headers, **extra})
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            doc = problem(401, "unauthorized", "Missing or invalid bearer token")
            return problem_response(401, doc, {**headers, "WWW-Authenticate": "Bearer"})
        return Gate(scope, headers)

    # ------------------------------------------------------------------ reads
    def read(self, spec: OperationSpec, request: Request) -> Response:
        params = request.query_params
        if spec.op_id in GETS:
            key = request.path_params[spec.path_params[0]]
            with self.store.reading() as tx:
                found = tx.get(GETS[spec.op_id], key)
            if found is None:
                raise ProblemResponse(
                    404,
                    problem(
                        404,
                        "not-found",
                        "Not found",
                        f"no {GETS[spec.op_id].replace('_', ' ')} {key!r}",
                    ),
                )
            return Response(dump(found), 200, media_type=JSON)
        kind, fields = LISTS[spec.op_id]
        refuse_unknown_params(spec, params)
        filters: dict[str, str] = {}
        for name, field_name in fields.items():
            if name in params:
                self._check_param(spec, name, params[name])
                filters[field_name] = params[name]
        limit = PAGE_DEFAULT
        if "limit" in params:
            try:
                limit = int(params["limit"])
            except ValueError:
                limit = 0
            if not 1 <= limit <= PAGE_MAX:
                raise ProblemResponse(
                    400,
                    problem(
                        400,
                        "bad-request",
                        "Invalid limit",
                        f"limit must be an integer from 1 to {PAGE_MAX}",
                    ),
                )
        since = None
        if "updated_since" in params:
            try:
                since = parse_instant(params["updated_since"])
            except ValueError:
                raise ProblemResponse(
                    400,
                    problem(
                        400,
                        "bad-request",
                        "Invalid updated_since",
                        "updated_since must be an ISO 8601 date-time",
                    ),
                ) from None
        after = None
        if "cursor" in params:
            try:
                after = decode_cursor(spec.op_id, params["cursor"])
            except ValueError:
                raise ProblemResponse(
                    400,
                    problem(
                        400,
                        "invalid-cursor",
                        "Invalid cursor",
                        "pass next_cursor of the previous page unchanged",
                    ),
                ) from None
        with self.store.reading() as tx:
            items, last = tx.page(
                kind, filters=filters, updated_since=since, after=after, limit=limit
            )
        next_cursor = encode_cursor(spec.op_id, last) if last else None
        return conditional(
            dump({"items": items, "next_cursor": next_cursor}),
            request.headers.get("if-none-match"),
        )

    def _check_param(self, spec: OperationSpec, name: str, value: str) -> None:
        validator = self.param_validators.get((spec.op_id, name))
        if validator is not None and not validator.is_valid(value):
            raise ProblemResponse(
                400,
                problem(400, "bad-request", f"Invalid {name}", f"{value!r} is not a valid {name}"),
            )

    # ------------------------------------------------------------------ writes
    def write(
        self,
        spec: OperationSpec,
        path_values: Mapping[str, str],
        key: str | None,
        raw: bytes,
        gate: Gate,
        query: Mapping[str, str] | None = None,
    ) -> Response:
        dry_run = self._dry_run(spec, query or {})
        if key is None or not IDEMPOTENCY_KEY.fullmatch(key):
            raise ProblemResponse(
                400,
                problem(
                    400,
                    "missing-idempotency-key",
                    "Idempotency-Key header required",
                    "every write takes an Idempotency-Key header (1 to 255 visible ASCII characters)",
                ),
            )
        body = json_body(raw)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        fingerprint = hashlib.sha256(
            f"{spec.method} {spec.path}\n{json.dumps(dict(path_values), sort_keys=True)}\n{canonical}".encode()
        ).hexdigest()
        with self.store.writing() as tx:
            stored = tx.stored_response(gate.scope, key)
            if stored is not None:
                if stored.fingerprint == fingerprint:
                    return Response(
                        stored.body,
                        stored.status,
                        headers={"Idempotent-Replayed": "true"},
                        media_type=stored.content_type,
                    )
                if 200 <= stored.status < 300:
                    raise ProblemResponse(
                        409,
                        problem(
                            409,
                            "idempotency-key-reused",
                            "Idempotency key reused with another body",
                            f"key {key!r} already created an object with a different request; use a new key for a new request",
                        ),
                    )
            errors = self._contract_problems(spec, body, path_values)
            if errors:
                raise ProblemResponse(422, validation_failed(errors))
            try:
                with tx.savepoint(keep=not dry_run):
                    status, payload = WRITES[spec.op_id](self, tx, body)
                response = StoredResponse(fingerprint, status, dump(payload), JSON)
            except BusinessRuleError as err:
                if err.status != 409:
                    raise ProblemResponse(err.status, err.problem()) from None
                response = StoredResponse(fingerprint, 409, dump(err.problem()), PROBLEM_JSON)
            if not dry_run:
                tx.store_response(gate.scope, key, response)
        return Response(response.body, response.status, media_type=response.content_type)

    def dry_run_chain(self, raw: bytes) -> Response:
        """``POST /dry-runs``: each write of a chain, in order, on what the earlier ones made,
        in one transaction rolled back at the end; up to the first refusal."""
        request = json_body(raw)
        errors = schema_problems(self.validators[DRY_RUNS], request)
        specs: list[OperationSpec] = []
        for i, write in enumerate(request.get("writes", []) if not errors else []):
            spec = next(
                (s for s in self.contract.operations() if s.op_id == write["operation"]), None
            )
            if spec is None or not spec.target:
                errors.append(Pointed(f"/writes/{i}/operation", "not a write operation"))
            else:
                specs.append(spec)
        if errors:
            raise ProblemResponse(
                422, validation_failed(errors, "The dry run request breaks the contract")
            )
        results: list[dict[str, Any]] = []
        with self.store.writing() as tx, tx.savepoint(keep=False):
            for spec, write in zip(specs, request["writes"], strict=True):
                result = self._chained(spec, write["body"], tx)
                results.append(result)
                if result["status"] >= 400:
                    break
        return Response(dump({"results": results}), 200, media_type=JSON)

    def _chained(self, spec: OperationSpec, body: Any, tx: Tx) -> dict[str, Any]:
        """One write of a dry-run chain, as its own path would answer it."""
        found = self._contract_problems(spec, body, None)
        if found:
            return {"operation": spec.op_id, "status": 422, "problem": validation_failed(found)}
        try:
            status, payload = WRITES[spec.op_id](self, tx, body)
        except BusinessRuleError as err:
            return {"operation": spec.op_id, "status": err.status, "problem": err.problem()}
        return {"operation": spec.op_id, "status": status, "body": payload}

    def _contract_problems(
        self, spec: OperationSpec, body: Any, path_values: Mapping[str, str] | None
    ) -> list[Pointed]:
        """What ``body`` breaks of the contract: its schema, then its path parameters (taken
        from the body itself when None, as in a dry-run chain, which has no URL path)."""
        errors = schema_problems(self.validators[spec.op_id], body)
        if not errors:
            if path_values is None:
                path_values = {name: str(body[name]) for name in spec.path_params}
            errors = rules.path_mismatch(body, path_values)
        return errors

    def _dry_run(self, spec: OperationSpec, query: Mapping[str, str]) -> bool:
        """Whether the write is a dry run; an unknown or invalid query parameter is 400, so
        that a misspelt ``dry_run`` never becomes a real write."""
        refuse_unknown_params(spec, query)
        value = query.get(DRY_RUN, "false")
        if value not in ("true", "false"):
            raise ProblemResponse(
                400,
                problem(400, "bad-request", "Invalid dry_run", "dry_run must be true or false"),
            )
        return value == "true"

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()
