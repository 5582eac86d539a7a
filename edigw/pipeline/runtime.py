"""The long-running gateway behind ``edigw run``: its loops, run by one supervisor.

Loops, each in a thread of its own, each with one job::

    poller  (one per inbound flow)       channel.poll → ingest → (file final) → channel.complete
    watcher (one per watched folder)     folder events → wake its poller early
    sender  (N, shared)                  journal.claim_for_sending → Ecolix → journal;
                                         how many hold a document at once follows
                                         Ecolix's latency (``concurrency.InFlightGate``)
    mover   (one)                        file finished by a sender → its poller's
                                         channel.complete, tried again until the journal
                                         has recorded it; a replayed file's error copy tidied
    probe   (one)                        can the archive be written? (a condition if not)
    reloader (one)                       edited mappings, lookup tables, layouts, templates
                                         → the flow's new version swapped in (``reload``)

``edigw run`` adds the exporter (scheduled exports) and the publisher (``usage.json`` and
``health.json``). The supervisor (``edigw.pipeline.supervisor``) restarts a loop that
crashed and keeps each loop's health; trouble that belongs to no file (a channel that
cannot be reached, a journal that refuses writes) is set as a condition, and cleared when
it is gone.

Loops share nothing but the journal (the source of truth), thread-safe parts (client,
archive) and a few events/queues. A stop lets each loop finish the document or file in
hand; then the mover drains the moves still queued; whatever was not finished is picked up
after a restart from the journal.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from edigw.alerts.events import AlertSink, NoAlerts
from edigw.channels.base import (
    KEPT_CHANGED,
    ChannelActionResult,
    Disposition,
    InboundChannel,
    IncomingFile,
)
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import ChannelError, EdigwError, JournalError
from edigw.journal.rows import FileRow
from edigw.journal.store import Journal
from edigw.logs import log_context
from edigw.pipeline.assembly import InboundRuntime, Parts
from edigw.pipeline.concurrency import InFlightGate, Senders
from edigw.pipeline.dispatch import DEFAULT_LEASE_SECONDS, Sent, send_claimed
from edigw.pipeline.folders import not_writable
from edigw.pipeline.health import Conditions, HealthSnapshot
from edigw.pipeline.inbound import (
    FINAL_FILE_STATES,
    Ingested,
    Intake,
    IntakeError,
    ingest,
    intake_failure_kind,
    reading_status,
)
from edigw.pipeline.leadership import (
    Leadership,
    LeaseTimes,
    SharedLeadership,
    SoleNode,
)
from edigw.pipeline.reload import RELOAD_EVERY, Reloader, reloader_loop
from edigw.pipeline.sending_process import SendingProcess, combined_usage
from edigw.pipeline.sftp_endpoints import close_unused_endpoints
from edigw.pipeline.supervisor import Supervisor, SupervisorPolicy
from edigw.pipeline.tidy import clear_error_copy
from edigw.pipeline.validating import warm_up
from edigw.pipeline.wakeups import PollWakeups
from edigw.problems import storable
from edigw.processes import pid_alive, process_identity

log = logging.getLogger("edigw.runtime")

DEFAULT_SENDERS: Senders = "auto"
IDLE_WAIT = 1.0
#: Seconds between two looks at whether a folder watcher still runs.
WATCH_CHECK = 1.0
#: Seconds between two checks that the archive can be written.
PROBE_EVERY = 30.0
#: Tries of a file whose intake fails for a reason of its own before it is failed.
MAX_INTAKE_ATTEMPTS = 3
#: How long the mover looks for the poller of a finished file before leaving it (seconds):
#: the poller that took it registers it a moment after the journal has it (a sender may be
#: quicker), or gave it back to the channel to be taken again.
UNOWNED_PATIENCE = 600.0
#: Once finishing, the mover ends after the queue stayed empty this long (seconds).
FINISH_WAIT = 0.1
#: The shortest pause between two looks of a poller waiting for a file to be ready (seconds).
SOONEST_LOOK = 0.1


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


#: What ``FlowPoller._dispose`` returns for a source it left to the node leading the flow.
_LEFT = ChannelActionResult(ok=True, action="left to the leader")


def printable_name(name: str) -> str:
    """A partner's file name as text the journal can store (odd bytes shown as ``\\xe9``)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def disposition_of(journal: Journal, row: FileRow) -> Disposition:
    """What to tell the channel about a file whose outcome is final."""
    file_id = row.id
    show = f"F-{file_id}"
    if row.state in ("done", "skipped_duplicate"):
        return Disposition(ok=True, reason=row.error or "", show_id=show)
    reason = row.error or ""
    failed = [d for d in journal.documents_of(file_id) if d.state == "failed"]
    if failed:
        details = "\n".join(f"D-{d.id} {d.business_key}: {d.error}" for d in failed)
        reason = f"{reason}\n{details}".strip()
    if row.state == "partially_failed":
        reason = f"some documents failed (the others were sent):\n{reason}"
    return Disposition(ok=False, reason=reason, show_id=show)


