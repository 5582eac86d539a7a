"""The senders in a process of their own (``processes: 2``): two cores for one gateway.

One Python process runs one thread at a time. Taking files in (poll, archive, read, map,
journal) and sending their documents (claim, Ecolix call, journal) then take turns on one
core, however many the machine has. With ``processes: 2`` ``edigw run`` starts a second
process that only sends: the first (the *intake process*) keeps everything else, the pollers,
the mover, the exports, the health endpoints. They share the journal, where the documents
wait, and, on one host, the call budget (``edigw.ecolix.host_ledger``).

What crosses between them, over one pipe:

- intake → sending: *wake* (documents were journalled: wake that many idle senders; the
  senders also look on their own every second, so a lost wake-up only delays), *flows* (a
  reloaded ``edigw.yaml``: the flows whose mappings locate refused values) and *stop*;
- sending → intake: *finished* (a file's last document is done: the mover disposes of its
  source; the mover also asks the journal once a second, so a lost message only delays) and,
  every second, a *report*: the sending process's Ecolix usage, its conditions, its in-flight
  senders and its send times, for ``usage.json``, ``/readyz`` and ``/metrics``.

The intake process supervises the sending process like any loop: if it dies, it is started
again (the supervisor's restart rules), and the new one resumes at once what the dead one
had claimed (``recover_dead_claims``: its leases name a dead pid of this host). If the intake
process dies, the pipe closes and the sending process finishes its calls in flight and ends.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from edigw.config import GatewayConfig
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import EdigwError
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.health import Conditions

if TYPE_CHECKING:
    from edigw.pipeline.assembly import Parts
    from edigw.pipeline.signals import Signals

log = logging.getLogger("edigw.sending")

#: Seconds between two reports of the sending process.
REPORT_EVERY = 1.0
#: Seconds the intake process waits for a sending process to start and say so.
START_TIMEOUT = 60.0
#: After the sending process ended unasked, how long a stop of the whole gateway may take to
#: show (a ``SIGTERM`` sent to both processes at once reaches the sending process first).
STOP_GRACE = 2.0
#: Prefix of the conditions the sending process reports, as the intake process shows them.
CONDITION_PREFIX = "sending process: "


class SendingProcessDied(EdigwError):
    """The sending process ended without being asked to (the supervisor starts another)."""


@dataclass(frozen=True, slots=True)
class Report:
    """What the sending process tells every second (and once more as it ends)."""

    usage: UsageSnapshot
    conditions: dict[str, str]
    in_flight: tuple[int, int]
    timed: list[tuple[str, str, float]]


@dataclass
class SendingProcess:
    """The intake side: starts the sending process, relays wake-ups to it and what it
    reports back. :meth:`run` is a supervised loop of the intake process's gateway."""

    config: GatewayConfig
    senders: Senders
    #: How the sending process logs (``text``/``json``, as ``configure_logging``); ``None``:
    #: it configures nothing (a test or a benchmark that left logging alone).
    log_format: str | None
    finished: Callable[[int], None]
    conditions: Conditions
    timed: Callable[[str, str, float], None] = lambda _kind, _flow, _s: None
    _conn: Connection | None = field(default=None, init=False)
    _send_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _last: Report | None = field(default=None, init=False)
    _pid: int | None = field(default=None, init=False)
    _ready: tuple[BaseProcess, Connection, GatewayConfig] | None = field(default=None, init=False)

    @classmethod
    def of(
        cls, config: GatewayConfig, senders: Senders, log_format: str | None, signals: Signals
    ) -> SendingProcess:
        """The sending process of the gateway whose loops share ``signals``: what it reports
        goes to the mover, the conditions and the metrics hooked there."""
        return cls(
            config,
            senders,
            log_format,
            finished=signals.finished_files.put,
            conditions=signals.conditions,
            timed=lambda kind, flow, seconds: signals.timed(kind, flow, seconds),
        )

    @property
    def pid(self) -> int | None:
        """The running sending process's pid (``None`` between two)."""
        return self._pid

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded ``edigw.yaml`` (SIGHUP), as the intake process applied it: the sending
        process follows its flows, and a sending process started later starts from it."""
        self.config = config
        self._tell(("flows", config))

    def wake(self, *, everyone: bool = False) -> None:
        """Tell the sending process that documents are due (one idle sender, or all)."""
        self._tell(("wake", everyone))

    @property
    def usage(self) -> UsageSnapshot | None:
        """The Ecolix usage the sending process last reported."""
        return self._last.usage if self._last is not None else None

    @property
    def in_flight(self) -> tuple[int, int]:
        """Documents in the hands of its senders, and how many may be: last reported."""
        return self._last.in_flight if self._last is not None else (0, 0)

    def start(self) -> None:
        """Start the sending process now, before the gateway's loops (:meth:`run` takes it
        over): for a caller that times the gateway's work apart from its start-up."""
        self._ready = self._spawn()

    def run(self, stop: threading.Event) -> None:
        """Start a sending process and relay until ``stop``; then ask it to finish and wait.

        Raises :class:`SendingProcessDied` when it ends unasked (the supervisor restarts this
        loop, hence the process)."""
        process, ours, started_with = self._ready if self._ready is not None else self._spawn()
        self._ready = None
        try:
            with self._send_lock:
                self._conn = ours
                if self.config is not started_with:  # reloaded while it started
                    with contextlib.suppress(OSError, ValueError):  # ended: the relay tells
                        ours.send(("flows", self.config))
            log.info("sending process %d started", process.pid)
            while not stop.is_set():
                if not self._relay(ours, timeout=0.1):
                    if stop.wait(STOP_GRACE):
                        break
                    msg = f"the sending process {process.pid} ended (exit code {process.exitcode})"
                    raise SendingProcessDied(msg)
            self._tell(("stop", None))
            while self._relay(ours, timeout=0.1):
                pass  # what it sends until it ends: the last finished files, its last report
        finally:
            with self._send_lock:
                self._conn = None
            self._end(process, ours)
            self._forget_conditions()

    def _spawn(self) -> tuple[BaseProcess, Connection, GatewayConfig]:
        """A started sending process, the intake's end of its pipe (once it said it
        started) and the configuration it started from."""
        config = self.config
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=sending_main,
            args=(config, self.senders, self.log_format, theirs),
            name="edigw-sending",
        )
        process.start()
        theirs.close()
        self._pid = process.pid
        try:
            self._await_start(ours, process)
        except BaseException:
            self._end(process, ours)
            raise
        return process, ours, config

    def _end(self, process: BaseProcess, conn: Connection) -> None:
        conn.close()
        process.join(timeout=5.0)
        if process.is_alive():
            process.kill()
            process.join()
        self._pid = None

    def _await_start(self, conn: Connection, process: BaseProcess) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if conn.poll(0.1):
                kind, value = conn.recv()
                if kind == "started":
                    return
                if kind == "failed":
                    msg = f"the sending process could not start: {value}"
                    raise SendingProcessDied(msg)
            elif not process.is_alive():
                msg = f"the sending process ended at start (exit code {process.exitcode})"
                raise SendingProcessDied(msg)
        msg = f"the sending process did not start within {START_TIMEOUT:.0f} s"
        raise SendingProcessDied(msg)

    def _relay(self, conn: Connection, *, timeout: float) -> bool:
        """Take what the sending process sent meanwhile; ``False`` once it has ended."""
        try:
            if not conn.poll(timeout):
                return True
            while True:
                kind, value = conn.recv()
                if kind == "finished":
                    self.finished(value)
                elif kind == "report":
                    self._take_report(value)
                if not conn.poll():
                    return True
        except (EOFError, OSError):
            return False

    def _take_report(self, report: Report) -> None:
        self._last = report
        for kind, flow, seconds in report.timed:
            self.timed(kind, flow, seconds)
        for name, message in report.conditions.items():
            self.conditions.set(CONDITION_PREFIX + name, message, quiet=True)
        for condition in self.conditions.snapshot():
            name = condition.name
            gone = name.removeprefix(CONDITION_PREFIX) not in report.conditions
            if name.startswith(CONDITION_PREFIX) and gone:
                self.conditions.clear(name, quiet=True)

    def _forget_conditions(self) -> None:
        for condition in self.conditions.snapshot():
            if condition.name.startswith(CONDITION_PREFIX):
                self.conditions.clear(condition.name, quiet=True)

    def _tell(self, message: tuple[str, Any]) -> None:
        with self._send_lock:
            if self._conn is None:
                return  # between two processes: the next one looks on its own at start
            with contextlib.suppress(OSError, ValueError):  # it ended: the relay loop tells
                self._conn.send(message)


