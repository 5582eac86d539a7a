"""The budget behind the sandbox: steps, building, time (with a clock of the test's own)."""

from __future__ import annotations

import pytest

from edigw.jinja_sandbox import BoundedEnvironment, Budget, LimitExceeded, Limits
from edigw.jinja_sandbox.budget import CHECK_EVERY, text_weight


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Taken:
    """Stands for the records iterator: the budget reads its ``count``."""

    count = 0


def test_steps_run_out() -> None:
    budget = Budget(Limits(steps=1_000))
    budget.spend(1_000)
    with pytest.raises(LimitExceeded, match="over the work budget of 1,000 steps"):
        budget.spend(CHECK_EVERY + 1)


def test_building_runs_out() -> None:
    budget = Budget(Limits(built=5_000))
    budget.build(5_000)
    with pytest.raises(LimitExceeded, match="over the building budget of 5,000 characters"):
        budget.build(1)


def test_the_clock_is_looked_at_when_steps_are_spent() -> None:
    clock = Clock()
    budget = Budget(Limits(seconds=2.0), clock=clock)
    budget.spend(CHECK_EVERY + 1)  # the clock starts at the first look
    clock.now += 1.9
    budget.spend(CHECK_EVERY + 1)
    clock.now += 0.2
    with pytest.raises(LimitExceeded, match="over the time limit of 2 s"):
        budget.spend(CHECK_EVERY + 1)


def test_waiting_for_ecolix_is_not_counted() -> None:
    clock = Clock()
    budget = Budget(Limits(seconds=2.0), clock=clock)
    budget.spend(CHECK_EVERY + 1)
    with budget.waiting():
        clock.now += 60.0
    clock.now += 1.0
    budget.spend(CHECK_EVERY + 1)  # 61 s later, 1 s of it computing


def test_records_taken_earn_steps_and_building() -> None:
    limits = Limits(steps=1_000, built=1_000, steps_per_record=500, built_per_record=500)
    budget = Budget(limits)
    budget.counter = taken = Taken()
    budget.spend(CHECK_EVERY + 1)
    taken.count = 4  # four records: +2,000 steps, +2,000 built
    budget.spend(2_400)
    budget.build(2_900)
    with pytest.raises(LimitExceeded, match="over the building budget"):
        budget.build(200)


def test_records_taken_earn_time() -> None:
    clock = Clock()
    limits = Limits(steps=10**9, seconds=1.0, seconds_per_record=0.5)
    budget = Budget(limits, clock=clock)
    budget.counter = taken = Taken()
    budget.spend(CHECK_EVERY + 1)
    taken.count = 4  # four records: +2 s
    clock.now += 2.9
    budget.spend(CHECK_EVERY + 1)
    clock.now += 0.2
    with pytest.raises(LimitExceeded, match="over the time limit of 1 s"):
        budget.spend(CHECK_EVERY + 1)


@pytest.mark.parametrize(
    ("value", "weight"),
    [
        pytest.param("abc", 3, id="string"),
        pytest.param(12345, 14 // 3 + 2, id="int"),  # 14 bits: a digit per 3 bits, about
        pytest.param(["ab", "cd"], 2 + 4 + 6 + 6, id="list"),
        pytest.param({"k": "v"}, 2 + 2 + 5 + 5, id="dict"),
    ],
)
def test_text_weight_estimates_the_text_of_a_value(value: object, weight: int) -> None:
    assert text_weight(value, 10**6) == weight


def test_text_weight_stops_counting_past_the_limit() -> None:
    shared = ["x" * 1_000] * 1_000
    assert 1_000 < text_weight([shared, "y"], 1_000) < 4_000  # one list looked into, not two
    assert text_weight([shared] * 10**6, 1_000) == 2 + 2 * 10**6  # not looked into at all


def test_a_template_renders_within_a_budget_of_its_own_by_default() -> None:
    env = BoundedEnvironment(limits=Limits(steps=1_000))
    template = env.from_string("{% for i in range(900) %}{% endfor %}ok")
    assert [template.render() for _ in range(3)] == ["ok"] * 3
    with pytest.raises(LimitExceeded):
        env.from_string("{% for i in range(2000) %}{% endfor %}").render()
