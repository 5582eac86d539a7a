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
- httpx exceptions never leave the client; they become the ``edigw.errors`` tree.
- A dry run (``write(..., dry_run=True)``, ``validate``, ``validate_chain`` for writes that
  need each other) gets the answer a write would get and creates nothing; it is a call like
  any other, in the budget. A dry run Ecolix does not confirm (``Dry-Run: true``) is an error:
  the write may have been made.

One client is shared by all worker threads: its wire (``edigw.ecolix.wire``, ``httpx``'s
pooled transport) is thread-safe and keeps connections alive, which is what makes a call cost
~1 ms on loopback instead of ~20 ms.

The class is made of its parts, each in its module and mixed in here without a layer
between: the reads (``edigw.ecolix.reads``: ``get``, ``iter_list`` and its ``Listing``,
conditional pages), the writes (``edigw.ecolix.writes``: ``write`` and its dry runs), both
on the one way out (``edigw.ecolix.calls``: budget slot, request, answer, retries). This
module builds what they keep and holds the client's lifecycle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from edigw import __version__
from edigw.ecolix.contract import Contract, load_contract
from edigw.ecolix.limiter import DEFAULT_PERIOD, CallLedger, RollingWindowLimiter
from edigw.ecolix.pages import PageCache
from edigw.ecolix.reads import ReadsMixin
from edigw.ecolix.retries import RetryPolicy
from edigw.ecolix.usage import CallCounter, UsageSnapshot
from edigw.ecolix.wire import Wire
from edigw.ecolix.writes import WritesMixin


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed per phase of one HTTP request (httpx semantics)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0


class EcolixClient(ReadsMixin, WritesMixin):
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
