"""The poller: takes one inbound flow's files in, and disposes of their sources once final.

One flow's intake in one place: the ``FlowPoller`` its poller and watcher loops share (the
mover disposes of finished files through it too: ``disposal.SourceDisposal``), those two
loops, and when the poller looks next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from edigw.channels.base import (
    KEPT_CHANGED,
    ChannelActionResult,
    IncomingFile,
)
from edigw.errors import ChannelError, EdigwError, JournalError
from edigw.logs import log_context
from edigw.pipeline.assembly import InboundRuntime, Parts
from edigw.pipeline.disposal import SourceDisposal
from edigw.pipeline.inbound import (
    FINAL_FILE_STATES,
    Ingested,
    Intake,
    IntakeError,
    ingest,
    intake_failure_kind,
)
from edigw.pipeline.signals import Signals
from edigw.pipeline.source_claims import PollClaims, claim_poll, may_take
from edigw.pipeline.wakeups import PollWakeups
from edigw.problems import storable
from edigw.processes import process_identity

#: The gateway's loops all log as ``edigw.runtime``, whichever module holds them.
log = logging.getLogger("edigw.runtime")

#: Seconds between two looks at whether a folder watcher still runs.
WATCH_CHECK = 1.0
#: Tries of a file whose intake fails for a reason of its own before it is failed.
MAX_INTAKE_ATTEMPTS = 3
#: The shortest pause between two looks of a poller waiting for a file to be ready (seconds).
SOONEST_LOOK = 0.1


def printable_name(name: str) -> str:
    """A partner's file name as text the journal can store (odd bytes shown as ``\\xe9``)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class FlowPoller(SourceDisposal):
    """Takes one inbound flow's files in and disposes of their sources when final.

    Nothing stays stuck in the inbox while the gateway runs: a file whose intake fails is
    given back to the channel and taken again at a later poll; one that fails for a reason
    of its own (not the journal's or the archive's unavailability) is failed after
    :data:`MAX_INTAKE_ATTEMPTS` tries, or at once when the journal refuses one of its values,
    with the error recorded once against it. A disposal that fails is tried again by the
    mover until it succeeds.
    """

    def __init__(
        self,
        runtime: InboundRuntime,
        parts: Parts,
        signals: Signals,
        *,
        clock: Callable[[], datetime],
        neighbours: Callable[[], list[FlowPoller]] = list,
    ) -> None:
        self.runtime = runtime
        self.parts = parts
        self.signals = signals
        self.clock = clock
        #: every poller of the gateway (itself included): a flow changed in ``edigw.yaml``
        #: has a new poller on the folder while the retired one still holds files there
        self.neighbours = neighbours
        self.pending: dict[int, IncomingFile] = {}
        self.wake = threading.Event()
        #: set when the flow is removed or replaced (``edigw.yaml`` reloaded): its loops
        #: return, and it keeps only the files it holds, for the mover to dispose of
        self.retired = threading.Event()
        self._lock = threading.Lock()
        # its poller and watcher loops running now (they use the channel)
        self._loops_running = 0
        #: this process as a file's reader in the journal (``host:pid:start``)
        self.reader = process_identity(parts.node.rpartition(":")[0])
        # consecutive failed intakes per source version (name, size, mtime)
        self._failures: dict[tuple[str, int, float], int] = {}
        # source path -> file that read it before it changed (loaded at the first poll)
        self._lineage: dict[str, int] | None = None
        # what a channel did to a source, until the journal has recorded it
        self._unrecorded: dict[int, ChannelActionResult] = {}
        #: whether the last poll was handed a full batch (``max_files_per_poll`` files) and
        #: took at least one in: more are likely waiting, the poller loop looks again at once
        self.full_batch = False
        #: when the last poll saw a file that may be ready before the next interval (the
        #: channel's clock, ``time.time``): the poller loop looks again then
        self.next_ready: float | None = None
        #: the sender wake-ups owed for files taken in (once a poll: ``edigw.pipeline.wakeups``)
        self.wakeups = PollWakeups(signals.work.announce, lambda: signals.in_flight.limit)

    def poll_once(self) -> list[Ingested]:
        """One look at the channel: ingest what is ready, journal what is wrong.

        Raises ``ChannelError`` when the channel cannot be reached and ``JournalError`` when
        the journal cannot tell which sources changed after an earlier reading: nothing is
        taken in then (the poller loop makes either a condition)."""
        self.full_batch = False
        self.next_ready = None  # a poll that fails waits the whole interval, not a file's time
        channel = self.runtime.channel
        if channel is None:
            return []
        ctx = self.runtime.context
        if not self.signals.leader.holds(ctx.id):  # another node polls this flow
            return []
        if self._lineage is None:  # JournalError: the journal is unwell, take nothing in yet
            self._lineage = self.parts.journal.changed_sources(
                partner=ctx.partner, flow=ctx.flow, action=KEPT_CHANGED
            )
        result = channel.poll(now=time.time())  # ChannelError: the poller loop's condition
        self.next_ready = result.next_ready
        for problem in result.problems:
            try:
                self._journal_problem(problem.name, problem.reason, problem.incoming)
            except EdigwError as exc:
                log.error("flow %s: %s: %s; looked at again later", ctx.id, problem.name, exc)
                if problem.incoming is not None:
                    channel.release(problem.incoming)
        claims = claim_poll(
            self.signals.leader,
            flow=ctx.id,
            journal=self.parts.journal,
            node=self.parts.node,
            listed=result.files,
        )
        with self.wakeups.poll():  # the senders are woken once the files are in
            taken = [self._take_one(incoming, claims) for incoming in result.files]
        ingested = [one for one in taken if one is not None]
        self.full_batch = (
            bool(ingested) and len(result.files) >= self.runtime.config.max_files_per_poll
        )
        return ingested

    def _take_one(
        self, incoming: IncomingFile, claims: PollClaims | None = None
    ) -> Ingested | None:
        """``take``, except after a stop request; a failure is logged, not raised, so that
        one file cannot hold up the others of the same poll, and the channel gets the file
        back to offer it again later (taking in again what the journal already holds
        resumes it: a retry never duplicates anything)."""
        channel = self.runtime.channel
        if self.signals.stop.is_set() or self.retired.is_set():
            if channel is not None:
                channel.release(incoming)
            return None
        if self._held_by_a_retired_poller(incoming):
            if channel is not None:
                channel.release(incoming)
            return None
        version = (incoming.name, incoming.size, incoming.mtime)
        try:
            if not self.claim(incoming, claims):
                if channel is not None:
                    channel.release(incoming)
                return None
            ingested = self.take(incoming)
        except Exception as exc:  # whatever it is, the flow goes on with its other files
            self._intake_failed(incoming, exc, version)
            return None
        self._failures.pop(version, None)
        return ingested

    def _held_by_a_retired_poller(self, incoming: IncomingFile) -> bool:
        """Whether the poller this one replaced (its flow changed in ``edigw.yaml``) still
        holds this source: that one disposes of it once it is final. Taken in here too, it
        would be held twice, and this channel would never hand out that name again."""
        channel = self.runtime.channel
        if channel is None:
            return False
        for other in self.neighbours():
            if other is self or not other.retired.is_set() or other.runtime.channel is None:
                continue
            if other.runtime.channel.key == channel.key and other.holds_source(
                incoming.remote_path
            ):
                return True
        return False

    def _intake_failed(
        self, incoming: IncomingFile, exc: Exception, version: tuple[str, int, float]
    ) -> None:
        """Try the file again at a later poll, or, when the failure is the file's own and
        repeats (or cannot be cured by trying again), fail it once and for all."""
        ctx = self.runtime.context
        kind = intake_failure_kind(exc)
        attempts = self._failures.get(version, 0) + 1
        self._failures[version] = attempts
        give_up = kind == "refused" or (kind == "error" and attempts >= MAX_INTAKE_ATTEMPTS)
        ids = {"file": f"F-{exc.file_id}"} if isinstance(exc, IntakeError) else {}
        if not isinstance(exc, EdigwError) and not isinstance(
            getattr(exc, "cause", None), EdigwError
        ):
            log.error(
                "flow %s: %s: unexpected error while taking it in",
                ctx.id,
                incoming.name,
                exc_info=exc,
                extra=ids,
            )
        if not give_up:
            log.error(
                "flow %s: %s: not taken in, tried again on a later poll: %s",
                ctx.id,
                incoming.name,
                exc,
                extra=ids,
            )
            if self.runtime.channel is not None:
                self.runtime.channel.release(incoming)
            return
        cause = exc.cause if isinstance(exc, IntakeError) else exc
        tries = "" if attempts == 1 else f" (tried {attempts} times)"
        reason = storable(f"could not be taken in{tries}: {cause}")
        try:
            if isinstance(exc, IntakeError):
                now = self.clock()
                error = storable(f"{printable_name(incoming.name)}: {reason}")
                self.parts.journal.set_file_state(exc.file_id, "failed", now=now, error=error)
                log.error(
                    "flow %s: F-%d %s: %s", ctx.id, exc.file_id, incoming.name, reason, extra=ids
                )
                with self._lock:
                    self.pending[exc.file_id] = replace(incoming, content=None)
                self._dispose_or_later(exc.file_id)
            else:
                self._journal_problem(incoming.name, reason, incoming)
        except EdigwError as again:
            log.error(
                "flow %s: %s: could not be recorded as failed (%s); tried again later",
                ctx.id,
                incoming.name,
                again,
                extra=ids,
            )
            if self.runtime.channel is not None:
                self.runtime.channel.release(incoming)
            return
        self._failures.pop(version, None)

    def claim(self, incoming: IncomingFile, claims: PollClaims | None = None) -> bool:
        """May this node take ``incoming`` in (``source_claims.may_take``)?"""
        return may_take(
            self.signals.leader,
            flow=self.runtime.context.id,
            journal=self.parts.journal,
            node=self.parts.node,
            incoming=incoming,
            claims=claims,
        )

    def take(self, incoming: IncomingFile) -> Ingested:
        ctx = self.runtime.context
        lineage = self._lineage if self._lineage is not None else {}
        earlier = lineage.get(incoming.remote_path)
        ingested = ingest(
            incoming.local_path,
            original_name=printable_name(incoming.name),
            flow=ctx,
            journal=self.parts.journal,
            archive=self.parts.archive,
            now=self.clock(),
            source_path=incoming.remote_path,
            durable_archive=False,  # made durable in dispose(), before the source is touched
            content=incoming.content,
            intake=Intake(reader=self.reader, stop=self.signals.stop, earlier_reception=earlier),
        )
        if earlier is not None:
            lineage.pop(incoming.remote_path, None)
        log.info(
            "flow %s: %s %s -> %s (%d documents)",
            ctx.id,
            ingested.show_id,
            incoming.name,
            ingested.state,
            ingested.documents,
            extra={"file": ingested.show_id},
        )
        held = replace(incoming, content=None)  # archived: the bytes in memory are not needed

        def register() -> None:
            with self._lock:
                self.pending[ingested.file_id] = held

        if self.signals.unowned.hold(ingested.file_id, register):
            self.signals.finished_files.put(ingested.file_id)  # a sender finished it already
        if ingested.state in FINAL_FILE_STATES:
            self._dispose_or_later(ingested.file_id)
        else:
            self.wakeups.owe(self._senders_to_wake(ingested))
        return ingested

    def _senders_to_wake(self, ingested: Ingested) -> int:
        """Idle senders to wake for a file taken in: one per document that may be claimable
        at once, up to the in-flight limit. An ordered file has one (its head); an unordered
        one a head per business key, at most one per document left to send. (A sender whose
        claim follows idleness wakes another too, so the limit is reached either way.)"""
        if self.runtime.context.ordered:
            return 1
        to_send = ingested.documents - ingested.failed - ingested.skipped - ingested.unchanged
        return max(1, min(to_send, self.signals.in_flight.limit))

    @contextmanager
    def loop_running(self) -> Iterator[None]:
        """Counts a poller or watcher loop as using the channel while it runs (entered
        before the loop first looks at ``retired``, so a retired poller's count only falls)."""
        with self._lock:
            self._loops_running += 1
        try:
            yield
        finally:
            with self._lock:
                self._loops_running -= 1

    def done_with_channel(self) -> bool:
        """Retired, none of its loops running, no file held: nothing uses its channel."""
        with self._lock:
            return self.retired.is_set() and not self._loops_running and not self.pending

    def held_ids(self) -> list[int]:
        """The files whose source this poller holds until their outcome is final."""
        with self._lock:
            return list(self.pending)

    def holds_source(self, remote_path: str) -> bool:
        """Whether a file this poller holds came from ``remote_path``."""
        with self._lock:
            return any(held.remote_path == remote_path for held in self.pending.values())

    def owns(self, file_id: int) -> bool:
        with self._lock:
            return file_id in self.pending

    def _journal_problem(self, name: str, reason: str, incoming: IncomingFile | None) -> None:
        ctx = self.runtime.context
        name, reason = printable_name(name), storable(printable_name(reason))
        now = self.clock()
        file_id = self.parts.journal.add_file(
            partner=ctx.partner,
            flow=ctx.flow,
            channel=ctx.channel,
            original_name=name,
            source_path=printable_name(incoming.remote_path) if incoming else name,
            size=incoming.size if incoming else 0,
            sha256="",
            archive_path="",
            now=now,
        )
        self.parts.journal.set_file_state(file_id, "failed", now=now, error=f"{name}: {reason}")
        log.error(
            "flow %s: F-%d %s: %s", ctx.id, file_id, name, reason, extra={"file": f"F-{file_id}"}
        )
        if incoming is not None:
            with self._lock:
                self.pending[file_id] = replace(incoming, content=None)
            self._dispose_or_later(file_id)


