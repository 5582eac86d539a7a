"""One supervisor owns every loop of the running gateway.

Each loop (poller, watcher, sender, mover, exporter, publisher, probe) runs in a thread of
its own under the supervisor, which:

* restarts a loop that crashed — an exception escaped it, or it returned while the gateway
  runs — after a pause that doubles with each crash within the window (tenacity's
  exponential wait), logging the crash once, with its traceback;
* gives up when a loop crashes more than ``max_restarts`` times within ``window``: it stops
  the other loops cleanly and records why, and ``edigw run`` exits non-zero so that the
  service manager (systemd) restarts the process. Crash loops are bugs or broken
  surroundings; a fresh process is the honest next step, and a loud one;
* stops the loops in stages: stage 0 (pollers, senders, exporter: they finish the file or
  document in hand), then stage 1 (the mover drains the moves stage 0 queued, the publisher
  writes a last report), each stage within what is left of the stop timeout;
* answers :meth:`Supervisor.snapshot` at any time, from any thread: the state, restarts and
  last error of each loop and the current conditions (``edigw.pipeline.health``). Readers
  (status, health endpoints, metrics, alerts) use that copy and never touch the loops.

The supervisor knows nothing of files or Ecolix: a loop is a name, a kind, an optional flow
and a callable that runs until its stage's stop event is set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import tenacity

from edigw.logs import log_context
from edigw.pipeline.health import (
    Conditions,
    GatewayState,
    HealthSnapshot,
    LoopHealth,
    LoopState,
    utc_now,
)

log = logging.getLogger("edigw.supervisor")

DEFAULT_MAX_RESTARTS = 5
DEFAULT_WINDOW = 600.0
DEFAULT_FIRST_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
#: The share of the stop timeout kept for each stage after the first.
FINISH_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    """When to restart a crashed loop, when to give up, and how long a stop may take."""

    max_restarts: int = DEFAULT_MAX_RESTARTS
    window: float = DEFAULT_WINDOW
    first_delay: float = DEFAULT_FIRST_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    stop_timeout: float = DEFAULT_STOP_TIMEOUT

    def backoff(self, crashes: int) -> float:
        """Seconds to wait before restarting a loop that crashed ``crashes`` times within
        the window: ``first_delay`` doubled per crash, at most ``max_delay``."""
        wait = tenacity.wait_exponential(multiplier=self.first_delay, max=self.max_delay)
        state = tenacity.RetryCallState(
            retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={}
        )
        state.attempt_number = max(1, crashes)
        return float(wait(state))


def one_line(error: BaseException) -> str:
    """``ValueError: the first line of its message``, for health and status."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@dataclass(slots=True)
class _Loop:
    """One supervised loop and what is known of it (guarded by the supervisor's lock)."""

    name: str
    kind: str
    run: Callable[[], None]
    flow: str | None
    stage: int
    state: LoopState = "stopped"
    since: datetime = field(default_factory=utc_now)
    restarts: int = 0
    last_error: str | None = None
    last_crash_at: datetime | None = None
    crashes: deque[float] = field(default_factory=deque)
    thread: threading.Thread | None = None
    #: set by :meth:`Supervisor.retire`: its return is its end, not a crash
    retiring: bool = False
    #: ends its pause before a restart: set when it is retired or its stage stops
    wake: threading.Event = field(default_factory=threading.Event)

    def health(self) -> LoopHealth:
        return LoopHealth(
            name=self.name,
            kind=self.kind,
            flow=self.flow,
            state=self.state,
            since=self.since,
            restarts=self.restarts,
            last_error=self.last_error,
            last_crash_at=self.last_crash_at,
        )


