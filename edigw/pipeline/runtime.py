"""The long-running gateway behind ``edigw run``: pollers, senders, scheduler.

Threads, each with one job::

    poller (one per inbound flow)  channel.poll → ingest → (file final) → channel.complete
    sender (N, shared)             journal.claim_for_sending → Ecolix → journal
    scheduler (one)                export flows whose time has come → run_export

Threads share nothing but the journal (the source of truth), thread-safe parts (client,
archive) and a few events/queues. A stop request lets each thread finish the document or
file in hand, then return; whatever was not finished is picked up after a restart from
the journal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from edigw.channels.base import Disposition, IncomingFile
from edigw.errors import ChannelError, EdigwError
from edigw.journal.store import FileRow, Journal
from edigw.pipeline.assembly import InboundRuntime, Parts
from edigw.pipeline.dispatch import DEFAULT_LEASE_SECONDS, Sent, send_claimed
from edigw.pipeline.inbound import FINAL_FILE_STATES, Ingested, ingest
from edigw.processes import pid_alive

log = logging.getLogger("edigw.runtime")

DEFAULT_SENDERS = 4
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

    def wait(self, seen: int, timeout: float) -> None:
        """Sleep up to ``timeout`` unless work was announced after ``generation`` was ``seen``."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout)


@dataclass(slots=True)
class Signals:
    """The few things threads tell each other."""

    stop: threading.Event = field(default_factory=threading.Event)
    work: WorkSignal = field(default_factory=WorkSignal)
    finished_files: queue.Queue[int] = field(default_factory=queue.Queue)


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
    """Takes one inbound flow's files in and disposes of their sources when final."""

    def __init__(
        self,
        runtime: InboundRuntime,
        parts: Parts,
        signals: Signals,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.runtime = runtime
        self.parts = parts
        self.signals = signals
        self.clock = clock
        self.pending: dict[int, IncomingFile] = {}
        self.wake = threading.Event()
        self._lock = threading.Lock()

    def poll_once(self) -> list[Ingested]:
        """One look at the channel: ingest what is ready, journal what is wrong."""
        channel = self.runtime.channel
        if channel is None:
            return []
        try:
            result = channel.poll(now=time.time())
        except ChannelError as exc:
            log.warning("flow %s: channel unavailable: %s", self.runtime.context.id, exc)
            return []
        for problem in result.problems:
            self._journal_problem(problem.name, problem.reason, problem.incoming)
        taken = (self._take_one(incoming) for incoming in result.files)
        return [ingested for ingested in taken if ingested is not None]

    def _take_one(self, incoming: IncomingFile) -> Ingested | None:
        """``take``, except after a stop request; a failure is logged, not raised, so that
        one file cannot hold up the others of the same poll, and the channel gets the file
        back to offer it again later (taking in again what the journal already holds
        resumes it: a retry never duplicates anything)."""
        if self.signals.stop.is_set():
            return None
        try:
            return self.take(incoming)
        except EdigwError as exc:
            log.error(
                "flow %s: %s: not taken in, tried again on a later poll: %s",
                self.runtime.context.id,
                incoming.name,
                exc,
            )
        except Exception:  # a bug must not stop the flow
            log.exception("flow %s: %s: unexpected error", self.runtime.context.id, incoming.name)
        if self.runtime.channel is not None:
            self.runtime.channel.release(incoming)
        return None

    def take(self, incoming: IncomingFile) -> Ingested:
        ctx = self.runtime.context
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
        )
        log.info(
            "flow %s: %s %s -> %s (%d documents)",
            ctx.id,
            ingested.show_id,
            incoming.name,
            ingested.state,
            ingested.documents,
        )
        with self._lock:  # archived: the bytes the channel held in memory are not needed now
            self.pending[ingested.file_id] = replace(incoming, content=None)
        if ingested.state in FINAL_FILE_STATES:
            self.dispose(ingested.file_id)
        else:
            self.signals.work.announce()
        return ingested

    def dispose(self, file_id: int) -> None:
        """Move/delete/leave the source of a final file, and journal what happened."""
        with self._lock:
            incoming = self.pending.pop(file_id, None)
        channel = self.runtime.channel
        if incoming is None or channel is None:
            return
        row = self.parts.journal.file(file_id)
        if row.sha256:
            self.parts.archive.make_durable(row.sha256)
        disposition = disposition_of(self.parts.journal, row)
        result = channel.complete(incoming, disposition)
        self.parts.journal.record_channel_action(
            file_id,
            action=result.action,
            ok=result.ok,
            error=None if result.ok else result.detail,
            now=self.clock(),
        )
        if not result.ok:
            log.error(
                "flow %s: F-%d: %s failed: %s",
                self.runtime.context.id,
                file_id,
                result.action,
                result.detail,
            )

    def owns(self, file_id: int) -> bool:
        with self._lock:
            return file_id in self.pending

    def _journal_problem(self, name: str, reason: str, incoming: IncomingFile | None) -> None:
        ctx = self.runtime.context
        name, reason = printable_name(name), printable_name(reason)
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
        log.error("flow %s: F-%d %s: %s", ctx.id, file_id, name, reason)
        if incoming is not None:
            with self._lock:
                self.pending[file_id] = incoming
            self.dispose(file_id)


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
) -> Sent | None:
    """Claim and send one due document; ``None`` when nothing is due."""
    doc = parts.journal.claim_for_sending(
        now=clock(), node=parts.node, lease_seconds=lease_seconds, file_id=file_id
    )
    if doc is None:
        return None
    sent = send_claimed(
        doc, journal=parts.journal, client=parts.client, schedule=parts.schedule, clock=clock
    )
    if sent.file_state in FINAL_FILE_STATES:
        signals.finished_files.put(sent.file_id)
    return sent


