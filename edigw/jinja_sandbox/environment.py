"""The sandboxed, bounded Jinja2 environment that expressions and templates are compiled in.

Built on Jinja2's ``ImmutableSandboxedEnvironment``, because a template or an expression only
ever *reads* what it is handed (records, lookup tables, ``now``): immutability means a template
cannot change a lookup table shared by all records, or a record between two uses. On top of it:

No way out
    - attributes are read only on data (strings, numbers, dates, dicts, lists, ...) and on
      Jinja's own loop helpers; never on functions, modules, classes, the template reference or
      other objects, and never a name starting with ``__`` (``__globals__``, ``__class__``,
      ``__subclasses__``, ``__init__``...). An unsafe access is an error at once, not a silent
      undefined value that ``default`` or ``is defined`` could hide;
    - the globals are plain factories (``range``, ``dict``, ``namespace``, ``cycler``,
      ``joiner``): no ``lipsum`` (whose ``__globals__`` hold ``os``), no classes whose methods
      lead anywhere; every stock filter is wrapped (:mod:`edigw.jinja_sandbox.filters`).

Bounded (see :mod:`edigw.jinja_sandbox.budget`)
    - ``*``, ``**``, ``%`` and ``+`` are intercepted (which also stops Jinja from folding
      ``'x' * 10**9`` at *compile* time) and refuse results over the limits before computing them;
    - ``~``, ``{{ ... }}``, macro and block output, ``str.format``, ``join`` and friends check the
      size of the text they are about to make;
    - every ``for`` loop goes through :meth:`BoundedEnvironment.bounded_iter` (a small rewrite of
      the parsed template), which spends one step per item; every call spends one step.
      The generated code's hooks are in :mod:`edigw.jinja_sandbox.compiler`.

The budget of the evaluation or render in progress is kept per thread, because a compiled
mapping is shared by the threads that use it.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.environment import TemplateModule
from jinja2.exceptions import SecurityError
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Cycler, Joiner, Namespace
from markupsafe import Markup

from edigw.jinja_sandbox.budget import (
    EXPRESSION_LIMITS,
    Budget,
    LimitExceeded,
    Limits,
    Metered,
    Waits,
    check_format_spec,
    check_printf,
    check_text,
    over,
    text_weight,
)
from edigw.jinja_sandbox.compiler import (
    ITERATE,
    BoundedCodeGenerator,
    BoundedTemplate,
    OutputBuffer,
)
from edigw.jinja_sandbox.filters import TEXT_VALUED, bounded_filters

READABLE = (
    str,
    int,
    float,
    Decimal,
    date,
    time,
    timedelta,
    dict,
    list,
    tuple,
    set,
    frozenset,
    range,
    Namespace,
    Cycler,
    Joiner,
    LoopContext,
    BlockReference,
    TemplateModule,
)
"""The only objects whose attributes a template or expression may read (``TemplateModule``:
the macros of an ``{% import %}``ed template)."""

_SIZED = frozenset(
    {list, tuple, range, dict, str, set, frozenset}
    | {type({}.keys()), type({}.values()), type({}.items())}
)
_NUMBERS = frozenset({int, float, bool, Decimal})
_INTS = frozenset({int, bool})
_CONTAINERS = (list, tuple, dict, set, frozenset)
_SEQUENCES = (str, bytes, list, tuple)
_GROWING = frozenset(
    {"join", "center", "ljust", "rjust", "zfill", "replace", "expandtabs", "translate", "to_bytes"}
)
"""Methods of str (and int.to_bytes) whose result can be much bigger than their object."""


# --------------------------------------------------------------------------- formatting


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, counting the characters it produces."""

    def __init__(self, env: BoundedEnvironment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._limits = env.limits
        self._left = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._left = self._limits.text - len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            check_text(value, self._limits)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec(value, format_spec, self._limits)
        check_text(value, self._limits)
        text = super().format_field(value, format_spec)
        self._left -= len(text)
        if self._left < 0:
            msg = f"a formatted string is over the limit of {self._limits.text:,} characters"
            raise LimitExceeded(msg)
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


# --------------------------------------------------------------------------- the environment


class _Running(threading.local):
    """The budget of the evaluation or render running in this thread, if any."""

    budget: Budget | None = None


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with limits; see the module docstring. ``limits`` bound every evaluation."""

    code_generator_class = BoundedCodeGenerator
    template_class = BoundedTemplate
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    decimal_filters: frozenset[str] = frozenset()
    """Filters that always give a ``Decimal`` (or raise): ``+`` and ``*`` with one of them
    on a side are plain arithmetic (see :func:`~edigw.jinja_sandbox.compiler._binop`)."""
    dict_keys_first = False
    """``x.name`` reads the key ``name`` of a plain dict before any attribute (see
    :class:`~edigw.jinja_sandbox.compiler.BoundedCodeGenerator`); the subclass for partner
    templates turns it on, with a ``getattr`` that does the same."""

    # Slots, not instance attributes: an Environment already has 28 of those, and past 30
    # CPython stops sharing instance dict keys, which makes every ``environment.getattr`` in
    # the generated code measurably slower (about 20 ns a field).
    __slots__ = ("_local", "limits", "text_filters")

    def __init__(self, *, limits: Limits = EXPRESSION_LIMITS, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.limits = limits
        self._local = _Running()
        self.globals.clear()
        self.globals.update(_factories(self))
        self.filters = bounded_filters(self)
        self.text_filters: set[str] = set(TEXT_VALUED)
        """Filters whose result is never a list or dict (their output needs no sizing)."""

    # -- the budget of the evaluation in progress (per thread) -----------------------------

    def active_budget(self) -> Budget | None:
        return self._local.budget

    def budget(self) -> Budget:
        budget = self._local.budget
        if budget is None:
            budget = self._local.budget = Budget(self.limits)
        return budget

    def begin(self, budget: Budget) -> Budget | None:
        """Make ``budget`` the running one; returns the previous one for :meth:`end`."""
        previous = self._local.budget
        self._local.budget = budget
        return previous

    def end(self, previous: Budget | None) -> None:
        self._local.budget = previous

    # -- compiling --------------------------------------------------------------------------

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,  # noqa: FBT001, FBT002 - Jinja's signature
    ) -> str:
        for loop in source.find_all(nodes.For):
            hook = nodes.EnvironmentAttribute(ITERATE, lineno=loop.iter.lineno)
            loop.iter = nodes.Call(hook, [loop.iter], [], None, None, lineno=loop.iter.lineno)
        return super()._generate(source, name, filename, defer_init)  # type: ignore[no-any-return]

    # -- what no template may touch ----------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return isinstance(obj, READABLE) and super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(_refused(obj, attribute))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise SecurityError(_refused(obj, attribute))
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(
            value, types.MethodType | types.BuiltinMethodType
        ) or value.__name__ not in ("format", "format_map"):
            return None
        owner: Any = value.__self__
        if not isinstance(owner, str):
            return None
        str_type: type[str] = type(owner)
        is_format_map = value.__name__ == "format_map"
        formatter: _BoundedFormatter
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    msg = "format_map() takes exactly one argument"
                    raise TypeError(msg)
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)

    # -- runtime hooks (called by the generated code) ----------------------------------------

    def call(
        __self,  # Jinja's signature: keyword arguments may then be called "self"
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = __self._local.budget or __self.budget()
        budget.left -= 1
        if budget.left < budget.next_check:
            budget.check()
        kind = type(__obj)
        if kind is types.BuiltinMethodType:
            # A method of a str, dict, date...: takes no context and carries no flags (a
            # builtin cannot be marked unsafe), so it is called directly, once sized.
            if __obj.__name__ in _GROWING:
                args = __self._check_method(__obj, args, kwargs)
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            return __self.built(__obj(*args, **kwargs))
        if not __self.is_safe_callable(__obj):
            msg = f"{__obj!r} is not safely callable"
            raise SecurityError(msg)
        if kind is LoopContext and args:  # loop(children) in a recursive loop
            args = (__self.bounded_iter(args[0]), *args[1:])
            kind = Macro  # nested like a macro call
        if isinstance(__obj, Waits):
            with budget.waiting():
                return __context.call(__obj, *args, **kwargs)  # type: ignore[arg-type]
        if kind is Macro:
            budget.depth += 1
            try:
                if budget.depth > __self.limits.depth:
                    msg = (
                        f"macros or recursive loops nested over the limit of "
                        f"{__self.limits.depth} calls"
                    )
                    raise LimitExceeded(msg)
                return __context.call(__obj, *args, **kwargs)  # its output buffer is bounded
            finally:
                budget.depth -= 1
        return __self.built(__context.call(__obj, *args, **kwargs))

    def bounded_add(self, left: Any, right: Any) -> Any:
        if type(left) in _NUMBERS and type(right) in _NUMBERS:
            return left + right
        return self.call_binop(None, "+", left, right)

    def bounded_mul(self, left: Any, right: Any) -> Any:
        kind_left, kind_right = type(left), type(right)
        if (
            kind_left in _NUMBERS
            and kind_right in _NUMBERS
            and (kind_left not in _INTS or kind_right not in _INTS)
        ):
            return left * right  # a float or a Decimal: bounded by its own precision
        return self.call_binop(None, "*", left, right)

    def bounded_pow(self, left: Any, right: Any) -> Any:
        return self.call_binop(None, "**", left, right)

    def bounded_mod(self, left: Any, right: Any) -> Any:
        return self.call_binop(None, "%", left, right)

    def call_binop(self, context: Context | None, operator: str, left: Any, right: Any) -> Any:
        kind_left, kind_right = type(left), type(right)
        if kind_left in _NUMBERS and kind_right in _NUMBERS:
            if kind_left in _INTS and kind_right in _INTS:
                if operator == "*":
                    self._check_int_bits(left.bit_length() + right.bit_length() - 1)
                elif operator == "**" and right > 0 and abs(left) > 1:
                    self._check_int_bits((left.bit_length() - 1) * right)
                    return self.built(left**right)
            return self.binop_table[operator](left, right)
        if operator == "*":
            if isinstance(right, int) and isinstance(left, _SEQUENCES):
                self._check_sequence(left, len(left) * max(right, 0))
            elif isinstance(left, int) and isinstance(right, _SEQUENCES):
                self._check_sequence(right, len(right) * max(left, 0))
        elif operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                self._check_sequence(left, len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            check_printf(left, right, self.limits)
        return self.built(self.binop_table[operator](left, right))

    def bounded_iter(self, iterable: Any) -> Any:
        """What a ``for`` loop iterates: sized values spend their length at once, others one
        step per item; the records iterator meters itself."""
        if type(iterable) in _SIZED:
            self.budget().spend(len(iterable))
            return iterable
        if isinstance(iterable, Metered):
            return iterable
        return _metered(self.budget(), iterable)

    def bounded_operands(self, operands: tuple[Any, ...]) -> tuple[Any, ...]:
        """The operands of ``a ~ b ~ c``, refused if the joined text would be over the limit."""
        limit = self.limits.text
        total = 0
        for operand in operands:
            total += len(operand) if type(operand) is str else text_weight(operand, limit)
        if total > limit:
            raise over(total, limit, "characters", what="a string")
        self.budget().build(total)
        return operands

    def output_buffer(self) -> OutputBuffer:
        return OutputBuffer(self.limits.text, self.budget())

    def built(self, value: Any) -> Any:
        """``value`` was just made by the template: refuse it over the limits, count its size."""
        if type(value) is str or isinstance(value, str | bytes):
            size, limit, unit = len(value), self.limits.text, "characters"
        elif isinstance(value, _CONTAINERS):
            size, limit, unit = len(value), self.limits.items, "items"
        elif type(value) is int:
            self._check_int_bits(value.bit_length())
            return value
        else:
            return value
        if size > limit:
            raise over(size, limit, unit, what=_what(value))
        budget = self._local.budget or self.budget()
        budget.building -= size
        if budget.building < 0:
            budget.build(0)  # settles what records earned, or raises
        return value

    def _finalize(self, value: Any) -> Any:
        if type(value) is not str and isinstance(value, _CONTAINERS):
            check_text(value, self.limits, "the text of this value")
        return value

    def output_text(self, value: Any) -> str:
        """``{{ value }}`` in a template without autoescaping: ``str(finalize(value))``."""
        if type(value) is str:
            return value
        if isinstance(value, _CONTAINERS):
            check_text(value, self.limits, "the text of this value")
        return str(value)

    def concat(self, chunks: Iterable[str]) -> str:  # type: ignore[override]
        """Jinja's ``"".join`` for block output (``self.block()``, ``super()``), bounded."""
        if type(chunks) is OutputBuffer:  # a macro's or block's output: counted already
            return "".join(chunks)
        buffer = self.output_buffer()
        buffer.extend(chunks)
        return "".join(buffer)

    # -- checks --------------------------------------------------------------------------

    def _check_int_bits(self, bits: int) -> None:
        if bits > self.limits.int_bits:
            digits = bits * 1000 // 3322
            raise over(digits, self.limits.int_digits, "digits", what="an integer")

    def _check_sequence(self, sample: Any, size: int) -> None:
        if isinstance(sample, str | bytes):
            limit, unit = self.limits.text, "characters"
        else:
            limit, unit = self.limits.items, "items"
        if size > limit:
            raise over(size, limit, unit, what=_what(sample))

    def _check_method(
        self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Refuse a string method call whose result would be over the limits (before it runs).

        ``join`` takes its items as a list first, so that they are counted and sized.
        """
        owner, name, limit = method.__self__, method.__name__, self.limits.text
        if isinstance(owner, str):
            if name == "join" and args:
                items = list(self.bounded_iter(args[0]))
                self._check_sequence(items, len(items))
                total = len(owner) * max(len(items) - 1, 0)
                for item in items:
                    if total > limit:
                        raise over(
                            total, limit, "characters", what="a joined string", at_least=True
                        )
                    total += text_weight(item, limit)
                if total > limit:
                    raise over(total, limit, "characters", what="a joined string")
                return (items, *args[1:])
            size = _str_method_size(owner, name, args, kwargs)
            if size > limit:
                raise over(size, limit, "characters", what="a string")
        elif type(owner) is int and name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if isinstance(length, int) and length > limit:
                raise over(length, limit, "bytes", what="a byte string")
        return args


def _str_method_size(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The size of ``text.name(*args)`` for the string methods that can grow a string."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        return width if isinstance(width, int) else 0
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        hits = text.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        return len(text) + hits * max(len(new) - len(old), 0) if isinstance(new, str) else 0
    if name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        return len(text) + text.count("\t") * size if isinstance(size, int) else 0
    if name == "translate" and args:
        table = args[0]
        values = table.values() if isinstance(table, Mapping) else ()
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
        return len(text) * longest
    return 0


def _metered(budget: Budget, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        budget.left -= 1
        if budget.left < budget.next_check:
            budget.check()
        yield item


def _what(value: Any) -> str:
    if isinstance(value, str | bytes):
        return "a string"
    return f"a {type(value).__name__}"


def _refused(obj: Any, attribute: str) -> str:
    return (
        f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed "
        "(templates and expressions run in a sandbox)"
    )


def _factories(env: BoundedEnvironment) -> dict[str, Callable[..., Any]]:
    """The globals: functions that build data, never classes (whose attributes lead away)."""
    limit = env.limits.range

    def bounded_range(*args: int) -> range:
        try:
            values = range(*args)
            size = len(values)
        except OverflowError:
            size = limit + 1
        if size > limit:
            msg = f"range{args!r} is over the limit of {limit:,} items"
            raise LimitExceeded(msg)
        return values

    def make_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def namespace(*args: Any, **kwargs: Any) -> Namespace:
        return Namespace(*args, **kwargs)

    def cycler(*items: Any) -> Cycler:
        return Cycler(*items)

    def joiner(sep: str = ", ") -> Joiner:
        return Joiner(sep)

    return {
        "range": bounded_range,
        "dict": make_dict,
        "namespace": namespace,
        "cycler": cycler,
        "joiner": joiner,
    }
