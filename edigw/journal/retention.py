"""Retention: which finished files and export runs may go, and purging them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, true, update
from sqlalchemy.sql.elements import ColumnElement

from edigw.errors import JournalError
from edigw.journal.conditions import _batches
from edigw.journal.connection import JournalBase
from edigw.journal.rows import PurgeCounts, _aware
from edigw.journal.schema import (
    FINAL_FILE_STATES,
    FileState,
    RunState,
    channel_actions,
    documents,
    events,
    export_runs,
    files,
    remote_files,
    resolutions,
    validation_findings,
)
from edigw.journal.schema import problems as problem_lists


class RetentionMixin(JournalBase):
    """Finding and purging what retention lets go."""

    # ----------------------------------------------------------------- retention

    def purgeable_files(self, *, before: datetime, states: Collection[str]) -> list[int]:
        """Files the journal may forget: received before ``before``, in one of ``states``
        (final states only), their source moved, deleted or left (or ``resolved``: it had
        none), and no later reception of the same bytes in the same flow kept (a kept
        reception keeps its number, which its documents' idempotency keys depend on)."""
        before = _aware(before, "before")
        wanted = [str(FileState(s)) for s in states]
        not_final = set(wanted) - {str(s) for s in FINAL_FILE_STATES}
        if not_final:
            msg = f"only finished files can be purged, not {', '.join(sorted(not_final))}"
            raise JournalError(msg)

        def purgeable(f: Any) -> ColumnElement[bool]:
            disposed = (
                select(channel_actions.c.id)
                .where(channel_actions.c.file_id == f.c.id, channel_actions.c.ok == true())
                .exists()
            )
            # A resolved row never had a source of its own to dispose of.
            settled = or_(disposed, f.c.state == str(FileState.SUPERSEDED))
            return and_(f.c.received_at < before, f.c.state.in_(wanted), settled)

        later = files.alias("later")
        kept_later = (
            select(later.c.id)
            .where(
                later.c.partner == files.c.partner,
                later.c.flow == files.c.flow,
                later.c.sha256 == files.c.sha256,
                later.c.id > files.c.id,
                ~purgeable(later),
            )
            .exists()
        )
        query = select(files.c.id).where(purgeable(files), ~kept_later).order_by(files.c.id)
        with self._read("find files to purge") as conn:
            return [row[0] for row in conn.execute(query)]

    def old_export_runs(self, *, before: datetime) -> list[int]:
        """Finished export runs started before ``before``."""
        query = (
            select(export_runs.c.id)
            .where(
                export_runs.c.started_at < _aware(before, "before"),
                export_runs.c.state != str(RunState.RUNNING),
            )
            .order_by(export_runs.c.id)
        )
        with self._read("find export runs to purge") as conn:
            return [row[0] for row in conn.execute(query)]

    def contents_in_use(
        self, *, except_files: Collection[int] = (), except_runs: Collection[int] = ()
    ) -> set[str]:
        """The sha256 of every file and export run the journal keeps (but those named): the
        archive copies it still points at."""
        skip_files, skip_runs = set(except_files), set(except_runs)
        used: set[str] = set()
        with self._read("list archived contents") as conn:
            for file_id, sha256 in conn.execute(select(files.c.id, files.c.sha256)):
                if file_id not in skip_files and sha256:
                    used.add(sha256)
            runs = select(export_runs.c.id, export_runs.c.sha256).where(
                export_runs.c.sha256.is_not(None)
            )
            for run_id, sha256 in conn.execute(runs):
                if run_id not in skip_runs:
                    used.add(sha256)
        return used

    def purge(self, *, file_ids: Sequence[int], run_ids: Sequence[int]) -> PurgeCounts:
        """Forget files with their documents, events and source moves, and export runs.

        What is remembered of remote files stays (so a file left on a partner's server is
        still not fetched again), without its link to the file. Batches of 500, one
        transaction each: an interrupted purge leaves whole files, never half of one.
        """
        counts = PurgeCounts()
        for batch in _batches(file_ids):
            with self._write("purge files", barrier=True) as conn:
                conn.execute(
                    update(remote_files)
                    .where(remote_files.c.file_id.in_(batch))
                    .values(file_id=None)
                )
                _deleted(conn, problem_lists, problem_lists.c.file_id.in_(batch))
                _deleted(conn, validation_findings, validation_findings.c.file_id.in_(batch))
                counts.events += _deleted(conn, events, events.c.file_id.in_(batch))
                _deleted(conn, resolutions, resolutions.c.file_id.in_(batch))
                _deleted(conn, channel_actions, channel_actions.c.file_id.in_(batch))
                counts.documents += _deleted(conn, documents, documents.c.file_id.in_(batch))
                counts.files += _deleted(conn, files, files.c.id.in_(batch))
        for batch in _batches(run_ids):
            with self._write("purge export runs", barrier=True) as conn:
                counts.export_runs += _deleted(conn, export_runs, export_runs.c.id.in_(batch))
        return counts


def _deleted(conn: Connection, table: Any, condition: ColumnElement[bool]) -> int:
    return int(conn.execute(table.delete().where(condition)).rowcount or 0)
