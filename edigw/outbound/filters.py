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
from typing import Any
from zoneinfo import ZoneInfo

FORMULA_LEADS = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet evaluate a cell."""

_PLAIN_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:[ .,'\u00a0\u202f][0-9]{3})+)(?:[.,][0-9]+)?\Z"
)
_SIMPLE_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?\Z")


class FilterError(ValueError):
    """A value cannot be formatted as the template asks (becomes a data problem upstream)."""


def _to_decimal(value: Any) -> Decimal:
    if type(value) is str:
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        msg = f"expected a number, got the boolean {value!r}"
        raise FilterError(msg)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        msg = f"expected a number, got {value!r}"
        raise FilterError(msg) from exc


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
    if value is None or value == "":
        return empty
    if type(value) is str:
        return _format_text(value, precision, sep, thousands)
    return _format_number(_to_decimal(value), value, precision, sep, thousands)


@lru_cache(maxsize=8192)
def _format_text(value: str, precision: int, sep: str, thousands: str) -> str:
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


def _format_number(number: Decimal, value: Any, precision: int, sep: str, thousands: str) -> str:
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
    text = str(value).strip()
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
    if value is None or value == "":
        return empty
    moment = parse_datetime(value)
    if isinstance(moment, datetime) and moment.tzinfo is not None and tz is not None:
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        moment = moment.astimezone(zone)
    return moment.strftime(fmt)


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
    text = "" if value is None else str(value)
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
    text = "" if value is None else str(value)
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
    texts = ["" if v is None else v if type(v) is str else str(v) for v in values]
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

    def date_filter(
        value: Any, fmt: str = "%Y-%m-%d", tz: str | None = None, *, empty: str = ""
    ) -> str:
        return format_date(value, fmt, tz or zone, empty=empty)

    def datetime_filter(value: Any, fmt: str = "%Y-%m-%dT%H:%M:%S%z", tz: str | None = None) -> str:
        return format_date(value, fmt, tz or zone)

    return {
        "decimal": format_decimal,
        "dec": to_decimal,
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
