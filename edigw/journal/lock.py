"""One gateway per SQLite journal: an OS lock on a file beside the database.

Two ``edigw run`` on the same SQLite journal would both take the same files in and dispose of
each other's sources; SQLite itself would only serialise their writes. The lock is
``fcntl.flock`` on ``<journal>.lock``: the kernel releases it when the process ends, however
it ends (a SIGKILL or a power cut leaves no stale lock to clean up), and the file holds the
holder's pid so that a refused start can say who holds it; it gets the journal's file mode
(``security.file_mode``). PostgreSQL journals take no lock: several nodes may share one
(their coordination is the journal's claims and leases).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from edigw.errors import JournalError
from edigw.filemodes import DEFAULT_MODES, FileModes

LOCK_SUFFIX = ".lock"


def lock_path(database: Path) -> Path:
    """The lock file of a SQLite journal: ``journal.sqlite.lock`` beside it."""
    return database.with_name(database.name + LOCK_SUFFIX)


class GatewayLock:
    """An exclusive lock on a SQLite journal, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, database: Path, *, modes: FileModes = DEFAULT_MODES) -> None:
        self.database = database
        self.path = lock_path(database)
        self.modes = modes
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise ``JournalError`` naming the journal and the holder's pid."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.modes.file)
        except OSError as err:
            msg = f"cannot create the journal's lock file {self.path}: {err.strerror or err}"
            raise JournalError(msg) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            holder = _holder(fd)
            os.close(fd)
            msg = (
                f"another gateway (pid {holder}) is running on the journal {self.database}: "
                "stop it first; one `edigw run` per SQLite journal (use PostgreSQL for several nodes)"
            )
            raise JournalError(msg) from err
        except OSError as err:
            os.close(fd)
            msg = f"cannot lock the journal's lock file {self.path}: {err.strerror or err}"
            raise JournalError(msg) from err
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let another gateway start (closing the file releases the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    """The pid written by the process that holds the lock ("unknown" while it writes it)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
