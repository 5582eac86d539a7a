"""Delivering an export's file on the partner's channel: once (a step failing after the
file was in place is told after the delivery is journalled, never turned into a resend), and
again from the archive (``edigw replay`` of an export run).

Apart from the run (``edigw.outbound.export``) because the per-record runs
(``edigw.outbound.per_record``) and the completion of the deliveries a killed node left
(``edigw.outbound.pending``) deliver the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from edigw.channels.base import Delivered, DeliveredIncompletely
from edigw.errors import EdigwError, JournalError
from edigw.outbound.flow import ArchiveLike, Channel


def deliver_once(
    channel: Channel, local_file: Path, name: str
) -> tuple[Delivered, DeliveredIncompletely | None]:
    """Deliver ``local_file`` as ``name``. A step failing after the file was in place (its
    done file...) does not make it undelivered: it is returned with the delivery, for the
    caller to journal the delivery first and tell the failure after (never to resend)."""
    try:
        return channel.deliver(local_file, name), None
    except DeliveredIncompletely as exc:
        return exc.delivered, exc


def owes_done_file(trouble: DeliveredIncompletely | None) -> bool:
    """Whether a delivery that failed after its file was in place left its done file
    unwritten: the run says so, and the flow's next runs write it (``edigw.outbound.pending``)."""
    return trouble is not None and trouble.done_file_owed


def replay_export_run(
    run_id: int,
    *,
    journal: Any,
    archive: ArchiveLike,
    channel: Channel,
    now: datetime | None = None,
) -> Delivered:
    """Deliver the archived file of export run ``run_id`` again, under its original name.

    The mark is not touched (the records were already accounted for). With ``now`` the
    re-delivery is journaled as a new run in mode ``replay``.
    """
    run = journal.export_run(run_id)
    if run is None:
        msg = f"R-{run_id}: no such export run"
        raise JournalError(msg)
    sha256 = _field(run, "sha256")
    name = _field(run, "file_name")
    if not sha256 or not name:
        msg = f"R-{run_id}: the run produced no file ({_field(run, 'state')}), nothing to replay"
        raise JournalError(msg)
    with tempfile.TemporaryDirectory(prefix="edigw-replay-") as tmp:
        local = Path(tmp) / "replay"
        copy_archived(archive, sha256, local)
        new_id = None
        if now is not None:
            new_id = journal.start_export_run(
                partner=_field(run, "partner"),
                flow=_field(run, "flow"),
                mode="replay",
                window_from=_field(run, "window_from"),
                now=now,
            )
        try:
            delivered, trouble = deliver_once(channel, local, name)
        except EdigwError as exc:
            if new_id is not None:
                journal.finish_export_run(new_id, state="failed", now=now, error=str(exc))
            raise
        if new_id is not None:
            journal.finish_export_run(
                new_id,
                state="delivered",
                now=now,
                window_to=_field(run, "window_to"),
                records=_field(run, "records") or 0,
                file_name=delivered.name,
                sha256=sha256,
                archive_path=_field(run, "archive_path"),
                error=str(trouble) if trouble else None,
                done_file_owed=owes_done_file(trouble),
            )
        if trouble is not None:
            raise trouble
    return delivered


def _field(run: Any, name: str) -> Any:
    return run.get(name) if isinstance(run, Mapping) else getattr(run, name, None)


def copy_archived(archive: ArchiveLike, sha256: str, dest: Path) -> None:
    """Copy the archived file ``sha256`` to ``dest`` (a folder archive or a database one)."""
    source = archive.open(sha256)
    if isinstance(source, str | os.PathLike):
        shutil.copyfile(source, dest)
        return
    with source as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)
