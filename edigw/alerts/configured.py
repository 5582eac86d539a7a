"""The alert channels and dispatcher that ``edigw.yaml``'s ``alerts:`` section describes."""

from __future__ import annotations

import ssl

from edigw.alerts.dispatcher import (
    DEFAULT_CLOSE_TIMEOUT,
    AlertChannel,
    AlertDispatcher,
    DeliveryPolicy,
)
from edigw.alerts.email import EmailChannel
from edigw.alerts.events import Alert
from edigw.alerts.watch import Watcher, WatchPolicy
from edigw.alerts.webhook import WebhookChannel
from edigw.config import AlertSettings
from edigw.ecolix.usage import UsageSnapshot
from edigw.journal.store import Journal
from edigw.pipeline.health import HealthSnapshot


def alert_channels(settings: AlertSettings, *, node: str = "") -> list[AlertChannel]:
    """One channel per webhook, plus the e-mail channel when configured."""
    channels: list[AlertChannel] = [
        WebhookChannel(
            name,
            hook.url.get_secret_value(),
            fmt=hook.format,
            timeout=hook.send_timeout,
            node=node,
        )
        for name, hook in settings.webhooks.items()
    ]
    mail = settings.email
    if mail is not None:
        channels.append(
            EmailChannel(
                host=mail.host,
                port=mail.port,
                sender=mail.sender,
                recipients=mail.recipients,
                security=mail.security,
                username=mail.username,
                password=mail.password.get_secret_value() if mail.password else None,
                timeout=mail.send_timeout,
                tls_context=ssl.create_default_context(
                    cafile=str(mail.ca_file) if mail.ca_file else None
                ),
                node=node,
            )
        )
    return channels


def alert_dispatcher(settings: AlertSettings, *, node: str = "") -> AlertDispatcher | None:
    """The dispatcher of the configured channels (not started); ``None`` without any."""
    if not settings.enabled:
        return None
    return AlertDispatcher(
        alert_channels(settings, node=node),
        window=settings.window,
        policy=DeliveryPolicy(attempts=settings.delivery_attempts),
    )


def watch_policy(settings: AlertSettings) -> WatchPolicy:
    return WatchPolicy(
        retry_wait_after=settings.retry_wait_after,
        budget_exhausted_after=settings.budget_exhausted_after,
    )


class GatewayAlerts:
    """A running gateway's alerting: the watcher and the dispatcher, started and closed
    together. ``notify`` is the sink any part of the gateway may call (the reloader:
    ``signals.alerts.notify(events.reload_failed(...))``)."""

    def __init__(self, settings: AlertSettings, journal: Journal, *, node: str = "") -> None:
        dispatcher = alert_dispatcher(settings, node=node)
        if dispatcher is None:
            msg = "no alert channel is configured (alerts.webhooks, alerts.email)"
            raise ValueError(msg)
        self.dispatcher = dispatcher
        self.watcher = Watcher(journal, dispatcher, policy=watch_policy(settings))

    def start(self) -> None:
        """Start delivering; failures journalled before now are old news."""
        self.watcher.start_from_now()
        self.dispatcher.start()

    def notify(self, alert: Alert) -> None:
        self.dispatcher.notify(alert)

    def close(
        self,
        health: HealthSnapshot | None = None,
        usage: UsageSnapshot | None = None,
        *,
        timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        """A last look (what the final moments journalled, the supervisor giving up), then
        send what is held and stop within ``timeout`` seconds."""
        try:
            self.watcher.check(health, usage)
        finally:
            self.dispatcher.close(timeout)
