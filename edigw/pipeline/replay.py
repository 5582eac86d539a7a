"""Replaying files from the archive with the *current* mapping.

The operator fixed a mapping or a lookup table, or Ecolix was down too long: replay maps the
archived original again and queues what is not done yet. Documents are matched to the ones
journalled before by business key and occurrence, and keep their idempotency keys, so a
document that already succeeded stays "already done" (Ecolix would answer with the stored
result anyway) and nothing is created twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edigw.errors import EdigwError
from edigw.journal.archive import Archive
from edigw.journal.store import Journal, NewDocument
from edigw.model import MappedDocument
from edigw.pipeline.inbound import FlowContext, _new_document, describe_problems, reception_of
from edigw.pipeline.keys import occurrences


@dataclass(slots=True)
class ReplayPlan:
    """What a replay does (or, with ``--dry-run``, would do) to one file's documents."""

    file_id: int
    already_done: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def show_id(self) -> str:
        return f"F-{self.file_id}"


def replay_file(
    file_id: int,
    *,
    flow: FlowContext,
    journal: Journal,
    archive: Archive,
    now: datetime,
    only_document: int | None = None,
    dry_run: bool = False,
) -> ReplayPlan:
    """Map the archived file again and requeue its unfinished documents."""
    row = journal.file(file_id)
    plan = ReplayPlan(file_id)
    if not row.sha256:
        plan.error = f"F-{file_id} was never archived ({row.error}); nothing to replay"
        return plan
    try:
        mapped = list(
            flow.mapping.map_file(
                archive.path_of(row.sha256), source_name=row.original_name, encoding=flow.encoding
            )
        )
    except EdigwError as exc:
        plan.error = str(exc)
        if not dry_run:
            journal.set_file_state(file_id, "failed", now=now, error=str(exc))
        return plan

    docs = journal.documents_of(file_id)
    existing = {
        (d.business_key, n): d
        for d, n in zip(docs, occurrences(d.business_key for d in docs), strict=True)
    }
    new_rows: list[NewDocument] = []
    next_seq = max((d.seq for d in docs), default=0) + 1
    reception = reception_of(row, journal)
    for doc, n in zip(mapped, occurrences(d.key for d in mapped), strict=True):
        old = existing.get((doc.key, n))
        label = f"{doc.key}" if n == 1 else f"{doc.key} (#{n})"
        if only_document is not None and (old is None or old.id != only_document):
            continue
        if old is None:
            plan.added.append(label)
            new_rows.append(
                _new_document(next_seq, doc, n, flow=flow, sha256=row.sha256, reception=reception)
            )
            next_seq += 1
        elif old.state == "done":
            plan.already_done.append(f"D-{old.id} {label}: {old.ecolix_object_id or 'done'}")
        elif not doc.ok or doc.payload is None:
            plan.still_failing.append(f"D-{old.id} {label}: {describe_problems(doc.problems)}")
            if not dry_run:
                journal.mark_failed(old.id, now=now, reason=describe_problems(doc.problems))
        else:
            plan.requeued.append(f"D-{old.id} {label}")
            if not dry_run:
                journal.reset_for_replay(
                    old.id, payload=_payload(doc), operation=doc.operation, now=now
                )
    if not dry_run:
        if new_rows:
            journal.add_documents(file_id, new_rows, now=now)
        if plan.requeued or plan.added:
            journal.set_file_state(file_id, "parsed", now=now)
        journal.finish_file_if_complete(file_id, now=now)
    return plan


def _payload(doc: MappedDocument) -> dict[str, object]:
    assert doc.payload is not None
    return doc.payload
