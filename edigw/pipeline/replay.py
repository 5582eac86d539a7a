"""Replaying files from the archive with the *current* mapping.

The operator fixed a mapping or a lookup table, or Ecolix was down too long: replay maps the
archived original again and queues what is not done yet. Documents are matched to the ones
journalled before by business key and occurrence, and keep their idempotency keys, so a
document that already succeeded stays "already done" (Ecolix would answer with the stored
result anyway) and nothing is created twice.

``edigw replay`` is here too: ``select_replay`` turns its arguments into files and export
runs, ``replay_items`` replays each and sends what was requeued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edigw.channels.base import JournalSeenFiles
from edigw.config import GatewayConfig
from edigw.errors import EdigwError
from edigw.journal.archive import Archive, ArchiveMissingCopy
from edigw.journal.rows import DocumentRow, NewDocument
from edigw.journal.store import Journal
from edigw.model import MappedDocument, MappedStep
from edigw.pipeline.assembly import Parts, inbound_channel, open_journal, open_parts
from edigw.pipeline.chain import chain_of, step_payload
from edigw.pipeline.file_documents import chain_documents, describe_problems, step_documents
from edigw.pipeline.inbound import FINAL_FILE_STATES, FlowContext, reception_of
from edigw.pipeline.keys import occurrences
from edigw.pipeline.review import parse_id, split_flow
from edigw.pipeline.signals import utc_now
from edigw.pipeline.stories import drain_file
from edigw.pipeline.tidy import clear_error_copy, error_copy_of
from edigw.pipeline.tidy import describe as describe_clearing
from edigw.pipeline.unchanged import upsert_of


@dataclass(slots=True)
class ReplayPlan:
    """What a replay does (or, with ``--dry-run``, would do) to one file's documents."""

    file_id: int
    already_done: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: upserts Ecolix already held (not sent; ``force`` sends them)
    unchanged: list[str] = field(default_factory=list)
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
    force: bool = False,
) -> ReplayPlan:
    """Map the archived file again and requeue its unfinished documents; with ``force``,
    its ``unchanged`` upserts too (sent although Ecolix accepted the same payload last).
    An unchanged upsert whose payload the current mapping changes is sent either way."""
    row = journal.file(file_id)
    plan = ReplayPlan(file_id)
    if not row.sha256:
        plan.error = f"F-{file_id} was never archived ({row.error}); nothing to replay"
        return plan
    try:
        original = archive.local_copy(row.sha256)
    except ArchiveMissingCopy as exc:
        # Not the file's fault (a copy removed by hand, or kept on another node's disk):
        # say which copy, and leave the file's state alone.
        plan.error = f"{row.original_name}: {exc}"
        return plan
    if flow.validation is not None:
        from edigw.pipeline.validating import validate_file

        verdict = validate_file(original, source_name=row.original_name, policy=flow.validation)
        if verdict is not None and not dry_run:
            journal.keep_findings(file_id, verdict.findings, summary=verdict.summary, now=now)
        if verdict is not None and verdict.blocked:
            plan.error = verdict.error()
            if not dry_run:
                journal.set_file_state(
                    file_id, "failed", now=now, error=plan.error, problems=verdict.blocking
                )
            return plan
    try:
        mapped = list(
            flow.mapping.map_file(
                original,
                source_name=row.original_name,
                encoding=flow.encoding,
                limits=flow.limits,
            )
        )
    except EdigwError as exc:
        plan.error = str(exc)
        if not dry_run:
            journal.set_file_state(file_id, "failed", now=now, error=str(exc))
        return plan

    docs = journal.documents_of(file_id)
    firsts = [d for d in docs if chain_of(d.payload) is None]
    steps: dict[int, dict[int, DocumentRow]] = {}
    for d in docs:
        chain = chain_of(d.payload)
        if chain is not None:
            steps.setdefault(chain[1], {})[chain[0]] = d
    existing = {
        (d.business_key, n): d
        for d, n in zip(firsts, occurrences(d.business_key for d in firsts), strict=True)
    }
    new_rows: list[NewDocument] = []
    next_seq = max((d.seq for d in docs), default=0) + 1
    reception = reception_of(row, journal)
    for doc, n in zip(mapped, occurrences(d.key for d in mapped), strict=True):
        old = existing.get((doc.key, n))
        label = f"{doc.key}" if n == 1 else f"{doc.key} (#{n})"
        chain_ids = [] if old is None else [s.id for s in steps.get(old.seq, {}).values()]
        if only_document is not None and (
            old is None or (old.id != only_document and only_document not in chain_ids)
        ):
            continue
        if old is None:
            plan.added.append(label)
            rows = chain_documents(
                next_seq, doc, n, flow=flow, sha256=row.sha256, reception=reception
            )
            new_rows.extend(rows)
            next_seq += len(rows)
            continue
        only_steps = only_document is not None and only_document != old.id
        if doc.skipped is not None and old.state in ("done", "skipped"):
            plan.already_done.append(f"D-{old.id} {label}: {old.state}")
            continue
        if doc.skipped is not None:
            plan.skipped.append(f"D-{old.id} {label}: {doc.skipped}")
            if not dry_run and old.state == "failed":
                journal.mark_skipped(old.id, now=now, reason=doc.skipped)
            continue
        if only_steps:
            pass
        elif old.state == "unchanged" and not _sent_anyway(old, doc, force=force):
            plan.unchanged.append(f"D-{old.id} {label}: Ecolix already holds this payload")
        elif old.state == "unchanged":
            plan.requeued.append(f"D-{old.id} {label}")
            if not dry_run:
                _requeue(journal, old, doc, flow=flow, now=now)
        elif old.state == "done":
            plan.already_done.append(f"D-{old.id} {label}: {old.ecolix_object_id or 'done'}")
        elif not doc.ok or doc.payload is None:
            plan.still_failing.append(f"D-{old.id} {label}: {describe_problems(doc.problems)}")
            if not dry_run:
                journal.mark_failed(old.id, now=now, reason=describe_problems(doc.problems))
            continue
        else:
            plan.requeued.append(f"D-{old.id} {label}")
            if not dry_run:
                _requeue(journal, old, doc, flow=flow, now=now)
        missing = []
        for number, step in enumerate(_payload(doc)[1:], start=2):
            old_step = steps.get(old.seq, {}).get(number)
            step_label = f"{label} step {number} {step.operation}"
            if (
                only_document is not None
                and only_steps
                and (old_step is None or old_step.id != only_document)
            ):
                continue
            if old_step is None:
                missing.append(number)
                plan.added.append(step_label)
            elif old_step.state == "done":
                plan.already_done.append(f"D-{old_step.id} {step_label}: done")
            elif old_step.state == "failed":
                plan.requeued.append(f"D-{old_step.id} {step_label}")
                if not dry_run:
                    journal.reset_for_replay(
                        old_step.id,
                        payload=step_payload(
                            step.payload,
                            step=number,
                            first_seq=old.seq,
                            answer=doc.main_position,
                        ),
                        operation=step.operation,
                        now=now,
                        mapping_version=flow.mapping_version or None,
                    )
        if missing:
            rows = step_documents(
                doc,
                n,
                missing,
                first_seq=old.seq,
                at=next_seq,
                flow=flow,
                sha256=row.sha256,
                reception=reception,
            )
            new_rows.extend(rows)
            next_seq += len(rows)
    if not dry_run:
        if new_rows:
            journal.add_documents(file_id, new_rows, now=now)
        if plan.requeued or plan.added:
            journal.set_file_state(file_id, "parsed", now=now)
        journal.finish_file_if_complete(file_id, now=now)
    return plan


