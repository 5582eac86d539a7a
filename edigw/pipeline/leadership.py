"""Which flows this node leads: each inbound flow's poller and each export's schedule run
on exactly one node at a time.

On a SQLite journal there is one node (``GatewayLock``), which leads every flow
(:class:`SoleNode`). On PostgreSQL, :class:`SharedLeadership` keeps a lease per flow in the
journal (``edigw.journal.leases``), renewed by its supervised loop every fifth of the
takeover time::

    takeover T (nodes.takeover, 15 s)   lease ttl = 4/5 T, renewed every 1/5 T
    a node acts on a flow only until    its last successful renewal began + ttl - 1/5 T

so a node that cannot renew (it hangs, the database is cut off) stops acting on its flows at
least a fifth of T before the database lets anyone else take them, and when a node dies its
flows are taken over at most T after its last renewal (the lease lapses after 4/5 T, a
survivor looks again within 1/5 T).

Spread: a node takes at most ``ceil(flows / live nodes)`` leases (a node is live while its
heartbeat, written every renewal, is younger than the lease), and gives up what it holds
beyond that share, so two nodes share 20 flows 10 and 10. Which flows a node prefers is a
rendezvous hash of (node, flow): nodes starting together seldom reach for the same ones.

Leadership is local knowledge read on every poll (:meth:`holds` is a dictionary look-up
under a lock, no round trip); only the lease loop talks to the database.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from edigw.errors import EdigwError
from edigw.journal.store import Journal
from edigw.pipeline.health import Conditions

log = logging.getLogger("edigw.leadership")

#: The lease lasts this share of the takeover time; it is renewed every ``1 - LEASE_SHARE``
#: of it, and a node stops acting on a flow that long before its lease would lapse.
LEASE_SHARE = 0.8
#: The condition set while this node cannot renew its leases.
CONDITION = "leadership"


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """The lease timing derived from the takeover bound (seconds)."""

    takeover: float

    @property
    def ttl(self) -> float:
        """How long a lease lasts after it was last taken or renewed (database time)."""
        return self.takeover * LEASE_SHARE

    @property
    def every(self) -> float:
        """How often leases are renewed; also how early a node stops acting on a flow."""
        return self.takeover * (1 - LEASE_SHARE)


class Leadership(Protocol):
    """Who leads which flow, as this node knows it."""

    @property
    def shared(self) -> bool:
        """Several nodes may run (files are claimed in the journal before they are touched)."""

    def holds(self, flow: str) -> bool:
        """This node may act on ``flow`` now (poll it, dispose of its sources, export it)."""

    def epoch(self, flow: str) -> int | None:
        """The epoch of this node's lease on ``flow`` (it changes when leadership changes
        hands), ``None`` when it does not lead the flow."""

    def lost(self, flow: str) -> None:
        """Another node leads ``flow`` (it won a file claim): stop acting on it at once."""


class SoleNode:
    """The only node of a SQLite journal: it leads every flow, always."""

    shared = False

    def holds(self, flow: str) -> bool:
        return True

    def epoch(self, flow: str) -> int | None:
        return 0

    def lost(self, flow: str) -> None:
        return None


def rank(node: str, flow: str) -> bytes:
    """Rendezvous hash: the lower, the more ``node`` wants ``flow``."""
    return hashlib.sha256(f"{node}\n{flow}".encode()).digest()


class SharedLeadership:
    """Flow leases in a PostgreSQL journal, kept by :meth:`run` (see the module docstring).

    ``flows`` is asked for the flows to lead at each round (a reload may change them).
    """

    shared = True

    def __init__(
        self,
        journal: Journal,
        *,
        node: str,
        flows: Callable[[], Sequence[str]],
        times: LeaseTimes,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.journal = journal
        self.node = node
        self.flows = flows
        self.times = times
        self._monotonic = monotonic
        self._clock = clock
        self._lock = threading.Lock()
        # flow -> (epoch, monotonic deadline after which this node no longer acts on it)
        self._held: dict[str, tuple[int, float]] = {}

    # ------------------------------------------------------------------ reading

    def holds(self, flow: str) -> bool:
        with self._lock:
            held = self._held.get(flow)
        return held is not None and self._monotonic() < held[1]

    def epoch(self, flow: str) -> int | None:
        with self._lock:
            held = self._held.get(flow)
        return held[0] if held is not None and self._monotonic() < held[1] else None

    def held(self) -> list[str]:
        """The flows this node leads now, sorted."""
        return sorted(flow for flow in list(self._held) if self.holds(flow))

    def lost(self, flow: str) -> None:
        with self._lock:
            dropped = self._held.pop(flow, None)
        if dropped is not None:
            log.warning("flow %s: led by another node now; this node stops acting on it", flow)

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, conditions: Conditions) -> None:
        """Renew and spread the leases every :attr:`LeaseTimes.every` until ``stop``.

        A journal that fails is a condition; the leases then lapse on their own (this node
        stops acting on its flows before another may take them)."""
        while True:
            try:
                self.round()
            except EdigwError as exc:
                conditions.set(
                    CONDITION,
                    f"cannot renew the flow leases: {exc}; this node stops acting on its "
                    "flows until it can",
                )
            else:
                conditions.clear(CONDITION)
            if stop.wait(self.times.every):
                return

    def round(self) -> None:
        """One renewal: heartbeat, renew what is held, give up or take flows to hold a fair
        share. Raises ``JournalError`` when the journal fails."""
        flows = sorted(set(self.flows()))
        started = self._monotonic()
        deadline = started + self.times.ttl - self.times.every
        live = self.journal.heartbeat(self.node, ttl=self.times.ttl)
        self._resume_dead_nodes_documents()
        share = math.ceil(len(flows) / max(1, live))
        held = sorted(self._held, key=lambda f: rank(self.node, f))
        keep = [f for f in held if f in flows][:share]
        self._give_up([f for f in held if f not in keep])
        self._take(keep, deadline)
        if len(self._held) >= share:
            return
        known = self.journal.flow_leases(flows)
        free = [f for f in flows if f not in self._held and (f not in known or known[f].expired)]
        wanted = sorted(free, key=lambda f: rank(self.node, f))[: share - len(self._held)]
        self._take(wanted, deadline)

    def _resume_dead_nodes_documents(self) -> None:
        """Documents a dead node was sending are sent by the others now, not when their
        document lease (minutes) runs out; Ecolix's idempotency keys make a call the dead
        node had in flight harmless.

        A dead node's row is kept (the heartbeat forgets it a day later): a node given up
        for dead once, its heartbeat late, may claim more before it really dies, and only
        its row lets the others find those claims."""
        dead = self.journal.dead_nodes(ttl=self.times.ttl)
        if not dead:
            return
        holders = sorted(set(dead) & set(self.journal.claim_holders()))
        released = self.journal.release_claims(holders, now=self._clock())
        if released:
            log.info(
                "resumed %d documents claimed by nodes no longer seen: %s",
                released,
                ", ".join(holders),
            )

    def _take(self, flows: list[str], deadline: float) -> None:
        if not flows:
            return
        epochs = self.journal.take_leases(flows, self.node, ttl=self.times.ttl)
        for flow, epoch in epochs.items():
            with self._lock:
                before = self._held.get(flow)
                if epoch is None:
                    self._held.pop(flow, None)
                else:
                    self._held[flow] = (epoch, deadline)
            if epoch is None and before is not None:
                log.warning(
                    "flow %s: lease lost to another node; this node stops acting on it", flow
                )
            elif epoch is not None and (before is None or before[0] != epoch):
                log.info("flow %s: led by this node (lease epoch %d)", flow, epoch)

    def _give_up(self, flows: list[str]) -> None:
        """Stop acting on ``flows`` now; another node may take them once what this node
        began on them has had time to end."""
        if not flows:
            return
        with self._lock:
            for flow in flows:
                self._held.pop(flow, None)
        self.journal.let_go_leases(flows, self.node, after=self.times.every)
        log.info("left to other nodes (spreading the flows): %s", ", ".join(flows))

    def resign(self) -> None:
        """This node stops: every flow it led is free for the other nodes at once.

        A document it still claims (a call in flight past the stop timeout) resumes on the
        others one lease time from now, as if this node had died now: its row is gone, so
        they would not find it among a dead node's claims, and its claim would otherwise
        run its whole document lease (minutes)."""
        with self._lock:
            self._held.clear()
        until = self._clock() + timedelta(seconds=self.times.ttl)
        try:
            claimed = self.journal.leave(self.node, claims_until=until)
        except EdigwError as exc:
            log.warning("could not free this node's flow leases (they lapse on their own): %s", exc)
            return
        if claimed:
            log.warning(
                "stopping with %d documents still claimed (a call in flight): the other nodes "
                "send them again in %.0f s, under their idempotency keys",
                claimed,
                self.times.ttl,
            )
