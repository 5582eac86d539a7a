"""Chains: a document's follow-up steps, sent after its first write.

A mapping's ``then:`` (e.g. attach the original file to the supplier invoice just created)
and ``before:`` (e.g. upsert the customer a web-shop order needs) make each document a chain
of writes. Each step is a journal document of its own: its own
idempotency key, attempts and outcome, shown by ``edigw show``. The steps of a document go in
seq order (they share its business key, and the journal hands out only the first unfinished
document of a key in a file: ``edigw.journal.heads``), so by the time a
step is sent every earlier step of its chain has finished; if one failed, the step fails too
with the step named, and ``edigw replay`` sends the chain again from the failed step.

A step's journalled payload carries ``"$chain": {"step": n, "first_seq": s}`` and
placeholders (``edigw.mapping.steps``) filled here, just before the call: values of the first
step's Ecolix answer (or, after ``before:`` steps, the document's own write's: its position
is ``"answer"`` in ``$chain``), and the archived original file (read from the archive, so its bytes
never sit in the journal).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edigw.errors import JournalError
from edigw.journal.archive import Archive
from edigw.journal.rows import DocumentRow
from edigw.journal.store import Journal
from edigw.mapping.steps import ANSWER, CHAIN, ORIGINAL

_PDF = b"%PDF"


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why a step cannot be sent: an earlier step failed, or what it needs is gone."""

    reason: str


def step_payload(
    payload: Mapping[str, Any], *, step: int, first_seq: int, answer: int = 1
) -> dict[str, Any]:
    """A step's payload as journalled: its place in the chain, then its fields.

    ``answer`` is the position of the write whose Ecolix answer ``$answer`` reads: the
    document's own write, after its ``before:`` steps (1 when it has none; then left out).
    """
    chain: dict[str, int] = {"step": step, "first_seq": first_seq}
    if answer != 1:
        chain["answer"] = answer
    return {CHAIN: chain, **payload}


def answer_position(payload: Mapping[str, Any] | None) -> int:
    """Which step's answer a step's ``$answer`` placeholders read (1: the chain's first)."""
    if not payload or CHAIN not in payload:
        return 1
    return int(payload[CHAIN].get("answer", 1))


def chain_of(payload: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """(step number, seq of the chain's first write) of a step's payload; None otherwise."""
    if not payload or CHAIN not in payload:
        return None
    chain = payload[CHAIN]
    return int(chain["step"]), int(chain["first_seq"])


def content_type_of(data: bytes) -> str:
    """What the archived original is, from its first bytes (never from its name)."""
    if data.startswith(_PDF):
        return "application/pdf"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "application/xml"
    return "application/octet-stream"


def _pointer(document: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def resolve(
    doc: DocumentRow, *, journal: Journal, archive: Archive | None
) -> dict[str, Any] | Blocked:
    """The body to send for the step ``doc``: placeholders filled, ``$chain`` removed."""
    chain = chain_of(doc.payload)
    assert chain is not None and doc.payload is not None
    number, first_seq = chain
    earlier = {}
    for other in journal.documents_of(doc.file_id):
        if other.seq == first_seq:
            earlier[1] = other
        else:
            other_chain = chain_of(other.payload)
            if other_chain is not None and other_chain[1] == first_seq and other_chain[0] < number:
                earlier[other_chain[0]] = other
    if earlier.get(1) is None:
        return Blocked(
            f"not sent: the first step of this chain (seq {first_seq}) is not in the journal"
        )
    answered = answer_position(doc.payload)
    first = earlier.get(answered, earlier[1])
    for n in sorted(earlier):
        before = earlier[n]
        # An upsert Ecolix already held (``unchanged``) is as good as done, unless its
        # answer is what this step reads: it has none.
        if before.state != "done" and not (before.state == "unchanged" and n != answered):
            what = f"step {n} (D-{before.id} {before.operation})"
            return Blocked(f"not sent: {what} is {before.state.replace('_', ' ')}")
    body: dict[str, Any] = {}
    original: tuple[bytes, str] | None = None
    for name, value in doc.payload.items():
        if name == CHAIN:
            continue
        if isinstance(value, dict) and ANSWER in value and len(value) == 1:
            found = _pointer(first.ecolix_response, value[ANSWER])
            if found is None:
                return Blocked(
                    f"not sent: the Ecolix answer to step {answered} (D-{first.id}) has no "
                    f"{value[ANSWER]} for {name}"
                )
            body[name] = found
        elif isinstance(value, dict) and ORIGINAL in value and len(value) == 1:
            if original is None:
                loaded = _original(doc, journal=journal, archive=archive)
                if isinstance(loaded, Blocked):
                    return loaded
                original = loaded
            body[name] = _describe(original, value[ORIGINAL])
        else:
            body[name] = value
    return body


def _original(
    doc: DocumentRow, *, journal: Journal, archive: Archive | None
) -> tuple[bytes, str] | Blocked:
    row = journal.file(doc.file_id)
    if archive is None or not row.sha256:
        return Blocked(f"not sent: F-{doc.file_id} has no archived original to send")
    try:
        data = archive.local_copy(row.sha256).read_bytes()
    except (OSError, JournalError) as exc:
        return Blocked(f"not sent: the archived original of F-{doc.file_id} cannot be read ({exc})")
    return data, row.original_name


def _describe(original: tuple[bytes, str], what: str) -> Any:
    data, name = original
    if what == "content_base64":
        return base64.b64encode(data).decode("ascii")
    if what == "sha256":
        return hashlib.sha256(data).hexdigest()
    if what == "size":
        return len(data)
    if what == "file_name":
        return (name.rsplit("/", 1)[-1] or "original")[:255]
    return content_type_of(data)
