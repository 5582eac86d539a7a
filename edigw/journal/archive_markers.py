"""Proof that every node sees the same shared archive folder (``archive: {kind: folder}``).

A shared folder that one node mounts and another does not (or mounts from another server)
looks fine to each of them until a replay on the other node finds no copy. So each node, when
its gateway starts, writes a marker file with a random token into ``<folder>/.edigw-nodes/``,
reads it back, and records the token in the journal (``archive_markers``, one row per node).
Before that it reads the markers of every other node the journal knows: one missing, or
holding another token, means this node's folder is not theirs, and the gateway refuses to
start, naming the folder, the node and the marker.

A node is named by its host and its data folder, so it finds its own row again after a
restart and replaces it (its previous marker file goes); a node retired for good keeps its
row until an operator forgets it (``edigw nodes forget``, ``edigw.journal.node_roster``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, delete, exc, insert, select

from edigw.errors import JournalError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders, open_private
from edigw.journal.schema import archive_markers

#: The folder of markers inside the shared archive folder.
MARKERS = ".edigw-nodes"


def check_same_folder(
    root: Path, *, journal_url: str, node: str, modes: FileModes = DEFAULT_MODES
) -> None:
    """Refuse (``JournalError``, one line) unless ``root`` holds every other node's marker;
    then leave this node's marker there and in the journal."""
    markers = Path(root) / MARKERS
    token = secrets.token_hex(16)
    mine = markers / token
    _write_marker(mine, token, modes)
    try:
        with _engine(journal_url) as engine:
            t = archive_markers.c
            with _translated(), engine.begin() as conn:
                rows = conn.execute(select(t.node, t.token, t.written_at)).all()
            for row in rows:
                if row.node != node and _read(markers / row.token) != row.token:
                    when = row.written_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                    msg = (
                        f"the archive folder {root} is not the one node {row.node} uses: its "
                        f"marker {MARKERS}/{row.token} (written {when}) is not in it; mount the "
                        f"same shared folder as archive.path on every node"
                    )
                    raise JournalError(msg)
            previous = next((row.token for row in rows if row.node == node), None)
            with _translated(), engine.begin() as conn:
                conn.execute(delete(archive_markers).where(t.node == node))
                conn.execute(
                    insert(archive_markers).values(
                        node=node, token=token, folder=str(root), written_at=datetime.now(UTC)
                    )
                )
    except BaseException:
        mine.unlink(missing_ok=True)
        raise
    if previous is not None and previous != token:
        (markers / previous).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class MarkerRow:
    """A node's marker as the journal has it: its token, in which folder, written when."""

    node: str
    token: str
    folder: str
    written_at: datetime


def marker_rows(conn: Connection) -> list[MarkerRow]:
    """Every node's marker row, by node name."""
    t = archive_markers.c
    query = select(t.node, t.token, t.folder, t.written_at).order_by(t.node)
    return [MarkerRow(r.node, r.token, r.folder, r.written_at) for r in conn.execute(query)]


def forget_marker(conn: Connection, node: str) -> MarkerRow | None:
    """Delete ``node``'s marker row; the row deleted (``None``: it had none)."""
    t = archive_markers.c
    row = conn.execute(
        delete(archive_markers)
        .where(t.node == node)
        .returning(t.node, t.token, t.folder, t.written_at)
    ).first()
    return None if row is None else MarkerRow(row.node, row.token, row.folder, row.written_at)


def marker_path(root: Path, token: str) -> Path:
    """Where a node's marker file is in the shared folder ``root``."""
    return Path(root) / MARKERS / token


def _write_marker(path: Path, token: str, modes: FileModes) -> None:
    """Write the marker durably and read it back (a folder that drops writes fails here)."""
    try:
        make_folders(path.parent, modes)
        fd = open_private(path, modes, exclusive=True)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token)
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        msg = f"cannot write a marker into the archive folder {path.parent}: {err.strerror or err}"
        raise JournalError(msg) from err
    if _read(path) != token:
        path.unlink(missing_ok=True)
        msg = f"the archive folder {path.parent} does not give back the marker written into it"
        raise JournalError(msg)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    with _translated():
        engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except exc.SQLAlchemyError as err:
        msg = f"cannot check the archive folder's markers in the journal: {err}"
        raise JournalError(msg.splitlines()[0]) from err