def channel_condition(flow: str) -> str:
    """The name of the condition a flow's unreachable channel sets."""
    return f"channel {flow}"


def poller_loop(poller: FlowPoller, signals: Signals) -> None:
    """Poll one flow's channel until the gateway stops.

    A channel that cannot be reached (folder missing, SFTP server down, host key changed)
    sets the flow's channel condition until a poll succeeds again; unexpected errors
    escape to the supervisor.

    After a full batch (``max_files_per_poll`` files handed out, some taken in) it polls
    again at once: a backlog goes in at the pace of intake, not one batch an interval. A
    batch that took nothing in (the journal or the archive failing) waits the interval. A
    file seen but not ready yet is looked at again when it may be ready (:func:`next_look`).
    """
    interval = float(poller.runtime.config.poll_interval)
    flow = poller.runtime.context.id
    condition = channel_condition(flow)
    with poller.loop_running(), log_context(flow=flow):
        while not (signals.stop.is_set() or poller.retired.is_set()):
            poller.wake.clear()  # before the look: an arrival during it wakes the next
            started = time.monotonic()
            try:
                poller.poll_once()
            except ChannelError as exc:
                signals.conditions.set(condition, str(exc), flow=flow)
            except JournalError as exc:
                signals.conditions.set("journal", str(exc))
            except EdigwError as exc:
                log.error("flow %s: %s", flow, exc)
            else:
                signals.conditions.clear(condition)
            finally:
                signals.timed("poll", flow, time.monotonic() - started)
            if poller.full_batch:
                continue  # more are waiting: no pause (a stop ends the loop above)
            poller.wake.wait(next_look(interval, poller.next_ready, now=time.time()))


