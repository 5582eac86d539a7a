"""The mover: disposes of each finished file's source through the poller holding it.

A sender finishes a file, but only the poller that took it in may touch its source; the
mover brings the two together, tries again until the journal has the disposal, and is the
only one to drop the pollers of flows a reload removed. It stops last, draining the moves
the senders queued.
"""

from __future__ import annotations

import functools
import logging
import queue
import time
from typing import Literal

from edigw.errors import EdigwError
from edigw.pipeline.poller import FlowPoller
from edigw.pipeline.sftp_endpoints import close_unused_endpoints
from edigw.pipeline.signals import IDLE_WAIT, Signals

#: The gateway's loops all log as ``edigw.runtime``, whichever module holds them.
log = logging.getLogger("edigw.runtime")

#: How long the mover looks for the poller of a finished file before leaving it (seconds):
#: the poller that took it registers it a moment after the journal has it (a sender may be
#: quicker), or gave it back to the channel to be taken again.
UNOWNED_PATIENCE = 600.0
#: Once finishing, the mover ends after the queue stayed empty this long (seconds).
FINISH_WAIT = 0.1


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
