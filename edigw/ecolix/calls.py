"""One call to Ecolix, the one way out of the client: a slot of the call budget, the request,
its answer read into a body or a typed error, retried per the policy.

It keeps the machinery every read and write goes through: the limiter (and the pauses
Ecolix asks for), the wire, the call counts, the retry policy and the waits that
``EcolixClient.stop_waiting`` ends. :class:`~edigw.ecolix.client.EcolixClient` builds them;
its reads (``edigw.ecolix.reads``) and writes (``edigw.ecolix.writes``) are mixins on
:class:`CallsBase`, so a ``write`` or a ``get`` calls :meth:`CallsBase._send` directly, with no
layer between. httpx exceptions never leave this module; they become the ``edigw.errors`` tree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from edigw.ecolix.answers import error_for, parse_retry_after, success_body
from edigw.ecolix.contract import Contract, OperationSpec
from edigw.ecolix.limiter import RollingWindowLimiter
from edigw.ecolix.retries import RetryPolicy, retrying
from edigw.ecolix.usage import CallCounter
from edigw.ecolix.wire import Wire
from edigw.errors import (
    EcolixCallCancelled,
    EcolixError,
    EcolixFinalError,
    EcolixNotSentError,
    EcolixRetriableError,
    JournalError,
)

NOT_MODIFIED = 304
#: httpx errors raised before any byte of the request is sent: no connection was made
#: (refused, name not resolved, connect timeout) or none was free in the pool.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAX_SERVER_PAUSE = 120.0  # never trust a rate-limit header asking for a longer pause
_EPOCH_THRESHOLD = 1_000_000_000  # an X-RateLimit-Reset above this is a Unix time


class CallsBase:
    """What every call of an :class:`~edigw.ecolix.client.EcolixClient` goes through; its
    reads and writes build on it. ``EcolixClient.__init__`` sets what it keeps."""

    contract: Contract
    retry_policy: RetryPolicy
    _clock: Callable[[], float]
    _stopping: threading.Event
    _sleep: Callable[[float], object]
    _limiter: RollingWindowLimiter
    _counter: CallCounter
    _wire: threading.local
    _http: Wire

    def wire_seconds(self) -> float:
        """Seconds the calling thread's requests have spent on the wire so far (sent until
        answered): the latency senders hide (``edigw.pipeline.concurrency``), without the
        waits for the call budget or before a retry."""
        seconds: float = getattr(self._wire, "seconds", 0.0)
        return seconds

    def _wait(self, seconds: float) -> None:
        """The limiter's and the retries' sleep, cut short by ``EcolixClient.stop_waiting``."""
        if not self._stopping.is_set():
            self._sleep(seconds)
        if self._stopping.is_set():
            msg = "not sent: the gateway is stopping (the call was waiting its turn)"
            raise EcolixCallCancelled(msg)

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
