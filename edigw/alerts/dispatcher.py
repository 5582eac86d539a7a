"""Alert delivery off the data path: bounded queues, background threads, bounded retries.

``notify`` puts an alert in a bounded queue and returns; it never blocks and never raises
(a full queue drops the alert and says so in the log, once per burst). One thread groups
the alerts (``digest.Grouper``) and hands each message to every channel; each channel has
its own thread and queue, so a webhook that is down delays neither the mail nor the
pipeline. A failed delivery is logged and tried again after a pause that doubles
(tenacity), at most ``attempts`` times; then the message is given up, loudly.

``close`` sends what is held as a last digest and gives the channels what is left of its
timeout; pauses between attempts are cut short then.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import tenacity

from edigw.alerts.digest import DEFAULT_WINDOW, Grouper, Message
from edigw.alerts.events import Alert, AlertDeliveryError

log = logging.getLogger("edigw.alerts")

DEFAULT_QUEUE_SIZE = 1000
#: Messages waiting for one channel; more while it is down are dropped (and logged).
CHANNEL_QUEUE_SIZE = 100
DEFAULT_ATTEMPTS = 5
DEFAULT_FIRST_DELAY = 2.0
DEFAULT_MAX_DELAY = 60.0
DEFAULT_CLOSE_TIMEOUT = 10.0


class AlertChannel(Protocol):
    """Somewhere a message goes: ``send`` raises ``AlertDeliveryError`` when it did not."""

    name: str

    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How often, and with which pauses, a channel is tried with one message."""

    attempts: int = DEFAULT_ATTEMPTS
    first_delay: float = DEFAULT_FIRST_DELAY
    max_delay: float = DEFAULT_MAX_DELAY


_STOP = object()


class _ChannelWorker:
    """One channel's thread: sends its messages in order, retrying each a bounded number
    of times."""

    def __init__(self, channel: AlertChannel, policy: DeliveryPolicy, closing: threading.Event):
        self.channel = channel
        self._policy = policy
        self._closing = closing
        self._queue: queue.Queue[object] = queue.Queue(CHANNEL_QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name=f"alerts {channel.name}", daemon=True)
        self.sent = 0
        self.lost = 0

    def put(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.lost += 1
            log.error("alerts: %s is backed up; a message is dropped", self.channel.name)

    def stop(self) -> None:
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            self._closing.set()  # the worker then drains fast and sees the stop later
            self._queue.put(_STOP)

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not _STOP:
                assert isinstance(item, Message)
                self._deliver(item)
        finally:
            self.channel.close()

    def _deliver(self, message: Message) -> None:
        policy = self._policy
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
            wait=tenacity.wait_exponential(multiplier=policy.first_delay, max=policy.max_delay),
            retry=tenacity.retry_if_exception_type(AlertDeliveryError),
            sleep=self._pause,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            retrying(self.channel.send, message)
        except AlertDeliveryError as exc:
            self.lost += 1
            log.error(
                "alerts: %s gave up after %d attempts; lost: %s (%s)",
                self.channel.name,
                policy.attempts,
                message.subject,
                exc,
            )
        except Exception:  # a bug in a channel must not kill the thread
            self.lost += 1
            log.exception(
                "alerts: %s failed unexpectedly; lost: %s", self.channel.name, message.subject
            )
        else:
            self.sent += 1
            log.info("alerts: %s sent: %s", self.channel.name, message.subject)

    def _pause(self, seconds: float) -> None:
        self._closing.wait(seconds)  # cut short by close(): the last attempts come quickly

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "alerts: %s failed (attempt %d): %s; trying again in %.0f s",
            self.channel.name,
            state.attempt_number,
            error,
            wait,
        )


class AlertDispatcher:
    """Takes alerts from any thread and delivers them through ``channels``; see the module
    docstring. ``start`` once, ``close`` once."""

    def __init__(
        self,
        channels: Sequence[AlertChannel],
        *,
        window: float = DEFAULT_WINDOW,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        policy: DeliveryPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grouper = Grouper(window)
        self._monotonic = monotonic
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._closing = threading.Event()
        self._workers = [
            _ChannelWorker(channel, policy or DeliveryPolicy(), self._closing)
            for channel in channels
        ]
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def channels(self) -> list[str]:
        return [worker.channel.name for worker in self._workers]

    def start(self) -> None:
        for worker in self._workers:
            worker.thread.start()
        self._thread.start()

    def notify(self, alert: Alert) -> None:
        """Queue ``alert``; returns at once. A full queue drops it (logged once per burst)."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            with self._lock:
                self._dropped += 1
                first = self._dropped == 1
            if first:
                log.error("alerts: the alert queue is full; alerts are dropped until it drains")

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Send what is held, then stop; waits at most ``timeout`` seconds in all."""
        deadline = self._monotonic() + timeout
        self._queue.put(_STOP)
        self._thread.join(max(0.0, deadline - self._monotonic()))
        self._closing.set()
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - self._monotonic()))
            if worker.thread.is_alive():
                log.error(
                    "alerts: %s still busy at stop; its last messages are lost", worker.channel.name
                )

    def _run(self) -> None:
        while True:
            due = self._grouper.due
            timeout = None if due is None else max(0.0, due - self._monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._hand_out(self._grouper.flush(self._monotonic()))
                continue
            if item is _STOP:
                self._hand_out(self._grouper.flush(self._monotonic(), force=True))
                return
            assert isinstance(item, Alert)
            self._note_drops()
            try:
                self._hand_out(self._grouper.offer(item, self._monotonic()))
            except Exception:  # never let one odd alert end alerting
                log.exception("alerts: could not group an alert: %s", item.title)

    def _note_drops(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.error("alerts: %d alerts were dropped while the queue was full", dropped)

    def _hand_out(self, messages: list[Message]) -> None:
        for message in messages:
            for worker in self._workers:
                worker.put(message)
