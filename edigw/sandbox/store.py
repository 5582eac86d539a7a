"""SQLite storage of the sandbox: JSON documents per kind, a monotonic update clock, idempotency.

Every Ecolix object is one row ``(id, kind, key, alt_key, updated_at, data)``; lists read
them ordered by ``(updated_at, id)``. Writes go through one process-wide lock and one
``BEGIN IMMEDIATE`` transaction, and ``updated_at`` is stamped *inside* that lock from a clock
that never goes backwards. Hence a reader that has paged up to position P never misses a later
write: that write commits with a stamp greater than everything already committed.

Reads use one connection per thread (WAL lets them run beside the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    alt_key TEXT,
    updated_at TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS objects_feed ON objects (kind, updated_at, id);
CREATE INDEX IF NOT EXISTS objects_alt ON objects (kind, alt_key);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_stamp(moment: datetime) -> str:
    """A timestamp in the store's fixed-width UTC form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a list page ended: the last (updated_at, id) returned."""

    updated_at: str
    id: int


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept against an idempotency key."""

    fingerprint: str
    status: int
    body: bytes
    content_type: str


class Tx:
    """One transaction's view of the store (reads, and writes when opened by ``writing``)."""

    def __init__(self, conn: sqlite3.Connection, stamp: Callable[[], str] | None) -> None:
        self._conn = conn
        self._stamp = stamp

    # ---- objects
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT data, updated_at FROM objects WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return _decode(row) if row else None

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, data, updated_at FROM objects WHERE kind = ? AND key IN ({marks})",
                (kind, *chunk),
            ).fetchall()
            found.update({row[0]: _decode(row[1:]) for row in rows})
        return found

    def find_alt(self, kind: str, alt_key: str) -> dict[str, Any] | None:
        """The object of ``kind`` registered under a business key (e.g. customer + reference)."""
        row = self._conn.execute(
            "SELECT data, updated_at FROM objects WHERE kind = ? AND alt_key = ? LIMIT 1",
            (kind, alt_key),
        ).fetchone()
        return _decode(row) if row else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` (for small kinds such as suppliers), oldest first."""
        rows = self._conn.execute(
            "SELECT data, updated_at FROM objects WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()
        return [_decode(row) for row in rows]

    def find_field(self, kind: str, field: str, value: str) -> dict[str, Any] | None:
        """The first object of ``kind`` whose top-level ``field`` equals ``value``."""
        row = self._conn.execute(
            "SELECT data, updated_at FROM objects WHERE kind = ? AND json_extract(data, ?) = ? "
            "ORDER BY id LIMIT 1",
            (kind, f"$.{field}", value),
        ).fetchone()
        return _decode(row) if row else None

    def page(
        self,
        kind: str,
        *,
        filters: Mapping[str, str] | None = None,
        updated_since: str | None = None,
        after: Position | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """One page ordered by (updated_at, id), and the position to continue from (or None)."""
        sql = "SELECT data, updated_at, id FROM objects WHERE kind = ?"
        args: list[Any] = [kind]
        for field, value in (filters or {}).items():
            sql += " AND json_extract(data, ?) = ?"
            args += [f"$.{field}", value]
        if updated_since is not None:
            sql += " AND updated_at >= ?"
            args.append(updated_since)
        if after is not None:
            sql += " AND (updated_at > ? OR (updated_at = ? AND id > ?))"
            args += [after.updated_at, after.updated_at, after.id]
        sql += " ORDER BY updated_at, id LIMIT ?"
        args.append(limit + 1)
        rows = self._conn.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_decode(row[:2]) for row in rows]
        last = Position(rows[-1][1], rows[-1][2]) if more else None
        return items, last

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT kind, count(*) FROM objects GROUP BY kind").fetchall()
        return {kind: n for kind, n in rows}

    def put(
        self, kind: str, key: str, data: Mapping[str, Any], *, alt_key: str | None = None
    ) -> dict[str, Any]:
        """Insert or replace an object, stamping ``updated_at``; returns it as served."""
        if self._stamp is None:
            msg = "put() needs a transaction opened with SandboxStore.writing()"
            raise RuntimeError(msg)
        stamp = self._stamp()
        body = {k: v for k, v in data.items() if k != "updated_at"}
        self._conn.execute(
            "INSERT INTO objects (kind, key, alt_key, updated_at, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET updated_at = excluded.updated_at, "
            "data = excluded.data, alt_key = coalesce(excluded.alt_key, objects.alt_key)",
            (kind, key, alt_key, stamp, json.dumps(body, ensure_ascii=False)),
        )
        return {**body, "updated_at": stamp}

    def now(self) -> str:
        """A fresh stamp from the store clock (for created_at and similar)."""
        if self._stamp is None:
            msg = "now() needs a transaction opened with SandboxStore.writing()"
            raise RuntimeError(msg)
        return self._stamp()

    @contextmanager
    def savepoint(self, *, keep: bool = True) -> Iterator[None]:
        """Undo the writes of the block if it raises (the transaction itself goes on); with
        ``keep=False`` undo them in any case (a dry run: the write is made, then taken back,
        numbers drawn from the counters included)."""
        self._conn.execute("SAVEPOINT attempt")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO attempt")
            self._conn.execute("RELEASE attempt")
            raise
        if not keep:
            self._conn.execute("ROLLBACK TO attempt")
        self._conn.execute("RELEASE attempt")

    # ---- numbering
    def next_number(self, name: str, start: int = 1) -> int:
        """The next value of a named counter (first value ``start``)."""
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        value = row[0] + 1 if row else start
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        return int(value)

    def set_counter(self, name: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            (name, value),
        )

    # ---- idempotency
    def stored_response(self, scope: str, key: str) -> StoredResponse | None:
        row = self._conn.execute(
            "SELECT fingerprint, status, body, content_type FROM idempotency "
            "WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        return StoredResponse(row[0], row[1], bytes(row[2]), row[3]) if row else None

    def store_response(self, scope: str, key: str, response: StoredResponse) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO idempotency "
            "(scope, key, fingerprint, status, body, content_type, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                scope,
                key,
                response.fingerprint,
                response.status,
                response.body,
                response.content_type,
                self.now(),
            ),
        )

    # ---- meta
    def meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


def _decode(row: Sequence[Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row[0])
    data["updated_at"] = row[1]
    return data


class SandboxStore:
    """The sandbox database: open it once per process, share it between request threads."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._clock = clock
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT max(updated_at) FROM objects").fetchone()
        self._last_stamp: datetime | None = (
            datetime.strptime(row[0], STAMP_FORMAT).replace(tzinfo=UTC) if row[0] else None
        )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _stamp(self) -> str:
        """A timestamp strictly after every earlier one (called under the write lock)."""
        now = self._clock().astimezone(UTC)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now.strftime(STAMP_FORMAT)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """A read transaction: one consistent snapshot."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield Tx(conn, None)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[Tx]:
        """The write transaction: serialised, committed on success, rolled back on error."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn, self._stamp)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()
        self._local = threading.local()
