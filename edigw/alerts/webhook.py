"""Alerts as a JSON POST: edigw's own format, or what Slack and Teams incoming webhooks take.

* ``json``: ``{"source": "edigw", "subject", "text", "digest", "alerts": [...], ...}``, each
  alert with its kind, flow, file, reference, reason and ``show`` command: for a program.
* ``slack``: ``{"text": ...}`` in Slack's mrkdwn, as a Slack incoming webhook takes it.
* ``teams``: a message with one Adaptive Card attachment, as Microsoft Teams incoming
  webhooks (and Power Automate "post to a channel when a webhook request is received"
  workflows) take it.

httpx errors and refusals (any status but 2xx) become ``AlertDeliveryError`` here.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from edigw.alerts.digest import Message
from edigw.alerts.events import AlertDeliveryError

WebhookFormat = Literal["json", "slack", "teams"]
DEFAULT_TIMEOUT = 10.0
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def json_payload(message: Message, *, node: str = "") -> dict[str, Any]:
    return {
        "source": "edigw",
        "node": node,
        "subject": message.subject,
        "text": message.text(),
        "digest": message.digest,
        "critical": message.critical,
        "count": len(message.alerts),
        "alerts": [alert.to_dict() for alert in message.listed],
        "more": message.more,
        "duplicates": message.duplicates,
    }


def slack_payload(message: Message) -> dict[str, Any]:
    """Slack mrkdwn: bold subject, then the body with commands in code spans."""
    body = [_code_spans(line) for line in message.lines()]
    return {"text": "\n".join([f"*{_slack_escape(message.subject)}*", *body])}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_spans(line: str) -> str:
    line = _slack_escape(line)
    marker = "look closer: "
    if marker in line and "`" not in line:
        head, _, command = line.partition(marker)
        return f"{head}{marker}`{command}`"
    return line


def teams_payload(message: Message) -> dict[str, Any]:
    """An Adaptive Card (version 1.4): the subject as a heading, one text block per line."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.subject,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Attention" if message.critical else "Warning",
        }
    ]
    body += [
        {"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"}
        for line in message.lines()
    ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": ADAPTIVE_CARD_SCHEMA,
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def payload(message: Message, fmt: WebhookFormat, *, node: str = "") -> dict[str, Any]:
    if fmt == "slack":
        return slack_payload(message)
    if fmt == "teams":
        return teams_payload(message)
    return json_payload(message, node=node)


class WebhookChannel:
    """POSTs each message to one URL in one format."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        fmt: WebhookFormat = "json",
        timeout: float = DEFAULT_TIMEOUT,
        node: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = f"webhook {name}"
        self._url = url
        self._fmt: WebhookFormat = fmt
        self._node = node
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def send(self, message: Message) -> None:
        try:
            response = self._client.post(
                self._url, json=payload(message, self._fmt, node=self._node)
            )
        except httpx.HTTPError as exc:
            msg = f"{self.name}: {type(exc).__name__}: {exc}"
            raise AlertDeliveryError(msg) from exc
        if not response.is_success:
            msg = f"{self.name}: answered {response.status_code} {response.text[:200]}"
            raise AlertDeliveryError(msg)

    def close(self) -> None:
        self._client.close()
