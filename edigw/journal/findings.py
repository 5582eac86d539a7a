"""What the validation layers found in a file, as the journal keeps it.

The journal knows nothing of the layers themselves (``edigw.validation``): a finding here is
plain text, its layer, rule id, severity, whether it blocked the file, its message and its
source location written out (``invoice.pdf!factur-x.xml:42 /rsm:...``). Kept bounded like
any error text (``edigw.problems``): at most ``MAX_KEPT`` per file, each message cut at
``MAX_KEPT_MESSAGE`` and escaped so that the journal never refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edigw.problems import MAX_KEPT, MAX_KEPT_MESSAGE, cut, printable


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding of a validated file, in the order the layers found them."""

    layer: str  # xsd | en16931 | br-fr
    rule: str  # BR-CO-15, BR-FR-12, XSD, ...
    severity: str  # fatal | error | warning | info
    blocking: bool  # True: it failed the file; False: a warning the file went on with
    message: str
    location: str | None = None

    def __str__(self) -> str:
        head = f"{self.location}: " if self.location else ""
        return f"{head}[{self.rule}] {self.message}"


def finding_rows(file_id: int, found: Sequence[FindingRow]) -> list[dict[str, Any]]:
    """The rows to insert for ``found``: the first ``MAX_KEPT``, escaped and bounded."""
    return [
        {
            "file_id": file_id,
            "seq": seq,
            "layer": f.layer[:20],
            "rule": cut(printable(f.rule), 100),
            "severity": f.severity[:10],
            "blocking": f.blocking,
            "message": cut(printable(f.message), MAX_KEPT_MESSAGE),
            "location": None if f.location is None else cut(printable(f.location), 1000),
        }
        for seq, f in enumerate(found[:MAX_KEPT], 1)
    ]