def _requeue(
    journal: Journal, old: DocumentRow, doc: MappedDocument, *, flow: FlowContext, now: datetime
) -> None:
    """Make ``old`` pending again with the re-mapped first step. An ``unchanged`` one is
    forced (sent although Ecolix holds this payload, the upsert saying which object); any
    other records the mapping version that made the new payload."""
    head = _payload(doc)[0]
    unchanged = old.state == "unchanged"
    journal.reset_for_replay(
        old.id,
        payload=head.payload,
        operation=head.operation,
        now=now,
        force=unchanged,
        upsert=upsert_of(head.operation, head.payload, ecolix=flow.ecolix) if unchanged else None,
        mapping_version=None if unchanged else flow.mapping_version or None,
    )


def _sent_anyway(old: DocumentRow, doc: MappedDocument, *, force: bool) -> bool:
    """Whether an ``unchanged`` document is sent: asked to (``force``), or the current
    mapping makes another payload of it (never when the mapping now fails on it)."""
    if not doc.ok or doc.payload is None:
        return False
    if force:
        return True
    head = _payload(doc)[0]
    return (head.operation, dict(head.payload)) != (old.operation, old.payload)


def _payload(doc: MappedDocument) -> list[MappedStep]:
    """The document's chain of writes (its first is the journal row the others hang on)."""
    assert doc.payload is not None
    return doc.writes()


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayItem:
    kind: str  # "F" (file, optionally one document) or "R" (export run)
    number: int
    document: int | None = None


