"""The client-side limiter keeps every rolling 60-second window at or under the agreement.

All tests run on a simulated clock: ``sleep`` advances it and completes the calls that were
due meanwhile, so concurrency is simulated deterministically and nothing is timed.
"""

from __future__ import annotations

import heapq
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edigw.ecolix.limiter import Grant, LocalLedger, RollingWindowLimiter

PERIOD = 60.0


class SimClock:
    """A clock that moves only when someone sleeps, completing calls that end meanwhile."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._due: list[float] = []  # completion times of calls in flight (heap)
        self.limiter: RollingWindowLimiter | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must never ask for a zero or negative sleep"
        self.sleeps.append(seconds)
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        while self._due and self._due[0] <= when:
            self.now = max(self.now, heapq.heappop(self._due))
            assert self.limiter is not None
            self.limiter.release()
        self.now = max(self.now, when)

    def complete_at(self, when: float) -> None:
        heapq.heappush(self._due, when)


def make_limiter(calls: int | None) -> tuple[RollingWindowLimiter, SimClock]:
    clock = SimClock()
    limiter = RollingWindowLimiter(calls, period=PERIOD, clock=clock, sleep=clock.sleep)
    clock.limiter = limiter
    return limiter, clock


def call(limiter: RollingWindowLimiter, clock: SimClock, duration: float = 0.0) -> float:
    """One call of ``duration`` seconds, finished before returning; returns its start."""
    limiter.acquire()
    start = clock.now
    clock.now += duration
    limiter.release()
    return start


def max_calls_in_any_window(intervals: list[tuple[float, float]]) -> int:
    """Most calls the server could stamp in one window, whatever moment of each call it uses.

    The server stamps a call between its start and its end. A window [a, a + PERIOD) can hold
    the calls whose interval meets it; the fullest such window starts at some call's end.
    """
    return max(
        sum(1 for start, end in intervals if start < a + PERIOD and end >= a)
        for a in {end for _, end in intervals}
    )


def test_the_first_n_calls_start_at_once() -> None:
    limiter, clock = make_limiter(5)
    starts = [call(limiter, clock) for _ in range(5)]
    assert starts == [0.0] * 5
    assert clock.sleeps == []


def test_call_n_plus_one_waits_until_the_oldest_call_leaves_the_window() -> None:
    limiter, clock = make_limiter(5)
    for _ in range(5):
        call(limiter, clock)
    assert call(limiter, clock) == pytest.approx(PERIOD, abs=0.002)


def test_a_slot_is_freed_one_period_after_the_call_completed_not_after_it_started() -> None:
    limiter, clock = make_limiter(1)
    call(limiter, clock, duration=10.0)  # 0 → 10: the server may have counted it at 10
    assert call(limiter, clock) == pytest.approx(10.0 + PERIOD, abs=0.002)


def test_steady_calls_run_at_the_agreed_rate() -> None:
    limiter, clock = make_limiter(120)
    starts = [call(limiter, clock) for _ in range(600)]
    # 600 calls at 120 per minute: the 601st would start at minute 5; the 600th at 4 min.
    assert starts[-1] == pytest.approx(4 * PERIOD, abs=0.01)


def test_calls_in_flight_hold_their_slot() -> None:
    limiter, clock = make_limiter(2)
    limiter.acquire()
    clock.complete_at(30.0)  # a slow call, in flight until t=30
    limiter.acquire()
    clock.complete_at(5.0)
    limiter.acquire()  # must wait for the first completion + one period
    assert clock.now == pytest.approx(5.0 + PERIOD, abs=0.06)


def test_pause_until_holds_every_new_call() -> None:
    limiter, clock = make_limiter(None)
    limiter.pause_until(12.5)
    assert call(limiter, clock) == pytest.approx(12.5)
    assert call(limiter, clock) == pytest.approx(12.5)


def test_without_an_agreement_calls_never_wait() -> None:
    limiter, clock = make_limiter(None)
    for _ in range(10_000):
        call(limiter, clock)
    assert clock.sleeps == []
    assert limiter.waited == 0.0


def test_waits_are_reported() -> None:
    limiter, clock = make_limiter(1)
    call(limiter, clock)
    call(limiter, clock)
    assert limiter.waited == pytest.approx(PERIOD, abs=0.002)


@pytest.mark.parametrize("calls", [0, -3])
def test_a_limit_below_one_is_refused(calls: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RollingWindowLimiter(calls)


def test_concurrent_threads_never_take_more_slots_than_the_limit() -> None:
    # The clock stands still: exactly `limit` acquisitions fit, the next one would sleep.
    clock = SimClock()
    limiter = RollingWindowLimiter(200, clock=clock, sleep=clock.sleep)
    clock.limiter = limiter
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            with limiter.slot():
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.sleeps == []
    limiter.acquire()  # the 201st call: must wait a whole period
    assert clock.sleeps == [pytest.approx(PERIOD)]


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=15),
    workers=st.integers(min_value=1, max_value=6),
    calls=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=40.0, allow_nan=False),  # call duration
            st.floats(min_value=0.0, max_value=20.0, allow_nan=False),  # worker think time
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_no_rolling_window_ever_holds_more_than_the_limit(
    limit: int, workers: int, calls: list[tuple[float, float]]
) -> None:
    limiter, clock = make_limiter(limit)
    free_at = [0.0] * workers  # when each simulated worker thread next wants to call
    heapq.heapify(free_at)
    intervals: list[tuple[float, float]] = []
    for duration, think in calls:
        clock.advance_to(heapq.heappop(free_at))
        limiter.acquire()
        start = clock.now
        clock.complete_at(start + duration)
        intervals.append((start, start + duration))
        heapq.heappush(free_at, start + duration + think)
    clock.advance_to(float("inf"))

    assert max_calls_in_any_window(intervals) <= limit


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=15),
    nodes=st.integers(min_value=2, max_value=4),
    calls=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # which node calls
            st.floats(min_value=0.0, max_value=40.0, allow_nan=False),  # call duration
            st.floats(min_value=0.0, max_value=20.0, allow_nan=False),  # node think time
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_nodes_sharing_one_ledger_never_hold_more_than_the_limit_together(
    limit: int, nodes: int, calls: list[tuple[int, float, float]]
) -> None:
    # Each node has a limiter of its own (its own turn and pauses); the budget is one ledger.
    clock = SimClock()
    ledger = LocalLedger(clock)
    limiters = [
        RollingWindowLimiter(limit, period=PERIOD, clock=clock, sleep=clock.sleep, ledger=ledger)
        for _ in range(nodes)
    ]
    clock.limiter = limiters[0]  # any node's release gives the slot back to the one ledger
    free_at = [0.0] * nodes
    intervals: list[tuple[float, float]] = []
    for node, duration, think in calls:
        node %= nodes
        clock.advance_to(free_at[node])
        limiters[node].acquire()
        start = clock.now
        clock.complete_at(start + duration)
        intervals.append((start, start + duration))
        free_at[node] = start + duration + think
    clock.advance_to(float("inf"))

    assert max_calls_in_any_window(intervals) <= limit


def test_a_ledger_that_cannot_be_read_stops_the_call_and_holds_no_slot() -> None:
    class Unreachable:
        def take(self, calls: int, period: float) -> Grant:
            raise ConnectionError("database down")

        def give_back(self, slot: int) -> None:  # pragma: no cover - never reached
            raise AssertionError

    limiter = RollingWindowLimiter(5, ledger=Unreachable())
    with pytest.raises(ConnectionError), limiter.slot():
        pytest.fail("the call ran without a slot")  # pragma: no cover
    assert limiter.waited == 0.0
