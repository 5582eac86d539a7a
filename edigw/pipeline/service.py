"""The operator's use cases, one function each: run, process, status, show, replay.

The CLI parses options and renders; these functions open the parts a use case needs,
do the work and return plain data.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edigw.alerts.configured import GatewayAlerts
from edigw.alerts.watch import watch_loop
from edigw.channels.base import JournalSeenFiles
from edigw.config import GatewayConfig, InboundFlow, parse_listen
from edigw.ecolix.limiter import DEFAULT_PERIOD
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import ConfigError, EdigwError
from edigw.journal import FileState, JournalUnavailable, PurgeCounts
from edigw.journal.findings import FindingRow
from edigw.journal.rows import (
    DocumentRow,
    EventRow,
    ExportRunRow,
    FileRow,
    ResolutionRow,
    StatusRow,
)
from edigw.journal.store import Journal
from edigw.pipeline.assembly import (
    Parts,
    archive_of,
    inbound_channel,
    open_journal,
    open_parts,
    shared_call_budget,
    supervisor_policy,
)
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.health import (
    PUBLISH_EVERY,
    PublishedHealth,
    read_health,
    write_health,
    write_json_atomically,
)
from edigw.pipeline.inbound import FINAL_FILE_STATES, Intake, ingest
from edigw.pipeline.replay import ReplayPlan, replay_file
from edigw.pipeline.review import parse_id, split_flow
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.senders import send_due
from edigw.pipeline.sending_process import SendingProcess
from edigw.pipeline.signals import Signals, utc_now
from edigw.pipeline.supervisor import thread_crashes_logged
from edigw.pipeline.tidy import clear_error_copy, error_copy_of
from edigw.pipeline.tidy import describe as describe_clearing
from edigw.problems import ProblemList
from edigw.processes import process_identity

if TYPE_CHECKING:
    from edigw.pipeline.endpoints import HealthServer

log = logging.getLogger("edigw.service")

USAGE_FILE = "usage.json"
USAGE_EVERY = PUBLISH_EVERY
#: Seconds between two looks, in ``serve``'s main thread, at whether a stop was asked for.
STOP_CHECK = 0.2
#: How many of the most recent open errors ``edigw status`` shows.
LAST_ERRORS = 10


def inbound_flow(config: GatewayConfig, flow_id: str) -> InboundFlow:
    try:
        flow = config.flow(flow_id)
    except (KeyError, EdigwError) as exc:
        known = ", ".join(f.id for f in config.inbound_flows()) or "none"
        msg = f"unknown flow {flow_id!r} (inbound flows: {known})"
        raise ConfigError(msg) from exc
    if not isinstance(flow, InboundFlow):
        msg = f"flow {flow_id!r} is an export, not an inbound flow"
        raise ConfigError(msg)
    return flow


# --------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How ``serve`` ended: on request and cleanly, after giving up on a loop that kept
    crashing (``failure``), or with loops still busy when the stop timeout ran out."""

    failure: str | None = None
    still_busy: tuple[str, ...] = ()


