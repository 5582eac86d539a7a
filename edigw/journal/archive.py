"""The content-addressed archive: every original file, kept byte for byte, before anything else.

A file lives at ``root/ab/cd/<sha256>`` (the first two byte pairs of its hash fan the files
out). Storing is crash-safe: the bytes are streamed into a temporary file inside the archive
(constant memory), hashed on the way, fsync'd, read back and checked, then renamed into place
and the directory fsync'd. Only after :meth:`Archive.store` returns may a channel touch the
source: a crash at any point leaves either no archived copy or a complete, verified one.
Storing the same content twice is a no-op (an existing copy is checked, and repaired if it was
damaged). Archived files are made read-only.

The gateway stores with ``durable=False`` and calls :meth:`Archive.make_durable` just before
a channel moves or deletes the source: the disk waits then leave the intake's critical path
(they were most of it), and the promise is kept where it matters. Until then the source is
untouched, so a power cut can only cost an archived copy whose original is still in place,
and taking that original in again rewrites the copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edigw.errors import ChannelError, JournalError

#: Read/write chunk: big enough for throughput, small enough for constant memory.
CHUNK = 1024 * 1024
TEMP_DIR = ".tmp"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FAN_OUT = re.compile(r"[0-9a-f]{2}")  # the folder levels named by a hash's first bytes


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """Where an original now lives in the archive."""

    sha256: str
    path: Path
    size: int


def _fsync(path: Path) -> None:
    """fsync a file or a folder (a folder's entries: a rename into it is then durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Archive:
    """Content-addressed, fsync'd storage of original and outbound files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # sha256 -> what is still to be fsync'd for a copy stored with durable=False
        self._not_synced: dict[str, tuple[Path, ...]] = {}
        self._lock = threading.Lock()

    def path_of(self, sha256: str) -> Path:
        """Where content with this hash is (or would be) kept."""
        if not _SHA256.fullmatch(sha256):
            msg = f"{sha256!r} is not a sha256 hex digest (64 lowercase hex characters)"
            raise JournalError(msg)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """The archived bytes, for reading (the caller closes the stream)."""
        path = self.path_of(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError as err:
            msg = f"archive: no file with sha256 {sha256} under {self.root}"
            raise JournalError(msg) from err
        except OSError as err:
            msg = f"archive: cannot read {path}: {err.strerror or err}"
            raise JournalError(msg) from err

    def verify(self, sha256: str) -> bool:
        """Whether the archived copy exists and still hashes to its name."""
        path = self.path_of(sha256)
        try:
            return _hash_file(path)[0] == sha256
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
        source = Path(source)
        temp_dir = self._temp_dir()
        try:
            before = source.stat()
            stream = source.open("rb")
        except OSError as err:
            msg = f"cannot read {source}: {err.strerror or err}"
            raise ChannelError(msg) from err
        with stream:
            temp = self._temp_file(temp_dir)
            try:
                digest = hashlib.sha256()
                size = 0
                with temp.open("wb") as out:
                    while True:
                        try:
                            chunk = stream.read(CHUNK)
                        except OSError as err:
                            msg = f"cannot read {source}: {err.strerror or err}"
                            raise ChannelError(msg) from err
                        if not chunk:
                            break
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    if durable:
                        os.fsync(out.fileno())
                try:
                    after = source.stat()
                except OSError as err:
                    msg = f"{source} vanished while it was being archived: {err.strerror or err}"
                    raise ChannelError(msg) from err
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
                    after.st_size != size
                ):
                    msg = (
                        f"{source} changed while it was being archived: is it still being written?"
                    )
                    raise ChannelError(msg)
                return self._commit(
                    temp, digest.hexdigest(), size, expected_sha256, durable=durable
                )
            except OSError as err:
                msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
                raise JournalError(msg) from err
            finally:
                temp.unlink(missing_ok=True)

    def make_durable(self, sha256: str) -> None:
        """fsync what a ``durable=False`` store of this content left to the disk's leisure
        (the copy and the folders naming it); nothing to do for any other content."""
        with self._lock:
            pending = self._not_synced.pop(sha256, ())
        try:
            for path in pending:
                _fsync(path)
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
        temp = self._temp_file(self._temp_dir())
        try:
            with temp.open("wb") as out:
                out.write(data)
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            sha256 = hashlib.sha256(data).hexdigest()
            return self._commit(temp, sha256, len(data), expected_sha256, durable=durable)
        except OSError as err:
            msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        finally:
            temp.unlink(missing_ok=True)

    def remove_stale_temp_files(self, *, older_than: float, now: float) -> int:
        """Delete temporary files left by a crash mid-store (``now`` and ages in epoch seconds).

        Only files older than ``older_than`` seconds go, so a store in progress in another
        process is never disturbed. Returns how many were removed.
        """
        temp_dir = self.root / TEMP_DIR
        removed = 0
        try:
            entries = list(temp_dir.iterdir()) if temp_dir.is_dir() else []
            for entry in entries:
                if entry.is_file() and now - entry.stat().st_mtime > older_than:
                    entry.unlink(missing_ok=True)
                    removed += 1
        except OSError as err:
            msg = f"archive: cannot clean {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        return removed

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
                        if copy.name in keep or not _SHA256.fullmatch(copy.name):
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
            temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            msg = f"archive: cannot create {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        return temp_dir

    @staticmethod
    def _temp_file(temp_dir: Path) -> Path:
        try:
            fd, name = tempfile.mkstemp(dir=temp_dir, prefix="incoming-")
        except OSError as err:
            msg = f"archive: cannot create a file in {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        os.close(fd)
        return Path(name)

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
        if expected_sha256 is not None and expected_sha256 != sha256:
            msg = f"archive: content hashes to {sha256}, expected {expected_sha256}"
            raise JournalError(msg)
        written, written_size = _hash_file(temp)
        if (written, written_size) != (sha256, size):
            msg = f"archive: the copy written to {temp} does not read back as written"
            raise JournalError(msg)
        final = self.path_of(sha256)
        archived = ArchivedFile(sha256=sha256, path=final, size=size)
        if final.is_file() and _hash_file(final) == (sha256, size):
            os.utime(final)  # in use again: a purge leaves recently stored copies alone
            if not durable:
                # Perhaps written, unsynced, by a process that crashed: sync it all to be sure.
                self._defer(sha256, (final, final.parent, final.parent.parent, self.root))
            return archived
        created = self._make_dirs(final.parent)
        temp.chmod(0o444)
        os.replace(temp, final)
        if not durable:
            self._defer(sha256, (final, final.parent, *created))
            return archived
        for directory in (final.parent, *created):
            _fsync(directory)
        return archived

    def _defer(self, sha256: str, paths: tuple[Path, ...]) -> None:
        with self._lock:
            self._not_synced[sha256] = tuple(
                dict.fromkeys((*self._not_synced.get(sha256, ()), *paths))
            )

    def _make_dirs(self, directory: Path) -> list[Path]:
        """Create the fan-out folders; returns the parents whose entries changed (to fsync)."""
        changed: list[Path] = []
        for folder in (directory.parent, directory):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                changed.append(folder.parent)
        return changed
