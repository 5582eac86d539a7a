"""A sender claims its next document in the journal transaction that records its last one done,
and gives a document so claimed back when it cannot send it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from edigw.ecolix.client import EcolixClient
from edigw.journal import DocumentRow
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.poller import FlowPoller
from edigw.pipeline.senders import sender_loop
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import files_final, wait_until, webshop_orders_workspace
from tests.support.orderfiles import write_order_files

FLOW = "webshop/orders"
PREFIX = "AHEAD"


def take_in(parts: Parts, signals: Signals) -> None:
    poller = FlowPoller(parts.inbound[FLOW], parts, signals, clock=utc_now)
    wait_until(lambda: bool(poller.poll_once()), what="the file taken in")


def sandbox_refs(sandbox: Any) -> list[str]:
    """The orders the gateway created (the sandbox's own seeded orders left out)."""
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        refs = (str(o.get("external_reference", "")) for o in client.iter_list("orders.list"))
        return sorted(ref for ref in refs if ref.startswith(PREFIX))


def test_a_sender_claims_each_next_document_with_the_last_ones_done(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = webshop_orders_workspace(tmp_path / "gw", ecolix)
    numbers = write_order_files(
        ws.inbox("webshop", "orders"), files=1, orders_per_file=4, prefix=PREFIX
    )
    with open_parts(ws.load()) as parts:
        signals = Signals()
        take_in(parts, signals)
        found: list[DocumentRow] = []
        real_claim = parts.journal.claim_for_sending

        def claim(**kwargs: Any) -> DocumentRow | None:
            doc = real_claim(**kwargs)
            if doc is not None:
                found.append(doc)
            return doc

        parts.journal.claim_for_sending = claim  # type: ignore[method-assign]
        sender = threading.Thread(
            target=sender_loop, args=(parts, signals), kwargs={"clock": utc_now}
        )
        sender.start()
        try:
            wait_until(files_final(parts, 1), what="the file sent")
        finally:
            signals.stop.set()
            signals.work.announce()
            sender.join(timeout=30)
        [row] = parts.journal.files()
        states = [d.state for d in parts.journal.documents_of(row.id)]
    assert states == ["done"] * 4
    assert len(found) == 1, "the three others were claimed with a done"
    assert sandbox_refs(ecolix) == sorted(numbers)


def test_a_document_claimed_ahead_is_given_back_when_the_gateway_stops_before_sending_it(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = webshop_orders_workspace(tmp_path / "gw", ecolix)
    first_order, _ = write_order_files(
        ws.inbox("webshop", "orders"), files=1, orders_per_file=2, prefix=PREFIX
    )
    with open_parts(ws.load()) as parts:
        signals = Signals()
        take_in(parts, signals)
        real_write = parts.client.write

        def write_then_stop(*args: Any, **kwargs: Any) -> Any:
            answer = real_write(*args, **kwargs)
            signals.stop.set()  # the gateway is told to stop while the call is out
            return answer

        parts.client.write = write_then_stop  # type: ignore[method-assign]
        sender_loop(parts, signals, clock=utc_now)  # returns once stopped
        [row] = parts.journal.files()
        first, second = parts.journal.documents_of(row.id)
        last_event = parts.journal.events_of_document(second.id)[-1]
    assert first.state == "done"
    assert (second.state, second.attempts, second.claimed_by) == ("pending", 0, None)
    assert last_event.detail == "claimed ahead, given back: the gateway stopped before sending it"
    assert sandbox_refs(ecolix) == [first_order]