class FlowPoller:
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
        with self.wakeups.poll():  # the senders are woken once the files are in
            taken = [self._take_one(incoming) for incoming in result.files]
        ingested = [one for one in taken if one is not None]
        self.full_batch = (
            bool(ingested) and len(result.files) >= self.runtime.config.max_files_per_poll
        )
        return ingested

    def _take_one(self, incoming: IncomingFile) -> Ingested | None:
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
            if not self.claim(incoming):
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

    def claim(self, incoming: IncomingFile) -> bool:
        """May this node take ``incoming`` in? Only while it leads the flow; with several
        nodes, only once the journal holds its claim on this version of the source (one
        statement that cannot race: a later leader's claim wins over an earlier one's).
        A lost claim means another node leads the flow now: this one stops acting on it."""
        leader, flow = self.signals.leader, self.runtime.context.id
        epoch = leader.epoch(flow)
        if epoch is None:
            return False
        if not leader.shared:
            return True
        claimed = self.parts.journal.claim_file(
            flow=flow,
            path=incoming.remote_path,
            size=incoming.size,
            mtime=incoming.mtime,
            node=self.parts.node,
            epoch=epoch,
        )
        if not claimed:
            log.info("flow %s: %s claimed by another node", flow, incoming.name)
            leader.lost(flow)
        return claimed

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

    def _dispose_or_later(self, file_id: int) -> None:
        """Dispose of a final file's source now, or leave it to the mover to try again."""
        try:
            self.dispose(file_id)
        except Exception as exc:  # the mover tries again until it works
            log.error(
                "flow %s: F-%d: %s; tried again shortly",
                self.runtime.context.id,
                file_id,
                exc,
                extra={"file": f"F-{file_id}"},
            )
            self.signals.finished_files.put(file_id)

    def dispose(self, file_id: int) -> None:
        """Move/delete/leave the source of a final file, and journal what happened.

        A ``parsed`` file whose documents are all finished is settled first (its last
        document's sender could not); one still sending is left for its last document to
        announce. Raises when the journal or the archive failed: the file stays held, with
        what the channel already did to its source, for another try. Nothing to do for a
        file this poller does not hold.
        """
        with self._lock:
            incoming = self.pending.pop(file_id, None)
        channel = self.runtime.channel
        if incoming is None or channel is None:
            return
        if not self.signals.leader.holds(self.runtime.context.id):
            self._leave_to_leader(file_id, incoming, channel)
            return
        with log_context(flow=self.runtime.context.id, file=f"F-{file_id}"):
            try:
                result = self._dispose(file_id, incoming, channel)
            except BaseException:
                with self._lock:
                    self.pending[file_id] = incoming
                raise
        if result is None:  # not finished yet
            with self._lock:
                self.pending[file_id] = incoming

    def _leave_to_leader(
        self, file_id: int, incoming: IncomingFile, channel: InboundChannel
    ) -> None:
        """Another node leads the flow now: its poller takes the source again (the journal
        resumes the file) and disposes of it; this node never touches it."""
        channel.release(incoming)
        log.info(
            "flow %s: F-%d left to the node that leads the flow now",
            self.runtime.context.id,
            file_id,
            extra={"file": f"F-{file_id}"},
        )

    def _dispose(
        self, file_id: int, incoming: IncomingFile, channel: InboundChannel
    ) -> ChannelActionResult | None:
        journal = self.parts.journal
        pending = incoming
        result = self._unrecorded.get(file_id)
        if result is None:
            row = journal.file(file_id)
            if row.state not in FINAL_FILE_STATES:
                finished = row.state == "parsed" and journal.finish_file_if_complete(
                    file_id, now=self.clock()
                )
                if not finished:
                    return None
                row = journal.file(file_id)
            if row.sha256:
                self.parts.archive.make_durable(row.sha256)
                # what was read, for the channel to check that the source still holds it
                incoming = replace(incoming, size=row.size, sha256=row.sha256)
            if not self.signals.leader.holds(self.runtime.context.id):
                # lost while the archive's fsyncs ran (a busy disk may take seconds): the
                # leader may have taken the source in by now; it disposes of it
                self._leave_to_leader(file_id, pending, channel)
                return _LEFT
            result = channel.complete(incoming, disposition_of(journal, row))
            self._unrecorded[file_id] = result
        journal.record_channel_action(
            file_id,
            action=result.action,
            ok=result.ok,
            error=None if result.ok else result.detail,
            detail=result.detail if result.ok else None,
            now=self.clock(),
            target=result.target,
        )
        del self._unrecorded[file_id]
        ctx = self.runtime.context
        if self.signals.leader.shared:
            self._drop_claim(pending)
        if result.action == KEPT_CHANGED:
            if self._lineage is not None:
                self._lineage[incoming.remote_path] = file_id
            log.warning(
                "flow %s: F-%d %s: %s; left in place, taken again as a new reception once "
                "ready (what F-%d already sent is not sent again)",
                ctx.id,
                file_id,
                incoming.name,
                result.detail,
                file_id,
            )
        elif not result.ok:
            log.error("flow %s: F-%d: %s failed: %s", ctx.id, file_id, result.action, result.detail)
        return result

    def _drop_claim(self, incoming: IncomingFile) -> None:
        """The source is disposed of: its claim is history (one left behind is harmless:
        a later leader's claim wins over it)."""
        try:
            self.parts.journal.drop_file_claim(
                flow=self.runtime.context.id,
                path=incoming.remote_path,
                size=incoming.size,
                mtime=incoming.mtime,
                node=self.parts.node,
            )
        except EdigwError as exc:
            log.warning(
                "flow %s: %s: claim left behind: %s", self.runtime.context.id, incoming.name, exc
            )

    def clear_error(self, row: FileRow) -> None:
        """A file of this flow that failed earlier is done now (a replay queued its
        documents again): put away the copy its failure left in the error folder."""
        channel = self.runtime.channel
        if channel is not None:
            with log_context(flow=self.runtime.context.id, file=row.ref):
                clear_error_copy(self.parts.journal, channel, row, now=self.clock())

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