def serve(
    config: GatewayConfig,
    *,
    senders: Senders,
    stop: threading.Event | None = None,
    extra_loops: Sequence[Callable[[Parts, Signals], None]] = (),
    on_start: Callable[[Gateway], None] | None = None,
    http: str | None = None,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    reload: threading.Event | None = None,
    processes: int | None = None,
    log_format: str | None = None,
) -> RunOutcome:
    """Run the gateway until SIGTERM/SIGINT (or ``stop`` is set), or until its supervisor
    gives up on a loop that keeps crashing.

    Every local folder is created first; every loop runs under the supervisor; the health
    snapshot is published beside the call usage. With ``http`` (``HOST:PORT``; default
    ``http.listen`` in the configuration) ``/healthz``, ``/readyz`` and ``/metrics`` are
    served (``edigw.pipeline.endpoints``). On a stop, loops finish what they hold and
    queued moves are made, within ``supervisor.stop_timeout``. ``on_start`` is called
    with the started gateway (a caller that wants to watch its health).

    SIGHUP (or setting ``reload``) reads ``config_path`` again, with ``environ`` for its
    ``${NAME}`` values, and applies it (``edigw.pipeline.reconfigure``).

    ``processes`` (default ``processes`` in the configuration): 2 runs the senders in a
    process of their own (``edigw.pipeline.sending_process``), which logs in ``log_format``
    (as ``edigw.logs.configure_logging``; ``None``: left to the library's defaults, as in
    this process unless its caller configured it).
    """
    policy = supervisor_policy(config)
    signals = Signals()
    sending = None
    if (processes or config.processes) == 2:
        sending = SendingProcess(
            config,
            senders,
            log_format,
            finished=signals.finished_files.put,
            conditions=signals.conditions,
            timed=lambda kind, flow, seconds: signals.timed(kind, flow, seconds),
        )
    requested = stop or threading.Event()
    hangup = reload or threading.Event()
    listen = listen_address(http or config.http.listen)
    with (
        _stop_on_signals(requested.set, hangup.set),
        thread_crashes_logged(signals.conditions),
        open_parts(config) as parts,
        ExitStack() as stack,
    ):
        gateway = Gateway(parts, senders=senders, policy=policy, signals=signals, sending=sending)
        if listen is not None:
            stack.callback(serve_health(parts, gateway, listen).close)
        alerts = start_alerts(config, parts, gateway)
        gateway.start_exporter()
        gateway.add_loop(
            "publisher",
            functools.partial(publish_loop, parts, gateway, signals),
            kind="publisher",
            finishing=True,
        )
        for loop in extra_loops:
            name = getattr(loop, "__name__", "loop")
            gateway.add_loop(name, functools.partial(loop, parts, signals), kind="extra")
        gateway.start()
        log.info(
            "edigw running: %d inbound flows, %d exports, %s senders%s",
            len(parts.inbound),
            len(config.outbound_flows()),
            senders,
            " in a process of their own" if sending is not None else "",
        )
        if on_start is not None:
            on_start(gateway)
        while not gateway.stopping.wait(STOP_CHECK):
            if requested.is_set():
                gateway.stop()
            elif hangup.is_set():
                hangup.clear()
                _reload(gateway, config_path, environ)
        log.info("edigw stopping: finishing what is in hand (at most %.0f s)", policy.stop_timeout)
        still_busy = gateway.join(timeout=policy.stop_timeout)
        publish(parts, gateway)
        if alerts is not None:
            alerts.close(gateway.health(), gateway.usage())
        if gateway.failure:
            log.critical("edigw stopped: %s", gateway.failure)
        else:
            log.info("edigw stopped")
        return RunOutcome(failure=gateway.failure, still_busy=tuple(still_busy))


def _reload(gateway: Gateway, config_path: Path | None, environ: Mapping[str, str] | None) -> None:
    """SIGHUP: apply ``edigw.yaml`` again (see ``edigw.pipeline.reconfigure``)."""
    from edigw.pipeline.reconfigure import reload_configuration

    if config_path is None:
        log.warning("SIGHUP ignored: this gateway was not started from a configuration file")
        return
    log.info("SIGHUP: reading %s again", config_path)
    reload_configuration(gateway, config_path, environ=environ or {})


def _ignore_hangup() -> None:
    log.warning("SIGHUP ignored: nothing to reload here")


def start_alerts(config: GatewayConfig, parts: Parts, gateway: Gateway) -> GatewayAlerts | None:
    """Start the alert channels ``alerts:`` configures and the loop that watches for what
    to tell (``edigw.alerts.watch``); ``None`` when none is configured. The caller closes
    it after the loops stopped: a last look, then what is held goes out as a digest."""
    if not config.alerts.enabled:
        return None
    alerts = GatewayAlerts(config.alerts, parts.journal, node=parts.node)
    alerts.start()
    gateway.signals.alerts = alerts
    gateway.add_loop(
        "alerts",
        functools.partial(
            watch_loop,
            alerts.watcher,
            health=gateway.health,
            usage=gateway.usage,
            stop=gateway.signals.stop,
        ),
        kind="alerts",
    )
    log.info("alerts: %s", ", ".join(alerts.dispatcher.channels))
    return alerts


