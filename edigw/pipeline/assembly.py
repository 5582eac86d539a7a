"""The composition root: turns a loaded ``edigw.yaml`` into live parts.

Only this module knows both the configuration models and the constructors of channels,
client, journal and mappings, so each of those stays ignorant of the others.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

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
from edigw.config import (
    FolderArchiveSettings,
    GatewayConfig,
    InboundFlow,
    OutboundFlow,
    PostgresArchiveSettings,
)
from edigw.ecolix.client import EcolixClient, Timeouts
from edigw.ecolix.host_ledger import HostLedger
from edigw.ecolix.limiter import CallLedger, agreement_key
from edigw.errors import ConfigError, FieldError, MappingError
from edigw.filemodes import DEFAULT_MODES, FileModes, make_folders
from edigw.journal.archive import Archive
from edigw.journal.archive_folder import FolderArchive
from edigw.journal.archive_markers import check_same_folder
from edigw.journal.archive_pg import PostgresArchive
from edigw.journal.rows import DocumentRow
from edigw.journal.store import Journal
from edigw.mapping import CompiledMapping, load_mapping
from edigw.mapping.versions import content_version
from edigw.pipeline.dispatch import RetrySchedule
from edigw.pipeline.folders import create_folders, local_folders
from edigw.pipeline.inbound import FlowContext
from edigw.pipeline.refusals import RefusalLocator
from edigw.pipeline.supervisor import SupervisorPolicy
from edigw.problems import ProblemEntry
from edigw.validation.policy import DEFAULT_POLICY, ValidationPolicy

if TYPE_CHECKING:
    from edigw.channels.sftp.connection import SftpConnections
    from edigw.journal.budget import SharedLedger
    from edigw.pipeline.reload import PinnedTemplate


log = logging.getLogger("edigw.assembly")


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
    #: None when the configuration declares no SFTP endpoint (then no flow is on SFTP).
    sftp: SftpConnections | None
    inbound: dict[str, InboundRuntime] = field(default_factory=dict)
    #: Flows set aside because their mapping did not compile (the sending process only,
    #: ``open_parts(set_aside_broken=True)``): the reloader adds each once it does.
    unloaded: dict[str, InboundFlow] = field(default_factory=dict)
    node: str = ""
    refusals: RefusalLocator | None = None
    #: Each export's template as the running gateway last compiled it (``reload``).
    templates: dict[str, PinnedTemplate] = field(default_factory=dict)
    #: Closes what is opened while the gateway runs (channels of flows added on SIGHUP).
    resources: ExitStack = field(default_factory=ExitStack)

    def locate_refusal(
        self, doc: DocumentRow, errors: Sequence[FieldError]
    ) -> list[ProblemEntry] | None:
        """The source places of the fields Ecolix refused in ``doc`` (see ``refusals``)."""
        return self.refusals.locate(doc, errors) if self.refusals is not None else None

    def flow_context(self, flow_id: str) -> FlowContext | None:
        """A configured inbound flow's live context (its current mapping), or None."""
        runtime = self.inbound.get(flow_id)
        return runtime.context if runtime is not None else None


def archive_of(config: GatewayConfig) -> Archive:
    """The gateway's archive of originals, of the kind ``archive:`` chooses: a shared folder,
    the journal's PostgreSQL database, or (by default) ``data_dir/archive``. The caller
    closes it."""
    data_dir = Path(config.data_dir)
    modes = config.security.modes
    chosen = config.archive
    if isinstance(chosen, PostgresArchiveSettings):
        return PostgresArchive(config.journal_url, data_dir / "archive-cache", modes=modes)
    if isinstance(chosen, FolderArchiveSettings):
        node = f"{socket.gethostname()}:{data_dir.resolve()}"
        check = functools.partial(
            check_same_folder, journal_url=config.journal_url, node=node, modes=modes
        )
        return FolderArchive(chosen.path, modes=modes, shared_check=check)
    return FolderArchive(data_dir / "archive", modes=modes)


