"""Jinja2's stock filters, each bounded: nothing a filter returns is over the sandbox's limits.

Filters are called directly by the generated code (no sandbox hook sees them), and ``map``
calls them on every item, so each one is wrapped here. Three kinds:

- filters that turn their value into text (``upper``, ``string``, ``tojson``, ``center``...):
  a container value is refused when its text would be over the limit, arguments that size the
  result (``center(10**9)``, ``indent``, ``wordwrap``, ``replace``, ``tojson(indent=...)``) are
  checked before the filter runs, and the result is checked after;
- filters that go through their value (``list``, ``sort``, ``map``, ``select``, ``groupby``...):
  the value is metered like a ``for`` loop (one step per item), ``batch`` and ``slice`` may not
  pad or cut beyond the item limit, and what they build is checked;
- ``join``, ``format`` and ``sum`` are rewritten: they size their result before making it.

Filters that only read (``length``, ``first``, ``default``, ``abs``, ``attr``...) are kept as
they are; ``attr`` reads through the sandbox's own ``getattr``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import update_wrapper
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import FilterArgumentError
from jinja2.filters import FILTERS, make_attrgetter, sync_do_join
from jinja2.utils import pass_environment, pass_eval_context
from markupsafe import soft_str

from edigw.jinja_sandbox.budget import check_printf, check_text, over, text_weight

if TYPE_CHECKING:
    from jinja2.nodes import EvalContext

    from edigw.jinja_sandbox.environment import BoundedEnvironment

Check = Callable[..., None]

READING = ("abs", "attr", "count", "d", "default", "filesizeformat", "first", "float", "items")
READING_TOO = ("last", "length", "random", "round")
TEXT = (
    "capitalize",
    "e",
    "escape",
    "forceescape",
    "lower",
    "pprint",
    "safe",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
    "xmlattr",
)
GOING_THROUGH = (
    "dictsort",
    "groupby",
    "list",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "reverse",
    "select",
    "selectattr",
    "sort",
    "unique",
)

_NUMBERS = frozenset({int, float, bool, Decimal})

TEXT_VALUED = frozenset(
    {*TEXT, "center", "indent", "wordwrap", "replace", "tojson", "format", "join"}
    | {"int", "float", "length", "count", "abs", "round", "filesizeformat"}
)
"""Stock filters whose result is text or a number, never a container."""


def bounded_filters(env: BoundedEnvironment) -> dict[str, Callable[..., Any]]:
    """Every stock filter, bounded by ``env``'s limits (see the module docstring)."""
    limits = env.limits
    filters: dict[str, Callable[..., Any]] = {name: FILTERS[name] for name in READING + READING_TOO}
    for name in TEXT:
        filters[name] = _text_filter(env, FILTERS[name])
    for name in GOING_THROUGH:
        filters[name] = _going_through(env, FILTERS[name])

    def center(value: Any, width: int = 80) -> None:
        if isinstance(width, int) and width > limits.text:
            raise over(width, limits.text, "characters", what="a string")

    def indent(value: Any, width: int | str = 4, **_: Any) -> None:
        text = soft_str(value)
        step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        total = len(text) + (text.count("\n") + 1) * step
        if total > limits.text:
            raise over(total, limits.text, "characters", what="an indented string")

    def wordwrap(value: Any, width: int = 79, *args: Any, **kwargs: Any) -> None:
        text = soft_str(value)
        wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
        lines = len(text) // max(width, 1) + 1 if isinstance(width, int) else len(text)
        total = len(text) + lines * len(soft_str(wrap))
        if total > limits.text:
            raise over(total, limits.text, "characters", what="a wrapped string")

    def replace(value: Any, old: Any, new: Any, count: int | None = None) -> None:
        text, old, new = soft_str(value), soft_str(old), soft_str(new)
        hits = text.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        total = len(text) + hits * max(len(new) - len(old), 0)
        if total > limits.text:
            raise over(total, limits.text, "characters", what="a string")

    def tojson(value: Any, indent: int | None = None) -> None:
        spaces = indent if isinstance(indent, int) and indent > 0 else 0
        total = text_weight(value, limits.text) * (1 + spaces)
        if total > limits.text:
            raise over(total, limits.text, "characters", what="a JSON text")

    def batch(value: Any, linecount: int, fill_with: Any = None) -> None:
        if fill_with is not None and isinstance(linecount, int) and linecount > limits.items:
            raise over(linecount, limits.items, "items", what="a batch")

    def slices(value: Any, slices: int, fill_with: Any = None) -> None:
        if isinstance(slices, int) and slices > limits.items:
            raise over(slices, limits.items, "items", what="a number of slices")

    do_int = FILTERS["int"]

    def whole(value: Any, default: int = 0, base: int = 10) -> int:
        # int() of text is bounded by Python itself (4,300 digits), of a float by its range;
        # a Decimal from |dec can be 1e999999: refused before it is expanded.
        if type(value) is Decimal and value.is_finite() and value.adjusted() >= limits.int_digits:
            raise over(value.adjusted() + 1, limits.int_digits, "digits", what="an integer")
        return do_int(value, default, base)  # type: ignore[no-any-return]

    checks: dict[str, Check] = {
        "center": center,
        "indent": indent,
        "wordwrap": wordwrap,
        "replace": replace,
        "tojson": tojson,
    }
    for name, check in checks.items():
        filters[name] = _text_filter(env, FILTERS[name], check)
    filters["int"] = update_wrapper(whole, do_int)
    filters["batch"] = _going_through(env, FILTERS["batch"], batch)
    filters["slice"] = _going_through(env, FILTERS["slice"], slices)
    filters.update(join=_join(env), format=_format(env), sum=_sum(env))
    return filters