def listen_address(listen: str | None) -> tuple[str, int] | None:
    """``HOST:PORT`` as ``(host, port)``; a one-line ``ConfigError`` when it is not one."""
    if listen is None:
        return None
    try:
        return parse_listen(listen)
    except ValueError as exc:
        msg = f"--http / http.listen: {exc}"
        raise ConfigError(msg) from exc


def serve_health(parts: Parts, gateway: Gateway, listen: tuple[str, int]) -> HealthServer:
    """Bind the health and metrics endpoints on ``listen`` (``ConfigError`` when the address
    is taken) and supervise their loops: the server, and the check of whether Ecolix
    answers (``http.ecolix_check_every``). Returns the server, to be closed."""
    from edigw.pipeline.endpoints import HealthServer
    from edigw.pipeline.metrics import GatewayMetrics
    from edigw.pipeline.readiness import EcolixCheck, readiness

    host, port = listen
    signals = gateway.signals
    metrics = GatewayMetrics(
        journal=parts.journal,
        usage=gateway.usage,
        health=gateway.health,
        clock=utc_now,
        in_flight=gateway.in_flight,
    )
    signals.timed = metrics.observe
    ecolix = EcolixCheck(
        parts.client,
        signals.conditions,
        every=parts.config.http.ecolix_check_every,
        usage=gateway.usage,
    )
    server = HealthServer(
        host,
        port,
        health=gateway.health,
        ready=functools.partial(
            readiness, journal=parts.journal, health=gateway.health, ecolix=ecolix
        ),
        metrics=metrics.exposition,
    )
    gateway.add_loop("ecolix check", functools.partial(ecolix.run, signals.stop), kind="probe")
    gateway.add_loop(
        "http", functools.partial(server.run, signals.finish), kind="http", finishing=True
    )
    log.info("health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", host, port)
    return server


@contextmanager
def _stop_on_signals(
    stop: Callable[[], None], reload: Callable[[], None] = _ignore_hangup
) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop``, SIGHUP calls ``reload``, while inside (main thread
    only: signals are only delivered there); the previous handlers come back on the way
    out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers: dict[signal.Signals, Callable[[], None]] = {
        signal.SIGTERM: stop,
        signal.SIGINT: stop,
        signal.SIGHUP: reload,
    }
    previous = {sig: signal.getsignal(sig) for sig in handlers}
    for sig, call in handlers.items():
        signal.signal(sig, lambda *_, call=call: call())  # type: ignore[misc]
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def publish_loop(parts: Parts, gateway: Gateway, signals: Signals) -> None:
    """Publish call usage and health for ``edigw status`` (another process): at once, then
    every few seconds until the gateway finishes (``serve`` writes the very last one)."""
    publish(parts, gateway)
    while not signals.finish.wait(PUBLISH_EVERY):
        publish(parts, gateway)


def publish(parts: Parts, gateway: Gateway) -> None:
    """Write ``usage.json`` and ``health.json``; a failure is a condition, not a crash."""
    data_dir = Path(parts.config.data_dir)
    conditions = gateway.signals.conditions
    try:
        write_usage(parts, data_dir / USAGE_FILE, usage=gateway.usage())
        write_health(gateway.health(), data_dir, parts.config.security.modes)
    except OSError as exc:
        conditions.set("status files", f"cannot write into {data_dir}: {exc.strerror or exc}")
    else:
        conditions.clear("status files")