def dead_local_holders(holders: list[str], *, host: str, alive: Callable[[int], bool]) -> list[str]:
    """Lease holders that were processes of this host and are no longer running.

    Node names are ``host:pid`` (``assembly.node_name``); a gateway on another host is never
    judged from here, its leases simply expire.
    """
    dead = []
    for holder in holders:
        holder_host, _, pid = holder.rpartition(":")
        if holder_host == host and pid.isdigit() and not alive(int(pid)):
            dead.append(holder)
    return dead


def recover_dead_claims(parts: Parts, *, clock: Callable[[], datetime]) -> int:
    """Resume at once the documents a crashed gateway on this host had claimed."""
    host = parts.node.rpartition(":")[0]
    dead = dead_local_holders(parts.journal.claim_holders(), host=host, alive=pid_alive)
    released = parts.journal.release_claims(dead, now=clock())
    if released:
        log.info("resumed %d documents claimed by stopped gateways %s", released, ", ".join(dead))
    return released


def send_due(
    parts: Parts,
    signals: Signals,
    *,
    clock: Callable[[], datetime],
    file_id: int | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    claimed: Callable[[], None] | None = None,
) -> Sent | None:
    """Claim and send one due document; ``None`` when nothing is due. ``claimed`` is
    called once a document is claimed, before it is sent."""
    doc = parts.journal.claim_for_sending(
        now=clock(), node=parts.node, lease_seconds=lease_seconds, file_id=file_id
    )
    if doc is None:
        return None
    if claimed is not None:
        claimed()
    flow = f"{doc.partner}/{doc.flow}"
    started = time.monotonic()
    with log_context(flow=flow, file=f"F-{doc.file_id}", document=doc.ref):
        try:
            sent = send_claimed(
                doc,
                journal=parts.journal,
                client=parts.client,
                schedule=parts.schedule,
                clock=clock,
                archive=parts.archive,
                locate=parts.locate_refusal,
            )
        except Exception:
            # The outcome may be journalled and only the file's settling have failed: the
            # mover looks at the file again until it is settled (or still has work).
            signals.finished_files.put(doc.file_id)
            raise
        finally:
            signals.timed("send", flow, time.monotonic() - started)
        log.info("D-%d -> %s %s", sent.document_id, sent.state, sent.detail)
    if sent.file_state in FINAL_FILE_STATES:
        signals.finished_files.put(sent.file_id)
    return sent