def sender_loop(parts: Parts, signals: Signals, *, clock: Callable[[], datetime]) -> None:
    while not signals.stop.is_set():
        seen = signals.work.generation
        try:
            sent = send_due(parts, signals, clock=clock)
        except EdigwError as exc:
            log.error("sender: %s", exc)
            sent = None
        except Exception:  # a bug must not stop the sender: the lease brings the doc back
            log.exception("sender: unexpected error")
            sent = None
        if sent is not None:
            log.info("D-%d -> %s %s", sent.document_id, sent.state, sent.detail)
            continue
        signals.work.wait(seen, _idle_wait(parts.journal, clock))


def _idle_wait(journal: Journal, clock: Callable[[], datetime]) -> float:
    try:
        next_at = journal.next_retry_at()
    except EdigwError as exc:  # the journal is unwell: look again later, do not die
        log.error("sender: %s", exc)
        return IDLE_WAIT
    if next_at is None:
        return IDLE_WAIT
    return max(0.05, min(IDLE_WAIT, (next_at - clock()).total_seconds()))


def poller_loop(poller: FlowPoller, signals: Signals) -> None:
    interval = float(poller.runtime.config.poll_interval)
    channel = poller.runtime.channel
    if channel is not None:
        channel.wakeups(poller.wake)
    while not signals.stop.is_set():
        try:
            poller.poll_once()
        except EdigwError as exc:
            log.error("flow %s: %s", poller.runtime.context.id, exc)
        except Exception:  # a bug must not stop the flow: log it and look again later
            log.exception("flow %s: unexpected error while polling", poller.runtime.context.id)
        poller.wake.clear()
        poller.wake.wait(interval)


def disposer_loop(pollers: list[FlowPoller], signals: Signals) -> None:
    """Hands each finished file to the poller that took it, so its source is disposed of."""
    while not signals.stop.is_set():
        try:
            file_id = signals.finished_files.get(timeout=IDLE_WAIT)
        except queue.Empty:
            continue
        for poller in pollers:
            if poller.owns(file_id):
                try:
                    poller.dispose(file_id)
                except Exception:  # journalled as undisposed; the next start retries it
                    log.exception("F-%d: could not dispose of the source", file_id)
                break


@dataclass(slots=True)
class Gateway:
    """A running gateway: start it, then ``stop()`` it (SIGTERM/SIGINT call stop)."""

    parts: Parts
    senders: int = DEFAULT_SENDERS
    clock: Callable[[], datetime] = utc_now
    extra_loops: list[Callable[[Signals], None]] = field(default_factory=list)
    signals: Signals = field(default_factory=Signals)
    threads: list[threading.Thread] = field(default_factory=list)
    pollers: list[FlowPoller] = field(default_factory=list)

    def start(self) -> None:
        recover_dead_claims(self.parts, clock=self.clock)
        self.pollers = [
            FlowPoller(rt, self.parts, self.signals, clock=self.clock)
            for rt in self.parts.inbound.values()
        ]
        for poller in self.pollers:
            self._spawn(f"poll {poller.runtime.context.id}", poller_loop, poller, self.signals)
        for n in range(self.senders):
            self._spawn(f"sender {n}", sender_loop, self.parts, self.signals, clock=self.clock)
        self._spawn("disposer", disposer_loop, self.pollers, self.signals)
        for loop in self.extra_loops:
            self._spawn(getattr(loop, "__name__", "loop"), loop, self.signals)

    def stop(self) -> None:
        self.signals.stop.set()
        self.parts.client.stop_waiting()  # a call waiting for the budget is not made
        self.signals.work.announce(everyone=True)
        for poller in self.pollers:
            poller.wake.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(
        self, name: str, target: Callable[..., None], *args: object, **kwargs: object
    ) -> None:
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)
