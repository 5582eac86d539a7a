"""The composition root: turns a loaded ``edigw.yaml`` into live parts.

Only this module knows both the configuration models and the constructors of channels,
client, journal and mappings, so each of those stays ignorant of the others.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edigw.channels.base import (
    AfterAction,
    InboundChannel,
    JournalSeenFiles,
    OutboundChannel,
    Readiness,
    SeenFiles,
    UploadSettings,
)
from edigw.channels.local import (
    LocalInboundChannel,
    LocalInboundSettings,
    LocalOutboundChannel,
    LocalOutboundSettings,
)
from edigw.channels.sftp import (
    SftpConnections,
    SftpEndpointSettings,
    SftpInboundChannel,
    SftpInboundSettings,
    SftpOutboundChannel,
    SftpOutboundSettings,
    SftpTimeouts,
)
from edigw.config import GatewayConfig, InboundFlow, OutboundFlow
from edigw.ecolix.client import EcolixClient, Timeouts
from edigw.errors import ConfigError, MappingError
from edigw.journal.archive import Archive
from edigw.journal.store import Journal
from edigw.mapping import load_mapping
from edigw.pipeline.dispatch import RetrySchedule
from edigw.pipeline.inbound import FlowContext


@dataclass(slots=True)
class InboundRuntime:
    """One inbound flow, live: its settings, compiled mapping and channel."""

    config: InboundFlow
    context: FlowContext
    channel: InboundChannel | None


@dataclass(slots=True)
class Parts:
    """Everything a running gateway (or a one-shot command) works with."""

    config: GatewayConfig
    journal: Journal
    archive: Archive
    client: EcolixClient
    schedule: RetrySchedule
    sftp: SftpConnections
    inbound: dict[str, InboundRuntime] = field(default_factory=dict)
    node: str = ""


def archive_of(config: GatewayConfig) -> Archive:
    """The gateway's archive of originals: ``data_dir/archive``."""
    return Archive(Path(config.data_dir) / "archive")


def node_name() -> str:
    """This gateway process's name in document leases (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def readiness_of(flow: InboundFlow) -> Readiness:
    r = flow.readiness
    if r.mode == "stable":
        return Readiness(mode="stable", interval=r.interval)
    if r.mode == "min_age":
        return Readiness(mode="min_age", seconds=r.seconds)
    return Readiness(mode="done_file", suffix=r.suffix)


def after_of(flow: InboundFlow) -> AfterAction:
    a = flow.after
    if a.action == "move":
        return AfterAction(action="move", to=a.to)
    return AfterAction(action=a.action)


def inbound_channel(
    flow: InboundFlow, *, seen: SeenFiles, data_dir: Path, sftp: SftpConnections
) -> InboundChannel:
    """The channel object a flow's ``channel:`` entry describes."""
    ch = flow.channel
    common: dict[str, Any] = {
        "include": tuple(flow.include),
        "exclude": tuple(flow.skipped_patterns),
        "readiness": readiness_of(flow),
        "after": after_of(flow),
        "error_folder": flow.error_folder,
        "max_size": flow.max_size,
        "max_files_per_poll": flow.max_files_per_poll,
    }
    if ch.type == "local":
        return LocalInboundChannel(LocalInboundSettings(path=Path(ch.path), **common), seen=seen)
    return SftpInboundChannel(
        SftpInboundSettings(
            endpoint=ch.endpoint,
            path=ch.path,
            recursive=ch.recursive,
            max_depth=ch.max_depth,
            **common,
        ),
        sftp,
        staging_dir=data_dir / "staging",
        seen=seen,
    )


def outbound_channel(flow: OutboundFlow, *, sftp: SftpConnections) -> OutboundChannel:
    """The channel an export delivers to."""
    ch = flow.channel
    upload = UploadSettings(
        temp_prefix=flow.upload.temp_prefix,
        temp_suffix=flow.upload.temp_suffix,
        if_exists=flow.upload.if_exists,
        done_file=flow.upload.done_file,
    )
    if ch.type == "local":
        return LocalOutboundChannel(LocalOutboundSettings(path=Path(ch.path), upload=upload))
    return SftpOutboundChannel(
        SftpOutboundSettings(endpoint=ch.endpoint, path=ch.path, upload=upload), sftp
    )


def sftp_connections(config: GatewayConfig) -> SftpConnections:
    """One reconnecting connection per declared SFTP endpoint, shared by its flows."""
    endpoints = {}
    for name, e in config.sftp_endpoints.items():
        endpoints[name] = SftpEndpointSettings(
            name=name,
            host=e.host,
            port=e.port,
            username=e.username,
            known_hosts=Path(e.known_hosts),
            password=e.password.get_secret_value() if e.password else None,
            key_file=Path(e.key_file) if e.key_file else None,
            key_passphrase=e.key_passphrase.get_secret_value() if e.key_passphrase else None,
            key_passphrase_file=Path(e.key_passphrase_file) if e.key_passphrase_file else None,
            timeouts=SftpTimeouts(connect=e.timeouts.connect, operation=e.timeouts.operation),
            keepalive=int(e.keepalive),
        )
    return SftpConnections(endpoints)


def ecolix_client(config: GatewayConfig) -> EcolixClient:
    e = config.ecolix
    return EcolixClient(
        e.base_url,
        e.token.get_secret_value(),
        calls_per_minute=e.calls_per_minute,
        timeouts=Timeouts(connect=e.timeouts.connect, read=e.timeouts.read),
    )


def flow_context(flow: InboundFlow, channel_key: str) -> FlowContext:
    """Compile the flow's mapping; a broken mapping is a configuration error."""
    try:
        mapping = load_mapping(Path(flow.mapping))
    except MappingError as exc:
        msg = f"flow {flow.id}: {exc}"
        raise ConfigError(msg, problems=exc.problems) from exc
    encoding = None if flow.encoding == "auto" else flow.encoding
    return FlowContext(
        partner=flow.partner,
        flow=flow.name,
        channel=channel_key,
        mapping=mapping,
        duplicates=flow.duplicates,
        encoding=encoding,
    )


@contextmanager
def open_parts(
    config: GatewayConfig,
    *,
    with_channels: bool = True,
    flows: Mapping[str, InboundFlow] | None = None,
) -> Iterator[Parts]:
    """Open journal, archive, client and (optionally) every inbound flow's channel."""
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        journal = Journal.open(config.journal_url)
        stack.callback(journal.close)
        client = ecolix_client(config)
        stack.callback(client.close)
        sftp = sftp_connections(config)
        stack.callback(sftp.close)
        parts = Parts(
            config=config,
            journal=journal,
            archive=archive_of(config),
            client=client,
            schedule=RetrySchedule(
                max_attempts=config.retry.max_attempts,
                first_delay=config.retry.first_delay,
                max_delay=config.retry.max_delay,
            ),
            sftp=sftp,
            node=node_name(),
        )
        problems: list[str] = []
        chosen = flows if flows is not None else {f.id: f for f in config.inbound_flows()}
        seen = JournalSeenFiles(journal)
        for flow_id, flow in chosen.items():
            try:
                channel: InboundChannel | None = (
                    inbound_channel(flow, seen=seen, data_dir=data_dir, sftp=sftp)
                    if with_channels
                    else None
                )
                key = channel.key if channel is not None else f"{flow.channel.type}:{flow.id}"
                context = flow_context(flow, key)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            if channel is not None:
                stack.callback(channel.close)
            parts.inbound[flow_id] = InboundRuntime(flow, context, channel)
        if problems:
            raise ConfigError("; ".join(problems), problems=problems)
        yield parts