def sender_loop(
    parts: Parts, signals: Signals, *, clock: Callable[[], datetime], looks: bool = True
) -> None:
    """Send due documents until the gateway stops.

    A journal that refuses its claims is a condition, not a crash (the sender looks again
    a moment later); any other unexpected error escapes to the supervisor, which restarts
    the sender: the lease brings the document in hand back.

    From its claim to the document's end a sender holds a slot of ``signals.in_flight``
    (the gate measures its time in the Ecolix call and its CPU time). A sender that finds
    work after being idle wakes another idle one while slots are free (more may be due), and
    so does one whose document raised the limit: the senders at work grow to the limit.
    Idle, a sender waits for announced work, and with ``looks`` at most until a retry is due
    (:data:`IDLE_WAIT`): the gateway's first ``in_flight.floor`` senders look on their own,
    the others only when woken, so nothing due waits longer than with a fixed number.
    """
    gate = signals.in_flight
    more = functools.partial(_more, signals)
    idle = True  # since its last document: the first claim wakes another sender
    while not signals.stop.is_set():
        seen = signals.work.generation
        if not gate.acquire(timeout=IDLE_WAIT):
            continue  # every slot held: their senders look again once done (or a stop)
        wire, cpu = parts.client.wire_seconds(), time.thread_time()
        try:
            sent = send_due(parts, signals, clock=clock, claimed=more if idle else None)
            if sent is not None:
                grew = gate.record(
                    calling=parts.client.wire_seconds() - wire, working=time.thread_time() - cpu
                )
                for _ in range(grew):
                    signals.work.announce()
        except JournalError as exc:
            signals.conditions.set("journal", str(exc))
            sent = None
        except EdigwError as exc:
            log.error("sender: %s", exc)
            sent = None
        else:
            signals.conditions.clear("journal")
        finally:
            gate.release()
        idle = sent is None
        if not idle:
            continue
        signals.work.wait(seen, _idle_wait(parts.journal, signals, clock) if looks else None)


def _more(signals: Signals) -> None:
    """A sender claimed a document after being idle: wake another while a slot is free."""
    if signals.in_flight.has_room():
        signals.work.announce()


def _idle_wait(journal: Journal, signals: Signals, clock: Callable[[], datetime]) -> float:
    try:
        next_at = journal.next_retry_at()
    except EdigwError as exc:  # the journal is unwell: look again later, do not die
        signals.conditions.set("journal", str(exc))
        return IDLE_WAIT
    if next_at is None:
        return IDLE_WAIT
    return max(0.05, min(IDLE_WAIT, (next_at - clock()).total_seconds()))


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


def archive_probe_loop(parts: Parts, signals: Signals, *, every: float = PROBE_EVERY) -> None:
    """Check now and then that the archive can be written, off the data path.

    No file is taken in while it cannot: the condition says so even when no file comes.
    """
    root = parts.archive.root
    while True:
        why = not_writable(root)
        if why is None:
            signals.conditions.clear("archive")
        else:
            signals.conditions.set(
                "archive", f"cannot write into the archive {root}: {why}; no file is taken in"
            )
        if signals.stop.wait(every):
            return


