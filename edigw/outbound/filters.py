"""Jinja2 filters for partner files: numbers, dates, fixed-width fields and CSV cells.

Ecolix sends amounts as decimal strings (``"12.50"``) and dates as ISO 8601 text; partners
want ``12,50``, ``28/11/2026`` in Paris time, space-padded columns or CSV cells that a
spreadsheet will not execute. Each filter is a small pure function; :func:`make_filters`
binds the flow's time zone so templates never need to name it.

Formula injection (CSV)
    A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    read as a formula by spreadsheet programs. :func:`csv_cell` prefixes such a cell with an
    apostrophe (the OWASP advice) — *except* when the whole cell is a plain number
    (optional sign, digits, a decimal part, thousands grouped by threes), because ``-12.50`` cannot be a
    formula and partners must receive negative amounts and quantities unchanged. So
    ``{{ -3|decimal }}`` stays ``-3.00`` while ``-2+3`` or ``=HYPERLINK(...)`` are neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from edigw.jinja_sandbox.budget import MAX_TEXT, Limits, check_text, over

FORMULA_LEADS = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet evaluate a cell."""

MAX_PRECISION = 28
"""Decimal places ``decimal`` writes at most (Python's decimal precision: more cannot be exact)."""

MAX_EXPONENT = 1000
"""A number read by ``dec`` or ``decimal`` lies within 1e-1000 and 1e1000 in magnitude."""

SHORT_ROW = 16
"""Cells of a CSV row joined without sizing the line first (16 bounded cells cannot be huge)."""

FILTER_CACHE = 4096
"""Entries the ``decimal`` and ``dec`` filters of one template keep (a catalogue's distinct
prices, rates and weights)."""

SHORT_SEPARATORS = 8
"""Characters of decimal and thousands separators together that may go into a cache key."""

CACHED_TEXT = 64
"""Longest text whose conversion is cached (the caches hold a few thousand entries: a
catalogue's prices, not a partner's megabyte-long field)."""

_LIMITS = Limits()
_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCALARS = frozenset({bool, int, float, Decimal})

_PLAIN_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:[ .,'\u00a0\u202f][0-9]{3})+)(?:[.,][0-9]+)?\Z"
)
_SIMPLE_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?\Z")


class FilterError(ValueError):
    """A value cannot be formatted as the template asks (becomes a data problem upstream)."""


def _text(value: Any) -> str:
    """``str(value)``, refused for a container whose text would be over the sandbox's limit."""
    if isinstance(value, _CONTAINERS):
        check_text(value, _LIMITS)
    return str(value)


