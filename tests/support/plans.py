"""How PostgreSQL plans the journal's prepared statements: the statement a journal call ran,
then its generic plan or the plans the server chose when it ran prepared again and again.

The hot statements run prepared (psycopg prepares a statement once it is frequent). After five
runs PostgreSQL compares a generic plan, made once for all values, with the plans it made for
each run's values, and keeps planning at every run unless the generic plan is as cheap: a
statement must both reach that plan and stay a seek in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from edigw.journal import Journal

#: A statement as sent to the driver, and its parameters.
Sent = tuple[str, dict[str, Any]]


@contextmanager
def statements_run(journal: Journal, prefix: str) -> Iterator[list[Sent]]:
    """Every statement ``journal`` runs meanwhile that starts with ``prefix``."""
    seen: list[Sent] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        if statement.lstrip().startswith(prefix):
            seen.append((statement, dict(params)))

    engines = [e for e in (journal._engine, journal._lazy_engine) if e is not None]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def generic_plan(url: str, sent: Sent) -> str:
    """The plan PostgreSQL makes of ``sent`` once for all values (``EXPLAIN EXECUTE`` under
    ``plan_cache_mode = force_generic_plan``), in a transaction rolled back."""
    statement, params = sent
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as raw:
        raw.execute(statement, params, prepare=True)
        # the connection's only statement prepared by the protocol, not by PREPARE
        [(name,)] = raw.execute(
            "SELECT name FROM pg_prepared_statements WHERE NOT from_sql"
        ).fetchall()
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
        values = [params[n] for n in names]
        marks = ", ".join(["%s"] * len(values))
        raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = psycopg.ClientCursor(raw).execute(f"EXPLAIN EXECUTE {name}({marks})", values)
        plan = "\n".join(row[0] for row in rows)
        raw.rollback()
    return plan


def plans_chosen(url: str, sent: Sent, *, runs: int = 12) -> tuple[int, int]:
    """(generic, custom): the plans PostgreSQL used over ``runs`` runs of ``sent`` prepared,
    choosing freely (``plan_cache_mode = auto``). Each run commits its work (a rollback
    would make psycopg deallocate the statement)."""
    statement, params = sent
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as raw:
        raw.execute("ANALYZE")  # as autovacuum would have: the statistics of a busy journal
        for _ in range(runs):
            raw.execute(statement, params, prepare=True)
        found = raw.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE NOT from_sql"
        ).fetchall()
    [(generic, custom)] = found
    return int(generic), int(custom)
