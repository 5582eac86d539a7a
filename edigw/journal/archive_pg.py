"""The archive in the journal's PostgreSQL database, for nodes that share no storage.

Each content is one PostgreSQL large object, named by its sha256 in ``archive_objects``. Large
objects are read and written a chunk at a time (``lo_put``/``lo_get``, :data:`CHUNK` bytes), so
a file of up to a gigabyte or more never sits whole in memory, on either side.

Storing: the source is copied into a temporary file of this node while it is hashed (a
partner still writing it is caught there, as with the folder archive); then, in one
transaction, the copy is streamed into a new large object, read back and checked, and named
in ``archive_objects``. A crash or an error rolls it all back: there is either no copy or a
complete, verified one, and once :meth:`store` returns it is committed (PostgreSQL syncs every
commit), so ``make_durable`` has nothing left to do. The same content stored twice is kept
once; two nodes storing it at the same moment both succeed with one copy.

Readers want a file: :meth:`local_copy` fetches the object into a cache folder of this node
(``data_dir/archive-cache``, checked against its hash) and keeps it there while it is used;
copies untouched for :data:`CACHE_TTL` seconds are removed. The cache is never the copy of
record: a node with an empty disk reads every archived file.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, create_engine, delete, exc, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from edigw.errors import JournalError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders
from edigw.journal.archive import (
    CHUNK,
    TEMP_DIR,
    ArchivedFile,
    ArchiveMissingCopy,
    check_expected,
    check_sha256,
    copy_unchanged,
    new_temp_file,
    remove_older,
)
from edigw.journal.schema import archive_objects

#: Seconds a cached copy stays on this node's disk after its last use.
CACHE_TTL = 3600.0
#: Seconds between two sweeps of the cache (a sweep lists the cache folder).
CACHE_SWEEP_EVERY = 60.0

_CREATE = text("SELECT lo_create(0)")
_PUT = text("SELECT lo_put(CAST(:oid AS oid), CAST(:offset AS bigint), :data)")
_GET = text("SELECT lo_get(CAST(:oid AS oid), CAST(:offset AS bigint), CAST(:length AS integer))")
_UNLINK = text("SELECT lo_unlink(CAST(:oid AS oid))")


class PostgresArchive:
    """Content-addressed storage of originals as large objects of the journal's database."""

    def __init__(
        self,
        url: str,
        cache: Path,
        *,
        modes: FileModes = DEFAULT_MODES,
        chunk: int = CHUNK,
        cache_ttl: float = CACHE_TTL,
    ) -> None:
        self.root = Path(cache)
        self.modes = modes
        self._chunk = chunk
        self._ttl = cache_ttl
        self._swept = 0.0
        self._lock = threading.Lock()
        with _translated("connect"):
            self._engine = create_engine(url, pool_recycle=3600)
        if self._engine.dialect.name != "postgresql":
            self._engine.dispose()
            msg = f"archive: kind postgresql needs a PostgreSQL journal, not {url!r}"
            raise JournalError(msg)

    @property
    def where(self) -> str:
        return "the journal database (PostgreSQL large objects)"

    def check_shared(self) -> None:
        """Every node reads the journal's database: nothing to check."""

    def close(self) -> None:
        self._engine.dispose()

    # ----------------------------------------------------------------- storing

    def store(
        self, source: Path, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile:
        """Archive ``source`` (see the module's docstring); committed when it returns.

        ``ChannelError`` when the source cannot be read or changes while it is copied,
        ``JournalError`` when the database refuses or the bytes do not match
        ``expected_sha256``. ``durable`` is accepted for the protocol: every store is.
        """
        source = Path(source)
        temp = self._temp_file()
        try:
            sha256, size = copy_unchanged(source, temp, chunk=self._chunk)
            return self._keep(temp, sha256, size, expected_sha256)
        finally:
            temp.unlink(missing_ok=True)

    def store_bytes(
        self, data: bytes, *, expected_sha256: str | None = None, durable: bool = True
    ) -> ArchivedFile:
        """Archive bytes held in memory (see :meth:`store`)."""
        temp = self._temp_file()
        try:
            try:
                temp.write_bytes(data)
            except OSError as err:
                msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
                raise JournalError(msg) from err
            sha256 = hashlib.sha256(data).hexdigest()
            return self._keep(temp, sha256, len(data), expected_sha256)
        finally:
            temp.unlink(missing_ok=True)

    def make_durable(self, sha256: str) -> None:
        """Nothing to do: a store returns once its transaction is committed."""

    # ----------------------------------------------------------------- reading

    def exists(self, sha256: str) -> bool:
        return self._object(check_sha256(sha256)) is not None

    def local_copy(self, sha256: str) -> Path:
        """A file of this node holding the content, fetched from the database unless it is
        cached already; :class:`ArchiveMissingCopy` when the database has no such object."""
        cached = self._cached(check_sha256(sha256))
        if cached.is_file():
            _touch(cached)
            return cached
        found = self._object(sha256)
        if found is None:
            raise ArchiveMissingCopy(sha256, self._copy_name(sha256))
        oid, size = found
        temp = self._temp_file()
        try:
            digest = hashlib.sha256()
            with temp.open("wb") as out, self._connection("read a large object") as conn:
                for chunk in self._chunks(conn, oid, size):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                msg = f"archive: large object {oid} does not hash to {sha256}: it was damaged"
                raise JournalError(msg)
            self._cache(temp, cached)
        except OSError as err:
            msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        finally:
            temp.unlink(missing_ok=True)
        return cached

    def open(self, sha256: str) -> BinaryIO:
        """The archived bytes, for reading (the caller closes the stream)."""
        path = self.local_copy(sha256)
        try:
            return path.open("rb")
        except OSError as err:
            msg = f"archive: cannot read {path}: {err.strerror or err}"
            raise JournalError(msg) from err

    def verify(self, sha256: str) -> bool:
        """Whether the database holds the object and it still hashes to its name."""
        found = self._object(check_sha256(sha256))
        if found is None:
            return False
        digest = hashlib.sha256()
        with self._connection("read a large object") as conn:
            for chunk in self._chunks(conn, *found):
                digest.update(chunk)
        return digest.hexdigest() == sha256

    # ----------------------------------------------------------------- cleaning

    def remove_stale_temp_files(self, *, older_than: float, now: float) -> int:
        """Delete this node's temporary files older than ``older_than`` seconds (a crash
        mid-store); the database rolled the matching transaction back by itself."""
        return remove_older(self.root / TEMP_DIR, older_than=older_than, now=now)

    def remove_unreferenced(
        self, keep: Collection[str], *, untouched_for: float, now: float, dry_run: bool = False
    ) -> tuple[int, int]:
        """Delete the objects whose hash is not in ``keep`` and that were not stored in the
        last ``untouched_for`` seconds; returns how many and how many bytes (or would, with
        ``dry_run``). Each is deleted under its row's lock, so a node storing the same
        content meanwhile either refreshes it first or stores it again afterwards."""
        cutoff = datetime.fromtimestamp(now - untouched_for, UTC)
        t = archive_objects.c
        with self._connection("clean the archive") as conn:
            rows = conn.execute(
                select(t.sha256, t.size).where(t.stored_at < cutoff).order_by(t.sha256)
            ).all()
            conn.rollback()
            gone = [(row.sha256, int(row.size)) for row in rows if row.sha256 not in keep]
            if dry_run:
                return len(gone), sum(size for _, size in gone)
            removed = freed = 0
            for sha256, size in gone:
                with conn.begin():
                    oid = conn.execute(
                        delete(archive_objects)
                        .where(t.sha256 == sha256, t.stored_at < cutoff)
                        .returning(t.oid)
                    ).scalar()
                    if oid is None:
                        continue  # stored again meanwhile
                    conn.execute(_UNLINK, {"oid": oid})
                removed += 1
                freed += size
                self._cached(sha256).unlink(missing_ok=True)
        return removed, freed

    # ----------------------------------------------------------------- internals

    def _keep(
        self, temp: Path, sha256: str, size: int, expected_sha256: str | None
    ) -> ArchivedFile:
        """Make sure the database holds ``temp``'s bytes under ``sha256``; cache ``temp``."""
        check_expected(sha256, expected_sha256)
        t = archive_objects.c
        with self._connection("store a large object") as conn:
            with conn.begin():
                # Already there: in use again, so a purge leaves it alone (under its row lock).
                oid = conn.execute(
                    update(archive_objects)
                    .where(t.sha256 == sha256)
                    .values(stored_at=_now())
                    .returning(t.oid)
                ).scalar()
            if oid is None:
                oid = self._upload(conn, temp, sha256, size)
        cached = self._cached(sha256)
        try:
            if cached.is_file():
                _touch(cached)
            else:
                self._cache(temp, cached)
        except OSError as err:
            msg = f"archive: cannot write under {self.root}: {err.strerror or err}"
            raise JournalError(msg) from err
        return ArchivedFile(
            sha256=sha256, path=cached, size=size, location=f"postgresql:large-object/{oid}"
        )

    def _upload(self, conn: Connection, temp: Path, sha256: str, size: int) -> int:
        """Stream ``temp`` into a new large object, check it, name it; one transaction."""
        t = archive_objects.c
        with conn.begin() as transaction:
            oid = int(conn.execute(_CREATE).scalar_one())
            offset = 0
            with temp.open("rb") as stream:
                while chunk := stream.read(self._chunk):
                    conn.execute(_PUT, {"oid": oid, "offset": offset, "data": chunk})
                    offset += len(chunk)
            digest = hashlib.sha256()
            for chunk in self._chunks(conn, oid, size):
                digest.update(chunk)
            if (digest.hexdigest(), offset) != (sha256, size):
                msg = f"archive: large object {oid} does not read back as written"
                raise JournalError(msg)
            named = conn.execute(
                pg_insert(archive_objects)
                .values(sha256=sha256, oid=oid, size=size, stored_at=_now())
                .on_conflict_do_nothing()
                .returning(t.oid)
            ).scalar()
            if named is not None:
                return oid
            # Another node stored the same content meanwhile: keep its object, drop ours.
            transaction.rollback()
        with conn.begin():
            kept = conn.execute(select(t.oid).where(t.sha256 == sha256)).scalar()
        if kept is None:  # and purged it at once: unlikely, but then store ours after all
            return self._upload(conn, temp, sha256, size)
        return int(kept)

    def _chunks(self, conn: Connection, oid: int, size: int) -> Iterator[bytes]:
        offset = 0
        while offset < size:
            data = conn.execute(
                _GET, {"oid": oid, "offset": offset, "length": min(self._chunk, size - offset)}
            ).scalar_one()
            if not data:
                msg = f"archive: large object {oid} ends at {offset} bytes, expected {size}"
                raise JournalError(msg)
            offset += len(data)
            yield bytes(data)

    def _object(self, sha256: str) -> tuple[int, int] | None:
        t = archive_objects.c
        with self._connection("look up the archive") as conn:
            row = conn.execute(select(t.oid, t.size).where(t.sha256 == sha256)).first()
        return None if row is None else (int(row.oid), int(row.size))

    @contextmanager
    def _connection(self, what: str) -> Iterator[Connection]:
        with _translated(what), self._engine.connect() as conn:
            yield conn

    def _copy_name(self, sha256: str) -> str:
        return f"{sha256} in the journal database"

    def _cached(self, sha256: str) -> Path:
        return self.root / sha256

    def _cache(self, temp: Path, cached: Path) -> None:
        """Move a complete, checked temporary copy into the cache; sweep the cache now and
        then."""
        temp.chmod(self.modes.read_only)
        os.replace(temp, cached)
        now = time.time()
        with self._lock:
            due = now - self._swept >= CACHE_SWEEP_EVERY
            if due:
                self._swept = now
        if due:
            remove_older(self.root, older_than=self._ttl, now=now)

    def _temp_file(self) -> Path:
        temp_dir = self.root / TEMP_DIR
        try:
            make_folders(temp_dir, self.modes)
        except OSError as err:
            msg = f"archive: cannot create a file in {temp_dir}: {err.strerror or err}"
            raise JournalError(msg) from err
        return new_temp_file(temp_dir)


def _touch(path: Path) -> None:
    """Mark a cached copy as used now (the sweep keeps it); a race with the sweep is fine."""
    with suppress(OSError):
        os.utime(path)


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """SQLAlchemy and driver errors as ``JournalError``, saying what was being done."""
    try:
        yield
    except exc.SQLAlchemyError as err:
        msg = f"archive: cannot {what} in the journal database: {err.__class__.__name__}: {err}"
        raise JournalError(msg.splitlines()[0]) from err
