"""A command that sends a file itself (``edigw replay``, ``edigw process``) while a gateway
runs: it reports the file's outcome, not a moment of the gateway's work on it.

The gateway's sender is played by the test: it claims the document under another node's
name, then sends it, while ``drain_file`` runs in a thread against a real sandbox.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.inbound import ingest
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals, utc_now
from edigw.pipeline.stories import drain_file
from tests.fixtures.gateway import webshop_orders_workspace
from tests.support.orderfiles import write_order_files

OTHER_SENDER = "gateway-host:4242"


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


def _taken_in(parts: Parts, folder: Path) -> int:
    (path,) = sorted(folder.glob("*.csv"))
    return ingest(
        path,
        original_name=path.name,
        flow=parts.inbound["webshop/orders"].context,
        journal=parts.journal,
        archive=parts.archive,
        now=utc_now(),
    ).file_id


def _draining(parts: Parts, file_id: int) -> threading.Thread:
    thread = threading.Thread(
        target=drain_file, args=(parts, file_id), kwargs={"clock": utc_now, "max_wait": 60.0}
    )
    thread.start()
    return thread


def test_a_document_another_sender_holds_is_waited_for(tmp_path: Path, ecolix: Any) -> None:
    ws = webshop_orders_workspace(tmp_path / "gw", ecolix)
    folder = ws.inbox("webshop", "orders")
    write_order_files(folder, files=1, orders_per_file=1, prefix="HELD")
    with open_parts(ws.load()) as parts:
        file_id = _taken_in(parts, folder)
        held = parts.journal.claim_for_sending(
            now=utc_now(), node=OTHER_SENDER, lease_seconds=60, file_id=file_id
        )
        assert held is not None
        thread = _draining(parts, file_id)
        thread.join(timeout=1.0)
        assert thread.is_alive(), "drain_file stopped while another sender held the document"
        assert parts.journal.file(file_id).state == "parsed"

        send_due(parts, Signals(), clock=utc_now, held=held)
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert parts.journal.file(file_id).state == "done"


def test_documents_waiting_for_a_retry_are_not_waited_for(tmp_path: Path, ecolix: Any) -> None:
    ws = webshop_orders_workspace(
        tmp_path / "gw", ecolix, retry={"max_attempts": 6, "first_delay": 30, "max_delay": 60}
    )
    folder = ws.inbox("webshop", "orders")
    write_order_files(folder, files=1, orders_per_file=1, prefix="LATER")
    ecolix.inject_faults(503, 1000)
    with open_parts(ws.load()) as parts:
        file_id = _taken_in(parts, folder)
        thread = _draining(parts, file_id)
        thread.join(timeout=20)
        assert not thread.is_alive(), "drain_file waited for a retry that is not due"
        (doc,) = parts.journal.documents_of(file_id)
    assert doc.state == "retry_wait"
    assert doc.claimed_by is None or doc.claimed_until is None or doc.claimed_until <= utc_now()
