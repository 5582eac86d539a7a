"""Barrier commits on SQLite made durable outside the journal's write lock, many by one fsync.

In WAL mode with ``synchronous=NORMAL`` a commit is appended to the ``-wal`` file without an
fsync; an fsync of that file later makes it durable, with every commit before it. A barrier
(a commit that must be on disk before the gateway acts on it: a file finished before its
source moves, say) used to set ``synchronous=FULL`` for its commit, so SQLite fsync'd while
the write lock was held: every writer of every process waited for the disk. Here the barrier
commits like any other, leaves the lock, then waits for an fsync of the WAL begun after its
commit. Barriers that wait together share one: whoever fsyncs first covers the others.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from edigw.fsync import fsync_path


class WalSync:
    """Counts this process's commits to one SQLite journal and fsyncs its WAL on demand."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._wal = Path(f"{database}-wal")
        self._committed = 0  # commits counted so far (under the journal's write lock)
        self._durable = 0  # every commit up to this count is on disk
        self._syncing = threading.Lock()  # one fsync at a time; the waiters share it
        self._fd: int | None = None  # the WAL, held open between fsyncs

    def committed(self) -> int:
        """Count a commit that has just returned; its ticket for :meth:`wait_durable`.

        Called under the journal's write lock, so the count only ever names commits that
        are already in the WAL.
        """
        self._committed += 1
        return self._committed

    @property
    def count(self) -> int:
        """The commits counted so far: waiting for it waits for all of them."""
        return self._committed

    def wait_durable(self, ticket: int) -> None:
        """Return once the commit of ``ticket`` is on disk: at once if an fsync begun after
        it has ended meanwhile, else after an fsync of the WAL. Raises ``OSError``."""
        with self._syncing:
            if self._durable >= ticket:
                return
            covered = self._committed  # read before the fsync: all of them are in the WAL
            self._sync()
            self._durable = max(self._durable, covered)

    def _sync(self) -> None:
        fd = self._wal_fd()
        if fd is None:
            # No WAL: it was checkpointed into the database and removed (the last connection
            # closed); make sure of the database itself.
            fsync_path(self._database)
            return
        os.fdatasync(fd)  # what SQLite itself calls to sync its WAL

    def _wal_fd(self) -> int | None:
        """The WAL open for syncing; opened again once the one held was removed (SQLite
        removes it when the last connection closes, and a later one creates a new one)."""
        if self._fd is not None and os.fstat(self._fd).st_nlink > 0:
            return self._fd
        self._let_go()
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return None
        # A WAL created since the last look: its name in the folder must be durable too.
        fsync_path(self._wal.parent)
        self._fd = fd
        return fd

    def close(self) -> None:
        """Let go of the WAL (the journal closes)."""
        with self._syncing:
            self._let_go()

    def _let_go(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
