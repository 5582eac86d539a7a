"""The nodes a journal knows, for an operator, and forgetting one retired for good.

Two tables name nodes, each its own way: ``archive_markers`` one row per node sharing an
``archive: {kind: folder}``, named by host and data folder (``gw3:/srv/edigw/data``), and
``nodes`` one row per running gateway process, named by host and pid (``gw3:4242``), its
heartbeat in ``seen_at`` (PostgreSQL journals only). A node retired for good keeps its marker
row, and once its marker file is gone from the shared folder (the folder cleaned) every other
node refuses to start (``archive_markers.check_same_folder``): forgetting it deletes the row.

Which process uses which data folder is not in the journal, so a marker node counts as alive
while *any* gateway process of its host was seen within the takeover time; forgetting it then
needs ``force``. Times compared are the database's, never this machine's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, create_engine, exc

from edigw.errors import JournalError
from edigw.journal import leases
from edigw.journal.archive_markers import MARKERS, forget_marker, marker_path, marker_rows


@dataclass(frozen=True, slots=True)
class KnownNode:
    """One node as the journal knows it: its archive marker, its heartbeat, or both."""

    node: str
    #: When a process of this name last said it was alive (``None``: no heartbeat row).
    seen_at: datetime | None = None
    #: Seen within the takeover time (a marker node: any process of its host).
    alive: bool = False
    #: ``.edigw-nodes/<token>``, when the node shares an archive folder.
    marker: str | None = None
    #: When the node wrote that marker (its last start).
    marker_written_at: datetime | None = None
    #: Whether the marker file is in the archive folder (``None``: not looked for).
    marker_present: bool | None = None


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What ``forget`` removed."""

    node: str
    marker_row: bool
    marker_file: Path | None
    heartbeat_row: bool


def host_of(node: str) -> str:
    """The host a node name begins with (``gw3`` of ``gw3:/srv/edigw/data`` and ``gw3:4242``)."""
    return node.partition(":")[0]


def roster(journal_url: str, *, takeover: float, folder: Path | None) -> list[KnownNode]:
    """Every node the journal knows, marker nodes first; ``folder``: the shared archive folder
    to look for their marker files in (``None``: not looked for)."""
    with _connection(journal_url) as conn:
        markers = marker_rows(conn)
        beats = _heartbeats(conn, takeover)
    live_hosts = {host_of(row.node) for row in beats if row.alive}
    known = [
        KnownNode(
            node=row.node,
            alive=host_of(row.node) in live_hosts,
            marker=f"{MARKERS}/{row.token}",
            marker_written_at=row.written_at,
            marker_present=None if folder is None else marker_path(folder, row.token).is_file(),
        )
        for row in markers
    ]
    known += [KnownNode(node=row.node, seen_at=row.seen_at, alive=row.alive) for row in beats]
    return known


def forget(
    journal_url: str, node: str, *, takeover: float, folder: Path | None, force: bool = False
) -> Forgotten:
    """Forget ``node``: its marker row, its marker file in ``folder`` (else in the folder the
    node recorded) and its heartbeat row. Refuses (``JournalError``) an unknown node, and one
    seen alive within ``takeover`` seconds unless ``force``."""
    with _connection(journal_url) as conn:
        beats = _heartbeats(conn, takeover)
        live = [
            row
            for row in beats
            if row.alive and (row.node == node or host_of(row.node) == host_of(node))
        ]
        if live and not force:
            seen = max(row.seen_at for row in live)
            msg = (
                f"node {node} may still be running: {', '.join(r.node for r in live)} on its "
                f"host was seen at {seen:%Y-%m-%d %H:%M:%S} UTC, within the takeover time "
                f"({takeover:g} s); stop it first, or add --force if it is another node"
            )
            raise JournalError(msg)
        row = forget_marker(conn, node)
        heartbeat = (
            leases.forget_nodes(conn, [node]) > 0 if conn.dialect.name == "postgresql" else False
        )
        if row is None and not heartbeat:
            msg = f"the journal knows no node {node}; `edigw nodes` lists those it knows"
            raise JournalError(msg)
    marker_file = None
    if row is not None:
        path = marker_path(folder if folder is not None else Path(row.folder), row.token)
        try:
            path.unlink()
            marker_file = path
        except FileNotFoundError:
            pass
        except OSError as err:
            msg = f"forgot node {node}, but cannot remove its marker {path}: {err.strerror or err}"
            raise JournalError(msg) from err
    return Forgotten(node, row is not None, marker_file, heartbeat)


def _heartbeats(conn: Connection, takeover: float) -> list[leases.NodeRow]:
    """The heartbeat rows: PostgreSQL only (a SQLite journal has one node and no rows)."""
    if conn.dialect.name != "postgresql":
        return []
    return leases.node_rows(conn, ttl=takeover)


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    """One transaction on the journal, its errors as one-line ``JournalError``."""
    try:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                yield conn
        finally:
            engine.dispose()
    except exc.SQLAlchemyError as err:
        msg = f"cannot read the nodes in the journal: {err}"
        raise JournalError(msg.splitlines()[0]) from err
