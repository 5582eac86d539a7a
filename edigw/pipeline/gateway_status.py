"""What ``edigw status`` shows: each flow's and export's counts, the last errors, the calls
made, and the health the running gateway last published.

Read from the journal and from the files ``edigw run`` publishes (``usage.json``,
``health.json``), so that a status never needs the running gateway, nor its secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edigw.config import GatewayConfig
from edigw.ecolix.limiter import DEFAULT_PERIOD
from edigw.errors import ConfigError
from edigw.journal import FileState, JournalUnavailable
from edigw.journal.rows import StatusRow
from edigw.journal.store import Journal
from edigw.pipeline.assembly import open_journal, shared_call_budget
from edigw.pipeline.health import PUBLISH_EVERY, PublishedHealth, read_health
from edigw.pipeline.signals import utc_now

#: The call usage ``edigw run`` publishes in ``data_dir`` (``service.publish``), read here.
USAGE_FILE = "usage.json"
USAGE_EVERY = PUBLISH_EVERY
#: How many of the most recent open errors ``edigw status`` shows.
LAST_ERRORS = 10


@dataclass(frozen=True, slots=True)
class FlowStatus:
    """One inbound flow's files and documents. ``failed``, ``partially_failed`` and
    ``documents_failed`` count open failures only; what an operator resolved is counted
    in ``resolved`` and ``documents_resolved``."""

    flow: str
    configured: bool
    #: The flow's health as the running gateway last published it; "" when unknown.
    #: (Hook: filled through ``gateway_status(health=...)``, never read from the journal.)
    health: str
    files: int
    done: int
    skipped: int
    partially_failed: int
    failed: int
    resolved: int
    in_progress: int
    documents_waiting: int
    documents_failed: int
    documents_resolved: int
    #: documents a mapping rule skipped (``skip_if``): journalled with their reason, never sent
    documents_skipped: int = 0
    #: upserts Ecolix already held (``unchanged``): journalled, not sent
    documents_unchanged: int = 0
    #: Ecolix calls made per finished document (retries included; ``None`` before the first
    #: document is finished): see :attr:`edigw.journal.rows.StatusRow.calls_per_document`
    calls_per_document: float | None = None


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """One export flow and its latest run (``None`` when it never ran)."""

    flow: str
    configured: bool
    health: str
    last_run: str | None
    last_state: str | None
    last_started_at: datetime | None
    last_error: str | None


@dataclass(slots=True)
class GatewayStatus:
    flows: list[FlowStatus]
    next_retry_at: datetime | None
    calls_last_minute: int | str
    calls_per_minute: int
    last_errors: list[str] = field(default_factory=list)
    #: On a PostgreSQL journal, the calls that count now against the agreement's budget,
    #: every node together (or why that is unknown); ``None`` on SQLite (nothing shared).
    shared_calls: int | str | None = None
    channel_failures: list[str] = field(default_factory=list)
    exports: list[ExportStatus] = field(default_factory=list)
    #: The whole gateway's health as last published; "" when unknown (see FlowStatus).
    health: str = ""
    #: What is wrong with the running gateway, one line each (loops, conditions).
    health_problems: list[str] = field(default_factory=list)


def gateway_status(
    config: GatewayConfig,
    *,
    health: Mapping[str, str] | None = None,
    health_problems: Sequence[str] = (),
) -> GatewayStatus:
    """Counts for every configured flow (and flows the journal still knows), last errors.

    ``health`` maps a flow id (``webshop/orders``; ``""`` for the whole gateway) to its
    health as the running gateway published it; without it, health shows as unknown.
    ``health_problems`` says in full what is wrong (see :func:`status_with_health`).
    """
    journal = open_journal(config)
    try:
        return journal_status(
            journal,
            inbound=[(f.partner, f.name) for f in config.inbound_flows()],
            outbound=[(f.partner, f.name) for f in config.outbound_flows()],
            data_dir=Path(config.data_dir),
            calls_per_minute=config.ecolix.calls_per_minute,
            shared_calls=_shared_calls(config),
            health=health or {},
            health_problems=health_problems,
        )
    finally:
        journal.close()


def journal_status(
    journal: Journal,
    *,
    inbound: Sequence[tuple[str, str]],
    outbound: Sequence[tuple[str, str]],
    data_dir: Path,
    calls_per_minute: int,
    shared_calls: int | str | None,
    health: Mapping[str, str],
    health_problems: Sequence[str] = (),
) -> GatewayStatus:
    """:func:`gateway_status` from its parts: also what ``edigw status`` shows when
    ``edigw.yaml`` does not load (no flow configured then, the journal's flows only)."""
    rows = {(row.partner, row.flow): row for row in journal.status_counts()}
    configured = list(inbound)
    flows = [
        _flow_status(f"{p}/{f}", rows.get((p, f)), configured=True, health=health)
        for p, f in configured
    ]
    flows += [
        _flow_status(f"{p}/{f}", row, configured=False, health=health)
        for (p, f), row in sorted(rows.items())
        if (p, f) not in configured
    ]
    recent = sorted(
        (e for row in rows.values() for e in row.last_errors),
        key=lambda e: (e.at, e.ref),
        reverse=True,
    )
    errors = [
        f"{e.at:%Y-%m-%d %H:%M} {e.ref}{_at(e.location, e.message)}: "
        f"{e.message.splitlines()[0] if e.message else ''}"
        for e in recent[:LAST_ERRORS]
    ]
    failures = [
        f"F-{a.file_id} {a.at:%Y-%m-%d %H:%M} {a.action}: {a.error}"
        for a in journal.channel_actions(failed_only=True, limit=20)
    ]
    return GatewayStatus(
        flows=flows,
        next_retry_at=journal.next_retry_at(),
        calls_last_minute=_calls_last_minute(data_dir / USAGE_FILE),
        calls_per_minute=calls_per_minute,
        shared_calls=shared_calls,
        last_errors=errors,
        channel_failures=failures,
        exports=_export_statuses(outbound, journal, health),
        health=health.get("", ""),
        health_problems=list(health_problems),
    )


def status_with_health(config: GatewayConfig) -> tuple[GatewayStatus, PublishedHealth]:
    """``edigw status``: the journal's counts with the health the running gateway last
    published (``health.json``): the gateway's summary, each flow's and export's health,
    and what is wrong in full; also that published report, for ``--json``."""
    published = published_health(config)
    exports = [flow.id for flow in config.outbound_flows()]
    status = gateway_status(
        config, health=published.by_flow(exports=exports), health_problems=published.problems()
    )
    return status, published


def _at(location: str | None, message: str) -> str:
    """`` at LOCATION`` unless the message starts with it already."""
    return f" at {location}" if location and not message.startswith(location) else ""


def _flow_status(
    flow: str, row: StatusRow | None, *, configured: bool, health: Mapping[str, str]
) -> FlowStatus:
    f = row.files if row else {}
    resolved = row.files_resolved if row else {}
    docs_resolved = row.documents_resolved if row else 0
    return FlowStatus(
        flow=flow,
        configured=configured,
        health=health.get(flow, ""),
        # a superseded row is a cut transfer of a file counted once taken in whole
        files=sum(n for state, n in f.items() if state != FileState.SUPERSEDED),
        done=f.get("done", 0),
        skipped=f.get("skipped_duplicate", 0),
        partially_failed=f.get("partially_failed", 0) - resolved.get("partially_failed", 0),
        failed=f.get("failed", 0) - resolved.get("failed", 0),
        resolved=sum(resolved.values()),
        in_progress=row.files_waiting if row else 0,
        documents_waiting=row.documents_waiting if row else 0,
        documents_failed=(row.documents.get("failed", 0) if row else 0) - docs_resolved,
        documents_resolved=docs_resolved,
        documents_skipped=row.documents.get("skipped", 0) if row else 0,
        documents_unchanged=row.documents.get("unchanged", 0) if row else 0,
        calls_per_document=_rounded(row.calls_per_document if row else None),
    )


def _export_statuses(
    configured: Sequence[tuple[str, str]], journal: Journal, health: Mapping[str, str]
) -> list[ExportStatus]:
    latest = journal.latest_export_runs()
    keys = [*configured, *sorted(k for k in latest if k not in configured)]
    result = []
    for key in keys:
        run = latest.get(key)
        flow = f"{key[0]}/{key[1]}"
        result.append(
            ExportStatus(
                flow=flow,
                configured=key in configured,
                health=health.get(flow, ""),
                last_run=run.ref if run else None,
                last_state=run.state if run else None,
                last_started_at=run.started_at if run else None,
                last_error=run.error if run else None,
            )
        )
    return result


def _rounded(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio, 3)


def _shared_calls(config: GatewayConfig) -> int | str | None:
    """The calls counting now against the shared budget (PostgreSQL journal), all nodes.

    The budget is kept per agreement, which is the Ecolix instance and the token; without
    the token (``status`` runs without secrets) the agreement is unknown, and so is its count.
    """
    try:
        ledger = shared_call_budget(config)
    except ConfigError:
        return "unknown (ECOLIX_TOKEN is not set: the budget is kept per token)"
    if ledger is None:
        return None
    try:
        return ledger.counted(DEFAULT_PERIOD)
    except JournalUnavailable as exc:
        return f"unknown ({exc})"
    finally:
        ledger.close()


def _calls_last_minute(path: Path) -> int | str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown (no gateway running)"
    at = datetime.fromisoformat(data["at"])
    if (utc_now() - at).total_seconds() > 2 * USAGE_EVERY + 5:
        return f"unknown (last report {at:%H:%M:%S} UTC, gateway stopped?)"
    return int(data["last_minute"])


def published_health(config: GatewayConfig) -> PublishedHealth:
    """The health the running gateway last published (for ``edigw status``; no token, no
    journal needed)."""
    return read_health(Path(config.data_dir), now=utc_now())
