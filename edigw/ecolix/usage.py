"""Counting Ecolix calls, so that ``edigw status`` can show usage against the agreement.

Every HTTP request counts, retries included: that is what the vendor counts. The last
minute is kept as 60 one-second buckets, so the counter stays small at any call rate.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """Call counts at one moment, safe to hand to another thread or render.

    ``calls``: HTTP requests sent since the client was made (retries included);
    ``by_operation``: the same, per Ecolix operation id; ``last_minute``: requests sent in
    the last 60 seconds; ``limit_per_minute``: the agreement the client enforces (None when
    unthrottled); ``throttled``: 429 answers received; ``retries``: requests that were
    retries of an earlier attempt; ``waited_seconds``: time callers spent waiting for the
    limiter.
    """

    calls: int
    by_operation: Mapping[str, int]
    last_minute: int
    limit_per_minute: int | None
    throttled: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    by_status: Mapping[int, int] = field(default_factory=dict)

    @property
    def headroom(self) -> int | None:
        """Calls still allowed in the current rolling minute (None when unthrottled)."""
        if self.limit_per_minute is None:
            return None
        return max(0, self.limit_per_minute - self.last_minute)


class CallCounter:
    """Thread-safe tally of calls per operation and per status, with a rolling minute."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_operation: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._buckets: deque[list[int]] = deque()  # [second, count], ascending seconds
        self._retries = 0

    def record(self, operation: str, *, retry: bool = False) -> None:
        """Count one request for ``operation`` at the current time."""
        second = int(self._clock())
        with self._lock:
            self._by_operation[operation] += 1
            if retry:
                self._retries += 1
            if self._buckets and self._buckets[-1][0] == second:
                self._buckets[-1][1] += 1
            else:
                self._buckets.append([second, 1])
                self._prune_locked(second)

    def record_status(self, status: int) -> None:
        """Count one HTTP answer by status code (0 for no answer: network error, timeout)."""
        with self._lock:
            self._by_status[status] += 1

    def snapshot(
        self, *, limit_per_minute: int | None = None, waited_seconds: float = 0.0
    ) -> UsageSnapshot:
        second = int(self._clock())
        with self._lock:
            self._prune_locked(second)
            last_minute = sum(count for _, count in self._buckets)
            return UsageSnapshot(
                calls=sum(self._by_operation.values()),
                by_operation=MappingProxyType(dict(self._by_operation)),
                last_minute=last_minute,
                limit_per_minute=limit_per_minute,
                throttled=self._by_status[429],
                retries=self._retries,
                waited_seconds=waited_seconds,
                by_status=MappingProxyType(dict(self._by_status)),
            )

    def _prune_locked(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - _WINDOW_SECONDS:
            self._buckets.popleft()
