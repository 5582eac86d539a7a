"""Files received: recorded once archived, before a byte of them is read.

The intake's busiest question, "is this a new file?", and its record are asked together
(:meth:`ReceptionMixin.add_file_if_new`): on PostgreSQL one statement instead of a read and a
transaction of three statements (six round trips a file with ``BEGIN`` and ``COMMIT``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from edigw.journal.reading import ReadingMixin
from edigw.journal.rows import NewDocument, _aware
from edigw.journal.schema import FileState


class ReceptionMixin(ReadingMixin):
    """Recording received files."""

    def add_file(
        self,
        *,
        partner: str,
        flow: str,
        channel: str,
        original_name: str,
        source_path: str,
        size: int,
        sha256: str,
        archive_path: str,
        now: datetime,
        documents: Sequence[NewDocument] | None = None,
        reader: str | None = None,
        ordered: bool = True,
    ) -> int:
        """Record a file received (already archived); returns its id.

        ``ordered``: its documents go to Ecolix strictly in file order (the flow's
        ``ordered: true``, what the journal assumes unless told); otherwise in order per
        business key only, distinct keys concurrently (``edigw.journal.heads``).

        ``reader`` names the process about to read it: recorded before a byte is read, so
        that a file whose reading kills the process is known at the next start (see
        :meth:`add_documents`, which clears it).

        With ``documents`` (what the mapping found in it) the file is recorded ``parsed``
        with them in the same transaction, as :meth:`add_documents` would, and the same events.

        A file taken in whole (``sha256`` known) resolves the earlier failures of the same
        name on the same channel that never got its bytes (a transfer cut midway, a file
        that could not be read yet): see :meth:`_resolve_transfers`.
        """
        now = _aware(now)
        rows = None if documents is None else self._document_rows(documents, now=now)
        row = _received_row(
            partner, flow, channel, original_name, source_path, size, sha256, archive_path
        )
        what = "record a received file"
        with self._keys_refused(documents or ()) as check, self._write(what) as conn:
            file_id = self._insert_received(conn, row, now=now, reader=reader, ordered=ordered)
            check.file_id = file_id
            if sha256:
                same = {"partner": partner, "flow": flow, "channel": channel, "name": original_name}
                self._resolve_transfers(conn, file_id, same, now=now)
            if documents is not None and rows is not None:
                self._record_parsed(conn, file_id, documents, rows, now=now, fresh=True)
        return file_id

    def _resolve_transfers(
        self, conn: Connection, file_id: int, same: Mapping[str, str], *, now: datetime
    ) -> None:
        """Mark ``resolved`` the failed rows this file makes moot: ``same`` partner, flow,
        channel and name, no content (their bytes never arrived), never disposed of (a file
        moved to the error folder, e.g. one over ``max_size``, is a failure of its own)."""
        moot = list(conn.execute(self._sql.moot_transfers, {**same, "fid": file_id}).scalars())
        if not moot:
            return
        conn.execute(self._sql.resolve, {"ids": moot, "now": now})
        for earlier in moot:
            self._event(
                conn,
                earlier,
                FileState.SUPERSEDED,
                now=now,
                detail=f"taken in whole as F-{file_id}",
            )
        earlier_refs = ", ".join(f"F-{earlier}" for earlier in moot)
        self._event(conn, file_id, "resolves", now=now, detail=f"earlier failure {earlier_refs}")

    def add_file_if_new(
        self,
        *,
        partner: str,
        flow: str,
        channel: str,
        original_name: str,
        source_path: str,
        size: int,
        sha256: str,
        archive_path: str,
        now: datetime,
        reader: str | None = None,
        ordered: bool = True,
    ) -> int | None:
        """:meth:`add_file` for bytes this flow never received, in one turn at the journal.

        Returns the new file's id; or None, with nothing written, when the flow already has
        a file with these bytes (a duplicate, or a file taken before a crash: the caller asks
        :meth:`files_with_content` and decides) or an earlier failure of the same name and
        channel without content (a transfer cut midway, which :meth:`add_file` resolves).
        The usual new file costs PostgreSQL one statement in autocommit, SQLite one write
        transaction, instead of a read and then :meth:`add_file`.
        """
        if not sha256:
            return None
        now = _aware(now)
        row = _received_row(
            partner, flow, channel, original_name, source_path, size, sha256, archive_path
        )
        merged = self._sql.merged
        if merged is None:
            with self._write("record a received file") as conn:
                if conn.execute(self._sql.reception_known, row).first() is not None:
                    return None
                return self._insert_received(conn, row, now=now, reader=reader, ordered=ordered)
        params = {**_with_state(row, now=now, reader=reader, ordered=ordered), "now": now}
        with self._write_single("record a received file", lazy=True) as conn:
            found = conn.execute(merged.file_if_new, {**params, "detail": _detail(row)}).first()
        if found is None or found.file_id is None:
            return None
        self._owners[found.file_id] = (partner, flow)
        self._ordered_files[found.file_id] = ordered
        return int(found.file_id)

    def _insert_received(
        self,
        conn: Connection,
        row: dict[str, Any],
        *,
        now: datetime,
        reader: str | None,
        ordered: bool,
    ) -> int:
        """Insert a received file's row and its event in the open transaction; its id."""
        values = _with_state(row, now=now, reader=reader, ordered=ordered)
        file_id: int = conn.execute(self._sql.insert_file, values).scalar_one()
        self._owners[file_id] = (row["partner"], row["flow"])
        self._ordered_files[file_id] = ordered
        self._event(conn, file_id, FileState.RECEIVED, now=now, detail=_detail(row))
        return file_id


def _received_row(
    partner: str,
    flow: str,
    channel: str,
    original_name: str,
    source_path: str,
    size: int,
    sha256: str,
    archive_path: str,
) -> dict[str, Any]:
    """What the channel and the archive say of a received file, by column."""
    return {
        "partner": partner,
        "flow": flow,
        "channel": channel,
        "original_name": original_name,
        "source_path": source_path,
        "size": size,
        "sha256": sha256,
        "archive_path": archive_path,
    }


def _with_state(
    row: dict[str, Any], *, now: datetime, reader: str | None, ordered: bool
) -> dict[str, Any]:
    """A received file's whole row: ``received``, by ``reader``, its order rule."""
    state = {"state": str(FileState.RECEIVED), "reader": reader, "ordered": ordered}
    return {**row, **state, "received_at": now, "updated_at": now}


def _detail(row: dict[str, Any]) -> str:
    """The ``received`` event's detail."""
    return (
        f"{row['original_name']} ({row['size']} bytes, sha256 {row['sha256']}) "
        f"from {row['channel']}"
    )
