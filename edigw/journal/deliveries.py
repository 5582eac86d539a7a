"""Export deliveries journalled before they happen: the SQL of ``export_deliveries``.

An export file reaches the partner in three steps, so that a node killed between any two of
them leaves the journal saying what to do next:

1. :func:`record` — the run's file (name, sha256, size, archived copy) and the mark it will
   move to are written *before* the channel is asked to deliver;
2. the channel delivers (``edigw.outbound.delivery``);
3. :func:`complete` — in the transaction that finishes the run: the row is deleted and,
   for a delivery to the partner, the flow's mark moves (``advance``).

A row found by :func:`pending` therefore means "delivered or not, nobody knows": the flow's
next leader checks the partner's side and finishes the job (``edigw.outbound.pending``).
The functions take a connection inside a transaction; ``Journal`` opens it and translates
errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from edigw.journal.schema import export_deliveries, export_runs


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """An export file recorded as on its way whose run was never finished."""

    run_id: int
    partner: str
    flow: str
    window_from: datetime | None
    file_name: str
    sha256: str
    size: int
    archive_path: str | None
    records: int
    calls: int
    mark_at: datetime | None
    boundary: str | None


def record(
    conn: Connection,
    run_id: int,
    *,
    file_name: str,
    sha256: str,
    size: int,
    archive_path: str | None,
    records: int,
    calls: int,
    mark_at: datetime | None,
    boundary: str | None,
    now: datetime,
) -> None:
    """Say that run ``run_id`` is about to deliver this file and then move the mark."""
    conn.execute(
        insert(export_deliveries).values(
            run_id=run_id,
            file_name=file_name,
            sha256=sha256,
            size=size,
            archive_path=archive_path,
            records=records,
            calls=calls,
            mark_at=mark_at,
            boundary=boundary,
            recorded_at=now,
        )
    )


def complete(conn: Connection, run_id: int) -> None:
    """Forget the delivery of run ``run_id`` (its run is being finished in this transaction)."""
    conn.execute(delete(export_deliveries).where(export_deliveries.c.run_id == run_id))


def pending(conn: Connection, partner: str, flow: str) -> list[PendingDelivery]:
    """The flow's deliveries recorded and never completed, oldest first."""
    d, r = export_deliveries.c, export_runs.c
    query = (
        select(
            d.run_id,
            r.partner,
            r.flow,
            r.window_from,
            d.file_name,
            d.sha256,
            d.size,
            d.archive_path,
            d.records,
            d.calls,
            d.mark_at,
            d.boundary,
        )
        .join(export_runs, r.id == d.run_id)
        .where(r.partner == partner, r.flow == flow)
        .order_by(d.run_id)
    )
    return [PendingDelivery(**dict(m)) for m in conn.execute(query).mappings()]
