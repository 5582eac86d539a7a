"""What the journal says about itself: status counts, gauges, what alerts watch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal_column, select, text

from edigw.journal.conditions import (
    FAILED_FILE_STATES,
    _doc_select,
    _open_document_failure,
    _open_file_failure,
    _resolved_document,
    _state,
    _state_of_file,
)
from edigw.journal.connection import JournalBase
from edigw.journal.rows import (
    DocumentRow,
    FileRow,
    JournalGauges,
    RecentError,
    StatusRow,
    _aware,
    _doc_row,
    _file_row,
)
from edigw.journal.schema import (
    UNFINISHED_DOC_STATES,
    DocState,
    FileState,
    channel_actions,
    documents,
    events,
    files,
    unfinished_condition,
)
from edigw.problems import bounded

#: How many recent errors ``status_counts`` keeps per partner/flow.
LAST_ERRORS = 5


class StatusMixin(JournalBase):
    """Counts, gauges and alerts' queries."""

    # ----------------------------------------------------------------- alerts

    def last_event_id(self) -> int:
        """The newest event's id (0 in an empty journal): where alerts start watching."""
        with self._read("read the last event") as conn:
            return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)

    def event_horizon(self) -> tuple[int, int | None]:
        """The newest event visible now and, on PostgreSQL, the first transaction number not
        begun yet: events commit in another order than their ids, so an event of a lower id
        may still appear, until every transaction below that number has ended
        (:meth:`oldest_open_write`). ``None`` on SQLite, where writes take turns."""
        with self._read("read the newest event") as conn:
            newest = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
            if not self._pg:
                return newest, None
            xmax = conn.execute(text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
            return newest, int(xmax.scalar_one())

    def oldest_open_write(self) -> int | None:
        """The oldest transaction still running (PostgreSQL; ``None`` on SQLite): every one
        numbered below it has ended."""
        if not self._pg:
            return None
        with self._read("read the oldest open transaction") as conn:
            xmin = conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
            return int(xmin.scalar_one())

    def final_failures_after(self, event_id: int, *, limit: int = 500) -> list[tuple[int, FileRow]]:
        """Files that became ``failed`` or ``partially_failed`` in events after ``event_id``,
        oldest first, as (event id, file as it is now)."""
        query = (
            select(events.c.id.label("event_id"), files)
            .join(files, files.c.id == events.c.file_id)
            .where(
                events.c.id > event_id,
                events.c.document_id.is_(None),
                events.c.kind.in_([str(state) for state in FAILED_FILE_STATES]),
            )
            .order_by(events.c.id)
            .limit(limit)
        )
        with self._read("read recent failures") as conn:
            rows = list(conn.execute(query).mappings())
        return [(m["event_id"], _file_row(m)) for m in rows]

    def waiting_since(self, before: datetime, *, limit: int = 500) -> list[DocumentRow]:
        """Documents waiting for a retry that were taken in before ``before``, oldest first."""
        query = (
            _doc_select()
            .where(
                documents.c.state == DocState.RETRY_WAIT, documents.c.created_at < _aware(before)
            )
            .order_by(documents.c.id)
            .limit(limit)
        )
        with self._read("read documents waiting for a retry") as conn:
            return [_doc_row(m) for m in conn.execute(query).mappings()]

    def status_counts(self) -> list[StatusRow]:
        """Per partner/flow (sorted): files and documents by state, waiting work, last errors."""
        with self._read("count states") as conn:
            file_counts = conn.execute(
                select(files.c.partner, files.c.flow, files.c.state, func.count()).group_by(
                    files.c.partner, files.c.flow, files.c.state
                )
            ).all()
            doc_counts = conn.execute(
                select(
                    files.c.partner,
                    files.c.flow,
                    documents.c.state,
                    func.count(),
                    func.coalesce(func.sum(documents.c.attempts), 0),
                )
                .join(files, files.c.id == documents.c.file_id)
                .group_by(files.c.partner, files.c.flow, documents.c.state)
            ).all()
            retries = conn.execute(
                select(files.c.partner, files.c.flow, func.min(documents.c.next_attempt_at))
                .join(files, files.c.id == documents.c.file_id)
                .where(documents.c.state == DocState.RETRY_WAIT)
                .group_by(files.c.partner, files.c.flow)
            ).all()
            failed_docs = conn.execute(
                select(
                    files.c.partner,
                    files.c.flow,
                    documents.c.id,
                    documents.c.updated_at,
                    documents.c.error,
                    documents.c.error_location,
                )
                .join(files, files.c.id == documents.c.file_id)
                .where(_open_document_failure(documents))
                .order_by(documents.c.updated_at.desc(), documents.c.id.desc())
                .limit(200)
            ).all()
            failed_files = conn.execute(
                select(files.c.partner, files.c.flow, files.c.id, files.c.updated_at, files.c.error)
                .where(
                    files.c.state == FileState.FAILED,
                    _open_file_failure(files),
                    # a file whose documents failed says only "2 of 2 failed": theirs tell why
                    ~select(documents.c.id).where(documents.c.file_id == files.c.id).exists(),
                )
                .order_by(files.c.updated_at.desc(), files.c.id.desc())
                .limit(200)
            ).all()
            resolved_files = conn.execute(
                select(files.c.partner, files.c.flow, files.c.state, func.count())
                .where(
                    files.c.state.in_([_state_of_file(s) for s in FAILED_FILE_STATES]),
                    ~_open_file_failure(files),
                )
                .group_by(files.c.partner, files.c.flow, files.c.state)
            ).all()
            resolved_docs = conn.execute(
                select(files.c.partner, files.c.flow, func.count())
                .join(files, files.c.id == documents.c.file_id)
                .where(documents.c.state == _state(DocState.FAILED), _resolved_document(documents))
                .group_by(files.c.partner, files.c.flow)
            ).all()
            failed_actions = conn.execute(
                select(
                    files.c.partner,
                    files.c.flow,
                    channel_actions.c.file_id,
                    channel_actions.c.at,
                    channel_actions.c.action,
                    channel_actions.c.error,
                )
                .join(files, files.c.id == channel_actions.c.file_id)
                .where(channel_actions.c.ok == False)  # noqa: E712 - SQL expression
                .order_by(channel_actions.c.at.desc(), channel_actions.c.id.desc())
                .limit(200)
            ).all()

        keys: set[tuple[str, str]] = set()
        by_files: dict[tuple[str, str], dict[str, int]] = {}
        by_docs: dict[tuple[str, str], dict[str, int]] = {}
        for partner, flow, state, count in file_counts:
            keys.add((partner, flow))
            by_files.setdefault((partner, flow), {})[state] = count
        calls: dict[tuple[str, str], dict[str, int]] = {}
        for partner, flow, state, count, attempts in doc_counts:
            keys.add((partner, flow))
            by_docs.setdefault((partner, flow), {})[state] = count
            calls.setdefault((partner, flow), {})[state] = int(attempts)
        next_retry = {(p, f): at for p, f, at in retries}
        files_resolved: dict[tuple[str, str], dict[str, int]] = {}
        for p, f, state, n in resolved_files:
            files_resolved.setdefault((p, f), {})[state] = n
        docs_resolved = {(p, f): n for p, f, n in resolved_docs}
        errors: dict[tuple[str, str], list[RecentError]] = {}
        for p, f, doc_id, at, error, location in failed_docs:
            errors.setdefault((p, f), []).append(
                RecentError(f"D-{doc_id}", at, error or "", location)
            )
        for p, f, file_id, at, error in failed_files:
            errors.setdefault((p, f), []).append(RecentError(f"F-{file_id}", at, error or ""))
        for p, f, file_id, at, action, error in failed_actions:
            errors.setdefault((p, f), []).append(
                RecentError(
                    f"F-{file_id}", at, bounded(f"{action} failed: {error or 'unknown error'}")
                )
            )
        result = []
        for key in sorted(keys):
            file_states, doc_states = by_files.get(key, {}), by_docs.get(key, {})
            recent = sorted(errors.get(key, []), key=lambda e: e.at, reverse=True)
            result.append(
                StatusRow(
                    partner=key[0],
                    flow=key[1],
                    files=file_states,
                    documents=doc_states,
                    files_waiting=sum(
                        file_states.get(s, 0) for s in (FileState.RECEIVED, FileState.PARSED)
                    ),
                    documents_waiting=sum(doc_states.get(s, 0) for s in UNFINISHED_DOC_STATES),
                    next_retry_at=next_retry.get(key),
                    last_errors=tuple(recent[:LAST_ERRORS]),
                    files_resolved=files_resolved.get(key, {}),
                    documents_resolved=docs_resolved.get(key, 0),
                    calls=calls.get(key, {}),
                )
            )
        return result

    def next_retry_at(self) -> datetime | None:
        """When the earliest document waiting for a retry becomes due (``None``: none waits)."""
        with self._read("find the next retry") as conn:
            value: datetime | None = conn.execute(self._sql.next_retry).scalar()
        return value

    def ping(self) -> None:
        """One trivial read (``SELECT 1``): raises ``JournalError`` when the journal cannot
        be reached (readiness checks it on every ``/readyz``)."""
        with self._read("reach the journal") as conn:
            conn.execute(select(literal_column("1"))).scalar()

    def gauges(self) -> JournalGauges:
        """Counts for metrics, in three aggregate queries: files and documents per
        partner/flow and state, and per partner/flow the oldest unfinished document's
        creation time (its age is how long the oldest waiting document has waited)."""
        with self._read("count states for metrics") as conn:
            file_counts = conn.execute(
                select(files.c.partner, files.c.flow, files.c.state, func.count()).group_by(
                    files.c.partner, files.c.flow, files.c.state
                )
            ).all()
            doc_counts = conn.execute(
                select(files.c.partner, files.c.flow, documents.c.state, func.count())
                .join(files, files.c.id == documents.c.file_id)
                .group_by(files.c.partner, files.c.flow, documents.c.state)
            ).all()
            oldest = conn.execute(
                select(files.c.partner, files.c.flow, func.min(documents.c.created_at))
                .join(files, files.c.id == documents.c.file_id)
                .where(unfinished_condition())
                .group_by(files.c.partner, files.c.flow)
            ).all()
        return JournalGauges(
            files={(p, f, state): n for p, f, state, n in file_counts},
            documents={(p, f, state): n for p, f, state, n in doc_counts},
            oldest_waiting={(p, f): at for p, f, at in oldest if at is not None},
        )