def mover_loop(pollers: list[FlowPoller], signals: Signals) -> None:
    """Hands each finished file to the poller that took it, so its source is disposed of.

    A file that cannot be settled now (the journal or the archive failed) is tried again
    every second until it is; one that no poller holds yet (its poller is still between
    journalling it and holding it, or has given it back to the channel to be taken again)
    is looked for again for :data:`UNOWNED_PATIENCE` seconds. So a finished file's source
    never waits for a restart. A finished file whose source was disposed of already (a
    replay finished it) has its error copy put away (:func:`tidy_replayed`).

    It ends only once ``finish`` is set and nothing is queued, after one last try of the
    files it still waits for: a stop never leaves a done file in its inbox (the senders stop
    first; the moves they queued are made here). A bug escapes to the supervisor, which
    restarts the mover; the files it held are queued again for the new one.

    Once a second it also closes the channels of flows a reload removed, once nothing uses
    them any more (:func:`close_retired`).
    """
    waiting: dict[int, float] = {}  # file id -> when it was first put off
    next_round = 0.0
    while True:
        finishing = signals.finish.is_set()
        try:
            queued = signals.finished_files.get(timeout=FINISH_WAIT if finishing else IDLE_WAIT)
        except queue.Empty:
            if finishing:
                _settle_all(pollers, signals, list(waiting), waiting, last=True)
                return
            queued = None
        ids = [] if queued is None else [queued]  # None only wakes the mover: a stop began
        ids.extend(_more_queued(signals.finished_files))
        now = time.monotonic()
        round_due = now >= next_round
        if round_due:
            ids.extend(waiting)
            ids.extend(finished_elsewhere(pollers, signals))
            next_round = now + IDLE_WAIT
        _settle_all(pollers, signals, ids, waiting, last=False)
        if round_due:
            close_retired(pollers)


def _more_queued(finished: queue.Queue[int | None], most: int = 100) -> list[int]:
    """The finished files queued meanwhile, taken in one go: settled together, one wake-up of
    the mover for all of them instead of one each."""
    ids: list[int] = []
    while len(ids) < most:
        try:
            queued = finished.get_nowait()
        except queue.Empty:
            break
        if queued is not None:
            ids.append(queued)
    return ids


def close_retired(pollers: list[FlowPoller]) -> None:
    """Close the channel of each flow a reload removed (its folder watch, its SFTP staging)
    once its poller and watcher loops have returned and the sources of its files are all
    disposed of; its poller is dropped. Until then it stays, for the mover to dispose of
    what it holds. Called by the mover only: nothing else drops a poller or settles files.
    The connection of an SFTP endpoint no flow uses any more is closed with the last
    channel (:func:`close_unused_endpoints`)."""
    closed = [p for p in pollers if p.done_with_channel()]
    for poller in closed:
        pollers.remove(poller)
        if poller.runtime.channel is not None:
            poller.runtime.channel.close()
        log.info("flow %s removed: its channel is closed", poller.runtime.context.id)
    if closed:
        close_unused_endpoints(closed[0].parts, pollers)


def finished_elsewhere(pollers: list[FlowPoller], signals: Signals) -> list[int]:
    """With several nodes, or the senders in a process of their own, files held here whose
    last document another process's sender finished (it told its own mover, or told this
    one by a message that a crash may lose), settled or not (that process may have died
    before it settled the file): found in the journal once a second."""
    if not signals.leader.shared and not signals.sent_elsewhere:
        return []
    held = [file_id for poller in pollers for file_id in poller.held_ids()]
    if not held:
        return []
    try:
        return pollers[0].parts.journal.files_to_settle(held)
    except EdigwError as exc:  # looked for again at the next round
        signals.conditions.set("journal", str(exc))
        return []