class Supervisor:
    """Runs, restarts and stops the gateway's loops; see the module docstring.

    ``stages[i]`` is the event that tells the loops of stage ``i`` to return; ``on_stop``
    callables wake whatever sleeps (a condition variable, a client waiting for its budget)
    when a stop begins.
    """

    def __init__(
        self,
        *,
        stages: Sequence[threading.Event],
        policy: SupervisorPolicy | None = None,
        conditions: Conditions | None = None,
        node: str = "",
        on_stop: Sequence[Callable[[], None]] = (),
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stages:
            msg = "a supervisor needs at least one stop stage"
            raise ValueError(msg)
        self.policy = policy or SupervisorPolicy()
        self.conditions = conditions or Conditions(clock=clock)
        self.node = node
        self.stopping = threading.Event()
        self._stages = list(stages)
        self._on_stop = list(on_stop)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._loops: dict[str, _Loop] = {}
        self._state: GatewayState = "starting"
        self._failure: str | None = None

    # ------------------------------------------------------------------ set-up

    def add(
        self,
        name: str,
        run: Callable[[], None],
        *,
        kind: str,
        flow: str | None = None,
        stage: int = 0,
    ) -> None:
        """Register a loop; it starts with :meth:`start` (or at once if already started)."""
        if not 0 <= stage < len(self._stages):
            msg = f"loop {name}: stage {stage} does not exist (0..{len(self._stages) - 1})"
            raise ValueError(msg)
        loop = _Loop(name=name, kind=kind, run=run, flow=flow, stage=stage)
        with self._lock:
            if name in self._loops:
                msg = f"a loop named {name!r} is already supervised"
                raise ValueError(msg)
            self._loops[name] = loop
            started = self._state != "starting"
        if started:
            self._launch(loop)

    def start(self) -> None:
        """Start every loop; each is ``running`` before the first starts, so that no loop
        (the publisher, started first) ever reports the others as not running yet."""
        with self._lock:
            if self._state != "starting":
                return
            self._state = "running"
            threads = [self._prepare(loop) for loop in self._loops.values()]
        for thread in threads:
            thread.start()

    def _launch(self, loop: _Loop) -> None:
        with self._lock:
            thread = self._prepare(loop)
        thread.start()

    def _prepare(self, loop: _Loop) -> threading.Thread:
        """The loop's thread, not started yet; the loop is ``running`` (caller holds the lock)."""
        thread = threading.Thread(target=self._supervise, args=(loop,), name=loop.name, daemon=True)
        loop.thread = thread
        self._set(loop, "running")
        return thread

    # ------------------------------------------------------------------ reading

    @property
    def failure(self) -> str | None:
        """Why the supervisor gave up, or ``None``."""
        with self._lock:
            return self._failure

    @property
    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return [loop.thread for loop in self._loops.values() if loop.thread is not None]

    def snapshot(self) -> HealthSnapshot:
        """A consistent copy of every loop's health and the current conditions."""
        with self._lock:
            loops = tuple(loop.health() for loop in self._loops.values())
            state, failure = self._state, self._failure
        return HealthSnapshot(
            at=self._clock(),
            node=self.node,
            state=state,
            loops=loops,
            conditions=self.conditions.snapshot(),
            failure=failure,
        )

    def retire(
        self, names: Sequence[str], stop: Callable[[], None], *, timeout: float
    ) -> list[str]:
        """End the named loops while the others run on (a flow removed from ``edigw.yaml``):
        ``stop`` tells them to return (their return is then no crash); each is waited for
        within ``timeout`` seconds in all, and forgotten. Returns the names of those still
        busy then: they end on their own, under a name of their own (``NAME (retiring)``),
        so that a loop of the same name can start meanwhile."""
        with self._lock:
            loops = [self._loops[name] for name in names if name in self._loops]
            for loop in loops:
                loop.retiring = True
                loop.wake.set()  # one waiting to be restarted ends at once
        stop()
        deadline = self._monotonic() + timeout
        for loop in loops:
            if loop.thread is not None:
                loop.thread.join(max(0.0, deadline - self._monotonic()))
        still = []
        with self._lock:
            for loop in loops:
                self._loops.pop(loop.name, None)
                if loop.thread is not None and loop.thread.is_alive():
                    still.append(loop.name)
                    loop.name = f"{loop.name} (retiring)"
                    self._loops[loop.name] = loop
        for name in still:
            log.warning(
                "loop %s still busy after %.0f s: it ends once its work is done", name, timeout
            )
        return still

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        """Ask every stage-0 loop to finish what it holds and return (does not wait)."""
        with self._lock:
            if self._state in ("running", "starting"):
                self._state = "stopping"
        self._stages[0].set()
        self._wake_stage(0)
        self.stopping.set()
        for wake in self._on_stop:
            wake()

    def _wake_stage(self, stage: int) -> None:
        """End the restart pauses of the stage's loops (their stop event is set)."""
        with self._lock:
            for loop in self._loops.values():
                if loop.stage == stage:
                    loop.wake.set()

    def join(self, timeout: float | None = None) -> list[str]:
        """Stop (if not asked yet) stage by stage, waiting at most ``timeout`` seconds in
        all; returns the names of the loops still running then (none after a clean stop).

        Each later stage keeps a share of the timeout (``FINISH_SHARE``): a call that hangs
        in stage 0 does not stop the mover from making the moves already queued.
        """
        self.stop()
        started = self._monotonic()
        last = len(self._stages) - 1
        for stage, event in enumerate(self._stages):
            event.set()
            self._wake_stage(stage)
            for wake in self._on_stop:
                wake()
            deadline = None
            if timeout is not None:
                deadline = started + timeout * (1 - FINISH_SHARE * (last - stage))
            for thread in self._threads_of(stage):
                left = None if deadline is None else max(0.0, deadline - self._monotonic())
                thread.join(left)
        still = [t.name for t in self.threads if t.is_alive()]
        with self._lock:
            self._state = "failed" if self._failure else "stopped"
        if still:
            log.error(
                "stop timeout reached: %s still busy; what they held resumes at the next start",
                ", ".join(still),
            )
        return still

    def _threads_of(self, stage: int) -> list[threading.Thread]:
        with self._lock:
            return [
                loop.thread
                for loop in self._loops.values()
                if loop.stage == stage and loop.thread is not None
            ]

    # ------------------------------------------------------------------ the loops

    def _set(self, loop: _Loop, state: LoopState) -> None:
        """Change a loop's state (caller holds the lock)."""
        if loop.state != state:
            loop.state = state
            loop.since = self._clock()

    def _supervise(self, loop: _Loop) -> None:
        with log_context(flow=loop.flow):  # a flow's loop: its crashes name the flow too
            self._run_until_stopped(loop)

    def _run_until_stopped(self, loop: _Loop) -> None:
        stop = self._stages[loop.stage]
        while True:
            error: BaseException | None = None
            try:
                loop.run()
            except BaseException as exc:  # every death is seen: that is the job
                error = exc
            if stop.is_set() or loop.retiring:
                if error is not None:
                    log.error("loop %s failed while stopping", loop.name, exc_info=error)
                    self._record(loop, error)
                break
            delay = self._crashed(loop, error)
            if delay is None:
                return
            loop.wake.wait(delay)  # cut short by a stop of its stage, or its retirement
            if stop.is_set() or loop.retiring:
                break
            with self._lock:
                loop.restarts += 1
                self._set(loop, "running")
            log.info("loop %s restarted (restart %d)", loop.name, loop.restarts)
        with self._lock:
            self._set(loop, "stopped")
            if loop.retiring and self._loops.get(loop.name) is loop:
                del self._loops[loop.name]  # its flow is gone: nothing to report

    def _record(self, loop: _Loop, error: BaseException | None) -> int:
        """Note a crash; returns the crashes within the window, this one included."""
        now = self._monotonic()
        with self._lock:
            loop.crashes.append(now)
            while loop.crashes and loop.crashes[0] < now - self.policy.window:
                loop.crashes.popleft()
            loop.last_error = (
                one_line(error) if error is not None else "returned while the gateway runs"
            )
            loop.last_crash_at = self._clock()
            return len(loop.crashes)

    def _crashed(self, loop: _Loop, error: BaseException | None) -> float | None:
        """Log the crash once; the pause before the restart, or ``None`` when giving up."""
        crashes = self._record(loop, error)
        window = _duration(self.policy.window)
        if crashes > self.policy.max_restarts:
            reason = (
                f"loop {loop.name} crashed {crashes} times within {window} "
                f"(supervisor.max_restarts: {self.policy.max_restarts}); last: {loop.last_error}"
            )
            log.critical("%s; stopping the gateway", reason, exc_info=error)
            with self._lock:
                self._set(loop, "failed")
                if self._failure is None:
                    self._failure = reason
            self.stop()
            return None
        delay = self.policy.backoff(crashes)
        with self._lock:
            self._set(loop, "restarting")
        if error is None:
            log.error(
                "loop %s returned while the gateway runs (%d within %s); restarting in %.1f s",
                loop.name,
                crashes,
                window,
                delay,
            )
        else:
            log.error(
                "loop %s crashed (%d within %s); restarting in %.1f s",
                loop.name,
                crashes,
                window,
                delay,
                exc_info=error,
            )
        return delay


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@contextmanager
def thread_crashes_logged(conditions: Conditions | None = None) -> Iterator[None]:
    """While inside, an exception that kills any thread (one the supervisor does not run:
    a library's worker, a folder watcher) is logged through ``logging`` with its traceback,
    never written bare to stderr, and recorded as a condition ``thread NAME``."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "unknown"
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error("thread %s died", name, exc_info=exc_info)  # type: ignore[arg-type]
        if conditions is not None:
            what = (
                one_line(args.exc_value) if args.exc_value is not None else args.exc_type.__name__
            )
            conditions.set(f"thread {name}", f"died: {what}")

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
