"""The shared call budget's slot taken in one round trip: ``edigw_take_call_slot``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Taking a slot of the call budget shared by the nodes of a PostgreSQL journal was four round
trips from the node: ``BEGIN``, the agreement's advisory lock, the statement that counts and
inserts, ``COMMIT``. Each is a wait for the network and, in a busy node, for the interpreter
lock, and the advisory lock was held across the last three, so every node's senders queued
behind them. The function does the same in the server, called in autocommit: one round trip,
and the lock is held only while the server works. The rule, the lock and the table are those
of ``edigw/journal/budget.py``; its docstring says why they make the budget exact.

Each statement of a volatile PL/pgSQL function sees a fresh snapshot (read committed), so the
count, taken after the lock, sees every slot committed by the node that held it before.
SQLite journals have no shared budget: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: The ledger's rule in the server. ``ended``: a call's completion, or for a call still in
#: flight past its lease (a crashed node), its start plus the lease. ``slot`` is the row taken,
#: or NULL with ``wait`` the seconds until the oldest completed call leaves the window (NULL
#: when every counted call is still in flight).
FUNCTION = """
CREATE OR REPLACE FUNCTION edigw_take_call_slot(
    p_agreement text, p_node text, p_lock_class integer, p_lock_key integer,
    p_calls integer, p_period double precision, p_lease double precision,
    OUT slot bigint, OUT wait double precision)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    now_t timestamptz;
    window_start timestamptz;
    held integer;
    oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);
    now_t := clock_timestamp();
    window_start := now_t - make_interval(secs => p_period);
    DELETE FROM call_budget b
    WHERE b.agreement = p_agreement
      AND COALESCE(b.completed_at, b.started_at + make_interval(secs => p_lease)) <= window_start;
    SELECT count(*), min(e.ended) FILTER (WHERE e.ended <= now_t)
    INTO held, oldest
    FROM (
        SELECT COALESCE(b.completed_at, b.started_at + make_interval(secs => p_lease)) AS ended
        FROM call_budget b WHERE b.agreement = p_agreement
    ) e
    WHERE e.ended > window_start;
    IF held < p_calls THEN
        INSERT INTO call_budget (agreement, node, started_at)
        VALUES (p_agreement, p_node, now_t)
        RETURNING id INTO slot;
    ELSE
        wait := EXTRACT(EPOCH FROM oldest + make_interval(secs => p_period) - now_t);
    END IF;
END
$$
"""

SIGNATURE = (
    "edigw_take_call_slot(text, text, integer, integer, integer, double precision,"
    " double precision)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
