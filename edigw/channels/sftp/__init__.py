"""SFTP: poll partners' remote folders and deliver files to them (paramiko).

A package, one module for each thing it keeps:

- ``settings``: an endpoint's settings (``SftpEndpointSettings``, ``SftpTimeouts``,
  ``Backoff``) and the inbound and outbound flows' channel options.
- ``connection``: connecting (host key checked strictly against the endpoint's
  ``known_hosts``, then authentication) and ``SftpConnections``, one connection per
  endpoint, reused across polls and shared by the flows using that endpoint; a broken one
  is re-opened on next use, repeated failures back off.
- ``failures``: which paramiko and socket exceptions mean what, and how they read.
- ``remote``: operations on a session that paramiko lacks (a rename that never overwrites,
  small files fetched several at a time).
- ``listing``: a remote folder listed, names that are not UTF-8 included, and an inbound
  flow's folder walked.
- ``staging``: the local folder an inbound flow writes the downloads it does not keep in
  memory.
- ``inbound``: ``SftpInboundChannel``: lists, applies readiness, claims, fetches each ready
  file (size checked against the listing, sha256 computed on the way).
- ``after_actions``: what is done to an inbound file's remote source once its outcome is
  known (moved, deleted, moved to the error folder with a report).
- ``outbound``: ``SftpOutboundChannel``: uploads under a temp name, renames into place.
- ``check`` and ``host_key``: ``edigw sftp check`` and ``edigw sftp trust``.

Every paramiko or socket exception is translated into ``ChannelError``/``HostKeyError`` in
this package and never leaks further.

The names below are the public ones of the single module this package once was, so that
``from edigw.channels.sftp import ...`` keeps working; edigw's own code imports each name
from the module that keeps it.
"""

from __future__ import annotations

from edigw.channels.sftp.check import CheckStep, check_endpoint
from edigw.channels.sftp.connection import (
    CONNECT_ATTEMPTS,
    SftpConnection,
    SftpConnections,
    connect,
    open_transport,
)
from edigw.channels.sftp.host_key import PresentedKey, presented_key, server_host_key, trust
from edigw.channels.sftp.inbound import SftpInboundChannel
from edigw.channels.sftp.outbound import SftpOutboundChannel
from edigw.channels.sftp.settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE,
    DEFAULT_OPERATION_TIMEOUT,
    Backoff,
    SftpEndpointSettings,
    SftpInboundSettings,
    SftpOutboundSettings,
    SftpTimeouts,
    endpoint_settings,
)

__all__ = [
    "CONNECT_ATTEMPTS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_KEEPALIVE",
    "DEFAULT_OPERATION_TIMEOUT",
    "Backoff",
    "CheckStep",
    "PresentedKey",
    "SftpConnection",
    "SftpConnections",
    "SftpEndpointSettings",
    "SftpInboundChannel",
    "SftpInboundSettings",
    "SftpOutboundChannel",
    "SftpOutboundSettings",
    "SftpTimeouts",
    "check_endpoint",
    "connect",
    "endpoint_settings",
    "open_transport",
    "presented_key",
    "server_host_key",
    "trust",
]
