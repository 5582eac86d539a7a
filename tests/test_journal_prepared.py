"""A prepared statement behaves as SQLAlchemy's own, and skips its machinery.

``edigw.journal.prepared``: the journal's hot statements are compiled once and run on the
driver (``sqlite3``, ``psycopg``). Whatever takes that path must give the same rows, the same
conversions, the same errors and the same events as ``Connection.execute`` would; what can't
is sent through SQLAlchemy. Each behaviour is checked against SQLAlchemy running the same
statement, on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc

from edigw.journal.dialect import sqlite_engine, translated
from edigw.journal.errors import JournalRefused
from edigw.journal.prepared import DriverResult, Prepared
from edigw.journal.schema import UtcDateTime

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("state", String(10), nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("at", UtcDateTime(), nullable=True),
)
INSERT = insert(items)
BY_ID = select(items.c.name, items.c.state, items.c.flagged, items.c.at).where(
    items.c.id == bindparam("item")
)
# ``state`` is held by the statement; ``now`` and ``item`` come with each call.
SETTLE = (
    update(items)
    .where(items.c.id == bindparam("item"))
    .values(state="settled", at=bindparam("now", type_=UtcDateTime()))
    .returning(items.c.id, items.c.state, items.c.flagged)
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The journal's own kind of SQLite engine (WAL, ``BEGIN IMMEDIATE``), then PostgreSQL,
    with the table."""
    if request.param == "sqlite":
        made = sqlite_engine(f"sqlite:///{tmp_path / 'prepared.sqlite'}", synchronous="NORMAL")
    else:
        made = create_engine(request.getfixturevalue("postgres_url"))
    metadata.create_all(made)
    yield made
    made.dispose()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    made = sqlite_engine(f"sqlite:///{tmp_path / 'prepared.sqlite'}", synchronous="NORMAL")
    metadata.create_all(made)
    yield made
    made.dispose()


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Engine]:
    made = create_engine(postgres_url)
    metadata.create_all(made)
    yield made
    made.dispose()


def add(engine: Engine, statement: object, **values: object) -> None:
    row = {"name": "a", "state": "new", "flagged": True, "at": T0} | values
    with engine.begin() as conn:
        conn.execute(statement, row)  # type: ignore[call-overload]


def test_rows_come_back_converted_as_sqlalchemy_converts_them(engine: Engine) -> None:
    add(engine, INSERT, at=T0.astimezone(timezone(timedelta(hours=1))))
    with engine.connect() as conn:
        fast = conn.execute(Prepared(BY_ID), {"item": 1})
        slow = conn.execute(BY_ID, {"item": 1})
        assert isinstance(fast, DriverResult)
        assert fast.mappings().all() == slow.mappings().all()
    with engine.connect() as conn:
        row = conn.execute(Prepared(BY_ID), {"item": 1}).one()
    assert row.at == T0
    assert row.at.tzinfo is not None
    assert row.flagged is True


def test_an_insert_on_the_driver_counts_its_row_and_its_id(sqlite: Engine) -> None:
    with sqlite.begin() as conn:
        result = conn.execute(
            Prepared(INSERT), {"name": "b", "state": "new", "flagged": False, "at": None}
        )
        assert isinstance(result, DriverResult)
        assert result.rowcount == 1
        assert result.lastrowid == 1
    with sqlite.connect() as conn:
        assert conn.execute(BY_ID, {"item": 1}).one() == ("b", "new", False, None)


def test_values_held_by_the_statement_are_sent_with_those_of_the_call(engine: Engine) -> None:
    add(engine, INSERT, flagged=False)
    later = T0 + timedelta(minutes=5)
    with engine.begin() as conn:
        settled = conn.execute(Prepared(SETTLE), {"item": 1, "now": later}).mappings().first()
    assert settled == {"id": 1, "state": "settled", "flagged": False}
    with engine.connect() as conn:
        assert conn.execute(BY_ID, {"item": 1}).one().at == later


def test_several_rows_go_in_one_executemany(engine: Engine) -> None:
    seen: list[bool] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[-1]))
    rows = [{"name": f"n{i}", "state": "new", "flagged": i % 2 == 0, "at": T0} for i in range(3)]
    with engine.begin() as conn:
        assert conn.execute(Prepared(INSERT), rows).rowcount == 3
    assert seen == [True]
    with engine.connect() as conn:
        assert conn.execute(select(items.c.flagged).order_by(items.c.id)).scalars().all() == [
            True,
            False,
            True,
        ]


