"""A file that changes after it was read is not moved away with its unread part: it is left in
place, read again as a new reception once ready, and what was already sent is not sent again."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from edigw.ecolix.client import EcolixClient
from edigw.logs import ContextIds
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.mover import settle
from edigw.pipeline.poller import FlowPoller
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import inbound_flow, running_gateway, wait_until, write_workspace
from tests.support.orderfiles import HEADER, OrderFactory

FINAL = ("done", "partially_failed", "failed", "skipped_duplicate")
FIRST = [f"GROW-{n:02d}" for n in range(8)]
REST = [f"GROW-{n:02d}" for n in range(8, 20)]


def order_lines(numbers: list[str], rng: random.Random) -> str:
    factory = OrderFactory.from_seed()
    return "".join(row + "\r\n" for number in numbers for row in factory.order_rows(number, rng))


def orders_workspace(root: Path, ecolix: Any, *, interval: float = 0.3) -> Any:
    flow = inbound_flow(
        "ecommerce-orders-csv.yaml",
        "webshop",
        "orders",
        readiness={"mode": "stable", "interval": interval},
    )
    return write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )


def write_with_a_pause(target: Path, parts: Parts) -> None:
    """8 orders, a pause until the gateway took them, then 12 more into the same file."""
    rng = random.Random(11)
    with target.open("w", encoding="utf-8", newline="") as writer:
        writer.write(HEADER + "\r\n" + order_lines(FIRST, rng))
        writer.flush()
        wait_until(lambda: parts.journal.files() != [], what="the first 8 orders taken")
        writer.write(order_lines(REST, rng))


def files_done(parts: Parts, count: int) -> bool:
    rows = parts.journal.files()
    return len(rows) == count and all(r.state in FINAL for r in rows)


def sandbox_refs(ecolix: Any) -> list[str]:
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        return sorted(
            str(o["external_reference"])
            for o in client.iter_list("orders.list")
            if str(o.get("external_reference", "")).startswith("GROW-")
        )


def check_read_twice_sent_once(parts: Parts, ecolix: Any, inbox: Path) -> None:
    earlier, later = sorted(parts.journal.files(), key=lambda r: r.id)
    earlier_docs = parts.journal.documents_of(earlier.id)
    later_docs = parts.journal.documents_of(later.id)
    [left] = parts.journal.channel_actions(file_id=earlier.id)
    assert (earlier.state, later.state) == ("done", "done")
    assert [d.business_key for d in earlier_docs] == FIRST
    assert [d.business_key for d in later_docs] == FIRST + REST
    assert (left.action, left.ok) == ("kept-changed", True)
    reused = {d.business_key: d for d in later_docs if d.attempts == 0}
    assert sorted(reused) == FIRST, "the 8 orders already sent are not sent again"
    sent_first = {d.business_key: d.ecolix_object_id for d in earlier_docs}
    assert {k: d.ecolix_object_id for k, d in reused.items()} == sent_first
    assert all(d.state == "done" and d.attempts >= 1 for d in later_docs if d.business_key in REST)
    assert sandbox_refs(ecolix) == FIRST + REST, "every order once, none lost"
    assert [p.name for p in (inbox / "done").iterdir()] == ["orders.csv"]


def test_a_writer_that_pauses_past_the_interval_loses_no_order_and_none_is_sent_twice(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = orders_workspace(tmp_path / "gw", ecolix)
    inbox = ws.inbox("webshop", "orders")
    # The first calls fail: the 8 orders read first take a moment to be sent, as they
    # would with a slower Ecolix, and the writer goes on meanwhile.
    ecolix.inject_faults(503, 6)
    with running_gateway(ws) as parts:
        write_with_a_pause(inbox / "orders.csv", parts)
        wait_until(lambda: files_done(parts, 2), timeout=60, what="the grown file read again")
        wait_until(lambda: not (inbox / "orders.csv").exists(), what="its source moved")
        check_read_twice_sent_once(parts, ecolix, inbox)


def test_what_was_sent_is_not_sent_again_when_the_gateway_restarts_between_the_readings(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = orders_workspace(tmp_path / "gw", ecolix, interval=2)
    inbox = ws.inbox("webshop", "orders")
    ecolix.inject_faults(503, 6)
    with running_gateway(ws) as parts:
        write_with_a_pause(inbox / "orders.csv", parts)
        wait_until(
            lambda: [a.action for a in parts.journal.channel_actions()] == ["kept-changed"],
            timeout=60,
            what="the grown source left in place",
        )
    with running_gateway(ws) as parts:
        assert len(parts.journal.files()) == 1, "stopped before reading it again"
        wait_until(lambda: files_done(parts, 2), timeout=60, what="the grown file read again")
        wait_until(lambda: not (inbox / "orders.csv").exists(), what="its source moved")
        check_read_twice_sent_once(parts, ecolix, inbox)


def test_a_source_left_in_place_is_logged_with_its_flow_and_file(
    tmp_path: Path, sandbox_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ecolix = sandbox_factory()
    ws = orders_workspace(tmp_path / "gw", ecolix)
    source = ws.inbox("webshop", "orders") / "orders.csv"
    rng = random.Random(5)
    source.write_text(HEADER + "\r\n" + order_lines(FIRST[:1], rng), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="edigw.runtime")
    caplog.handler.addFilter(ContextIds())
    with open_parts(ws.load()) as parts:
        signals = Signals()
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        wait_until(lambda: bool(poller.poll_once()), what="the file taken in")
        [row] = parts.journal.files()
        with source.open("a", encoding="utf-8", newline="") as writer:
            writer.write(order_lines(FIRST[1:2], rng))
        while send_due(parts, signals, clock=utc_now) is not None:
            pass

        # as the mover thread does it, outside any flow's log context
        assert settle([poller], row.id) == "done"

    [left] = [r for r in caplog.records if "left in place" in r.getMessage()]
    assert (getattr(left, "flow", None), getattr(left, "file", None)) == (
        "webshop/orders",
        f"F-{row.id}",
    )
    assert source.exists()
