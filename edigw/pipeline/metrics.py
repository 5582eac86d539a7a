"""Prometheus metrics of a running gateway, read at scrape time from what it already knows.

Three sources, none on the data path:

* the **journal**: files and documents per flow and state, the retry queue, the age of the
  oldest waiting document (:meth:`Journal.gauges`: three aggregate queries, done at most
  once per :data:`JOURNAL_EVERY` seconds however many scrapers ask);
* the **Ecolix client's** call counter: calls per operation, answers per status (429s
  among them), the call budget and how much of it the last minute used;
* the **supervisor's** snapshot: each loop up or not, its restarts, the open conditions.

Only poll and send durations are observed as they happen (histograms, fed through
``Signals.timed``). Every metric lives in a :class:`GatewayMetrics`' own
``CollectorRegistry``: two gateways in one process (the tests) never share a series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import EdigwError
from edigw.journal.rows import JournalGauges
from edigw.journal.store import Journal
from edigw.pipeline.health import HealthSnapshot

log = logging.getLogger("edigw.metrics")

#: The journal is counted again at most this often (seconds); scrapes in between reuse it.
JOURNAL_EVERY = 5.0
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Every series name the gateway exports (the Grafana dashboard uses only these).
METRIC_NAMES = (
    "edigw_files",
    "edigw_documents",
    "edigw_retry_queue_documents",
    "edigw_oldest_waiting_document_age_seconds",
    "edigw_journal_up",
    "edigw_ecolix_calls_total",
    "edigw_ecolix_responses_total",
    "edigw_ecolix_throttled_total",
    "edigw_ecolix_calls_last_minute",
    "edigw_ecolix_calls_per_minute_limit",
    "edigw_ecolix_budget_wait_seconds_total",
    "edigw_loop_up",
    "edigw_loop_restarts_total",
    "edigw_condition",
    "edigw_healthy",
    "edigw_senders_in_flight",
    "edigw_senders_in_flight_limit",
    "edigw_poll_duration_seconds",
    "edigw_send_duration_seconds",
)


class _CachedGauges:
    """The journal's gauges, read again only when older than ``every`` seconds."""

    def __init__(self, journal: Journal, *, every: float, monotonic: Callable[[], float]) -> None:
        self._journal = journal
        self._every = every
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: JournalGauges | None = None
        self._at = float("-inf")

    def get(self) -> JournalGauges | None:
        """The gauges, or ``None`` when the journal cannot be read now (logged)."""
        with self._lock:
            now = self._monotonic()
            if self._value is not None and now - self._at < self._every:
                return self._value
            try:
                self._value = self._journal.gauges()
            except EdigwError as exc:
                log.warning("metrics: cannot count the journal: %s", exc)
                self._value = None
            self._at = now
            return self._value


