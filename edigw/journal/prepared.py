"""The journal's hot statements, compiled once and sent straight to SQLite's driver.

``Connection.execute`` costs about 20 µs of Python a statement on top of SQLite's own 3–5 µs
(cache key, execution context, parameter and result set-up), and 60–70 µs of CPU a statement
in the running gateway, where every extra bytecode also waits its turn at the interpreter
lock. A sender's document takes some 16 statements. A :class:`Prepared` statement is
compiled once per set of parameter names and run on the driver's cursor with the same
parameter and result conversions SQLAlchemy would apply, so callers keep writing
``conn.execute(statement, params)`` and reading the usual ``Result``. Several parameter sets
go in one ``executemany``, or one by one in their order when rows come back (the driver's
``executemany`` returns none).

Only what can be done exactly the same way takes the short path: a statement with
expanding or literal parameters or Python-side defaults goes through SQLAlchemy unchanged,
as does every statement on PostgreSQL, where a round trip dwarfs the Python and SQLAlchemy
keeps its handling of dropped connections. SQLAlchemy's ``before_cursor_execute`` and
``after_cursor_execute`` events still fire, and driver errors are raised as SQLAlchemy's, so
``dialect.translated`` and every listener see no difference.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None
_NO_COLUMNS = SimpleResultMetaData(())


class _Plan(NamedTuple):
    """One compiled form of a statement: what the driver gets and how rows come back."""

    sql: str
    compiled: SQLCompiler
    order: tuple[str, ...]  # the parameters' names, in the order of the SQL's placeholders
    defaults: dict[str, Any]  # values the statement itself holds, for names not given
    binds: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, conversion), where needed
    metadata: SimpleResultMetaData | None  # the result's columns; None: no rows come back
    results: tuple[_Processor, ...]
    returning: bool


class DriverResult(IteratorResult[Any]):
    """The rows of a statement run on the driver, with the cursor's counts.

    A ``Result`` like SQLAlchemy's own (``first``, ``mappings``, ``scalars``...); ``rowcount``
    and ``lastrowid`` as ``CursorResult`` has them."""

    rowcount: int
    lastrowid: int | None


class Prepared(Executable):
    """A statement that runs on SQLite's driver directly (see the module's docstring)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # (dialect, parameter names, several sets) -> plan, or None: SQLAlchemy's path.
        self._plans: dict[tuple[type, tuple[str, ...], bool], _Plan | None] = {}

    def __repr__(self) -> str:
        return f"Prepared({self.statement})"

    def _execute_on_connection(
        self,
        connection: Connection,
        distilled_params: Sequence[Mapping[str, Any]],
        execution_options: Any,
    ) -> Any:
        """Called by ``Connection.execute``: SQLAlchemy's protocol for what it can run."""
        dialect = connection.dialect
        if dialect.driver != "pysqlite" or execution_options:
            return self.statement._execute_on_connection(  # type: ignore[attr-defined]
                connection, distilled_params, execution_options
            )
        keys = tuple(sorted(distilled_params[0])) if distilled_params else ()
        many = len(distilled_params) > 1
        plan = self._plan_for(dialect, keys, many=many)
        if plan is not None and many and plan.returning:
            # SQLite's executemany returns no rows: each set on its own, in their order.
            plan = self._plan_for(dialect, keys, many=False)
            if plan is not None:
                return _run(connection, plan, distilled_params, each=True)
        if plan is None:
            return self.statement._execute_on_connection(  # type: ignore[attr-defined]
                connection, distilled_params, execution_options
            )
        return _run(connection, plan, distilled_params, each=False)

    def _plan_for(self, dialect: Dialect, keys: tuple[str, ...], *, many: bool) -> _Plan | None:
        plan_key = (type(dialect), keys, many)  # one SQLite library a process
        try:
            return self._plans[plan_key]
        except KeyError:
            plan = self._plans[plan_key] = _plan(self.statement, dialect, keys, many=many)
            return plan


def _plan(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...], *, many: bool
) -> _Plan | None:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=dialect, column_keys=list(keys), for_executemany=many
    )
    assert isinstance(compiled, SQLCompiler)
    if (
        compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or any(b.expanding or b.callable is not None for b in compiled.binds.values())
    ):
        return None
    order = tuple(compiled.positiontup)
    binds: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(order):
        convert = compiled._bind_processors.get(name)
        if callable(convert):
            binds.append((position, convert))
        elif convert is not None:  # a tuple's conversions, one per element
            return None
    metadata: SimpleResultMetaData | None = None
    results: tuple[_Processor, ...] = ()
    if compiled._result_columns:
        metadata = SimpleResultMetaData([column.keyname for column in compiled._result_columns])
        results = tuple(
            column.type._cached_result_processor(dialect, None)
            for column in compiled._result_columns
        )
    defaults = {name: bind.value for bind, name in compiled.bind_names.items() if not bind.required}
    return _Plan(
        compiled.string,
        compiled,
        order,
        defaults,
        tuple(binds),
        metadata,
        results,
        bool(compiled.effective_returning),
    )


def _driver_params(plan: _Plan, params: Mapping[str, Any]) -> list[Any]:
    try:
        row = [params[name] if name in params else plan.defaults[name] for name in plan.order]
    except KeyError:
        plan.compiled.construct_params(params)  # raises SQLAlchemy's own error: value missing
        raise
    for position, convert in plan.binds:
        row[position] = convert(row[position])
    return row


def _run(
    connection: Connection,
    plan: _Plan,
    distilled_params: Sequence[Mapping[str, Any]],
    *,
    each: bool,
) -> DriverResult:
    """Run ``plan`` with every parameter set: in one ``executemany``, or ``each`` on its own
    (rows to return); the rows come back converted, in the order of the sets."""
    try:
        parameters = [_driver_params(plan, p) for p in distilled_params or [{}]]
    except Exception as err:  # a value its type refuses, one missing: as SQLAlchemy says it
        message = f"({type(err).__module__}.{type(err).__name__}) {err}"
        raise exc.StatementError(message, plan.sql, distilled_params, err) from err
    driver = connection.connection.dbapi_connection
    assert driver is not None  # an open connection
    events = (connection._has_events or connection.engine._has_events) and bool(
        connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute
    )
    batches: list[tuple[Any, bool]] = (
        [(p, False) for p in parameters] if each or len(parameters) == 1 else [(parameters, True)]
    )
    raw: list[Any] = []
    rowcount, lastrowid = 0, None
    cursor = driver.cursor()
    try:
        for batch, many in batches:
            if events:
                connection.dispatch.before_cursor_execute(
                    connection, cursor, plan.sql, batch, None, many
                )
            if many:
                cursor.executemany(plan.sql, batch)
            else:
                cursor.execute(plan.sql, batch)
            if plan.metadata is not None:
                raw.extend(cursor.fetchall())
            if events:
                connection.dispatch.after_cursor_execute(
                    connection, cursor, plan.sql, batch, None, many
                )
            rowcount += max(cursor.rowcount, 0)
            lastrowid = cursor.lastrowid
    except sqlite3.Error as err:
        raise exc.DBAPIError.instance(
            plan.sql, parameters, err, sqlite3.Error, dialect=connection.dialect
        ) from err
    finally:
        cursor.close()
    if plan.metadata is None:
        result = DriverResult(_NO_COLUMNS, iter(()))
    else:
        if any(plan.results):
            raw = [
                tuple(v if p is None else p(v) for v, p in zip(row, plan.results, strict=True))
                for row in raw
            ]
        result = DriverResult(plan.metadata, iter(raw))
    result.rowcount = rowcount
    result.lastrowid = lastrowid
    return result
