"""Expression filters beyond Jinja2's own, registered in the expression sandbox.

Kept apart from ``edigw.mapping.expressions`` (the sandbox itself): each is a small pure
function of the value it filters.
"""

from __future__ import annotations

import hashlib
from typing import Any

FINGERPRINT_LENGTH = 10


def fingerprint(value: Any, length: int = FINGERPRINT_LENGTH) -> str:
    """A short, stable code made from a text (``'jeanne@ex.fr' | lower | fingerprint``:
    ``'5F1C0A9E3B'``): the first ``length`` hex digits of its SHA-256, upper case.

    For identifiers Ecolix needs but the partner's file lacks, such as a customer code for a
    web shop's customer known only by an e-mail address (which a code cannot hold): the same
    text always gives the same code; an empty value is an error, never a code.
    """
    text = "" if value is None else str(value).strip()
    if not text:
        msg = "fingerprint of an empty value"
        raise ValueError(msg)
    if not 4 <= int(length) <= 64:
        msg = f"fingerprint length {length} is not between 4 and 64"
        raise ValueError(msg)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[: int(length)].upper()
