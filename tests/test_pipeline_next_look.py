"""When the poller looks again: its interval, or sooner when a file it saw may be ready."""

from __future__ import annotations

from edigw.pipeline.poller import SOONEST_LOOK, next_look

NOW = 1_800_000_000.0


def test_nothing_waiting_to_be_ready_waits_the_poll_interval() -> None:
    assert next_look(5.0, None, now=NOW) == 5.0


def test_a_file_ready_before_the_interval_is_looked_at_then() -> None:
    assert next_look(5.0, NOW + 2.0, now=NOW) == 2.0


def test_a_file_ready_after_the_interval_waits_for_the_interval() -> None:
    assert next_look(5.0, NOW + 60.0, now=NOW) == 5.0


def test_a_file_ready_now_is_looked_at_soon_without_spinning() -> None:
    assert next_look(5.0, NOW - 1.0, now=NOW) == SOONEST_LOOK
