"""Where a run under the call budget spends its time: every slot taken and given back, stamped.

:class:`TracedLedger` wraps the client's ledger (a :class:`edigw.ecolix.limiter.CallLedger`)
and stamps, on ``time.perf_counter`` (the harness's clock), every slot granted and every slot
given back. :func:`budget_breakdown` then splits the run's wall time against the rolling
floor of a rule that counts completions:

- **start-up**: from the gateway's start to the first call;
- **window 1's send time**: from the first call to the N-th (the first minute's calls, sent as
  fast as the gateway can, nothing waiting for the budget);
- **per window**: call ``m > N`` may start only once the ``(m - N)``-th completed call is one
  period old (the rule: in flight + completed within the period < N). Its *lateness* is
  ``start - (completion of call m - N + period)``: how long after its slot came free the
  gateway used it (the wake-up, and the sender's readiness);
- **the chain**: the last call's slot depends on a call of the window before, and so on back to
  window 1: each window adds the period, the call's time on the wire and the lateness;
- **the tail**: from the last completion to the last source moved (journal, ``done/``).

Nothing here is asserted: the figures are printed with the machine's load.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

from edigw.ecolix.limiter import CallLedger, Grant


@dataclass
class TracedLedger:
    """A ledger that stamps the slots its inner ledger grants and gets back."""

    inner: CallLedger
    taken: list[float] = field(default_factory=list)
    given_back: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, calls: int, period: float) -> Grant:
        grant = self.inner.take(calls, period)
        if grant.granted:
            now = time.perf_counter()
            with self._lock:
                self.taken.append(now)
        return grant

    def give_back(self, slot: int) -> None:
        now = time.perf_counter()
        with self._lock:
            self.given_back.append(now)
        self.inner.give_back(slot)


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"median {1000 * statistics.median(ordered):.1f} ms, p99 {1000 * p99:.1f} ms, "
        f"max {1000 * ordered[-1]:.1f} ms"
    )


def budget_breakdown(
    trace: TracedLedger, *, t0: float, wall: float, calls: int, period: float
) -> list[str]:
    """Lines that split ``wall`` (from ``t0``) into start-up, sending, windows and tail."""
    starts, ends = sorted(trace.taken), sorted(trace.given_back)
    if len(starts) <= calls or len(ends) < len(starts):
        return [f"budget trace: {len(starts)} calls, too few for a window of {calls}"]
    lines = [
        f"start-up: first call {starts[0] - t0:.2f} s after the start",
        f"window 1: calls 1..{calls} sent in {starts[calls - 1] - starts[0]:.2f} s "
        f"(the gateway's own pace, nothing waiting for the budget)",
    ]
    late = [starts[m] - (ends[m - calls] + period) for m in range(calls, len(starts))]
    lines.append(
        f"lateness of calls {calls + 1}..{len(starts)} after their slot came free: {_ms(late)}; "
        f"{sum(1 for x in late if x < -1e-6)} before it (must be 0)"
    )
    windows = (len(starts) + calls - 1) // calls
    for k in range(windows):
        first, last = k * calls, min(len(starts), (k + 1) * calls) - 1
        lines.append(
            f"  window {k + 1}: calls {first + 1}..{last + 1} started "
            f"{starts[first] - t0:7.2f} .. {starts[last] - t0:7.2f} s "
            f"(spread {starts[last] - starts[first]:5.2f} s), completion {last + 1} at "
            f"{ends[last] - t0:7.2f} s"
        )
    # The chain behind the last call: each link is the call whose completion freed its slot.
    chain, m = [], len(starts) - 1
    while m >= calls:
        chain.append(m)
        m -= calls
    base = starts[m]
    # The i-th completion less the i-th start: each call's time in flight, near enough.
    wire = [ends[i] - starts[i] for i in range(len(starts))]
    lines.append(
        f"the last call's chain: call {m + 1} at {base - t0:.2f} s, then {len(chain)} x "
        f"(period {period:.0f} s + the freeing call's time in flight + lateness) = "
        f"{starts[-1] - base:.2f} s (+{starts[-1] - base - len(chain) * period:.2f} s over "
        f"{len(chain)} periods); calls in flight about {_ms(wire)}"
    )
    lines.append(
        f"tail: last completion {ends[-1] - t0:.2f} s, last source moved {wall:.2f} s "
        f"(+{wall - (ends[-1] - t0):.2f} s)"
    )
    return lines
