"""Alerts from a running gateway (``serve``) against the sandbox, a real webhook receiver
and a real SMTP server (STARTTLS + AUTH).

The rule under test (``edigw.alerts.digest``): the first alert after a quiet period goes out
at once; the others of its window go out as one digest when the window closes, or when the
gateway stops. So one bad file is one webhook POST and one mail; 100 bad files within the
window are two of each: the first file's alert, then one digest of the 99 others.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.gateway import Workspace, files_final, inbound_flow, wait_until, write_workspace
from tests.support.orderfiles import HEADER, OrderFactory
from tests.support.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    WebhookReceiver,
)
from tests.support.served import Served

FLOW = "webshop/orders"


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


def alerting_workspace(
    root: Path, ecolix: Any, receiver: WebhookReceiver, smtp: SmtpServer, *, window: str
) -> Workspace:
    flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")
    ws = write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )
    data = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    data["alerts"] = {
        "window": window,
        "webhooks": {"ops": {"url": receiver.url, "format": "json"}},
        "email": {
            "host": smtp.host,
            "port": smtp.port,
            "security": "starttls",
            "ca_file": str(smtp.ca_file),
            "username": SMTP_USER,
            "password": "${EDIGW_SMTP_PASSWORD}",
            "sender": "edigw@example.fr",
            "recipients": ["ops@example.fr"],
        },
    }
    ws.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    ws.environ["EDIGW_SMTP_PASSWORD"] = SMTP_PASSWORD
    return ws


def write_bad_files(inbox: Path, count: int) -> None:
    """``count`` files of one order each, for a customer Ecolix does not know."""
    factory = OrderFactory.from_seed()
    rng = random.Random(11)
    for n in range(count):
        rows = [r.replace("CUS-", "NOBODY-") for r in factory.order_rows(f"BAD-{n}", rng)]
        (inbox / f"bad-{n:03d}.csv").write_text(
            "\r\n".join([HEADER, *rows]) + "\r\n", encoding="utf-8-sig"
        )


def test_a_bad_file_sends_exactly_one_webhook_alert_and_one_mail(
    tmp_path: Path, ecolix: Any, receiver: WebhookReceiver, smtp: SmtpServer
) -> None:
    ws = alerting_workspace(tmp_path / "gw", ecolix, receiver, smtp, window="10m")
    write_bad_files(ws.inbox("webshop", "orders"), 1)
    with Served(ws.load()) as served:
        assert served.gateway is not None
        wait_until(files_final(served.gateway.parts, 1), what="the bad file failed")
        wait_until(lambda: len(receiver.received()) == 1, what="the webhook alert")
        wait_until(lambda: len(smtp.received()) == 1, what="the mail")
        [row] = served.gateway.parts.journal.files()
    assert row.state == "failed"
    assert len(receiver.received()) == 1 and len(smtp.received()) == 1  # nothing more at stop

    [body] = receiver.received()
    [alert] = body["alerts"]
    assert alert["kind"] == "file_failed"
    assert alert["flow"] == FLOW
    assert alert["file"] == "bad-000.csv"
    assert "NOBODY-" in alert["reason"]
    assert alert["show"] == f"edigw show F-{row.id}"
    [mail] = smtp.received()
    assert mail["Subject"] == f"[edigw] F-{row.id} bad-000.csv failed in {FLOW}"
    assert f"edigw show F-{row.id}" in mail.get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_a_hundred_bad_files_in_a_window_send_the_first_alert_and_one_digest(
    tmp_path: Path, ecolix: Any, receiver: WebhookReceiver, smtp: SmtpServer
) -> None:
    ws = alerting_workspace(tmp_path / "gw", ecolix, receiver, smtp, window="10m")
    write_bad_files(ws.inbox("webshop", "orders"), 100)
    with Served(ws.load()) as served:
        assert served.gateway is not None
        wait_until(files_final(served.gateway.parts, 100), timeout=120, what="100 files failed")
        wait_until(lambda: len(receiver.received()) == 1, what="the first alert, at once")
    # the window is still open at the stop: what it held goes out then, as one digest
    first, digest = receiver.received()
    assert first["count"] == 1 and not first["digest"]
    assert digest["digest"] and digest["count"] == 99
    assert digest["subject"] == f"99 files failed in {FLOW}"
    assert len(digest["alerts"]) == 10 and digest["more"] == 89
    refs = {first["alerts"][0]["ref"]} | {a["ref"] for a in digest["alerts"]}
    assert len(refs) == 11
    mails = smtp.received()
    assert [m["Subject"] for m in mails][1] == f"[edigw] 99 files failed in {FLOW}"
    assert len(mails) == 2


def test_what_a_window_held_goes_out_when_it_closes_without_waiting_for_a_stop(
    tmp_path: Path, ecolix: Any, receiver: WebhookReceiver, smtp: SmtpServer
) -> None:
    ws = alerting_workspace(tmp_path / "gw", ecolix, receiver, smtp, window="2s")
    inbox = ws.inbox("webshop", "orders")
    with Served(ws.load()) as served:
        assert served.gateway is not None
        write_bad_files(inbox, 1)
        wait_until(lambda: len(receiver.received()) == 1, what="the first alert")
        # the alert may come before the mover put bad-000 away: its name is free only then
        wait_until(lambda: not (inbox / "bad-000.csv").exists(), what="bad-000 disposed of")
        write_bad_files(inbox, 3)  # bad-000 again (a skipped duplicate), bad-001, bad-002
        wait_until(files_final(served.gateway.parts, 4), what="the later files")
        told = lambda: sum(body["count"] for body in receiver.received())  # noqa: E731
        wait_until(lambda: told() == 3, what="the later failures, before any stop")
    counts = [body["count"] for body in receiver.received()]
    assert counts[0] == 1 and sum(counts) == 3