def open_journal(config: GatewayConfig) -> Journal:
    """The gateway's journal, created (SQLite) with the configured file modes if new."""
    return Journal.open(config.journal_url, modes=config.security.modes)


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
    flow: InboundFlow,
    *,
    seen: SeenFiles,
    data_dir: Path,
    sftp: SftpConnections | None,
    modes: FileModes = DEFAULT_MODES,
) -> InboundChannel:
    """The channel object a flow's ``channel:`` entry describes."""
    ch = flow.channel
    common: dict[str, Any] = {
        "file_mode": modes.file,
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
    # paramiko and cryptography weigh 17 MB: imported only when a flow is on SFTP
    from edigw.channels.sftp.inbound import SftpInboundChannel
    from edigw.channels.sftp.settings import SftpInboundSettings

    return SftpInboundChannel(
        SftpInboundSettings(
            endpoint=ch.endpoint,
            path=ch.path,
            recursive=ch.recursive,
            max_depth=ch.max_depth,
            **common,
        ),
        _connections(sftp),
        staging_dir=data_dir / "staging",
        seen=seen,
    )


def outbound_channel(flow: OutboundFlow, *, sftp: SftpConnections | None) -> OutboundChannel:
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
    # paramiko and cryptography weigh 17 MB: imported only when an export is on SFTP
    from edigw.channels.sftp.outbound import SftpOutboundChannel
    from edigw.channels.sftp.settings import SftpOutboundSettings

    return SftpOutboundChannel(
        SftpOutboundSettings(endpoint=ch.endpoint, path=ch.path, upload=upload),
        _connections(sftp),
    )


def _connections(sftp: SftpConnections | None) -> SftpConnections:
    """``sftp``, or none at all (the configuration declares no endpoint): a channel then
    reports its endpoint unknown when used, as it would with the declared ones."""
    # with its channel: see inbound_channel
    from edigw.channels.sftp.connection import SftpConnections

    return sftp if sftp is not None else SftpConnections({})


def sftp_connections(config: GatewayConfig) -> SftpConnections | None:
    """One reconnecting connection per declared SFTP endpoint, shared by its flows; None
    when there is no endpoint, so that a gateway without SFTP never imports paramiko."""
    if not config.sftp_endpoints:
        return None
    # paramiko and cryptography weigh 17 MB: imported only when an endpoint is declared
    from edigw.channels.sftp.connection import SftpConnections
    from edigw.channels.sftp.settings import SftpEndpointSettings, SftpTimeouts

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


def ecolix_timeouts(config: GatewayConfig) -> Timeouts:
    return Timeouts(connect=config.ecolix.timeouts.connect, read=config.ecolix.timeouts.read)


def ecolix_client(config: GatewayConfig, *, budget: CallLedger | None = None) -> EcolixClient:
    e = config.ecolix
    return EcolixClient(
        e.base_url,
        e.token.get_secret_value(),
        calls_per_minute=e.calls_per_minute,
        timeouts=ecolix_timeouts(config),
        budget=budget,
    )


def shared_call_budget(config: GatewayConfig) -> SharedLedger | None:
    """On a PostgreSQL journal, the agreement's call budget every node shares (None on
    SQLite: one gateway keeps it in memory). A call still in flight after the client's
    longest request is taken for completed: a crashed node's calls expire."""
    if make_url(config.journal_url).get_backend_name() != "postgresql":
        return None
    from edigw.journal.budget import SharedLedger  # psycopg: 22 MB a SQLite gateway never needs

    config.require_secrets("the shared call budget is kept per token")
    t = ecolix_timeouts(config)
    e = config.ecolix
    return SharedLedger.open(
        config.journal_url,
        agreement_key(e.base_url, e.token.get_secret_value()),
        node=node_name(),
        lease=t.connect + t.write + t.read + t.pool,
    )


def host_call_budget(config: GatewayConfig) -> HostLedger | None:
    """On a SQLite journal, the agreement's call budget every edigw process of this host
    shares (``edigw run`` and its sending process, ``edigw replay``...), in ``data_dir``;
    ``None`` without the token (the agreement is kept per token, and nothing is sent)."""
    if make_url(config.journal_url).get_backend_name() == "postgresql":
        return None
    try:
        config.require_secrets("the call budget is kept per token")
    except ConfigError:
        return None
    e = config.ecolix
    agreement = agreement_key(e.base_url, e.token.get_secret_value())
    name = hashlib.sha256(agreement.encode()).hexdigest()[:16]
    t = ecolix_timeouts(config)
    return HostLedger.open(
        Path(config.data_dir) / "call-budget" / f"{name}.budget",
        lease=t.connect + t.write + t.read + t.pool,
        file_mode=config.security.modes.file,
    )


def supervisor_policy(config: GatewayConfig) -> SupervisorPolicy:
    """The supervisor's restart and stop rules from ``edigw.yaml``'s ``supervisor:``."""
    s = config.supervisor
    return SupervisorPolicy(
        max_restarts=s.max_restarts,
        window=s.window,
        first_delay=s.first_delay,
        max_delay=s.max_delay,
        stop_timeout=s.stop_timeout,
    )


def channelless_key(flow: InboundFlow) -> str:
    """The channel key of a flow opened without its channel (the sending process)."""
    return f"{flow.channel.type}:{flow.id}"


def flow_context(
    flow: InboundFlow, channel_key: str, *, ecolix: str = "", checked: bool = False
) -> FlowContext:
    """Compile the flow's mapping, with its version; a broken mapping is a configuration
    error. ``ecolix``: the base URL of the Ecolix its documents go to. ``checked``: also
    the static checks of ``edigw mapping check`` (a reload in a running gateway swaps in
    only what passes them)."""
    try:
        mapping = (
            checked_mapping(Path(flow.mapping)) if checked else load_mapping(Path(flow.mapping))
        )
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
        ordered=flow.ordered,
        encoding=encoding,
        limits=flow.limits.reader_limits(),
        ecolix=ecolix,
        mapping_version=content_version(mapping.files),
        validation=validation_policy(flow, mapping.source),
    )


