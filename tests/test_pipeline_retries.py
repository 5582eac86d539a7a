"""Retries as Ecolix asks for them, and only real calls counted as attempts.

The gateway tests run the real sandbox: its fault injection answers ``503`` with a
``Retry-After``, and stopping it makes every connection refused (Ecolix down).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.retries import RetryPolicy
from edigw.journal import Journal, NewDocument
from edigw.pipeline.dispatch import (
    MAX_RESPONSE_BYTES,
    MAX_SERVER_HINT,
    RetrySchedule,
    send_claimed,
)
from edigw.problems import MAX_MESSAGE
from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.support.orderfiles import write_order_files

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


# -- the schedule --------------------------------------------------------------------------------


def test_a_retry_after_longer_than_max_delay_is_honoured() -> None:
    schedule = RetrySchedule(first_delay=1, max_delay=60)
    assert schedule.delay(1, server_hint=3600) == 3600
    assert schedule.delay(8, server_hint=7200) == 7200


def test_an_absurd_retry_after_parks_for_a_day_at_most() -> None:
    schedule = RetrySchedule(first_delay=1, max_delay=60)
    assert schedule.delay(1, server_hint=10 * 365 * 86_400) == MAX_SERVER_HINT


def test_without_a_hint_the_delay_stays_under_max_delay() -> None:
    schedule = RetrySchedule(first_delay=1, max_delay=60)
    assert all(schedule.delay(n) <= 60 for n in range(1, 40))


# -- through a running gateway and the real sandbox ----------------------------------------------


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


def orders_workspace(root: Path, ecolix: Any, retry: dict[str, Any]) -> Any:
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
        retry=retry,
    )


def only_document(parts: Any) -> Any:
    rows = parts.journal.files()
    docs = [d for r in rows for d in parts.journal.documents_of(r.id)]
    return docs[0] if len(docs) == 1 else None


def test_a_retry_after_longer_than_max_delay_parks_the_document_until_then(
    tmp_path: Path, ecolix: Any
) -> None:
    ws = orders_workspace(
        tmp_path / "gw", ecolix, {"max_attempts": 5, "first_delay": 0.1, "max_delay": 1}
    )
    orders_before = ecolix.counts()["order"]
    ecolix.inject_faults(503, 1, retry_after=600)  # maintenance: come back in 10 minutes
    write_order_files(ws.inbox("webshop", "orders"), files=1, orders_per_file=1, prefix="LATER")
    with running_gateway(ws) as parts:
        wait_until(
            lambda: (d := only_document(parts)) is not None and d.state == "retry_wait",
            what="the document parked",
        )
        time.sleep(2.0)  # twice max_delay: a capped wait would have called again by now
        doc = only_document(parts)
    assert doc.state == "retry_wait"
    assert doc.attempts == 1
    assert doc.next_attempt_at is not None
    assert doc.next_attempt_at - doc.updated_at >= timedelta(seconds=599)
    assert ecolix.counts()["order"] == orders_before


def test_an_outage_longer_than_max_attempts_never_fails_the_document(
    tmp_path: Path, ecolix: Any
) -> None:
    ws = orders_workspace(
        tmp_path / "gw", ecolix, {"max_attempts": 2, "first_delay": 0.1, "max_delay": 0.2}
    )
    ecolix.stop()
    write_order_files(ws.inbox("webshop", "orders"), files=1, orders_per_file=1, prefix="OUT")
    with running_gateway(ws) as parts:
        wait_until(
            lambda: (d := only_document(parts)) is not None and d.not_sent > 2,
            timeout=90,
            what="more tries than max_attempts while Ecolix is down",
        )
        waiting = only_document(parts)
        ecolix.start()
        wait_until(
            lambda: only_document(parts).state == "done", timeout=60, what="the document done"
        )
        done = only_document(parts)
        # the sender settles the file in a transaction of its own, after the document's
        wait_until(files_final(parts, 1), what="the file's outcome")
        [row] = parts.journal.files()
    assert (waiting.state, waiting.attempts) == ("retry_wait", 0)
    assert "not sent" in (waiting.error or "")
    assert done.attempts == 1
    assert done.not_sent >= 3
    assert row.state == "done"


# -- a refusal with thousands of field errors ----------------------------------------------------


def test_a_refusal_listing_thousands_of_field_errors_stores_a_bounded_reason(
    journal_url: str,
) -> None:
    errors = [{"pointer": f"/lines/{i}/article_code", "message": "unknown"} for i in range(9_000)]
    body = {"type": "about:blank", "title": "Unprocessable", "status": 422, "errors": errors}

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=body, headers={"Content-Type": "application/problem+json"})

    client = EcolixClient(
        "https://ecolix.invalid/api/v1",
        "t",
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(attempts=1),
    )
    with Journal.open(journal_url) as journal, client:
        file_id = journal.add_file(
            partner="webshop",
            flow="orders",
            channel="local:x",
            original_name="o.csv",
            source_path="/o.csv",
            size=1,
            sha256="c" * 64,
            archive_path="",
            now=T0,
        )
        doc = NewDocument(1, "O-1", "orders.create", {"number": "O-1"}, "key-O-1")
        [doc_id] = journal.add_documents(file_id, [doc], now=T0)
        claimed = journal.claim_for_sending(now=T0, node="test:1", lease_seconds=60)
        assert claimed is not None
        sent = send_claimed(
            claimed, journal=journal, client=client, schedule=RetrySchedule(), clock=lambda: T0
        )
        stored = journal.document(doc_id)
        full = journal.problems_of(file_id)[doc_id]
    assert sent is not None and sent.state == "failed"
    assert len(sent.detail) <= MAX_MESSAGE + 64
    assert stored.error is not None and len(stored.error) <= MAX_MESSAGE
    assert stored.error.startswith("refused by Ecolix: 422 Unprocessable; /lines/0/article_code")
    assert len(json.dumps(stored.ecolix_response)) <= MAX_RESPONSE_BYTES
    assert "9,000 field errors" in stored.ecolix_response["edigw_note"]
    assert full.total == 9_000
    assert str(full.entries[-1]) == "[/lines/8999/article_code]: unknown"
