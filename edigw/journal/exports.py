"""Export runs, their deliveries, marks (cursors) and sequence numbers: shared by every node."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, true, update

from edigw.errors import JournalError
from edigw.journal import deliveries, leases
from edigw.journal.connection import JournalBase
from edigw.journal.dialect import insert_for
from edigw.journal.errors import FlowLeaseLostError, UnknownIdError
from edigw.journal.rows import ExportRunRow, _aware, _maybe_aware, _run_row
from edigw.journal.schema import RunState, export_cursors, export_runs, export_sequences
from edigw.problems import storable


class ExportsMixin(JournalBase):
    """Export runs, cursors and sequence numbers."""

    # ----------------------------------------------------------------- exports

    def start_export_run(
        self, *, partner: str, flow: str, mode: str, window_from: datetime | None, now: datetime
    ) -> int:
        now = _aware(now)
        with self._write("start an export run") as conn:
            run_id: int = conn.execute(
                insert(export_runs)
                .values(
                    partner=partner,
                    flow=flow,
                    mode=mode,
                    window_from=_maybe_aware(window_from, "window_from"),
                    records=0,
                    calls=0,
                    state=RunState.RUNNING,
                    started_at=now,
                )
                .returning(export_runs.c.id)
            ).scalar_one()
        return run_id

    def finish_export_run(
        self,
        run_id: int,
        *,
        state: str,
        now: datetime,
        window_to: datetime | None = None,
        records: int = 0,
        calls: int = 0,
        file_name: str | None = None,
        sha256: str | None = None,
        archive_path: str | None = None,
        error: str | None = None,
        mark: tuple[datetime, str | None] | None = None,
        done_file_owed: bool = False,
    ) -> None:
        """Finish run ``run_id``; with ``mark`` (instant, boundary fingerprints) the flow's
        mark moves in the same transaction, and its recorded delivery (``record_export_
        delivery``) is forgotten with it: a file is never delivered without its records
        being accounted for, whichever node carries on. ``done_file_owed``: the file is in
        place but its done file is not (``owed_done_files``)."""
        run_state = RunState(state)
        if run_state == RunState.RUNNING:
            msg = "an export run finishes delivered, failed or empty, not running"
            raise ValueError(msg)
        now = _aware(now)
        with self._write("finish an export run", barrier=True) as conn:
            deliveries.complete(conn, run_id)
            result = conn.execute(
                update(export_runs)
                .where(export_runs.c.id == run_id)
                .values(
                    state=run_state,
                    finished_at=now,
                    window_to=_maybe_aware(window_to, "window_to"),
                    records=records,
                    calls=calls,
                    file_name=file_name,
                    sha256=sha256,
                    archive_path=archive_path,
                    error=None if error is None else storable(error),
                    done_file_owed=done_file_owed,
                )
            )
            if result.rowcount == 0:
                msg_0 = f"R-{run_id} does not exist in the journal"
                raise UnknownIdError(msg_0)
            if mark is not None:
                row = conn.execute(
                    select(export_runs.c.partner, export_runs.c.flow).where(
                        export_runs.c.id == run_id
                    )
                ).one()
                conn.execute(self._advance(row.partner, row.flow, mark[0], mark[1], now=now))

    def record_export_delivery(
        self,
        run_id: int,
        *,
        file_name: str,
        sha256: str,
        size: int,
        archive_path: str | None,
        records: int,
        calls: int,
        mark: tuple[datetime, str | None] | None,
        now: datetime,
        lease: leases.HeldLease | None = None,
    ) -> None:
        """Journal that run ``run_id`` is about to deliver this file, and the mark it moves to
        once delivered, *before* the channel is asked: see ``edigw.journal.deliveries``.

        With ``lease`` (a node among several, PostgreSQL), recorded only if that is the flow's
        lease in the journal still, checked in the same transaction (``leases.still_held``);
        otherwise nothing is recorded and :class:`FlowLeaseLostError` is raised."""
        now = _aware(now)
        if lease is not None and not self._pg:
            msg = "a delivery fenced by a flow lease needs a PostgreSQL journal"
            raise JournalError(msg)
        with self._write("record an export delivery", barrier=True) as conn:
            if lease is not None and not leases.still_held(conn, lease):
                msg = (
                    f"flow {lease.flow}: the lease {lease.node} held under epoch "
                    f"{lease.epoch} is another node's now, or expired"
                )
                raise FlowLeaseLostError(msg)
            deliveries.record(
                conn,
                run_id,
                file_name=file_name,
                sha256=sha256,
                size=size,
                archive_path=archive_path,
                records=records,
                calls=calls,
                mark_at=None if mark is None else _aware(mark[0], "mark"),
                boundary=None if mark is None else mark[1],
                now=now,
            )

    def pending_export_deliveries(
        self, partner: str, flow: str
    ) -> list[deliveries.PendingDelivery]:
        """The flow's deliveries recorded and never completed (a node died between
        delivering and journalling), oldest first."""
        with self._read("list pending export deliveries") as conn:
            return deliveries.pending(conn, partner, flow)

    def owed_done_files(self, partner: str, flow: str) -> list[ExportRunRow]:
        """The flow's delivered runs whose done file is still to be written, oldest first."""
        query = (
            select(export_runs)
            .where(
                export_runs.c.partner == partner,
                export_runs.c.flow == flow,
                export_runs.c.done_file_owed == true(),
            )
            .order_by(export_runs.c.id)
        )
        with self._read("list owed done files") as conn:
            return [_run_row(m) for m in conn.execute(query).mappings()]

    def done_file_written(self, run_id: int, *, note: str) -> None:
        """Run ``run_id``'s done file is written (or no longer needed): nothing is owed, and
        ``note`` (when, where) is added to the run's error, which told that it was missing."""
        with self._write("record a done file written", barrier=True) as conn:
            error = conn.execute(
                select(export_runs.c.error).where(export_runs.c.id == run_id)
            ).scalar()
            conn.execute(
                update(export_runs)
                .where(export_runs.c.id == run_id)
                .values(
                    done_file_owed=False,
                    error=storable(f"{error}; {note}" if error else note),
                )
            )

    def export_run(self, run_id: int) -> ExportRunRow:
        with self._read("read an export run") as conn:
            m = (
                conn.execute(select(export_runs).where(export_runs.c.id == run_id))
                .mappings()
                .first()
            )
        if m is None:
            msg = f"R-{run_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _run_row(m)

    def export_runs(
        self, *, partner: str | None = None, flow: str | None = None, limit: int | None = 50
    ) -> list[ExportRunRow]:
        """Export runs, newest first."""
        query = select(export_runs).order_by(export_runs.c.id.desc())
        if partner is not None:
            query = query.where(export_runs.c.partner == partner)
        if flow is not None:
            query = query.where(export_runs.c.flow == flow)
        if limit is not None:
            query = query.limit(limit)
        with self._read("list export runs") as conn:
            return [_run_row(m) for m in conn.execute(query).mappings()]

    def latest_export_runs(self) -> dict[tuple[str, str], ExportRunRow]:
        """The latest export run of each (partner, flow) that ever ran."""
        latest = select(func.max(export_runs.c.id)).group_by(
            export_runs.c.partner, export_runs.c.flow
        )
        with self._read("list the latest export runs") as conn:
            rows = conn.execute(select(export_runs).where(export_runs.c.id.in_(latest)))
            return {(m["partner"], m["flow"]): _run_row(m) for m in rows.mappings()}

    def cursor(self, partner: str, flow: str) -> datetime | None:
        """The delta export's high-water mark for this flow (``None``: never exported)."""
        with self._read("read an export cursor") as conn:
            value: datetime | None = conn.execute(
                select(export_cursors.c.high_water_mark).where(
                    export_cursors.c.partner == partner, export_cursors.c.flow == flow
                )
            ).scalar()
        return value

    def export_mark(self, partner: str, flow: str) -> tuple[datetime, str | None] | None:
        """The delta export's high-water mark and its boundary fingerprints (``None``:
        never exported; a boundary ``None``: written before the journal kept it)."""
        with self._read("read an export mark") as conn:
            row = conn.execute(
                select(export_cursors.c.high_water_mark, export_cursors.c.boundary).where(
                    export_cursors.c.partner == partner, export_cursors.c.flow == flow
                )
            ).first()
        return None if row is None else (row[0], row[1])

    def advance_cursor(
        self,
        partner: str,
        flow: str,
        high_water_mark: datetime,
        *,
        now: datetime,
        boundary: str | None = None,
    ) -> None:
        """Move the high-water mark forward with the ``boundary`` fingerprints (of the records
        at the mark, delivered); a mark older than the stored one is ignored, one at the same
        instant replaces the boundary (it holds the earlier one's fingerprints too)."""
        statement = self._advance(partner, flow, high_water_mark, boundary, now=_aware(now))
        with self._write("advance an export cursor", barrier=True) as conn:
            conn.execute(statement)

    def _advance(
        self, partner: str, flow: str, at: datetime, boundary: str | None, *, now: datetime
    ) -> Any:
        """The upsert that moves a flow's mark forward (never back)."""
        mark = _aware(at, "high_water_mark")
        dialect_insert = insert_for(pg=self._pg)
        statement = dialect_insert(export_cursors).values(
            partner=partner, flow=flow, high_water_mark=mark, updated_at=now, boundary=boundary
        )
        return statement.on_conflict_do_update(
            index_elements=[export_cursors.c.partner, export_cursors.c.flow],
            set_={
                "high_water_mark": statement.excluded.high_water_mark,
                "updated_at": now,
                "boundary": statement.excluded.boundary,
            },
            where=export_cursors.c.high_water_mark <= statement.excluded.high_water_mark,
        )

    def reset_cursor(self, partner: str, flow: str) -> None:
        """Forget the high-water mark: the next delta export starts from the beginning."""
        with self._write("reset an export cursor", barrier=True) as conn:
            conn.execute(
                export_cursors.delete().where(
                    export_cursors.c.partner == partner, export_cursors.c.flow == flow
                )
            )

    def next_sequence(self, partner: str, flow: str) -> int:
        """The next number of this flow's sequence (1, 2, ...), atomically across nodes."""
        dialect_insert = insert_for(pg=self._pg)
        statement = dialect_insert(export_sequences).values(partner=partner, flow=flow, last_seq=1)
        upsert = statement.on_conflict_do_update(
            index_elements=[export_sequences.c.partner, export_sequences.c.flow],
            set_={"last_seq": export_sequences.c.last_seq + 1},
        ).returning(export_sequences.c.last_seq)
        with self._write("take the next sequence number", barrier=True) as conn:
            value: int = conn.execute(upsert).scalar_one()
        return value
