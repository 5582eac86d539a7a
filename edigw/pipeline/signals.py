"""What the gateway's threads tell each other: a stop, new work, finished files, trouble.

The loops (pollers, senders, the mover, the exporter) share nothing but the journal and
these signals: one module for them, which the loops' modules import and which imports none
of them (nor the gateway that starts them).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edigw.alerts.events import AlertSink, NoAlerts
from edigw.pipeline.concurrency import InFlightGate
from edigw.pipeline.health import Conditions
from edigw.pipeline.leadership import Leadership, SoleNode

#: Seconds an idle loop (a sender, the mover) waits for a signal before it looks on its own.
IDLE_WAIT = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class WorkSignal:
    """Wakes *one* idle sender per piece of new work, never a lost wake-up.

    An event would wake every sender for each file taken in, and all but one would find
    nothing: a wasted claim (a write transaction) and a retry-time query each. A sender
    reads ``generation`` before it looks for work and waits only while nothing was
    announced since, so work announced between its look and its wait still wakes it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        #: Also told of each announcement: the sending process, when the senders run in
        #: one of their own (``edigw.pipeline.sending_process``).
        self.forward: Callable[..., None] | None = None

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def announce(self, *, everyone: bool = False) -> None:
        with self._cond:
            self._generation += 1
            if everyone:
                self._cond.notify_all()
            else:
                self._cond.notify()
        if self.forward is not None:
            self.forward(everyone=everyone)

    def wait(self, seen: int, timeout: float | None) -> None:
        """Sleep up to ``timeout`` (``None``: until woken) unless work was announced after ``generation`` was ``seen``."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout)


class UnownedFiles:
    """Finished files the mover found no poller holding, until one holds them.

    A sender may finish a file between its intake's commit and its poller holding it (the
    poller registers it a moment after the journal has it). The mover notes such a file
    here, and the poller that comes to hold it hands it straight back to the mover, instead
    of leaving its source for the mover's next round. One lock makes the mover's "nobody
    holds it" and a poller's "I hold it now" exclusive: one of the two always sees the other.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()

    def note(self, file_id: int, held: Callable[[], bool]) -> bool:
        """The mover found nobody holding ``file_id``: noted, unless ``held()`` says a poller
        holds it by now (``True``: settle it again at once)."""
        with self._lock:
            if held():
                return True
            self._ids.add(file_id)
            return False

    def hold(self, file_id: int, register: Callable[[], None]) -> bool:
        """A poller holds ``file_id`` (``register`` does it); ``True`` when the mover noted it
        finished meanwhile: the poller hands it back to the mover."""
        with self._lock:
            register()
            if file_id in self._ids:
                self._ids.discard(file_id)
                return True
            return False

    def forget(self, file_id: int) -> None:
        """Settled, or given up: no poller needs to hand it back any more."""
        with self._lock:
            self._ids.discard(file_id)


@dataclass(slots=True)
class Signals:
    """The few things threads tell each other.

    ``stop`` asks the loops that take work in (pollers, senders, exporter) to finish what
    they hold; ``finish`` is set once they have, and lets the mover and the publisher end
    after draining. ``conditions`` is where any loop records trouble that belongs to no file.
    ``alerts`` is where anything tells people directly (a failed reload:
    ``signals.alerts.notify(edigw.alerts.events.reload_failed(...))``); it never blocks.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    finish: threading.Event = field(default_factory=threading.Event)
    work: WorkSignal = field(default_factory=WorkSignal)
    #: How many senders may hold a document at once (set by the gateway from ``--senders``).
    in_flight: InFlightGate = field(default_factory=InFlightGate)
    #: Files whose outcome is final, for the mover; ``None`` only wakes it (a stop began).
    finished_files: queue.Queue[int | None] = field(default_factory=queue.Queue)
    #: Finished files no poller held when the mover looked (see :class:`UnownedFiles`).
    unowned: UnownedFiles = field(default_factory=UnownedFiles)
    conditions: Conditions = field(default_factory=Conditions)
    alerts: AlertSink = field(default_factory=NoAlerts)
    #: Told how long each poll (``"poll"``) and each send (``"send"``) of a flow took, in
    #: seconds; metrics (``edigw.pipeline.metrics``) plug in here, nothing by default.
    timed: Callable[[str, str, float], None] = field(default=lambda _kind, _flow, _s: None)
    #: Which flows this node leads (polls, disposes of, exports): every flow on a SQLite
    #: journal; on PostgreSQL, those whose lease it holds (``edigw.pipeline.leadership``).
    leader: Leadership = field(default_factory=SoleNode)
    #: The senders run in another process (``processes: 2``): the mover also asks the
    #: journal once a second for the files held here that it finished.
    sent_elsewhere: bool = False