class _Told:
    """The sending process's end of the pipe: one writer at a time."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def send(self, kind: str, value: Any) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            try:
                self._conn.send((kind, value))
            except (OSError, ValueError):
                self.closed.set()  # the intake process is gone: we are stopping anyway


class FinishedFiles(queue.Queue[int | None]):
    """The sending process's ``signals.finished_files``: each file put is told to the intake
    process's mover (this process has none)."""

    def __init__(self, told: _Told) -> None:
        super().__init__()
        self._told = told

    def put(self, item: int | None, block: bool = True, timeout: float | None = None) -> None:  # noqa: FBT001, FBT002 - queue.Queue's own signature
        if item is not None:
            self._told.send("finished", item)


def sending_main(
    config: GatewayConfig, senders: Senders, log_format: str | None, conn: Connection
) -> None:
    """The sending process: senders only, until told to stop or the intake process is gone."""
    from edigw.logs import configure_logging
    from edigw.pipeline.assembly import open_parts

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the intake process too
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the intake process reloads
    if log_format is not None:
        configure_logging(log_format)
    told = _Told(conn)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with open_parts(config, with_channels=False, set_aside_broken=True) as parts:
            _send_until_stopped(parts, senders, told, stop, conn)
    except Exception as exc:
        log.exception("sending process: %s", exc)
        told.send("failed", str(exc))  # heard only before "started": then it is a crash
    finally:
        conn.close()


