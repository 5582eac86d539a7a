"""The sandbox-only controls, outside the contract: injected faults, the log of the calls
answered, and the token-protected ``/_sandbox/...`` endpoints that set and read them (health,
faults, touch, an order's status, counts, calls).

They let tests, demos and benchmarks act and count from Ecolix's side; kept apart so that the
contract's own operations read without them.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edigw.sandbox import rules
from edigw.sandbox.protocol import ProblemResponse, problem, problem_response
from edigw.sandbox.seeding import record_state_change

if TYPE_CHECKING:
    from edigw.sandbox.operations import Sandbox

# admin "touch" accepts these resource names
TOUCHABLE = {
    "articles": "article",
    "stock": "stock",
    "customers": "customer",
    "quotes": "quote",
    "orders": "order",
    "delivery_notes": "delivery_note",
    "purchase_orders": "purchase_order",
    "supplier_invoices": "supplier_invoice",
    "suppliers": "supplier",
}
ORDER_STATUSES = (
    "received",
    "confirmed",
    "prepared",
    "shipped",
    "delivered",
    "invoiced",
    "cancelled",
)


class Faults:
    """Injected failures: the next ``count`` API requests answer ``status``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = 0
        self._count = 0
        self._retry_after: int | None = None

    def set(self, status: int, count: int, retry_after: int | None) -> None:
        with self._lock:
            self._status, self._count, self._retry_after = status, count, retry_after

    def take(self) -> tuple[int, int | None] | None:
        with self._lock:
            if self._count <= 0:
                return None
            self._count -= 1
            return self._status, self._retry_after

    def pending(self) -> int:
        with self._lock:
            return self._count


class CallLog:
    """The API calls answered, per operation and status (``/_sandbox/calls``): what a
    benchmark or a test counts from Ecolix's side. A 304 or a 429 is a call like another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def record(self, operation: str, status: int) -> None:
        with self._lock:
            key = (operation, status)
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{operation: {status: calls}}"""
        with self._lock:
            found: dict[str, dict[str, int]] = {}
            for (operation, status), n in sorted(self._counts.items()):
                found.setdefault(operation, {})[str(status)] = n
            return found


def admin_endpoints(sb: Sandbox) -> list[Route]:
    """Sandbox-only controls for tests and demos (outside the contract, token-protected)."""

    def guard(request: Request) -> Response | None:
        presented = sb.authorized(request) or ""
        if not hmac.compare_digest(presented.encode(), sb.token.encode()):
            return problem_response(
                401, problem(401, "unauthorized", "Missing or invalid bearer token")
            )
        return None

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ProblemResponse(
                400, problem(400, "malformed-json", "The body must be a JSON object")
            )
        return data

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def faults(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "DELETE":
            sb.faults.set(0, 0, None)
            return JSONResponse({"pending": 0})
        data = await body_of(request)
        status, count = data.get("status"), data.get("count", 1)
        retry_after = data.get("retry_after")
        if not (
            isinstance(status, int)
            and 400 <= status <= 599
            and isinstance(count, int)
            and count >= 0
        ):
            return problem_response(
                422,
                problem(
                    422,
                    "validation-failed",
                    "Expected {status: 400..599, count: N >= 0, retry_after?: seconds}",
                ),
            )
        sb.faults.set(status, count, retry_after if isinstance(retry_after, int) else None)
        return JSONResponse({"pending": sb.faults.pending()})

    async def touch(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        data = await body_of(request)
        kind = TOUCHABLE.get(str(data.get("resource")))
        if kind is None:
            return problem_response(
                422,
                problem(422, "validation-failed", f"resource must be one of {sorted(TOUCHABLE)}"),
            )
        keys = data.get("keys")
        count = data.get("count", 1)

        def work() -> list[str]:
            touched = []
            with sb.store.writing() as tx:
                if isinstance(keys, list):
                    found = tx.get_many(kind, [str(k) for k in keys])
                    targets = [(str(k), found[str(k)]) for k in keys if str(k) in found]
                else:
                    items, _ = tx.page(kind, limit=max(1, int(count)))
                    targets = [(_key_of(kind, item), item) for item in items]
                for key, item in targets:
                    if kind == "stock":
                        item = _restock(item)
                    tx.put(kind, key, item)
                    touched.append(key)
            return touched

        return JSONResponse({"touched": await run_in_threadpool(work)})

    async def order_status(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        data = await body_of(request)
        number = request.path_params["number"]
        status = data.get("status")
        if status not in ORDER_STATUSES:
            return problem_response(
                422,
                problem(422, "validation-failed", f"status must be one of {list(ORDER_STATUSES)}"),
            )

        def work() -> dict[str, Any] | None:
            with sb.store.writing() as tx:
                order = tx.get("order", number)
                if order is None:
                    return None
                if order["status"] != status:
                    record_state_change(tx, order, str(status), order["status"])
                    order = tx.put("order", number, {**order, "status": status})
                return order

        order = await run_in_threadpool(work)
        if order is None:
            return problem_response(
                404, problem(404, "not-found", "Not found", f"no order {number!r}")
            )
        return JSONResponse(order)

    async def counts(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied

        def work() -> dict[str, int]:
            with sb.store.reading() as tx:
                return tx.counts()

        return JSONResponse(await run_in_threadpool(work))

    async def calls(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse(sb.calls.snapshot())

    async def wrapped_error(request: Request, call: Callable[[Request], Any]) -> Response:
        try:
            result: Response = await call(request)
        except ProblemResponse as exc:
            return problem_response(exc.status, exc.doc)
        return result

    def route(path: str, fn: Callable[[Request], Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await wrapped_error(request, fn)

        return Route(path, endpoint, methods=methods)

    return [
        route("/_sandbox/health", health, ["GET"]),
        route("/_sandbox/faults", faults, ["POST", "DELETE"]),
        route("/_sandbox/touch", touch, ["POST"]),
        route("/_sandbox/orders/{number}/status", order_status, ["POST"]),
        route("/_sandbox/counts", counts, ["GET"]),
        route("/_sandbox/calls", calls, ["GET"]),
    ]


def _key_of(kind: str, item: Mapping[str, Any]) -> str:
    if kind == "stock":
        return f"{item['article_code']}@{item['warehouse']}"
    for field in ("code", "number", "id"):
        if field in item:
            return str(item[field])
    msg = f"no key field in a {kind}"
    raise KeyError(msg)


def _restock(level: dict[str, Any]) -> dict[str, Any]:
    """A touched stock level changes a little, as a receipt would change it."""
    on_hand = int(rules.dec(level["on_hand"])) + 5
    reserved = int(rules.dec(level["reserved"]))
    return {**level, "on_hand": str(on_hand), "available": str(on_hand - reserved)}
