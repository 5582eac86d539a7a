"""Error texts of a bounded size, and the full list of problems in a compact form.

A document with 200,000 bad lines used to make a 13 MB error message, stored in the journal,
written to ``.error.txt``, logged and printed by ``status --json``. Two things replace it::

    problems ──▶ summary (≤ MAX_MESSAGE characters: the first problems, "… and N more problems")
             └─▶ full list (every problem as {location, pointer, message}, up to MAX_KEPT,
                 each message cut at MAX_KEPT_MESSAGE; JSON, zlib-compressed when large)

The summary is what every error text holds (journal, reports, logs, status); the full list
is kept once, in the journal, for ``edigw show F-12 --all``. An error text the journal stores
goes through :func:`storable`: control characters and lone surrogates shown escaped (a NUL
in a partner's file must not make PostgreSQL refuse the very error that reports it), then
bounded. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edigw.errors import DataProblem

#: Characters an error text may hold (its tail says how much more there was).
MAX_MESSAGE = 2048
#: Characters one problem may take in a summary.
MAX_LINE = 500
#: Problems the journal keeps in a full list; beyond, only their number.
MAX_KEPT = 10_000
#: Characters of one message in a full list.
MAX_KEPT_MESSAGE = 2000
#: A full list larger than this (bytes of JSON) is stored zlib-compressed.
COMPRESS_FROM = 4096

_ELLIPSIS = "…"
#: What a stored text never holds raw: C0 controls but tab and newline, DEL, lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long; a cut one ends saying how much was left out."""
    if len(text) <= limit:
        return text
    longest = len(_cut_tail(len(text)))  # the tail never needs more room than this
    keep = max(0, limit - longest)
    return text[:keep] + _cut_tail(len(text) - keep)


def _cut_tail(left_out: int) -> str:
    return f"{_ELLIPSIS} ({left_out:,} more characters)"


def summarize(
    lines: Iterable[str],
    *,
    limit: int = MAX_MESSAGE,
    sep: str = "\n",
    total: int | None = None,
    unit: str = "problems",
) -> str:
    """The first ``lines`` (each cut at ``MAX_LINE``) that fit in about ``limit`` characters,
    then ``… and N more problems``.

    With ``total`` (how many lines there are in all) reading stops at the budget, so a lazy
    sequence of 200,000 problems costs only what is shown; without it the rest is counted.
    """
    shown: list[str] = []
    used = 0
    unread = iter(lines)
    over = 0  # a line read that did not fit
    for line in unread:
        piece = cut(line, MAX_LINE if shown else limit)
        if shown and used + len(sep) + len(piece) > limit:
            over = 1
            break
        used += len(piece) + (len(sep) if shown else 0)
        shown.append(piece)
    if total is None:
        total = len(shown) + over + sum(1 for _ in unread)
    more = total - len(shown)
    text = sep.join(shown)
    if more > 0:
        text += f"{sep}{_ELLIPSIS} and {more:,} more {unit}"
    return text


def bounded(text: str, *, limit: int = MAX_MESSAGE) -> str:
    """Any error text within about ``limit`` characters, line by line when it has lines.

    The safety net where an error text is stored or shown: a text already within the limit
    (nearly always) is returned as is, at the cost of one ``len``.
    """
    if len(text) <= limit:
        return text
    if "\n" not in text:
        return cut(text, limit)
    return summarize(text.split("\n"), limit=limit, unit="lines")


def printable(text: str) -> str:
    """``text`` with control characters (tab and newline aside) shown as ``\\x00`` and lone
    surrogates (undecodable bytes of a name or a file) as ``\\udce9``.

    PostgreSQL refuses NUL in text and its driver refuses lone surrogates: an error that
    quotes a partner's bytes would otherwise be refused by the journal, every time it is
    recorded. A text with nothing to escape (nearly always) is returned as is, after one
    regular-expression scan.
    """
    if _UNSAFE.search(text) is None:
        return text
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def storable(text: str, *, limit: int = MAX_MESSAGE) -> str:
    """An error text as the journal stores it: :func:`printable`, then :func:`bounded`
    (escaping comes first, so that what is stored stays within ``limit``)."""
    return bounded(printable(text), limit=limit)


@dataclass(frozen=True, slots=True)
class ProblemEntry:
    """One problem of a full list: where (as text), which target field, what."""

    location: str | None
    pointer: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.location] if self.location else []
        if self.pointer is not None:
            parts.append(f"[{self.pointer}]")
        head = " ".join(parts)
        return f"{head}: {self.message}" if head else self.message


@dataclass(frozen=True, slots=True)
class ProblemList:
    """A full list of problems as the journal keeps it: the first ``MAX_KEPT`` and the total."""

    entries: tuple[ProblemEntry, ...]
    total: int

    @property
    def left_out(self) -> int:
        return self.total - len(self.entries)

    @classmethod
    def of(cls, problems: Sequence[DataProblem | ProblemEntry]) -> ProblemList:
        entries = tuple(_entry(p) for p in problems[:MAX_KEPT])
        return cls(entries, len(problems))

    def encode(self) -> tuple[bytes, bool]:
        """(bytes to store, whether they are zlib-compressed)."""
        data = json.dumps(
            {
                "total": self.total,
                "problems": [[e.location, e.pointer, e.message] for e in self.entries],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        if len(data) < COMPRESS_FROM:
            return data, False
        return zlib.compress(data, 6), True

    @classmethod
    def decode(cls, data: bytes, *, compressed: bool) -> ProblemList:
        raw = json.loads(zlib.decompress(data) if compressed else data)
        entries = tuple(ProblemEntry(loc, ptr, msg) for loc, ptr, msg in raw["problems"])
        return cls(entries, int(raw["total"]))

    def summary(self, *, limit: int = MAX_MESSAGE) -> str:
        """The bounded text of this list, as an error text holds it."""
        return summarize((str(e) for e in self.entries), limit=limit, total=self.total)


def _entry(problem: DataProblem | ProblemEntry) -> ProblemEntry:
    """One problem as the journal keeps it: escaped like any stored text (:func:`printable`)
    and its message cut at ``MAX_KEPT_MESSAGE``."""
    if isinstance(problem, ProblemEntry):
        location = problem.location
    else:
        location = None if problem.location is None else str(problem.location)
    return ProblemEntry(
        None if location is None else printable(location),
        problem.pointer,
        cut(printable(problem.message), MAX_KEPT_MESSAGE),
    )


def describe(problems: Sequence[DataProblem], *, limit: int = MAX_MESSAGE) -> str:
    """A document's problems as its error text: one per line, each with its place, bounded."""
    return summarize((str(p) for p in problems), limit=limit, total=len(problems))