def write_usage(parts: Parts, target: Path, *, usage: UsageSnapshot | None = None) -> None:
    """``usage.json``: ``usage``, the gateway's calls (default: this process's client's)."""
    usage = usage if usage is not None else parts.client.usage
    data = {
        "node": parts.node,
        "at": utc_now().isoformat(),
        "calls": usage.calls,
        "last_minute": usage.last_minute,
        "limit_per_minute": usage.limit_per_minute,
        "throttled": usage.throttled,
        "by_operation": dict(usage.by_operation),
    }
    write_json_atomically(target, data, parts.config.security.modes)


def published_health(config: GatewayConfig) -> PublishedHealth:
    """The health the running gateway last published (for ``edigw status``; no token, no
    journal needed)."""
    return read_health(Path(config.data_dir), now=utc_now())


# --------------------------------------------------------------------------- process


@dataclass(slots=True)
class FileStory:
    """Everything known about one file, for ``edigw show`` and ``edigw process``.

    ``open_failure`` tells whether the file's failure (if it failed) is still open, and
    ``open_documents`` which failed documents are; the others were resolved.
    ``problem_totals``: how many problems the full lists kept for the file (key ``None``)
    and its documents hold; ``problems``: those lists, read only for ``show --all``.
    """

    file: FileRow
    documents: list[DocumentRow]
    events: list[EventRow]
    with_payloads: bool = False
    resolutions: list[ResolutionRow] = field(default_factory=list)
    open_failure: bool = False
    open_documents: set[int] = field(default_factory=set)
    #: ``D`` when the story was asked for one document (``edigw show D-40``).
    kind: str = "F"
    problem_totals: dict[int | None, int] = field(default_factory=dict)
    problems: dict[int | None, ProblemList] = field(default_factory=dict)
    #: what the validation layers of an e-invoice flow found (those that blocked the file,
    #: then the warnings it went on with); ``all_findings``: print every one, not the first
    findings: list[FindingRow] = field(default_factory=list)
    all_findings: bool = False


def process_file(
    config: GatewayConfig,
    flow_id: str,
    path: Path,
    *,
    clock: Callable[[], datetime] = utc_now,
    max_wait: float = 30.0,
) -> FileStory:
    """Take one file through a flow now and send its documents, waiting for the outcome.

    Documents that hit a temporary error stay in retry-wait; ``edigw run`` retries them.
    """
    flow = inbound_flow(config, flow_id)
    with open_parts(config, with_channels=False, flows={flow.id: flow}) as parts:
        runtime = parts.inbound[flow.id]
        ingested = ingest(
            path,
            original_name=path.name,
            flow=runtime.context,
            journal=parts.journal,
            archive=parts.archive,
            now=clock(),
            source_path=str(path.resolve()),
            intake=Intake(reader=process_identity(parts.node.rpartition(":")[0])),
        )
        drain_file(parts, ingested.file_id, clock=clock, max_wait=max_wait)
        if parts.journal.file(ingested.file_id).state in FINAL_FILE_STATES:
            # The command leaves its file where it is: say so, as a channel would.
            parts.journal.record_channel_action(
                ingested.file_id, action="left", ok=True, error=None, now=clock()
            )
        return file_story_from(parts.journal, ingested.file_id)


def drain_file(
    parts: Parts, file_id: int, *, clock: Callable[[], datetime], max_wait: float
) -> None:
    """Send a file's due documents one by one until none is due (or ``max_wait`` passes)."""
    signals = Signals()
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        if send_due(parts, signals, clock=clock, file_id=file_id) is None:
            break


# --------------------------------------------------------------------------- status


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


# --------------------------------------------------------------------------- show


def file_story_from(
    journal: Journal, file_id: int, *, with_payloads: bool = False, all_problems: bool = False
) -> FileStory:
    open_failure, open_documents = journal.open_failures(file_id)
    return FileStory(
        file=journal.file(file_id),
        documents=journal.documents_of(file_id),
        events=journal.events_of(file_id),
        with_payloads=with_payloads,
        resolutions=journal.resolutions_of(file_id),
        open_failure=open_failure,
        open_documents=open_documents,
        problem_totals=journal.problem_totals(file_id),
        problems=journal.problems_of(file_id) if all_problems else {},
        findings=journal.findings_of(file_id),
        all_findings=all_problems,
    )


