"""Small computed values in mappings: Jinja2 expressions in an immutable sandbox.

A consultant writes ``expr: "record['First name'] ~ ' ' ~ record['Last name']"``; it is compiled
once at load time and evaluated per record. The sandbox refuses access to Python internals
(``__class__``, ``mro``, ...) and any mutation; nothing here ever calls ``eval``/``exec``.

Names available in an expression:

- ``value``: the field's source value (after ``from:`` and trimming), when the field has one;
- ``record``: the current record; ``record['Qty']`` or ``record.Qty`` reads a column, XPath,
  cell header or flat-file field, exactly like ``from:``;
- ``records``: every record of the document (grouped and whole-file documents).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edigw.model import Record

Expression = Callable[..., Any]


class RecordView:
    """What an expression sees of a record: read-only access by selector, nothing else."""

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    def __getitem__(self, selector: str) -> Any:
        return self._record.value(selector)

    def __contains__(self, selector: str) -> bool:
        return self._record.value(selector) is not None


class ExpressionError(Exception):
    """An expression failed on a value (raised per record, reported as a data problem)."""


def make_environment() -> ImmutableSandboxedEnvironment:
    """The one sandbox every mapping compiles its expressions with."""
    return ImmutableSandboxedEnvironment(autoescape=False)


def compile_expression(env: ImmutableSandboxedEnvironment, source: str) -> Expression:
    """Compile ``source`` once; raises ``ValueError`` with the syntax error for the loader."""
    try:
        compiled = env.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as exc:
        msg = f"invalid expression {source!r}: {exc.message}"
        raise ValueError(msg) from exc

    def evaluate(**names: Any) -> Any:
        try:
            return compiled(**names)
        except SecurityError as exc:
            msg = f"expression {source!r} is not allowed: {exc}"
            raise ExpressionError(msg) from exc
        except (UndefinedError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            msg = f"expression {source!r} failed: {exc}"
            raise ExpressionError(msg) from exc

    return evaluate


def views(records: Sequence[Record]) -> list[RecordView]:
    return [RecordView(r) for r in records]
