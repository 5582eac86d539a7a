"""Small computed values in mappings: Jinja2 expressions in a bounded, immutable sandbox.

A consultant writes ``expr: "record['First name'] ~ ' ' ~ record['Last name']"``; it is compiled
once at load time and evaluated per record. The sandbox (:mod:`edigw.jinja_sandbox`) refuses
access to Python internals (``__class__``, ``mro``, ...) and any mutation, and bounds each
evaluation: strings, lists and numbers it builds, work and time (``'x' * 10**9`` fails that
document with the limit it broke instead of eating the gateway's memory). Nothing here ever
calls ``eval``/``exec``.

Names available in an expression:

- ``value``: the field's source value (after ``from:`` and trimming), when the field has one;
  a ``Decimal`` for a ``type: decimal`` field whose value reads as a number;
- ``record``: the current record; ``record['Qty']`` or ``record.Qty`` reads a column, XPath,
  cell header or flat-file field, exactly like ``from:``;
- ``records``: every record of the document (grouped and whole-file documents);
- ``lookup(table, key[, column])``, ``round_half_up(x, places)``, ``round_half_even(x,
  places)`` and the ``decimal`` filter: amounts are computed exactly (:mod:`.exact`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import DivisionByZero, InvalidOperation
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from edigw.jinja_sandbox import EXPRESSION_LIMITS, BoundedEnvironment, Budget, LimitExceeded, Limits
from edigw.mapping.exact import (
    ExactEnvironment,
    exact_number,
    mixed_float_message,
    number_reader,
    to_decimal,
)
from edigw.mapping.filters import fingerprint
from edigw.model import Location, Record

Expression = Callable[..., Any]

__all__ = [
    "Expression",
    "ExpressionError",
    "ReadingView",
    "RecordView",
    "compile_expression",
    "make_environment",
    "number_reader",
    "to_decimal",
]


class RecordView:
    """What an expression sees of a record: read-only access by selector, nothing else.

    An Excel number reads as a whole number or a ``Decimal``, never a float.
    """

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    def __getitem__(self, selector: str) -> Any:
        value = self._record.value(selector)
        return exact_number(value) if value.__class__ is float else value

    def __contains__(self, selector: str) -> bool:
        return self._record.value(selector) is not None


class ReadingView(RecordView):
    """A record view that notes where each value it hands out sits (``seen``): how a traced
    document tells which cells a computed value came from."""

    __slots__ = ("_seen",)

    def __init__(self, record: Record, seen: list[Location]) -> None:
        super().__init__(record)
        self._seen = seen

    def __getitem__(self, selector: str) -> Any:
        self._note(selector)
        return super().__getitem__(selector)

    def __contains__(self, selector: str) -> bool:
        self._note(selector)
        return super().__contains__(selector)

    def _note(self, selector: str) -> None:
        try:
            self._seen.append(self._record.where(selector))
        except Exception:  # tracing must never change what is computed
            self._seen.append(self._record.location)


class ExpressionError(Exception):
    """An expression failed on a value (raised per record, reported as a data problem)."""


def make_environment(
    limits: Limits = EXPRESSION_LIMITS,
    *,
    decimal_sep: str = ".",
    thousands: str = "",
    lookup: Callable[..., Any] | None = None,
) -> BoundedEnvironment:
    """The one sandbox every mapping compiles its expressions with (exact decimals, see
    :mod:`edigw.mapping.exact`). ``lookup`` is the mapping's ``lookup()`` over the tables it
    loaded; without it, ``lookup()`` is known (to ``mapping check``) but finds no table."""
    env = ExactEnvironment(
        autoescape=False, limits=limits, decimal_sep=decimal_sep, thousands=thousands
    )
    env.globals["lookup"] = lookup if lookup is not None else _no_tables
    env.filters["fingerprint"] = fingerprint
    return env


def _no_tables(table: Any, key: Any, column: Any = None, **options: Any) -> Any:
    msg = f"lookup table {table!r} is not loaded"
    raise LookupError(msg)


def compile_expression(env: BoundedEnvironment, source: str) -> Expression:
    """Compile ``source`` once; raises ``ValueError`` with the syntax error for the loader.

    Each evaluation has a budget of its own (``env.limits``): an expression over it fails the
    record it was evaluated for, and so its document, never the gateway.
    """
    try:
        compiled = env.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as exc:
        msg = f"invalid expression {source!r}: {exc.message}"
        raise ValueError(msg) from exc
    limits = env.limits

    def evaluate(**names: Any) -> Any:
        previous = env.begin(Budget(limits))
        try:
            return compiled(**names)
        except LimitExceeded as exc:
            msg = f"expression {source!r} stopped: {exc.message}"
            raise ExpressionError(msg) from exc
        except SecurityError as exc:
            msg = f"expression {source!r} is not allowed: {exc.message}"
            raise ExpressionError(msg) from exc
        except TypeError as exc:
            why = mixed_float_message(exc)
            msg = f"expression {source!r} {why}" if why else f"expression {source!r} failed: {exc}"
            raise ExpressionError(msg) from exc
        except (UndefinedError, ArithmeticError, ValueError, LookupError) as exc:
            msg = f"expression {source!r} failed: {_reason(exc)}"
            raise ExpressionError(msg) from exc
        finally:
            env.end(previous)

    return evaluate


def _reason(exc: Exception) -> str:
    """An error's text for people: decimal errors have none of their own."""
    if isinstance(exc, DivisionByZero | ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, InvalidOperation):
        return "not a valid decimal operation (0 / 0, or a value that is no number)"
    return str(exc)


def views(records: Sequence[Record]) -> list[RecordView]:
    return [RecordView(r) for r in records]
