"""One Ecolix call budget for every edigw process on a host, kept in one file.

The rule (``edigw/ecolix/limiter.py``) on a clock that moves only when the test moves it, then
what only real processes show: two ledgers on one file share the budget, a killed process's
calls come back, a reboot clears the file, and processes racing on one file, spawned or forked
with a ledger open, never break it.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import random
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from edigw.ecolix.host_ledger import ENTRIES, INITIAL_RING, HostLedger
from edigw.ecolix.limiter import IDLE_POLL, Grant
from edigw.errors import JournalError

PERIOD = 10.0
LEASE = 4.0
BOOT = "boot-1"
T0 = 1000.0

Call = tuple[float, float]  # a call's start and end, on the host's monotonic clock


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def budget(tmp_path: Path) -> Path:
    return tmp_path / "budget" / "ecolix.calls"


def open_ledger(path: Path, clock: Clock, *, boot_id: str = BOOT) -> HostLedger:
    return HostLedger.open(path, lease=LEASE, clock=clock, boot_id=boot_id)


def wait_for(grant: Grant) -> float:
    """The wait of a refusal (a slot granted fails the test)."""
    assert grant.slot is None, f"slot {grant.slot} granted"
    return grant.wait


def call(ledger: HostLedger, calls: int) -> None:
    """One call that completes at once."""
    grant = ledger.take(calls, PERIOD)
    assert grant.slot is not None
    ledger.give_back(grant.slot)


def test_n_calls_start_and_the_next_waits_until_the_oldest_completion_leaves(
    budget: Path,
) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as ledger:
        for _ in range(3):
            call(ledger, 3)
            clock.now += 1.0
        assert wait_for(ledger.take(3, PERIOD)) == pytest.approx(PERIOD - 3.0)
        clock.now = T0 + PERIOD
        assert ledger.take(3, PERIOD).granted


def test_a_call_counts_until_one_period_after_its_completion_not_its_start(
    budget: Path,
) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as ledger:
        slot = ledger.take(1, PERIOD).slot
        assert slot is not None
        clock.now += 3.0
        ledger.give_back(slot)
        clock.now = T0 + PERIOD + 1.0
        assert wait_for(ledger.take(1, PERIOD)) == pytest.approx(2.0)
        clock.now = T0 + 3.0 + PERIOD
        assert ledger.take(1, PERIOD).granted


def test_calls_in_flight_hold_their_slots_and_the_ledger_says_look_again_soon(
    budget: Path,
) -> None:
    with open_ledger(budget, Clock()) as ledger:
        assert ledger.take(2, PERIOD).granted
        assert ledger.take(2, PERIOD).granted
        assert ledger.take(2, PERIOD) == Grant(None, IDLE_POLL)


def test_a_full_table_of_calls_in_flight_says_look_again_soon(budget: Path) -> None:
    with open_ledger(budget, Clock()) as ledger:
        slots = {ledger.take(ENTRIES + 10, PERIOD).slot for _ in range(ENTRIES)}
        assert slots == set(range(ENTRIES))
        assert ledger.take(ENTRIES + 10, PERIOD) == Grant(None, IDLE_POLL)


def test_two_ledgers_on_one_file_share_one_budget(budget: Path) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as intake, open_ledger(budget, clock) as replay:
        held = intake.take(3, PERIOD).slot
        assert held is not None
        call(intake, 3)
        clock.now += 1.0
        call(replay, 3)
        assert wait_for(replay.take(3, PERIOD)) == pytest.approx(PERIOD - 1.0)
        assert wait_for(intake.take(3, PERIOD)) == pytest.approx(PERIOD - 1.0)
        assert intake.counted(PERIOD) == replay.counted(PERIOD) == 3


def hold_slots_until_killed(path: str, slots: int, ready: Event) -> None:
    """A process that takes ``slots`` slots at T0 and sleeps until it is killed."""
    ledger = open_ledger(Path(path), Clock(T0))
    for _ in range(slots):
        assert ledger.take(slots, PERIOD).granted
    ready.set()
    time.sleep(120)


def test_the_calls_of_a_killed_process_count_as_completed_when_it_is_found_dead(
    budget: Path,
) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=hold_slots_until_killed, args=(str(budget), 2, ready))
    child.start()
    try:
        assert ready.wait(timeout=60), "the child never took its slots"
        clock = Clock(T0 + 1.0)
        with open_ledger(budget, clock) as ledger:
            assert ledger.take(2, PERIOD) == Grant(None, IDLE_POLL)  # both in flight, alive
            child.kill()
            child.join(timeout=30)
            assert child.exitcode == -signal.SIGKILL
            assert wait_for(ledger.take(2, PERIOD)) == pytest.approx(PERIOD)
            assert ledger.counted(PERIOD) == 2
            clock.now += PERIOD
            assert ledger.take(2, PERIOD).granted
            assert ledger.take(2, PERIOD).granted
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=30)


def test_a_call_in_flight_past_its_lease_counts_as_completed_when_the_lease_ended(
    budget: Path,
) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as ledger:
        assert ledger.take(1, PERIOD).granted  # never given back: its process hangs
        clock.now = T0 + LEASE + 2.0
        assert wait_for(ledger.take(1, PERIOD)) == pytest.approx(PERIOD - 2.0)
        clock.now = T0 + LEASE + PERIOD
        assert ledger.take(1, PERIOD).granted


def test_a_call_that_outlives_its_lease_counts_again_from_its_real_end(
    budget: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as ledger:
        slot = ledger.take(1, PERIOD).slot
        assert slot is not None
        clock.now = T0 + LEASE + 2.0
        assert not ledger.take(1, PERIOD).granted  # expired: counted from T0 + LEASE
        ledger.give_back(slot)
        clock.now = T0 + LEASE + PERIOD
        assert wait_for(ledger.take(1, PERIOD)) == pytest.approx(2.0)
    assert "outlived its lease of 4 s" in caplog.text


def test_a_slot_given_back_twice_counts_once(
    budget: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edigw.budget")
    with open_ledger(budget, Clock()) as ledger:
        slot = ledger.take(2, PERIOD).slot
        assert slot is not None
        ledger.give_back(slot)
        ledger.give_back(slot)
        assert ledger.counted(PERIOD) == 1
    assert f"slot {slot} is not held here (given back twice?)" in caplog.text


def test_a_file_written_before_the_last_boot_is_cleared(budget: Path) -> None:
    clock = Clock()
    with open_ledger(budget, clock, boot_id="boot-1") as before:
        call(before, 2)
        assert before.take(2, PERIOD).granted
        assert before.counted(PERIOD) == 2
    with open_ledger(budget, clock, boot_id="boot-2") as after:
        assert after.counted(PERIOD) == 0
        assert after.take(2, PERIOD).granted


def test_a_file_of_this_boot_keeps_its_calls(budget: Path) -> None:
    clock = Clock()
    with open_ledger(budget, clock) as first:
        call(first, 2)
    with open_ledger(budget, clock) as again:
        assert again.counted(PERIOD) == 1


def test_the_ring_grows_with_the_agreement_keeping_the_completions_that_count(
    budget: Path,
) -> None:
    clock = Clock()
    larger = 3 * INITIAL_RING
    with open_ledger(budget, clock) as ledger:
        for calls in [INITIAL_RING] * INITIAL_RING + [larger] * (larger - INITIAL_RING):
            call(ledger, calls)
            clock.now += 0.01
        assert wait_for(ledger.take(larger, PERIOD)) == pytest.approx(T0 + PERIOD - clock.now)
        assert ledger.counted(PERIOD) == larger


def test_a_ledger_opened_before_the_ring_grew_sees_the_grown_ring(budget: Path) -> None:
    clock = Clock()
    larger = 3 * INITIAL_RING
    with open_ledger(budget, clock) as small, open_ledger(budget, clock) as large:
        call(small, INITIAL_RING)
        clock.now += 1.0
        for _ in range(larger - 1):
            call(large, larger)
        assert small.counted(PERIOD) == larger
        assert wait_for(small.take(larger, PERIOD)) == pytest.approx(PERIOD - 1.0)


@pytest.mark.parametrize(("file_mode", "folder_mode"), [(0o600, 0o700), (0o640, 0o750)])
def test_the_file_and_its_folders_are_created_with_the_file_mode(
    tmp_path: Path, file_mode: int, folder_mode: int
) -> None:
    path = tmp_path / "run" / "edigw" / "ecolix.calls"
    HostLedger.open(path, lease=LEASE, file_mode=file_mode).close()
    assert path.stat().st_mode & 0o777 == file_mode
    assert path.parent.stat().st_mode & 0o777 == folder_mode


@pytest.mark.parametrize("content", [b"hello", b"not a call budget\n" * 100], ids=["short", "long"])
def test_a_file_that_is_no_call_budget_is_refused_and_left_as_it_is(
    budget: Path, content: bytes
) -> None:
    budget.parent.mkdir()
    budget.write_bytes(content)
    with pytest.raises(JournalError) as refused:
        HostLedger.open(budget, lease=LEASE)
    assert str(refused.value) == (
        f"{budget} is not an Ecolix call budget of this edigw version: "
        "remove it, or name another file, while no edigw process runs"
    )
    assert budget.read_bytes() == content


RACE_CALLS = 20
RACE_PERIOD = 1.0
RACE_SECONDS = 1.5
RACE_PROCESSES = 3
RACE_THREADS = 4


def hammer(ledger: HostLedger, out: str, seed: int, start: Barrier) -> None:
    """Threads asking for a slot again and again; each call's (start, end) goes to ``out``.

    The start is read right after ``take`` granted the slot and the end right before
    ``give_back``, on the host's monotonic clock, as the ledger reads it.
    """
    intervals: list[Call] = []
    start.wait(timeout=60)
    stop = time.monotonic() + RACE_SECONDS

    def work(rng: random.Random) -> None:
        while time.monotonic() < stop:
            grant = ledger.take(RACE_CALLS, RACE_PERIOD)
            if grant.slot is None:
                time.sleep(0)  # not the wait: each freed slot is raced for at once
                continue
            began = time.monotonic()
            time.sleep(rng.choice([0.0, 0.0, 0.001, 0.005, 0.02, 0.2]))
            intervals.append((began, time.monotonic()))
            ledger.give_back(grant.slot)

    threads = [
        threading.Thread(target=work, args=(random.Random(seed * 100 + i),))
        for i in range(RACE_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.close()
    Path(out).write_text(json.dumps(intervals))


def hammer_own_ledger(path: str, out: str, seed: int, start: Barrier) -> None:
    hammer(HostLedger.open(Path(path), lease=30.0), out, seed, start)


def race(
    context: SpawnContext | ForkContext,
    target: Callable[..., None],
    ledger: HostLedger | str,
    folder: Path,
) -> list[Call]:
    """RACE_PROCESSES processes run ``target(ledger, ...)`` at once; the calls they made."""
    start = context.Barrier(RACE_PROCESSES)
    outs = [folder / f"calls-{n}.json" for n in range(RACE_PROCESSES)]
    workers = [
        context.Process(target=target, args=(ledger, str(out), n, start))
        for n, out in enumerate(outs)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0] * RACE_PROCESSES
    finally:  # none left running, nor unreaped for the tests that come next
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join(timeout=10)
    return [(began, ended) for out in outs for began, ended in json.loads(out.read_text())]


def most_counted_at_a_start(intervals: list[Call], period: float) -> int:
    """The most calls that counted, by the recorded times, when one of them started.

    At a start ``s``: the calls started by ``s`` that were in flight at ``s`` or had completed
    within ``(s - period, s]``, that one included. The rule keeps it at or under N even on the
    recorded times: a call's recorded start is at or after its grant and its recorded end at
    or before its completion, which can only leave calls out. (The last call granted among
    those counted at ``s`` saw every other one in flight or completed within its period.)
    """
    return max(
        sum(1 for began, ended in intervals if began <= start and ended > start - period)
        for start, _ in intervals
    )


def test_processes_racing_on_one_file_never_exceed_the_agreement(budget: Path) -> None:
    calls = race(
        multiprocessing.get_context("spawn"), hammer_own_ledger, str(budget), budget.parent
    )

    assert most_counted_at_a_start(calls, RACE_PERIOD) == RACE_CALLS  # used, never exceeded
    assert len(calls) >= 2 * RACE_CALLS  # the budget came back after one period


def race_forked_from_an_open_ledger(path: str, result: str) -> None:
    """In a process of its own: open the ledger at ``path``, fork the racers from it, and
    write the calls they made to ``result``."""
    with HostLedger.open(Path(path), lease=30.0) as inherited:
        calls = race(multiprocessing.get_context("fork"), hammer, inherited, Path(path).parent)
    Path(result).write_text(json.dumps(calls))


def test_processes_forked_from_one_open_ledger_never_exceed_the_agreement(budget: Path) -> None:
    # A forked child shares its parent's open file, and with it the lock: it must open its own.
    # The forking process is a fresh one: forked from this test process, whose other threads
    # (left by earlier tests on this worker) may hold a lock at the fork, a child could hang
    # before it runs a line of the ledger.
    result = budget.parent / "calls.json"
    budget.parent.mkdir(parents=True, exist_ok=True)
    parent = multiprocessing.get_context("spawn").Process(
        target=race_forked_from_an_open_ledger, args=(str(budget), str(result))
    )
    parent.start()
    parent.join(timeout=120)
    if parent.is_alive():
        parent.kill()
        parent.join()
    assert parent.exitcode == 0
    calls = [(began, ended) for began, ended in json.loads(result.read_text())]

    assert most_counted_at_a_start(calls, RACE_PERIOD) == RACE_CALLS