def _settle_all(
    pollers: list[FlowPoller],
    signals: Signals,
    ids: list[int],
    waiting: dict[int, float],
    *,
    last: bool,
) -> None:
    """Settle ``ids`` (each once); those put off wait in ``waiting`` (``last``: a final try,
    after which what is left resumes at the next start)."""
    todo = list(dict.fromkeys(ids))
    now = time.monotonic()
    for n, file_id in enumerate(todo):
        try:
            outcome = settle(pollers, file_id)
        except BaseException:  # a bug: the restarted mover tries these files again
            for again in dict.fromkeys([*todo[n:], *waiting]):
                signals.finished_files.put(again)
            raise
        if outcome == "done":
            waiting.pop(file_id, None)
            signals.unowned.forget(file_id)
            continue
        if outcome == "unowned" and signals.leader.shared:
            # Another node's poller may hold it: that node's mover finds it finished.
            waiting.pop(file_id, None)
            continue
        if outcome == "unowned" and not last:
            # its poller, once it holds it, hands it back at once (not at the next round)
            held = functools.partial(_held_by_any, pollers, file_id)
            if signals.unowned.note(file_id, held):
                signals.finished_files.put(file_id)
        since = waiting.setdefault(file_id, now)
        if outcome == "unowned" and (last or now - since > UNOWNED_PATIENCE):
            signals.unowned.forget(file_id)
            log.warning(
                "F-%d finished, but no flow holds its source: it is disposed of when "
                "its source is next taken in",
                file_id,
                extra={"file": f"F-{file_id}"},
            )
            del waiting[file_id]


def _held_by_any(pollers: list[FlowPoller], file_id: int) -> bool:
    return any(poller.owns(file_id) for poller in pollers)


def settle(pollers: list[FlowPoller], file_id: int) -> Literal["done", "unowned", "retry"]:
    """Dispose of a finished file's source through the poller holding it; for a file whose
    source was disposed of long ago (a replay finished it), tidy its error copy instead.

    ``retry`` when the journal or the archive failed (an ``EdigwError``: usually brief);
    anything else is a bug and escapes, for the supervisor."""
    owner = next((p for p in pollers if p.owns(file_id)), None)
    try:
        if owner is not None:
            owner.dispose(file_id)
        elif not tidy_replayed(pollers, file_id):
            return "unowned"
    except EdigwError as exc:  # tried again on the next round
        log.error(
            "F-%d: could not dispose of the source: %s; tried again shortly",
            file_id,
            exc,
            extra={"file": f"F-{file_id}"},
        )
        return "retry"
    return "done"


def tidy_replayed(pollers: list[FlowPoller], file_id: int) -> bool:
    """A finished file no poller holds, whose source was disposed of already (taken in before
    a restart, or failed, then replayed): put away the copy its failure left in the error
    folder. ``False`` when its source still waits for its disposal (its poller is between
    journalling it and holding it, or gave it back to the channel to be taken again)."""
    if not pollers:
        return False
    journal = pollers[0].parts.journal
    if not journal.source_disposed(file_id):
        return False
    row = journal.file(file_id)
    for poller in pollers:
        ctx = poller.runtime.context
        if (ctx.partner, ctx.flow) == (row.partner, row.flow):
            poller.clear_error(row)
    return True


def prepare_start(parts: Parts, *, clock: Callable[[], datetime]) -> None:
    """Before a gateway's loops start: make sure it is the only one on a SQLite journal,
    resume at once what dead gateways of this host had claimed, and say which files they
    were reading when they died (those are read again in an isolated process)."""
    parts.journal.lock_for_gateway()
    parts.archive.check_shared()  # refuses when other nodes cannot read what we archive
    recover_dead_claims(parts, clock=clock)
    me = process_identity(parts.node.rpartition(":")[0])
    now = clock()
    for row in parts.journal.readings():
        if reading_status(row, me=me, now=now) == "dead":
            log.warning(
                "%s %s (%s/%s) was being read by %s when it stopped: it is read again in an "
                "isolated process when it is next taken in, and failed if that dies too",
                row.ref,
                row.original_name,
                row.partner,
                row.flow,
                row.reader,
            )