def _to_decimal(value: Any) -> Decimal:
    if type(value) is str:
        return _decimal_of_text(value) if len(value) <= CACHED_TEXT else _parse(value, value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        msg = f"expected a number, got the boolean {value!r}"
        raise FilterError(msg)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return _parse(_text(value).strip(), value)


@lru_cache(maxsize=8192)
def _decimal_of_text(text: str) -> Decimal:
    """:func:`_parse` cached: a catalogue repeats its prices, rates and weights, and a
    ``Decimal`` is immutable, so one can be shared."""
    return _parse(text, text)


def _parse(text: str, value: Any) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        msg = f"expected a number, got {value!r}"
        raise FilterError(msg) from exc
    # Decimal(text) is exact whatever the exponent: "1e999999999" must stop here.
    if -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        return number
    msg = f"number {value!r} is out of range (beyond 1e±{MAX_EXPONENT})"
    raise FilterError(msg)


def _group(digits: str, thousands: str) -> str:
    if not thousands or len(digits) <= 3:
        return digits
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return thousands.join(parts)


def to_decimal(value: Any, default: Any = None) -> Decimal:
    """A :class:`~decimal.Decimal` for arithmetic in templates (``line.quantity|dec * w|dec``).

    ``None``/``""`` give ``default`` when one is given, else an error: a missing weight must
    not silently count as zero.
    """
    if type(value) is str and value and len(value) <= CACHED_TEXT:
        return _decimal_of_text(value)  # the usual case, one call fewer
    if value is None or value == "":
        if default is None:
            msg = "expected a number, got nothing"
            raise FilterError(msg)
        return _to_decimal(default)
    return _to_decimal(value)


def format_decimal(
    value: Any, precision: int = 2, sep: str = ".", thousands: str = "", *, empty: str = ""
) -> str:
    """A number with ``precision`` decimals (half-up), decimal ``sep`` and optional grouping.

    ``None`` and ``""`` give ``empty`` (a missing price is not zero). Ecolix's decimal strings
    go through a small cache: a catalogue repeats the same prices, rates and weights, and
    exports format millions of them.
    """
    # Only short separators go into a cache key (type checks inline: this runs per field).
    short = (
        type(sep) is str
        and type(thousands) is str
        and len(sep) + len(thousands) <= SHORT_SEPARATORS
    )
    if type(value) is str:  # Ecolix's decimal strings: the usual case, first
        if not value:
            return empty
        if short and len(value) <= CACHED_TEXT:
            return _format_text_cached(value, precision, sep, thousands)
        return _format_text(value, precision, sep, thousands)
    # (not ``value == ""``: comparing a Decimal with text goes through the numbers ABCs)
    if value is None or (isinstance(value, str) and not value):
        return empty
    number = value if type(value) is Decimal else _to_decimal(value)
    if short and number.is_finite() and abs(number.adjusted()) < CACHED_TEXT // 2:
        # Computed amounts (a VAT-inclusive price) repeat as much as the prices they come
        # from. Their text is the cache key: hashing a fresh Decimal costs more than
        # writing it, and equal text is an equal number.
        return _format_text_cached(str(number), precision, sep, thousands)
    return _format_number(number, value, precision, sep, thousands)


def _format_text(value: str, precision: int, sep: str, thousands: str) -> str:
    if precision > MAX_PRECISION:
        _too_precise(precision)
    m = _SIMPLE_DECIMAL.match(value)
    if m is not None:
        sign, whole, frac = m.groups()
        frac = frac or ""
        if len(frac) <= precision:
            whole = whole.lstrip("0") or "0"
            frac = frac.ljust(precision, "0")
            if sign and whole == "0" and not frac.strip("0"):
                sign = ""
            text = sign + _group(whole, thousands)
            return f"{text}{sep}{frac}" if precision > 0 else text
    return _format_number(_to_decimal(value), value, precision, sep, thousands)


_format_text_cached = lru_cache(maxsize=8192)(_format_text)


def _too_precise(precision: int) -> None:
    msg = f"precision {precision!r} is over the limit of {MAX_PRECISION} decimal places"
    raise FilterError(msg)


def _format_number(number: Decimal, value: Any, precision: int, sep: str, thousands: str) -> str:
    if precision > MAX_PRECISION:
        _too_precise(precision)
    if not number.is_finite():
        msg = f"expected a finite number, got {value!r}"
        raise FilterError(msg)
    quantum = Decimal(1).scaleb(-precision)
    rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        rounded = abs(rounded)
    sign = "-" if rounded.is_signed() else ""
    text = f"{abs(rounded):f}"
    whole, _, frac = text.partition(".")
    out = sign + _group(whole, thousands)
    return f"{out}{sep}{frac}" if precision > 0 else out


def parse_datetime(value: Any) -> date | datetime:
    """ISO 8601 text (``Z`` allowed), a ``date`` or a ``datetime`` → the same as an object."""
    if isinstance(value, datetime | date):
        return value
    text = (value if type(value) is str else _text(value)).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)  # 3.11 reads "Z" and fractions itself
    except ValueError as exc:
        msg = f"expected an ISO 8601 date or date-time, got {value!r}"
        raise FilterError(msg) from exc


def format_date(
    value: Any, fmt: str = "%Y-%m-%d", tz: str | tzinfo | None = None, *, empty: str = ""
) -> str:
    """A date or date-time in ``fmt`` (strftime), converted to ``tz`` first when it has one.

    Aware date-times are converted to the flow's zone (``tz``); naive ones are taken as
    already local; plain dates are never shifted (a delivery date has no time zone).
    """
    moment: date | datetime
    if type(value) is str and len(value) > 10:  # Ecolix's date-times: the usual case, first
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = parse_datetime(value)  # the same, with spaces stripped or the error
    elif value is None or value == "":
        return empty
    else:
        moment = parse_datetime(value)
    if tz is not None and isinstance(moment, datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)
    plan = _numeric_plan(fmt) if type(fmt) is str and len(fmt) <= CACHED_TEXT else None
    if plan is not None and moment.year >= MIN_PLAIN_YEAR:
        pattern, fields, time_of_day = plan
        if not time_of_day or type(moment) is datetime:
            text: str = pattern % fields(moment)
            return text
    return moment.strftime(fmt)


def _plan_of(
    fmt: Any, plans: dict[str, tuple[str, Callable[[Any], Any], bool] | None]
) -> tuple[str, Callable[[Any], Any], bool] | None:
    """:func:`_numeric_plan` of a short text ``fmt``, kept in ``plans`` (a few formats)."""
    if type(fmt) is not str or len(fmt) > CACHED_TEXT:
        return None
    plan = _numeric_plan(fmt)
    if len(plans) < FILTER_CACHE:
        plans[fmt] = plan
    return plan


MIN_PLAIN_YEAR = 1000
"""Years from which ``%Y`` is four digits with no padding question (strftime writes year 5
as ``5`` on this platform, and the fast path must never differ from it)."""

