"""An export run that began while its node led the flow delivers nothing once another node
leads it (several nodes on one journal): the mark stays where it was, and the new leader's
run exports the records, so none reaches the partner twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.outbound.export import LeadershipLost
from tests.test_outbound_export import Gateway, _gateway
from tests.test_outbound_per_record import states_flow


@pytest.fixture
def fresh(sandbox_factory: Any, tmp_path: Path) -> Iterator[Gateway]:
    yield from _gateway(sandbox_factory(), tmp_path)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


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