def _send_until_stopped(
    parts: Parts, senders: Senders, told: _Told, stop: threading.Event, conn: Connection
) -> None:
    from edigw.pipeline.assembly import supervisor_policy
    from edigw.pipeline.runtime import Gateway
    from edigw.pipeline.signals import Signals

    times = _Times()
    signals = Signals(finished_files=FinishedFiles(told), timed=times.note)
    gateway = Gateway(
        parts,
        senders=senders,
        policy=supervisor_policy(parts.config),
        signals=signals,
        role="sending",
    )
    gateway.start()
    told.send("started", parts.node)
    threading.Thread(
        target=_listen,
        args=(conn, signals, stop, gateway.reloader.take_flows),
        name="intake listener",
        daemon=True,
    ).start()

    def report() -> None:
        gate = signals.in_flight
        told.send(
            "report",
            Report(
                usage=_portable(parts.client.usage),
                conditions={c.name: c.message for c in signals.conditions.snapshot()},
                in_flight=(gate.in_use, gate.limit),
                timed=times.taken(),
            ),
        )

    while not stop.wait(REPORT_EVERY) and not gateway.stopping.is_set():
        report()
    gateway.stop()
    gateway.join(timeout=parts.config.supervisor.stop_timeout)
    report()


class _Times:
    """Send times noted since the last report (for the intake process's ``/metrics``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._noted: list[tuple[str, str, float]] = []

    def note(self, kind: str, flow: str, seconds: float) -> None:
        with self._lock:
            self._noted.append((kind, flow, seconds))

    def taken(self) -> list[tuple[str, str, float]]:
        with self._lock:
            noted, self._noted = self._noted, []
        return noted


def _listen(
    conn: Connection,
    signals: Any,
    stop: threading.Event,
    take_flows: Callable[[GatewayConfig], None],
) -> None:
    """Wake-ups, reloaded flows and the stop from the intake process; its end of the pipe
    closing (it died) is a stop too."""
    try:
        while True:
            kind, value = conn.recv()
            if kind == "wake":
                signals.work.announce(everyone=bool(value))
            elif kind == "flows":
                take_flows(value)
            elif kind == "stop":
                break
    except (EOFError, OSError):
        log.warning("the intake process is gone: finishing the calls in flight, then ending")
    stop.set()


def _portable(usage: UsageSnapshot) -> UsageSnapshot:
    """The snapshot with plain dicts, which a pipe can carry."""
    return UsageSnapshot(
        calls=usage.calls,
        by_operation=dict(usage.by_operation),
        last_minute=usage.last_minute,
        limit_per_minute=usage.limit_per_minute,
        throttled=usage.throttled,
        retries=usage.retries,
        waited_seconds=usage.waited_seconds,
        by_status=dict(usage.by_status),
    )


def combined_usage(own: UsageSnapshot, other: UsageSnapshot | None) -> UsageSnapshot:
    """The gateway's Ecolix usage: its intake process's calls and its sending process's."""
    if other is None:
        return own
    by_operation = dict(own.by_operation)
    for name, count in other.by_operation.items():
        by_operation[name] = by_operation.get(name, 0) + count
    by_status = dict(own.by_status)
    for status, count in other.by_status.items():
        by_status[status] = by_status.get(status, 0) + count
    return UsageSnapshot(
        calls=own.calls + other.calls,
        by_operation=by_operation,
        last_minute=own.last_minute + other.last_minute,
        limit_per_minute=own.limit_per_minute,
        throttled=own.throttled + other.throttled,
        retries=own.retries + other.retries,
        waited_seconds=own.waited_seconds + other.waited_seconds,
        by_status=by_status,
    )
