"""``alerts:``: who is told when something fails (webhooks, e-mail through SMTP), and how
alerts are grouped into digests."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from edigw.config.base import _Model
from edigw.config.values import Duration, ExistingFile, Name

DEFAULT_ALERT_WINDOW = 60.0
DEFAULT_ALERT_RETRY_WAIT = 3600.0
DEFAULT_ALERT_BUDGET_AFTER = 300.0
DEFAULT_ALERT_ATTEMPTS = 5
DEFAULT_ALERT_TIMEOUT = 10.0
DEFAULT_SMTP_PORT = 587

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_MAIL_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _mail_address(value: str) -> str:
    if not _MAIL_ADDRESS.match(value):
        msg = f"not an e-mail address: {value!r}"
        raise ValueError(msg)
    return value


MailAddress = Annotated[str, AfterValidator(_mail_address)]


class WebhookAlert(_Model):
    """One webhook that receives alerts as a JSON POST."""

    url: SecretStr = Field(
        description="The webhook URL (http:// or https://); it usually holds a secret: write "
        "${SLACK_WEBHOOK_URL}, never the URL itself."
    )
    format: Literal["json", "slack", "teams"] = Field(
        default="json",
        description="json: edigw's own payload (each alert with flow, file, reason and the "
        '`edigw show` command); slack: a Slack incoming webhook ({"text": ...}); teams: a '
        "Microsoft Teams incoming webhook or workflow (an Adaptive Card).",
    )
    send_timeout: Duration = Field(
        default=DEFAULT_ALERT_TIMEOUT, gt=0, description="Seconds one POST may take."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not re.match(r"^https?://[^/\s]+", value.get_secret_value()):
            msg = "must be an http:// or https:// URL"
            raise ValueError(msg)
        return value


class EmailAlerts(_Model):
    """Alerts by e-mail, through an SMTP server."""

    host: str = Field(min_length=1, description="SMTP server name or address.")
    port: int = Field(
        default=DEFAULT_SMTP_PORT,
        ge=1,
        le=65535,
        description="TCP port: 587 for STARTTLS (submission), 465 for implicit TLS.",
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade the connection (required, never falls back to clear "
        "text); tls: TLS from the first byte (port 465); none: clear text, only allowed "
        "without a password or to a server on this machine.",
    )
    username: str | None = Field(default=None, description="Login name, when the server asks.")
    password: SecretStr | None = Field(
        default=None, description="Password, from the environment: ${EDIGW_SMTP_PASSWORD}."
    )
    ca_file: ExistingFile | None = Field(
        default=None,
        description="PEM file of the certificate authorities to trust for this server (an "
        "internal relay with its own CA); default: the system's.",
    )
    sender: MailAddress = Field(description="The From address, e.g. edigw@example.fr.")
    recipients: list[MailAddress] = Field(
        min_length=1, description="Who receives the alerts (one address or more)."
    )
    send_timeout: Duration = Field(
        default=DEFAULT_ALERT_TIMEOUT, gt=0, description="Seconds one SMTP conversation may take."
    )

    @model_validator(mode="after")
    def _login_safe(self) -> EmailAlerts:
        if (self.username is None) != (self.password is None):
            msg = "username and password go together (both or neither)"
            raise ValueError(msg)
        if (
            self.security == "none"
            and self.password is not None
            and self.host not in _LOOPBACK_HOSTS
        ):
            msg = (
                "security: none would send the SMTP password in clear text to "
                f"{self.host}; use starttls or tls"
            )
            raise ValueError(msg)
        return self


class AlertSettings(_Model):
    """Who is told when something fails, and how alerts are grouped."""

    window: Duration = Field(
        default=DEFAULT_ALERT_WINDOW,
        gt=0,
        description="Grouping window: the first alert after a quiet period goes out at once, "
        "the others of the window as one digest when it closes (e.g. 1m).",
    )
    retry_wait_after: Duration = Field(
        default=DEFAULT_ALERT_RETRY_WAIT,
        gt=0,
        description="Alert when a document has waited in retry longer than this (e.g. 1h).",
    )
    budget_exhausted_after: Duration = Field(
        default=DEFAULT_ALERT_BUDGET_AFTER,
        gt=0,
        description="Alert when the Ecolix call budget stays used up this long (e.g. 5m).",
    )
    delivery_attempts: int = Field(
        default=DEFAULT_ALERT_ATTEMPTS,
        ge=1,
        description="Tries of a channel that is down for one message, with pauses that "
        "double (2 s, 4 s, ...); then the message is given up and logged.",
    )
    webhooks: dict[Name, WebhookAlert] = Field(
        default_factory=dict, description="Webhooks that receive alerts, by name."
    )
    email: EmailAlerts | None = Field(default=None, description="Alerts by e-mail (SMTP).")

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks) or self.email is not None