def _position(func: Callable[..., Any]) -> int:
    """Where the filtered value is in the arguments (after a context, if the filter takes one)."""
    return 1 if getattr(func, "jinja_pass_arg", None) is not None else 0


def _text_filter(
    env: BoundedEnvironment, func: Callable[..., Any], check: Check | None = None
) -> Callable[..., Any]:
    at = _position(func)
    limits = env.limits

    def bounded(*args: Any, **kwargs: Any) -> Any:
        value = args[at]
        if type(value) is not str:
            check_text(value, limits)
        if check is not None:
            check(*args[at:], **kwargs)
        return env.built(func(*args, **kwargs))

    return update_wrapper(bounded, func)


def _going_through(
    env: BoundedEnvironment, func: Callable[..., Any], check: Check | None = None
) -> Callable[..., Any]:
    at = _position(func)

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if check is not None:
            check(*args[at:], **kwargs)
        values = list(args)
        values[at] = env.bounded_iter(values[at])
        return env.built(func(*values, **kwargs))

    return update_wrapper(bounded, func)


def _join(env: BoundedEnvironment) -> Callable[..., Any]:
    limits = env.limits

    @pass_eval_context
    def join(
        eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
    ) -> str:
        items = list(env.bounded_iter(value))
        if len(items) > limits.items:
            raise over(len(items), limits.items, "items", what="a list")
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(item) for item in items]
        total = len(soft_str(d)) * max(len(items) - 1, 0)
        for item in items:
            if total > limits.text:
                raise over(total, limits.text, "characters", what="a joined string", at_least=True)
            total += text_weight(item, limits.text)
        if total > limits.text:
            raise over(total, limits.text, "characters", what="a joined string")
        return sync_do_join(eval_ctx, items, d)

    return join


def _format(env: BoundedEnvironment) -> Callable[..., Any]:
    def format(value: str, *args: Any, **kwargs: Any) -> str:
        if args and kwargs:
            msg = "can't handle positional and keyword arguments at the same time"
            raise FilterArgumentError(msg)
        text = soft_str(value)
        check_printf(text, kwargs or args, env.limits)
        return env.built(text % (kwargs or args))  # type: ignore[no-any-return]

    return format


def _sum(env: BoundedEnvironment) -> Callable[..., Any]:
    @pass_environment
    def total(
        environment: Any,
        iterable: Iterable[Any],
        attribute: str | int | None = None,
        start: Any = 0,
    ) -> Any:
        values = env.bounded_iter(iterable)
        if attribute is not None:
            values = map(make_attrgetter(environment, attribute), values)
        result = start
        for value in values:
            if type(value) in _NUMBERS and type(result) in _NUMBERS:
                result = result + value
            else:
                result = env.call_binop(None, "+", result, value)
        return result

    return total
