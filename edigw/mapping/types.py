"""Value conversions: raw reader values (strings, Excel numbers and dates) to contract values.

Each ``converter(...)`` is built once per mapped field and returns a small function that raises
``ValueError`` with a message for people. Conventions of the Ecolix contract: decimals are
strings with a dot (``"12.50"``), dates ``YYYY-MM-DD``, date-times ISO 8601 with an offset.

Speed matters here (every cell of every file passes through): ``strptime`` costs ~5 µs a call,
so formats made only of ``%d %m %Y %y %H %M %S`` and literal characters are compiled into a
regular expression, and date conversions are memoised per distinct raw text (a file of
100,000 lines holds a few hundred distinct dates).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

TYPES = ("string", "int", "decimal", "date", "datetime", "bool")
TRUE_VALUES = ("1", "true", "yes", "y", "oui", "o", "vrai", "x")
FALSE_VALUES = ("0", "false", "no", "n", "non", "faux")
EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - Excel serial dates are naive
_SAMPLE_OFFSET = timezone(timedelta(hours=1))
#: A day number as Excel writes it when a date cell is saved as text (``46329``, ``46329.5``).
_SERIAL = re.compile(r"\d{1,7}(?:\.\d+)?")
#: What follows a date and time when it carries an offset: `` +0100``, ``+01:00``, ``Z``.
_OFFSET_TAIL = re.compile(r"\s?(?:[+-]\d{2}:?\d{2}|Z|UTC|GMT)$")
_CACHE_LIMIT = 4096
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_INT = re.compile(r"[+-]?\d+")
_DIRECTIVES = {
    "d": r"(?P<d>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "H": r"(?P<H>\d{1,2})",
    "M": r"(?P<M>\d{2})",
    "S": r"(?P<S>\d{2})",
}

Converter = Callable[[Any], Any]


def converter(
    kind: str,
    *,
    fmt: str | None = None,
    decimal_sep: str = ".",
    thousands: str = "",
    scale: int | None = None,
    tz: tzinfo | None = None,
    true_values: Iterable[str] = TRUE_VALUES,
    false_values: Iterable[str] = FALSE_VALUES,
) -> Converter:
    """The conversion function for one field; ``kind`` is one of ``TYPES``."""
    if kind == "string":
        return to_string
    if kind == "int":
        return _int_converter(thousands)
    if kind == "decimal":
        general = _memoised(_decimal_converter(decimal_sep, thousands, scale))
        plain = plain_decimal(decimal_sep, thousands, scale)
        if plain is None:
            return general
        fullmatch = plain.fullmatch

        def to_decimal(value: Any) -> Any:
            if value.__class__ is str and fullmatch(value):
                return value.replace(decimal_sep, ".")
            return general(value)

        return to_decimal
    if kind == "date":
        return _memoised(_date_converter(fmt))
    if kind == "datetime":
        return _memoised(_datetime_converter(fmt, tz))
    if kind == "bool":
        return _bool_converter(true_values, false_values)
    msg = f"unknown type {kind!r} (expected one of {', '.join(TYPES)})"
    raise ValueError(msg)


def plain_decimal(decimal_sep: str, thousands: str, scale: int | None) -> re.Pattern[str] | None:
    """Digits with at most one separator inside (``1234,50``): text that the decimal
    converter returns as is but for the separator, replaced by a dot. None when that shortcut
    does not hold for these options (a scale to round to, a digit or ambiguous separator)."""
    if scale is not None or len(decimal_sep) != 1 or decimal_sep.isdigit():
        return None
    if thousands == decimal_sep or thousands.isdigit():
        return None
    return re.compile(rf"[0-9]+(?:{re.escape(decimal_sep)}[0-9]+)?")


def check_format(fmt: str, kind: str) -> None:
    """Raise ``ValueError`` when ``fmt`` is not a usable date/datetime format."""
    if "%" not in fmt:
        msg = f"format {fmt!r} has no % directive (e.g. %d/%m/%Y)"
        raise ValueError(msg)
    # An offset (%z) needs an aware sample: a naive one renders %z as nothing, which would
    # refuse a good format with a value nobody wrote.
    sample = datetime(2024, 12, 31, 23, 59, 58, tzinfo=_SAMPLE_OFFSET)
    text = sample.strftime(fmt)
    try:
        parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone in the format, or none
    except ValueError as exc:
        msg = f"format {fmt!r} cannot read back the dates it writes (e.g. {text!r}): {exc}"
        raise ValueError(msg) from None
    if kind == "date" and parsed.date() != sample.date():
        msg = f"format {fmt!r} does not hold a full date (day, month and year)"
        raise ValueError(msg)


def to_string(value: Any) -> str:
    """Text as is; Excel's floats lose their ``.0`` so that EAN13 codes survive intact."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _int_converter(thousands: str) -> Converter:
    def to_int(value: Any) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            msg = f"{value!r} is not a whole number"
            raise ValueError(msg)
        text = str(value).strip()
        if thousands:
            text = text.replace(thousands, "")
        if _INT.fullmatch(text):
            return int(text)
        msg = f"{value!r} is not a whole number"
        raise ValueError(msg)

    return to_int


