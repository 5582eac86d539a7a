"""Upserts not sent twice: what Ecolix last accepted for each object an upsert writes.

A web shop sends its whole customer list every night; most customers have not changed. An
upsert (``x-edigw-upsert`` in the contract) of the payload Ecolix last accepted for the same
object changes nothing there, so it is journalled ``unchanged`` instead of being sent.

The object is the write's *target*, its path (``/customers/C042``), on one Ecolix (base
URL): two flows upserting the same customer share one row, and a journal that switches
from the sandbox to the production Ecolix sends everything once again. One row per target::

    taken in, changed   →  payload_sha256 NULL, document_id = the new document (on its way)
    accepted (done)     →  payload_sha256 = its hash, if it is still the row's document;
                           NULL otherwise (an older write arrived last: unknown)
    any other upsert of the target that is accepted (a chain's step, a replay)  →  NULL

so a row with a hash always says what the last write Ecolix accepted for the target was,
and no write is on its way. A document is ``unchanged`` only against such a row, checked
again in the transaction that journals it. A NULL hash merely costs one call.

Ecolix may still change the object itself (someone edits the customer in the ERP): an
unchanged document does not put it back; ``edigw replay --force D-n`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from edigw.journal.schema import accepted_payloads as accepted

#: (ecolix, operation, target): one row of ``accepted_payloads``.
TargetKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Upsert:
    """One upsert as ``accepted_payloads`` knows it: which object, and which payload."""

    ecolix: str
    operation: str
    target: str
    payload_sha256: str

    @property
    def key(self) -> TargetKey:
        return (self.ecolix, self.operation, self.target)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the journal knows of a target: the last document taken in for it, and the hash
    Ecolix accepted (None while a write is on its way, or when unknown)."""

    document_id: int
    payload_sha256: str | None


def payload_sha256(payload: Mapping[str, Any]) -> str:
    """The hash of a payload's canonical JSON (keys sorted), as sent or about to be."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def known(conn: Connection, keys: Iterable[TargetKey]) -> dict[TargetKey, Accepted]:
    """The rows of ``keys`` (one statement per 300 keys)."""
    wanted = list(dict.fromkeys(keys))
    rows: dict[TargetKey, Accepted] = {}
    for start in range(0, len(wanted), 300):
        chunk = wanted[start : start + 300]
        statement = select(
            accepted.c.ecolix,
            accepted.c.operation,
            accepted.c.target,
            accepted.c.document_id,
            accepted.c.payload_sha256,
        ).where(tuple_(accepted.c.ecolix, accepted.c.operation, accepted.c.target).in_(chunk))
        for e, op, target, doc_id, sha in conn.execute(statement):
            rows[(e, op, target)] = Accepted(doc_id, sha)
    return rows


def expect(
    conn: Connection, upserts: Sequence[tuple[int, Upsert]], *, now: datetime, pg: bool
) -> None:
    """Record that documents (id, upsert) are on their way: what Ecolix holds for their
    targets is unknown until one is accepted. The last of a target in ``upserts`` wins."""
    latest = {u.key: (doc_id, u) for doc_id, u in upserts}
    if not latest:
        return
    dialect_insert = postgresql.insert if pg else sqlite.insert
    statement = dialect_insert(accepted)
    statement = statement.on_conflict_do_update(
        index_elements=[accepted.c.ecolix, accepted.c.operation, accepted.c.target],
        set_={
            "payload_sha256": None,
            "document_id": statement.excluded.document_id,
            "updated_at": statement.excluded.updated_at,
        },
    )
    conn.execute(
        statement,
        [
            {
                "ecolix": u.ecolix,
                "operation": u.operation,
                "target": u.target,
                "payload_sha256": None,
                "document_id": doc_id,
                "updated_at": now,
            }
            for doc_id, u in latest.values()
        ],
    )


def accept(
    conn: Connection, document_id: int, operation: str, target: str, sha256: str, now: datetime
) -> None:
    """Ecolix accepted document ``document_id``'s upsert of ``target`` (payload ``sha256``).

    The row whose document it is (taken in last) gets its hash; any other row of the target
    (another Ecolix, or a newer document on its way) is NULL: it cannot vouch any more.
    """
    conn.execute(
        update(accepted)
        .where(
            accepted.c.operation == operation,
            accepted.c.target == target,
            accepted.c.document_id == document_id,
        )
        .values(payload_sha256=sha256, updated_at=now)
    )
    conn.execute(
        update(accepted)
        .where(
            and_(
                accepted.c.operation == operation,
                accepted.c.target == target,
                accepted.c.document_id != document_id,
                accepted.c.payload_sha256.is_not(None),
            )
        )
        .values(payload_sha256=None, updated_at=now)
    )
