"""Failures an operator looks at: resolutions (``edigw resolve``), validation findings and the
full problem lists kept when an error text had to be cut.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from edigw.errors import DataProblem, JournalError
from edigw.journal.conditions import FAILED_FILE_STATES, _open_document_failure, _open_file_failure
from edigw.journal.errors import StateError, UnknownIdError
from edigw.journal.findings import FindingRow, finding_rows
from edigw.journal.heads import HeadsMixin
from edigw.journal.rows import ResolutionRow, _aware
from edigw.journal.schema import (
    DocState,
    FileState,
    documents,
    files,
    resolutions,
    validation_findings,
)
from edigw.journal.schema import problems as problem_lists
from edigw.problems import MAX_MESSAGE, ProblemList


def _problem_row(
    file_id: int, doc_id: int | None, found: Sequence[DataProblem] | ProblemList
) -> dict[str, Any] | None:
    """The ``problems`` row keeping a full list, or ``None`` when its error text already
    holds every problem whole (nothing was cut: no need to keep them twice)."""
    full = found if isinstance(found, ProblemList) else ProblemList.of(found)
    if full.left_out == 0 and sum(len(str(e)) + 1 for e in full.entries) <= MAX_MESSAGE:
        return None
    body, compressed = full.encode()
    return {
        "file_id": file_id,
        "document_id": doc_id,
        "total": full.total,
        "compressed": compressed,
        "body": body,
    }


class FailuresMixin(HeadsMixin):
    """Resolutions, findings and full problem lists."""

    # ----------------------------------------------------------------- resolutions

    def resolve_file(self, file_id: int, *, by: str, note: str, now: datetime) -> ResolutionRow:
        """Acknowledge a failed or partially failed file's failure, with its documents'."""
        now = _aware(now)
        with self._write("record a resolution", barrier=True) as conn:
            state = conn.execute(select(files.c.state).where(files.c.id == file_id)).scalar()
            if state is None:
                msg = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg)
            if state not in FAILED_FILE_STATES:
                msg = f"F-{file_id} is {state}: only a failed or partially failed file can be resolved"
                if state in (FileState.RECEIVED, FileState.PARSED):
                    msg = (
                        f"F-{file_id} is still in progress ({state}): wait for its outcome, "
                        "or resolve its failed documents (D-<n>) one by one"
                    )
                raise StateError(msg)
            return self._insert_resolution(conn, file_id, None, by=by, note=note, now=now)

    def resolve_document(self, doc_id: int, *, by: str, note: str, now: datetime) -> ResolutionRow:
        """Acknowledge a failed document's failure."""
        now = _aware(now)
        with self._write("record a resolution", barrier=True) as conn:
            current = self._doc_state(conn, doc_id)
            if current["state"] != DocState.FAILED:
                msg = f"D-{doc_id} is {current['state']}: only a failed document can be resolved"
                raise StateError(msg)
            return self._insert_resolution(
                conn, current["file_id"], doc_id, by=by, note=note, now=now
            )

    def _insert_resolution(
        self,
        conn: Connection,
        file_id: int,
        doc_id: int | None,
        *,
        by: str,
        note: str,
        now: datetime,
    ) -> ResolutionRow:
        values = {
            "file_id": file_id,
            "document_id": doc_id,
            "resolved_by": by,
            "note": note,
            "at": now,
        }
        new_id: int = conn.execute(
            insert(resolutions).values(**values).returning(resolutions.c.id)
        ).scalar_one()
        self._event(
            conn, file_id, "resolved", now=now, document_id=doc_id, detail=f"by {by}: {note}"
        )
        return ResolutionRow(id=new_id, **values)  # type: ignore[arg-type]

    def resolutions_of(self, file_id: int) -> list[ResolutionRow]:
        """A file's resolutions (its own and its documents'), oldest first."""
        with self._read("read a file's resolutions") as conn:
            rows = conn.execute(
                select(resolutions)
                .where(resolutions.c.file_id == file_id)
                .order_by(resolutions.c.id)
            ).mappings()
            return [ResolutionRow(**dict(m)) for m in rows]

    def open_failures(self, file_id: int) -> tuple[bool, set[int]]:
        """Whether the file's failure is still open, and which of its failed documents are."""
        with self._read("check a file's failures") as conn:
            file_open = bool(
                conn.execute(
                    select(_open_file_failure(files)).where(files.c.id == file_id)
                ).scalar()
            )
            docs = {
                row[0]
                for row in conn.execute(
                    select(documents.c.id).where(
                        documents.c.file_id == file_id, _open_document_failure(documents)
                    )
                )
            }
        return file_open, docs

    # ----------------------------------------------------------------- validation findings

    def keep_findings(
        self, file_id: int, found: Sequence[FindingRow], *, summary: str, now: datetime
    ) -> None:
        """Replace what the validation layers found in a file by ``found`` (the first
        ``MAX_KEPT``), and record the validation in its history (``summary``: per layer)."""
        now = _aware(now)
        rows = finding_rows(file_id, found)
        with self._write("keep a file's validation findings", barrier=True) as conn:
            conn.execute(
                validation_findings.delete().where(validation_findings.c.file_id == file_id)
            )
            if rows:
                conn.execute(insert(validation_findings), rows)
            self._event(conn, file_id, "validated", now=now, detail=summary)

    def findings_of(self, file_id: int) -> list[FindingRow]:
        """What the validation layers found in a file, in order (none: not validated, or
        nothing found)."""
        query = (
            select(
                validation_findings.c.layer,
                validation_findings.c.rule,
                validation_findings.c.severity,
                validation_findings.c.blocking,
                validation_findings.c.message,
                validation_findings.c.location,
            )
            .where(validation_findings.c.file_id == file_id)
            .order_by(validation_findings.c.seq)
        )
        with self._read("read a file's validation findings") as conn:
            return [
                FindingRow(layer, rule, severity, bool(blocking), message, location)
                for layer, rule, severity, blocking, message, location in conn.execute(query)
            ]

    # ----------------------------------------------------------------- full problem lists

    @staticmethod
    def _keep_problems(
        conn: Connection,
        file_id: int,
        doc_id: int | None,
        found: Sequence[DataProblem] | ProblemList,
    ) -> None:
        """Replace the full list kept for a document (or the file itself: ``doc_id`` None) by
        ``found``, when its error text could not hold it all."""
        owner = (
            problem_lists.c.document_id.is_(None)
            if doc_id is None
            else problem_lists.c.document_id == doc_id
        )
        conn.execute(problem_lists.delete().where(problem_lists.c.file_id == file_id, owner))
        row = _problem_row(file_id, doc_id, found)
        if row is not None:
            conn.execute(insert(problem_lists), row)

    def problems_of(self, file_id: int) -> dict[int | None, ProblemList]:
        """The full problem lists kept for a file (key ``None``) and its documents (their id).

        Only errors that had to be cut have one: any other error text is complete.
        """
        query = select(
            problem_lists.c.document_id, problem_lists.c.compressed, problem_lists.c.body
        ).where(problem_lists.c.file_id == file_id)
        with self._read("read a file's problems") as conn:
            rows = conn.execute(query).all()
        try:
            return {
                doc_id: ProblemList.decode(bytes(body), compressed=bool(compressed))
                for doc_id, compressed, body in rows
            }
        except (zlib.error, ValueError, KeyError, TypeError) as err:
            msg = f"journal: the problem list of F-{file_id} cannot be read: {err}"
            raise JournalError(msg) from err

    def problem_totals(self, file_id: int) -> dict[int | None, int]:
        """How many problems each full list kept for a file holds (without reading them)."""
        query = select(problem_lists.c.document_id, problem_lists.c.total).where(
            problem_lists.c.file_id == file_id
        )
        with self._read("count a file's problems") as conn:
            return {doc_id: total for doc_id, total in conn.execute(query).all()}