def _decimal_converter(decimal_sep: str, thousands: str, scale: int | None) -> Converter:
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None
    spaces = thousands in (" ", "\u00a0", "\u202f")
    comma = decimal_sep != "."

    def to_decimal(value: Any) -> str:
        if value.__class__ is str:
            text = value.strip()
            if spaces:
                if " " in text or "\u00a0" in text or "\u202f" in text:
                    text = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
            elif thousands and thousands in text:
                text = text.replace(thousands, "")
            if comma:
                if "." in text:
                    msg = f"{value!r} is not a decimal with {decimal_sep!r} as decimal separator"
                    raise ValueError(msg)
                text = text.replace(decimal_sep, ".")
            if not _DECIMAL.fullmatch(text):
                msg = f"{value!r} is not a decimal number"
                raise ValueError(msg)
            if quantum is None:
                if text[0] == "+":
                    text = text[1:]
                if text[0] == ".":
                    text = "0" + text
                elif text.endswith("."):
                    text = text[:-1]
                return text
            number = Decimal(text)
        elif isinstance(value, bool):
            msg = f"{value!r} is not a decimal number"
            raise ValueError(msg)
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, Decimal):
            number = value
        else:
            msg = f"{value!r} is not a decimal number"
            raise ValueError(msg)
        if quantum is not None:
            try:
                number = number.quantize(quantum, rounding=ROUND_HALF_UP)
            except InvalidOperation as exc:
                msg = f"{value!r} is too large"
                raise ValueError(msg) from exc
        text = format(number, "f")
        return text[1:] if text.startswith("+") else text

    return to_decimal


def _compile_format(fmt: str) -> re.Pattern[str] | None:
    """A regex for formats made of simple numeric directives, else None (use strptime)."""
    parts: list[str] = []
    i = 0
    seen: set[str] = set()
    while i < len(fmt):
        char = fmt[i]
        if char == "%":
            if i + 1 >= len(fmt):
                return None
            directive = fmt[i + 1]
            if directive == "%":
                parts.append("%")
            elif directive in _DIRECTIVES and directive not in seen:
                parts.append(_DIRECTIVES[directive])
                seen.add(directive)
            else:
                return None
            i += 2
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts))


def _parse_with(pattern: re.Pattern[str] | None, fmt: str, text: str) -> datetime:
    if pattern is None:
        return datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached by the caller
    match = pattern.fullmatch(text)
    if match is None:
        raise ValueError(text)
    parts = match.groupdict()
    if "Y" in parts:
        year = int(parts["Y"])
    elif "y" in parts:
        short = int(parts["y"])
        year = 2000 + short if short < 69 else 1900 + short  # strptime's pivot
    else:
        year = 1900
    return datetime(  # noqa: DTZ001 - zone attached by the caller
        year,
        int(parts.get("m") or 1),
        int(parts.get("d") or 1),
        int(parts.get("H") or 0),
        int(parts.get("M") or 0),
        int(parts.get("S") or 0),
    )