@dataclass(slots=True)
class Gateway:
    """A running gateway: ``start()``, then ``stop()`` (SIGTERM/SIGINT call it) and ``join()``.

    Its loops run under ``supervisor``; ``health()`` is their state, for any reader.
    """

    parts: Parts
    senders: Senders = DEFAULT_SENDERS
    #: ``whole``: every loop. ``sending``: the senders only (the sending process of
    #: ``processes: 2``; its intake process holds the journal's lock, leads the flows).
    role: Literal["whole", "sending"] = "whole"
    #: Set in the intake process of ``processes: 2``: the senders run there, not here.
    sending: SendingProcess | None = None
    clock: Callable[[], datetime] = utc_now
    policy: SupervisorPolicy = field(default_factory=SupervisorPolicy)
    signals: Signals = field(default_factory=Signals)
    pollers: list[FlowPoller] = field(default_factory=list)
    #: Seconds between two looks at the files flows are built from (``reload``).
    reload_every: float = RELOAD_EVERY
    supervisor: Supervisor = field(init=False)
    reloader: Reloader = field(init=False)
    #: Set to end the running export scheduler (see :meth:`stop_exporter`).
    _exporter: threading.Event | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.signals.in_flight = (
            InFlightGate() if self.senders == "auto" else InFlightGate.fixed(self.senders)
        )
        self.signals.sent_elsewhere = self.sending is not None
        if self.sending is not None:
            self.signals.work.forward = self.sending.wake
        if (
            self.role == "whole"
            and self.parts.journal.shared
            and isinstance(self.signals.leader, SoleNode)
        ):
            self.signals.leader = SharedLeadership(
                self.parts.journal,
                node=self.parts.node,
                flows=self.led_flows,
                times=LeaseTimes(self.parts.config.nodes.takeover),
            )
        self.reloader = Reloader(
            self.parts, self.signals.conditions, alerts=lambda: self.signals.alerts
        )
        self.supervisor = Supervisor(
            stages=(self.signals.stop, self.signals.finish),
            policy=self.policy,
            conditions=self.signals.conditions,
            node=self.parts.node,
            on_stop=(self._wake_everyone,),
        )

    def add_loop(
        self,
        name: str,
        run: Callable[[], None],
        *,
        kind: str,
        flow: str | None = None,
        finishing: bool = False,
    ) -> None:
        """Supervise one more loop; ``finishing`` loops stop after the others (with
        ``signals.finish``), the others with ``signals.stop``."""
        self.supervisor.add(name, run, kind=kind, flow=flow, stage=1 if finishing else 0)

    def led_flows(self) -> list[str]:
        """The flows one node at a time leads: inbound flows and exports."""
        exports = [flow.id for flow in self.parts.config.outbound_flows()]
        return [*self.parts.inbound, *exports]

    def start(self) -> None:
        if self.role == "sending":
            recover_dead_claims(self.parts, clock=self.clock)  # a sending process before it
            self._add_senders()
            self._add_reloader()  # refusals are traced with the mapping in use
            self.supervisor.start()
            return
        prepare_start(self.parts, clock=self.clock)
        leader = self.signals.leader
        if isinstance(leader, SharedLeadership):
            try:  # lead at once what is free; the loop retries if the journal fails
                leader.round()
            except EdigwError as exc:
                log.warning("flow leases not taken yet: %s", exc)
            self.add_loop(
                "leases",
                functools.partial(leader.run, self.signals.finish, self.signals.conditions),
                kind="leases",
                finishing=True,
            )
        self.pollers = [self._poller(rt) for rt in self.parts.inbound.values()]
        signals = self.signals
        # e-invoice flows: their rules compiled in the background, off every intake path
        warm_up([v for p in self.pollers if (v := p.runtime.context.validation) is not None])
        for poller in self.pollers:
            self._add_flow_loops(poller)
        if self.sending is None:
            self._add_senders()
        else:
            self.add_loop(
                "sending process",
                functools.partial(self.sending.run, signals.stop),
                kind="sending",
            )
        self.add_loop(
            "mover",
            functools.partial(mover_loop, self.pollers, signals),
            kind="mover",
            finishing=True,
        )
        self.add_loop(
            "archive probe",
            functools.partial(archive_probe_loop, self.parts, signals),
            kind="probe",
        )
        self._add_reloader()
        self.supervisor.start()

    def _add_senders(self) -> None:
        gate = self.signals.in_flight
        for n in range(gate.ceiling):
            self.add_loop(
                f"sender {n}",
                functools.partial(
                    sender_loop, self.parts, self.signals, clock=self.clock, looks=n < gate.floor
                ),
                kind="sender",
            )

    def _add_reloader(self) -> None:
        self.add_loop(
            "reloader",
            functools.partial(
                reloader_loop, self.reloader, self.signals.stop, every=self.reload_every
            ),
            kind="reloader",
        )

    def usage(self) -> UsageSnapshot:
        """The gateway's Ecolix calls: this process's, and its sending process's if any."""
        own = self.parts.client.usage
        return own if self.sending is None else combined_usage(own, self.sending.usage)

    def in_flight(self) -> tuple[int, int]:
        """Documents in the senders' hands, and how many may be (wherever they run)."""
        if self.sending is not None:
            return self.sending.in_flight
        return self.signals.in_flight.in_use, self.signals.in_flight.limit

    def _poller(self, runtime: InboundRuntime) -> FlowPoller:
        return FlowPoller(
            runtime,
            self.parts,
            self.signals,
            clock=self.clock,
            neighbours=lambda: list(self.pollers),
        )

    def _add_flow_loops(self, poller: FlowPoller) -> None:
        flow = poller.runtime.context.id
        self.add_loop(
            f"poller {flow}",
            functools.partial(poller_loop, poller, self.signals),
            kind="poller",
            flow=flow,
        )
        if poller.runtime.channel is not None and poller.runtime.channel.notifies:
            self.add_loop(
                f"watcher {flow}",
                functools.partial(watcher_loop, poller, self.signals),
                kind="watcher",
                flow=flow,
            )

    def add_flow(self, runtime: InboundRuntime) -> None:
        """Start polling one more inbound flow (the gateway runs; ``edigw.yaml`` grew)."""
        self.parts.inbound[runtime.context.id] = runtime
        poller = self._poller(runtime)
        self.pollers.append(poller)
        self._add_flow_loops(poller)

    def remove_flow(self, flow_id: str, *, timeout: float) -> list[str]:
        """Stop polling ``flow_id``: its poller finishes the file in hand and returns, within
        ``timeout`` seconds (the loops still busy then are returned). Its documents already
        journalled are still sent, and its poller stays with the mover until the sources of
        the files it took are disposed of; then the mover closes its channel."""
        runtime = self.parts.inbound.pop(flow_id, None)
        pollers = [p for p in self.pollers if p.runtime is runtime]

        def stop() -> None:
            for poller in pollers:
                poller.retired.set()
                poller.wake.set()

        return self.supervisor.retire(
            [f"poller {flow_id}", f"watcher {flow_id}"], stop, timeout=timeout
        )

    def start_exporter(self) -> None:
        """Run the exports of the current configuration on their schedules (if any)."""
        from edigw.pipeline.exports import export_scheduler_loop

        if not self.parts.config.outbound_flows():
            return
        retired = self._exporter = threading.Event()
        self.add_loop(
            "exporter",
            functools.partial(export_scheduler_loop, self.parts, self.signals, retired=retired),
            kind="exporter",
        )

    def stop_exporter(self, *, timeout: float) -> list[str]:
        """End the export scheduler (an export in progress finishes, within ``timeout``)."""
        retired, self._exporter = self._exporter, None
        if retired is None:
            return []
        return self.supervisor.retire(["exporter"], retired.set, timeout=timeout)

    def stop(self) -> None:
        """Ask every loop to finish what it holds (does not wait: see ``join``)."""
        self.supervisor.stop()

    def join(self, timeout: float | None = None) -> list[str]:
        """Stop in order (the mover last) within ``timeout`` seconds; the loops still busy
        then, by name (none after a clean stop). The flows this node led are free for the
        other nodes at once."""
        still = self.supervisor.join(timeout)
        if isinstance(self.signals.leader, SharedLeadership):
            self.signals.leader.resign()
        return still

    def health(self) -> HealthSnapshot:
        return self.supervisor.snapshot()

    @property
    def stopping(self) -> threading.Event:
        """Set once a stop began: asked for, or the supervisor gave up."""
        return self.supervisor.stopping

    @property
    def failure(self) -> str | None:
        """Why the supervisor gave up (a loop kept crashing), or ``None``."""
        return self.supervisor.failure

    @property
    def threads(self) -> list[threading.Thread]:
        return self.supervisor.threads

    def _wake_everyone(self) -> None:
        self.parts.client.stop_waiting()  # a call waiting for the budget is not made
        self.signals.in_flight.close()
        self.signals.work.announce(everyone=True)
        self.signals.finished_files.put(None)
        for poller in self.pollers:
            poller.wake.set()
