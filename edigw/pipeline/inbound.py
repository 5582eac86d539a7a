"""Taking one inbound file in: archive, journal, read, and queue its documents.

Order of events, each step durable before the next (invariant 1 of the architecture)::

    archive (fsync'd, content-addressed) → journal the file as being read by this process
    → map from the *archived* copy → journal every document (pending or failed with its
    source location) and the file ``parsed``, in one transaction

Nothing is sent to Ecolix here: the dispatcher (``dispatch.py``) sends queued documents, so
a crash at any point leaves either an untouched source (taken again next poll) or a journal
that says exactly what is left to do. The file is journalled *before* it is read so that a
file whose reading kills the process (a native reader aborting, the OOM killer) is known at
the next start: it is then read once more in an isolated child process (``isolated.py``)
rather than in the gateway (an e-invoice is validated there too), and failed if that child
dies too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from edigw.errors import ChannelError, EdigwError, JournalError
from edigw.formats.limits import ReaderLimits
from edigw.journal.archive import Archive
from edigw.journal.errors import (
    DuplicateKeyError,
    JournalRefused,
    JournalValueError,
    StateError,
    UnknownIdError,
)
from edigw.journal.rows import DocumentCounts, FileRow, NewDocument
from edigw.journal.store import Journal
from edigw.model import MappedDocument
from edigw.pipeline.batches import BatchWriter, DoneBefore, batched, numbered_rows
from edigw.pipeline.file_documents import Unreadable, chain_documents, mapped_documents
from edigw.pipeline.isolated import (
    IsolationUnavailable,
    ReaderKilled,
    isolated_timeout,
    map_isolated,
    validate_isolated,
)
from edigw.pipeline.unchanged import judge
from edigw.processes import identity_alive
from edigw.validation.policy import ValidationPolicy

if TYPE_CHECKING:
    from edigw.pipeline.validating import Verdict

FINAL_FILE_STATES = frozenset({"done", "partially_failed", "failed", "skipped_duplicate"})
#: A reading by a process of another host is judged dead when it began this long ago (its
#: pid cannot be checked from here; no file within a flow's limits takes that long to read).
READING_LEASE = timedelta(minutes=30)


class DocumentSource(Protocol):
    """What the pipeline needs of a compiled mapping (``edigw.mapping``)."""

    @property
    def path(self) -> Path: ...

    @property
    def target(self) -> str: ...

    def map_file(
        self,
        path: Path,
        *,
        source_name: str,
        encoding: str | None = None,
        limits: ReaderLimits | None = None,
    ) -> Iterator[MappedDocument]: ...


@dataclass(frozen=True, slots=True)
class FlowContext:
    """One inbound flow as the pipeline sees it: names, policies, compiled mapping, and what
    one file may cost its readers (``limits``)."""

    partner: str
    flow: str
    channel: str
    mapping: DocumentSource
    duplicates: str = "skip"
    #: the flow's ``ordered``: a file's documents strictly in file order, or per business key
    ordered: bool = False
    encoding: str | None = None
    limits: ReaderLimits | None = None
    #: the Ecolix the flow writes to (base URL): what it accepted is remembered per Ecolix
    ecolix: str = ""
    #: a short hash of the files the mapping was compiled from; journalled with each
    #: document it makes (``edigw.pipeline.reload`` swaps the context when they change)
    mapping_version: str = ""
    #: e-invoice flows: what each validation layer does to a file (``None``: not validated)
    validation: ValidationPolicy | None = None

    @property
    def id(self) -> str:
        return f"{self.partner}/{self.flow}"


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of a file: its journal id, state, and whether it was already known."""

    file_id: int
    state: str
    documents: int
    failed: int
    resumed: bool = False
    already_final: bool = False
    #: documents a ``skip_if`` rule of the mapping skipped (journalled, never sent)
    skipped: int = 0
    #: upserts of the payload Ecolix last accepted for their object (journalled, not sent)
    unchanged: int = 0

    @property
    def show_id(self) -> str:
        return f"F-{self.file_id}"


class IntakeError(EdigwError):
    """Taking a file in failed after its row was journalled: ``file_id`` names the row (the
    file is ``received``), ``cause`` what went wrong; the caller decides whether to try again."""

    def __init__(self, file_id: int, cause: Exception) -> None:
        super().__init__(f"F-{file_id}: {cause}")
        self.file_id = file_id
        self.cause = cause


