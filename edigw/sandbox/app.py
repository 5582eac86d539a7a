"""The sandbox's HTTP layer: the contract's operations as a Starlette application.

Routes are built from ``openapi.yaml``: an operation added to the contract without a handler
(``operations.LISTS``, ``operations.GETS``, ``writes.WRITES``) fails at start-up, not at the
first call.

Here the application is assembled; what it answers lives beside it: the gate, reads and
writes in ``operations``, the business writes in ``writes``, the contract's HTTP conventions
(problems, cursors, entity tags) in ``protocol``, the sandbox-only controls in ``admin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edigw.ecolix.contract import OperationSpec
from edigw.errors import ConfigError
from edigw.sandbox.admin import admin_endpoints
from edigw.sandbox.operations import (
    DEFAULT_RATE_LIMIT,
    DRY_RUN,
    DRY_RUNS,
    Sandbox,
    parse_rate_limit,
)
from edigw.sandbox.protocol import ProblemResponse, problem, problem_response
from edigw.sandbox.seeding import seed_if_empty
from edigw.sandbox.store import SandboxStore, utc_now

API_PREFIX = "/api/v1"
DRY_RUN_HEADER = "Dry-Run"


def operation_endpoint(sb: Sandbox, spec: OperationSpec) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        response = await answer(request)
        sb.calls.record(spec.op_id, response.status_code)
        return response

    async def answer(request: Request) -> Response:
        gate = sb.gate(request)
        if isinstance(gate, Response):
            return gate
        try:
            if spec.kind == "read":
                response = await run_in_threadpool(sb.read, spec, request)
            elif spec.op_id == DRY_RUNS:
                raw = await request.body()
                response = await run_in_threadpool(sb.dry_run_chain, raw)
                response.headers[DRY_RUN_HEADER] = "true"
            else:
                raw = await request.body()
                response = await run_in_threadpool(
                    sb.write,
                    spec,
                    dict(request.path_params),
                    request.headers.get("idempotency-key"),
                    raw,
                    gate,
                    dict(request.query_params),
                )
        except ProblemResponse as exc:
            response = problem_response(exc.status, exc.doc, exc.headers)
        response.headers.update(gate.headers)
        if spec.kind == "write" and request.query_params.get(DRY_RUN) == "true":
            response.headers[DRY_RUN_HEADER] = "true"  # whatever the answer: nothing was made
        return response

    return endpoint


def method_dispatch(endpoints: Mapping[str, Callable[[Request], Any]]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await endpoints[method](request)
        return response

    return endpoint


def create_app(
    db_path: Path | str,
    *,
    token: str,
    rate_limit: str = DEFAULT_RATE_LIMIT,
    seed: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The sandbox application over the SQLite database at ``db_path``.

    ``seed`` is loaded when the database is new (see ``seeding.read_seed``).
    """
    if not token:
        msg = "the sandbox needs a non-empty token"
        raise ConfigError(msg)
    parse_rate_limit(rate_limit)  # refuse a bad option before touching the database
    store = SandboxStore(db_path, clock=clock)
    if seed is not None:
        seed_if_empty(store, seed)
    sb = Sandbox(store, token=token, rate_limit=rate_limit, clock=clock)

    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    for spec in sb.contract.operations():
        by_path.setdefault(spec.path, {})[spec.method] = operation_endpoint(sb, spec)
    # one route per path, so that a 405 names every method the path allows
    routes = [
        Route(API_PREFIX + path, method_dispatch(endpoints), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]

    async def openapi(request: Request) -> Response:
        return Response(sb.contract.text, media_type="application/yaml")

    routes.append(Route(API_PREFIX + "/openapi.yaml", openapi, methods=["GET"]))
    routes.extend(admin_endpoints(sb))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = (exc.headers or {}) if isinstance(exc, HTTPException) else {}
        title = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
        kind = {404: "not-found", 405: "method-not-allowed"}.get(status, "bad-request")
        doc = problem(status, kind, title, f"{request.method} {request.url.path}")
        return problem_response(status, doc, headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan
    )
    app.state.sandbox = sb
    return app