def test_several_rows_with_returning_go_one_by_one_and_come_back_in_order(
    sqlite: Engine,
) -> None:
    seen: list[bool] = []
    event.listen(sqlite, "before_cursor_execute", lambda *args: seen.append(args[-1]))
    numbered = Prepared(
        insert(items).returning(items.c.id, items.c.name, sort_by_parameter_order=True)
    )
    rows = [{"name": f"n{i}", "state": "new", "flagged": True, "at": T0} for i in (3, 1, 2)]
    with sqlite.begin() as conn:
        result = conn.execute(numbered, rows)
        assert isinstance(result, DriverResult)
        assert result.all() == [(1, "n3"), (2, "n1"), (3, "n2")]
        assert result.rowcount == 3
    assert seen == [False, False, False]


def test_an_expanding_parameter_takes_sqlalchemys_path(engine: Engine) -> None:
    add(engine, INSERT, name="x")
    add(engine, INSERT, name="y")
    named = Prepared(select(items.c.id).where(items.c.name.in_(bindparam("names", expanding=True))))
    with engine.connect() as conn:
        result = conn.execute(named, {"names": ["x", "y", "z"]})
        assert not isinstance(result, DriverResult)
        assert sorted(result.scalars()) == [1, 2]


def test_a_textual_statement_takes_sqlalchemys_path_and_its_rows_come_back(
    engine: Engine,
) -> None:
    add(engine, INSERT, name="t")
    textual = Prepared(text("SELECT name, state FROM items WHERE id = :item"))
    with engine.connect() as conn:
        result = conn.execute(textual, {"item": 1})
        assert not isinstance(result, DriverResult)
        assert result.one() == ("t", "new")


def test_cursor_listeners_see_a_statement_run_on_the_driver(engine: Engine) -> None:
    before: list[str] = []
    after: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: before.append(args[2]))
    event.listen(engine, "after_cursor_execute", lambda *args: after.append(args[2]))
    add(engine, Prepared(INSERT))
    assert len(before) == 1
    assert before == after
    assert before[0].startswith("INSERT INTO items (name, state, flagged, at) VALUES (")


def test_a_refusal_of_the_database_is_sqlalchemys_error(engine: Engine) -> None:
    add(engine, INSERT, name="same")
    with pytest.raises(sa_exc.IntegrityError, match=r"(?i)unique"):
        add(engine, Prepared(INSERT), name="same")
    with (
        pytest.raises(JournalRefused, match=r"cannot add an item: .*(?i:unique)"),
        translated("add an item"),
    ):
        add(engine, Prepared(INSERT), name="same")


def test_a_value_its_type_refuses_is_a_statement_error_as_in_sqlalchemy(engine: Engine) -> None:
    naive = datetime(2026, 12, 7, 9, 30)
    with pytest.raises(sa_exc.StatementError, match="timezone-aware") as slow:
        add(engine, INSERT, at=naive)
    with pytest.raises(sa_exc.StatementError, match="timezone-aware") as fast:
        add(engine, Prepared(INSERT), at=naive)
    assert type(fast.value.orig) is type(slow.value.orig) is ValueError


def test_a_missing_value_is_refused_before_anything_is_sent(engine: Engine) -> None:
    add(engine, INSERT)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with (
        pytest.raises(sa_exc.StatementError, match="value is required for bind parameter 'now'"),
        engine.begin() as conn,
    ):
        conn.execute(Prepared(SETTLE), {"item": 1})
    assert sent == []


@pytest.mark.postgres
def test_several_rows_with_returning_go_in_one_insert_on_postgresql(postgres: Engine) -> None:
    seen: list[str] = []
    event.listen(postgres, "before_cursor_execute", lambda *args: seen.append(args[2]))
    numbered = Prepared(
        insert(items).returning(items.c.id, items.c.name, sort_by_parameter_order=True)
    )
    rows = [{"name": f"n{i}", "state": "new", "flagged": True, "at": T0} for i in (3, 1, 2)]
    with postgres.begin() as conn:
        result = conn.execute(numbered, rows)
        assert not isinstance(result, DriverResult)  # SQLAlchemy's multi-row INSERT
        assert result.all() == [(1, "n3"), (2, "n1"), (3, "n2")]
    assert len(seen) == 1


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_invalidated_on_postgresql(postgres: Engine) -> None:
    with postgres.connect() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.rollback()
        with postgres.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
        with pytest.raises(sa_exc.OperationalError) as dropped:
            conn.execute(Prepared(BY_ID), {"item": 1})
        assert dropped.value.connection_invalidated
        assert conn.invalidated
    with postgres.connect() as conn:  # the pool gives a working connection again
        assert isinstance(conn.execute(Prepared(BY_ID), {"item": 1}), DriverResult)