_NUMERIC_DIRECTIVES = {
    "Y": ("%d", "year"),  # four digits: the fast path is taken from year 1000 on
    "m": ("%02d", "month"),
    "d": ("%02d", "day"),
    "H": ("%02d", "hour"),
    "M": ("%02d", "minute"),
    "S": ("%02d", "second"),
}
_STRFTIME_PART = re.compile(r"%(.)|[^%]+", re.S)


@lru_cache(maxsize=64)
def _numeric_plan(fmt: str) -> tuple[str, Callable[[Any], Any], bool] | None:
    """``fmt`` as a printf pattern and the fields it needs, when it is made only of numeric
    directives (``%Y %m %d %H %M %S``) and text: ``'%04d-%02d' % (d.year, d.month)`` gives the
    same text as ``d.strftime('%Y-%m')`` for a quarter of the time (strftime goes through a
    time tuple and the C library). Anything else (names, ``%z``, ``%f``...) gives ``None``.
    """
    pattern: list[str] = []
    fields: list[str] = []
    covered = 0
    for match in _STRFTIME_PART.finditer(fmt):
        covered += match.end() - match.start()
        directive = match.group(1)
        if directive is None:
            pattern.append(match.group(0).replace("%", "%%"))
        elif directive == "%":
            pattern.append("%%")
        elif directive in _NUMERIC_DIRECTIVES:
            spec, field = _NUMERIC_DIRECTIVES[directive]
            pattern.append(spec)
            fields.append(field)
        else:
            return None
    if not fields or covered != len(fmt):  # a lone "%" at the end: strftime's own business
        return None
    time_of_day = not {"hour", "minute", "second"}.isdisjoint(fields)
    return "".join(pattern), attrgetter(*fields), time_of_day  # one field: "%04d" % 2026


def pad(
    value: Any, width: int, align: str = "left", fill: str = " ", *, truncate: bool = True
) -> str:
    """A fixed-width field: text aligned ``left`` or ``right`` in ``width`` with ``fill``.

    Too-long text is cut to ``width`` (keeping the left part when aligned left, the right part
    when aligned right, like a numeric column), unless ``truncate=False`` — then it raises,
    because a shifted column corrupts every field after it.
    """
    if len(fill) != 1:
        msg = f"fill must be one character, got {fill!r}"
        raise FilterError(msg)
    if isinstance(width, int) and width > MAX_TEXT:
        raise over(width, MAX_TEXT, "characters", what="a padded field")
    text = "" if value is None else _text(value)
    if len(text) > width:
        if not truncate:
            msg = f"{text!r} is longer than {width} characters"
            raise FilterError(msg)
        return text[:width] if align == "left" else text[-width:]
    if align == "left":
        return text.ljust(width, fill)
    if align == "right":
        return text.rjust(width, fill)
    msg = f"align must be 'left' or 'right', got {align!r}"
    raise FilterError(msg)


def csv_cell(value: Any, sep: str = ";", quote: str = '"', *, guard: bool = True) -> str:
    """One CSV cell: quoted when needed, and guarded against formula injection.

    Quoting follows RFC 4180 (a cell holding the separator, the quote or a line break is
    quoted and its quotes doubled). See the module docstring for the guard and its exception
    for plain numbers.
    """
    text = "" if value is None else _text(value)
    if not text:
        return text
    if guard and text[0] in FORMULA_LEADS and not _PLAIN_NUMBER.match(text):
        text = "'" + text
    if sep in text or quote in text or "\n" in text or "\r" in text:
        return quote + text.replace(quote, quote + quote) + quote
    return text


def csv_row(values: Iterable[Any], sep: str = ";", quote: str = '"', *, guard: bool = True) -> str:
    """A whole CSV line (without the line ending): one filter call per row, not per cell.

    Most rows need neither quoting nor the guard; that is checked on the joined line with a
    few substring tests (C speed), and only other rows are built cell by cell.
    """
    texts: list[Any] | None = None
    if type(values) is list and len(values) <= SHORT_ROW:
        try:
            line = sep.join(values)  # every cell is text already: the usual row, no copy
            texts = values
        except TypeError:
            pass
    if texts is None:
        texts = [
            ""
            if v is None
            else v
            if type(v) is str
            else str(v)
            if type(v) in _SCALARS
            else _text(v)
            for v in values
        ]
        if len(texts) > SHORT_ROW:  # a long row is sized before it is joined
            size = sum(map(len, texts)) + len(sep) * len(texts)
            if size > MAX_TEXT:
                raise over(size, MAX_TEXT, "characters", what="a CSV line")
        line = sep.join(texts)
    if (
        line.count(sep) == len(texts) - 1
        and quote not in line
        and "\n" not in line
        and "\r" not in line
        and line[:1] not in FORMULA_LEADS
        and not _formula_after(sep).search(line)
    ):
        return line
    return sep.join(csv_cell(t, sep, quote, guard=guard) for t in texts)