def file_story(
    config: GatewayConfig, kind: str, number: int, *, all_problems: bool = False
) -> FileStory:
    """The story of file ``F-number``, or of document ``D-number`` within its file (the
    file's own lines, that document, and the events about it or about the whole file);
    ``all_problems``: with every problem kept, not only the first ones."""
    journal = open_journal(config)
    try:
        if kind == "D":
            doc = journal.document(number)
            story = file_story_from(
                journal, doc.file_id, with_payloads=True, all_problems=all_problems
            )
            story.kind = "D"
            story.documents = [d for d in story.documents if d.id == number]
            story.events = [e for e in story.events if e.document_id in (None, number)]
            story.resolutions = [r for r in story.resolutions if r.document_id in (None, number)]
            story.problems = {k: v for k, v in story.problems.items() if k == number}
            story.problem_totals = {k: v for k, v in story.problem_totals.items() if k == number}
            return story
        return file_story_from(journal, number, with_payloads=True, all_problems=all_problems)
    finally:
        journal.close()


def export_story(config: GatewayConfig, number: int) -> ExportRunRow:
    journal = open_journal(config)
    try:
        return journal.export_run(number)
    finally:
        journal.close()


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayItem:
    kind: str  # "F" (file, optionally one document) or "R" (export run)
    number: int
    document: int | None = None


@dataclass(slots=True)
class ReplayResult:
    item: ReplayItem
    plan: ReplayPlan | None = None
    outcome: str = ""
    error: str = ""
    #: What became of the copy the file's failure left in the error folder ("": nothing).
    error_copy: str = ""

    def lines(self) -> list[str]:
        if self.item.kind == "R":
            return [f"R-{self.item.number}: {self.error or self.outcome}"]
        plan = self.plan
        head = f"F-{self.item.number}: {self.error or self.outcome}"
        if plan is None:
            return [head]
        lines = [head]
        lines += [f"  already done  {x}" for x in plan.already_done]
        lines += [f"  sent again    {x}" for x in plan.requeued]
        lines += [f"  new           {x}" for x in plan.added]
        lines += [f"  still failing {x}" for x in plan.still_failing]
        lines += [f"  skipped       {x}" for x in plan.skipped]
        lines += [f"  unchanged     {x} (--force sends it)" for x in plan.unchanged]
        if self.error_copy:
            lines.append(f"  {self.error_copy}")
        return lines


def select_replay(
    config: GatewayConfig,
    ids: Sequence[str],
    *,
    failed: bool,
    since: datetime | None,
    flow: str | None,
) -> list[ReplayItem]:
    """Turn ``edigw replay`` arguments into the files (and export runs) to replay."""
    items: list[ReplayItem] = []
    journal = open_journal(config)
    try:
        for text in ids:
            kind, number = parse_id(text)
            if kind == "D":
                items.append(ReplayItem("F", journal.document(number).file_id, number))
            else:
                items.append(ReplayItem(kind, number))
        if failed or since is not None:
            partner, name = split_flow(flow) if flow else (None, None)
            # --failed: the failures still open; one an operator resolved stays as it is
            # unless named by its id.
            for listed in journal.file_listing(
                partner=partner,
                flow=name,
                resolved=False if failed else None,
                since=since,
                limit=None,
            ):
                items.append(ReplayItem("F", listed.file.id))
    finally:
        journal.close()
    return list(dict.fromkeys(sorted(items, key=lambda i: (i.kind, i.number, i.document or 0))))


def replay_items(
    config: GatewayConfig,
    items: Sequence[ReplayItem],
    *,
    dry_run: bool,
    clock: Callable[[], datetime] = utc_now,
    force: bool = False,
) -> Iterator[ReplayResult]:
    """Replay each item in turn, sending what was requeued; yields one result per item.
    ``force``: send the documents journalled ``unchanged`` too."""
    with open_parts(config, with_channels=False) as parts:
        for item in items:
            try:
                yield _replay_one(parts, item, dry_run=dry_run, clock=clock, force=force)
            except EdigwError as exc:
                yield ReplayResult(item, error=str(exc))


