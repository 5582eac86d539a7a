"""The shared call budget's count kept, not recounted: ``call_budget_held``.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08

``edigw_take_call_slot`` (0018) counted the agreement's rows on every call: under load the
table holds up to N rows per agreement (N calls a minute), so each call read N rows. At 1,000
rows it cost 0.38 ms of the server's CPU a call, more than any other journal statement of a
document. Now:

- ``call_budget_held`` keeps, per agreement, how many of its rows are in the table. Only the
  function inserts and deletes rows, under the agreement's advisory lock, and it updates the
  count in the same transaction: the count stays exact.
- The rows that left the window are sought by ``(agreement, started_at)``: a call that no
  longer counts started before the window did, so the delete reads only those.
- When the kept count says the budget is full, the function counts the rows themselves before
  refusing, and keeps that count: a count gone wrong (rows deleted by hand) heals at the next
  refusal, and the oldest call, which the wait needs, is read only then.

After the delete every row left still counts (its call ended within the window, or is in
flight), so the number of rows is the number of calls that count: the rule of 0018 unchanged.

- **Slots taken ahead** (``p_want``): a node sending fast takes up to ``p_want`` slots in one
  round trip and hands them to its next calls (``edigw/journal/budget.py``). Never more than
  one while the agreement's calls fill half of it: a budget near its limit is shared call by
  call, as before. The function returns its slots as an array; 0018's signature is replaced.
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_0018 = importlib.import_module("edigw.journal.migrations.versions.0018_call_slot_function")
BEFORE = _0018.SIGNATURE
SIGNATURE = (
    "edigw_take_call_slots(text, text, integer, integer, integer, double precision,"
    " double precision, integer)"
)

FUNCTION = """
CREATE FUNCTION edigw_take_call_slots(
    p_agreement text, p_node text, p_lock_class integer, p_lock_key integer,
    p_calls integer, p_period double precision, p_lease double precision, p_want integer,
    OUT slots bigint[], OUT wait double precision)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    now_t timestamptz;
    window_start timestamptz;
    lease interval := make_interval(secs => p_lease);
    kept integer;
    held integer;
    gone integer;
    taking integer;
    oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_class, p_lock_key);
    now_t := clock_timestamp();
    window_start := now_t - make_interval(secs => p_period);
    WITH expired AS (
        DELETE FROM call_budget b
        WHERE b.agreement = p_agreement
          AND b.started_at <= window_start
          AND COALESCE(b.completed_at, b.started_at + lease) <= window_start
        RETURNING 1
    )
    SELECT count(*) INTO gone FROM expired;
    SELECT h.held INTO kept FROM call_budget_held h WHERE h.agreement = p_agreement;
    held := kept - gone;
    IF kept IS NULL OR held >= p_calls THEN
        SELECT count(*), min(e.ended) FILTER (WHERE e.ended <= now_t)
        INTO held, oldest
        FROM (
            SELECT COALESCE(b.completed_at, b.started_at + lease) AS ended
            FROM call_budget b WHERE b.agreement = p_agreement
        ) e;
    END IF;
    IF held < p_calls THEN
        taking := greatest(1, least(p_want, p_calls / 2 - held));
        WITH taken AS (
            INSERT INTO call_budget (agreement, node, started_at)
            SELECT p_agreement, p_node, now_t FROM generate_series(1, taking)
            RETURNING id
        )
        SELECT array_agg(id ORDER BY id) INTO slots FROM taken;
        held := held + taking;
    ELSE
        wait := EXTRACT(EPOCH FROM oldest + make_interval(secs => p_period) - now_t);
    END IF;
    IF kept IS DISTINCT FROM held THEN
        INSERT INTO call_budget_held (agreement, held) VALUES (p_agreement, held)
        ON CONFLICT (agreement) DO UPDATE SET held = EXCLUDED.held;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "call_budget_held",
        sa.Column("agreement", sa.String(length=300), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agreement", name=op.f("pk_call_budget_held")),
    )
    op.drop_index(op.f("ix_call_budget_agreement"), table_name="call_budget")
    op.create_index(
        op.f("ix_call_budget_agreement_started_at"),
        "call_budget",
        ["agreement", "started_at"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {BEFORE}")
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {SIGNATURE}")
        op.execute(_0018.FUNCTION)
    op.drop_index(op.f("ix_call_budget_agreement_started_at"), table_name="call_budget")
    op.create_index(op.f("ix_call_budget_agreement"), "call_budget", ["agreement"], unique=False)
    op.drop_table("call_budget_held")
