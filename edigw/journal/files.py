"""Files received: recording them, their states, and finding them again by content or name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true, update

from edigw.errors import DataProblem
from edigw.journal.conditions import (
    FAILED_FILE_STATES,
    _batches,
    _filtered,
    _name_pattern,
    _open_file_failure,
    _state_of_file,
)
from edigw.journal.errors import UnknownIdError
from edigw.journal.failures import FailuresMixin
from edigw.journal.reception import ReceptionMixin
from edigw.journal.rows import FileListing, FileRow, _aware, _file_row
from edigw.journal.schema import FINAL_FILE_STATES, FileState, channel_actions, documents, files
from edigw.problems import ProblemList, storable


class FilesMixin(ReceptionMixin, FailuresMixin):
    """Reading received files, and their states."""

    def files_with_content(self, *, partner: str, flow: str, sha256: str) -> list[FileRow]:
        """Every file of this flow with these bytes, oldest first (usually none or one).

        One indexed query answers both questions the pipeline asks of a new file: was it
        taken before a crash (the latest one, not yet disposed of) and was it already done.
        """
        with self._read("look for files by content") as conn:
            rows = conn.execute(
                self._sql.files_with_content,
                {"partner": partner, "flow": flow, "sha256": sha256},
            ).mappings()
            return [_file_row(m) for m in rows]

    def find_done_file(self, *, partner: str, flow: str, sha256: str) -> FileRow | None:
        """The earliest file of this flow with the same content that ended ``done``, if any."""
        with self._read("look for a duplicate file") as conn:
            m = (
                conn.execute(
                    select(files)
                    .where(
                        files.c.partner == partner,
                        files.c.flow == flow,
                        files.c.sha256 == sha256,
                        files.c.state == FileState.DONE,
                    )
                    .order_by(files.c.id)
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if m is None else _file_row(m)

    def latest_file_by_hash(self, *, partner: str, flow: str, sha256: str) -> FileRow | None:
        """The latest file of this flow with this content, whatever its state.

        The pipeline uses it to *resume* a file taken before a crash instead of taking the
        same source a second time.
        """
        with self._read("look for a file by content") as conn:
            m = (
                conn.execute(
                    select(files)
                    .where(
                        files.c.partner == partner,
                        files.c.flow == flow,
                        files.c.sha256 == sha256,
                    )
                    .order_by(files.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if m is None else _file_row(m)

    def source_disposed(self, file_id: int) -> bool:
        """Whether the file's source was already moved, deleted or left (successfully)."""
        with self._read("check a source's disposal") as conn:
            found = conn.execute(
                select(channel_actions.c.id)
                .where(channel_actions.c.file_id == file_id, channel_actions.c.ok == true())
                .limit(1)
            ).first()
        return found is not None

    def set_file_state(
        self,
        file_id: int,
        state: str,
        *,
        now: datetime,
        error: str | None = None,
        problems: Sequence[DataProblem] | ProblemList = (),
    ) -> None:
        """Move a file to ``state`` (any state: the pipeline owns the transitions).

        ``parsed_at`` is stamped on ``parsed``, ``finished_at`` on a final state; ``error``
        replaces the file's error when given (within ``MAX_MESSAGE`` characters), and
        ``problems`` (all that made the file fail) are kept whole when it could not hold them;
        a reading marker is cleared.
        """
        state = FileState(state)
        now = _aware(now)
        values: dict[str, Any] = {"state": state, "reader": None, "updated_at": now}
        if state == FileState.PARSED:
            values["parsed_at"] = now
        if state in FINAL_FILE_STATES:
            values["finished_at"] = now
        if error is not None:
            error = values["error"] = storable(error)
        with self._write("change a file's state", barrier=True) as conn:
            result = conn.execute(update(files).where(files.c.id == file_id).values(**values))
            if result.rowcount == 0:
                msg = f"F-{file_id} does not exist in the journal"
                raise UnknownIdError(msg)
            if problems:
                self._keep_problems(conn, file_id, None, problems)
            self._event(conn, file_id, state, now=now, detail=error)

    def fail_killed_reading(self, file_id: int, *, reader: str, error: str, now: datetime) -> bool:
        """Fail a file whose reading killed the process ``reader`` (it stays its reader, so
        that the same bytes are never read in the gateway again). ``False`` when the file is
        no longer ``received`` by ``reader`` (another process settled it first)."""
        now = _aware(now)
        error = storable(error)
        with self._write("fail a file whose reading killed the gateway", barrier=True) as conn:
            result = conn.execute(
                update(files)
                .where(
                    files.c.id == file_id,
                    files.c.state == FileState.RECEIVED,
                    files.c.reader == reader,
                )
                .values(state=FileState.FAILED, error=error, finished_at=now, updated_at=now)
            )
            if result.rowcount == 0:
                return False
            self._event(conn, file_id, FileState.FAILED, now=now, detail=error)
            return True

    def readings(self) -> list[FileRow]:
        """Files being read (``received`` with a reader), oldest first: after a crash, those
        whose reader is dead."""
        with self._read("list files being read") as conn:
            rows = conn.execute(
                select(files)
                .where(files.c.state == FileState.RECEIVED, files.c.reader.is_not(None))
                .order_by(files.c.id)
            ).mappings()
            return [_file_row(m) for m in rows]

    def changed_sources(self, *, partner: str, flow: str, action: str) -> dict[str, int]:
        """Sources left in place because they changed after they were read (their channel
        ``action`` says so), and not taken again since: source path -> the file that read
        them (its documents are not sent again by the next reception)."""
        later = files.alias("later")
        query = (
            select(files.c.source_path, func.max(files.c.id))
            .join(channel_actions, channel_actions.c.file_id == files.c.id)
            .where(
                files.c.partner == partner,
                files.c.flow == flow,
                channel_actions.c.action == action,
                ~select(later.c.id)
                .where(
                    later.c.partner == partner,
                    later.c.flow == flow,
                    later.c.source_path == files.c.source_path,
                    later.c.id > files.c.id,
                )
                .exists(),
            )
            .group_by(files.c.source_path)
        )
        with self._read("list changed sources") as conn:
            return {path: file_id for path, file_id in conn.execute(query).all()}

    def file(self, file_id: int) -> FileRow:
        with self._read("read a file") as conn:
            m = conn.execute(self._sql.file, {"fid": file_id}).mappings().first()
        if m is None:
            msg = f"F-{file_id} does not exist in the journal"
            raise UnknownIdError(msg)
        return _file_row(m)

    def files(
        self,
        *,
        partner: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[FileRow]:
        """Files, newest first, filtered; ``since`` compares with ``received_at``; no limit: None."""
        query = _filtered(
            select(files).order_by(files.c.id.desc()),
            partner=partner,
            flow=flow,
            state=(files.c.state, None if state is None else FileState(state)),
            since=(files.c.received_at, since),
            limit=limit,
        )
        with self._read("list files") as conn:
            return [_file_row(m) for m in conn.execute(query).mappings()]

    def file_listing(
        self,
        *,
        partner: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        resolved: bool | None = None,
        since: datetime | None = None,
        name: str | None = None,
        limit: int | None = 50,
    ) -> list[FileListing]:
        """Files for ``edigw files``, newest first, with their documents by state.

        ``name`` is a shell-style pattern matched case-insensitively against the partner's
        file name (see :func:`_name_pattern`); ``resolved`` keeps only failures an operator
        resolved (True) or failures still open (False).
        """
        open_failure = _open_file_failure(files)
        query = select(files, open_failure.label("open_failure")).order_by(files.c.id.desc())
        if name is not None:
            query = query.where(files.c.original_name.ilike(_name_pattern(name), escape="\\"))
        if resolved is not None:
            query = query.where(
                files.c.state.in_([_state_of_file(s) for s in FAILED_FILE_STATES]),
                ~open_failure if resolved else open_failure,
            )
        query = _filtered(
            query,
            partner=partner,
            flow=flow,
            state=(files.c.state, None if state is None else FileState(state)),
            since=(files.c.received_at, since),
            limit=limit,
        )
        with self._read("list files") as conn:
            rows = list(conn.execute(query).mappings())
            counts: dict[int, dict[str, int]] = {m["id"]: {} for m in rows}
            for batch in _batches(list(counts)):
                for file_id, doc_state, count in conn.execute(
                    select(documents.c.file_id, documents.c.state, func.count())
                    .where(documents.c.file_id.in_(batch))
                    .group_by(documents.c.file_id, documents.c.state)
                ):
                    counts[file_id][doc_state] = count
        return [FileListing(_file_row(m), counts[m["id"]], bool(m["open_failure"])) for m in rows]
