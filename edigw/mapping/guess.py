"""Guessing what a column holds from a few hundred of its values: a type, a format, separators.

Used by the sample survey (``edigw.mapping.survey``): a column of ``03/11/2026`` is a date in
the format ``%d/%m/%Y``, ``1 234,50`` a decimal with a comma and spaces for thousands,
``01000`` a code that must stay text (a postal code, not the number 1000).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

MAX_ROWS = 500  # values kept per column: enough to guess, bounded whatever the file size
EXAMPLES = 3
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y", "%d-%m-%Y", "%Y%m%d", "%Y/%m/%d")
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S",
)
BOOL_WORDS = {"true", "false", "yes", "no", "oui", "non", "vrai", "faux", "o", "n", "x"}
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(
    r"[+-]?\d+(?:[.,]\d+)?"  # 1273, -3.96, 12,50
    r"|[+-]?\d{1,3}(?:[ \u00a0.]\d{3})+(?:,\d+)?"  # 1 234,50 or 1.234,50
    r"|[+-]?\d{1,3}(?:[ \u00a0,]\d{3})+(?:\.\d+)?"  # 1,234.50
    r"|[+-]?[.,]\d+"  # .5
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class Column:
    """One selector of a sample and what its values look like.

    ``kind`` is ``int``, ``decimal``, ``date``, ``datetime``, ``bool``, ``email``, ``code``
    (digits that must stay text: leading zeros, long numbers), ``text`` or ``empty``.
    ``fmt`` is the strptime format of text dates (None: ISO or native dates), ``decimal`` the
    decimal separator of text numbers.
    """

    selector: str
    kind: str
    values: tuple[Any, ...] = ()
    fmt: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    label: str = ""
    nested: bool = False  # XML: inside a repeated element (a top-level read gets the first)

    @property
    def examples(self) -> list[str]:
        seen: list[str] = []
        for value in self.values:
            text = text_of(value)
            if text and text not in seen:
                seen.append(text)
            if len(seen) == EXAMPLES:
                break
        return seen


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _fits(texts: Sequence[str], fmt: str) -> bool:
    try:
        for text in texts:
            datetime.strptime(text, fmt)  # noqa: DTZ007 - a format test, no moment is kept
    except ValueError:
        return False
    return True


def guess(selector: str, values: Sequence[Any], *, label: str = "") -> Column:
    """The Column of ``values`` (raw values as a reader gives them, None for empty)."""
    kept = tuple(values[:MAX_ROWS])
    present = [v for v in kept if v is not None and text_of(v) != ""]
    if not present:
        return Column(selector, "empty", kept, label=label)
    if all(isinstance(v, datetime) for v in present):
        return Column(selector, "datetime", kept, label=label)
    if all(isinstance(v, date) for v in present):
        return Column(selector, "date", kept, label=label)
    if all(isinstance(v, bool) for v in present):
        return Column(selector, "bool", kept, label=label)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        if all(float(v).is_integer() for v in present):
            big = any(abs(v) >= 10**12 for v in present)
            return Column(selector, "code" if big else "int", kept, label=label)
        return Column(selector, "decimal", kept, decimal=".", label=label)
    texts = [text_of(v) for v in present]
    kind, fmt, decimal, thousands = text_kind(texts)
    return Column(selector, kind, kept, fmt, decimal, thousands, label)


def text_kind(texts: list[str]) -> tuple[str, str | None, str | None, str | None]:
    if all(_INT.fullmatch(t) for t in texts):
        if any(len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0") for t in texts):
            return "code", None, None, None
        if all(len(t) == 8 for t in texts) and _fits(texts, "%Y%m%d"):
            return "date", "%Y%m%d", None, None
        if any(len(t.lstrip("+-")) >= 12 for t in texts):
            return "code", None, None, None
        return "int", None, None, None
    for fmt in DATE_FORMATS:
        if _fits(texts, fmt):
            return "date", None if fmt == "%Y-%m-%d" else fmt, None, None
    if all(_iso_datetime(t) for t in texts):
        return "datetime", None, None, None
    for fmt in DATETIME_FORMATS:
        if _fits(texts, fmt):
            return "datetime", fmt, None, None
    if all(_DECIMAL.fullmatch(t) for t in texts):
        comma = any("," in t and "." not in t for t in texts) and not any(
            re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", t) for t in texts
        )
        if any(re.search(r"\d,\d{3}\.\d", t) for t in texts):
            comma = False
        separator = "," if comma else "."
        thousands = None
        if any(re.search(r"\d[ \u00a0]\d{3}", t) for t in texts):
            thousands = " "
        elif comma and any(re.search(r"\d\.\d{3}(,|$)", t) for t in texts):
            thousands = "."
        return "decimal", None, separator, thousands
    if all(t.casefold() in BOOL_WORDS for t in texts) and len({t.casefold() for t in texts}) > 1:
        return "bool", None, None, None
    if all(_EMAIL.fullmatch(t) for t in texts):
        return "email", None, None, None
    return "text", None, None, None


def _iso_datetime(text: str) -> bool:
    if "T" not in text:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
