"""Which upserts of a new file need no call: Ecolix already holds their payload.

A web shop that exports its whole customer list each night, then drops it again with one
customer changed, costs one call, not one per customer. ``judge`` marks ``unchanged`` each
pending upsert (``x-edigw-upsert`` in the contract) whose payload hash is the one Ecolix
last accepted for its object, as ``edigw.journal.accepted`` remembers it; every other
upsert is tagged with its object so that the journal records it as on its way.

Creates are never judged (each is a new object), nor a chain's follow-up steps (their body
is only known when they are sent), nor a chain's first write whose Ecolix answer a later
step reads (there is no answer without a call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from edigw.ecolix.contract import ContractError, load_contract
from edigw.journal.accepted import Upsert, payload_sha256
from edigw.journal.rows import NewDocument
from edigw.journal.schema import DocState
from edigw.journal.store import Journal
from edigw.pipeline.chain import answer_position, chain_of


def upsert_of(operation: str, payload: Mapping[str, Any] | None, *, ecolix: str) -> Upsert | None:
    """The object and payload hash of an upsert; None for any other write, for a chain's
    follow-up step, or when the payload lacks its path's values (Ecolix refuses it)."""
    if payload is None or chain_of(payload) is not None:
        return None
    try:
        spec = load_contract().operation(operation)
        if not spec.upsert:
            return None
        target = spec.url_path(payload)
    except ContractError:
        return None
    return Upsert(ecolix, operation, target, payload_sha256(payload))


def judge(docs: Sequence[NewDocument], *, ecolix: str, journal: Journal) -> list[NewDocument]:
    """``docs`` with each pending upsert tagged with its object, and ``unchanged`` when
    Ecolix last accepted the same payload for it and no write of it is on its way (in the
    journal, or earlier in ``docs``)."""
    answered = {
        chain[1]
        for d in docs
        if (chain := chain_of(d.payload)) is not None and answer_position(d.payload) == 1
    }
    tagged: list[NewDocument] = []
    for doc in docs:
        upsert = None
        if doc.state == DocState.PENDING and doc.seq not in answered:
            upsert = upsert_of(doc.operation, doc.payload, ecolix=ecolix)
        tagged.append(doc if upsert is None else replace(doc, upsert=upsert))
    keys = [d.upsert.key for d in tagged if d.upsert is not None]
    if not keys:
        return tagged
    known = journal.accepted_payloads(keys)
    on_the_way: set[tuple[str, str, str]] = set()
    result: list[NewDocument] = []
    for doc in tagged:
        u = doc.upsert
        if u is None:
            result.append(doc)
            continue
        row = known.get(u.key)
        if u.key not in on_the_way and row is not None and row.payload_sha256 == u.payload_sha256:
            note = f"Ecolix already holds this payload for {u.target} (accepted for D-{row.document_id})"
            result.append(replace(doc, state=str(DocState.UNCHANGED), note=note))
        else:
            on_the_way.add(u.key)
            result.append(doc)
    return result
