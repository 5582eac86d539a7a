"""``edigw.yaml`` reloaded by a running gateway, on SIGHUP.

The rule is the one of the mapping reloads (``edigw.pipeline.reload``): the new
configuration is read, validated and every flow it adds or changes is built completely
(folders, channel, compiled and checked mapping) before anything is touched; then, in one
go, the removed and changed flows' loops stop cleanly (each finishes the file in hand) and
the new and changed ones start under the supervisor. A file with a problem changes nothing:
the error is logged and set as the condition ``reload edigw.yaml`` (``edigw status``,
health) until a reload succeeds.

What a running gateway cannot swap (the Ecolix connection, the journal, the data folder,
SFTP endpoints, retry and supervisor rules, logging, file modes) is kept; a change there is
logged as taking effect at the next restart. A flow that needs a new or changed SFTP
endpoint is such a change: the reload is refused, saying so.

Documents the removed flows already journalled are still sent (the senders serve the
journal, not the flows), and the sources of files they took are still disposed of. The
connection of an SFTP endpoint that no flow uses any more is closed, once those files are
disposed of (``edigw.pipeline.sftp_endpoints``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edigw.channels.base import JournalSeenFiles
from edigw.config import GatewayConfig, InboundFlow, load_config
from edigw.errors import ConfigError
from edigw.pipeline.assembly import InboundRuntime, Parts, flow_context, inbound_channel
from edigw.pipeline.folders import create_folders, local_folders
from edigw.pipeline.reload import ReloadFailure, announce_reload_failure, reload_condition
from edigw.pipeline.sftp_endpoints import close_unused_endpoints

if TYPE_CHECKING:
    from edigw.pipeline.runtime import Gateway

log = logging.getLogger("edigw.reconfigure")

#: Top-level settings a running gateway keeps until it restarts.
RESTART_ONLY = (
    "ecolix",
    "data_dir",
    "journal",
    "retry",
    "supervisor",
    "log_format",
    "processes",
    "security",
    "sftp_endpoints",
)
CONDITION = reload_condition("edigw.yaml")


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """What a new ``edigw.yaml`` changes: inbound flows by id, whether the exports changed,
    and the settings that wait for a restart."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    exports: bool = False
    restart_only: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(ids)}"
            for label, ids in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if ids
        ]
        if self.exports:
            parts.append("exports changed")
        return "; ".join(parts) or "no flow changed"


def compare(old: GatewayConfig, new: GatewayConfig) -> ConfigChanges:
    """The differences between the running configuration and ``new``."""
    before = {flow.id: flow for flow in old.inbound_flows()}
    after = {flow.id: flow for flow in new.inbound_flows()}
    exports_before = {flow.id: flow for flow in old.outbound_flows()}
    exports_after = {flow.id: flow for flow in new.outbound_flows()}
    return ConfigChanges(
        added=tuple(i for i in after if i not in before),
        removed=tuple(i for i in before if i not in after),
        changed=tuple(i for i in after if i in before and after[i] != before[i]),
        exports=exports_before != exports_after or old.settings != new.settings,
        restart_only=tuple(k for k in RESTART_ONLY if getattr(old, k) != getattr(new, k)),
    )


def build_flows(
    parts: Parts, new: GatewayConfig, flow_ids: tuple[str, ...], stack: ExitStack
) -> dict[str, InboundRuntime]:
    """Every flow of ``flow_ids`` built whole from ``new`` (its channel closed by ``stack``);
    ``ConfigError`` listing every problem, when one cannot be."""
    flows = {flow.id: flow for flow in new.inbound_flows()}
    problems = [
        f"flow {flow_id}: {why}"
        for flow_id in flow_ids
        if (why := _endpoint_change(parts.config, new, flows[flow_id])) is not None
    ]
    if problems:
        raise ConfigError(problems[0], problems)
    wanted = [f for f in local_folders(new) if f.flow in flow_ids or f.role == "outbox"]
    create_folders(wanted, new.security.modes)
    seen = JournalSeenFiles(parts.journal)
    built: dict[str, InboundRuntime] = {}
    for flow_id in flow_ids:
        flow = flows[flow_id]
        try:
            channel = inbound_channel(
                flow,
                seen=seen,
                data_dir=Path(parts.config.data_dir),
                sftp=parts.sftp,
                modes=parts.config.security.modes,
            )
            stack.callback(channel.close)
            # the Ecolix the running client talks to (``ecolix`` waits for a restart)
            context = flow_context(
                flow, channel.key, ecolix=parts.config.ecolix.base_url, checked=True
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        built[flow_id] = InboundRuntime(flow, context, channel)
    if problems:
        raise ConfigError(problems[0], problems)
    return built


def _endpoint_change(old: GatewayConfig, new: GatewayConfig, flow: InboundFlow) -> str | None:
    """Why ``flow`` cannot run before a restart: its SFTP endpoint is new or changed."""
    if flow.channel.type != "sftp":
        return None
    name = flow.channel.endpoint
    if old.sftp_endpoints.get(name) != new.sftp_endpoints.get(name):
        return f"SFTP endpoint {name} is new or changed: restart the gateway to use it"
    return None


def reload_configuration(
    gateway: Gateway, path: Path, *, environ: Mapping[str, str]
) -> ConfigChanges | None:
    """Read ``path`` again and apply it to the running ``gateway`` (see the module
    docstring); ``None`` when it was refused (nothing changed, the condition says why)."""
    parts = gateway.parts
    conditions = gateway.signals.conditions
    with gateway.reloader.lock, ExitStack() as stack:
        try:
            new = load_config(path, environ=environ)
            changes = compare(parts.config, new)
            runtimes = build_flows(parts, new, changes.added + changes.changed, stack)
        except ConfigError as exc:
            reason = "; ".join(exc.problems) if exc.problems else str(exc)
            log.error("%s not reloaded, the running configuration stays: %s", path, reason)
            failure = ReloadFailure(
                "configuration", None, path, reason, "the running configuration stays"
            )
            announce_reload_failure(
                failure, conditions, gateway.signals.alerts, at=datetime.now(UTC)
            )
            return None
        parts.resources.enter_context(stack.pop_all())  # the new channels live on
        timeout = gateway.policy.stop_timeout
        for flow_id in changes.removed + changes.changed:
            gateway.remove_flow(flow_id, timeout=timeout)
        if changes.exports:
            gateway.stop_exporter(timeout=timeout)
            parts.templates.clear()  # the reloader pins the new exports' templates
        # what runs keeps its settings until a restart: the config says what is running
        parts.config = new.model_copy(update={k: getattr(parts.config, k) for k in RESTART_ONLY})
        for flow_id in changes.added + changes.changed:
            gateway.add_flow(runtimes[flow_id])
        if changes.exports:
            gateway.start_exporter()
        close_unused_endpoints(parts, gateway.pollers)  # a removed flow's wait for the mover
        if gateway.sending is not None:
            gateway.sending.reconfigure(parts.config)
    conditions.clear(CONDITION)
    log.info("%s reloaded: %s", path, changes.summary())
    for key in changes.restart_only:
        log.warning("%s: %s changed: it takes effect at the next restart", path, key)
    return changes


__all__ = ["CONDITION", "ConfigChanges", "compare", "reload_configuration"]
