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

One module a part, by what it keeps: the signals the threads share (``Signals``) in
``edigw.pipeline.signals``; the poller and watcher loops and the ``FlowPoller`` they share in
``edigw.pipeline.poller``; the senders in ``edigw.pipeline.senders``; the mover in
``edigw.pipeline.mover``. This module keeps the probe, what a start does first
(``prepare_start``) and ``Gateway``, which starts and stops them all.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import EdigwError
from edigw.pipeline.assembly import InboundRuntime, Parts
from edigw.pipeline.concurrency import InFlightGate, Senders
from edigw.pipeline.folders import not_writable
from edigw.pipeline.health import HealthSnapshot
from edigw.pipeline.inbound import reading_status
from edigw.pipeline.leadership import LeaseTimes, SharedLeadership, SoleNode
from edigw.pipeline.mover import mover_loop
from edigw.pipeline.poller import FlowPoller, poller_loop, watcher_loop
from edigw.pipeline.reload import RELOAD_EVERY, Reloader, reloader_loop
from edigw.pipeline.senders import DEFAULT_SENDERS, recover_dead_claims, sender_loop
from edigw.pipeline.sending_process import SendingProcess, combined_usage
from edigw.pipeline.signals import Signals, utc_now
from edigw.pipeline.supervisor import Supervisor, SupervisorPolicy
from edigw.pipeline.validating import warm_up
from edigw.processes import process_identity

log = logging.getLogger("edigw.runtime")

#: Seconds between two checks that the archive can be written.
PROBE_EVERY = 30.0


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
