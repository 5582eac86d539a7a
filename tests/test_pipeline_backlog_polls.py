"""A backlog goes in at the pace of intake: after a full batch the poller looks again at once,
never waiting its interval while files are ready; a batch that took nothing in is no reason to
hurry (no busy loop while the journal or the archive fails)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from edigw.channels.base import PollResult
from edigw.errors import ChannelError, JournalError
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.inbound import Ingested
from edigw.pipeline.poller import SOONEST_LOOK, FlowPoller, poller_loop
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import inbound_flow, write_workspace
from tests.support.orderfiles import write_order_files

FILES = 5
BATCH = 2


class StopAtSecondPause(threading.Event):
    """The poller's wake-up: the first pause (after the first look, nothing is ready yet)
    ends at once; the second stops the loop, noting how many files the journal held then."""

    def __init__(self, parts: Parts, signals: Signals) -> None:
        super().__init__()
        self.parts = parts
        self.signals = signals
        self.pauses = 0
        self.files_at_second_pause = -1

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses += 1
        if self.pauses == 2:
            self.files_at_second_pause = len(self.parts.journal.files())
            self.signals.stop.set()
        return True


def backlog_workspace(root: Path, ecolix: Any) -> Any:
    """Ready at the second look, 2 files a look, an hour between looks."""
    flow = inbound_flow(
        "ecommerce-orders-csv.yaml",
        "webshop",
        "orders",
        readiness={"mode": "min_age", "seconds": 0},
        poll_interval=3600,
        max_files_per_poll=BATCH,
    )
    ws = write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )
    write_order_files(ws.inbox("webshop", "orders"), files=FILES, orders_per_file=1, prefix="B")
    return ws


def watched_poller(parts: Parts) -> tuple[FlowPoller, Signals, StopAtSecondPause]:
    """The orders flow's poller, woken by a :class:`StopAtSecondPause`."""
    signals = Signals()
    poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
    wake = StopAtSecondPause(parts, signals)
    poller.wake = wake
    return poller, signals, wake


def test_after_a_full_batch_the_poller_looks_again_without_waiting_its_interval(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ws = backlog_workspace(tmp_path / "gw", sandbox_factory())
    with open_parts(ws.load()) as parts:
        poller, signals, wake = watched_poller(parts)

        poller_loop(poller, signals)

        assert wake.files_at_second_pause == FILES  # 2 + 2 + 1, then the pause


def test_a_full_batch_that_took_nothing_in_waits_the_interval(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ws = backlog_workspace(tmp_path / "gw", sandbox_factory())
    with open_parts(ws.load()) as parts:
        poller, signals, wake = watched_poller(parts)
        polls = 0
        poll_once = poller.poll_once

        def counted() -> list[Ingested]:
            nonlocal polls
            polls += 1
            if polls > 10:  # a busy loop: stop it, the assertion below tells
                signals.stop.set()
            return poll_once()

        def journal_down(_incoming: object) -> Ingested:
            raise JournalError("the journal is unavailable")

        poller.poll_once = counted  # type: ignore[method-assign]
        poller.take = journal_down  # type: ignore[method-assign,assignment]

        poller_loop(poller, signals)

        assert (polls, wake.pauses) == (2, 2)  # a look, a pause, a failed batch, a pause


def test_a_file_that_arrives_during_a_look_wakes_the_next_look_at_once(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    """A done file touched while the folder is being listed must not wait out the interval
    (an hour here): its wake-up, set during the look, survives the look."""
    ws = backlog_workspace(tmp_path / "gw", sandbox_factory())
    with open_parts(ws.load()) as parts:
        signals = Signals()
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        looks = 0

        def look() -> list[Ingested]:
            nonlocal looks
            looks += 1
            if looks == 2:  # the second look came: stop (as a stop does, waking the poller)
                signals.stop.set()
            poller.wake.set()  # the first look: an arrival while the folder is listed
            return []

        poller.poll_once = look  # type: ignore[method-assign]
        loop = threading.Thread(target=poller_loop, args=(poller, signals), daemon=True)
        loop.start()
        loop.join(timeout=10)
        stuck = loop.is_alive()
        signals.stop.set()
        poller.wake.set()
        loop.join(timeout=10)

    assert not stuck, "the wake-up set during the look was lost: the poller waits its interval"
    assert looks == 2


class RecordedPauses(threading.Event):
    """The poller's wake-up: notes each pause's timeout, ends each at once, and stops the loop
    at the ``last``-th."""

    def __init__(self, signals: Signals, last: int) -> None:
        super().__init__()
        self.signals = signals
        self.last = last
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        if len(self.timeouts) == self.last:
            self.signals.stop.set()
        return True


def test_a_file_seen_but_not_ready_is_looked_at_again_when_it_may_be_ready(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    """Ready at the second look (``min_age`` 0): the next look comes at once, not an hour later."""
    ws = backlog_workspace(tmp_path / "gw", sandbox_factory())
    with open_parts(ws.load()) as parts:
        signals = Signals()
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        poller.wake = wake = RecordedPauses(signals, last=1)

        poller_loop(poller, signals)

    assert wake.timeouts == [SOONEST_LOOK]


def test_a_poll_that_fails_waits_the_interval_whatever_an_earlier_look_saw(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    """A channel that fails after a look that saw a file nearly ready is not asked again ten
    times a second: the failed poll forgets when that file may be ready."""
    ws = backlog_workspace(tmp_path / "gw", sandbox_factory())
    with open_parts(ws.load()) as parts:
        signals = Signals()
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        poller.wake = wake = RecordedPauses(signals, last=2)
        channel = poller.runtime.channel
        assert channel is not None
        looks = 0
        real_poll = channel.poll

        def poll_then_fail(*, now: float) -> PollResult:
            nonlocal looks
            looks += 1
            if looks > 1:
                raise ChannelError("the partner's server is down")
            return real_poll(now=now)

        channel.poll = poll_then_fail  # type: ignore[method-assign]

        poller_loop(poller, signals)

    assert wake.timeouts == [SOONEST_LOOK, 3600.0]
