"""Flow leadership among nodes on one PostgreSQL journal: spread evenly, taken over when a
node dies, and never held by two nodes at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edigw.journal import Journal
from edigw.pipeline.leadership import LeaseTimes, SharedLeadership, SoleNode
from tests.support.queued import queued_document

pytestmark = pytest.mark.postgres

FLOWS = [f"shop/flow{n:02d}" for n in range(20)]
TIMES = LeaseTimes(takeover=2.0)  # lease 1.6 s, renewed every 0.4 s


def frozen() -> float:
    """A node's monotonic clock that does not move: what it took stays taken in its own eyes
    (how leases spread is the subject, not when a node stops acting; a slow round on a
    loaded machine must not make its own leases lapse locally before the next look)."""
    return 0.0


@pytest.fixture
def journals(postgres_url: str) -> Iterator[tuple[Journal, Journal]]:
    a, b = Journal.open(postgres_url), Journal.open(postgres_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def node(
    journal: Journal,
    name: str,
    flows: list[str] = FLOWS,
    monotonic: Callable[[], float] = frozen,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SharedLeadership:
    return SharedLeadership(
        journal, node=name, flows=lambda: flows, times=TIMES, monotonic=monotonic, clock=clock
    )


def test_the_lease_times_follow_the_takeover_bound() -> None:
    times = LeaseTimes(takeover=15.0)
    assert (times.ttl, times.every) == pytest.approx((12.0, 3.0))


def test_the_only_node_of_a_sqlite_journal_leads_every_flow() -> None:
    sole = SoleNode()
    assert sole.holds("any/flow") and sole.epoch("any/flow") == 0 and not sole.shared


def test_a_node_alone_leads_every_flow(journals: tuple[Journal, Journal]) -> None:
    a = node(journals[0], "a:1")
    a.round()
    assert a.held() == FLOWS
    assert all(a.epoch(flow) == 1 for flow in FLOWS)


def test_a_second_node_gets_half_of_the_flows(journals: tuple[Journal, Journal]) -> None:
    a, b = node(journals[0], "a:1"), node(journals[1], "b:2")
    a.round()
    b.round()  # counted live now, but every flow is held
    assert b.held() == []
    a.round()  # its fair share is 10 now: it leaves 10 (after a grace)
    assert len(a.held()) == 10
    time.sleep(TIMES.every + 0.1)
    b.round()
    assert len(b.held()) == 10
    assert sorted(a.held() + b.held()) == FLOWS


def test_a_node_that_stops_leaves_its_flows_to_the_other_at_once(
    journals: tuple[Journal, Journal],
) -> None:
    a, b = node(journals[0], "a:1"), node(journals[1], "b:2")
    a.round()
    b.round()
    a.resign()
    b.round()
    assert b.held() == FLOWS
    assert a.held() == []


def test_a_dead_node_stops_acting_before_the_survivor_takes_its_flows(
    journals: tuple[Journal, Journal],
) -> None:
    # real clocks: when a stops acting, against when the database lets b take over, is
    # the subject
    a = node(journals[0], "a:1", monotonic=time.monotonic)
    b = node(journals[1], "b:2", monotonic=time.monotonic)
    a.round()
    b.round()
    a.round()  # a's last renewal: it keeps 10 (read at once: they lapse locally 1.2 s on)
    led_by_a = a.held()
    assert len(led_by_a) == 10
    died = time.monotonic()  # a renews no more from here on
    time.sleep(TIMES.every + 0.1)
    b.round()
    while not set(led_by_a) <= set(b.held()):
        b.round()
        if set(led_by_a) & set(b.held()):
            assert a.held() == []  # a stopped acting before b could start
        assert time.monotonic() - died < 5 * TIMES.takeover, "never taken over"
        time.sleep(0.05)
    assert b.held() == FLOWS
    assert all(b.epoch(flow) == 2 for flow in led_by_a)


def test_a_node_that_lost_a_claim_stops_acting_on_the_flow(
    journals: tuple[Journal, Journal],
) -> None:
    a = node(journals[0], "a:1")
    a.round()
    a.lost(FLOWS[0])
    assert not a.holds(FLOWS[0])
    assert a.epoch(FLOWS[0]) is None


def test_a_flow_no_longer_configured_is_left(journals: tuple[Journal, Journal]) -> None:
    flows = list(FLOWS)
    a = node(journals[0], "a:1", flows)
    a.round()
    flows.pop()
    a.round()
    assert a.held() == FLOWS[:-1]


def test_a_node_once_given_up_for_dead_has_what_it_claimed_later_resumed_when_it_dies(
    journals: tuple[Journal, Journal],
) -> None:
    a, b = node(journals[0], "a:1"), node(journals[1], "b:2")
    doc_id = queued_document(journals[0])
    a.round()
    b.round()
    time.sleep(TIMES.ttl + 0.2)  # a's heartbeat is late: b gives it up for dead
    b.round()
    # a was only slow: it claims a document, then dies before its next heartbeat
    claimed = journals[0].claim_for_sending(now=datetime.now(UTC), node="a:1", lease_seconds=120)
    assert claimed is not None and claimed.id == doc_id
    time.sleep(TIMES.ttl + 0.2)
    b.round()
    resumed = journals[1].claim_for_sending(now=datetime.now(UTC), node="b:2", lease_seconds=120)
    assert resumed is not None and resumed.id == doc_id


def stopped_with_a_call_in_flight(journals: tuple[Journal, Journal], at: datetime) -> int:
    """Node a claims a document and makes its call; its stop timeout runs out with the call
    still in flight, and it stops at ``at`` (its clock). The document's id."""
    a = node(journals[0], "a:1", clock=lambda: at)
    doc_id = queued_document(journals[0])
    a.round()
    claimed = journals[0].claim_for_sending(now=at, node="a:1", lease_seconds=120)
    assert claimed is not None and claimed.id == doc_id
    journals[0].mark_sent(doc_id, now=at, node="a:1")
    a.resign()
    return doc_id


def test_a_node_that_stops_with_a_call_in_flight_has_its_document_resumed_after_a_lease_time(
    journals: tuple[Journal, Journal],
) -> None:
    stopped = datetime.now(UTC)
    doc_id = stopped_with_a_call_in_flight(journals, stopped)
    later = stopped + timedelta(seconds=TIMES.ttl + 0.1)  # not its document lease (120 s)
    resumed = journals[1].claim_for_sending(now=later, node="b:2", lease_seconds=120)
    assert resumed is not None and resumed.id == doc_id
    assert resumed.idempotency_key == f"{resumed.file_id}-1"  # sent again under its key


def test_a_node_that_stops_with_a_call_in_flight_keeps_its_document_for_a_lease_time(
    journals: tuple[Journal, Journal],
) -> None:
    # The call may still be in flight: not sent again sooner than a dead node's would be.
    stopped = datetime.now(UTC)
    stopped_with_a_call_in_flight(journals, stopped)
    sooner = stopped + timedelta(seconds=TIMES.ttl - 0.1)
    assert journals[1].claim_for_sending(now=sooner, node="b:2", lease_seconds=120) is None