def _excel_serial(value: float) -> datetime:
    if value < 1 or value > 2958465:  # 1900-01-01 .. 9999-12-31
        msg = f"{value!r} is not an Excel date"
        raise ValueError(msg)
    return EXCEL_EPOCH + timedelta(days=value)


def _date_converter(fmt: str | None) -> Converter:
    pattern = _compile_format(fmt) if fmt else None
    expected = fmt or "YYYY-MM-DD"

    def to_date(value: Any) -> str:
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _excel_serial(float(value)).date().isoformat()
        text = str(value).strip()
        try:
            if fmt is None:
                return _iso_or_serial(text).date().isoformat()
            return _parse_with(pattern, fmt, text).date().isoformat()
        except ValueError:
            msg = f"{value!r} is not a date in the format {expected}{_hint(text, fmt)}"
            raise ValueError(msg) from None

    return to_date


def _iso_or_serial(text: str) -> datetime:
    """ISO 8601 with or without a time and an offset, or an Excel day number saved as text.

    A date-time gives its date *as written* (``2026-11-28T23:30:00-05:00`` is the 28th):
    the partner's calendar day, never shifted into another zone.
    """
    if _SERIAL.fullmatch(text):
        return _excel_serial(float(text))
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time())
    return datetime.fromisoformat(text)


def _hint(text: str, fmt: str | None) -> str:
    """Why a value that is almost right does not match, when that can be told."""
    if fmt is None or "%z" in fmt:
        return ""
    tail = _OFFSET_TAIL.search(text)
    if tail is not None and tail.start() > 0:
        try:
            datetime.strptime(text[: tail.start()], fmt)  # noqa: DTZ007 - a check only
        except ValueError:
            return ""
        return f"; it ends with a time-zone offset {tail.group().strip()!r}: add %z to the format"
    return ""


def _datetime_converter(fmt: str | None, tz: tzinfo | None) -> Converter:
    pattern = _compile_format(fmt) if fmt else None
    expected = fmt or "ISO 8601 (YYYY-MM-DDTHH:MM:SS)"

    def finish(moment: datetime) -> str:
        if moment.tzinfo is None:
            if tz is None:
                msg = f"{moment.isoformat()} has no time zone; set the mapping's timezone"
                raise ValueError(msg)
            moment = moment.replace(tzinfo=tz)
        return moment.isoformat()

    def to_datetime(value: Any) -> str:
        if isinstance(value, datetime):
            return finish(value)
        if isinstance(value, date):
            return finish(datetime(value.year, value.month, value.day))  # noqa: DTZ001
        if isinstance(value, int | float) and not isinstance(value, bool):
            return finish(_excel_serial(float(value)).replace(microsecond=0))
        text = str(value).strip()
        try:
            moment = _iso_or_serial(text) if fmt is None else _parse_with(pattern, fmt, text)
        except ValueError:
            msg = f"{value!r} is not a date and time in the format {expected}{_hint(text, fmt)}"
            raise ValueError(msg) from None
        return finish(moment)

    return to_datetime


def _bool_converter(true_values: Iterable[str], false_values: Iterable[str]) -> Converter:
    trues = {v.lower() for v in true_values}
    falses = {v.lower() for v in false_values}
    expected = "/".join(sorted(trues)) + " or " + "/".join(sorted(falses))

    def to_bool(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            if value in (0, 1):
                return bool(value)
        else:
            text = str(value).strip().lower()
            if text in trues:
                return True
            if text in falses:
                return False
        msg = f"{value!r} is not a yes/no value (expected {expected})"
        raise ValueError(msg)

    return to_bool


def _memoised(convert: Converter) -> Converter:
    """Remember results per distinct raw value (errors are not remembered)."""
    cache: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            pass
        except TypeError:
            return convert(value)
        result = convert(value)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = result
        return result

    return cached