@dataclass(slots=True)
class ReplayResult:
    item: ReplayItem
    plan: ReplayPlan | None = None
    outcome: str = ""
    error: str = ""
    #: What became of the copy the file's failure left in the error folder ("": nothing).
    error_copy: str = ""

    def lines(self) -> list[str]:
        if self.item.kind == "R":
            return [f"R-{self.item.number}: {self.error or self.outcome}"]
        plan = self.plan
        head = f"F-{self.item.number}: {self.error or self.outcome}"
        if plan is None:
            return [head]
        lines = [head]
        lines += [f"  already done  {x}" for x in plan.already_done]
        lines += [f"  sent again    {x}" for x in plan.requeued]
        lines += [f"  new           {x}" for x in plan.added]
        lines += [f"  still failing {x}" for x in plan.still_failing]
        lines += [f"  skipped       {x}" for x in plan.skipped]
        lines += [f"  unchanged     {x} (--force sends it)" for x in plan.unchanged]
        if self.error_copy:
            lines.append(f"  {self.error_copy}")
        return lines


def select_replay(
    config: GatewayConfig,
    ids: Sequence[str],
    *,
    failed: bool,
    since: datetime | None,
    flow: str | None,
) -> list[ReplayItem]:
    """Turn ``edigw replay`` arguments into the files (and export runs) to replay."""
    items: list[ReplayItem] = []
    journal = open_journal(config)
    try:
        for text in ids:
            kind, number = parse_id(text)
            if kind == "D":
                items.append(ReplayItem("F", journal.document(number).file_id, number))
            else:
                items.append(ReplayItem(kind, number))
        if failed or since is not None:
            partner, name = split_flow(flow) if flow else (None, None)
            # --failed: the failures still open; one an operator resolved stays as it is
            # unless named by its id.
            for listed in journal.file_listing(
                partner=partner,
                flow=name,
                resolved=False if failed else None,
                since=since,
                limit=None,
            ):
                items.append(ReplayItem("F", listed.file.id))
    finally:
        journal.close()
    return list(dict.fromkeys(sorted(items, key=lambda i: (i.kind, i.number, i.document or 0))))


def replay_items(
    config: GatewayConfig,
    items: Sequence[ReplayItem],
    *,
    dry_run: bool,
    clock: Callable[[], datetime] = utc_now,
    force: bool = False,
) -> Iterator[ReplayResult]:
    """Replay each item in turn, sending what was requeued; yields one result per item.
    ``force``: send the documents journalled ``unchanged`` too."""
    with open_parts(config, with_channels=False) as parts:
        for item in items:
            try:
                yield _replay_one(parts, item, dry_run=dry_run, clock=clock, force=force)
            except EdigwError as exc:
                yield ReplayResult(item, error=str(exc))


def _replay_one(
    parts: Parts,
    item: ReplayItem,
    *,
    dry_run: bool,
    clock: Callable[[], datetime],
    force: bool = False,
) -> ReplayResult:
    if item.kind == "R":
        from edigw.pipeline.exports import replay_export

        if dry_run:
            run = parts.journal.export_run(item.number)
            return ReplayResult(item, outcome=f"would deliver {run.file_name} again")
        return ReplayResult(item, outcome=replay_export(parts, item.number))
    row = parts.journal.file(item.number)
    flow_id = f"{row.partner}/{row.flow}"
    runtime = parts.inbound.get(flow_id)
    if runtime is None:
        return ReplayResult(item, error=f"flow {flow_id} is no longer configured")
    plan = replay_file(
        row.id,
        flow=runtime.context,
        journal=parts.journal,
        archive=parts.archive,
        now=clock(),
        only_document=item.document,
        dry_run=dry_run,
        force=force,
    )
    if plan.error:
        return ReplayResult(item, plan, error=plan.error)
    if dry_run:
        return ReplayResult(item, plan, outcome="dry run, nothing changed")
    drain_file(parts, row.id, clock=clock, max_wait=60.0)
    row = parts.journal.file(row.id)
    state = row.state
    outcome = state if state in FINAL_FILE_STATES else f"{state} (documents waiting for a retry)"
    result = ReplayResult(item, plan, outcome=outcome)
    if state == "done" and error_copy_of(parts.journal, row.id) is not None:
        channel = inbound_channel(
            runtime.config,
            seen=JournalSeenFiles(parts.journal),
            data_dir=Path(parts.config.data_dir),
            sftp=parts.sftp,
        )
        try:
            result.error_copy = describe_clearing(
                clear_error_copy(parts.journal, channel, row, now=clock())
            )
        finally:
            channel.close()
    return result
