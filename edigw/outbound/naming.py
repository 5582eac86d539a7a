"""File names of exported files from the flow's pattern.

A pattern is a Python format string over four names: ``partner``, ``flow``, ``now`` (an aware
date-time in the flow's time zone, so ``{now:%Y%m%d-%H%M%S}`` shows the partner's local
time) and ``seq`` (the flow's sequence number from the journal), e.g.
``"{partner}_{flow}_{now:%Y%m%d-%H%M%S}_{seq:05d}.csv"``. It is checked when the
configuration loads (:func:`check_pattern`), so a typo never waits for the first run.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

from edigw.errors import ConfigError

PATTERN_FIELDS = frozenset({"partner", "flow", "now", "seq"})
FORBIDDEN_CHARACTERS = frozenset('/\\:*?"<>|\0')


def check_pattern(pattern: str) -> None:
    """Raise :class:`ConfigError` when ``pattern`` uses an unknown name or bad syntax."""
    try:
        fields = [f for _lit, f, _spec, _conv in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        msg = f"file name pattern {pattern!r}: {exc}"
        raise ConfigError(msg) from exc
    for name in fields:
        root = name.split(".")[0].split("[")[0]
        if root not in PATTERN_FIELDS:
            known = ", ".join(sorted(PATTERN_FIELDS))
            msg = f"file name pattern {pattern!r}: unknown name {{{name}}}; use {known}"
            raise ConfigError(msg)
    file_name(pattern, partner="p", flow="f", now=datetime(2000, 1, 1, tzinfo=UTC), seq=1)


def file_name(pattern: str, *, partner: str, flow: str, now: datetime, seq: int) -> str:
    """The file name for one run; never a path (no separators), never empty."""
    try:
        name = pattern.format(partner=partner, flow=flow, now=now, seq=seq)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        msg = f"file name pattern {pattern!r}: {exc}"
        raise ConfigError(msg) from exc
    bad = sorted(set(name) & FORBIDDEN_CHARACTERS)
    if not name.strip() or bad or name in {".", ".."}:
        msg = f"file name pattern {pattern!r} gives {name!r}, which is not a plain file name"
        raise ConfigError(msg)
    return name
