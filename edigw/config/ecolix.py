"""``ecolix:`` and ``retry:``: where Ecolix is, the token, the call budget agreed with the
vendor and the timeouts; and the durable retries of documents after its temporary errors."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from edigw.config.base import _Model
from edigw.config.values import Duration, _check_delays_ordered

DEFAULT_CALLS_PER_MINUTE = 600
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRY_MAX_ATTEMPTS = 8
DEFAULT_RETRY_FIRST_DELAY = 30.0
DEFAULT_RETRY_MAX_DELAY = 3600.0


class EcolixTimeouts(_Model):
    """HTTP timeouts towards Ecolix."""

    connect: Duration = Field(
        default=DEFAULT_CONNECT_TIMEOUT, description="Seconds to establish a connection."
    )
    read: Duration = Field(
        default=DEFAULT_READ_TIMEOUT, description="Seconds to wait for Ecolix to answer."
    )


class EcolixSettings(_Model):
    """Where Ecolix is and how hard edigw may call it."""

    base_url: str = Field(
        description="Base URL of the Ecolix REST API, e.g. https://erp.example.fr/api/v1."
    )
    token: SecretStr = Field(
        description="Bearer token for the API; write ${ECOLIX_TOKEN}, never the token itself."
    )
    calls_per_minute: int = Field(
        default=DEFAULT_CALLS_PER_MINUTE,
        gt=0,
        description="Calls per rolling minute agreed with the vendor; edigw never exceeds it (one "
        "budget for all the nodes of a PostgreSQL journal).",
    )
    timeouts: EcolixTimeouts = Field(
        default_factory=EcolixTimeouts, description="Connect and read timeouts, in seconds."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            msg = f"must be an http:// or https:// URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")


class RetryPolicy(_Model):
    """Durable retries of documents after temporary Ecolix errors (network, 429, 5xx)."""

    max_attempts: int = Field(
        default=DEFAULT_RETRY_MAX_ATTEMPTS,
        ge=1,
        description="Attempts before a document fails for good.",
    )
    first_delay: Duration = Field(
        default=DEFAULT_RETRY_FIRST_DELAY, description="Delay before the second attempt."
    )
    max_delay: Duration = Field(
        default=DEFAULT_RETRY_MAX_DELAY,
        description="Upper bound of the exponentially growing delay.",
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> RetryPolicy:
        _check_delays_ordered(self.first_delay, self.max_delay)
        return self
