"""Who may read what edigw keeps: the modes of the files and folders it creates for itself.

The archive holds every partner file byte for byte and the journal every payload sent, with
customers' names and addresses: they are created readable by the gateway's user only (files
0600, folders 0700), or by its group too when ``security.file_mode`` says 0640 (a backup
user, say). Modes are set explicitly (``fchmod``/``chmod``), whatever the process umask.

What edigw hands to partners keeps what the partner's folder gives it: exported files, and
error reports on a partner's SFTP server. Files and folders that already exist are left as
they are (tighten an older installation with ``chmod -R go-rwx DATA_DIR``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

#: Files readable and writable by the gateway's user only.
DEFAULT_FILE_MODE = 0o600


def check_file_mode(mode: int) -> int:
    """``mode`` if it suits files edigw keeps: the owner reads and writes, nobody executes,
    others get nothing (the group may read, or read and write)."""
    if not 0 <= mode <= 0o777 or mode & 0o600 != 0o600 or mode & 0o111 or mode & 0o007:
        msg = (
            f"{mode:04o} does not suit the files edigw keeps: the owner must read and write, "
            "nobody may execute, others get nothing (e.g. 0600 or 0640)"
        )
        raise ValueError(msg)
    return mode


@dataclass(frozen=True, slots=True)
class FileModes:
    """The modes of what edigw creates: ``file``, and the matching folder and read-only modes."""

    file: int = DEFAULT_FILE_MODE

    def __post_init__(self) -> None:
        check_file_mode(self.file)

    @property
    def folder(self) -> int:
        """0600 → 0700, 0640 → 0750: who may read a file may list its folder."""
        return self.file | ((self.file & 0o444) >> 2)

    @property
    def read_only(self) -> int:
        """The file mode without write bits (archive copies never change): 0400, 0440."""
        return self.file & 0o444


#: 0600 files, 0700 folders.
DEFAULT_MODES = FileModes()


def make_folders(path: Path, modes: FileModes) -> None:
    """Create ``path`` and its missing parents with the folder mode; existing ones stay as
    they are. Safe when another process creates them at the same time."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=modes.folder)
        except FileExistsError:
            continue
        os.chmod(folder, modes.folder)  # the umask may have taken bits away
    if not Path(path).is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def open_private(path: Path, modes: FileModes, *, exclusive: bool = False) -> int:
    """Open ``path`` for writing (created, or truncated) with the file mode; returns the fd.

    ``exclusive``: fail with ``FileExistsError`` when it exists.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, modes.file)
    try:
        os.fchmod(fd, modes.file)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes, modes: FileModes) -> None:
    """Write ``data`` to ``path`` (created or replaced in place) with the file mode."""
    with os.fdopen(open_private(path, modes), "wb") as out:
        out.write(data)
