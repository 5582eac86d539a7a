"""The senders: claim due documents from the journal and send them to Ecolix.

They share only the journal and the signals with the other loops; the sending process of
``processes: 2`` runs them alone. Also here: resuming at once what a gateway of this host
that died had claimed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime

from edigw.errors import EdigwError, JournalError
from edigw.journal.claims import NextClaim
from edigw.journal.rows import DocumentRow
from edigw.journal.store import Journal
from edigw.logs import log_context
from edigw.pipeline.assembly import Parts
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.dispatch import DEFAULT_LEASE_SECONDS, Sent, send_claimed
from edigw.pipeline.inbound import FINAL_FILE_STATES
from edigw.pipeline.signals import IDLE_WAIT, Signals
from edigw.processes import pid_alive

#: The gateway's loops all log as ``edigw.runtime``, whichever module holds them.
log = logging.getLogger("edigw.runtime")

DEFAULT_SENDERS: Senders = "auto"


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
    held: DocumentRow | None = None,
    claim_next: bool = False,
) -> Sent | None:
    """Claim and send one due document; ``None`` when nothing is due. ``claimed`` is
    called once a document is claimed, before it is sent.

    ``held``: a document already claimed for this node (``Sent.claimed``), sent instead of
    claiming one. ``claim_next``: on success, claim the next due document with the done
    (``Sent.claimed``), which the caller must send or give back (:func:`give_back`).
    """
    doc = held or parts.journal.claim_for_sending(
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
                claim_next=NextClaim(parts.node, lease_seconds, file_id) if claim_next else None,
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

    A success claims the sender's next document in the done's own transaction (one turn at
    the journal's lock a document instead of two); a document so claimed ahead and not sent
    (a stop, no free slot) is given back, due again at once.
    """
    gate = signals.in_flight
    more = functools.partial(_more, signals)
    idle = True  # since its last document: the first claim wakes another sender
    held: DocumentRow | None = None  # claimed with the last document's done, not yet sent
    try:
        while not signals.stop.is_set():
            seen = signals.work.generation
            if not gate.acquire(timeout=IDLE_WAIT):
                # every slot held: their senders look again once done (or a stop)
                if held is not None:
                    give_back(parts, signals, held, clock=clock, why=_NO_SLOT)
                    held = None
                continue
            wire, cpu = parts.client.wire_seconds(), time.thread_time()
            doc, held = held, None
            try:
                sent = send_due(
                    parts,
                    signals,
                    clock=clock,
                    claimed=more if idle else None,
                    held=doc,
                    claim_next=True,
                )
                if sent is not None:
                    held = sent.claimed
                    grew = gate.record(
                        calling=parts.client.wire_seconds() - wire,
                        working=time.thread_time() - cpu,
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
    finally:
        if held is not None:
            give_back(parts, signals, held, clock=clock, why=_STOPPED)


_NO_SLOT = "claimed ahead, given back: the senders at work were at their limit"
_STOPPED = "claimed ahead, given back: the gateway stopped before sending it"


def give_back(
    parts: Parts,
    signals: Signals,
    doc: DocumentRow,
    *,
    clock: Callable[[], datetime],
    why: str,
) -> None:
    """Return a document claimed ahead (``Sent.claimed``) and never sent: pending again and
    due at once, its attempt undone, another sender woken for it. A journal that refuses
    leaves it to its lease, which brings it back as after a crash."""
    try:
        parts.journal.mark_not_sent(doc.id, now=clock(), reason=why)
    except EdigwError as exc:
        log.warning("D-%d stays claimed until its lease ends: %s", doc.id, exc)
        return
    signals.work.announce()


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
