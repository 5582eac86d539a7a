"""Finish an export delivery that a killed node left half-journalled: exactly once, not twice.

An export run journals its file and the mark it will move to *before* delivering it
(``edigw.journal.deliveries``), and forgets that record in the transaction that finishes the
run and moves the mark. A node killed between the two (the file may or may not be at the
partner's) leaves the record behind, and the flow's mark where it was; if the next run just
carried on, it would send that file's records again in a new file.

So the flow's leader, before each run (the first one after it starts or takes the flow
over included), finishes every such delivery:

* the file is at the destination under its name with the same size and sha256 (read back,
  over SFTP too), or with ``if_exists: rename`` under a numbered name that rename gave it
  (``NAME.1.ext``...): it was delivered; only the journal is completed (run delivered, mark
  moved, under the name found);
* it is not there: the *archived* bytes (kept before delivery, so byte for byte the file
  that was rendered) are delivered again under the same name, then the journal is completed;
* that delivery is refused for good (a non-retriable channel error, e.g. another file of
  that name with other content): the run is journalled failed and the mark stays, so the
  records go out in the next file (never lost);
* the destination cannot be reached: the error is raised and the record kept, for the next
  run to try again — the flow exports nothing new until then, which is what keeps it exact.

A partner that picked the file up in the instant between its delivery and the kill, and
removed it, gets it again: nothing on our side can tell that from a file never delivered.

Done files owed are written here too, first (their runs are older than any pending
delivery): a file renamed into place whose done file could not be written is delivered
(its run says ``done_file_owed``), but a partner waiting for done files never takes it. Each
run of the flow tries its done file again until it is written, or until the file is gone
(then none is needed); the run's error says which, and when. A try that fails is logged
and the run goes on: the file stays delivered, and the next run tries again.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from edigw.channels.base import Delivered, DeliveredIncompletely
from edigw.errors import ChannelError
from edigw.journal.deliveries import PendingDelivery
from edigw.outbound.delivery import copy_archived, deliver_once, owes_done_file
from edigw.outbound.flow import ArchiveLike, Channel

log = logging.getLogger("edigw.exports")


def finish_pending_deliveries(
    partner: str,
    flow: str,
    *,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel,
    now: datetime,
) -> list[int]:
    """Complete every delivery of the flow left unfinished; the ids of the runs completed
    as delivered. See the module docstring for what is done in each case."""
    write_owed_done_files(partner, flow, journal=journal, channel=channel, now=now)
    done: list[int] = []
    for pending in journal.pending_export_deliveries(partner, flow):
        if _finish(pending, journal=journal, archive=archive, channel=channel, now=now):
            done.append(pending.run_id)
    return done


def write_owed_done_files(
    partner: str, flow: str, *, journal: Any, channel: Channel, now: datetime
) -> list[int]:
    """Write the done files the flow's delivered runs still owe; the ids of the runs no
    longer owing one. A failure is logged and the run keeps owing it."""
    write = getattr(channel, "write_done_file", None)
    settled: list[int] = []
    if write is None:
        return settled
    for run in journal.owed_done_files(partner, flow):
        where = f"R-{run.id} {run.file_name}"
        try:
            written = write(run.file_name)
        except ChannelError as exc:
            log.warning("export %s/%s: %s still has no done file: %s", partner, flow, where, exc)
            continue
        at = f"{now:%Y-%m-%d %H:%M:%S %Z}"
        if written is None:
            note = f"no done file needed any more at {at} (the file is gone)"
        else:
            note = f"done file {written} written at {at}"
        journal.done_file_written(run.id, note=note)
        log.warning("export %s/%s: %s: %s", partner, flow, where, note)
        settled.append(run.id)
    return settled


def _finish(
    pending: PendingDelivery,
    *,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel,
    now: datetime,
) -> bool:
    where = f"R-{pending.run_id} {pending.file_name}"
    trouble: DeliveredIncompletely | None = None
    found = _delivered_as(channel, pending)
    name = found or pending.file_name
    if found is not None:
        if found != pending.file_name:
            where += f" (renamed {found}, the name was taken)"
        log.warning(
            "export %s/%s: %s was delivered by a node that died before journalling it;"
            " journal completed",
            pending.partner,
            pending.flow,
            where,
        )
    else:
        try:
            again, trouble = _deliver_again(pending, archive=archive, channel=channel)
            name = again.name
        except ChannelError as exc:
            if exc.retriable:
                raise
            journal.finish_export_run(
                pending.run_id,
                state="failed",
                now=now,
                window_to=pending.window_from,
                calls=pending.calls,
                error=f"delivery interrupted, then refused: {exc}",
            )
            return False
        log.warning(
            "export %s/%s: %s, interrupted before it reached the partner, delivered again",
            pending.partner,
            pending.flow,
            where,
        )
    mark = None if pending.mark_at is None else (pending.mark_at, pending.boundary)
    journal.finish_export_run(
        pending.run_id,
        state="delivered",
        now=now,
        window_to=pending.mark_at or pending.window_from,
        records=pending.records,
        calls=pending.calls,
        file_name=name,
        sha256=pending.sha256,
        archive_path=pending.archive_path,
        error=str(trouble) if trouble else None,
        mark=mark,
        done_file_owed=owes_done_file(trouble),
    )
    if trouble is not None:
        raise trouble  # delivered and journalled so; what failed after is still told
    return True


def _delivered_as(channel: Channel, pending: PendingDelivery) -> str | None:
    """The name the file is at the partner's under (a rename may have numbered it), or
    ``None`` when it is not there."""
    name, size, sha256 = pending.file_name, pending.size, pending.sha256
    delivered_as = getattr(channel, "delivered_as", None)
    if delivered_as is not None:
        found = delivered_as(name, size=size, sha256=sha256)
        return None if found is None else str(found)
    holds = getattr(channel, "holds", None)
    if holds is None:  # a channel that cannot look: deliver again (same name, same bytes)
        return None
    return name if holds(name, size=size, sha256=sha256) else None


def _deliver_again(
    pending: PendingDelivery, *, archive: ArchiveLike, channel: Channel
) -> tuple[Delivered, DeliveredIncompletely | None]:
    with tempfile.TemporaryDirectory(prefix="edigw-redeliver-") as tmp:
        local = Path(tmp) / "redeliver"
        copy_archived(archive, pending.sha256, local)
        return deliver_once(channel, local, pending.file_name)