def next_look(interval: float, next_ready: float | None, *, now: float) -> float:
    """Seconds until the poller looks again: the flow's interval, or less when a file the
    last look saw may be ready sooner (``stable``: its size and mtime unchanged for the
    readiness interval; ``min_age``: old enough), so that it is taken then and not up to a
    whole poll interval later. At least :data:`SOONEST_LOOK`, so that a file that needs only
    one more look does not make the loop spin."""
    if next_ready is None:
        return interval
    return min(interval, max(SOONEST_LOOK, next_ready - now))


def watcher_loop(poller: FlowPoller, signals: Signals) -> None:
    """Keep a folder watcher on one flow's channel, so that new files wake its poller early.

    A watcher that cannot start is a condition, not a crash: polls still find the files,
    only later. A watcher that died (its folder was replaced) is started anew.
    """
    channel = poller.runtime.channel
    if channel is None:
        return
    flow = poller.runtime.context.id
    condition = f"watcher {flow}"
    interval = float(poller.runtime.config.poll_interval)
    with poller.loop_running():
        while not (signals.stop.is_set() or poller.retired.is_set()):
            if not channel.watching():
                try:
                    channel.wakeups(poller.wake)
                except ChannelError as exc:
                    signals.conditions.set(
                        condition, f"{exc} (polls every {interval:g} s still find them)", flow=flow
                    )
                else:
                    signals.conditions.clear(condition)
            signals.stop.wait(WATCH_CHECK)
