"""The local folders a configuration names: which they are, creating them, checking them.

``edigw run`` creates every local folder it will need before its loops start — inboxes,
their done and error folders, outboxes, the data folder and its archive — and logs each
one it creates, so that a gateway fresh from ``edigw init`` takes files in at once.
``edigw config check`` reports, without changing anything, each folder that is missing
(``run`` will create it), cannot be written, or is not on the file system of the inbox
its files are moved from: a move there is a copy, not an atomic rename, and the local
channel refuses it (``os.replace`` cannot cross file systems).

SFTP folders live on partners' servers: ``edigw sftp check`` looks at those.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from edigw.config import (
    FolderArchiveSettings,
    GatewayConfig,
    InboundFlow,
    LocalChannel,
    PostgresArchiveSettings,
)
from edigw.errors import ConfigError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders

log = logging.getLogger("edigw.folders")

#: Prefix of the file written and removed at once to learn whether a folder is writable
#: (a dotfile: no channel ever takes it in).
PROBE_PREFIX = ".edigw-write-check-"


@dataclass(frozen=True, slots=True)
class Folder:
    """A local folder the configuration needs, what for, and which flow uses it.

    ``moved_from`` is the inbox whose files are moved into it (done and error folders):
    both must be on one file system.
    """

    path: Path
    role: str
    flow: str | None = None
    moved_from: Path | None = None
    #: a folder of edigw's own (data, archive, journal), created with ``security.file_mode``'s
    #: folder mode; partners' folders (inboxes, done, error, outboxes) get what the umask gives
    private: bool = False

    @property
    def purpose(self) -> str:
        """``inbox of webshop/orders``, ``archive``."""
        return f"{self.role} of {self.flow}" if self.flow else self.role


def _sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite journal file, or None for other databases (or in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).parent


def _flow_folders(flow: InboundFlow) -> Iterator[Folder]:
    if not isinstance(flow.channel, LocalChannel):
        return
    inbox = Path(flow.channel.path)
    yield Folder(inbox, "inbox", flow.id)
    if flow.after.action == "move":
        yield Folder(inbox / flow.after.to, "done folder", flow.id, moved_from=inbox)
    yield Folder(inbox / flow.error_folder, "error folder", flow.id, moved_from=inbox)


def _archive_folders(config: GatewayConfig) -> Iterator[Folder]:
    """The archive's folder on this node's disk, as ``edigw.pipeline.assembly.archive_of``
    uses it: ``data_dir/archive``, or the cache of a ``postgresql`` archive. A shared
    ``folder`` archive is a mount, never created here: a node must not archive into an
    empty local folder where the share should be (its markers check refuses that)."""
    data_dir = Path(config.data_dir)
    if isinstance(config.archive, PostgresArchiveSettings):
        yield Folder(data_dir / "archive-cache", "archive cache", private=True)
    elif not isinstance(config.archive, FolderArchiveSettings):
        yield Folder(data_dir / "archive", "archive", private=True)


def local_folders(config: GatewayConfig) -> list[Folder]:
    """Every local folder ``config`` names, each path once (the first use names it)."""
    data_dir = Path(config.data_dir)
    found = [Folder(data_dir, "data folder", private=True), *_archive_folders(config)]
    journal_folder = _sqlite_folder(config.journal_url)
    if journal_folder is not None:
        found.append(Folder(journal_folder, "journal folder", private=True))
    for flow in config.inbound_flows():
        found.extend(_flow_folders(flow))
    for export in config.outbound_flows():
        if isinstance(export.channel, LocalChannel):
            found.append(Folder(Path(export.channel.path), "outbox", export.id))
    unique: dict[Path, Folder] = {}
    for folder in found:
        unique.setdefault(Path(os.path.normpath(folder.path)), folder)
    return list(unique.values())


# --------------------------------------------------------------------------- creating


def create_folders(folders: Iterable[Folder], modes: FileModes = DEFAULT_MODES) -> list[Folder]:
    """Create the folders that do not exist yet, logging each; returns those created.

    edigw's own folders (``private``) get the folder mode of ``modes``; partners' folders
    what the umask gives, like the files delivered into them.

    Raises ``ConfigError`` naming every folder that could not be created (a file in the
    way, no permission): a gateway that cannot put files anywhere must not start.
    """
    created: list[Folder] = []
    problems: list[str] = []
    for folder in folders:
        if folder.path.is_dir():
            continue
        try:
            if folder.private:
                make_folders(folder.path, modes)
            else:
                folder.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(
                f"cannot create {folder.path} ({folder.purpose}): {exc.strerror or exc}"
            )
            continue
        log.info("created folder %s (%s)", folder.path, folder.purpose)
        created.append(folder)
    if problems:
        raise ConfigError("; ".join(problems), problems=problems)
    return created


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class FolderCheck:
    """What ``config check`` found about one folder: missing (a note), or a problem."""

    folder: Folder
    missing: bool = False
    problem: str | None = None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``run`` creates the rest)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def not_writable(folder: Path) -> str | None:
    """Why no file can be created in ``folder``, or None: tried for real, since permission
    bits say nothing to root, to a read-only mount or to an immutable folder."""
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    try:
        os.unlink(name)
    except OSError as exc:
        return f"a test file could be created but not removed: {exc.strerror or exc}"
    return None


def check_folder(folder: Folder) -> FolderCheck:
    """Look at one folder without changing anything (but a test file, removed at once)."""
    path = folder.path
    if path.exists() and not path.is_dir():
        return FolderCheck(folder, problem=f"{path} ({folder.purpose}) is a file, not a folder")
    missing = not path.exists()
    existing = _nearest_existing(path)
    if not existing.is_dir():
        problem = f"{path} ({folder.purpose}) cannot be created: {existing} is a file"
        return FolderCheck(folder, missing, problem)
    why = not_writable(existing)
    if why is not None:
        if missing:
            problem = f"{path} ({folder.purpose}) cannot be created in {existing}: {why}"
        else:
            problem = f"{path} ({folder.purpose}) cannot be written: {why}"
        return FolderCheck(folder, missing, problem)
    if folder.moved_from is not None:
        source = _nearest_existing(folder.moved_from)
        try:
            other = os.stat(source).st_dev != os.stat(existing).st_dev
        except OSError:
            other = False
        if other:
            problem = (
                f"{path} ({folder.purpose}) is on another file system than {folder.moved_from}: "
                "files cannot be moved there in one atomic step; put both on one file system"
            )
            return FolderCheck(folder, missing, problem)
    return FolderCheck(folder, missing)


def check_folders(config: GatewayConfig) -> list[FolderCheck]:
    """Every local folder of ``config`` that is missing or has a problem, in config order."""
    checks = (check_folder(folder) for folder in local_folders(config))
    return [check for check in checks if check.missing or check.problem]
