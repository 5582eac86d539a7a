"""The journal's hot statements, compiled once and sent straight to the database's driver.

``Connection.execute`` costs about 20 µs of Python a statement on top of SQLite's own 3–5 µs
(cache key, execution context, parameter and result set-up), and 60–70 µs of CPU a statement
in the running gateway, where every extra bytecode also waits its turn at the interpreter
lock. A sender's document takes some 16 statements. A :class:`Prepared` statement is
compiled once per set of parameter names and run on the driver's cursor (``sqlite3`` or
``psycopg``) with the same parameter and result conversions SQLAlchemy would apply, so callers
keep writing ``conn.execute(statement, params)`` and reading the usual ``Result``. Several
parameter sets go in one ``executemany``; when rows come back, one by one in their order on
SQLite (its ``executemany`` returns none), and through SQLAlchemy's one multi-row ``INSERT``
on PostgreSQL (one round trip for them all).

Only what can be done exactly the same way takes the short path: a statement with
expanding or literal parameters or Python-side defaults goes through SQLAlchemy unchanged, as
does any other driver. SQLAlchemy's ``before_cursor_execute`` and ``after_cursor_execute``
events still fire, and a driver's error goes through SQLAlchemy's own handling (its exception
classes, a dropped connection invalidated), so ``dialect.translated`` and every listener see
no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import Select
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

_Processor = Callable[[Any], Any] | None
_DRIVERS = ("pysqlite", "psycopg")
_NO_COLUMNS = SimpleResultMetaData(())


class _Plan(NamedTuple):
    """One compiled form of a statement: what the driver gets and how rows come back."""

    sql: str
    compiled: SQLCompiler
    order: tuple[str, ...]  # the parameters' names, in the order of the SQL's placeholders
    named: bool  # the driver takes a dict (psycopg's %(name)s), else a list (SQLite's ?)
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
    """A statement that runs on the driver directly (see the module's docstring)."""

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
        if dialect.driver not in _DRIVERS or execution_options:
            return self.statement._execute_on_connection(  # type: ignore[attr-defined]
                connection, distilled_params, execution_options
            )
        keys = tuple(sorted(distilled_params[0])) if distilled_params else ()
        many = len(distilled_params) > 1
        plan = self._plan_for(dialect, keys, many=many)
        each = many and plan is not None and plan.returning
        if each and plan is not None:
            # SQLite's executemany returns no rows: each set on its own, in their order.
            # PostgreSQL: SQLAlchemy's one multi-row INSERT, one round trip for them all.
            plan = None if plan.named else self._plan_for(dialect, keys, many=False)
        if plan is None:
            return self.statement._execute_on_connection(  # type: ignore[attr-defined]
                connection, distilled_params, execution_options
            )
        return _run(connection, plan, distilled_params, each=each)

    def _plan_for(self, dialect: Dialect, keys: tuple[str, ...], *, many: bool) -> _Plan | None:
        plan_key = (type(dialect), keys, many)  # one library of each driver a process
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
    named = not dialect.positional
    if (
        (compiled.positiontup is None and not named)
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or any(b.expanding or b.callable is not None for b in compiled.binds.values())
    ):
        return None
    if not isinstance(statement, Select | UpdateBase) or (
        compiled.effective_returning and not compiled._result_columns
    ):
        return None  # text, or rows whose columns only the cursor knows: SQLAlchemy reads them
    order = tuple(
        dict.fromkeys(compiled.bind_names.values()) if named else compiled.positiontup or ()
    )
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
        named,
        defaults,
        tuple(binds),
        metadata,
        results,
        bool(compiled.effective_returning),
    )


def _driver_params(plan: _Plan, params: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
    try:
        row = [params[name] if name in params else plan.defaults[name] for name in plan.order]
    except KeyError:
        plan.compiled.construct_params(params)  # raises SQLAlchemy's own error: value missing
        raise
    for position, convert in plan.binds:
        row[position] = convert(row[position])
    return dict(zip(plan.order, row, strict=True)) if plan.named else row


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
            lastrowid = getattr(cursor, "lastrowid", None)  # psycopg has none
    except _driver_error(connection) as err:
        # SQLAlchemy's own handling: its exception class, its handle_error events, and a
        # connection the database dropped invalidated (with the pool, on PostgreSQL).
        connection._handle_dbapi_exception(err, plan.sql, parameters, cursor, None)
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


def prepare_attributes(holder: object) -> None:
    """Make every statement among ``holder``'s attributes a :class:`Prepared` one (the
    journal's sets of statements, built once per journal)."""
    for name, statement in list(vars(holder).items()):
        if isinstance(statement, Executable):
            setattr(holder, name, Prepared(statement))


def _driver_error(connection: Connection) -> type[Exception]:
    """The driver's base exception class (``sqlite3.Error``, ``psycopg.Error``)."""
    error: type[Exception] = connection.dialect.loaded_dbapi.Error
    return error
