"""Files received and documents queued in a journal, waiting to be sent: the smallest work a
sender can claim, for tests of claims, heads, leases and commits."""

from __future__ import annotations

from datetime import UTC, datetime

from edigw.journal import DoneOutcome, Journal, NewDocument, NextClaim


def received_file(
    journal: Journal,
    *,
    partner: str = "shop",
    flow: str = "flow00",
    name: str = "orders.csv",
    now: datetime | None = None,
    ordered: bool = True,
    reader: str | None = None,
) -> int:
    """The id of a new file ``name`` of ``partner``/``flow``, received from a local inbox
    (being read by ``reader``, if given)."""
    return journal.add_file(
        partner=partner,
        flow=flow,
        channel="local:inbox",
        original_name=name,
        source_path=f"/in/{name}",
        size=10,
        sha256="e" * 64,
        archive_path="/archive/e",
        now=now or datetime.now(UTC),
        ordered=ordered,
        reader=reader,
    )


def queued_document(journal: Journal, *, flow: str = "flow00", now: datetime | None = None) -> int:
    """The id of one ``orders.create`` document (key CMD-1) of a new file of ``flow``."""
    now = now or datetime.now(UTC)
    file_id = received_file(journal, flow=flow, now=now)
    [doc_id] = journal.add_documents(
        file_id,
        [
            NewDocument(
                seq=1,
                business_key="CMD-1",
                operation="orders.create",
                payload={"number": "CMD-1"},
                idempotency_key=f"{file_id}-1",
            )
        ],
        now=now,
    )
    return doc_id


def keyed_documents(file_id: int, keys: list[str], *, first: int = 1) -> list[NewDocument]:
    """One pending ``orders.create`` document per business key of ``keys``, in file order
    from position ``first``."""
    return [
        NewDocument(
            seq=seq,
            business_key=key,
            operation="orders.create",
            payload={"number": key, "seq": seq},
            idempotency_key=f"{file_id}-{seq}",
            state="pending",
        )
        for seq, key in enumerate(keys, start=first)
    ]


def sent_and_done(journal: Journal, doc_id: int, *, now: datetime, named: bool = False) -> bool:
    """A claimed document's call made and accepted by Ecolix; whether its file may now be
    complete. ``named``: its file named, as a sender names it."""
    file_id = journal.document(doc_id).file_id if named else None
    journal.mark_sent(doc_id, now=now)
    return journal.mark_done(
        doc_id, now=now, status=201, object_id=f"O-{doc_id}", response=None, file_id=file_id
    )


def done_claiming_next(
    journal: Journal,
    doc_id: int,
    *,
    now: datetime,
    file_id: int | None = None,
    node: str = "node-a",
    lease: float = 60.0,
) -> DoneOutcome:
    """A sent document's success recorded as a sender records it: its file named (looked up
    unless given), and the next due document claimed with the done."""
    return journal.mark_done_finishing(
        doc_id,
        now=now,
        status=201,
        object_id=f"O-{doc_id}",
        response=None,
        file_id=journal.document(doc_id).file_id if file_id is None else file_id,
        claim_next=NextClaim(node, lease),
    )
