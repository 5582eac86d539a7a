"""A poller takes a file in only while its node leads the flow, and only once the journal
holds its claim on that version of the file: a node that lost the flow never touches it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from edigw.pipeline.assembly import open_parts
from edigw.pipeline.poller import FlowPoller
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import inbound_flow, write_workspace
from tests.support.orderfiles import write_order_files

pytestmark = pytest.mark.postgres

FLOW = "webshop/orders"


class Leads:
    """This node's leadership as a stub: leads ``FLOW`` under ``epoch`` until ``lost``."""

    shared = True

    def __init__(self, epoch: int | None) -> None:
        self.current = epoch
        self.lost_flows: list[str] = []

    def holds(self, flow: str) -> bool:
        return self.current is not None

    def epoch(self, flow: str) -> int | None:
        return self.current

    def lost(self, flow: str) -> None:
        self.lost_flows.append(flow)
        self.current = None


def poller_on(tmp_path: Path, sandbox: Any, postgres_url: str) -> Any:
    """A workspace on the PostgreSQL journal with one order file in its inbox."""
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
        journal=postgres_url,
    )
    write_order_files(ws.inbox("webshop", "orders"), files=1, orders_per_file=1, prefix="CLM")
    return ws


def looked(poller: FlowPoller, leader: Leads) -> list[Any]:
    """What the poller took in once the file was ready (or the flow lost)."""
    taken: list[Any] = []
    for _ in range(20):  # the stable readiness needs a few looks
        taken += poller.poll_once()
        if taken or leader.lost_flows:
            break
        time.sleep(0.1)
    return taken


def poll(ws: Any, leader: Leads) -> tuple[list[Any], list[Any]]:
    """Poll once (after the file is ready); what was taken in, and the journal's files."""
    with open_parts(ws.load()) as parts:
        parts.node = "this:1"
        poller = FlowPoller(parts.inbound[FLOW], parts, Signals(leader=leader), clock=utc_now)
        return looked(poller, leader), parts.journal.files()


def test_a_node_that_does_not_lead_the_flow_does_not_poll_it(
    tmp_path: Path, sandbox: Any, postgres_url: str
) -> None:
    leader = Leads(epoch=None)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    taken, rows = poll(ws, leader)
    assert (taken, rows) == ([], [])


def test_the_leader_claims_the_file_then_takes_it_in(
    tmp_path: Path, sandbox: Any, postgres_url: str
) -> None:
    leader = Leads(epoch=1)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    taken, rows = poll(ws, leader)
    assert len(taken) == len(rows) == 1
    with ws.journal() as journal:  # the claim is this node's: another node of epoch 1 loses
        [source] = ws.inbox("webshop", "orders").glob("*.csv")
        st = source.stat()
        assert not journal.claim_file(
            flow=FLOW, path=str(source), size=st.st_size, mtime=st.st_mtime, node="other:2", epoch=1
        )


def test_a_file_a_later_leader_claimed_is_left_alone_and_the_flow_given_up(
    tmp_path: Path, sandbox: Any, postgres_url: str
) -> None:
    leader = Leads(epoch=1)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    [source] = ws.inbox("webshop", "orders").glob("*.csv")
    st = source.stat()
    with ws.journal() as journal:
        assert journal.claim_file(
            flow=FLOW, path=str(source), size=st.st_size, mtime=st.st_mtime, node="new:2", epoch=2
        )
    taken, rows = poll(ws, leader)
    assert (taken, rows) == ([], [])
    assert leader.lost_flows == [FLOW]
    assert source.exists()


def test_a_node_that_loses_the_flow_while_making_the_archive_durable_leaves_the_source(
    tmp_path: Path, sandbox: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making the archived copy durable (fsyncs) may take long on a busy disk: a node whose
    lease ran out meanwhile must not move the source the new leader has taken in by now."""
    from edigw.pipeline.mover import settle
    from edigw.pipeline.senders import send_due

    leader = Leads(epoch=1)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    [source] = ws.inbox("webshop", "orders").glob("*.csv")
    with open_parts(ws.load()) as parts:
        parts.node = "this:1"
        signals = Signals(leader=leader)
        poller = FlowPoller(parts.inbound[FLOW], parts, signals, clock=utc_now)
        [ingested] = looked(poller, leader)
        while send_due(parts, signals, clock=utc_now) is not None:
            pass
        real = parts.archive.make_durable

        def slow_fsync(sha256: str) -> None:
            leader.lost(FLOW)  # the lease ran out while the disk was busy
            real(sha256)

        monkeypatch.setattr(parts.archive, "make_durable", slow_fsync)
        settle([poller], ingested.file_id)
        actions = parts.journal.channel_actions(file_id=ingested.file_id)
    assert source.exists(), "moved by a node that no longer leads the flow"
    assert actions == []
    assert poller.held_ids() == []


def poll_counting_claims(
    ws: Any, leader: Leads, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], list[Any], list[int]]:
    """``poll``, with each claim statement counted: its number of source versions."""
    statements: list[int] = []
    with open_parts(ws.load()) as parts:
        parts.node = "this:1"
        journal = parts.journal
        claim_files = journal.claim_files

        def counted(**kwargs: Any) -> Any:
            statements.append(len(kwargs["versions"]))
            return claim_files(**kwargs)

        def one_by_one(**_kwargs: Any) -> bool:
            statements.append(1)
            raise AssertionError("a file claimed on its own")

        monkeypatch.setattr(journal, "claim_files", counted)
        monkeypatch.setattr(journal, "claim_file", one_by_one)
        poller = FlowPoller(parts.inbound[FLOW], parts, Signals(leader=leader), clock=utc_now)
        return looked(poller, leader), journal.files(), statements


def test_a_polls_files_are_claimed_in_one_statement_then_taken_in(
    tmp_path: Path, sandbox: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = Leads(epoch=1)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    write_order_files(ws.inbox("webshop", "orders"), files=3, orders_per_file=1, prefix="ALL")

    taken, rows, statements = poll_counting_claims(ws, leader, monkeypatch)

    assert len(taken) == len(rows) == 4
    assert statements == [4]


def test_of_a_polls_files_one_a_later_leader_claimed_is_left_and_the_flow_given_up(
    tmp_path: Path, sandbox: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = Leads(epoch=1)
    ws = poller_on(tmp_path, sandbox, postgres_url)
    write_order_files(ws.inbox("webshop", "orders"), files=2, orders_per_file=1, prefix="TWO")
    [theirs, *_] = sorted(ws.inbox("webshop", "orders").glob("orders-TWO-*.csv"))
    st = theirs.stat()
    with ws.journal() as journal:
        assert journal.claim_file(
            flow=FLOW, path=str(theirs), size=st.st_size, mtime=st.st_mtime, node="new:2", epoch=2
        )

    taken, rows, statements = poll_counting_claims(ws, leader, monkeypatch)

    assert statements == [3]
    assert leader.lost_flows == [FLOW]
    assert str(theirs) not in {row.source_path for row in rows}
    assert theirs.exists()
    assert len(taken) == len(rows) <= 2
