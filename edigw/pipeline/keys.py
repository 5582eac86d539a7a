"""Idempotency keys for inbound documents.

A key is derived from *where the document came from* — partner, flow, the original file's
hash, the document's business key (and its occurrence, when a file repeats a key) — and never
from the mapping's output. So:

- a replay after a crash at any point sends the same key: Ecolix answers with the stored
  result instead of creating a second object;
- a replay with a corrected mapping sends the same key too: a document that already
  succeeded stays "already done";
- a *new* file (other bytes) about the same customer tomorrow gets a new key and goes through;
- the same bytes received again go through again only under ``duplicates: process``: that
  reception is numbered (``reception``, 2 for the second time), which makes new keys.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

KEY_PREFIX = "edigw-"


def idempotency_key(
    *,
    partner: str,
    flow: str,
    file_sha256: str,
    business_key: str,
    occurrence: int = 1,
    reception: int = 1,
    step: int = 1,
) -> str:
    """The key for the ``occurrence``-th document with ``business_key`` in one file, in the
    ``reception``-th file of this flow with these bytes (keys of a first reception do not
    change with it), and for its ``step``-th write when its mapping chains several (the
    first step keeps the key a one-step mapping gives)."""
    parts = [partner, flow, file_sha256, business_key, str(occurrence)]
    if reception > 1:
        parts.append(f"reception {reception}")
    if step > 1:
        parts.append(f"step {step}")
    material = "\x1f".join(parts)
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


def occurrences(business_keys: Iterable[str]) -> list[int]:
    """Number each business key by how often it was seen so far (1 for the first time).

    A file that updates the same customer twice yields two distinct documents, each with a
    stable key, in file order.
    """
    seen: Counter[str] = Counter()
    numbers = []
    for key in business_keys:
        seen[key] += 1
        numbers.append(seen[key])
    return numbers
