"""File names of exported files from the flow's pattern.

A pattern is a Python format string over four names: ``partner``, ``flow``, ``now`` (an aware
date-time in the flow's time zone, so ``{now:%Y%m%d-%H%M%S}`` shows the partner's local
time) and ``seq`` (the flow's sequence number from the journal), e.g.
``"{partner}_{flow}_{now:%Y%m%d-%H%M%S}_{seq:05d}.csv"``. It is checked when the
configuration loads (:func:`check_pattern`), so a typo never waits for the first run.

A flow that writes one file per record (``split: record``) may also name the record's fields:
``{record[number]}``, ``{record[seller][siren]}``. Those values come from Ecolix, so from a
partner's data: every character a file name cannot hold (``/``, ``:``, control characters...)
becomes ``_``, and a field that is missing or holds a structure fails the file, naming it.

A pattern names fields, it does not explore them: ``{now.tzinfo.__class__}`` or
``{seq[0]}`` is refused (``str.format`` would follow attributes into Python's internals, like a
template outside its sandbox), and so is a width over ``MAX_WIDTH`` (``{seq:999999999}``
would build a gigabyte before the name is found too long).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from edigw.errors import ConfigError

PATTERN_FIELDS = frozenset({"partner", "flow", "now", "seq"})
RECORD = "record"
"""The name of the record's fields in a ``split: record`` flow's pattern."""
FORBIDDEN_CHARACTERS = frozenset('/\\:*?"<>|\0')
MAX_WIDTH = 255
"""The longest file name most file systems accept, so the widest a field can be."""
_WIDTH = re.compile(r"\d+")
_FIELD = re.compile(r"^(?P<base>[A-Za-z_]\w*)(?P<keys>(?:\[[^\[\]]+\])*)$")
_KEY = re.compile(r"\[([^\[\]]+)\]")
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def split_field(field: str) -> tuple[str, list[str]]:
    """``record[seller][siren]`` → ``("record", ["seller", "siren"])``; ``.`` is refused."""
    match = _FIELD.match(field)
    if match is None:
        return field, []
    return match["base"], _KEY.findall(match["keys"])


def pattern_fields(pattern: str) -> list[tuple[str, str]]:
    """Each ``(field, format spec)`` of ``pattern``; :class:`ConfigError` on bad syntax."""
    try:
        return [
            (f, s or "") for _lit, f, s, _conv in string.Formatter().parse(pattern) if f is not None
        ]
    except ValueError as exc:
        msg = f"file name pattern {pattern!r}: {exc}"
        raise ConfigError(msg) from exc


def uses_record(pattern: str) -> bool:
    """Whether ``pattern`` names a record field (only ``split: record`` flows have one)."""
    return any(split_field(f)[0] == RECORD for f, _spec in pattern_fields(pattern))


def check_pattern(pattern: str, *, per_record: bool = False) -> None:
    """Raise :class:`ConfigError` when ``pattern`` uses an unknown name or bad syntax.

    ``per_record``: the flow writes one file per record, so ``{record[FIELD]}`` is allowed.
    """
    known_fields = PATTERN_FIELDS | {RECORD} if per_record else PATTERN_FIELDS
    sample: dict[str, Any] = {}
    for field, spec in pattern_fields(pattern):
        name, keys = split_field(field)
        if name not in known_fields or (keys and name != RECORD) or (name == RECORD and not keys):
            known = ", ".join(sorted(PATTERN_FIELDS))
            extra = ", {record[FIELD]}" if per_record else ""
            msg = f"file name pattern {pattern!r}: unknown name {{{field}}}; use {known}{extra}"
            raise ConfigError(msg)
        if name != "now" and _too_wide(spec):  # now's spec is strftime: digits are text
            msg = f"file name pattern {pattern!r}: {{{field}:{spec}}} is wider than a file name"
            raise ConfigError(msg)
        if name == RECORD:
            _put(sample, keys, "x")
    file_name(
        pattern,
        partner="p",
        flow="f",
        now=datetime(2000, 1, 1, tzinfo=UTC),
        seq=1,
        record=sample if per_record else None,
    )


def _put(sample: dict[str, Any], keys: Sequence[str], value: str) -> None:
    for key in keys[:-1]:
        sample = sample.setdefault(key, {})
    sample[keys[-1]] = value


def _too_wide(spec: str) -> bool:
    return "{" in spec or any(len(w) > 3 or int(w) > MAX_WIDTH for w in _WIDTH.findall(spec))


class _Names(string.Formatter):
    """``str.format`` that reads ``record[...]`` keys only, and makes their values safe."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        name, keys = split_field(field_name)
        if name not in kwargs or (keys and name != RECORD) or kwargs[name] is None:
            raise KeyError(field_name)
        value = kwargs[name]
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                msg = f"the record has no field {field_name[len(RECORD) :]}"
                raise ValueError(msg)
            value = value[key]
        if name == RECORD:
            value = _record_value(field_name, value)
        return value, field_name


def _record_value(field: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | Mapping | list | tuple):
        msg = f"{{{field}}} holds {type(value).__name__}, not a text or a number"
        raise ValueError(msg)
    if isinstance(value, int | float | Decimal):
        return value
    return _UNSAFE.sub("_", str(value))


def file_name(
    pattern: str,
    *,
    partner: str,
    flow: str,
    now: datetime,
    seq: int,
    record: Mapping[str, Any] | None = None,
) -> str:
    """The file name for one run (or one record); never a path (no separators), never empty."""
    try:
        name = _Names().format(pattern, partner=partner, flow=flow, now=now, seq=seq, record=record)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        msg = f"file name pattern {pattern!r}: {exc}"
        raise ConfigError(msg) from exc
    bad = sorted(set(name) & FORBIDDEN_CHARACTERS)
    if not name.strip() or bad or name in {".", ".."} or len(name) > MAX_WIDTH:
        msg = f"file name pattern {pattern!r} gives {name!r}, which is not a plain file name"
        raise ConfigError(msg)
    return name
