"""The supervisor on its own: restarts with backoff, giving up, staged stops, health, conditions.

Loops here are small functions; the gateway's real loops under the supervisor are in
``test_pipeline_supervision.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edigw.pipeline.health import Conditions, HealthSnapshot, LoopHealth
from edigw.pipeline.supervisor import Supervisor, SupervisorPolicy, thread_crashes_logged
from tests.fixtures.gateway import wait_until

FAST = SupervisorPolicy(max_restarts=5, window=600, first_delay=0.01, max_delay=0.05)


class Stages:
    def __init__(self, count: int = 2) -> None:
        self.events = [threading.Event() for _ in range(count)]

    @property
    def stop(self) -> threading.Event:
        return self.events[0]


@pytest.fixture
def stages() -> Stages:
    return Stages()


@pytest.fixture
def supervisor(stages: Stages) -> Iterator[Supervisor]:
    sup = Supervisor(stages=stages.events, policy=FAST, node="test:1")
    yield sup
    sup.join(timeout=5)


def crashing(times: int, stop: threading.Event, *, error: str = "boom") -> Callable[[], None]:
    """A loop that raises on its first ``times`` runs, then runs until ``stop``."""
    runs = {"n": 0}

    def loop() -> None:
        runs["n"] += 1
        if runs["n"] <= times:
            raise RuntimeError(f"{error} {runs['n']}")
        stop.wait()

    return loop


def loop_health(sup: Supervisor, name: str) -> LoopHealth:
    [found] = [loop for loop in sup.snapshot().loops if loop.name == name]
    return found


def test_backoff_doubles_from_the_first_delay_up_to_the_maximum() -> None:
    policy = SupervisorPolicy(first_delay=1, max_delay=60)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_crashed_loop_is_restarted_and_its_crash_is_remembered(
    supervisor: Supervisor, stages: Stages
) -> None:
    supervisor.add("worker", crashing(2, stages.stop), kind="sender")
    supervisor.start()
    wait_until(lambda: loop_health(supervisor, "worker").restarts == 2, what="two restarts")
    health = loop_health(supervisor, "worker")
    assert health.state == "running"
    assert health.last_error == "RuntimeError: boom 2"
    assert health.last_crash_at is not None
    assert supervisor.failure is None


def test_each_crash_is_logged_once_with_its_traceback(
    supervisor: Supervisor, stages: Stages, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor.add("worker", crashing(1, stages.stop), kind="sender")
    with caplog.at_level(logging.INFO, logger="edigw.supervisor"):
        supervisor.start()
        wait_until(lambda: loop_health(supervisor, "worker").restarts == 1, what="a restart")
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crashes) == 1
    assert crashes[0].levelno == logging.ERROR
    assert crashes[0].exc_info is not None
    assert "boom 1" in caplog.text


def test_a_loop_that_returns_while_the_gateway_runs_is_restarted(
    supervisor: Supervisor, stages: Stages
) -> None:
    runs = []

    def returns_once() -> None:
        runs.append(1)
        if len(runs) > 1:
            stages.stop.wait()

    supervisor.add("quitter", returns_once, kind="poller", flow="p/f")
    supervisor.start()
    wait_until(lambda: loop_health(supervisor, "quitter").restarts == 1, what="a restart")
    assert loop_health(supervisor, "quitter").last_error == "returned while the gateway runs"


def test_a_restarting_loop_shows_its_flow_as_unhealthy(stages: Stages) -> None:
    slow = SupervisorPolicy(first_delay=30, max_delay=30)
    sup = Supervisor(stages=stages.events, policy=slow)
    sup.add("poller p/f", crashing(1, stages.stop), kind="poller", flow="p/f")
    sup.add("poller p/g", lambda: stages.stop.wait() and None, kind="poller", flow="p/g")
    sup.start()
    try:
        wait_until(lambda: loop_health(sup, "poller p/f").state == "restarting", what="backoff")
        snapshot = sup.snapshot()
    finally:
        sup.join(timeout=5)
    assert not snapshot.healthy
    assert snapshot.flow_problems() == {"p/f": ["poller p/f restarting: RuntimeError: boom 1"]}


def test_a_loop_crashing_too_often_stops_every_loop_and_says_why(stages: Stages) -> None:
    policy = SupervisorPolicy(max_restarts=2, window=600, first_delay=0.01, max_delay=0.01)
    sup = Supervisor(stages=stages.events, policy=policy)
    finished: list[str] = []

    def steady() -> None:
        stages.stop.wait()
        finished.append("steady")

    sup.add("broken", crashing(100, stages.stop), kind="sender")
    sup.add("steady", steady, kind="poller", flow="p/f")
    sup.start()
    assert sup.stopping.wait(10), "the supervisor gave up"
    assert sup.join(timeout=5) == []
    assert finished == ["steady"]
    assert sup.failure is not None
    assert sup.failure.startswith("loop broken crashed 3 times within 10 min")
    states = {loop.name: loop.state for loop in sup.snapshot().loops}
    assert states == {"broken": "failed", "steady": "stopped"}
    assert sup.snapshot().state == "failed"


def test_crashes_older_than_the_window_are_forgiven(stages: Stages) -> None:
    now = {"t": 0.0}
    policy = SupervisorPolicy(max_restarts=1, window=60, first_delay=0.01, max_delay=0.01)
    sup = Supervisor(stages=stages.events, policy=policy, monotonic=lambda: now["t"])
    runs = {"n": 0}

    def crashes_a_minute_apart() -> None:
        runs["n"] += 1
        if runs["n"] <= 3:
            now["t"] += 61  # each crash comes after the window of the previous one
            raise RuntimeError("once in a while")
        stages.stop.wait()

    sup.add("rare", crashes_a_minute_apart, kind="exporter")
    sup.start()
    try:
        wait_until(lambda: loop_health(sup, "rare").restarts == 3, what="three restarts")
    finally:
        sup.join(timeout=5)
    assert sup.failure is None


def test_later_stages_stop_only_after_earlier_ones_have_finished(stages: Stages) -> None:
    sup = Supervisor(stages=stages.events, policy=FAST)
    order: list[str] = []
    release = threading.Event()

    def producer() -> None:
        stages.events[0].wait()
        release.wait(5)  # finishing the document in hand
        order.append("producer")

    def consumer() -> None:
        stages.events[1].wait()
        order.append("consumer")

    sup.add("producer", producer, kind="sender", stage=0)
    sup.add("consumer", consumer, kind="mover", stage=1)
    sup.start()
    sup.stop()
    threading.Timer(0.2, release.set).start()
    assert sup.join(timeout=10) == []
    assert order == ["producer", "consumer"]


def test_join_names_the_loops_still_busy_when_the_timeout_runs_out(stages: Stages) -> None:
    sup = Supervisor(stages=stages.events, policy=FAST)
    release = threading.Event()
    sup.add("stuck", lambda: release.wait(30) and None, kind="sender")
    sup.add("quick", lambda: stages.stop.wait() and None, kind="poller")
    sup.start()
    try:
        # 3 s, not 0.3 s: the quick loop must end within stage 0's share (80 %), and 0.24 s
        # for a woken thread to end was not always enough on a loaded machine
        assert sup.join(timeout=3) == ["stuck"]
    finally:
        release.set()


def test_stop_wakes_what_sleeps(stages: Stages) -> None:
    woken = threading.Event()
    sup = Supervisor(stages=stages.events, policy=FAST, on_stop=[woken.set])
    sup.add("idle", lambda: woken.wait() and None, kind="sender")
    sup.start()
    assert sup.join(timeout=5) == []


def test_loops_named_twice_are_refused(supervisor: Supervisor) -> None:
    supervisor.add("one", lambda: None, kind="sender")
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.add("one", lambda: None, kind="sender")


def test_snapshots_can_be_taken_from_any_thread_while_loops_crash(stages: Stages) -> None:
    sup = Supervisor(stages=stages.events, policy=FAST)
    for n in range(4):
        sup.add(f"flaky {n}", crashing(3, stages.stop), kind="sender")
    snapshots: list[HealthSnapshot] = []

    def read() -> None:
        for _ in range(200):
            snapshots.append(sup.snapshot())

    readers = [threading.Thread(target=read) for _ in range(3)]
    sup.start()
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    wait_until(lambda: all(loop.restarts == 3 for loop in sup.snapshot().loops), what="restarts")
    sup.join(timeout=5)
    assert len(snapshots) == 600
    assert all(len(s.loops) == 4 for s in snapshots)


# --------------------------------------------------------------------------- conditions


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_condition_keeps_the_time_it_first_appeared() -> None:
    clock = Clock()
    conditions = Conditions(clock=clock)
    assert conditions.set("channel a/b", "server down", flow="a/b")
    clock.now += timedelta(minutes=5)
    assert conditions.set("channel a/b", "server down again", flow="a/b")
    [condition] = conditions.snapshot()
    assert condition.message == "server down again"
    assert condition.since == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert condition.flow == "a/b"


def test_a_condition_is_logged_when_it_appears_and_when_it_clears_not_at_every_sighting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    conditions = Conditions(clock=clock)
    with caplog.at_level(logging.INFO, logger="edigw.health"):
        conditions.set("journal", "database is locked")
        for _ in range(10):
            assert not conditions.set("journal", "database is locked")
        conditions.set("journal", "database is locked (2)")  # changed within a minute
        clock.now += timedelta(minutes=2)
        conditions.set("journal", "disk I/O error")  # changed, a minute later
        assert conditions.clear("journal")
        assert not conditions.clear("journal")
    assert [r.getMessage() for r in caplog.records] == [
        "journal: database is locked",
        "journal: disk I/O error",
        "journal: recovered after 120 s",
    ]
    assert conditions.snapshot() == ()


def test_conditions_make_the_gateway_unhealthy_and_are_listed(stages: Stages) -> None:
    sup = Supervisor(stages=stages.events, policy=FAST)
    sup.add("idle", lambda: stages.stop.wait() and None, kind="sender")
    sup.start()
    try:
        wait_until(lambda: sup.snapshot().healthy, what="healthy")
        sup.conditions.set("channel p/f", "cannot connect", flow="p/f")
        snapshot = sup.snapshot()
    finally:
        sup.join(timeout=5)
    assert not snapshot.healthy
    assert snapshot.flow_problems() == {"p/f": ["cannot connect"]}
    assert snapshot.problems()[0].startswith("channel p/f: cannot connect (since ")


def test_a_snapshot_survives_its_json_form() -> None:
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    snapshot = HealthSnapshot(
        at=at,
        node="h:1",
        state="running",
        loops=(
            LoopHealth("poller a/b", "poller", "a/b", "restarting", at, 2, "ValueError: x", at),
            LoopHealth("sender 0", "sender", None, "running", at),
        ),
        conditions=(Conditions(clock=lambda: at).snapshot()),
        failure=None,
    )
    assert HealthSnapshot.from_dict(snapshot.to_dict()) == snapshot


# --------------------------------------------------------------------------- other threads


def test_a_thread_dying_outside_the_supervisor_is_logged_and_recorded_not_printed(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conditions = Conditions()

    def dies() -> None:
        raise OSError("inotify gave up")

    with caplog.at_level(logging.ERROR), thread_crashes_logged(conditions):
        thread = threading.Thread(target=dies, name="folder-watcher")
        thread.start()
        thread.join()
    assert "thread folder-watcher died" in caplog.text
    assert "inotify gave up" in caplog.text
    assert capsys.readouterr().err == ""
    [condition] = conditions.snapshot()
    assert (condition.name, condition.message) == (
        "thread folder-watcher",
        "died: OSError: inotify gave up",
    )


def test_the_previous_thread_excepthook_comes_back() -> None:
    before = threading.excepthook
    with thread_crashes_logged():
        assert threading.excepthook is not before
    assert threading.excepthook is before


def test_a_retired_loop_ends_without_counting_as_a_crash_and_is_forgotten(
    supervisor: Supervisor, stages: Stages
) -> None:
    retired = threading.Event()
    supervisor.add("poller a/b", lambda: retired.wait() and None, kind="poller", flow="a/b")
    supervisor.add("sender 0", lambda: stages.stop.wait() and None, kind="sender")
    supervisor.start()

    assert supervisor.retire(["poller a/b"], retired.set, timeout=5) == []

    snapshot = supervisor.snapshot()
    assert [loop.name for loop in snapshot.loops] == ["sender 0"]
    assert snapshot.healthy
    supervisor.add("poller a/b", lambda: stages.stop.wait() and None, kind="poller", flow="a/b")
    assert loop_health(supervisor, "poller a/b").state == "running"


def test_a_retired_loop_still_busy_makes_way_for_its_successor(
    supervisor: Supervisor, stages: Stages
) -> None:
    release = threading.Event()
    supervisor.add("exporter", lambda: release.wait(30) and None, kind="exporter")
    supervisor.start()
    try:
        assert supervisor.retire(["exporter"], lambda: None, timeout=0.2) == ["exporter"]
        supervisor.add("exporter", lambda: stages.stop.wait() and None, kind="exporter")
        names = sorted(loop.name for loop in supervisor.snapshot().loops)
        assert names == ["exporter", "exporter (retiring)"]
    finally:
        release.set()
    wait_until(
        lambda: [loop.name for loop in supervisor.snapshot().loops] == ["exporter"],
        what="the retired loop gone once its work was done",
    )


def test_a_loop_started_first_sees_every_loop_running_in_its_first_snapshot(
    stages: Stages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publisher is started first and publishes at once: the gateway it reports must not
    be unhealthy for loops the supervisor was about to start (``edigw status`` read that
    report until the next one, seconds later)."""
    from edigw.pipeline import supervisor as supervisor_module

    sup = Supervisor(stages=stages.events, policy=FAST)
    first: list[HealthSnapshot] = []
    looked = threading.Event()

    def publisher() -> None:
        first.append(sup.snapshot())
        looked.set()
        stages.events[1].wait()

    class Thread(threading.Thread):
        def start(self) -> None:
            super().start()
            if self.name == "publisher":  # it looks before the next loop is started
                assert looked.wait(30)

    monkeypatch.setattr(supervisor_module.threading, "Thread", Thread)
    sup.add("publisher", publisher, kind="publisher", stage=1)
    sup.add("poller", lambda: stages.stop.wait() and None, kind="poller")
    sup.start()
    try:
        [snapshot] = first
        assert snapshot.healthy, snapshot.loops
    finally:
        assert sup.join(timeout=5) == []


def test_a_loop_waiting_to_be_restarted_is_retired_at_once(
    stages: Stages, caplog: pytest.LogCaptureFixture
) -> None:
    """A flow removed from ``edigw.yaml`` while its watcher waits out its restart pause (up
    to ``max_delay``, a minute by default) is not left busy by that pause."""
    slow = SupervisorPolicy(max_restarts=5, window=600, first_delay=3600, max_delay=3600)
    sup = Supervisor(stages=stages.events, policy=slow)
    retired = threading.Event()
    crashed = threading.Event()

    def watcher() -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("the folder vanished")
        retired.wait()

    sup.add("watcher a/b", watcher, kind="watcher", flow="a/b")
    sup.start()
    try:
        wait_until(lambda: loop_health(sup, "watcher a/b").state == "restarting", what="pause")
        assert sup.retire(["watcher a/b"], retired.set, timeout=10) == []
        assert [loop.name for loop in sup.snapshot().loops] == []
    finally:
        sup.join(timeout=5)