class GatewayCollector(Collector):
    """Yields the journal's, the client's and the supervisor's series at each scrape."""

    def __init__(
        self,
        *,
        journal: Journal,
        usage: Callable[[], UsageSnapshot],
        health: Callable[[], HealthSnapshot],
        clock: Callable[[], datetime],
        in_flight: Callable[[], tuple[int, int]] = lambda: (0, 0),
        journal_every: float = JOURNAL_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gauges = _CachedGauges(journal, every=journal_every, monotonic=monotonic)
        self._usage = usage
        self._health = health
        self._clock = clock
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        yield from self._journal_series(self._gauges.get())
        yield from _usage_series(self._usage())
        yield from _health_series(self._health())
        yield from _in_flight_series(*self._in_flight())

    def describe(self) -> Iterable[Metric]:
        return ()  # collected at scrape time only: nothing to check at registration

    def _journal_series(self, gauges: JournalGauges | None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "edigw_journal_up", "1 when the journal could be read at the last count."
        )
        up.add_metric([], 0 if gauges is None else 1)
        yield up
        if gauges is None:
            return
        files = GaugeMetricFamily(
            "edigw_files", "Files in the journal, per flow and state.", labels=["flow", "state"]
        )
        for (partner, flow, state), n in sorted(gauges.files.items()):
            files.add_metric([f"{partner}/{flow}", state], n)
        docs = GaugeMetricFamily(
            "edigw_documents",
            "Documents in the journal, per flow and state.",
            labels=["flow", "state"],
        )
        retry = GaugeMetricFamily(
            "edigw_retry_queue_documents",
            "Documents waiting for a retry after a temporary Ecolix error, per flow.",
            labels=["flow"],
        )
        flows = sorted({(p, f) for p, f, _ in gauges.documents})
        for (partner, flow, state), n in sorted(gauges.documents.items()):
            docs.add_metric([f"{partner}/{flow}", state], n)
        for partner, flow in flows:
            retry.add_metric(
                [f"{partner}/{flow}"], gauges.documents.get((partner, flow, "retry_wait"), 0)
            )
        oldest = GaugeMetricFamily(
            "edigw_oldest_waiting_document_age_seconds",
            "Age of the oldest document not finished yet (pending, sent or waiting for a "
            "retry), per flow; 0 when none waits.",
            labels=["flow"],
        )
        now = self._clock()
        for partner, flow in flows:
            since = gauges.oldest_waiting.get((partner, flow))
            age = 0.0 if since is None else max(0.0, (now - since).total_seconds())
            oldest.add_metric([f"{partner}/{flow}"], age)
        yield from (files, docs, retry, oldest)


def _usage_series(usage: UsageSnapshot) -> Iterator[Metric]:
    calls = CounterMetricFamily(
        "edigw_ecolix_calls",
        "HTTP requests sent to Ecolix (retries included), per operation.",
        labels=["operation"],
    )
    for operation, n in sorted(usage.by_operation.items()):
        calls.add_metric([operation], n)
    answers = CounterMetricFamily(
        "edigw_ecolix_responses",
        "Ecolix answers per HTTP status (0: no answer: network error or timeout).",
        labels=["status"],
    )
    for status, n in sorted(usage.by_status.items()):
        answers.add_metric([str(status)], n)
    throttled = CounterMetricFamily(
        "edigw_ecolix_throttled", "429 Too Many Requests answers from Ecolix."
    )
    throttled.add_metric([], usage.throttled)
    last_minute = GaugeMetricFamily(
        "edigw_ecolix_calls_last_minute", "Requests sent to Ecolix in the last 60 seconds."
    )
    last_minute.add_metric([], usage.last_minute)
    waited = CounterMetricFamily(
        "edigw_ecolix_budget_wait_seconds",
        "Time calls spent waiting for the call budget (calls_per_minute).",
    )
    waited.add_metric([], usage.waited_seconds)
    yield from (calls, answers, throttled, last_minute, waited)
    if usage.limit_per_minute is not None:
        limit = GaugeMetricFamily(
            "edigw_ecolix_calls_per_minute_limit",
            "The call budget agreed with the vendor (ecolix.calls_per_minute).",
        )
        limit.add_metric([], usage.limit_per_minute)
        yield limit


def _health_series(snapshot: HealthSnapshot) -> Iterator[Metric]:
    labels = ["loop", "kind", "flow"]
    up = GaugeMetricFamily(
        "edigw_loop_up",
        "1 while a supervised loop runs, 0 when restarting, stopped or failed.",
        labels=labels,
    )
    restarts = CounterMetricFamily(
        "edigw_loop_restarts", "Restarts of a supervised loop after a crash.", labels=labels
    )
    for loop in snapshot.loops:
        values = [loop.name, loop.kind, loop.flow or ""]
        up.add_metric(values, 1 if loop.state == "running" else 0)
        restarts.add_metric(values, loop.restarts)
    conditions = GaugeMetricFamily(
        "edigw_condition",
        "1 for each open condition: trouble that belongs to no file (a channel down, a "
        "journal refusing writes, Ecolix not answering).",
        labels=["name", "flow"],
    )
    for condition in snapshot.conditions:
        conditions.add_metric([condition.name, condition.flow or ""], 1)
    healthy = GaugeMetricFamily(
        "edigw_healthy", "1 when the gateway runs, every loop runs and no condition is open."
    )
    healthy.add_metric([], 1 if snapshot.healthy else 0)
    yield from (up, restarts, conditions, healthy)


def _in_flight_series(held: int, limit: int) -> Iterator[Metric]:
    now = GaugeMetricFamily(
        "edigw_senders_in_flight", "Documents the senders hold now (claimed, not finished)."
    )
    now.add_metric([], held)
    most = GaugeMetricFamily(
        "edigw_senders_in_flight_limit",
        "Most documents the senders may hold at once (--senders auto: follows the latency).",
    )
    most.add_metric([], limit)
    yield from (now, most)


class GatewayMetrics:
    """One gateway's registry: the scrape-time collector and the duration histograms.

    ``observe`` is what ``Signals.timed`` calls; ``exposition`` is the ``/metrics`` body.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        usage: Callable[[], UsageSnapshot],
        health: Callable[[], HealthSnapshot],
        clock: Callable[[], datetime],
        in_flight: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            GatewayCollector(
                journal=journal, usage=usage, health=health, clock=clock, in_flight=in_flight
            )
        )
        self._durations = {
            "poll": Histogram(
                "edigw_poll_duration_seconds",
                "How long one look at a flow's channel took (taking its ready files in).",
                ["flow"],
                buckets=POLL_BUCKETS,
                registry=self.registry,
            ),
            "send": Histogram(
                "edigw_send_duration_seconds",
                "How long sending one document to Ecolix took (retries within the call "
                "included) and journalling its outcome.",
                ["flow"],
                buckets=SEND_BUCKETS,
                registry=self.registry,
            ),
        }

    def observe(self, kind: str, flow: str, seconds: float) -> None:
        histogram = self._durations.get(kind)
        if histogram is not None:
            histogram.labels(flow=flow).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)


__all__ = ["METRIC_NAMES", "GatewayCollector", "GatewayMetrics"]
