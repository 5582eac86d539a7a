"""Trusting an endpoint's host key (``edigw sftp trust``): the key the server presents,
how it compares with the pinned one, and pinning it.

Nothing is authenticated here: the host key is fetched after the handshake alone, before
anything checks it, which is why it does not go through ``connect``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paramiko

from edigw.channels.known_hosts import fingerprint, pin_host_key, verify_host_key
from edigw.channels.sftp.connection import open_transport
from edigw.channels.sftp.settings import SftpEndpointSettings
from edigw.errors import HostKeyError


def server_host_key(settings: SftpEndpointSettings) -> paramiko.PKey:
    """The host key the server presents (for ``edigw sftp trust``); nothing is authenticated."""
    transport = open_transport(settings)
    try:
        return transport.get_remote_server_key()
    finally:
        transport.close()


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """The host key a server presents and how it compares with the pinned one."""

    key: paramiko.PKey
    fingerprint: str
    status: Literal["pinned", "unknown", "changed"]
    detail: str = ""

    @property
    def description(self) -> str:
        return f"{self.key.get_name()} {self.fingerprint}"


def presented_key(settings: SftpEndpointSettings) -> PresentedKey:
    """Fetch the server's host key and compare it with ``settings.known_hosts``."""
    key = server_host_key(settings)
    shown = fingerprint(key)
    try:
        verify_host_key(settings.known_hosts, settings.host, settings.port, key)
    except HostKeyError as exc:
        status: Literal["unknown", "changed"] = "changed" if "CHANGED" in str(exc) else "unknown"
        return PresentedKey(key=key, fingerprint=shown, status=status, detail=str(exc))
    return PresentedKey(key=key, fingerprint=shown, status="pinned")


def trust(settings: SftpEndpointSettings, presented: PresentedKey) -> Path:
    """Pin ``presented`` in the endpoint's known_hosts file; returns the file."""
    pin_host_key(settings.known_hosts, settings.host, settings.port, presented.key)
    return settings.known_hosts
