"""One Ecolix call budget per agreement, shared by every node of a PostgreSQL journal.

The vendor's agreement (N calls in any rolling minute) is per customer, not per gateway: two
nodes each keeping their own budget would together send up to 2N and get 429 answers. So on a
PostgreSQL journal the limiter's ledger (see ``edigw/ecolix/limiter.py`` for the rule and its
proof) lives in the ``call_budget`` table: one row per call in flight or completed within the
last period, keyed by the agreement (the Ecolix base URL and a fingerprint of the token).

- **No race.** Taking a slot is one transaction: a transaction-level advisory lock on the
  agreement, then a count of the calls that still count and the new one inserted only if
  there is room. Two nodes can never both take the last slot. It runs in the server (the
  function ``edigw_take_call_slots``, journal revisions 0018 and 0019), in one round trip,
  reading one row: the agreement's count is kept beside its calls (``call_budget_held``).
- **Slots taken ahead.** A node calling fast takes several slots in one round trip (up to
  :data:`MOST_AHEAD`, doubling while they are used up within :data:`AHEAD_FRESH` seconds)
  and hands them to its next calls: a round trip a call cost the node 0.5 ms of CPU. A slot
  taken ahead counts from its take, before its call starts: longer, never less. The server
  gives more than one only while the agreement's calls fill less than half of it, so a
  budget near its limit is still shared call by call. A slot not used within
  :data:`AHEAD_FRESH` seconds is given back as a completed call (it counts one period, as if
  it had been used), and the lease of every call is :data:`AHEAD_FRESH` longer, since a call
  may start that much after its slot.
- **One clock.** Start and completion times are the database's ``clock_timestamp()``, so the
  nodes' clocks may disagree: the proof needs one clock and one order, which the database
  gives. The start is stamped before the request leaves and the completion after the answer
  came back, which only makes each call count longer.
- **A crashed node's calls expire.** A call still in flight after ``lease`` seconds (at least
  the client's longest request) is counted as completed at ``started_at + lease``, so it leaves
  the budget one period later rather than never.
- **No guessing.** When the database cannot be reached, :meth:`SharedLedger.take` raises
  ``JournalUnavailable`` and the client sends nothing (``EcolixNotSentError``): a node that
  cannot see the others' calls must not assume there are none. Recording a completion that
  fails leaves the slot in flight until its lease ends: it counts longer, never less.

Rows leave the table as soon as they stop counting, so it holds about N rows per agreement.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine, make_url

from edigw.ecolix.limiter import IDLE_POLL, Grant
from edigw.journal.errors import JournalUnavailable

log = logging.getLogger("edigw.budget")

#: First key of the advisory locks of the call budget ("ECLX"): a name space of its own.
LOCK_CLASS = 0x45434C58
CONNECT_TIMEOUT = 5  # seconds: an unreachable database must stop calls soon, not hang them
#: Seconds a node waits for the budget's lock, or may sit in a transaction, before the
#: database gives up on it (a node frozen or cut off mid-transaction must not stall the rest).
LOCK_TIMEOUT = 10

_ENDED = "COALESCE(b.completed_at, b.started_at + make_interval(secs => :lease))"
_WINDOW_START = "now.t - make_interval(secs => :period)"
# The two statements of every call run on psycopg itself (prepared in the server as psycopg
# does for frequent statements), in autocommit: through SQLAlchemy's Connection the pair cost 0.8-1.2 ms of CPU, on the driver
# 0.3 ms (``docs/benchmarks.md``), and every Ecolix call of a PostgreSQL journal pays it.
#
# The lock, the count and the insert, in the server (journal revisions 0018, 0019): one round trip,
# and the lock is held only while the server works, never across the network.
_TAKE = (
    "SELECT slots, wait FROM edigw_take_call_slots("
    "%(agreement)s::text, %(node)s::text, %(lock_class)s::integer, %(lock_key)s::integer,"
    " %(calls)s::integer, %(period)s::double precision, %(lease)s::double precision,"
    " %(want)s::integer)"
)
# Every slot handed back since the last one, in one statement (``_Returner``). Not waiting
# for the commit to reach the disk (``synchronous_commit`` off for this statement's own
# transaction only): a completion lost with the server merely leaves its slot in flight
# until its lease ends, and it spares each call a WAL flush.
_GIVE_BACK = (
    "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))"
    " UPDATE call_budget SET completed_at = clock_timestamp() FROM relaxed"
    " WHERE id = ANY(%(slots)s::bigint[]) AND completed_at IS NULL"
)
#: Seconds :meth:`SharedLedger.close` waits for the slots handed back to be recorded.
CLOSE_WAIT = 5.0
#: Seconds a slot taken ahead may wait for its call; then it is given back unused.
AHEAD_FRESH = 0.5
#: The most slots one take asks for.
MOST_AHEAD = 8
#: Seconds the slots handed back wait for others to be recorded with them in one statement
#: (calls ending a few milliseconds apart): each counts that much longer, never less.
GATHER = 0.02


class SharedLedger:
    """The calls of one agreement by every node, in the PostgreSQL journal's ``call_budget``.

    A :class:`edigw.ecolix.limiter.CallLedger`: hand it to ``EcolixClient(budget=...)``.
    ``node`` names this process in the rows (for an operator looking at the table); ``lease``
    is how long a call may stay in flight before it is taken for completed (a crashed node);
    the rows' lease adds :data:`AHEAD_FRESH`, the longest a slot waits for its call.
    """

    def __init__(self, engine: Engine, agreement: str, *, node: str, lease: float) -> None:
        if lease <= 0:
            msg = f"lease must be positive, got {lease}"
            raise ValueError(msg)
        self.agreement = agreement
        self.node = node
        self.lease = lease
        #: The lease the rows are judged by: a slot taken ahead may wait for its call.
        self._row_lease = lease + AHEAD_FRESH
        self._engine = engine
        digest = hashlib.sha256(agreement.encode()).digest()
        self._lock_key = int.from_bytes(digest[:4], "big", signed=True)
        self._ahead = _Ahead()
        self._returner = _Returner(self._record_returns, idle=self._expire_ahead)

    @classmethod
    def open(cls, url: str, agreement: str, *, node: str, lease: float) -> SharedLedger:
        """A ledger on the journal at ``url`` (PostgreSQL), with a small pool of its own.

        Its own pool, so that taking a slot never queues behind the journal's work, with a
        connect timeout and lock timeouts so that an outage stops calls within seconds.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            msg = f"the shared call budget needs a PostgreSQL journal, not {parsed.drivername}"
            raise ValueError(msg)
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        # Taking and giving back a slot are one statement each: in autocommit, no BEGIN and
        # COMMIT round trips, and nothing to roll back when a connection returns to the pool.
        engine = create_engine(
            url,
            pool_recycle=3600,
            connect_args=connect_args,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )
        event.listen(engine, "connect", _set_timeouts)
        return cls(engine, agreement, node=node, lease=lease)

    def close(self) -> None:
        """Record the slots handed back and those taken ahead unused (for :data:`CLOSE_WAIT`
        seconds at most), then close the pool (calls in flight keep their rows until
        completed or expired)."""
        for slot in self._ahead.drain():
            self._returner.hand(slot)
        self._returner.close(CLOSE_WAIT)
        self._engine.dispose()

    def take(self, calls: int, period: float) -> Grant:
        """Take a slot if fewer than ``calls`` calls count now; else say how long to wait.

        A slot taken ahead by an earlier take is handed out first, without a round trip.
        Raises ``JournalUnavailable`` when the database cannot be asked: then no call may go.
        """
        kept = self._ahead.pop()
        if kept is not None:
            return Grant(slot=kept)
        self._expire_ahead()
        params = {
            "agreement": self.agreement,
            "node": self.node,
            "lock_class": LOCK_CLASS,
            "lock_key": self._lock_key,
            "calls": calls,
            "period": float(period),
            "lease": self._row_lease,
            "want": self._ahead.want(),
        }
        try:
            slots, wait = self._run(_TAKE, params)
        except (exc.SQLAlchemyError, psycopg.Error) as err:
            msg = f"journal: cannot take a slot of the shared Ecolix call budget: {_reason(err)}"
            raise JournalUnavailable(msg) from err
        if slots:
            first, *rest = (int(slot) for slot in slots)
            self._ahead.keep(rest)
            return Grant(slot=first)
        return Grant(None, IDLE_POLL if wait is None else max(float(wait), 0.0))

    def _expire_ahead(self) -> None:
        """Give back the slots taken ahead that waited too long for a call."""
        for slot in self._ahead.expired():
            self._returner.hand(slot)

    def give_back(self, slot: int) -> None:
        """Record the slot's call as completed, without waiting for the database.

        The slot is handed to this ledger's returner thread, which records the slots handed
        to it within :data:`GATHER` seconds in one statement: the sender goes on to its next
        document instead of waiting a round trip, and the database sees one statement for
        several calls. Each call is stamped completed when the statement runs, a little after
        it really ended: it counts a little longer, never less. An outage only leaves slots in
        flight longer.
        """
        self._returner.hand(slot)

    def flush(self, timeout: float = CLOSE_WAIT) -> bool:
        """Wait until every slot given back so far is recorded (or failed to be); whether it
        happened within ``timeout`` seconds."""
        return self._returner.flush(timeout)

    def _record_returns(self, slots: list[int]) -> None:
        try:
            self._run(_GIVE_BACK, {"slots": slots})
        except (exc.SQLAlchemyError, psycopg.Error) as err:
            log.warning(
                "journal: cannot record the end of %d Ecolix call(s) in the shared budget "
                "(each counts until its lease of %.0f s ends): %s",
                len(slots),
                self.lease,
                _reason(err),
            )

    def _run(self, statement: str, params: dict[str, Any]) -> Any:
        """``statement`` on a pooled connection's psycopg connection (which prepares it in the
        server once it is frequent); its first row, if any. A connection the driver failed on
        leaves the pool."""
        raw = self._engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert isinstance(driver, psycopg.Connection)
            cursor = driver.execute(statement, params)
            return cursor.fetchone() if cursor.description is not None else None
        except psycopg.Error:
            raw.invalidate()
            raise
        finally:
            raw.close()

    def counted(self, period: float) -> int:
        """Calls that count against the agreement now, every node together (for reports)."""
        query = text(
            f"SELECT count(*) FROM call_budget b, (SELECT clock_timestamp() AS t) now"
            f" WHERE b.agreement = :agreement AND {_ENDED} > {_WINDOW_START}"
        )
        params = {"agreement": self.agreement, "period": float(period), "lease": self._row_lease}
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(query, params).scalar_one())
        except exc.SQLAlchemyError as err:
            msg = f"journal: cannot read the shared Ecolix call budget: {_reason(err)}"
            raise JournalUnavailable(msg) from err


