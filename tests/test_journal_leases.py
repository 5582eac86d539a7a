"""Flow leases and file claims in a PostgreSQL journal: one statement decides, nodes never both win."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text

from edigw.errors import JournalError
from edigw.journal import Journal
from edigw.journal.errors import FlowLeaseLostError
from edigw.journal.leases import HeldLease, SourceClaim, still_held

pytestmark = pytest.mark.postgres

FLOW = "shop/orders"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLAIM = {"flow": FLOW, "path": "in/a.csv", "size": 10, "mtime": 1.5}


def take(journal: Journal, node: str, *, ttl: float) -> int | None:
    """Take or renew FLOW's lease for ``node``: its epoch, or None."""
    return journal.take_leases([FLOW], node, ttl=ttl)[FLOW]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Journal]:
    journal = Journal.open(postgres_url)
    try:
        yield journal
    finally:
        journal.close()


def test_a_free_flow_is_leased_with_epoch_one_and_refused_to_another_node(pg: Journal) -> None:
    assert take(pg, "a:1", ttl=30) == 1
    assert take(pg, "b:2", ttl=30) is None


def test_renewing_a_held_lease_keeps_its_epoch(pg: Journal) -> None:
    take(pg, "a:1", ttl=30)
    assert take(pg, "a:1", ttl=30) == 1


def test_an_expired_lease_is_taken_over_under_a_new_epoch(pg: Journal) -> None:
    take(pg, "a:1", ttl=0.2)
    time.sleep(0.3)
    assert pg.flow_leases([FLOW])[FLOW].expired
    assert take(pg, "b:2", ttl=30) == 2
    assert take(pg, "a:1", ttl=30) is None


