"""Alert channels and the dispatcher against a real HTTP receiver and a real SMTP server."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import pytest

from edigw.alerts.digest import Message
from edigw.alerts.dispatcher import AlertDispatcher, DeliveryPolicy
from edigw.alerts.email import EmailChannel
from edigw.alerts.events import AlertDeliveryError, file_failed, reload_failed
from edigw.alerts.webhook import WebhookChannel
from tests.fixtures.gateway import wait_until
from tests.support.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    WebhookReceiver,
    webhook_receiver,
)

AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
FAST = DeliveryPolicy(attempts=4, first_delay=0.05, max_delay=0.2)


def bad_file(n: int = 12) -> Message:
    alert = file_failed(
        ref=f"F-{n}",
        flow="webshop/orders",
        file=f"orders-{n}.csv",
        state="failed",
        reason="line 3 Customer: unknown customer NOBODY-1",
        at=AT,
    )
    return Message((alert,))


def mail_channel(smtp: SmtpServer, **options: object) -> EmailChannel:
    settings: dict[str, object] = {
        "host": smtp.host,
        "port": smtp.port,
        "sender": "edigw@example.fr",
        "recipients": ["ops@example.fr"],
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "tls_context": ssl.create_default_context(cafile=str(smtp.ca_file)),
    }
    settings.update(options)
    return EmailChannel(**settings)  # type: ignore[arg-type]


def test_json_webhook_carries_flow_file_reason_and_show_command(receiver: WebhookReceiver) -> None:
    WebhookChannel("ops", receiver.url, fmt="json").send(bad_file())
    [body] = receiver.received()
    assert body["subject"] == "F-12 orders-12.csv failed in webshop/orders"
    [alert] = body["alerts"]
    assert alert["flow"] == "webshop/orders"
    assert alert["file"] == "orders-12.csv"
    assert alert["reason"] == "line 3 Customer: unknown customer NOBODY-1"
    assert alert["show"] == "edigw show F-12"


def test_slack_webhook_gets_text_with_the_command_as_code(receiver: WebhookReceiver) -> None:
    WebhookChannel("slack", receiver.url, fmt="slack").send(bad_file())
    [body] = receiver.received()
    assert set(body) == {"text"}
    assert body["text"].splitlines() == [
        "*F-12 orders-12.csv failed in webshop/orders*",
        "line 3 Customer: unknown customer NOBODY-1",
        "look closer: `edigw show F-12`",
    ]


def test_teams_webhook_gets_an_adaptive_card(receiver: WebhookReceiver) -> None:
    WebhookChannel("teams", receiver.url, fmt="teams").send(bad_file())
    [body] = receiver.received()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    texts = [block["text"] for block in card["body"]]
    assert texts[0] == "F-12 orders-12.csv failed in webshop/orders"
    assert "look closer: edigw show F-12" in texts


def test_a_webhook_answering_an_error_is_a_delivery_error(receiver: WebhookReceiver) -> None:
    receiver.fail_first = 1
    with pytest.raises(AlertDeliveryError, match="answered 503"):
        WebhookChannel("ops", receiver.url).send(bad_file())


def test_mail_goes_through_starttls_and_login(smtp: SmtpServer) -> None:
    mail_channel(smtp).send(bad_file())
    [mail] = smtp.received()
    assert smtp.logins == [SMTP_USER]
    assert mail["Subject"] == "[edigw] F-12 orders-12.csv failed in webshop/orders"
    assert mail["To"] == "ops@example.fr"
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "look closer: edigw show F-12" in body


def test_a_wrong_smtp_password_is_a_delivery_error(smtp: SmtpServer) -> None:
    with pytest.raises(AlertDeliveryError, match="SMTPAuthenticationError"):
        mail_channel(smtp, password="wrong").send(bad_file())
    assert smtp.received() == []


def test_a_certificate_that_is_not_trusted_is_refused(smtp: SmtpServer) -> None:
    with pytest.raises(AlertDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        mail_channel(smtp, tls_context=ssl.create_default_context()).send(bad_file())


def test_without_starttls_the_password_is_never_sent(smtp: SmtpServer) -> None:
    with pytest.raises(AlertDeliveryError):
        mail_channel(smtp, security="none").send(bad_file())
    assert smtp.logins == [] and smtp.received() == []


def test_a_webhook_that_fails_is_retried_until_it_takes_the_message() -> None:
    with webhook_receiver(fail_first=2) as receiver:
        dispatcher = AlertDispatcher([WebhookChannel("ops", receiver.url)], policy=FAST)
        dispatcher.start()
        dispatcher.notify(bad_file().alerts[0])
        wait_until(lambda: len(receiver.received()) == 1, what="the third attempt")
        dispatcher.close()
        assert receiver.requests == 3


def test_a_hung_webhook_blocks_neither_notify_nor_the_mail(smtp: SmtpServer) -> None:
    with webhook_receiver(open_gate=False) as receiver:
        dispatcher = AlertDispatcher(
            [WebhookChannel("ops", receiver.url), mail_channel(smtp)], policy=FAST
        )
        dispatcher.start()
        dispatcher.notify(bad_file().alerts[0])
        wait_until(lambda: len(smtp.received()) == 1, what="the mail, while the webhook hangs")
        for n in range(2000):  # far more than the queue holds: notify drops, never waits
            dispatcher.notify(bad_file(n).alerts[0])
        assert receiver.received() == []
        receiver.gate.set()
        wait_until(lambda: len(receiver.received()) == 1, what="the webhook, once it answers")
        dispatcher.close()
    [first, digest] = smtp.received()
    assert "failed" in first["Subject"]
    assert digest["Subject"].startswith("[edigw] ")


def test_reload_failures_can_be_told_through_the_same_dispatcher(receiver: WebhookReceiver) -> None:
    dispatcher = AlertDispatcher([WebhookChannel("ops", receiver.url)], policy=FAST)
    dispatcher.start()
    dispatcher.notify(
        reload_failed(what="mappings/orders.yaml", reason="line 4: unknown key 'sku'", at=AT)
    )
    dispatcher.close()
    [body] = receiver.received()
    assert body["alerts"][0]["kind"] == "reload_failed"
    assert body["subject"].startswith("reload of mappings/orders.yaml failed")