@lru_cache(maxsize=16)
def _formula_after(sep: str) -> re.Pattern[str]:
    """Matches a separator followed by a formula-leading character in a joined CSV line."""
    leads = "".join(re.escape(c) for c in sorted(FORMULA_LEADS))
    return re.compile(f"{re.escape(sep)}[{leads}]")


def make_filters(*, timezone: str | None = None) -> dict[str, Callable[..., Any]]:
    """The filters a partner template can use, with ``date`` bound to the flow's time zone."""
    zone = ZoneInfo(timezone) if timezone else None

    plans: dict[str, tuple[str, Callable[[Any], Any], bool] | None] = {}
    parse = datetime.fromisoformat

    def date_filter(
        value: Any, fmt: str = "%Y-%m-%d", tz: str | None = None, *, empty: str = ""
    ) -> str:
        # Ecolix's date-time text in the flow's zone, in a numeric format: what
        # format_date does, in one call (this runs once per record and column).
        if type(value) is str and len(value) > 10 and tz is None:
            try:
                plan = plans[fmt]
            except (KeyError, TypeError):
                plan = _plan_of(fmt, plans)
            if plan is not None:
                try:
                    moment = parse(value)
                except ValueError:
                    return format_date(value, fmt, zone, empty=empty)  # says why
                if zone is not None and moment.tzinfo is not None:
                    moment = moment.astimezone(zone)
                if moment.year >= MIN_PLAIN_YEAR:
                    text: str = plan[0] % plan[1](moment)
                    return text
        return format_date(value, fmt, tz or zone, empty=empty)

    def datetime_filter(value: Any, fmt: str = "%Y-%m-%dT%H:%M:%S%z", tz: str | None = None) -> str:
        return format_date(value, fmt, tz or zone)

    # A render formats the same prices, rates and weights over and over: the text filters
    # answer those from a dict of their own first (a hit is one tuple and one lookup), which
    # is emptied when it is full. Only non-empty text of a few characters is kept.
    texts: dict[tuple[Any, ...], str] = {}
    numbers: dict[str, Decimal] = {}

    def decimal_filter(
        value: Any, precision: int = 2, sep: str = ".", thousands: str = "", *, empty: str = ""
    ) -> str:
        kind = type(value)
        if kind is Decimal and value.is_finite() and abs(value.adjusted()) < CACHED_TEXT // 2:
            # A computed amount: keyed by its text, and formatted as that text would be.
            text = str(value)
            key = (text, precision, sep, thousands)
            try:
                return texts[key]
            except (KeyError, TypeError):
                return _keep(text, format_decimal(text, precision, sep, thousands), key)
        if kind is not str or not value:
            return format_decimal(value, precision, sep, thousands, empty=empty)
        key = (value, precision, sep, thousands)
        try:
            return texts[key]
        except (KeyError, TypeError):  # TypeError: an argument that cannot be a key
            pass
        return _keep(value, format_decimal(value, precision, sep, thousands), key)

    def _keep(value: str, text: str, key: tuple[Any, ...]) -> str:
        _, _, sep, thousands = key
        if (
            len(value) <= CACHED_TEXT
            and type(sep) is type(thousands) is str
            and len(sep) + len(thousands) <= SHORT_SEPARATORS
        ):
            if len(texts) >= FILTER_CACHE:
                texts.clear()
            texts[key] = text
        return text

    def dec_filter(value: Any, default: Any = None) -> Decimal:
        try:
            return numbers[value]
        except (KeyError, TypeError):
            pass
        number = to_decimal(value, default)
        if type(value) is str and value and len(value) <= CACHED_TEXT:
            if len(numbers) >= FILTER_CACHE:
                numbers.clear()
            numbers[value] = number
        return number

    return {
        "decimal": decimal_filter,
        "dec": dec_filter,
        "date": date_filter,
        "datetime": datetime_filter,
        "pad": pad,
        "csv": csv_cell,
        "csvrow": csv_row,
    }


def local_time(moment: datetime, timezone: str | None) -> datetime:
    """``moment`` in the flow's zone (used for file names and template ``now``)."""
    if timezone is None:
        return moment
    return moment.astimezone(ZoneInfo(timezone))


__all__ = [
    "FORMULA_LEADS",
    "FilterError",
    "csv_cell",
    "csv_row",
    "format_date",
    "format_decimal",
    "local_time",
    "make_filters",
    "pad",
    "parse_datetime",
    "to_decimal",
]