class _Ahead:
    """Slots taken ahead and not yet handed to a call, and how many the next take asks for.

    The next take asks for twice as many as the last when the last ones were all used within
    :data:`AHEAD_FRESH` seconds (calls come fast), for half as many when some expired unused.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: list[int] = []
        self._taken_at = 0.0
        self._want = 1

    def want(self) -> int:
        with self._lock:
            return self._want

    def keep(self, slots: list[int]) -> None:
        """The slots of a take beyond the first: handed out by :meth:`pop`."""
        with self._lock:
            now = self._clock()
            if now - self._taken_at <= AHEAD_FRESH:  # the last take's slots went fast
                self._want = min(self._want * 2, MOST_AHEAD)
            self._taken_at = now
            self._slots = slots[::-1]

    def pop(self) -> int | None:
        with self._lock:
            if self._slots and self._clock() - self._taken_at <= AHEAD_FRESH:
                return self._slots.pop()
            return None

    def expired(self) -> list[int]:
        """The slots that waited longer than :data:`AHEAD_FRESH` (removed)."""
        with self._lock:
            if not self._slots or self._clock() - self._taken_at <= AHEAD_FRESH:
                return []
            self._want = max(1, self._want // 2)
            gone, self._slots = self._slots, []
            return gone

    def drain(self) -> list[int]:
        with self._lock:
            gone, self._slots = self._slots, []
            return gone


class _Returner:
    """A thread that records the slots handed back, all those waiting in one go.

    Started with the first slot handed back; ``record`` gets each batch and must not raise;
    ``idle`` runs at least every :data:`AHEAD_FRESH` seconds while the thread waits. A batch
    gathers for :data:`GATHER` seconds, unless the ledger closes or somebody waits for it.
    """

    def __init__(
        self, record: Callable[[list[int]], None], *, idle: Callable[[], None] = lambda: None
    ) -> None:
        self._record = record
        self._idle = idle
        self._cond = threading.Condition()
        self._waiting: list[int] = []
        self._handed = 0  # slots handed back so far
        self._done = 0  # of them, recorded (or failed to be)
        self._closing = False
        self._flushing = 0  # callers waiting in :meth:`flush`
        self._thread: threading.Thread | None = None

    def hand(self, slot: int) -> None:
        with self._cond:
            self._waiting.append(slot)
            self._handed += 1
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._run, name="budget returns", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        if self._closing:  # no thread any more: recorded here
            self._drain()

    def flush(self, timeout: float) -> bool:
        with self._cond:
            target = self._handed
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float) -> None:
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while self._drain():
            with self._cond:
                self._cond.wait_for(lambda: bool(self._waiting) or self._closing, AHEAD_FRESH)
            self._idle()

    def _drain(self) -> bool:
        """Record what waits; whether to go on (not closing, or slots came meanwhile)."""
        with self._cond:
            if self._waiting and not self._closing:
                self._cond.wait_for(lambda: self._closing or self._flushing > 0, GATHER)
            batch, self._waiting = self._waiting, []
        if batch:
            try:
                self._record(batch)
            finally:
                with self._cond:
                    self._done += len(batch)
                    self._cond.notify_all()
        with self._cond:
            return not self._closing or bool(self._waiting)


def _set_timeouts(dbapi_connection: Any, _record: Any) -> None:
    """Bound lock waits and idle transactions on the budget's own connections."""
    millis = LOCK_TIMEOUT * 1000
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {millis}")
        cursor.execute(f"SET idle_in_transaction_session_timeout = {millis}")
    dbapi_connection.commit()


def _reason(err: exc.SQLAlchemyError | psycopg.Error) -> str:
    orig = getattr(err, "orig", None)
    message = str(orig) if orig is not None else str(err)
    return message.strip().splitlines()[0] if message.strip() else type(err).__name__
