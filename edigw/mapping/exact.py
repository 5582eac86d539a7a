"""Exact arithmetic in mapping expressions: amounts are ``Decimal``, never ``float``.

Money in Ecolix is a decimal string, and a float cannot hold 0.10 exactly (``0.1 + 0.2`` is
``0.30000000000000004``). So the environment mapping expressions compile in computes with
decimals from end to end:

- a number written in an expression (``1.2``, ``0.055``) is the ``Decimal`` it reads as;
- ``a / b`` of whole numbers and decimals is a ``Decimal`` (``7 / 2`` is ``3.5`` exactly), as
  is a whole number to a negative power; ``-``, ``/`` and ``//`` are intercepted, so that
  Jinja never folds ``0.3 - 0.1`` in binary floating point while compiling;
- an Excel number, read through ``record`` or as ``value``, is a whole number or a
  ``Decimal`` (see :func:`exact_number`); the ``value`` of a ``type: decimal`` field is read
  with the field's separators (:func:`number_reader`);
- a ``Decimal`` meeting a ``float`` (made on purpose with ``| float``) is refused, with a
  message that says why (:func:`mixed_float_message`), rather than rounded.

Helpers available to expressions: the ``decimal`` filter (text with the source's separators,
``| decimal(',')`` to say others), ``round_half_up(x, places)`` and
``round_half_even(x, places)``. ``lookup(table, key[, column])`` is added by the mapping
compiler, which loads the tables an expression names (``edigw.mapping.lookups``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from jinja2 import nodes
from jinja2.compiler import Frame
from jinja2.runtime import Context

from edigw.jinja_sandbox import EXPRESSION_LIMITS, BoundedEnvironment, Limits
from edigw.jinja_sandbox.compiler import BoundedCodeGenerator
from edigw.mapping.types import converter

_WHOLE_OR_DECIMAL = frozenset({int, Decimal})
#: The most decimal places a rounding helper takes (Ecolix keeps at most 4).
MAX_PLACES = 12


def exact_number(value: float) -> int | Decimal:
    """An Excel float as expressions see it: a whole number when it is one (so that
    ``3017620422003.0`` stays an EAN13 code), else the decimal its shortest text reads as."""
    if value.is_integer():
        return int(value)
    return Decimal(repr(value))


def to_decimal(value: Any, decimal_sep: str = ".", thousands: str = "") -> Decimal:
    """The ``decimal`` filter: a number as a ``Decimal``; text is read with the separators
    given (the mapping's source ``decimal:``/``thousands:`` by default). An empty value, a
    float or text that is no number is an error, never 0."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        msg = f"{value!r} is not a decimal number (empty, or a float: read the text instead)"
        raise ValueError(msg)
    if isinstance(value, int):
        return Decimal(value)
    text = str(value).strip()
    if thousands:
        text = text.replace(thousands, "")
    if decimal_sep != ".":
        if "." in text:
            msg = f"{value!r} is not a decimal with {decimal_sep!r} as decimal separator"
            raise ValueError(msg)
        text = text.replace(decimal_sep, ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        msg = f"{value!r} is not a decimal number"
        raise ValueError(msg) from None
    if not number.is_finite():
        msg = f"{value!r} is not a decimal number"
        raise ValueError(msg)
    return number


def number_reader(decimal_sep: str, thousands: str) -> Callable[[Any], Any]:
    """What an expression of a ``type: decimal`` field gets as ``value``: the source value
    as a ``Decimal`` (read with the field's separators), or as it is when it does not read
    as a number (the expression may be there to clean it: ``value | replace(' €', '')``)."""
    read = converter("decimal", decimal_sep=decimal_sep, thousands=thousands)

    def as_number(value: Any) -> Any:
        if value.__class__ is float:
            return exact_number(value)
        if value.__class__ is not str:
            return value
        try:
            return Decimal(read(value))
        except (ValueError, InvalidOperation):
            return value

    return as_number


def _rounding(mode: str, name: str) -> Callable[..., Decimal]:
    def round_to(value: Any, places: int = 2) -> Decimal:
        if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= MAX_PLACES:
            msg = f"{name}(): places must be a whole number from 0 to {MAX_PLACES}, got {places!r}"
            raise ValueError(msg)
        number = to_decimal(value)
        try:
            return number.quantize(Decimal(1).scaleb(-places), rounding=mode)
        except InvalidOperation:
            msg = f"{name}(): {value!r} is too large to round to {places} places"
            raise ValueError(msg) from None

    round_to.__name__ = name
    round_to.__doc__ = f"{name}(x, places=2): x rounded to ``places`` decimals ({mode})."
    return round_to


round_half_up = _rounding(ROUND_HALF_UP, "round_half_up")
round_half_even = _rounding(ROUND_HALF_EVEN, "round_half_even")


def mixed_float_message(exc: TypeError) -> str | None:
    """Why an expression failed, when it mixed a ``Decimal`` with a ``float``; else None."""
    text = str(exc)
    if "'decimal.Decimal'" in text and "'float'" in text:
        return (
            "mixes an exact decimal with a float (made by '| float'), which would round "
            "amounts (0.1 + 0.2 is 0.30000000000000004 in floats): compute with decimals, "
            "e.g. '| decimal' instead of '| float'"
        )
    return None


class _ExactCodeGenerator(BoundedCodeGenerator):
    """The sandbox's code generator, writing every float constant as a ``Decimal``."""

    def visit_Const(self, node: nodes.Const, frame: Frame) -> None:
        value = node.as_const(frame.eval_ctx)
        if _holds_float(value):
            self.write(self._exact_source(value))
        else:
            super().visit_Const(node, frame)

    def _exact_source(self, value: Any) -> str:
        if isinstance(value, float):
            env = self.environment
            assert isinstance(env, ExactEnvironment)
            text = repr(value)
            env.decimals.setdefault(text, Decimal(text))
            return f"environment.decimals[{text!r}]"
        if isinstance(value, tuple):
            return "(" + "".join(self._exact_source(v) + ", " for v in value) + ")"
        if isinstance(value, list):
            return "[" + ", ".join(self._exact_source(v) for v in value) + "]"
        return repr(value)


def _holds_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, tuple | list):
        return any(_holds_float(v) for v in value)
    return False


class ExactEnvironment(BoundedEnvironment):
    """The bounded sandbox of mapping expressions, computing with decimals (module docstring).

    ``decimal_sep``/``thousands`` are the source's: the ``decimal`` filter reads text with
    them unless told otherwise.
    """

    code_generator_class = _ExactCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%", "-", "/", "//"})
    __slots__ = ("decimals",)

    def __init__(
        self,
        *,
        limits: Limits = EXPRESSION_LIMITS,
        decimal_sep: str = ".",
        thousands: str = "",
        **options: Any,
    ) -> None:
        super().__init__(limits=limits, **options)
        #: the float constants of the expressions compiled here, as decimals (by their text)
        self.decimals: dict[str, Decimal] = {}

        def decimal(value: Any, sep: str | None = None) -> Decimal:
            return to_decimal(value, decimal_sep if sep is None else sep, thousands)

        self.filters["decimal"] = decimal
        self.text_filters.discard("decimal")
        self.globals["round_half_up"] = round_half_up
        self.globals["round_half_even"] = round_half_even

    def call_binop(self, context: Context | None, operator: str, left: Any, right: Any) -> Any:
        kinds = (type(left), type(right))
        if kinds[0] in _WHOLE_OR_DECIMAL and kinds[1] in _WHOLE_OR_DECIMAL:
            if operator == "/":
                return Decimal(left) / Decimal(right)
            if operator == "**" and kinds == (int, int) and right < 0:
                return Decimal(left) ** right
        return super().call_binop(context, operator, left, right)
