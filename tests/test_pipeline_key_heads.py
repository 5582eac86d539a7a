"""One file's documents in flight at once: distinct business keys go concurrently unless the
flow says ``ordered: true``.

The gateway runs against the sandbox answering every call late, so that calls overlap when
they may; a counter around the client's writes tells how many were in flight at once (no
timing is asserted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edigw.pipeline.assembly import open_parts
from edigw.pipeline.runtime import Gateway
from tests.fixtures.gateway import files_final, wait_until, webshop_orders_workspace
from tests.support.inflight import InFlight
from tests.support.orderfiles import write_order_files

ORDERS = 16
SENDERS = 4


def send_one_file(tmp_path: Path, ecolix: Any, **flow: Any) -> tuple[InFlight, set[str]]:
    """Take one file of ``ORDERS`` orders (distinct numbers) through the gateway; the write
    counter and the file states once it is final."""
    workspace = webshop_orders_workspace(
        tmp_path / "gw", ecolix, readiness={"mode": "min_age", "seconds": 0}, **flow
    )
    write_order_files(workspace.inbox("webshop", "orders"), files=1, orders_per_file=ORDERS)
    with open_parts(workspace.load()) as parts:
        counter = InFlight(parts.client.write)
        parts.client.write = counter  # type: ignore[method-assign]
        gateway = Gateway(parts, senders=SENDERS)
        gateway.start()
        try:
            wait_until(files_final(parts, 1), timeout=120, what="the file final")
        finally:
            gateway.stop()
            gateway.join(timeout=30)
        states = {row.state for row in parts.journal.files(limit=10)}
    return counter, states


def test_the_orders_of_one_file_are_in_flight_at_once(tmp_path: Path, sandbox_factory: Any) -> None:
    slow = sandbox_factory(latency="200ms")

    counter, states = send_one_file(tmp_path, slow)

    assert states == {"done"}
    assert counter.most > 1


def test_an_ordered_flow_sends_one_document_of_a_file_at_a_time(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    slow = sandbox_factory(latency="200ms")

    counter, states = send_one_file(tmp_path, slow, ordered=True)

    assert states == {"done"}
    assert counter.most == 1
