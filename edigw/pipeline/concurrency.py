"""How many documents the senders hold at once: enough calls in flight to hide Ecolix's latency.

A sender holding a document spends part of its time waiting for Ecolix's answer (``L``,
the requests' time on the wire) and the rest on its own work (``W``: its CPU time for the
claim, the payload and the journal writes). That own work is what the senders share (one
Python process, the journal); by Little's law about ``1 + L / W`` senders keep it busy
while the others wait for their answers. More than that only queue for it, fewer leave it
idle while calls are out. ``W`` is CPU time, not wall time: the time a sender waits for the
others (queueing) is not work it adds.

:class:`InFlightGate` keeps a moving average of both and lets at most
``clamp(ceil(1 + L / W), floor, ceiling)`` senders hold a document at once. ``edigw run``
starts ``ceiling`` sender threads (``--senders auto``); a fixed ``--senders N`` is a gate
whose floor and ceiling are both ``N``. The call budget (``edigw.ecolix.limiter``) still
bounds the rate of calls: the gate only decides how many may wait for answers at once.
"""

from __future__ import annotations

import math
import threading
from typing import Literal

#: ``auto``: up to ``MAX_IN_FLIGHT`` senders, as many at work as Ecolix's latency needs; a
#: number: that many senders, always.
Senders = int | Literal["auto"]

#: Fewest documents in flight (and the limit before anything was measured).
MIN_IN_FLIGHT = 4
#: Most sender threads ``--senders auto`` starts, hence most documents in flight.
MAX_IN_FLIGHT = 32
#: Weight of the newest document in the moving averages.
SMOOTHING = 0.1


class InFlightGate:
    """At most :attr:`limit` documents held by senders at once, the limit following latency.

    A sender calls :meth:`acquire` once woken for work and before claiming, :meth:`release`
    once the document is finished (or nothing was claimed), and :meth:`record` with the
    seconds the document spent in the Ecolix call and the sender's CPU seconds for it. Idle senders hold no slot.
    :meth:`close` (a stopping gateway) lets every waiting :meth:`acquire` return ``False``.
    """

    def __init__(
        self,
        *,
        floor: int = MIN_IN_FLIGHT,
        ceiling: int = MAX_IN_FLIGHT,
        smoothing: float = SMOOTHING,
    ) -> None:
        if not 0 <= floor <= ceiling:
            msg = f"need 0 <= floor <= ceiling, got floor={floor}, ceiling={ceiling}"
            raise ValueError(msg)
        self.floor = floor
        self.ceiling = ceiling
        self._smoothing = smoothing
        self._cond = threading.Condition()
        self._in_use = 0
        self._limit = floor
        self._closed = False
        #: moving averages (seconds a document): in the Ecolix call, and the rest
        self._calling: float | None = None
        self._working: float | None = None

    @classmethod
    def fixed(cls, senders: int) -> InFlightGate:
        """The gate of ``--senders N``: always ``N``, whatever the latency (``0``: a gateway
        without senders, whose tests drive them)."""
        return cls(floor=senders, ceiling=senders)

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._in_use

    @property
    def averages(self) -> tuple[float | None, float | None]:
        """The moving averages ``(L, W)`` in seconds (``None`` before any document)."""
        with self._cond:
            return self._calling, self._working

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a slot; ``False`` when none came within ``timeout`` or the gate closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._in_use < self._limit, timeout):
                return False
            if self._closed:
                return False
            self._in_use += 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._in_use <= 0:
                msg = "InFlightGate.release without a slot held"
                raise RuntimeError(msg)
            self._in_use -= 1
            self._cond.notify()

    def has_room(self) -> bool:
        """Whether one more sender could hold a document now."""
        with self._cond:
            return self._in_use < self._limit

    def record(self, *, calling: float, working: float) -> int:
        """One document finished: ``calling`` seconds in the Ecolix call, ``working`` seconds
        of the sender's own work (CPU); how many slots the limit grew by."""
        with self._cond:
            self._calling = _blend(self._calling, max(0.0, calling), self._smoothing)
            self._working = _blend(self._working, max(0.0, working), self._smoothing)
            before = self._limit
            self._limit = self._limit_for(self._calling, self._working)
            grew = max(0, self._limit - before)
            if grew:
                self._cond.notify(grew)
            return grew

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _limit_for(self, calling: float, working: float) -> int:
        if working <= 0.0:
            wanted = self.ceiling if calling > 0.0 else self.floor
        else:
            wanted = math.ceil(1 + calling / working)
        return max(self.floor, min(self.ceiling, wanted))


def _blend(average: float | None, value: float, weight: float) -> float:
    return value if average is None else average + weight * (value - average)
