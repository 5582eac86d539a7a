"""The senders' in-flight gate: its limit follows Ecolix's latency (Little's law), clamped."""

from __future__ import annotations

import threading

import pytest

from edigw.pipeline.concurrency import MAX_IN_FLIGHT, MIN_IN_FLIGHT, InFlightGate


def test_before_anything_is_measured_the_limit_is_the_floor() -> None:
    gate = InFlightGate()
    assert (gate.limit, gate.in_use) == (MIN_IN_FLIGHT, 0)
    assert gate.averages == (None, None)


@pytest.mark.parametrize(
    ("calling", "working", "limit"),
    [
        pytest.param(0.050, 0.005, 11, id="50 ms late, 5 ms of own work: 1 + 10"),
        pytest.param(0.050, 0.010, 6, id="50 ms late, 10 ms of own work: 1 + 5"),
        pytest.param(0.001, 0.005, MIN_IN_FLIGHT, id="no latency: the floor"),
        pytest.param(1.0, 0.001, MAX_IN_FLIGHT, id="very far: the ceiling"),
        pytest.param(0.050, 0.0, MAX_IN_FLIGHT, id="no own work measured: the ceiling"),
        pytest.param(0.0, 0.0, MIN_IN_FLIGHT, id="nothing measured at all: the floor"),
    ],
)
def test_the_limit_is_one_plus_latency_over_own_work_clamped(
    calling: float, working: float, limit: int
) -> None:
    gate = InFlightGate()
    gate.record(calling=calling, working=working)
    assert gate.limit == limit


def test_the_limit_follows_a_moving_average() -> None:
    gate = InFlightGate(smoothing=0.5)
    assert gate.record(calling=0.050, working=0.005) == 11 - MIN_IN_FLIGHT  # grew by 7
    assert gate.limit == 11
    assert gate.record(calling=0.010, working=0.005) == 0  # averages: 30 ms and 5 ms
    assert gate.averages == pytest.approx((0.030, 0.005))
    assert gate.limit == 7
    for _ in range(20):  # the latency is gone: back to the floor
        gate.record(calling=0.0, working=0.005)
    assert gate.limit == MIN_IN_FLIGHT


def test_a_fixed_gate_keeps_its_number_whatever_the_latency() -> None:
    gate = InFlightGate.fixed(8)
    gate.record(calling=1.0, working=0.001)
    assert gate.limit == 8
    gate.record(calling=0.0, working=1.0)
    assert gate.limit == 8


def test_no_more_than_the_limit_hold_a_slot_and_a_release_lets_the_next_in() -> None:
    gate = InFlightGate(floor=2, ceiling=4)
    assert gate.acquire(timeout=0)
    assert gate.acquire(timeout=0)
    assert gate.in_use == 2
    assert not gate.has_room()
    assert not gate.acquire(timeout=0)
    gate.release()
    assert gate.has_room()
    assert gate.acquire(timeout=0)
    for _ in range(2):
        gate.release()
    assert gate.in_use == 0


def test_a_waiting_sender_gets_a_slot_when_one_is_released() -> None:
    gate = InFlightGate(floor=1, ceiling=1)
    assert gate.acquire(timeout=0)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(gate.acquire(timeout=30)))
    waiter.start()
    gate.release()
    waiter.join(30)
    assert got == [True]
    assert gate.in_use == 1


def test_a_higher_limit_lets_waiting_senders_in() -> None:
    gate = InFlightGate(floor=1, ceiling=8)
    assert gate.acquire(timeout=0)
    got: list[bool] = []
    waiters = [
        threading.Thread(target=lambda: got.append(gate.acquire(timeout=30))) for _ in range(3)
    ]
    for waiter in waiters:
        waiter.start()
    gate.record(calling=0.030, working=0.010)  # 1 + 3 = 4 slots
    for waiter in waiters:
        waiter.join(30)
    assert got == [True, True, True]
    assert gate.in_use == 4


def test_closing_ends_every_wait_without_a_slot() -> None:
    gate = InFlightGate(floor=1, ceiling=1)
    assert gate.acquire(timeout=0)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(gate.acquire(timeout=30)))
    waiter.start()
    gate.close()
    waiter.join(30)
    assert got == [False]
    gate.release()
    assert not gate.acquire(timeout=0)
    assert gate.in_use == 0


def test_releasing_without_a_slot_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="without a slot"):
        InFlightGate().release()


def test_floor_and_ceiling_are_checked() -> None:
    with pytest.raises(ValueError, match="floor <= ceiling"):
        InFlightGate(floor=5, ceiling=4)
    with pytest.raises(ValueError, match="0 <= floor"):
        InFlightGate.fixed(-1)
    assert InFlightGate.fixed(0).limit == 0  # a gateway without senders
