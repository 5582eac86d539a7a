"""The memory of remote files (SFTP listings) and what was done to sources (channel actions)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select

from edigw.journal import leases
from edigw.journal.conditions import _batches
from edigw.journal.connection import JournalBase
from edigw.journal.dialect import insert_for
from edigw.journal.leases import SourceClaim
from edigw.journal.rows import ChannelActionRow, _aware
from edigw.journal.schema import channel_actions, remote_files
from edigw.problems import storable

#: Paths per statement when a channel's listing is looked up in the remote files memory.
SEEN_BATCH = 500


class RemoteMixin(JournalBase):
    """Remote files seen and channel actions."""

    # ----------------------------------------------------------------- SFTP memory, channel actions

    def remember_remote_file(
        self,
        *,
        channel: str,
        path: str,
        size: int,
        mtime: float,
        sha256: str,
        file_id: int | None,
        now: datetime,
    ) -> None:
        """Remember what sits at ``path`` on a remote channel (the latest version replaces)."""
        now = _aware(now)
        values = {
            "channel": channel,
            "path": path,
            "size": size,
            "mtime": mtime,
            "sha256": sha256,
            "file_id": file_id,
            "seen_at": now,
        }
        dialect_insert = insert_for(pg=self._pg)
        statement = dialect_insert(remote_files).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[remote_files.c.channel, remote_files.c.path],
            set_={
                k: statement.excluded[k] for k in ("size", "mtime", "sha256", "file_id", "seen_at")
            },
        )
        with self._write("remember a remote file", barrier=True) as conn:
            conn.execute(statement)

    def remote_file_seen(self, *, channel: str, path: str, size: int, mtime: float) -> bool:
        """Whether the file at ``path`` still has the size and mtime remembered for it."""
        with self._read("look up a remote file") as conn:
            return (
                conn.execute(
                    self._sql.remote_seen,
                    {"channel": channel, "path": path, "size": size, "mtime": mtime},
                ).first()
                is not None
            )

    def remote_files_seen(
        self, *, channel: str, versions: Mapping[str, tuple[int, float]]
    ) -> set[str]:
        """The paths of ``versions`` (path -> size, mtime) that still have the size and mtime
        remembered for them: ``remote_file_seen`` for a whole listing, in one read of a few
        statements (:data:`SEEN_BATCH` paths each) instead of one per file."""
        if not versions:
            return set()
        paths = list(versions)
        seen: set[str] = set()
        with self._read("look up remote files") as conn:
            for batch in _batches(paths, SEEN_BATCH):
                rows = conn.execute(self._sql.remote_versions, {"channel": channel, "paths": batch})
                seen.update(
                    path
                    for path, size, mtime in rows
                    if (size, mtime) == (versions[path][0], float(versions[path][1]))
                )
        return seen

    def remote_file_seen_with_hash(self, *, channel: str, path: str, sha256: str) -> bool:
        """Whether the content remembered at ``path`` has this hash (touched, not changed)."""
        with self._read("look up a remote file") as conn:
            return (
                conn.execute(
                    select(remote_files.c.path).where(
                        remote_files.c.channel == channel,
                        remote_files.c.path == path,
                        remote_files.c.sha256 == sha256,
                    )
                ).first()
                is not None
            )

    def record_channel_action(
        self,
        file_id: int | None,
        *,
        action: str,
        ok: bool,
        error: str | None,
        now: datetime,
        target: str | None = None,
        detail: str | None = None,
        claim: SourceClaim | None = None,
    ) -> None:
        """Record what was done to a source after its outcome (move, delete, error file...)
        and where it went (``target``: the path in the done or error folder); ``detail``
        says more in the file's story (e.g. why a source was left in place).

        ``claim``: the node's claim on the source (several nodes), forgotten with the record
        (one statement on PostgreSQL)."""
        now = _aware(now)
        error = None if error is None else storable(error)
        told = None
        if file_id is not None:
            told = action if ok else f"{action} failed: {error or 'unknown error'}"
            if ok and target:
                told += f" to {target}"
            if detail:
                told = f"{told}: {detail}"
        values = {
            "file_id": file_id,
            "action": action,
            "ok": ok,
            "error": error,
            "at": now,
            "target": target or None,
        }
        merged = self._sql.merged
        if merged is not None and file_id is not None and told is not None:
            # PostgreSQL: the action and its event in one statement.
            statement = (
                merged.channel_action_told
                if claim is None
                else merged.channel_action_told_forgetting
            )
            params = {**values, "now": now, "detail": storable(told)}
            with self._write_single("record a channel action") as conn:
                conn.execute(statement, params if claim is None else {**params, **claim.params()})
            return
        with self._write("record a channel action", barrier=True) as conn:
            conn.execute(self._sql.insert_channel_action, values)
            if file_id is not None and told is not None:
                self._event(conn, file_id, "channel", now=now, detail=told)
            if claim is not None:
                leases.drop_file_claim(
                    conn,
                    flow=claim.flow,
                    path=claim.path,
                    size=claim.size,
                    mtime=claim.mtime,
                    node=claim.node,
                )

    def channel_actions(
        self, *, file_id: int | None = None, failed_only: bool = False, limit: int | None = 100
    ) -> list[ChannelActionRow]:
        """Channel actions, newest first."""
        query = select(channel_actions).order_by(channel_actions.c.id.desc())
        if file_id is not None:
            query = query.where(channel_actions.c.file_id == file_id)
        if failed_only:
            query = query.where(channel_actions.c.ok == False)  # noqa: E712 - SQL expression
        if limit is not None:
            query = query.limit(limit)
        with self._read("list channel actions") as conn:
            return [ChannelActionRow(**dict(m)) for m in conn.execute(query).mappings()]