def checked_mapping(path: Path) -> CompiledMapping:
    """Load ``path`` as ``edigw mapping check`` does (static checks included); a
    ``MappingError`` lists every problem."""
    from edigw.mapping.sample import check_mappings

    [result] = check_mappings([path])
    if result.problems or result.mapping is None:
        problems = result.problems or [f"{path}: not loaded"]
        msg = f"{path.name}: {len(problems)} problem(s): {problems[0]}"
        raise MappingError(msg, problems)
    return result.mapping


def validation_policy(flow: InboundFlow, source: Mapping[str, Any]) -> ValidationPolicy | None:
    """What the flow's validation layers do: its ``validation:``, else the defaults (XSD and
    EN 16931 block, BR-FR warns) when its mapping reads e-invoices, else nothing."""
    if flow.validation is not None:
        return flow.validation
    return DEFAULT_POLICY if source.get("format") == "einvoice" else None


@contextmanager
def open_parts(
    config: GatewayConfig,
    *,
    with_channels: bool = True,
    flows: Mapping[str, InboundFlow] | None = None,
    set_aside_broken: bool = False,
) -> Iterator[Parts]:
    """Open journal, archive, client and (optionally) every inbound flow's channel.

    With channels (a running gateway) every local folder the configuration names is
    created first, each logged: inboxes, done and error folders, outboxes, the archive.

    A flow whose mapping does not compile is a configuration error, unless
    ``set_aside_broken``: then it waits in ``parts.unloaded``. The sending process starts
    so: it needs a flow's mapping only to tell where in a file a value Ecolix refused came
    from, and a broken edit on disk (the intake process keeps running the last good version)
    must not stop the sending of every flow.
    """
    data_dir = Path(config.data_dir)
    modes = config.security.modes
    if with_channels:
        create_folders(local_folders(config), modes)
    make_folders(data_dir, modes)
    with ExitStack() as stack:
        journal = open_journal(config)
        stack.callback(journal.close)
        budget: SharedLedger | HostLedger | None = shared_call_budget(config) or host_call_budget(
            config
        )
        if budget is not None:
            stack.callback(budget.close)
        client = ecolix_client(config, budget=budget)
        stack.callback(client.close)
        sftp = sftp_connections(config)
        if sftp is not None:
            stack.callback(sftp.close)
        archive = archive_of(config)
        stack.callback(archive.close)
        parts = Parts(
            config=config,
            journal=journal,
            archive=archive,
            client=client,
            schedule=RetrySchedule(
                max_attempts=config.retry.max_attempts,
                first_delay=config.retry.first_delay,
                max_delay=config.retry.max_delay,
            ),
            sftp=sftp,
            node=node_name(),
        )
        parts.refusals = RefusalLocator(
            journal=journal, archive=parts.archive, flows=parts.flow_context
        )
        stack.callback(parts.refusals.close)
        stack.enter_context(parts.resources)
        problems: list[str] = []
        chosen = flows if flows is not None else {f.id: f for f in config.inbound_flows()}
        seen = JournalSeenFiles(journal)
        for flow_id, flow in chosen.items():
            try:
                channel: InboundChannel | None = (
                    inbound_channel(flow, seen=seen, data_dir=data_dir, sftp=sftp, modes=modes)
                    if with_channels
                    else None
                )
                key = channel.key if channel is not None else channelless_key(flow)
                context = flow_context(flow, key, ecolix=config.ecolix.base_url)
            except ConfigError as exc:
                if set_aside_broken and not with_channels:
                    log.warning(
                        "flow %s set aside until its mapping compiles: %s (its refusals are "
                        "journalled without their place in the file meanwhile)",
                        flow_id,
                        exc,
                        extra={"flow": flow_id},
                    )
                    parts.unloaded[flow_id] = flow
                else:
                    problems.extend(exc.problems)
                continue
            if channel is not None:
                stack.callback(channel.close)
            parts.inbound[flow_id] = InboundRuntime(flow, context, channel)
        if problems:
            raise ConfigError("; ".join(problems), problems=problems)
        yield parts
