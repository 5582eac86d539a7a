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

Where the calls are kept is a :class:`CallLedger`, so that the same rule holds for one process
or for several gateway nodes sharing one agreement:

- :class:`LocalLedger` (default): this process's calls, in memory, on the injected clock;
- ``edigw.journal.budget.SharedLedger``: every node's calls, in the PostgreSQL journal, on the
  database's clock. The proof above only needs one clock and one order of acquisitions,
  which the database gives. A ledger that cannot be read raises, and no call is made.

Why not the ``limits`` library (moving window, in-memory storage): its storage reads the
wall clock (``time.time``, which jumps with NTP) with no way to inject a clock for tests,
starts a timer thread for expiry, records calls when they start rather than when they
complete, and answers "allowed or not" where we need "how long to wait". The sliding-window
log below is a deque of at most N completion times plus an in-flight counter.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

DEFAULT_PERIOD = 60.0
IDLE_POLL = 0.05  # seconds between looks when every slot is held by a call in flight
_MIN_SLEEP = 0.001  # never sleep less: float rounding must not make a zero-length wait loop


@dataclass(frozen=True, slots=True)
class Grant:
    """A ledger's answer: the slot taken (``slot`` set), or how long to wait (``wait``)."""

    slot: int | None
    wait: float = 0.0

    @property
    def granted(self) -> bool:
        return self.slot is not None


def agreement_key(base_url: str, token: str) -> str:
    """The agreement a client's calls count against: the Ecolix instance and the customer.

    The vendor counts calls per token; only a fingerprint of it is stored, never the token.
    """
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{fingerprint}"


class CallLedger(Protocol):
    """Where the calls in flight and the calls completed in the last period are kept.

    ``take`` applies the rule atomically (no two callers can both take the last slot) and
    either holds a slot or says how long to wait; ``give_back`` records the slot's call as
    completed, now or a little later (never earlier: a call may count longer, never less). A
    ledger that cannot be read raises from ``take`` (the call is then not made);
    ``give_back`` never raises for an outage (a slot left in flight only counts longer).
    """

    def take(self, calls: int, period: float) -> Grant: ...

    def give_back(self, slot: int) -> None: ...


class LocalLedger:
    """The calls of this process: a deque of completion times and an in-flight counter."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._completed: deque[float] = deque()  # completion times, ascending
        self._in_flight = 0

    def take(self, calls: int, period: float) -> Grant:
        with self._lock:
            horizon = self._clock() - period
            while self._completed and self._completed[0] <= horizon:
                self._completed.popleft()
            if self._in_flight + len(self._completed) < calls:
                self._in_flight += 1
                return Grant(slot=0)
            if self._completed:
                return Grant(None, max(self._completed[0] - horizon, _MIN_SLEEP))
            return Grant(None, IDLE_POLL)  # every slot in flight: look again soon

    def give_back(self, slot: int) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._completed.append(self._clock())


class RollingWindowLimiter:
    """Blocks callers so that at most ``calls`` calls fall in any rolling ``period``.

    ``calls=None`` means no agreed limit: :meth:`slot` never waits for the window, but the
    limiter still honours :meth:`pause_until` (server said "slow down"). Thread-safe; the
    clock and sleep are injectable so that tests run on a fake clock. ``ledger`` is where the
    budget is kept: this process (default) or a ledger shared by several nodes.
    """

    def __init__(
        self,
        calls: int | None,
        *,
        period: float = DEFAULT_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        ledger: CallLedger | None = None,
    ) -> None:
        if calls is not None and calls < 1:
            msg = f"calls per period must be at least 1, got {calls}"
            raise ValueError(msg)
        if period <= 0:
            msg = f"period must be positive, got {period}"
            raise ValueError(msg)
        self.calls = calls
        self.period = period
        self.ledger: CallLedger = ledger if ledger is not None else LocalLedger(clock)
        self._clock = clock
        self._sleep = sleep
        self._state = threading.Lock()  # guards the fields below; never held while sleeping
        self._turn = threading.Lock()  # one waiter at a time: first come, first served
        self._paused_until = 0.0
        self._waited = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot, hold it for the duration of one call, then release it."""
        held = self.acquire()
        try:
            yield
        finally:
            self.release(held)

    def acquire(self) -> int | None:
        """Block until one more call may start without breaking the agreement.

        Returns the slot to hand to :meth:`release` (None without an agreement). Raises what
        the ledger raises when it cannot be read: then no slot is held and no call may start.
        """
        with self._turn:
            while True:
                with self._state:
                    now = self._clock()
                    paused = self._paused_until - now if now < self._paused_until else 0.0
                if paused > 0.0:
                    delay = max(paused, _MIN_SLEEP)
                elif self.calls is None:
                    return None
                else:
                    grant = self.ledger.take(self.calls, self.period)
                    if grant.slot is not None:
                        return grant.slot
                    delay = max(grant.wait, _MIN_SLEEP)
                with self._state:
                    self._waited += delay
                self._sleep(delay)

    def release(self, slot: int | None = 0) -> None:
        """Record that a call acquired with :meth:`acquire` has completed (or failed)."""
        if self.calls is not None and slot is not None:
            self.ledger.give_back(slot)

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
