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
WRITER_SUFFIX = ".writer"


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


class WriterTurn:
    """Where the writers of several processes on one SQLite journal take their turns.

    SQLite lets one writer in at a time and makes the others wait in its busy handler, which
    sleeps 1, 2, 5, 10... milliseconds between looks: with two busy processes on one journal
    (``edigw run --processes 2``: the intake and the senders) every collision cost
    milliseconds of nobody writing. Queued on ``flock`` on ``<journal>.writer`` instead, a
    writer is woken by the kernel as soon as the previous one is done. A process that does
    not take its turn here (an older edigw, the ``sqlite3`` shell) still meets the others
    at the database's own lock: this only makes waits shorter. When the file cannot be
    opened (a read-only folder), writes go on without it.
    """

    def __init__(self, database: Path, *, modes: FileModes = DEFAULT_MODES) -> None:
        self.path = database.with_name(database.name + WRITER_SUFFIX)
        self.modes = modes
        self._fd: int | None = None
        self._pid = 0  # the process that opened ``_fd`` (a forked child opens its own)
        self._unusable = False

    def __enter__(self) -> None:
        fd = self._open()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> int | None:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        if self._unusable:
            return None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.modes.file)
        except OSError:
            self._unusable = True
            return None
        self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
