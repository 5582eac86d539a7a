"""Naming candidates in error messages: all of them (up to a limit), the nearest first.

A consultant who mistypes ``Qte`` for ``Qté`` or ``decimall`` for ``decimal`` needs the
right name at once, not "or 4 other candidates". Every message that names candidates goes
through here, so they all read alike::

    column 'Qte' not found in the header at line 1; did you mean 'Qté'? (columns: 'Qté', ...)

Closeness is ``difflib``'s ratio on case- and accent-folded names, so ``qty`` is close to
``Qty`` and ``quantite`` to ``Quantité``.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable, Iterable

LIMIT = 25  # candidates shown; the rest are counted ("and 31 more")
CUTOFF = 0.6  # difflib's usual threshold for "close"


def fold(text: str) -> str:
    """Lower case without accents: ``Qté`` -> ``qte``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def closeness(wanted: str, candidate: str) -> float:
    """0..1, 1 for the same name up to case and accents."""
    a, b = fold(wanted), fold(candidate)
    if a == b:
        return 1.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    if min(len(a), len(b)) >= 3:
        if a.startswith(b) or b.startswith(a):
            return max(ratio, 0.9)  # NET45 is nearer NET45EOM than NET15
        if a in b or b in a:
            return max(ratio, 0.7)  # sku in partner_sku
    return ratio


def close_matches(wanted: str, candidates: Iterable[str], *, cutoff: float = CUTOFF) -> list[str]:
    """The candidates close to ``wanted``, nearest first."""
    scored = [(closeness(wanted, c), i, c) for i, c in enumerate(dict.fromkeys(candidates))]
    return [c for score, _, c in sorted(scored, key=lambda s: (-s[0], s[1])) if score >= cutoff]


def ranked(wanted: str, candidates: Iterable[str]) -> list[str]:
    """Every candidate once: the close ones first (nearest first), then the rest in order."""
    unique = list(dict.fromkeys(candidates))
    close = close_matches(wanted, unique)
    return close + [c for c in unique if c not in close]


def listing(
    names: list[str],
    *,
    quote: Callable[[str], str] = repr,
    last: str = ", ",
    limit: int = LIMIT,
) -> str:
    """``'a', 'b', 'c'`` (``last`` joins the final two, e.g. " or "); ``and N more`` past limit."""
    shown = [quote(n) for n in names[:limit]]
    if len(names) > limit:
        return ", ".join(shown) + f" and {len(names) - limit} more"
    if len(shown) > 1:
        return ", ".join(shown[:-1]) + last + shown[-1]
    return shown[0] if shown else "none"


def hint(wanted: str, candidates: Iterable[str], *, quote: Callable[[str], str] = repr) -> str:
    """``; did you mean 'X'?`` when a candidate is close, else ``''``."""
    close = close_matches(wanted, candidates)
    return f"; did you mean {quote(close[0])}?" if close else ""


def unknown(
    problem: str,
    wanted: str,
    candidates: Iterable[str],
    *,
    noun: str,
    quote: Callable[[str], str] = repr,
) -> str:
    """``problem; did you mean 'X'? (noun: 'X', 'a', 'b', ...)``, the nearest first."""
    names = list(dict.fromkeys(candidates))
    if not names:
        return f"{problem} ({noun}: none)"
    return (
        f"{problem}{hint(wanted, names, quote=quote)} "
        f"({noun}: {listing(ranked(wanted, names), quote=quote)})"
    )
