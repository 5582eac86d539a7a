"""The archive in a folder: this node's ``data_dir/archive`` (the default) or a shared one.

A file lives at ``root/ab/cd/<sha256>`` (the first two byte pairs of its hash fan the files
out). Storing is crash-safe: the bytes are streamed into a temporary file inside the archive
(constant memory), hashed on the way, fsync'd, read back and checked, then renamed into place
and the directory fsync'd. Only after :meth:`Archive.store` returns may a channel touch the
source: a crash at any point leaves either no archived copy or a complete, verified one.
Storing the same content twice is a no-op (an existing copy is checked, and repaired if it was
damaged). Archived files are made read-only, readable by the gateway's user only (0400, or
0440 with ``security.file_mode: "0640"``); the folders it creates are 0700 (0750).

The gateway stores with ``durable=False`` and calls :meth:`Archive.make_durable` just before
a channel moves or deletes the source: the disk waits then leave the intake's critical path
(they were most of it), and the promise is kept where it matters. Until then the source is
untouched, so a power cut can only cost an archived copy whose original is still in place,
and taking that original in again rewrites the copy.

A store makes as few system calls as it can (they cost the gateway CPU, and each one lets
another thread take the interpreter): the temporary folder is made once, the temporary file
is written through the descriptor that created it, the fan-out folders are made only when
the rename into them finds them missing, and nothing is unlinked after a rename.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

from edigw.errors import JournalError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders
from edigw.fsync import fsync_path
from edigw.journal.archive import (
    CHUNK,
    SHA256_HEX,
    TEMP_DIR,
    ArchivedFile,
    ArchiveMissingCopy,
    check_expected,
    check_sha256,
    copy_unchanged_into,
    hash_file,
    remove_older,
)

_FAN_OUT = re.compile(r"[0-9a-f]{2}")  # the folder levels named by a hash's first bytes


class FolderArchive:
    """Content-addressed, fsync'd storage of original and outbound files under ``root``.

    ``check_shared`` (a gateway's start) is given by the caller when the folder is meant to
    be shared by every node (``archive: {kind: folder}``), see ``archive_markers.py``; the
    default archive in ``data_dir`` checks nothing.
    """

    def __init__(
        self,
        root: Path,
        *,
        modes: FileModes = DEFAULT_MODES,
        shared_check: Callable[[Path], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.modes = modes
        self._shared_check = shared_check
        # sha256 -> what is still to be fsync'd for a copy stored with durable=False
        self._not_synced: dict[str, tuple[Path, ...]] = {}
        self._lock = threading.Lock()
        self._temp_made = False  # the temporary folder exists (made again if it vanishes)

    def path_of(self, sha256: str) -> Path:
        """Where content with this hash is (or would be) kept."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    @property
    def where(self) -> str:
        return f"the archive folder {self.root}"

    def check_shared(self) -> None:
        """At a gateway's start: refuse when this folder is not the one the other nodes use."""
        if self._shared_check is not None:
            self._shared_check(self.root)

    def close(self) -> None:
        """Nothing held open."""

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def local_copy(self, sha256: str) -> Path:
        """The archived copy itself (:class:`ArchiveMissingCopy` when it is not there)."""
        path = self.path_of(sha256)
        if not path.is_file():
            raise ArchiveMissingCopy(sha256, str(path))
        return path

    def open(self, sha256: str) -> BinaryIO:
        """The archived bytes, for reading (the caller closes the stream)."""
        path = self.path_of(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError as err:
            raise ArchiveMissingCopy(sha256, str(path)) from err
        except OSError as err:
            msg = f"archive: cannot read {path}: {err.strerror or err}"
            raise JournalError(msg) from err

    def verify(self, sha256: str) -> bool:
        """Whether the archived copy exists and still hashes to its name."""
        path = self.path_of(sha256)
        try:
            return hash_file(path)[0] == sha256
        except OSError:
            return False

    def store(
        self, source: Path, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile:
        """Archive ``source`` durably; returns its hash, archive path and size.

        With ``durable=False`` the fsyncs wait for :meth:`make_durable`, which the caller
        must call before it touches the source.

        Raises :class:`ChannelError` when the source cannot be read or changes while being
        copied (a partner still writing it), :class:`JournalError` when the archive cannot be
        written or the bytes do not match ``expected_sha256`` (computed by the caller while
        downloading, for instance).
        """
        fd, temp = self._new_temp_file()
        try:
            with os.fdopen(fd, "wb", buffering=CHUNK) as out:
                sha256, size = copy_unchanged_into(Path(source), out, fsync=durable)
            return self._commit(temp, sha256, size, expected_sha256, durable=durable)
        except OSError as err:
            temp.unlink(missing_ok=True)
            msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def make_durable(self, sha256: str) -> None:
        """fsync what a ``durable=False`` store of this content left to the disk's leisure
        (the copy and the folders naming it); nothing to do for any other content."""
        with self._lock:
            pending = self._not_synced.pop(sha256, ())
        try:
            for path in pending:
                fsync_path(path)
        except OSError as err:
            with self._lock:
                self._not_synced[sha256] = pending
            msg = f"archive: cannot sync {sha256}: {err.strerror or err}"
            raise JournalError(msg) from err

    def store_bytes(
        self, data: bytes, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile:
        """Archive bytes held in memory (an outbound file already rendered, a small inbound
        download); ``durable=False`` as for :meth:`store`."""
        fd, temp = self._new_temp_file()
        try:
            with os.fdopen(fd, "wb", buffering=CHUNK) as out:
                out.write(data)
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            sha256 = hashlib.sha256(data).hexdigest()
            return self._commit(temp, sha256, len(data), expected_sha256, durable=durable)
        except OSError as err:
            temp.unlink(missing_ok=True)
            msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def remove_stale_temp_files(self, *, older_than: float, now: float) -> int:
        """Delete temporary files left by a crash mid-store (``now`` and ages in epoch seconds).

        Only files older than ``older_than`` seconds go, so a store in progress in another
        process is never disturbed. Returns how many were removed.
        """
        return remove_older(self.root / TEMP_DIR, older_than=older_than, now=now)

    def remove_unreferenced(
        self, keep: Collection[str], *, untouched_for: float, now: float, dry_run: bool = False
    ) -> tuple[int, int]:
        """Delete the copies whose hash is not in ``keep`` (what the journal points at) and
        that were not stored in the last ``untouched_for`` seconds (``now`` in epoch
        seconds); returns how many copies and bytes went (or would go, with ``dry_run``).

        The age guard matters: a file is archived a moment before the journal hears of it,
        and storing content that is already there refreshes the copy's time, so a copy
        being taken in right now is never removed.
        """
        removed = freed = 0
        try:
            for first in sorted(self._fan_out(self.root)):
                for second in sorted(self._fan_out(first)):
                    for copy in sorted(second.iterdir()):
                        if copy.name in keep or not SHA256_HEX.fullmatch(copy.name):
                            continue
                        st = copy.stat()
                        if now - st.st_mtime < untouched_for:
                            continue
                        if not dry_run:
                            copy.unlink()
                        removed += 1
                        freed += st.st_size
                    if not dry_run and not any(second.iterdir()):
                        second.rmdir()
                if not dry_run and not any(first.iterdir()):
                    first.rmdir()
        except OSError as err:
            msg = f"archive: cannot clean {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        return removed, freed

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _fan_out(folder: Path) -> list[Path]:
        """The two-hex-digit folders under ``folder`` (none when it does not exist)."""
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if p.is_dir() and _FAN_OUT.fullmatch(p.name)]

    def _temp_dir(self) -> Path:
        temp_dir = self.root / TEMP_DIR
        try:
            make_folders(temp_dir, self.modes)
        except OSError as err:
            msg = f"archive: cannot create {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        return temp_dir

    def _new_temp_file(self) -> tuple[int, Path]:
        """A new empty file in the temporary folder, open for writing (its descriptor and
        path). The folder is made at the first store, and again when it vanished since."""
        if not self._temp_made:
            self._temp_dir()
            self._temp_made = True
        try:
            return self._mkstemp()
        except FileNotFoundError:  # the folder was removed under us: make it again
            self._temp_made = False
            temp_dir = self._temp_dir()
            self._temp_made = True
            try:
                return self._mkstemp()
            except FileNotFoundError as err:
                msg = f"archive: cannot create a file in {temp_dir}: {err.strerror or err}"
                raise JournalError(msg) from err

    def _mkstemp(self) -> tuple[int, Path]:
        temp_dir = self.root / TEMP_DIR
        try:
            fd, name = tempfile.mkstemp(dir=temp_dir, prefix="incoming-")
        except FileNotFoundError:
            raise
        except OSError as err:
            msg = f"archive: cannot create a file in {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        return fd, Path(name)

    def _commit(
        self,
        temp: Path,
        sha256: str,
        size: int,
        expected_sha256: str | None,
        *,
        durable: bool = True,
    ) -> ArchivedFile:
        """Check the written copy, then move it to its content address (durably)."""
        check_expected(sha256, expected_sha256)
        written, written_size = hash_file(temp)
        if (written, written_size) != (sha256, size):
            msg = f"archive: the copy written to {temp} does not read back as written"
            raise JournalError(msg)
        final = self.path_of(sha256)
        archived = ArchivedFile(sha256=sha256, path=final, size=size, location=str(final))
        if final.is_file() and hash_file(final) == (sha256, size):
            os.utime(final)  # in use again: a purge leaves recently stored copies alone
            temp.unlink()
            if not durable:
                # Perhaps written, unsynced, by a process that crashed: sync it all to be sure.
                self._defer(sha256, (final, final.parent, final.parent.parent, self.root))
            return archived
        temp.chmod(self.modes.read_only)
        try:
            os.replace(temp, final)
            created: list[Path] = []
        except FileNotFoundError:  # its fan-out folders are not there yet
            created = self._make_dirs(final.parent)
            os.replace(temp, final)
        if not durable:
            self._defer(sha256, (final, final.parent, *created))
            return archived
        for directory in (final.parent, *created):
            fsync_path(directory)
        return archived

    def _defer(self, sha256: str, paths: tuple[Path, ...]) -> None:
        with self._lock:
            self._not_synced[sha256] = tuple(
                dict.fromkeys((*self._not_synced.get(sha256, ()), *paths))
            )

    def _make_dirs(self, directory: Path) -> list[Path]:
        """Create the fan-out folders; returns the parents whose entries changed (to fsync).

        A folder that exists already (made by another store meanwhile) is left as it is; one
        that is not a folder makes the rename into it fail."""
        changed: list[Path] = []
        for folder in (directory.parent, directory):
            try:
                folder.mkdir(mode=self.modes.folder)
            except FileExistsError:
                continue
            os.chmod(folder, self.modes.folder)  # the umask may have taken bits away
            changed.append(folder.parent)
        return changed