def _replay_one(
    parts: Parts,
    item: ReplayItem,
    *,
    dry_run: bool,
    clock: Callable[[], datetime],
    force: bool = False,
) -> ReplayResult:
    if item.kind == "R":
        from edigw.pipeline.exports import replay_export

        if dry_run:
            run = parts.journal.export_run(item.number)
            return ReplayResult(item, outcome=f"would deliver {run.file_name} again")
        return ReplayResult(item, outcome=replay_export(parts, item.number))
    row = parts.journal.file(item.number)
    flow_id = f"{row.partner}/{row.flow}"
    runtime = parts.inbound.get(flow_id)
    if runtime is None:
        return ReplayResult(item, error=f"flow {flow_id} is no longer configured")
    plan = replay_file(
        row.id,
        flow=runtime.context,
        journal=parts.journal,
        archive=parts.archive,
        now=clock(),
        only_document=item.document,
        dry_run=dry_run,
        force=force,
    )
    if plan.error:
        return ReplayResult(item, plan, error=plan.error)
    if dry_run:
        return ReplayResult(item, plan, outcome="dry run, nothing changed")
    drain_file(parts, row.id, clock=clock, max_wait=60.0)
    row = parts.journal.file(row.id)
    state = row.state
    outcome = state if state in FINAL_FILE_STATES else f"{state} (documents waiting for a retry)"
    result = ReplayResult(item, plan, outcome=outcome)
    if state == "done" and error_copy_of(parts.journal, row.id) is not None:
        channel = inbound_channel(
            runtime.config,
            seen=JournalSeenFiles(parts.journal),
            data_dir=Path(parts.config.data_dir),
            sftp=parts.sftp,
        )
        try:
            result.error_copy = describe_clearing(
                clear_error_copy(parts.journal, channel, row, now=clock())
            )
        finally:
            channel.close()
    return result


# --------------------------------------------------------------------------- retention


#: A purge leaves archive copies stored less than this long ago (seconds): a file is
#: archived a moment before the journal hears of it.
ARCHIVE_GRACE = 3600.0
#: What a purge forgets unless told to take failed files too.
SETTLED_STATES = (
    str(FileState.DONE),
    str(FileState.SKIPPED_DUPLICATE),
    str(FileState.SUPERSEDED),
)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What ``purge_history`` removed, or would remove (``dry_run``: the journal counts are
    those of files and export runs only)."""

    before: datetime
    dry_run: bool
    journal: PurgeCounts
    archive_copies: int
    archive_bytes: int


def purge_history(
    config: GatewayConfig, *, before: datetime, include_failed: bool, dry_run: bool
) -> PurgeReport:
    """Forget finished files received before ``before`` (failed ones only with
    ``include_failed``) and export runs started before it, then delete the archive copies
    the journal no longer points at.

    The journal goes first: an interrupted purge leaves copies nothing points at (the next
    purge removes them), never a journal entry without its original.
    """
    journal = open_journal(config)
    try:
        states = FINAL_FILE_STATES if include_failed else SETTLED_STATES
        file_ids = journal.purgeable_files(before=before, states=states)
        run_ids = journal.old_export_runs(before=before)
        keep = journal.contents_in_use(except_files=file_ids, except_runs=run_ids)
        if dry_run:
            counts = PurgeCounts(files=len(file_ids), export_runs=len(run_ids))
        else:
            counts = journal.purge(file_ids=file_ids, run_ids=run_ids)
        archive = archive_of(config)
        try:
            copies, freed = archive.remove_unreferenced(
                keep, untouched_for=ARCHIVE_GRACE, now=time.time(), dry_run=dry_run
            )
        finally:
            archive.close()
    finally:
        journal.close()
    return PurgeReport(before, dry_run, counts, copies, freed)
