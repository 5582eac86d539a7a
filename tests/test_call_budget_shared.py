"""One Ecolix call budget per agreement, shared by every node of a PostgreSQL journal.

The ledger is proven on the real database (slots, waits, expiry of a crashed node's calls,
no race between nodes), then the whole rule on the real sandbox, whose own limit is the
agreement: 3 nodes together never get a 429 and use the budget in full, and a node that
cannot reach the database sends nothing. A short window (1 s) stands for the minute.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import pq
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.limiter import agreement_key
from edigw.ecolix.retries import RetryPolicy
from edigw.errors import EcolixNotSentError
from edigw.journal import Journal, JournalUnavailable
from edigw.journal.budget import AHEAD_FRESH, GATHER, MOST_AHEAD, SharedLedger
from edigw.pipeline.assembly import node_name
from tests.fixtures.budget_nodes import CUSTOMER, run_nodes
from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.fixtures.sandbox import SandboxProcess
from tests.support.cli import edigw
from tests.support.orderfiles import write_order_files

pytestmark = pytest.mark.postgres

LEASE = 30.0


@pytest.fixture
def budget_url(postgres_url: str) -> str:
    """A PostgreSQL journal migrated to head (the ``call_budget`` table)."""
    Journal.open(postgres_url).close()
    return postgres_url


@pytest.fixture
def ledgers(budget_url: str) -> Iterator[Callable[..., SharedLedger]]:
    """``ledgers(agreement="A", node="n1", lease=LEASE)``: a node's view of one agreement."""
    opened: list[SharedLedger] = []

    def make(agreement: str = "A", node: str = "n1", lease: float = LEASE) -> SharedLedger:
        ledger = SharedLedger.open(budget_url, agreement, node=node, lease=lease)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


def age_calls(url: str, seconds: float) -> None:
    """Move every call's timestamps ``seconds`` into the past (as if time had passed)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE call_budget SET started_at = started_at - make_interval(secs => :s),"
                    " completed_at = completed_at - make_interval(secs => :s)"
                ),
                {"s": seconds},
            )
    finally:
        engine.dispose()


def rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM call_budget")).scalar_one())
    finally:
        engine.dispose()


# -- the ledger on PostgreSQL -----------------------------------------------------------------


def test_n_calls_may_start_and_the_next_waits_while_they_are_in_flight(
    ledgers: Callable[..., SharedLedger],
) -> None:
    ledger = ledgers()
    grants = [ledger.take(3, 60.0) for _ in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[3].wait == pytest.approx(0.05)  # every slot in flight: look again soon


def test_a_completed_call_frees_its_slot_one_period_after_its_completion(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    first = ledger.take(1, 60.0)
    assert first.slot is not None
    ledger.give_back(first.slot)
    assert ledger.flush()
    age_calls(budget_url, 45.0)  # it completed 45 s ago
    refused = ledger.take(1, 60.0)
    assert refused.slot is None
    assert 14.0 < refused.wait <= 15.0
    age_calls(budget_url, 15.0)  # now 60 s ago: out of the window
    assert ledger.take(1, 60.0).granted


def test_the_nodes_of_one_agreement_share_its_slots(
    ledgers: Callable[..., SharedLedger],
) -> None:
    first, second = ledgers(node="n1"), ledgers(node="n2")
    assert first.take(2, 60.0).granted
    assert second.take(2, 60.0).granted
    assert not first.take(2, 60.0).granted
    assert not second.take(2, 60.0).granted
    assert first.counted(60.0) == second.counted(60.0) == 2


def test_other_agreements_have_budgets_of_their_own(
    ledgers: Callable[..., SharedLedger],
) -> None:
    customer_a, customer_b = ledgers(agreement="A"), ledgers(agreement="B")
    assert customer_a.take(1, 60.0).granted
    assert customer_b.take(1, 60.0).granted


def test_nodes_taking_slots_at_the_same_moment_never_take_more_than_n(
    ledgers: Callable[..., SharedLedger],
) -> None:
    nodes = [ledgers(node=f"n{i}") for i in range(3)]
    barrier = threading.Barrier(9)
    granted: list[int] = []

    def grab(ledger: SharedLedger) -> None:
        barrier.wait()
        for _ in range(10):
            grant = ledger.take(25, 60.0)
            if grant.slot is not None:
                granted.append(grant.slot)

    threads = [threading.Thread(target=grab, args=(n,)) for n in nodes for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == len(set(granted)) == 25


def test_taking_a_slot_is_one_statement_in_autocommit(
    ledgers: Callable[..., SharedLedger], tmp_path: Path
) -> None:
    """One round trip: no BEGIN and COMMIT, the lock and the count run in the server. Seen
    on the wire: libpq's trace of the ledger's connection (the pool's only one)."""
    ledger = ledgers()
    assert ledger.take(5, 60.0).granted  # the pool's connection made
    trace = tmp_path / "wire.txt"
    with trace.open("w") as out:
        raw = ledger._engine.raw_connection()
        pgconn = raw.driver_connection.pgconn  # type: ignore[union-attr]
        raw.close()  # back to the pool, where the next take finds it
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            assert ledger.take(5, 60.0).granted
        finally:
            pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines() if line.startswith("F")]
    assert [m[2] for m in sent if m[2] in ("Sync", "Query")] == ["Sync"], sent
    text = " ".join(" ".join(m) for m in sent)
    assert "edigw_take_call_slot" in text  # parsed with its text: psycopg prepares it later
    assert "BEGIN" not in text and "COMMIT" not in text


