"""Turning what the gateway knows into alerts, without sitting on the data path.

The :class:`Watcher` looks every few seconds at three things others keep anyway:

* the journal's events: a file that became ``failed`` or ``partially_failed`` since the last
  look (a document that failed for good makes its file one of these), and documents that
  have waited in retry longer than ``alerts.retry_wait_after`` (each alerted once while it
  waits);
* the supervisor's health snapshot: a loop that crashed (it restarts), a new condition
  (trouble that belongs to no file), and the supervisor giving up (the process stops);
* the client's call usage: a budget used up for longer than ``alerts.budget_exhausted_after``
  (alerted once, again only after it had room in between).

It only compares snapshots and reads the journal: the pipeline never waits for it, and a
journal that cannot be read now is simply read at the next look.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edigw.alerts import events
from edigw.alerts.events import Alert, AlertSink
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import JournalError
from edigw.journal.rows import FileRow
from edigw.journal.store import Journal
from edigw.pipeline.health import RELOAD_CONDITION_PREFIX, HealthSnapshot

log = logging.getLogger("edigw.alerts")

#: Seconds between two looks.
CHECK_EVERY = 1.0
#: File failures read at once (a storm is read in pages).
FAILURES_PAGE = 500
#: Failed documents quoted in a file's alert.
QUOTED_DOCUMENTS = 3


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    retry_wait_after: float = 3600.0
    budget_exhausted_after: float = 300.0


def health_alerts(before: HealthSnapshot | None, now: HealthSnapshot) -> list[Alert]:
    """What changed between two snapshots that people should hear about: loops that crashed
    since ``before`` (not when the supervisor gave up: that is the stop alert), conditions
    that appeared (not refused edits: the reloader sends those as ``reload_failed``), and
    the supervisor giving up."""
    found: list[Alert] = []
    if now.failure and not (before and before.failure):
        found.append(events.gateway_stopping(reason=now.failure, at=now.at))
        return found
    crashed_before = {loop.name: loop.last_crash_at for loop in before.loops} if before else {}
    for loop in now.loops:
        if loop.last_crash_at is not None and loop.last_crash_at != crashed_before.get(loop.name):
            found.append(
                events.loop_crashed(
                    loop=loop.name,
                    flow=loop.flow,
                    error=loop.last_error or "crashed",
                    restarts=loop.restarts,
                    at=now.at,
                )
            )
    known = {c.name for c in before.conditions} if before else set()
    found += [
        events.condition_raised(name=c.name, message=c.message, flow=c.flow, at=now.at)
        for c in now.conditions
        if c.name not in known and not c.name.startswith(RELOAD_CONDITION_PREFIX)
    ]
    return found


def waited_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class Watcher:
    """See the module docstring; ``check`` is one look, from any one thread at a time."""

    def __init__(
        self,
        journal: Journal,
        sink: AlertSink,
        *,
        policy: WatchPolicy | None = None,
        clock: Callable[[], datetime] = events.utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._journal = journal
        self._sink = sink
        self._policy = policy or WatchPolicy()
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        #: every event up to this id was looked at (none of a lower id can still appear)
        self._last_event: int | None = None
        #: failures told whose event is above ``_last_event``; and the event horizons of the
        #: looks since, which ``_last_event`` reaches once their writers have all ended
        self._told: set[int] = set()
        self._horizons: deque[tuple[int, int | None]] = deque()
        self._health: HealthSnapshot | None = None
        self._waiting: set[int] = set()
        self._exhausted_since: float | None = None
        self._budget_told = False

    def start_from_now(self) -> None:
        """Ignore what the journal holds already: alerts are for what happens from now."""
        self._last_event = self._journal.last_event_id()

    def check(self, health: HealthSnapshot | None, usage: UsageSnapshot | None) -> None:
        with self._lock:
            if health is not None:
                for alert in health_alerts(self._health, health):
                    self._sink.notify(alert)
                self._health = health
            if usage is not None:
                self._check_budget(usage)
            try:
                self._check_journal()
            except JournalError as exc:  # the sender and the poller report it as a condition
                log.debug("alerts: journal not readable now: %s", exc)

    def _check_journal(self) -> None:
        if self._last_event is None:
            self.start_from_now()
        assert self._last_event is not None
        self._check_failures(self._last_event)
        now = self._clock()
        after = self._policy.retry_wait_after
        waiting = self._journal.waiting_since(now - timedelta(seconds=after))
        for doc in waiting:
            if doc.id in self._waiting:
                continue
            self._sink.notify(
                events.retry_waiting(
                    ref=doc.ref,
                    file_ref=f"F-{doc.file_id}",
                    flow=f"{doc.partner}/{doc.flow}",
                    file=self._file_name(doc.file_id),
                    waited=waited_text((now - doc.created_at).total_seconds()),
                    reason=doc.error or "",
                    at=now,
                )
            )
        self._waiting = {doc.id for doc in waiting}

    def _check_failures(self, settled: int) -> None:
        """Tell each file failure once. On PostgreSQL an event may commit after one of a
        higher id (two writers at once): the failures above the last settled event are read
        again at each look, until the writers that could still add one below have ended."""
        horizon = self._journal.event_horizon()  # before the read: it covers what it sees
        after = settled
        while True:
            found = self._journal.final_failures_after(after, limit=FAILURES_PAGE)
            for event_id, row in found:
                if event_id not in self._told:
                    self._sink.notify(self._file_alert(row))
                    self._told.add(event_id)
            if len(found) < FAILURES_PAGE:
                break
            after = found[-1][0]
        self._horizons.append(horizon)
        oldest_open = self._journal.oldest_open_write()
        while self._horizons:
            newest, first_unbegun = self._horizons[0]
            if first_unbegun is not None and (oldest_open is None or oldest_open < first_unbegun):
                break
            self._horizons.popleft()
            settled = max(settled, newest)
        self._last_event = settled
        self._told = {event_id for event_id in self._told if event_id > settled}

    def _file_name(self, file_id: int) -> str:
        return self._journal.file(file_id).original_name

    def _file_alert(self, row: FileRow) -> Alert:
        failed = [d for d in self._journal.documents_of(row.id) if d.state == "failed"]
        lines = [row.error] if row.error else []
        lines += [f"{d.ref} {d.business_key}: {d.error}" for d in failed[:QUOTED_DOCUMENTS]]
        return events.file_failed(
            ref=row.ref,
            flow=f"{row.partner}/{row.flow}",
            file=row.original_name,
            state=row.state,
            reason="\n".join(lines) or row.state,
            at=row.finished_at or row.updated_at,
        )

    def _check_budget(self, usage: UsageSnapshot) -> None:
        if usage.limit_per_minute is None or (usage.headroom or 0) > 0:
            self._exhausted_since, self._budget_told = None, False
            return
        now = self._monotonic()
        if self._exhausted_since is None:
            self._exhausted_since = now
        lasted = now - self._exhausted_since
        if not self._budget_told and lasted >= self._policy.budget_exhausted_after:
            self._budget_told = True
            self._sink.notify(
                events.budget_exhausted(
                    limit=usage.limit_per_minute, lasted=waited_text(lasted), at=self._clock()
                )
            )


def watch_loop(
    watcher: Watcher,
    *,
    health: Callable[[], HealthSnapshot],
    usage: Callable[[], UsageSnapshot],
    stop: threading.Event,
    every: float = CHECK_EVERY,
) -> None:
    """Look every ``every`` seconds until ``stop``; the caller makes a last look after the
    stop (``serve`` does, once every loop has stopped)."""
    while not stop.wait(every):
        watcher.check(health(), usage())
