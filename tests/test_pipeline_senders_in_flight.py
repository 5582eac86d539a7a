"""``--senders auto``: when Ecolix answers slowly, more documents are in flight at once.

The gateway runs against the sandbox answering every call late; a counter around the
client's writes tells how many calls were in flight at once (no timing is asserted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edigw.pipeline.assembly import open_parts
from edigw.pipeline.concurrency import MIN_IN_FLIGHT, Senders
from edigw.pipeline.runtime import Gateway
from tests.fixtures.gateway import files_final, wait_until, webshop_orders_workspace
from tests.support.inflight import InFlight
from tests.support.orderfiles import write_order_files

FILES = 24


@pytest.mark.parametrize(
    ("senders", "most"),
    [
        pytest.param("auto", None, id="auto: beyond the floor when answers are slow"),
        pytest.param(2, 2, id="a fixed number: never more"),
    ],
)
def test_slow_answers_have_more_documents_in_flight_with_auto(
    tmp_path: Path, sandbox_factory: Any, senders: Senders, most: int | None
) -> None:
    slow = sandbox_factory(latency="200ms")
    workspace = webshop_orders_workspace(
        tmp_path / "gw", slow, readiness={"mode": "min_age", "seconds": 0}
    )
    write_order_files(workspace.inbox("webshop", "orders"), files=FILES, orders_per_file=1)
    with open_parts(workspace.load()) as parts:
        counter = InFlight(parts.client.write)
        parts.client.write = counter  # type: ignore[method-assign]
        gateway = Gateway(parts, senders=senders)
        gateway.start()
        try:
            wait_until(files_final(parts, FILES), timeout=120, what="every file final")
            limit = gateway.signals.in_flight.limit
        finally:
            gateway.stop()
            gateway.join(timeout=30)
        states = {row.state for row in parts.journal.files(limit=1000)}
    assert states == {"done"}
    if most is None:
        assert counter.most > MIN_IN_FLIGHT, (counter.most, limit)
        assert limit > MIN_IN_FLIGHT
    else:
        assert 1 <= counter.most <= most
        assert limit == most
