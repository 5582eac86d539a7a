"""The senders are woken for a poll's first file, then once for the rest:
``edigw.pipeline.wakeups.PollWakeups``."""

from __future__ import annotations

import pytest

from edigw.pipeline.wakeups import PollWakeups


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


def wakeups(woken: list[str], clock: Clock, *, limit: int = 8) -> PollWakeups:
    return PollWakeups(lambda: woken.append("wake"), lambda: limit, delay=1.0, clock=clock)


def test_a_file_taken_in_outside_a_poll_wakes_its_senders_at_once(woken, clock):
    wakeups(woken, clock).owe(2)

    assert woken == ["wake", "wake"]


def test_the_first_file_of_a_poll_wakes_its_senders_at_once(woken, clock):
    owed = wakeups(woken, clock)

    with owed.poll():
        owed.owe(2)
        assert len(woken) == 2


def test_the_later_files_of_a_poll_wake_the_senders_when_it_ends(woken, clock):
    owed = wakeups(woken, clock)

    with owed.poll():
        owed.owe(2)
        owed.owe(1)
        owed.owe(2)
        assert len(woken) == 2  # the first file's

    assert len(woken) == 5


def test_each_poll_wakes_for_its_first_file_at_once(woken, clock):
    owed = wakeups(woken, clock)
    with owed.poll():
        owed.owe(1)
        owed.owe(1)

    with owed.poll():
        owed.owe(1)
        assert len(woken) == 3


def test_a_poll_wakes_no_more_senders_than_may_hold_documents(woken, clock):
    owed = wakeups(woken, clock, limit=4)

    with owed.poll():
        for _ in range(10):
            owed.owe(2)

    assert len(woken) == 2 + 4  # the first file's, then the limit


def test_a_slow_poll_wakes_the_senders_again_once_the_delay_has_passed(woken, clock):
    owed = wakeups(woken, clock)

    with owed.poll():
        owed.owe(2)
        assert len(woken) == 2  # the first file: at once
        clock.now += 0.5
        owed.owe(1)
        assert len(woken) == 2
        clock.now += 0.5
        owed.owe(1)
        assert len(woken) == 4  # everything taken in since the last wake-up
        owed.owe(1)
        assert len(woken) == 4  # the delay counts again from this wake-up

    assert len(woken) == 5


def test_a_poll_that_raises_still_wakes_the_senders_for_what_it_took_in(woken, clock):
    owed = wakeups(woken, clock)

    with pytest.raises(RuntimeError), owed.poll():
        owed.owe(2)
        owed.owe(1)
        raise RuntimeError("the channel broke")

    assert len(woken) == 3
    owed.owe(1)  # after the poll: at once again
    assert len(woken) == 4


def test_a_poll_that_took_nothing_in_wakes_nobody(woken, clock):
    with wakeups(woken, clock).poll():
        pass

    assert woken == []
