"""An export run that began while its node led the flow delivers nothing once another node
leads it (several nodes on one journal): the mark stays where it was, and the new leader's
run exports the records, so none reaches the partner twice.

Whether the node still leads is asked of the journal (``edigw.outbound.fence``): a node
paused past its lease still believes it leads, and is fenced out all the same."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.journal.store import Journal
from edigw.outbound.fence import LeadershipLost
from edigw.outbound.flow import ExportFlow
from edigw.pipeline.exports import export_fence
from edigw.pipeline.leadership import LeaseTimes, SharedLeadership
from tests.test_outbound_export import Gateway, _gateway
from tests.test_outbound_per_record import states_flow

#: Short leases, so that a node "paused" past its lease is a short sleep.
TIMES = LeaseTimes(takeover=0.25)  # lease 0.2 s
#: Leases that outlast any run on a loaded machine, for a node that keeps its lease.
LONG = LeaseTimes(takeover=300.0)


@pytest.fixture
def fresh(sandbox_factory: Any, tmp_path: Path) -> Iterator[Gateway]:
    yield from _gateway(sandbox_factory(), tmp_path)


@pytest.fixture
def shared(sandbox_factory: Any, tmp_path: Path, postgres_url: str) -> Iterator[Gateway]:
    """A gateway node on a PostgreSQL journal (other nodes open the same ``postgres_url``)."""
    yield from _gateway(sandbox_factory(), tmp_path, postgres_url)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def paused() -> float:
    """The monotonic clock of a node that was paused: it has not moved since its last
    renewal, so the node's own view says it still leads."""
    return 0.0


def flow_id(flow: ExportFlow) -> str:
    return f"{flow.partner}/{flow.flow}"


def leading(
    journal: Journal, flow: ExportFlow, node: str = "a:1", times: LeaseTimes = TIMES
) -> SharedLeadership:
    """A node that took ``flow``'s lease (its one flow)."""
    leader = SharedLeadership(
        journal, node=node, flows=lambda: [flow_id(flow)], times=times, monotonic=paused
    )
    leader.round()
    assert leader.epoch(flow_id(flow)) is not None
    return leader


def run_fence(leader: SharedLeadership, flow: ExportFlow) -> Callable[[], bool]:
    """The fence of a run ``leader`` begins now, under its current epoch of ``flow``."""
    epoch = leader.epoch(flow_id(flow))
    assert epoch is not None
    return export_fence(leader, flow_id(flow), epoch)


def taken_over(postgres_url: str, flow: ExportFlow, leader: SharedLeadership) -> None:
    """``leader`` is paused past its lease; another node takes the flow in the journal,
    while ``leader``'s own view still says it leads."""
    epoch = leader.epoch(flow_id(flow))
    assert epoch is not None
    time.sleep(TIMES.ttl + 0.1)
    other = Journal.open(postgres_url)
    try:
        assert other.take_leases([flow_id(flow)], "b:2", ttl=30)[flow_id(flow)] == epoch + 1
    finally:
        other.close()
    assert leader.epoch(flow_id(flow)) == epoch


def test_a_run_whose_node_no_longer_leads_the_flow_delivers_nothing_and_keeps_the_mark(fresh):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    fresh.run(flow)
    mark = fresh.journal.cursor("p", flow.flow)
    touched = fresh.sandbox.touch("articles", count=3)

    with pytest.raises(LeadershipLost, match="another node leads it now"):
        fresh.run(flow, fence=lambda: False)

    assert files(fresh.outbox) == ["webshop-articles_0001.csv"]
    assert fresh.journal.cursor("p", flow.flow) == mark
    [run] = fresh.journal.export_runs(partner="p", flow=flow.flow, limit=1)
    assert run.state == "failed" and "another node leads it now" in (run.error or "")
    assert fresh.journal.pending_export_deliveries("p", flow.flow) == []

    again = fresh.run(flow, fence=lambda: True)  # the new leader's run
    assert (again.state, again.records) == ("delivered", len(touched))


def test_a_per_record_run_stops_delivering_at_the_moment_its_node_loses_the_flow(fresh):
    changes = fresh.listing("/order-states")
    assert len(changes) >= 3
    asked: list[bool] = []

    def leads_for_two_files() -> bool:
        asked.append(True)
        return len(asked) <= 2

    with pytest.raises(LeadershipLost):
        fresh.run(states_flow(), fence=leads_for_two_files)
    assert len(files(fresh.outbox)) == 2

    rest = fresh.run(states_flow(), fence=lambda: True)
    assert rest.records == len(changes) - 2
    assert len(files(fresh.outbox)) == len(changes)


@pytest.mark.postgres
def test_a_run_whose_lease_was_taken_over_in_the_journal_delivers_nothing_though_its_node_believes_it_leads(
    shared: Gateway, postgres_url: str
) -> None:
    flow = shared.flow("webshop-articles.csv.j2", "articles.list")
    a = leading(shared.journal, flow)
    fence = run_fence(a, flow)
    taken_over(postgres_url, flow, a)

    with pytest.raises(LeadershipLost, match="another node leads it now"):
        shared.run(flow, fence=fence)

    assert files(shared.outbox) == []
    assert shared.journal.cursor("p", flow.flow) is None
    [run] = shared.journal.export_runs(partner="p", flow=flow.flow, limit=1)
    assert run.state == "failed" and "another node leads it now" in (run.error or "")
    assert shared.journal.pending_export_deliveries("p", flow.flow) == []


@pytest.mark.postgres
def test_a_run_whose_node_still_holds_the_lease_in_the_journal_delivers(shared: Gateway) -> None:
    flow = shared.flow("webshop-articles.csv.j2", "articles.list")
    a = leading(shared.journal, flow, times=LONG)

    result = shared.run(flow, fence=run_fence(a, flow))

    assert result.state == "delivered" and result.records > 0
    assert files(shared.outbox) == ["webshop-articles_0001.csv"]
    assert shared.journal.cursor("p", flow.flow) is not None


@pytest.mark.postgres
def test_a_per_record_run_whose_lease_was_taken_over_in_the_journal_delivers_no_file(
    shared: Gateway, postgres_url: str
) -> None:
    flow = states_flow()
    a = leading(shared.journal, flow)
    fence = run_fence(a, flow)
    taken_over(postgres_url, flow, a)

    with pytest.raises(LeadershipLost, match="another node leads it now"):
        shared.run(flow, fence=fence)

    assert files(shared.outbox) == []
    assert shared.journal.cursor(flow.partner, flow.flow) is None
    assert shared.journal.pending_export_deliveries(flow.partner, flow.flow) == []
