"""``edigw run``'s service: the gateway's loops under their supervisor until a stop.

What ``serve`` starts beside the flows' loops: the alert channels, the health and metrics
endpoints, and the publisher of ``usage.json`` and ``health.json`` for ``edigw status``
(another process; see ``edigw.pipeline.gateway_status``). The CLI parses options and
renders; this opens the parts, runs them and returns how it ended.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edigw.alerts.configured import GatewayAlerts
from edigw.alerts.watch import watch_loop
from edigw.config import GatewayConfig, parse_listen
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import ConfigError
from edigw.pipeline.assembly import Parts, open_parts, supervisor_policy
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.gateway_status import USAGE_FILE
from edigw.pipeline.health import PUBLISH_EVERY, write_health, write_json_atomically
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.sending_process import SendingProcess
from edigw.pipeline.signals import Signals, utc_now
from edigw.pipeline.supervisor import thread_crashes_logged

if TYPE_CHECKING:
    from edigw.pipeline.endpoints import HealthServer

log = logging.getLogger("edigw.service")

#: Seconds between two looks, in ``serve``'s main thread, at whether a stop was asked for.
STOP_CHECK = 0.2


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How ``serve`` ended: on request and cleanly, after giving up on a loop that kept
    crashing (``failure``), or with loops still busy when the stop timeout ran out."""

    failure: str | None = None
    still_busy: tuple[str, ...] = ()


def process_count(setting: int | Literal["auto"]) -> int:
    """How many processes ``edigw run`` is: ``auto`` is 2 when this process may run on two
    cores or more (its CPU affinity: what a container or ``taskset`` leaves it), else 1, as
    a sending process on a single core only adds hand-overs."""
    if setting != "auto":
        return setting
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores = len(usable) if usable is not None else (os.cpu_count() or 1)
    return 2 if cores >= 2 else 1


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
    processes: int | Literal["auto"] | None = None,
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

    ``processes`` (default ``processes`` in the configuration): 2 (or ``auto`` on two
    cores or more, :func:`process_count`) runs the senders in a process of their own (``edigw.pipeline.sending_process``), which logs in ``log_format``
    (as ``edigw.logs.configure_logging``; ``None``: left to the library's defaults, as in
    this process unless its caller configured it).
    """
    policy = supervisor_policy(config)
    signals = Signals()
    sending = None
    if process_count(processes or config.processes) == 2:
        sending = SendingProcess.of(config, senders, log_format, signals)
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
