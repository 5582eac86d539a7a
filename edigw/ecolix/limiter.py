"""Client-side limiter: at most N Ecolix calls in *every* rolling 60-second window.

The vendor's agreement counts calls as the server sees them, in any 60-second window, so a
well-behaved gateway must never be the one to trip a 429. The rule enforced here is exact
even under concurrency and variable latency::

    a call may start only while  (calls in flight) + (calls completed in the last period) < N

Why that is enough: the server stamps a call somewhere between its start and its completion.
Take any N+1 calls the server stamped inside one window ``[a, a + period)`` and the last of
them to start, at ``s < a + period``. Each of the other N had started by ``s`` and was then
either still in flight or completed at or after its server stamp ``>= a > s - period``:
all N counted, so the last one could not have started. Completion time, not start time, is
what is remembered, because a slow request may reach the server long after it left.

Why not the ``limits`` library (moving window, in-memory storage): its storage reads the
wall clock (``time.time``, which jumps with NTP) with no way to inject a clock for tests,
starts a timer thread for expiry, records calls when they start rather than when they
complete, and answers "allowed or not" where we need "how long to wait". The sliding-window
log below is a deque of at most N completion times plus an in-flight counter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEFAULT_PERIOD = 60.0
_IDLE_POLL = 0.05  # seconds between looks when every slot is held by a call in flight
_MIN_SLEEP = 0.001  # never sleep less: float rounding must not make a zero-length wait loop


class RollingWindowLimiter:
    """Blocks callers so that at most ``calls`` calls fall in any rolling ``period``.

    ``calls=None`` means no agreed limit: :meth:`slot` never waits for the window, but the
    limiter still honours :meth:`pause_until` (server said "slow down"). Thread-safe; the
    clock and sleep are injectable so that tests run on a fake clock.
    """

    def __init__(
        self,
        calls: int | None,
        *,
        period: float = DEFAULT_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls is not None and calls < 1:
            msg = f"calls per period must be at least 1, got {calls}"
            raise ValueError(msg)
        if period <= 0:
            msg = f"period must be positive, got {period}"
            raise ValueError(msg)
        self.calls = calls
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._state = threading.Lock()  # guards the fields below; never held while sleeping
        self._turn = threading.Lock()  # one waiter at a time: first come, first served
        self._completed: deque[float] = deque()  # completion times, ascending
        self._in_flight = 0
        self._paused_until = 0.0
        self._waited = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot, hold it for the duration of one call, then release it."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        """Block until one more call may start without breaking the agreement."""
        with self._turn:
            while True:
                with self._state:
                    delay = self._delay_locked(self._clock())
                    if delay == 0.0:
                        self._in_flight += 1
                        return
                    self._waited += delay
                self._sleep(delay)

    def release(self) -> None:
        """Record that a call acquired with :meth:`acquire` has completed (or failed)."""
        with self._state:
            self._in_flight = max(0, self._in_flight - 1)
            if self.calls is not None:
                self._completed.append(self._clock())

    def pause_until(self, when: float) -> None:
        """Hold every new call until ``when`` (same clock): the server asked us to wait."""
        with self._state:
            self._paused_until = max(self._paused_until, when)

    def paused_for(self) -> float:
        """Seconds left of a pause the server asked for (0.0 when none)."""
        with self._state:
            return max(0.0, self._paused_until - self._clock())

    @property
    def waited(self) -> float:
        """Total seconds callers were told to wait (for usage reports and benchmarks)."""
        with self._state:
            return self._waited

    def _delay_locked(self, now: float) -> float:
        """Seconds to wait before a call may start at ``now``; 0.0 when it may start now."""
        if now < self._paused_until:
            return max(self._paused_until - now, _MIN_SLEEP)
        if self.calls is None:
            return 0.0
        horizon = self._prune_locked(now)
        if self._in_flight + len(self._completed) < self.calls:
            return 0.0
        if self._completed:
            return max(self._completed[0] - horizon, _MIN_SLEEP)
        return _IDLE_POLL  # every slot is in flight: look again once one may have completed

    def _prune_locked(self, now: float) -> float:
        """Forget completions that left the window; returns the window's start."""
        horizon = now - self.period
        while self._completed and self._completed[0] <= horizon:
            self._completed.popleft()
        return horizon