def test_nodes_racing_for_one_free_flow_leave_exactly_one_winner(postgres_url: str) -> None:
    journals = [Journal.open(postgres_url) for _ in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            epochs = list(pool.map(lambda n: take(journals[n], f"n:{n}", ttl=30), range(8)))
    finally:
        for journal in journals:
            journal.close()
    assert sorted(epochs, key=lambda e: e is None) == [1] + [None] * 7


def test_a_lease_let_go_is_free_to_others_only_after_the_grace(pg: Journal) -> None:
    take(pg, "a:1", ttl=30)
    # Refused within the grace: one no machine outlasts between two statements (a 0.3 s
    # grace was over before b asked when the machine was loaded).
    pg.let_go_leases([FLOW], "a:1", after=30)
    assert take(pg, "b:2", ttl=30) is None
    # Taken after it: a short grace, waited out (a slower machine only waits longer).
    pg.let_go_leases([FLOW], "a:1", after=0.3)
    time.sleep(0.4)
    assert take(pg, "b:2", ttl=30) == 2


def test_a_node_that_leaves_frees_its_flows_at_once_and_is_no_longer_live(pg: Journal) -> None:
    assert pg.heartbeat("a:1", ttl=30) == 1
    assert pg.heartbeat("b:2", ttl=30) == 2
    take(pg, "a:1", ttl=30)
    pg.leave("a:1", claims_until=datetime.now(UTC))
    assert pg.heartbeat("b:2", ttl=30) == 1
    assert take(pg, "b:2", ttl=30) == 2


def test_a_node_not_seen_within_the_lease_time_is_not_live(pg: Journal) -> None:
    pg.heartbeat("a:1", ttl=0.2)
    time.sleep(0.3)
    assert pg.heartbeat("b:2", ttl=0.2) == 1


def test_a_file_version_is_claimed_once_per_epoch(pg: Journal) -> None:
    assert pg.claim_file(**CLAIM, node="a:1", epoch=1)
    assert pg.claim_file(**CLAIM, node="a:1", epoch=1)  # the same leader, again: still its own
    assert not pg.claim_file(**CLAIM, node="b:2", epoch=1)


def test_a_later_leader_wins_the_claim_and_the_earlier_one_never_gets_it_back(
    pg: Journal,
) -> None:
    assert pg.claim_file(**CLAIM, node="a:1", epoch=1)
    assert pg.claim_file(**CLAIM, node="b:2", epoch=2)
    assert not pg.claim_file(**CLAIM, node="a:1", epoch=1)


def test_another_version_of_the_same_path_is_a_claim_of_its_own(pg: Journal) -> None:
    assert pg.claim_file(**CLAIM, node="a:1", epoch=1)
    assert pg.claim_file(**{**CLAIM, "size": 11}, node="b:2", epoch=1)


def test_a_dropped_claim_frees_the_version(pg: Journal) -> None:
    pg.claim_file(**CLAIM, node="a:1", epoch=1)
    pg.drop_file_claim(**CLAIM, node="b:2")  # not b's: stays
    assert not pg.claim_file(**CLAIM, node="b:2", epoch=1)
    pg.drop_file_claim(**CLAIM, node="a:1")
    assert pg.claim_file(**CLAIM, node="b:2", epoch=1)


def test_a_sources_disposal_recorded_with_its_claim_forgets_that_claim_only(pg: Journal) -> None:
    pg.claim_file(**CLAIM, node="a:1", epoch=1)
    file_id = pg.add_file(
        partner="webshop",
        flow=FLOW,
        channel="local:in",
        original_name="a.csv",
        source_path="in/a.csv",
        size=10,
        sha256="a" * 64,
        archive_path="x",
        now=NOW,
    )

    def disposed(claimed_by: str) -> None:
        pg.record_channel_action(
            file_id,
            action="move",
            ok=True,
            error=None,
            now=NOW,
            target="done/a.csv",
            claim=SourceClaim(**CLAIM, node=claimed_by),
        )

    disposed("b:2")  # not a's claim: it stays
    assert not pg.claim_file(**CLAIM, node="b:2", epoch=1)
    disposed("a:1")
    assert pg.claim_file(**CLAIM, node="b:2", epoch=1)
    assert [e.detail for e in pg.events_of(file_id) if e.kind == "channel"] == [
        "move to done/a.csv",
        "move to done/a.csv",
    ]


def test_a_polls_files_are_claimed_in_one_statement_except_those_a_later_leader_holds(
    pg: Journal,
) -> None:
    b = {**CLAIM, "path": "in/b.csv"}
    c = {**CLAIM, "path": "in/c.csv"}
    assert pg.claim_file(**b, node="b:2", epoch=2)  # a later leader's claim
    assert pg.claim_file(**c, node="a:1", epoch=1)  # this node's own, from an earlier poll
    versions = [(v["path"], v["size"], v["mtime"]) for v in (CLAIM, b, c)]

    claimed = pg.claim_files(flow=FLOW, versions=versions, node="a:1", epoch=1)

    assert claimed == {("in/a.csv", 10, 1.5), ("in/c.csv", 10, 1.5)}
    assert not pg.claim_file(**CLAIM, node="b:1", epoch=1)  # a's now: same epoch, not b's
    assert pg.claim_files(flow=FLOW, versions=versions, node="c:3", epoch=3) == set(versions)


def test_claims_racing_for_one_file_leave_exactly_one_winner(postgres_url: str) -> None:
    journals = [Journal.open(postgres_url) for _ in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            won = list(
                pool.map(
                    lambda n: journals[n].claim_file(**CLAIM, node=f"n:{n}", epoch=1), range(8)
                )
            )
    finally:
        for journal in journals:
            journal.close()
    assert won.count(True) == 1


def record_delivery(journal: Journal, lease: HeldLease) -> int:
    """An export run of FLOW recording the delivery of its file, fenced by ``lease``."""
    now = datetime.now(UTC)
    run_id = journal.start_export_run(
        partner="shop", flow="orders", mode="delta", window_from=None, now=now
    )
    journal.record_export_delivery(
        run_id,
        file_name="orders_0001.csv",
        sha256="e" * 64,
        size=10,
        archive_path=None,
        records=1,
        calls=1,
        mark=(now, None),
        now=now,
        lease=lease,
    )
    return run_id


def test_a_delivery_fenced_by_the_lease_its_node_holds_is_recorded(pg: Journal) -> None:
    epoch = take(pg, "a:1", ttl=30)
    assert epoch is not None
    run_id = record_delivery(pg, HeldLease(FLOW, "a:1", epoch))
    assert [p.run_id for p in pg.pending_export_deliveries("shop", "orders")] == [run_id]


def test_a_delivery_fenced_by_a_lease_another_node_took_over_is_not_recorded(
    pg: Journal,
) -> None:
    take(pg, "a:1", ttl=0.2)
    time.sleep(0.3)  # a is paused past its lease; b takes the flow over
    assert take(pg, "b:2", ttl=30) == 2
    with pytest.raises(FlowLeaseLostError):
        record_delivery(pg, HeldLease(FLOW, "a:1", 1))
    assert pg.pending_export_deliveries("shop", "orders") == []


def test_a_delivery_fenced_by_a_lease_expired_but_not_yet_taken_is_not_recorded(
    pg: Journal,
) -> None:
    take(pg, "a:1", ttl=0.2)
    time.sleep(0.3)  # nobody took it yet, but anybody may
    with pytest.raises(FlowLeaseLostError):
        record_delivery(pg, HeldLease(FLOW, "a:1", 1))
    assert pg.pending_export_deliveries("shop", "orders") == []


def test_a_takeover_waits_for_the_transaction_that_found_the_lease_held(
    pg: Journal, postgres_url: str
) -> None:
    # What a fenced write does in that transaction is committed before another node leads.
    take(pg, "a:1", ttl=3.0)  # ample for the next statement, on a loaded machine too
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as fenced, ThreadPoolExecutor(1) as pool:
            with fenced.begin():
                assert still_held(fenced, HeldLease(FLOW, "a:1", 1))
                me = fenced.execute(text("SELECT pg_backend_pid()")).scalar_one()
                time.sleep(3.1)  # the lease lapses while the transaction is open
                taking = pool.submit(take, pg, "b:2", ttl=30)
                while not waiting_for(engine, me):
                    assert not taking.done(), "b took the flow while a's transaction was open"
                    time.sleep(0.05)
            assert taking.result() == 2
    finally:
        engine.dispose()


def waiting_for(engine: Engine, pid: int) -> bool:
    """Whether some session waits for a lock backend ``pid`` holds."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        )
        return bool(conn.execute(query, {"pid": pid}).scalar_one())


def test_a_sqlite_journal_has_no_leases(tmp_path: object) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path}/j.sqlite")
    try:
        assert not journal.shared
        with pytest.raises(JournalError, match="only a PostgreSQL journal"):
            take(journal, "a:1", ttl=30)
    finally:
        journal.close()
