"""The Ecolix REST client: one pooled HTTP connection set, typed errors, polite retries.

Every call goes the same way::

    limiter slot ─▶ httpx request ─▶ answer ─▶ EcolixResponse | typed EcolixError
         ▲                                 │
         └──── tenacity: backoff + jitter ◀┘  connect errors, timeouts, 429, 502/503/504

- Paths come from the contract (``openapi.yaml``): a write's path parameters are read from
  its body, so a mapping only ever produces one JSON body per document.
- Every write carries the caller's idempotency key, so a retry (here, or by the pipeline
  hours later) never creates a second object.
- Retries are few and bounded; past them :class:`EcolixRetriableError` carries
  ``retry_after`` so the pipeline can park the document in retry-wait rather than hold a
  worker thread. Other 4xx are never retried: they would fail the same way. A 500 (or other
  5xx) is retriable for the pipeline but not retried here (it tends to repeat at once), and
  when Ecolix asked for a pause longer than the policy's wait cap, calls fail fast with
  ``retry_after`` instead of blocking a worker.
- A call none of whose requests left (connection refused, name not resolved, connect or
  pool timeout, a server pause) raises :class:`EcolixNotSentError`: the pipeline backs off
  without counting an attempt. A request that may have reached Ecolix (read timeout, a
  connection cut after sending) is a plain retriable error: it counts.
- List reads are conditional: the last page read per URL is kept with its ETag
  (``edigw.ecolix.pages``) and sent back in ``If-None-Match``; on 304 the kept page is used.
  A 304 is a call like another, in the budget and the usage counts.
- httpx exceptions never leave this module; they become the ``edigw.errors`` tree.
- A dry run (``write(..., dry_run=True)``, ``validate``, ``validate_chain`` for writes that
  need each other) gets the answer a write would get and creates nothing; it is a call like
  any other, in the budget. A dry run Ecolix does not confirm (``Dry-Run: true``) is an error:
  the write may have been made.

One client is shared by all worker threads: its wire (``edigw.ecolix.wire``, ``httpx``'s
pooled transport) is thread-safe and keeps connections alive, which is what makes a call cost
~1 ms on loopback instead of ~20 ms.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from edigw import __version__
from edigw.ecolix.answers import (
    ChainAnswer,
    EcolixResponse,
    chain_answer,
    error_for,
    parse_retry_after,
    success_body,
)
from edigw.ecolix.contract import Contract, OperationSpec, load_contract
from edigw.ecolix.limiter import DEFAULT_PERIOD, CallLedger, RollingWindowLimiter
from edigw.ecolix.pages import PageCache, page_key
from edigw.ecolix.retries import RetryPolicy, retrying
from edigw.ecolix.usage import CallCounter, UsageSnapshot
from edigw.ecolix.wire import Wire
from edigw.errors import (
    EcolixCallCancelled,
    EcolixError,
    EcolixFinalError,
    EcolixNotSentError,
    EcolixRetriableError,
    JournalError,
)

MAX_PAGE_SIZE = 1000
DRY_RUN_PARAMETER = "dry_run"
DRY_RUN_HEADER = "Dry-Run"
DRY_RUN_KEY_PREFIX = "edigw-dry-run-"
DRY_RUNS_OPERATION = "dry_runs.create"
NOT_MODIFIED = 304
#: httpx errors raised before any byte of the request is sent: no connection was made
#: (refused, name not resolved, connect timeout) or none was free in the pool.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAX_SERVER_PAUSE = 120.0  # never trust a rate-limit header asking for a longer pause
_EPOCH_THRESHOLD = 1_000_000_000  # an X-RateLimit-Reset above this is a Unix time


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed per phase of one HTTP request (httpx semantics)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0


class Listing(Iterator[dict[str, Any]]):
    """The items of a list operation, fetched lazily one page at a time.

    ``pages`` and ``calls`` (HTTP requests, retries included) grow as you iterate, so an
    export run can record how many calls it cost; ``not_modified`` counts the pages Ecolix
    answered 304 to, taken from the client's kept pages (``edigw.ecolix.pages``).
    """

    def __init__(self, client: EcolixClient, operation: str, params: dict[str, str]) -> None:
        self.operation = operation
        self.pages = 0
        self.calls = 0
        self.not_modified = 0
        self.next_cursor: str | None = None
        self._client = client
        self._params = params
        self._items: Iterator[dict[str, Any]] = iter(())
        self._done = False

    def __next__(self) -> dict[str, Any]:
        while True:
            for item in self._items:  # at most one: the rest stay for the next call
                return item
            if self._done:
                raise StopIteration
            self._fetch_page()

    def _fetch_page(self) -> None:
        params = dict(self._params)
        if self.next_cursor is not None:
            params["cursor"] = self.next_cursor
        spec = self._client.contract.operation(self.operation)
        body, attempts, reused = self._client._read_page(self.operation, spec, params)
        self.calls += attempts
        self.pages += 1
        self.not_modified += reused
        items = body.get("items")
        if not isinstance(items, list):
            msg = f"Ecolix answered {self.operation} without an 'items' list"
            raise EcolixFinalError(msg, operation=self.operation)
        cursor = body.get("next_cursor")
        if cursor is not None and (not isinstance(cursor, str) or cursor == self.next_cursor):
            msg = f"Ecolix answered {self.operation} with an unusable next_cursor {cursor!r}"
            raise EcolixFinalError(msg, operation=self.operation)
        self.next_cursor = cursor or None
        self._done = self.next_cursor is None
        self._items = iter(items)


class EcolixClient:
    """Talks to one Ecolix instance; share one per process, from any number of threads.

    ``calls_per_minute`` is the agreement: no rolling 60-second window ever holds more calls
    (``None``: no client-side limit). ``transport`` is a test seam (``httpx.MockTransport``);
    ``clock``/``sleep`` drive the limiter and the retry waits, so tests need not wait.
    ``budget`` is where the agreement's calls are kept: this process (``None``) or a ledger
    every node of a PostgreSQL journal shares (``edigw.journal.budget.SharedLedger``); when it
    cannot be read, calls raise ``EcolixNotSentError`` and nothing is sent.
    ``period`` is the agreement's window (60 s; shorter only in tests and benchmarks).
    :meth:`stop_waiting` ends every wait at once (a stopping gateway must not sit out a
    60-second window): the waiting calls raise ``EcolixCallCancelled`` without being made.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        calls_per_minute: int | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        contract: Contract | None = None,
        limiter: RollingWindowLimiter | None = None,
        budget: CallLedger | None = None,
        period: float = DEFAULT_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        pages: PageCache | None = None,
    ) -> None:
        if retry.attempts < 1:
            msg = f"RetryPolicy.attempts must be at least 1, got {retry.attempts}"
            raise ValueError(msg)
        self.contract = contract if contract is not None else load_contract()
        self.calls_per_minute = calls_per_minute
        self.retry_policy = retry
        self._clock = clock
        self._stopping = threading.Event()
        self._sleep = sleep if sleep is not None else self._stopping.wait
        self._limiter = limiter or RollingWindowLimiter(
            calls_per_minute, period=period, clock=clock, sleep=self._wait, ledger=budget
        )
        self._counter = CallCounter(clock=clock)
        #: per thread, seconds its requests spent on the wire (see :meth:`wire_seconds`)
        self._wire = threading.local()
        #: the last list page read per URL, with its ETag (``edigw.ecolix.pages``)
        self.pages = pages if pages is not None else PageCache()
        self._http = Wire(
            base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, application/problem+json",
                "User-Agent": f"edigw/{__version__}",
            },
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.pool,
            ),
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def stop_waiting(self) -> None:
        """End every wait, now and later: calls waiting for the budget, a pause or a retry
        raise ``EcolixCallCancelled`` without being made; a call already on the wire
        finishes."""
        self._stopping.set()

    def wire_seconds(self) -> float:
        """Seconds the calling thread's requests have spent on the wire so far (sent until
        answered): the latency senders hide (``edigw.pipeline.concurrency``), without the
        waits for the call budget or before a retry."""
        seconds: float = getattr(self._wire, "seconds", 0.0)
        return seconds

    def _wait(self, seconds: float) -> None:
        """The limiter's and the retries' sleep, cut short by :meth:`stop_waiting`."""
        if not self._stopping.is_set():
            self._sleep(seconds)
        if self._stopping.is_set():
            msg = "not sent: the gateway is stopping (the call was waiting its turn)"
            raise EcolixCallCancelled(msg)

    @property
    def limiter(self) -> RollingWindowLimiter:
        """The call budget this client's calls wait for (benchmarks trace its ledger)."""
        return self._limiter

    @property
    def usage(self) -> UsageSnapshot:
        """Calls made so far, per operation and in the last minute, against the agreement."""
        return self._counter.snapshot(
            limit_per_minute=self.calls_per_minute, waited_seconds=self._limiter.waited
        )

    # -- writes ------------------------------------------------------------------------------

    def write(
        self,
        operation: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str,
        dry_run: bool = False,
    ) -> EcolixResponse:
        """Send one write by operation id; path parameters are taken from ``payload``.

        ``dry_run``: validation only (``?dry_run=true``): Ecolix answers what the write would
        get, refusals included, and creates nothing; the call counts in the budget. A success
        without Ecolix's ``Dry-Run: true`` raises ``EcolixFinalError``: that Ecolix did not
        understand the dry run, and the write may have been made.
        """
        _check_idempotency_key(idempotency_key)
        spec = self.contract.operation(operation)
        if spec.kind != "write":
            msg = f"{operation} is a read operation; use get() or iter_list()"
            raise ValueError(msg)
        if not spec.target:
            msg = f"{operation} is not a write of business data; use validate_chain()"
            raise ValueError(msg)
        path = _fill_path(operation, spec, payload, source="body")
        content = json.dumps(
            dict(payload), sort_keys=True, separators=(",", ":"), default=_json_default
        )
        body, response, _ = self._send(
            operation,
            spec,
            path,
            params={DRY_RUN_PARAMETER: "true"} if dry_run else None,
            content=content.encode(),
            headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"},
        )
        if dry_run and response.headers.get(DRY_RUN_HEADER, "").lower() != "true":
            msg = (
                f"Ecolix answered the dry run of {operation} with {response.status_code} but "
                f"without '{DRY_RUN_HEADER}: true': it may have made the write for real; "
                "check in Ecolix before sending this document"
            )
            raise EcolixFinalError(msg, operation=operation)
        object_id = body.get(spec.object_id_field) if spec.object_id_field else None
        return EcolixResponse(
            operation=operation,
            status=response.status_code,
            body=body,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            object_id=None if object_id is None else str(object_id),
            dry_run=dry_run,
        )

    def validate(self, operation: str, payload: Mapping[str, Any]) -> EcolixResponse:
        """A dry run of a write under a key of its own (never stored, so never reused):
        the answer Ecolix would give ``payload``, refusals raised as typed errors as for a
        write, and nothing created. One call, counted in the budget."""
        return self.write(
            operation,
            payload,
            idempotency_key=f"{DRY_RUN_KEY_PREFIX}{uuid.uuid4().hex}",
            dry_run=True,
        )

    def validate_chain(self, writes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[ChainAnswer]:
        """A dry run of a chain of writes (``POST /dry-runs``): what each would get, each on
        what the earlier ones would have made, up to the first refusal; nothing created. One
        call, counted in the budget. A refusal of a write is in its answer, not raised; a
        refusal of the request itself (token, malformed) raises as any call does."""
        spec = self.contract.operation(DRY_RUNS_OPERATION)
        content = json.dumps(
            {"writes": [{"operation": op, "body": dict(body)} for op, body in writes]},
            sort_keys=True,
            separators=(",", ":"),
            default=_json_default,
        )
        body, response, _ = self._send(
            DRY_RUNS_OPERATION,
            spec,
            spec.path,
            content=content.encode(),
            headers={"Content-Type": "application/json"},
        )
        results = body.get("results")
        if response.headers.get(DRY_RUN_HEADER, "").lower() != "true" or not isinstance(
            results, list
        ):
            msg = f"Ecolix answered {DRY_RUNS_OPERATION} without the results of a dry run"
            raise EcolixFinalError(msg, operation=DRY_RUNS_OPERATION)
        return [
            chain_answer(item, response.reason_phrase, operation=DRY_RUNS_OPERATION)
            for item in results
        ]

    def upsert_customer(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """PUT /customers/{code}: create or update a customer record."""
        return self.write("customers.upsert", payload, idempotency_key=idempotency_key)

    def create_order(self, payload: Mapping[str, Any], *, idempotency_key: str) -> EcolixResponse:
        """POST /orders: a customer order with its lines and the payment received."""
        return self.write("orders.create", payload, idempotency_key=idempotency_key)

    def validate_quote(self, payload: Mapping[str, Any], *, idempotency_key: str) -> EcolixResponse:
        """POST /quotes/{number}/validation: turn an open quote into an order."""
        return self.write("quotes.validate", payload, idempotency_key=idempotency_key)

    def create_delivery_note(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /delivery-notes: a carrier's booked appointment for an order."""
        return self.write("delivery_notes.create", payload, idempotency_key=idempotency_key)

    def confirm_purchase_order(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /purchase-orders/{number}/confirmation: a supplier's order confirmation."""
        return self.write("purchase_orders.confirm", payload, idempotency_key=idempotency_key)

    def create_supplier_invoice(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /supplier-invoices: a supplier's invoice or credit note."""
        return self.write("supplier_invoices.create", payload, idempotency_key=idempotency_key)

    def set_supplier_invoice_status(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /supplier-invoices/{id}/status: a lifecycle status (refused, approved...)."""
        return self.write("supplier_invoices.set_status", payload, idempotency_key=idempotency_key)

    # -- reads -------------------------------------------------------------------------------

    def get(self, operation: str, **path_params: str) -> dict[str, Any]:
        """Read one object by operation id, e.g. ``get("orders.get", number="SO-1")``."""
        spec = self._read_spec(operation)
        if set(path_params) != set(spec.path_params):
            msg = f"{operation} takes path parameters {sorted(spec.path_params)}, got {sorted(path_params)}"
            raise ValueError(msg)
        path = _fill_path(operation, spec, path_params, source="arguments")
        body, _, _ = self._send(operation, spec, path)
        return body

    def iter_list(
        self,
        operation: str,
        *,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        **filters: str | int | bool | None,
    ) -> Listing:
        """Iterate a list operation lazily, page by page, following ``next_cursor``.

        ``updated_since`` must be timezone-aware. Filters with a ``None`` value are left out.
        The returned :class:`Listing` counts the pages and calls it made.
        """
        spec = self._read_spec(operation)
        if not spec.is_list:
            msg = f"{operation} is not a list operation"
            raise ValueError(msg)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            msg = f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            raise ValueError(msg)
        params = {"limit": str(page_size)}
        if updated_since is not None:
            if updated_since.tzinfo is None or updated_since.utcoffset() is None:
                msg = "updated_since must be timezone-aware (naive datetimes are ambiguous)"
                raise ValueError(msg)
            params["updated_since"] = updated_since.isoformat()
        for name, value in filters.items():
            if value is not None:
                params[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return Listing(self, operation, params)

    def get_customer(self, code: str) -> dict[str, Any]:
        return self.get("customers.get", code=code)

    def get_quote(self, number: str) -> dict[str, Any]:
        return self.get("quotes.get", number=number)

    def get_order(self, number: str) -> dict[str, Any]:
        return self.get("orders.get", number=number)

    def get_purchase_order(self, number: str) -> dict[str, Any]:
        return self.get("purchase_orders.get", number=number)

    def get_supplier_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self.get("supplier_invoices.get", id=invoice_id)

    def list_articles(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("articles.list", updated_since=updated_since)

    def list_stock(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("stock.list", updated_since=updated_since)

    def list_customers(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("customers.list", updated_since=updated_since)

    def list_quotes(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("quotes.list", updated_since=updated_since)

    def list_orders(
        self, *, customer: str | None = None, updated_since: datetime | None = None
    ) -> Listing:
        return self.iter_list("orders.list", updated_since=updated_since, customer=customer)

    def list_order_states(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("order_states.list", updated_since=updated_since)

    def list_purchase_orders(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("purchase_orders.list", updated_since=updated_since)

    def list_delivery_notes(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("delivery_notes.list", updated_since=updated_since)

    def list_supplier_invoices(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("supplier_invoices.list", updated_since=updated_since)

    def list_supplier_invoice_states(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("supplier_invoice_states.list", updated_since=updated_since)

    def list_suppliers(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("suppliers.list", updated_since=updated_since)

    def _read_page(
        self, operation: str, spec: OperationSpec, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], int, bool]:
        """One list page: (body, requests made, whether it was the kept page, Ecolix
        answering 304 to its ETag)."""
        key = page_key(spec.path, params)
        kept = self.pages.get(key)
        headers = {"If-None-Match": kept.etag} if kept is not None else None
        body, response, attempts = self._send(
            operation, spec, spec.path, params=params, headers=headers
        )
        if response.status_code == NOT_MODIFIED:
            if kept is None:
                msg = f"Ecolix answered {operation} with 304 to a read that held no page"
                raise EcolixFinalError(msg, operation=operation)
            return success_body(operation, kept.body), attempts, True
        etag = response.headers.get("ETag")
        if etag:
            self.pages.put(key, etag, response.content)
        else:
            self.pages.forget(key)
        return body, attempts, False

    # -- the one way out -----------------------------------------------------------------------

    def _read_spec(self, operation: str) -> OperationSpec:
        spec = self.contract.operation(operation)
        if spec.kind != "read":
            msg = f"{operation} is a write operation; use write()"
            raise ValueError(msg)
        return spec

    def _send(
        self,
        operation: str,
        spec: OperationSpec,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], httpx.Response, int]:
        """One logical call, retried per the policy: (JSON body, response, requests made).

        Raises :class:`EcolixNotSentError` only when no request of the call left (each was
        refused before it was sent); once one may have reached Ecolix, a failure is a plain
        :class:`EcolixRetriableError` (the attempt counts), even a stop during a retry wait.
        """
        attempts = 0
        reached = False  # whether a request of this call may have reached Ecolix
        try:
            for attempt in retrying(self.retry_policy, self._wait):
                with attempt:
                    attempts += 1
                    try:
                        response = self._attempt(
                            operation,
                            spec,
                            path,
                            params=params,
                            content=content,
                            headers=headers,
                            retry=attempts > 1,
                        )
                    except (EcolixNotSentError, EcolixCallCancelled):
                        raise
                    except EcolixError:
                        reached = True
                        raise
                    return success_body(operation, response), response, attempts
        except EcolixCallCancelled as exc:
            if not reached:
                raise
            msg = f"{operation}: stopped while waiting to retry a call that may have reached Ecolix"
            raise EcolixRetriableError(msg, operation=operation) from exc
        except EcolixRetriableError as exc:
            if attempts > 1:  # same error, same cause (the httpx error), clearer message
                exc.args = (f"{exc} (gave up after {attempts} attempts)",)
            if reached and isinstance(exc, EcolixNotSentError):  # an earlier request went out
                sent = EcolixRetriableError(
                    f"{exc}; an earlier request of this call may have reached Ecolix",
                    operation=operation,
                    problem=exc.problem,
                    retry_after=exc.retry_after,
                )
                raise sent from exc.__cause__
            raise
        msg = "unreachable: tenacity neither returned nor raised"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _attempt(
        self,
        operation: str,
        spec: OperationSpec,
        path: str,
        *,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        retry: bool,
    ) -> httpx.Response:
        pause = self._limiter.paused_for()
        if pause > self.retry_policy.max_total_wait:  # the pipeline waits that long, not us
            msg = f"Ecolix asked for a pause: {operation} not sent, next call in {pause:.0f} s"
            raise EcolixNotSentError(msg, operation=operation, retry_after=pause)
        with self._budget_slot(operation):
            self._counter.record(operation, retry=retry)
            sent_at = time.monotonic()
            try:
                response = self._http.request(
                    spec.method, path, params=params, content=content, headers=headers
                )
            except _NEVER_SENT as exc:
                # No connection, so no byte of the request went out (a reused connection
                # that breaks fails later, as a read or protocol error: that one counts).
                self._counter.record_status(0)
                msg = f"cannot reach Ecolix for {operation} (not sent): {_describe(exc)}"
                raise EcolixNotSentError(msg, operation=operation) from exc
            except httpx.TimeoutException as exc:
                self._counter.record_status(0)
                msg = f"Ecolix did not answer {operation} in time ({type(exc).__name__})"
                raise EcolixRetriableError(msg, operation=operation) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self._counter.record_status(0)
                msg = f"cannot reach Ecolix for {operation}: {exc or type(exc).__name__}"
                raise EcolixRetriableError(msg, operation=operation) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                self._counter.record_status(0)
                msg = f"cannot call Ecolix for {operation}: {exc or type(exc).__name__}"
                raise EcolixFinalError(msg, operation=operation) from exc
            finally:
                self._wire.seconds = self.wire_seconds() + (time.monotonic() - sent_at)
        self._counter.record_status(response.status_code)
        self._heed_rate_headers(response)
        if response.is_success:
            return response
        if response.status_code == NOT_MODIFIED and headers and "If-None-Match" in headers:
            return response  # the page the caller holds is still the one (no body)
        raise error_for(operation, response, retry_after=self._retry_after(response))

    @contextmanager
    def _budget_slot(self, operation: str) -> Iterator[None]:
        """A slot of the call budget for one request; a budget that cannot be read sends
        nothing (another node's calls may fill it: never guess)."""
        try:
            slot = self._limiter.acquire()
        except JournalError as exc:
            msg = f"{operation} not sent: the shared Ecolix call budget cannot be read ({exc})"
            raise EcolixNotSentError(msg, operation=operation) from exc
        try:
            yield
        finally:
            self._limiter.release(slot)

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``), also pausing other threads."""
        seconds = parse_retry_after(response.headers.get("Retry-After"))
        if seconds is not None:
            self._limiter.pause_until(self._clock() + min(seconds, _MAX_SERVER_PAUSE))
        return seconds

    def _heed_rate_headers(self, response: httpx.Response) -> None:
        """When the server says its window is used up, hold new calls until a slot frees.

        Only when our own limiter does not already keep us under the server's limit (no
        agreement configured, or a server limit lower than the agreement). Otherwise our
        limiter knows to the millisecond when our next call may go, while the server's
        whole-second ``Reset`` would stall every thread for up to a second each time our
        window fills. Calls the server counts from another client sharing the token end in
        a 429 whose ``Retry-After`` pauses every thread. Headers that do not parse are
        ignored: they are advice.
        """
        headers = response.headers
        try:
            remaining = int(headers["X-RateLimit-Remaining"])
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return
        if remaining > 0:
            return
        agreed = self._limiter.calls
        try:
            server_limit: int | None = int(headers["X-RateLimit-Limit"])
        except (KeyError, ValueError):
            server_limit = None
        if agreed is not None and (server_limit is None or server_limit >= agreed):
            return
        if reset > _EPOCH_THRESHOLD:
            reset -= time.time()
        if reset > 0:
            self._limiter.pause_until(self._clock() + min(reset, _MAX_SERVER_PAUSE))


# -- small pure helpers ------------------------------------------------------------------------


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _check_idempotency_key(key: str) -> None:
    if not isinstance(key, str) or not key or not key.isascii() or not key.isprintable():
        msg = f"a write needs a non-empty printable ASCII idempotency key, got {key!r}"
        raise ValueError(msg)


def _fill_path(
    operation: str, spec: OperationSpec, values: Mapping[str, Any], *, source: str
) -> str:
    path = spec.path
    for name in spec.path_params:
        value = values.get(name)
        if value is None or value == "":
            msg = f"{operation} needs '{name}' in its {source} to build {spec.path}"
            raise EcolixFinalError(msg, operation=operation)
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path


def _json_default(value: object) -> str:
    """Amounts are decimal strings and dates ISO 8601 in the contract: serialise them so."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    msg = f"cannot send a {type(value).__name__} to Ecolix as JSON"
    raise TypeError(msg)
