"""A file's mapped records as journal rows: what ``inbound`` journals for each document.

What a reader maps (``mapped_documents`` in the gateway, ``read_documents`` in the isolated
reader of ``isolated.py``) becomes rows here: each document's chain of writes (its
``before:`` steps, its own write, its ``then:`` steps), each with its own idempotency key,
or one failed or skipped row saying why. ``replay.py`` builds a replayed document's rows
the same way, so that they keep the keys its first reading gave.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edigw.errors import DataProblem, EdigwError, SourceDataError
from edigw.formats.limits import ReaderLimits
from edigw.journal.rows import DocumentRow, NewDocument
from edigw.model import MappedDocument
from edigw.pipeline.batches import DoneBefore
from edigw.pipeline.chain import step_payload
from edigw.pipeline.keys import idempotency_key
from edigw.problems import describe

if TYPE_CHECKING:
    from edigw.pipeline.inbound import DocumentSource, FlowContext


class Unreadable(EdigwError):
    """The file as a whole cannot be read (``reason``, for people): it fails, whatever part
    of it was read already."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mapped_documents(
    mapping: DocumentSource,
    archived: Path,
    *,
    source_name: str,
    encoding: str | None,
    limits: ReaderLimits | None = None,
) -> Iterator[MappedDocument]:
    """The file's documents as they are mapped (within the flow's ``limits``, the readers'
    defaults otherwise); raises :class:`Unreadable`, at any point, when the file as a whole
    cannot be read, and at the end when it holds no document."""
    found = False
    try:
        for doc in mapping.map_file(
            archived, source_name=source_name, encoding=encoding, limits=limits
        ):
            found = True
            yield doc
    except SourceDataError as exc:
        raise Unreadable(str(exc)) from exc
    except EdigwError as exc:
        msg = f"{source_name}: {exc}"
        raise Unreadable(msg) from exc
    if not found:
        msg = (
            f"{source_name}: no document found in the file (empty, or every record "
            "was skipped by the mapping)"
        )
        raise Unreadable(msg)


def read_documents(
    mapping: DocumentSource,
    archived: Path,
    *,
    source_name: str,
    encoding: str | None,
    limits: ReaderLimits | None = None,
) -> list[MappedDocument] | str:
    """The file's documents all at once (the isolated reader sends them back whole), or why
    the file as a whole cannot be read."""
    try:
        return list(
            mapped_documents(
                mapping, archived, source_name=source_name, encoding=encoding, limits=limits
            )
        )
    except Unreadable as exc:
        return exc.reason


def already_done(
    new_docs: list[NewDocument], earlier: list[DocumentRow], *, earlier_file: int
) -> list[NewDocument]:
    """``new_docs`` with those an earlier reading of the same source already sent marked done.

    The earlier reading's source changed after it was read (a writer that paused longer than
    the readiness interval): its bytes are a prefix of, or differ from, these. A document of
    this reading with the same business key (and occurrence), operation and payload as a
    document done by the earlier one is the same order: it is journalled ``done`` with the
    answer Ecolix gave then, and never sent again. Any other document is sent (a changed
    order under the same key is sent as new, and Ecolix decides).
    """
    return DoneBefore(earlier, earlier_file=earlier_file).mark(new_docs)


def chain_documents(
    seq: int,
    doc: MappedDocument,
    occurrence: int,
    *,
    flow: FlowContext,
    sha256: str,
    reception: int,
) -> list[NewDocument]:
    """A mapped document as journal rows: its chain's writes in order from ``seq`` (its
    ``before:`` steps, its own write, its ``then:`` steps), each with its own idempotency
    key; one row when it failed at mapping or was skipped."""
    first = _new_document(seq, doc, occurrence, flow=flow, sha256=sha256, reception=reception)
    if first.state != "pending":
        return [first]
    writes = doc.writes()
    steps = step_documents(
        doc,
        occurrence,
        range(2, len(writes) + 1),
        first_seq=seq,
        at=seq + 1,
        flow=flow,
        sha256=sha256,
        reception=reception,
    )
    return [first, *steps]


def step_documents(
    doc: MappedDocument,
    occurrence: int,
    numbers: Iterable[int],
    *,
    first_seq: int,
    at: int,
    flow: FlowContext,
    sha256: str,
    reception: int,
) -> list[NewDocument]:
    """Journal rows for the chain positions ``numbers`` (2, 3, ...) of a document whose
    first write is at ``first_seq``, placed from seq ``at`` on. Keys go by position: the
    first write keeps the key a one-write mapping gives, position n adds "step n"."""
    rows: list[NewDocument] = []
    writes = doc.writes()
    for number in numbers:
        step = writes[number - 1]
        key = idempotency_key(
            partner=flow.partner,
            flow=flow.flow,
            file_sha256=sha256,
            business_key=doc.key,
            occurrence=occurrence,
            reception=reception,
            step=number,
        )
        rows.append(
            NewDocument(
                seq=at + len(rows),
                mapping_version=flow.mapping_version or None,
                business_key=doc.key,
                operation=step.operation,
                payload=step_payload(
                    step.payload, step=number, first_seq=first_seq, answer=doc.main_position
                ),
                idempotency_key=key,
                state="pending",
            )
        )
    return rows


def _new_document(
    seq: int,
    doc: MappedDocument,
    occurrence: int,
    *,
    flow: FlowContext,
    sha256: str,
    reception: int,
) -> NewDocument:
    key = idempotency_key(
        partner=flow.partner,
        flow=flow.flow,
        file_sha256=sha256,
        business_key=doc.key,
        occurrence=occurrence,
        reception=reception,
    )
    row = functools.partial(
        NewDocument,
        seq=seq,
        mapping_version=flow.mapping_version or None,
        business_key=doc.key,
        idempotency_key=key,
    )
    if doc.skipped is not None:
        return row(
            operation=doc.operation,
            payload=None,
            state="skipped",
            error=doc.skipped,
            error_location=str(doc.location),
        )
    if doc.ok and doc.payload is not None:
        first = doc.writes()[0]
        return row(operation=first.operation, payload=first.payload, state="pending")
    return row(
        operation=doc.operation,
        payload=doc.payload,
        state="failed",
        error=describe_problems(doc.problems),
        problems=doc.problems,
        error_location=str(doc.problems[0].location) if doc.problems[0].location else None,
    )


def describe_problems(problems: list[DataProblem]) -> str:
    """A document's problems, one per line, each with its place: the first ones, within
    about 2 KB, then "… and N more problems" (the journal keeps them all, for ``edigw show
    D-n --all``)."""
    return describe(problems)
