"""Several nodes on one PostgreSQL journal: heartbeats, flow leases, file claims
(see ``leases``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select

from edigw.errors import JournalError
from edigw.journal import leases
from edigw.journal.conditions import _batches
from edigw.journal.connection import JournalBase
from edigw.journal.rows import _aware
from edigw.journal.schema import (
    FINAL_FILE_STATES,
    FileState,
    documents,
    files,
    unfinished_condition,
)


class NodesMixin(JournalBase):
    """Leadership and claims of several nodes."""

    # ----------------------------------------------------------------- several nodes

    @property
    def shared(self) -> bool:
        """Several nodes may share this journal (PostgreSQL); a SQLite journal has one."""
        return self._pg

    def _needs_shared(self, what: str) -> None:
        if not self._pg:
            msg = f"{what}: only a PostgreSQL journal is shared by several nodes"
            raise JournalError(msg)

    def heartbeat(self, node: str, *, ttl: float) -> int:
        """Say ``node`` is alive; how many nodes are (seen within ``ttl`` seconds)."""
        self._needs_shared("heartbeat")
        with self._write("record a node's heartbeat") as conn:
            return leases.heartbeat(conn, node, ttl=ttl)

    def leave(self, node: str, *, claims_until: datetime) -> int:
        """``node`` stops: its flows are free for the other nodes at once, the documents it
        still claims resume at ``claims_until`` (see ``leases.leave``); how many it claims."""
        self._needs_shared("leave")
        with self._write("free a stopping node's leases") as conn:
            return leases.leave(conn, node, claims_until=_aware(claims_until))

    def dead_nodes(self, *, ttl: float) -> list[str]:
        """Nodes whose last heartbeat is older than ``ttl`` seconds (killed, or cut off)."""
        self._needs_shared("dead nodes")
        with self._read("list dead nodes") as conn:
            return leases.dead_nodes(conn, ttl=ttl)

    def flow_leases(self, flows: Sequence[str]) -> dict[str, leases.LeaseRow]:
        """The leases of ``flows`` that exist, ``expired`` by the database's clock."""
        self._needs_shared("flow leases")
        with self._read("read the flow leases") as conn:
            return leases.leases(conn, list(flows))

    def take_leases(self, flows: Sequence[str], node: str, *, ttl: float) -> dict[str, int | None]:
        """Take or renew the leases of ``flows`` in one transaction, in flow order (nodes
        lock leases in the same order: no deadlock); each flow's epoch, or ``None`` when
        another node holds it. Each lease is one statement that cannot race."""
        self._needs_shared("take leases")
        with self._write("take flow leases") as conn:
            return {flow: leases.take(conn, flow, node, ttl=ttl) for flow in sorted(flows)}

    def let_go_leases(self, flows: Sequence[str], node: str, *, after: float) -> None:
        """Give ``flows`` up; others may take them ``after`` seconds from now."""
        self._needs_shared("give leases up")
        with self._write("give flow leases up") as conn:
            for flow in sorted(flows):
                leases.let_go(conn, flow, node, after=after)

    def claim_file(
        self, *, flow: str, path: str, size: int, mtime: float, node: str, epoch: int
    ) -> bool:
        """Claim a source file version before touching it (see ``leases.claim_file``)."""
        self._needs_shared("claim a file")
        with self._write_single("claim a source file") as conn:
            return leases.claim_file(
                conn, flow=flow, path=path, size=size, mtime=mtime, node=node, epoch=epoch
            )

    def claim_files(
        self,
        *,
        flow: str,
        versions: Sequence[tuple[str, int, float]],
        node: str,
        epoch: int,
    ) -> set[tuple[str, int, float]]:
        """Claim several source versions (path, size, mtime) in one statement, as a poll
        lists them; returns those claimed (see ``leases.claim_files``)."""
        self._needs_shared("claim files")
        with self._write_single("claim source files") as conn:
            return leases.claim_files(conn, flow=flow, versions=versions, node=node, epoch=epoch)

    def drop_file_claim(self, *, flow: str, path: str, size: int, mtime: float, node: str) -> None:
        """Forget ``node``'s claim on a source version it disposed of."""
        self._needs_shared("drop a file claim")
        with self._write_single("drop a source file's claim") as conn:
            leases.drop_file_claim(conn, flow=flow, path=path, size=size, mtime=mtime, node=node)

    def files_to_settle(self, file_ids: Collection[int]) -> list[int]:
        """Those of ``file_ids`` that another node may have finished: final, or ``parsed``
        with no unfinished document left (the node that finished the last one died before it
        settled the file, or is settling it now: settling twice is harmless)."""
        if not file_ids:
            return []
        d = documents
        unfinished = select(d.c.id).where(d.c.file_id == files.c.id, unfinished_condition())
        to_settle = or_(
            files.c.state.in_([str(s) for s in FINAL_FILE_STATES]),
            and_(files.c.state == str(FileState.PARSED), ~unfinished.exists()),
        )
        found: list[int] = []
        with self._read("find finished files") as conn:
            for batch in _batches(sorted(file_ids)):
                found += conn.execute(
                    select(files.c.id).where(files.c.id.in_(batch), to_settle)
                ).scalars()
        return found
