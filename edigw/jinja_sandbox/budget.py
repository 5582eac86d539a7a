"""Limits on what one expression or template may build and do, and the meter that enforces them.

Why limits at all: the Jinja2 sandbox keeps a template away from Python's internals, but not
from Python's arithmetic. ``'x' * 10**9`` or ``range(10**5)`` nested three deep are perfectly
"safe" and still take the gateway down (one mapping expression reached 21 GB). So every value an
expression *builds* is bounded in size, and everything it *does* costs steps from a budget:

- a string it builds: at most ``text`` characters; a list, tuple or dict it builds: at most
  ``items`` items; an integer: at most ``int_digits`` digits; ``range()``: at most ``range``
  items. Turning a container into text (output, ``~``, ``join``, ``format``) counts the text it
  would give, so ``[s] * 1000`` cannot be printed into a terabyte;
- building: everything built counts its size (characters or items) against ``built``, which
  bounds the memory a template can fill with values it keeps (a list of a thousand strings of a
  million characters is made of strings that were each under the limit);
- work: each loop iteration and each call costs one step, and so does every ``CHARS_PER_STEP``
  characters written to the output file;
- for templates, every record taken earns ``steps_per_record`` more steps and
  ``built_per_record`` more building: a big export may do proportionally more, a loop that has
  nothing to do with the data may not;
- time: at most ``seconds``, plus ``seconds_per_record`` for each record taken, checked whenever
  steps are spent (see :class:`Budget` for which clock).

A budget is one evaluation of a mapping expression, or one template render (an export run).
Exceeding any limit raises :class:`LimitExceeded`, which fails that document or that export run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from jinja2.exceptions import TemplateRuntimeError

MAX_TEXT = 1_000_000
"""Characters in one string an expression or template builds."""

MAX_ITEMS = 1_000_000
"""Items in one list, tuple or dict an expression or template builds (8 MB of references)."""

MAX_RANGE = 100_000
"""Items ``range()`` may produce (Jinja2's own sandbox default)."""

MAX_INT_DIGITS = 4_300
"""Digits of an integer built by ``*`` or ``**`` (Python's own limit for printing one)."""

MAX_STEPS = 1_000_000
"""Steps an expression evaluation or a template's start may spend (about a second of work)."""

STEPS_PER_RECORD = 10_000
"""Steps a template earns with each record it takes."""

MAX_BUILT = 10_000_000
"""Characters and items an expression evaluation or a template's start may build in all."""

BUILT_PER_RECORD = 10_000
"""Characters and items a template earns with each record it takes."""

EXPRESSION_SECONDS = 5.0
"""Wall-clock time one mapping expression evaluation may take."""

TEMPLATE_SECONDS = 30.0
"""Processor time a template may render for before it earns more with records."""

SECONDS_PER_RECORD = 0.1
"""Processor time a template earns with each record it takes."""

MAX_DEPTH = 50
"""Macro calls nested in each other (a macro that calls itself)."""

CHARS_PER_STEP = 64
"""Characters written to a template's output that cost one step."""

CHECK_EVERY = 256
"""Steps between two looks at the clock (reading it costs more than counting)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one sandbox; see the module docstring. Defaults suit production."""

    text: int = MAX_TEXT
    items: int = MAX_ITEMS
    range: int = MAX_RANGE
    int_digits: int = MAX_INT_DIGITS
    steps: int = MAX_STEPS
    steps_per_record: int = STEPS_PER_RECORD
    built: int = MAX_BUILT
    built_per_record: int = BUILT_PER_RECORD
    seconds: float = EXPRESSION_SECONDS
    seconds_per_record: float = SECONDS_PER_RECORD
    depth: int = MAX_DEPTH

    @property
    def int_bits(self) -> int:
        # 3.33 bits per decimal digit, rounded up: 4,300 digits -> 14,287 bits.
        return self.int_digits * 3322 // 1000 + 1


EXPRESSION_LIMITS = Limits()
TEMPLATE_LIMITS = Limits(seconds=TEMPLATE_SECONDS)


class LimitExceeded(TemplateRuntimeError):
    """An expression or template went over one of its limits (it fails alone)."""


def over(size: int, limit: int, unit: str, *, what: str, at_least: bool = False) -> LimitExceeded:
    """The error for a value over a size limit, with both numbers, for people.

    ``at_least``: ``size`` is where counting stopped, past the limit (not the whole size).
    """
    more = "at least " if at_least else ""
    return LimitExceeded(f"{what} of {more}{size:,} {unit} is over the limit of {limit:,} {unit}")


class Budget:
    """Steps, building and time for one evaluation or render (see the module docstring).

    Spending is a subtraction; the clock is read only every ``CHECK_EVERY`` steps, and the
    budget a record earns is added then too (taking a record is one increment of
    ``counter.count``), so metering costs next to nothing on the normal path. The clock starts at the
    first look: before it, at most ``CHECK_EVERY`` steps have run.

    ``clock`` is wall-clock time by default (a mapping expression never waits); a template
    render passes ``time.thread_time``, the processor time of the rendering thread, so that
    waiting for Ecolix's pages, a rate limit or a busy machine never fails an export. Nothing in
    the sandbox can block without spending processor time, and ``lookup`` calls (:class:`Waits`)
    are not counted either way.
    """

    __slots__ = (
        "building",
        "clock",
        "counter",
        "credited",
        "depth",
        "left",
        "limits",
        "next_check",
        "started",
        "waited",
    )

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.left = limits.steps
        self.next_check = limits.steps - CHECK_EVERY
        self.building = limits.built
        self.started: float | None = None
        self.waited = 0.0
        self.counter: Counted | None = None
        self.credited = 0
        self.depth = 0

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < self.next_check:
            self.check()

    def build(self, size: int) -> None:
        """``size`` characters or items were just built."""
        self.building -= size
        if self.building < 0:
            self._settle()
            if self.building < 0:
                msg = (
                    f"over the building budget of {self.limits.built:,} characters or items "
                    "(everything built counts, including what was built and dropped)"
                )
                raise LimitExceeded(msg)

    def check(self) -> None:
        limits = self.limits
        self._settle()
        if self.left < 0:
            msg = (
                f"over the work budget of {limits.steps:,} steps (a step is a loop iteration, "
                f"a call, or {CHARS_PER_STEP:,} characters written)"
            )
            raise LimitExceeded(msg)
        now = self.clock()
        if self.started is None:
            self.started = now
        elif now - self.started - self.waited > (
            limits.seconds + self.credited * limits.seconds_per_record
        ):
            msg = f"over the time limit of {limits.seconds:g} s"
            raise LimitExceeded(msg)
        self.next_check = self.left - CHECK_EVERY

    def _settle(self) -> None:
        """Add what the records taken since the last look have earned."""
        if self.counter is None:
            return
        taken = self.counter.count
        new = taken - self.credited
        if new:
            limits = self.limits
            self.credited = taken
            self.left += new * limits.steps_per_record
            self.next_check += new * limits.steps_per_record
            self.building += new * limits.built_per_record

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Time spent inside is waiting for Ecolix, not computing: it is not counted."""
        started = self.clock()
        try:
            yield
        finally:
            self.waited += self.clock() - started


class Counted(Protocol):
    """What counts the records a template took (the render's records iterator)."""

    count: int


class Metered:
    """Marker: an iterable that meters itself (the records iterator earns budget per record)."""

    __slots__ = ()


class Waits:
    """Marker: a callable whose time is spent waiting for Ecolix (``lookup``), not computing.

    Its result is data from Ecolix, not something the template built, so it is not size-checked.
    """

    __slots__ = ()


_SCALARS = frozenset({int, float, bool, Decimal, type(None)})
_CONTAINERS = (list, tuple, dict, set, frozenset)


def text_weight(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` gives, counted no further than past ``limit``.

    Strings count their length, containers their items' weights plus separators, numbers their
    digits; anything else a fixed guess. The walk stops as soon as the count passes ``limit``,
    so checking a huge value costs no more than checking one just over the limit.
    """
    kind = type(value)
    if kind is str:
        return len(value)
    if kind in _SCALARS:
        return value.bit_length() // 3 + 2 if kind is int else 24
    if not isinstance(value, _CONTAINERS):
        return len(value) if isinstance(value, str | bytes) else 64
    total = 0
    stack: list[Any] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 4
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        elif type(item) is int:
            total += item.bit_length() // 3 + 2
        else:
            total += 24
    return total


def check_text(value: Any, limits: Limits, what: str = "the text of a value") -> None:
    """Refuse to turn ``value`` into text when that text would be over the limit."""
    if type(value) is not str and isinstance(value, _CONTAINERS):
        weight = text_weight(value, limits.text)
        if weight > limits.text:
            msg = f"{what} would be over the limit of {limits.text:,} characters"
            raise LimitExceeded(msg)


_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?([a-zA-Z%]?)\Z", re.S)
_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _number(text: str, limits: Limits, what: str) -> int:
    if len(text) > 9:
        msg = f"{what} of {text[:12]}... is over the limit of {limits.text:,} characters"
        raise LimitExceeded(msg)
    value = int(text)
    if value > limits.text:
        raise over(value, limits.text, "characters", what=what)
    return value


def check_format_spec(value: Any, spec: str, limits: Limits) -> None:
    """Refuse a ``str.format`` field whose width or precision would build a huge string."""
    match = _SPEC.match(spec)
    if match is None:
        return  # a date's strftime spec or the like: its output grows with the spec only
    width, precision, kind = match.groups()
    digits = _number(precision, limits, "a precision") if precision else 0
    if width:
        _number(width, limits, "a field width")
    if isinstance(value, Decimal) and value.is_finite() and kind in ("f", "F", "%", ""):
        size = abs(value.adjusted()) + digits
        if size > limits.text:
            raise over(size, limits.text, "characters", what="a formatted number")


_SHORT_FIELDS = re.compile(r"\d{5}|\*")
_PLAIN_ARGS = frozenset({str, int, float, bool, Decimal, type(None)})


def check_printf(fmt: str, values: Any, limits: Limits) -> None:
    """Refuse ``fmt % values`` (or ``|format``) when its result would be over the text limit."""
    conversions = fmt.count("%")
    if not conversions:
        return
    positional = values if type(values) is tuple else (values,)
    if (
        conversions <= 64
        and all(type(v) in _PLAIN_ARGS for v in positional)
        and _SHORT_FIELDS.search(fmt) is None
    ):
        # The usual '%05d' or '%s-%s': widths under 10,000 and short arguments.
        longest = max((len(v) for v in positional if type(v) is str), default=24)
        if len(fmt) + conversions * (10_000 + max(longest, 24)) <= limits.text:
            return
    mapping = values if isinstance(values, Mapping) else None
    total = len(fmt)
    index = 0
    for match in _PRINTF.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        sizes = [0, 0]
        for at, (number, what) in enumerate(((width, "a field width"), (precision, "a precision"))):
            if number == "*":
                taken = positional[index] if index < len(positional) else 0
                index += 1
                sizes[at] = taken if isinstance(taken, int) else 0
                if sizes[at] > limits.text:
                    raise over(sizes[at], limits.text, "characters", what=what)
            elif number:
                sizes[at] = _number(number, limits, what)
        if key is not None and mapping is not None:
            arg = mapping.get(key)
        else:
            arg = positional[index] if index < len(positional) else None
            index += 1
        total += max(sizes[0], text_weight(arg, limits.text) + sizes[1])
        if total > limits.text:
            raise over(total, limits.text, "characters", what="a formatted string")
