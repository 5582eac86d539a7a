"""The archive: every original file, kept byte for byte, before anything else.

What every kind of archive promises, whatever it keeps the bytes in:

* ``store``/``store_bytes`` return only once a complete, verified copy is kept; only then may
  a channel touch the source. The same content stored twice is kept once (content address:
  its sha256).
* ``local_copy`` gives a file on this node's disk holding the content (readers want a path);
  ``open`` streams it. A copy that is not there raises :class:`ArchiveMissingCopy`, which
  names it: one line for the operator, never a traceback.
* ``check_shared`` runs when a gateway starts: an archive that the other nodes cannot read
  refuses then, rather than fail a replay on another node months later.

Three kinds (chosen by ``archive:`` in ``edigw.yaml``, built in ``pipeline/assembly.py``):

* the folder ``data_dir/archive`` (the default: one node, or nodes that never replay each
  other's files), ``archive_folder.FolderArchive``;
* a shared folder (NFS or similar) every node mounts, the same class with the marker check of
  ``archive_markers.py``;
* the journal's PostgreSQL database itself, as large objects streamed in chunks
  (``archive_pg.PostgresArchive``), for sites without shared storage.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from edigw.errors import ChannelError, JournalError

#: Read/write chunk: big enough for throughput, small enough for constant memory.
CHUNK = 1024 * 1024
#: Where copies are written before they are complete (inside the archive or its cache).
TEMP_DIR = ".tmp"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """Where an original now lives in the archive.

    ``path`` is a file on this node holding the bytes (the copy itself for a folder, a cached
    copy for PostgreSQL); ``location`` is what the journal records and ``edigw show`` prints.
    """

    sha256: str
    path: Path
    size: int
    location: str


class ArchiveMissingCopy(JournalError):
    """The archive has no copy of this content (removed by hand, or kept on another node's
    disk); ``copy`` names where it was looked for."""

    def __init__(self, sha256: str, copy: str) -> None:
        self.sha256 = sha256
        self.copy = copy
        super().__init__(f"its archived copy {copy} is missing")


class Archive(Protocol):
    """What the pipeline, exports, replay and purge need from any kind of archive."""

    #: A folder of this node the archive writes into (probed for writability at run time).
    root: Path

    @property
    def where(self) -> str:
        """The archive, for messages: ``the archive folder /srv/edigw/archive``."""
        ...

    def check_shared(self) -> None:
        """At a gateway's start: refuse (``JournalError``) when the other nodes cannot read
        what this one archives."""
        ...

    def close(self) -> None:
        """Let go of what the archive holds open (database connections)."""
        ...

    def store(
        self, source: Path, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile: ...

    def store_bytes(
        self, data: bytes, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile: ...

    def make_durable(self, sha256: str) -> None: ...

    def exists(self, sha256: str) -> bool: ...

    def verify(self, sha256: str) -> bool: ...

    def local_copy(self, sha256: str) -> Path: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def remove_stale_temp_files(self, *, older_than: float, now: float) -> int: ...

    def remove_unreferenced(
        self, keep: Collection[str], *, untouched_for: float, now: float, dry_run: bool = False
    ) -> tuple[int, int]: ...


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is a hex digest; ``JournalError`` otherwise (a content address is
    also a file name: nothing else may reach the disk or the database)."""
    if not SHA256_HEX.fullmatch(sha256):
        msg = f"{sha256!r} is not a sha256 hex digest (64 lowercase hex characters)"
        raise JournalError(msg)
    return sha256


def hash_file(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as stream:  # unbuffered: one read a chunk, no seek
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_expected(sha256: str, expected_sha256: str | None) -> None:
    """``JournalError`` when the caller expected other content (hashed while downloading)."""
    if expected_sha256 is not None and expected_sha256 != sha256:
        msg = f"archive: content hashes to {sha256}, expected {expected_sha256}"
        raise JournalError(msg)


def new_temp_file(temp_dir: Path) -> Path:
    """A new empty file in ``temp_dir`` (which exists) for a copy being written."""
    try:
        fd, name = tempfile.mkstemp(dir=temp_dir, prefix="incoming-")
    except OSError as err:
        msg = f"archive: cannot create a file in {temp_dir}: {err.strerror or err}"
        raise JournalError(msg) from err
    os.close(fd)
    return Path(name)


def copy_unchanged(
    source: Path, temp: Path, *, chunk: int = CHUNK, fsync: bool = False
) -> tuple[str, int]:
    """Copy ``source`` to ``temp`` a chunk at a time (fsync'd with ``fsync``); its sha256 and
    size. ``ChannelError`` when it cannot be read or changed meanwhile (a partner still
    writing it); an ``OSError`` writing ``temp`` is left to the caller, who names its archive.
    """
    with temp.open("wb", buffering=chunk) as out:
        return copy_unchanged_into(source, out, chunk=chunk, fsync=fsync)


def copy_unchanged_into(
    source: Path, out: BinaryIO, *, chunk: int = CHUNK, fsync: bool = False
) -> tuple[str, int]:
    """:func:`copy_unchanged` into a file already open (a temporary file just created: it is
    not opened a second time); ``out`` is flushed here, the caller closes it."""
    try:
        before = source.stat()
        stream = source.open("rb", buffering=0)  # unbuffered: one read a chunk, no seek
    except OSError as err:
        msg = f"cannot read {source}: {err.strerror or err}"
        raise ChannelError(msg) from err
    digest = hashlib.sha256()
    size = 0
    with stream:
        while True:
            try:
                data = stream.read(chunk)
            except OSError as err:
                msg = f"cannot read {source}: {err.strerror or err}"
                raise ChannelError(msg) from err
            if not data:
                break
            digest.update(data)
            size += len(data)
            out.write(data)
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    try:
        after = source.stat()
    except OSError as err:
        msg = f"{source} vanished while it was being archived: {err.strerror or err}"
        raise ChannelError(msg) from err
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        after.st_size != size
    ):
        msg = f"{source} changed while it was being archived: is it still being written?"
        raise ChannelError(msg)
    return digest.hexdigest(), size


def remove_older(folder: Path, *, older_than: float, now: float) -> int:
    """Delete the plain files of ``folder`` not modified for ``older_than`` seconds (``now``
    in epoch seconds); how many went. A file younger than that may be a store in progress."""
    removed = 0
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
        for entry in entries:
            if entry.is_file() and now - entry.stat().st_mtime > older_than:
                entry.unlink(missing_ok=True)
                removed += 1
    except OSError as err:
        msg = f"archive: cannot clean {folder}: {err.strerror or err}"
        raise JournalError(msg) from err
    return removed