class BeingRead(EdigwError):
    """Another live process is reading these bytes for this flow right now: look again later."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Intake:
    """How this intake reads: the reading process (``host:pid:start``, ``None``: not
    recorded), the gateway's stop event (cuts an isolated reading short), and the file an
    earlier reading of the same source left in place because it changed (its documents
    already done are not sent again)."""

    reader: str | None = None
    stop: threading.Event | None = None
    earlier_reception: int | None = None


def ingest(
    source: Path,
    *,
    original_name: str,
    flow: FlowContext,
    journal: Journal,
    archive: Archive,
    now: datetime,
    source_path: str | None = None,
    durable_archive: bool = True,
    content: bytes | None = None,
    intake: Intake | None = None,
) -> Ingested:
    """Archive ``source``, journal it and its documents; return the file's state.

    When the channel holds the file's bytes in memory (``content``), those are archived
    and ``source`` is never read.

    With ``durable_archive=False`` the archived copy is fsync'd later: the caller calls
    ``archive.make_durable(sha256)`` before it touches the source (the gateway does).

    A file whose bytes are already journalled for this flow *from the same source* and not
    yet disposed of (a crash or a failed intake between taking a file and moving its source
    away) is *resumed*, never taken twice. The same bytes under another name are a new
    reception (a duplicate). Raises :class:`IntakeError` when the file was journalled but
    its intake could not finish (the source stays: a later try resumes it).
    """
    intake = intake or Intake()
    archived = (
        archive.store(source, durable=durable_archive)
        if content is None
        else archive.store_bytes(content, durable=durable_archive)
    )
    path = source_path or str(source)
    received: dict[str, Any] = {
        "partner": flow.partner,
        "flow": flow.flow,
        "channel": flow.channel,
        "original_name": original_name,
        "source_path": path,
        "size": archived.size,
        "sha256": archived.sha256,
        "archive_path": archived.location,
        "now": now,
        "ordered": flow.ordered,
    }
    # The usual file, bytes this flow never had: recorded with its reading marker (written
    # before a byte is read) in one turn at the journal. Anything else is looked at first.
    file_id = journal.add_file_if_new(**received, reader=intake.reader)
    earlier = (
        []
        if file_id is not None
        else journal.files_with_content(
            partner=flow.partner, flow=flow.flow, sha256=archived.sha256
        )
    )
    taken = next((f for f in reversed(earlier) if f.source_path == path), None)
    if taken is not None and not journal.source_disposed(taken.id):
        return _resume(
            taken,
            earlier=earlier,
            flow=flow,
            journal=journal,
            archive=archive,
            now=now,
            intake=intake,
        )

    unread = not_to_read(earlier, flow=flow)
    if unread is not None:
        file_id = journal.add_file(**received)
        journal.set_file_state(file_id, unread[0], now=now, error=unread[1])
        return Ingested(file_id, unread[0], 0, 0)
    if file_id is None:  # the reading marker: written before a byte is read
        file_id = journal.add_file(**received, reader=intake.reader)
    return _read(
        file_id,
        archived.path,
        original_name,
        flow=flow,
        sha256=archived.sha256,
        reception=len(earlier) + 1,
        journal=journal,
        now=now,
        intake=intake,
        marked=intake.reader,
    )


def not_to_read(earlier: list[FileRow], *, flow: FlowContext) -> tuple[str, str] | None:
    """The state and reason of a new reception of bytes this flow already received, when it
    is not to be read: a duplicate (``duplicates: skip``), or bytes whose reading killed a
    gateway before."""
    if earlier and flow.duplicates == "skip":
        return "skipped_duplicate", duplicate_reason(earlier)
    killer = next((f for f in earlier if killed_by_reading(f)), None)
    if killer is not None:
        return "failed", (
            f"same content as {killer.ref}, whose reading stopped the gateway: not read "
            f"(`edigw replay {killer.ref}` once the cause is fixed)"
        )
    return None


def killed_by_reading(row: FileRow) -> bool:
    """Whether a file failed because its reading killed the process (it keeps its reader)."""
    return row.state == "failed" and bool(row.reader)


def reading_status(
    row: FileRow, *, me: str | None, now: datetime
) -> Literal["none", "me", "alive", "dead"]:
    """Who reads a ``received`` file: nobody recorded, this process, a live one, a dead one.

    A reader of this host is judged by its pid and start time; one of another host by how
    long ago its reading began (:data:`READING_LEASE`).
    """
    if not row.reader:
        return "none"
    if row.reader == me:
        return "me"
    host = me.rsplit(":", 2)[0] if me else ""
    alive = identity_alive(row.reader, host=host)
    if alive is None:
        alive = now - row.received_at < READING_LEASE
    return "alive" if alive else "dead"


def reception_of(row: FileRow, journal: Journal) -> int:
    """Which reception of its bytes in its flow a journalled file was (1 for the first)."""
    same = journal.files_with_content(partner=row.partner, flow=row.flow, sha256=row.sha256)
    return sum(1 for f in same if f.id <= row.id) or 1


def duplicate_reason(earlier: list[FileRow]) -> str:
    """Why a file whose bytes this flow already received is skipped, and what to do instead.

    Sending the same documents again under their first keys would only make Ecolix repeat
    its first answers; what failed the first time is sent again with ``edigw replay``.
    """
    done = next((f for f in earlier if f.state == "done"), None)
    if done is not None:
        return f"same content as F-{done.id}, already done"
    last = earlier[-1]
    if last.state not in FINAL_FILE_STATES:
        return f"same content as F-{last.id}, taken in under another name and still in progress"
    return (
        f"same content as F-{last.id} ({last.state.replace('_', ' ')}): to send its failed "
        f"documents again, `edigw replay F-{last.id}`; to post the file again as new, "
        "set `duplicates: process` on the flow"
    )


def _resume(
    row: FileRow,
    *,
    earlier: list[FileRow],
    flow: FlowContext,
    journal: Journal,
    archive: Archive,
    now: datetime,
    intake: Intake,
) -> Ingested:
    reception = earlier.index(row) + 1
    if row.state == "received":
        # Journalled, never parsed: a failed intake, or a process that died reading it.
        status = reading_status(row, me=intake.reader, now=now)
        if status == "alive":
            msg = f"{row.ref} is being read by {row.reader}: taken again once it is done"
            raise BeingRead(msg)
        unread = not_to_read(earlier[: reception - 1], flow=flow) if status == "none" else None
        if unread is not None:  # cut short between its row and its state: not to be read
            journal.set_file_state(row.id, unread[0], now=now, error=unread[1])
            return Ingested(row.id, unread[0], 0, 0, resumed=True, already_final=True)
        journal.discard_read_documents(row.id)  # what a reading cut short journalled of it
        ingested = _read(
            row.id,
            archive.local_copy(row.sha256),
            row.original_name,
            flow=flow,
            sha256=row.sha256,
            reception=reception,
            journal=journal,
            now=now,
            intake=intake,
            marked=row.reader,
            suspect=row if status == "dead" else None,
        )
        return replace(ingested, resumed=True)
    state = row.state
    if state == "parsed":
        # Crashed after the last document's outcome, before the file's: settle it now.
        state = journal.finish_file_if_complete(row.id, now=now) or state
    docs = journal.documents_of(row.id)
    return Ingested(
        row.id,
        state,
        len(docs),
        sum(1 for d in docs if d.state == "failed"),
        resumed=True,
        already_final=state in FINAL_FILE_STATES,
    )


def _read(
    file_id: int,
    archived: Path,
    original_name: str,
    *,
    flow: FlowContext,
    sha256: str,
    reception: int,
    journal: Journal,
    now: datetime,
    intake: Intake,
    marked: str | None,
    suspect: FileRow | None = None,
) -> Ingested:
    """Read a journalled ``received`` file (``marked`` as read by that process) and journal
    its documents; a ``suspect`` (its reader died reading it) is validated and read in child
    processes."""
    try:
        if flow.validation is not None:
            verdict = _verdict(
                archived,
                original_name,
                policy=flow.validation,
                flow=flow,
                intake=intake,
                suspect=suspect,
            )
            if isinstance(verdict, ReaderKilled):
                assert suspect is not None  # only an isolated validation dies apart
                _fail_killed(suspect, verdict, journal=journal, now=now)
                return Ingested(file_id, "failed", 0, 0)
            if not _passed(file_id, verdict, journal=journal, now=now):
                return Ingested(file_id, "failed", 0, 0)
        mapped: Iterable[MappedDocument] | str | ReaderKilled
        if suspect is None:
            mapped = mapped_documents(
                flow.mapping,
                archived,
                source_name=original_name,
                encoding=flow.encoding,
                limits=flow.limits,
            )
        else:
            mapped = map_isolated(
                flow.mapping.path,
                archived,
                source_name=original_name,
                encoding=flow.encoding,
                limits=flow.limits,
                stop=intake.stop,
            )
            if isinstance(mapped, ReaderKilled):
                _fail_killed(suspect, mapped, journal=journal, now=now)
                return Ingested(file_id, "failed", 0, 0)
        if isinstance(mapped, str):
            journal.set_file_state(file_id, "failed", now=now, error=mapped)
            return Ingested(file_id, "failed", 0, 0)
        done_before = None
        if intake.earlier_reception is not None:
            done_before = DoneBefore(
                journal.documents_of(intake.earlier_reception),
                earlier_file=intake.earlier_reception,
            )

        def rows_of(seq: int, doc: MappedDocument, occurrence: int) -> list[NewDocument]:
            return chain_documents(
                seq, doc, occurrence, flow=flow, sha256=sha256, reception=reception
            )

        def judged(batch: list[NewDocument]) -> list[NewDocument]:
            if done_before is not None:
                batch = done_before.mark(batch)
            return judge(batch, ecolix=flow.ecolix, journal=journal)

        writer = BatchWriter(file_id, journal=journal, now=now, reader=marked)
        try:
            counts = writer.write(map(judged, batched(numbered_rows(mapped, rows_of))))
        except Unreadable as unreadable:
            if writer.journalled.documents:
                journal.discard_read_documents(file_id)
            journal.set_file_state(file_id, "failed", now=now, error=unreadable.reason)
            return Ingested(file_id, "failed", 0, 0)
        return _queued(file_id, counts, journal=journal, now=now)
    except Exception as exc:
        raise IntakeError(file_id, exc) from exc


def _verdict(
    archived: Path,
    original_name: str,
    *,
    policy: ValidationPolicy,
    flow: FlowContext,
    intake: Intake,
    suspect: FileRow | None,
) -> Verdict | ReaderKilled | None:
    """Validate an e-invoice before it is mapped (``validating``): in the gateway, or for a
    ``suspect`` in a child process, since the rules engine is native code that could be what
    killed the gateway (``isolated``)."""
    if suspect is not None:
        return validate_isolated(
            archived,
            source_name=original_name,
            policy=policy,
            stop=intake.stop,
            timeout=isolated_timeout(flow.limits),
        )
    from edigw.pipeline.validating import validate_file

    return validate_file(archived, source_name=original_name, policy=policy)


def _passed(file_id: int, verdict: Verdict | None, *, journal: Journal, now: datetime) -> bool:
    """Journal what the validation layers found, and fail the file when a blocking layer
    found errors (``False``)."""
    if verdict is None:  # no e-invoice: the reader says what it is
        return True
    journal.keep_findings(file_id, verdict.findings, summary=verdict.summary, now=now)
    if verdict.blocked:
        journal.set_file_state(
            file_id, "failed", now=now, error=verdict.error(), problems=verdict.blocking
        )
        return False
    return True


def _fail_killed(
    suspect: FileRow, killed: ReaderKilled, *, journal: Journal, now: datetime
) -> None:
    reader = suspect.reader or ""
    error = killed_reason(suspect, killed)
    if not journal.fail_killed_reading(suspect.id, reader=reader, error=error, now=now):
        msg = f"{suspect.ref} was settled by another process meanwhile"
        raise BeingRead(msg)


def killed_reason(row: FileRow, killed: ReaderKilled) -> str:
    """Why a file whose reading killed a gateway, then an isolated reader, is failed."""
    began = row.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"reading this file stopped the gateway (killed by a signal or out of memory) at "
        f"{began}, and reading it again in an isolated process {killed.how}; it is not read "
        f"again: fix the file, or `edigw replay {row.ref}` once the cause is fixed"
    )


def _queued(file_id: int, counts: DocumentCounts, *, journal: Journal, now: datetime) -> Ingested:
    """A journalled file's state; settled at once when nothing is left to send (the mapping
    failed or skipped every document, or an earlier reading of the source already sent them;
    a file whose documents were all skipped is ``done``, saying how many)."""
    state = "parsed"
    if not counts.pending:
        state = journal.finish_file_if_complete(file_id, now=now) or state
    return Ingested(
        file_id,
        state,
        counts.documents,
        counts.failed,
        skipped=counts.skipped,
        unchanged=counts.unchanged,
    )


def intake_failure_kind(exc: Exception) -> Literal["transient", "refused", "error"]:
    """What a failed intake says about the file.

    - ``transient``: the gateway's own trouble (journal or archive unavailable, the source
      still changing, another process reading it, no isolated reader to be had): try
      again, however often;
    - ``refused``: the journal refused one of the file's values (PostgreSQL and a NUL
      character): the same data would be refused again, fail the file now;
    - ``error``: anything else (the journal refused a statement, a repeated idempotency
      key, a bug...): try again a few times.
    """
    cause = exc.cause if isinstance(exc, IntakeError) else exc
    if isinstance(cause, JournalValueError):
        return "refused"
    if isinstance(cause, JournalRefused | StateError | UnknownIdError | DuplicateKeyError):
        return "error"
    if isinstance(cause, JournalError | BeingRead | IsolationUnavailable):
        return "transient"
    if isinstance(cause, ChannelError) and cause.retriable:
        return "transient"
    return "error"
