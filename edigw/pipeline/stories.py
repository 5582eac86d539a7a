"""One file's or one export run's story (``edigw show``), and one file taken through its
flow now (``edigw process``), which ends by telling that file's story (``FileStory``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edigw.config import GatewayConfig, InboundFlow
from edigw.errors import ConfigError, EdigwError
from edigw.journal.findings import FindingRow
from edigw.journal.rows import DocumentRow, EventRow, ExportRunRow, FileRow, ResolutionRow
from edigw.journal.store import Journal
from edigw.pipeline.assembly import Parts, open_journal, open_parts
from edigw.pipeline.inbound import FINAL_FILE_STATES, Intake, ingest
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals, utc_now
from edigw.problems import ProblemList
from edigw.processes import process_identity

#: How long a command sending a file waits before looking again at a document another
#: sender holds.
_LOOK_AGAIN_SECONDS = 0.1


def inbound_flow(config: GatewayConfig, flow_id: str) -> InboundFlow:
    try:
        flow = config.flow(flow_id)
    except (KeyError, EdigwError) as exc:
        known = ", ".join(f.id for f in config.inbound_flows()) or "none"
        msg = f"unknown flow {flow_id!r} (inbound flows: {known})"
        raise ConfigError(msg) from exc
    if not isinstance(flow, InboundFlow):
        msg = f"flow {flow_id!r} is an export, not an inbound flow"
        raise ConfigError(msg)
    return flow


@dataclass(slots=True)
class FileStory:
    """Everything known about one file, for ``edigw show`` and ``edigw process``.

    ``open_failure`` tells whether the file's failure (if it failed) is still open, and
    ``open_documents`` which failed documents are; the others were resolved.
    ``problem_totals``: how many problems the full lists kept for the file (key ``None``)
    and its documents hold; ``problems``: those lists, read only for ``show --all``.
    """

    file: FileRow
    documents: list[DocumentRow]
    events: list[EventRow]
    with_payloads: bool = False
    resolutions: list[ResolutionRow] = field(default_factory=list)
    open_failure: bool = False
    open_documents: set[int] = field(default_factory=set)
    #: ``D`` when the story was asked for one document (``edigw show D-40``).
    kind: str = "F"
    problem_totals: dict[int | None, int] = field(default_factory=dict)
    problems: dict[int | None, ProblemList] = field(default_factory=dict)
    #: what the validation layers of an e-invoice flow found (those that blocked the file,
    #: then the warnings it went on with); ``all_findings``: print every one, not the first
    findings: list[FindingRow] = field(default_factory=list)
    all_findings: bool = False


def process_file(
    config: GatewayConfig,
    flow_id: str,
    path: Path,
    *,
    clock: Callable[[], datetime] = utc_now,
    max_wait: float = 30.0,
) -> FileStory:
    """Take one file through a flow now and send its documents, waiting for the outcome.

    Documents that hit a temporary error stay in retry-wait; ``edigw run`` retries them.
    """
    flow = inbound_flow(config, flow_id)
    with open_parts(config, with_channels=False, flows={flow.id: flow}) as parts:
        runtime = parts.inbound[flow.id]
        ingested = ingest(
            path,
            original_name=path.name,
            flow=runtime.context,
            journal=parts.journal,
            archive=parts.archive,
            now=clock(),
            source_path=str(path.resolve()),
            intake=Intake(reader=process_identity(parts.node.rpartition(":")[0])),
        )
        drain_file(parts, ingested.file_id, clock=clock, max_wait=max_wait)
        if parts.journal.file(ingested.file_id).state in FINAL_FILE_STATES:
            # The command leaves its file where it is: say so, as a channel would.
            parts.journal.record_channel_action(
                ingested.file_id, action="left", ok=True, error=None, now=clock()
            )
        return file_story_from(parts.journal, ingested.file_id)


def drain_file(
    parts: Parts, file_id: int, *, clock: Callable[[], datetime], max_wait: float
) -> None:
    """Send a file's due documents one by one until none is due (or ``max_wait`` passes).

    A running gateway may claim some of them first: while it holds one, wait for it (its
    outcome may make the next one due) rather than stop with the file still under way."""
    signals = Signals()
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        if send_due(parts, signals, clock=clock, file_id=file_id) is not None:
            continue
        if not parts.journal.sending_elsewhere(file_id, now=clock(), node=parts.node):
            break
        time.sleep(_LOOK_AGAIN_SECONDS)


def file_story_from(
    journal: Journal, file_id: int, *, with_payloads: bool = False, all_problems: bool = False
) -> FileStory:
    open_failure, open_documents = journal.open_failures(file_id)
    return FileStory(
        file=journal.file(file_id),
        documents=journal.documents_of(file_id),
        events=journal.events_of(file_id),
        with_payloads=with_payloads,
        resolutions=journal.resolutions_of(file_id),
        open_failure=open_failure,
        open_documents=open_documents,
        problem_totals=journal.problem_totals(file_id),
        problems=journal.problems_of(file_id) if all_problems else {},
        findings=journal.findings_of(file_id),
        all_findings=all_problems,
    )


def file_story(
    config: GatewayConfig, kind: str, number: int, *, all_problems: bool = False
) -> FileStory:
    """The story of file ``F-number``, or of document ``D-number`` within its file (the
    file's own lines, that document, and the events about it or about the whole file);
    ``all_problems``: with every problem kept, not only the first ones."""
    journal = open_journal(config)
    try:
        if kind == "D":
            doc = journal.document(number)
            story = file_story_from(
                journal, doc.file_id, with_payloads=True, all_problems=all_problems
            )
            story.kind = "D"
            story.documents = [d for d in story.documents if d.id == number]
            story.events = [e for e in story.events if e.document_id in (None, number)]
            story.resolutions = [r for r in story.resolutions if r.document_id in (None, number)]
            story.problems = {k: v for k, v in story.problems.items() if k == number}
            story.problem_totals = {k: v for k, v in story.problem_totals.items() if k == number}
            return story
        return file_story_from(journal, number, with_payloads=True, all_problems=all_problems)
    finally:
        journal.close()


def export_story(config: GatewayConfig, number: int) -> ExportRunRow:
    journal = open_journal(config)
    try:
        return journal.export_run(number)
    finally:
        journal.close()
