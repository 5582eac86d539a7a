"""Call counting: per operation, per status, and over the last rolling minute."""

from __future__ import annotations

from edigw.ecolix.usage import CallCounter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_are_counted_per_operation() -> None:
    counter = CallCounter(clock=FakeClock())
    for _ in range(3):
        counter.record("orders.create")
    counter.record("articles.list")
    usage = counter.snapshot()
    assert usage.calls == 4
    assert dict(usage.by_operation) == {"orders.create": 3, "articles.list": 1}


def test_last_minute_forgets_calls_older_than_sixty_seconds() -> None:
    clock = FakeClock()
    counter = CallCounter(clock=clock)
    counter.record("orders.create")
    clock.now += 30
    counter.record("orders.create")
    counter.record("orders.create")
    assert counter.snapshot().last_minute == 3
    clock.now += 31
    usage = counter.snapshot()
    assert usage.last_minute == 2
    assert usage.calls == 3


def test_headroom_is_what_the_agreement_still_allows_this_minute() -> None:
    counter = CallCounter(clock=FakeClock())
    for _ in range(7):
        counter.record("stock.list")
    assert counter.snapshot(limit_per_minute=10).headroom == 3
    assert counter.snapshot().headroom is None


def test_retries_and_throttled_answers_are_counted() -> None:
    counter = CallCounter(clock=FakeClock())
    counter.record("orders.create")
    counter.record_status(429)
    counter.record("orders.create", retry=True)
    counter.record_status(201)
    usage = counter.snapshot()
    assert usage.retries == 1
    assert usage.throttled == 1
    assert dict(usage.by_status) == {429: 1, 201: 1}