def completed(url: str) -> dict[int, bool]:
    """Each call's slot: whether it is recorded completed."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id, completed_at IS NOT NULL FROM call_budget"))
            return {int(slot): bool(done) for slot, done in found}
    finally:
        engine.dispose()


@contextlib.contextmanager
def slot_locked(url: str, slot: int) -> Iterator[None]:
    """Another session holds ``slot``'s row: the statement recording it waits meanwhile."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1 FROM call_budget WHERE id = :id FOR UPDATE"), {"id": slot})
            yield
    finally:
        engine.dispose()


def test_giving_a_slot_back_does_not_wait_for_the_database(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    slot = ledger.take(5, 60.0).slot
    assert slot is not None
    with slot_locked(budget_url, slot):
        started = time.monotonic()
        ledger.give_back(slot)
        handed_in = time.monotonic() - started
        assert not ledger.flush(timeout=0.5)  # its statement waits for the lock
        assert completed(budget_url) == {slot: False}  # still counts as in flight
    assert handed_in < 0.5
    assert ledger.flush()
    assert completed(budget_url) == {slot: True}


def recorded_batches(ledger: SharedLedger, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The slots of each statement that records slots given back, from now on."""
    batches: list[list[int]] = []
    record = ledger._record_returns

    def recording(handed: list[int]) -> None:
        batches.append(list(handed))
        record(handed)

    monkeypatch.setattr(ledger._returner, "_record", recording)
    return batches


def test_slots_given_back_while_one_is_recorded_are_recorded_together_next(
    ledgers: Callable[..., SharedLedger], budget_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = ledgers()
    slots = [ledger.take(5, 60.0).slot for _ in range(5)]
    assert None not in slots
    batches = recorded_batches(ledger, monkeypatch)
    with slot_locked(budget_url, slots[0]):  # type: ignore[arg-type]
        ledger.give_back(slots[0])  # type: ignore[arg-type]
        time.sleep(0.2)  # its statement is under way, waiting for the lock
        for slot in slots[1:]:
            ledger.give_back(slot)  # type: ignore[arg-type]
    assert ledger.flush()
    assert batches == [slots[:1], slots[1:]]
    assert set(completed(budget_url).values()) == {True}


def test_calls_ending_milliseconds_apart_are_recorded_in_one_statement(
    ledgers: Callable[..., SharedLedger], budget_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = ledgers()
    slots = [ledger.take(5, 60.0).slot for _ in range(5)]
    batches = recorded_batches(ledger, monkeypatch)
    for slot in slots:
        assert slot is not None
        ledger.give_back(slot)
        time.sleep(GATHER / 8)
    assert ledger.flush()
    assert len(batches) <= 2, batches  # one, unless this machine is slow now
    assert set(completed(budget_url).values()) == {True}


def test_closing_a_ledger_records_the_slots_given_back(budget_url: str) -> None:
    ledger = SharedLedger.open(budget_url, "A", node="n1", lease=LEASE)
    for _ in range(3):
        grant = ledger.take(5, 60.0)
        assert grant.slot is not None
        ledger.give_back(grant.slot)
    ledger.close()
    assert list(completed(budget_url).values()) == [True, True, True]


def test_a_connection_the_server_dropped_refuses_one_slot_then_the_next_one_reconnects(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    assert ledger.take(5, 60.0).granted  # the pool's connection made
    raw = ledger._engine.raw_connection()
    pid = raw.driver_connection.info.backend_pid  # type: ignore[union-attr]
    raw.close()
    engine = create_engine(budget_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()
    with pytest.raises(JournalUnavailable, match="cannot take a slot"):
        ledger.take(5, 60.0)  # no call may go on a budget that was not read
    assert ledger.take(5, 60.0).granted  # the dead connection left the pool


def test_a_crashed_nodes_call_counts_until_its_lease_ends_then_one_period_more(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    """The lease is the node's, plus the time a slot may wait for its call (AHEAD_FRESH)."""
    crashed, alive = ledgers(node="crashed", lease=20.0), ledgers(node="alive", lease=20.0)
    assert crashed.take(1, 60.0).granted  # never given back: the node died mid-call
    age_calls(budget_url, 20.0)  # still within its lease: in flight
    assert alive.take(1, 60.0).wait == pytest.approx(0.05)
    age_calls(budget_url, 30.0 + AHEAD_FRESH)  # taken for completed at its lease's end, 30 s ago
    assert 29.0 < alive.take(1, 60.0).wait <= 30.0
    age_calls(budget_url, 30.0)
    assert alive.take(1, 60.0).granted


def test_calls_that_no_longer_count_leave_the_table(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    for _ in range(5):
        grant = ledger.take(5, 60.0)
        assert grant.slot is not None
        ledger.give_back(grant.slot)
    assert ledger.flush()
    age_calls(budget_url, 61.0)
    assert ledgers(node="n2").take(5, 60.0).granted  # a node of its own: one slot, not ahead
    assert rows(budget_url) == 1


def takes(url: str) -> list[int]:
    """The slots each round trip took, in the order of the takes: the rows of one take share
    its timestamp."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM call_budget GROUP BY started_at ORDER BY started_at")
            )
            return [int(n) for (n,) in found]
    finally:
        engine.dispose()


def test_calls_in_quick_succession_take_their_slots_ahead(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    """One round trip a call cost the node 0.5 ms of CPU: a node calling fast takes up to
    MOST_AHEAD slots a round trip, twice as many each time the last ones went fast."""
    ledger = ledgers()
    slots = []
    for _ in range(64):
        grant = ledger.take(1000, 60.0)
        assert grant.slot is not None
        slots.append(grant.slot)
    assert len(set(slots)) == 64
    assert takes(budget_url) == [1, 1, 2, 4, *[MOST_AHEAD] * 7]


def test_a_budget_half_used_is_taken_call_by_call(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    """Slots held ahead would starve the other nodes of a budget near its limit."""
    ledger = ledgers()
    assert all(ledger.take(20, 60.0).granted for _ in range(20))
    assert not ledger.take(20, 60.0).granted
    taken = takes(budget_url)
    assert sum(taken) == 20
    assert taken[-10:] == [1] * 10  # from half the budget on, one slot a take


def test_slots_taken_ahead_and_left_unused_are_given_back_as_completed_calls(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    used = [ledger.take(1000, 60.0).slot for _ in range(5)]  # the fifth took 4: 3 ahead
    for slot in used:
        assert slot is not None
        ledger.give_back(slot)
    assert len(completed(budget_url)) == 8
    deadline = time.monotonic() + 10 * AHEAD_FRESH
    while not all(completed(budget_url).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(completed(budget_url).values())  # counted as calls: longer, never less


def test_closing_a_ledger_gives_back_the_slots_it_took_ahead(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    for _ in range(5):  # the fifth took 4 slots: 3 ahead
        assert ledger.take(1000, 60.0).granted
    ledger.close()
    assert list(completed(budget_url).values()).count(True) == 3  # unused; 5 calls in flight


def budget_rows_read_by_one_take(url: str, *, calls: int) -> int:
    """Rows of ``call_budget`` one take reads (index fetches and scans), as the server counts
    them for the transaction the take runs in."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("SELECT edigw_take_call_slots('A', 'n1', 1, 1, :calls, 60.0, :lease, 1)"),
                {"calls": calls, "lease": LEASE},
            )
            read = conn.execute(
                text(
                    "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
                    " FROM pg_stat_xact_user_tables WHERE relname = 'call_budget'"
                    " AND schemaname = current_schema()"
                )
            ).scalar_one()
            return int(read)
    finally:
        engine.dispose()


def test_taking_a_slot_reads_none_of_the_calls_that_count(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    """The agreement's count is kept, not recounted: a busy agreement's hundreds of calls
    cost a take nothing."""
    ledger = ledgers()
    for _ in range(300):
        grant = ledger.take(1000, 60.0)
        assert grant.slot is not None
        ledger.give_back(grant.slot)
    assert ledger.flush()
    assert budget_rows_read_by_one_take(budget_url, calls=1000) == 0


def test_a_take_reads_only_the_calls_that_left_the_window(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    ledger = ledgers()
    for _ in range(5):
        grant = ledger.take(1000, 60.0)
        assert grant.slot is not None
        ledger.give_back(grant.slot)
    ledger.close()  # the slots it took ahead given back too
    leaving = rows(budget_url)
    assert leaving >= 5
    ledger_two = ledgers(node="n2")
    age_calls(budget_url, 40.0)
    for _ in range(200):
        assert ledger_two.take(1000, 60.0).granted
    age_calls(budget_url, 21.0)  # the first ones completed 61 s ago, the others 21 s ago
    assert budget_rows_read_by_one_take(budget_url, calls=1000) == leaving
    assert rows(budget_url) == 201


def test_calls_deleted_by_hand_free_their_slots_at_the_next_refusal(
    ledgers: Callable[..., SharedLedger], budget_url: str
) -> None:
    """The kept count is checked against the rows before any refusal: an operator who
    empties the table does not leave the agreement refused for ever."""
    ledger = ledgers()
    assert all(ledger.take(3, 60.0).granted for _ in range(3))
    engine = create_engine(budget_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM call_budget"))
    finally:
        engine.dispose()
    assert [ledger.take(3, 60.0).granted for _ in range(4)] == [True, True, True, False]


def test_an_unreachable_database_refuses_every_slot() -> None:
    ledger = SharedLedger.open(
        "postgresql+psycopg://postgres@127.0.0.1:1/test", "A", node="n1", lease=LEASE
    )
    try:
        with pytest.raises(JournalUnavailable, match="cannot take a slot of the shared Ecolix"):
            ledger.take(5, 60.0)
    finally:
        ledger.close()


def test_the_agreement_is_the_instance_and_the_token_never_the_token_itself() -> None:
    key = agreement_key("https://erp.example.fr/api/v1/", "secret-token")
    assert key.startswith("https://erp.example.fr/api/v1#")
    assert "secret-token" not in key
    assert agreement_key("https://erp.example.fr/api/v1", "other") != key


# -- what status shows --------------------------------------------------------------------------


def test_status_shows_the_calls_every_node_counts_against_the_agreement(
    ledgers: Callable[..., SharedLedger], budget_url: str, tmp_path: Path
) -> None:
    base_url = "http://127.0.0.1:9/api/v1"  # status reads the journal only: no Ecolix needed
    ws = write_workspace(
        tmp_path / "gw", base_url=base_url, token="T", flows={}, journal=budget_url
    )
    ours = agreement_key(base_url, "T")
    for node in ("n1", "n2"):
        assert ledgers(ours, node).take(10, 60.0).slot is not None
    assert ledgers(agreement_key(base_url, "other-customer")).take(10, 60.0).slot is not None

    status = json.loads(edigw(ws, "status", "--json").output)
    text = " ".join(edigw(ws, "status", columns=200).output.split())

    assert status["shared_calls"] == 2  # both nodes, not the other customer's call
    assert "Ecolix calls counting now against the shared budget (every node): 2 of 100000" in text


def test_status_without_the_token_cannot_tell_which_agreement_it_counts(
    budget_url: str, tmp_path: Path
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:9/api/v1",
        token="T",
        flows={},
        journal=budget_url,
    )

    result = edigw(ws, "status", "--json", token=False)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["shared_calls"] == (
        "unknown (ECOLIX_TOKEN is not set: the budget is kept per token)"
    )


# -- nodes against the real sandbox -----------------------------------------------------------

CALLS, PERIOD, WINDOWS = 20, 1.0, 4


def test_three_nodes_sharing_one_agreement_never_get_a_429_and_use_it_in_full(
    sandbox_factory: Callable[..., SandboxProcess], budget_url: str
) -> None:
    """Safe: the sandbox, whose limit is the agreement, answers no 429; the ledgers never
    held more than N slots at once (counted from stamps inside theirs); no more calls
    completed than the agreement allows.

    In full, measured in the rule's terms so that the machine's speed does not enter: a call
    holds its slot from its grant until one period after its completion, and whenever a
    thread was told to wait, the N slots were held (95%: what is left is how late a sleeping
    thread wakes). The calls completed against ``windows * N`` is not the measure: the rule
    counts completions, so each slot goes round once per period *plus* the call's duration,
    and on a loaded machine (calls of a few hundred ms) fewer calls fit in the run while the
    budget is still used in full."""
    sandbox = sandbox_factory(rate_limit=f"{CALLS}/second")
    run = run_nodes(sandbox, budget_url, nodes=3, calls=CALLS, period=PERIOD, windows=WINDOWS)
    assert run.throttled == 0
    assert run.errors == 0
    assert run.most_held <= CALLS
    assert run.used <= run.allowed
    assert run.slots.waited_seconds > 0  # the budget was the limit, not the threads
    assert run.held_share >= 0.95, f"{run.slots}"


def test_without_the_shared_budget_three_nodes_overrun_the_agreement(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    # Why the budget is shared: each node alone keeps to the agreement, together they do not.
    sandbox = sandbox_factory(rate_limit=f"{CALLS}/second")
    run = run_nodes(sandbox, None, nodes=3, calls=CALLS, period=PERIOD, windows=2)
    assert run.throttled > 0


class Cuttable:
    """A TCP relay to PostgreSQL that the test can cut, as a network failure would."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection and stop listening: the database is unreachable."""
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def remaining(sandbox: SandboxProcess) -> int:
    """Calls the sandbox still allows in its window (this probe is one of them)."""
    response = httpx.get(f"{sandbox.base_url}/customers/{CUSTOMER}", headers=sandbox.auth)
    return int(response.headers["X-RateLimit-Remaining"])


def test_a_node_that_cannot_reach_the_database_sends_nothing(
    sandbox_factory: Callable[..., SandboxProcess], budget_url: str
) -> None:
    sandbox = sandbox_factory(rate_limit="1000/minute")
    url = make_url(budget_url)
    relay = Cuttable(url.port or 5432)
    through_relay = url.set(port=relay.port).render_as_string(hide_password=False)
    ledger = SharedLedger.open(
        through_relay, agreement_key(sandbox.base_url, sandbox.token), node="n1", lease=LEASE
    )
    client = EcolixClient(
        sandbox.base_url,
        sandbox.token,
        calls_per_minute=60,
        budget=ledger,
        retry=RetryPolicy(attempts=1),
    )
    try:
        assert client.get_customer(CUSTOMER)["code"] == CUSTOMER
        relay.cut()
        before = remaining(sandbox)
        failures: list[Any] = []
        for _ in range(5):
            with pytest.raises(EcolixNotSentError) as caught:
                client.get_customer(CUSTOMER)
            failures.append(caught.value)
        assert remaining(sandbox) == before - 1  # only the probe reached Ecolix
        assert "not sent: the shared Ecolix call budget cannot be read" in str(failures[0])
        assert client.usage.calls == 1
    finally:
        client.close()
        ledger.close()


def test_a_gateway_on_a_postgresql_journal_keeps_its_calls_in_the_shared_budget(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess], postgres_url: str
) -> None:
    sandbox = sandbox_factory()
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
        journal=postgres_url,
    )
    write_order_files(ws.inbox("webshop", "orders"), files=2, orders_per_file=2, prefix="BUDGET")
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 2), what="both files done")
        calls = parts.client.usage.calls
    agreement = agreement_key(sandbox.base_url, sandbox.token)
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            recorded = conn.execute(
                text("SELECT count(*) FROM call_budget WHERE agreement = :a AND node = :n"),
                {"a": agreement, "n": node_name()},
            ).scalar_one()
    finally:
        engine.dispose()
    assert calls >= 4
    assert recorded == calls  # every call this node made is in the budget all nodes read
