"""SFTP settings: an endpoint (one partner server) and the channel options of its flows.

Small frozen value objects, their defaults as module constants, built from ``edigw.yaml``
(``endpoint_settings``) or by hand (tests, benchmarks). They sit apart from the code that
uses them so that the connection, both channels and the endpoint check can all name them
without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edigw.channels.base import InboundOptions, UploadSettings

if TYPE_CHECKING:
    from edigw.config import SftpEndpoint as SftpEndpointConfig

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_OPERATION_TIMEOUT = 30.0
DEFAULT_KEEPALIVE = 15


@dataclass(frozen=True, slots=True)
class SftpTimeouts:
    connect: float = DEFAULT_CONNECT_TIMEOUT
    operation: float = DEFAULT_OPERATION_TIMEOUT


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnecting after ``n`` failed connects: first * 2**(n-1), capped."""

    first: float = 1.0
    maximum: float = 300.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.maximum, self.first * 2 ** min(failures - 1, 30)))


@dataclass(frozen=True, slots=True)
class SftpEndpointSettings:
    """One partner server (mirrors ``sftp_endpoints.NAME``; secrets already resolved).

    Authentication: ``key_file`` (ed25519, ECDSA or RSA; passphrase from ``key_passphrase``
    or read from ``key_passphrase_file``) and/or ``password``, tried in that order.
    """

    name: str
    host: str
    known_hosts: Path
    port: int = 22
    username: str = ""
    password: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    key_passphrase_file: Path | None = None
    timeouts: SftpTimeouts = field(default_factory=SftpTimeouts)
    keepalive: int = DEFAULT_KEEPALIVE

    @property
    def address(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SftpInboundSettings(InboundOptions):
    """An SFTP inbound flow's channel options (remote paths; relative folders resolve
    against ``path``)."""

    endpoint: str
    path: str


@dataclass(frozen=True, slots=True)
class SftpOutboundSettings:
    endpoint: str
    path: str
    upload: UploadSettings = field(default_factory=UploadSettings)


def endpoint_settings(name: str, endpoint: SftpEndpointConfig) -> SftpEndpointSettings:
    """Channel settings from the ``sftp_endpoints.NAME`` configuration model."""
    return SftpEndpointSettings(
        name=name,
        host=endpoint.host,
        port=endpoint.port,
        username=endpoint.username,
        password=endpoint.password.get_secret_value() if endpoint.password else None,
        key_file=endpoint.key_file,
        key_passphrase=(
            endpoint.key_passphrase.get_secret_value() if endpoint.key_passphrase else None
        ),
        key_passphrase_file=endpoint.key_passphrase_file,
        known_hosts=endpoint.known_hosts,
        timeouts=SftpTimeouts(
            connect=endpoint.timeouts.connect, operation=endpoint.timeouts.operation
        ),
        keepalive=int(endpoint.keepalive),
    )
