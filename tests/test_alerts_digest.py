"""Grouping and deduplication of alerts, as pure functions of a clock (``edigw.alerts.digest``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edigw.alerts.digest import LISTED, Grouper, Message
from edigw.alerts.events import Alert, bounded, file_failed

AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def failed(n: int, flow: str = "webshop/orders", reason: str = "unknown customer") -> Alert:
    return file_failed(
        ref=f"F-{n}", flow=flow, file=f"orders-{n}.csv", state="failed", reason=reason, at=AT
    )


def test_the_first_alert_after_a_quiet_period_goes_out_at_once() -> None:
    grouper = Grouper(60)
    assert grouper.offer(failed(1), now=0.0) == [Message((failed(1),))]
    assert grouper.due == 60.0


def test_alerts_within_the_window_are_held_and_go_out_as_one_digest_when_it_closes() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    for n in range(2, 101):
        assert grouper.offer(failed(n), now=n / 10) == []
    assert grouper.flush(now=59.9) == []
    [digest] = grouper.flush(now=60.0)
    assert digest.digest and len(digest.alerts) == 99
    assert digest.subject == "99 files failed in webshop/orders"
    assert len(digest.listed) == LISTED and digest.more == 99 - LISTED


def test_a_storm_makes_one_message_per_window() -> None:
    grouper = Grouper(60)
    sent = []
    for second in range(0, 300):
        sent += grouper.offer(failed(second), now=float(second))
    sent += grouper.flush(now=1000.0)
    assert [len(m.alerts) for m in sent] == [1, 59, 60, 60, 60, 60]


def test_a_window_that_closes_empty_ends_the_busy_period() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    assert grouper.flush(now=60.0) == []
    assert grouper.due is None
    assert grouper.offer(failed(2), now=61.0) == [Message((failed(2),))]


def test_an_alert_arriving_after_the_window_closed_first_releases_the_digest() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    grouper.offer(failed(2), now=1.0)
    out = grouper.offer(failed(3), now=61.0)
    assert out == [Message((failed(2),))]
    assert grouper.held == 1  # the third waits for the next window


def test_identical_repeats_are_dropped_and_counted() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    assert grouper.offer(failed(1), now=1.0) == []
    grouper.offer(failed(2), now=2.0)
    grouper.offer(failed(2), now=3.0)
    [digest] = grouper.flush(now=60.0)
    assert digest.alerts == (failed(2),)
    assert digest.duplicates == 2
    assert "(2 identical repeats left out)" in digest.text()


def test_the_same_file_with_another_reason_is_news() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    grouper.offer(failed(1, reason="Ecolix refused the price"), now=1.0)
    assert grouper.held == 1


def test_force_sends_what_is_held_before_the_window_closes() -> None:
    grouper = Grouper(60)
    grouper.offer(failed(1), now=0.0)
    grouper.offer(failed(2), now=1.0)
    assert grouper.flush(now=2.0, force=True) == [Message((failed(2),))]


def test_a_digest_counts_by_kind_and_flow_largest_first() -> None:
    alerts = (
        failed(1, flow="a/x"),
        failed(2, flow="b/y"),
        failed(3, flow="b/y"),
    )
    assert Message(alerts).subject == "2 files failed in b/y; 1 file failed in a/x"


def test_an_alert_names_the_flow_the_file_the_reason_and_the_show_command() -> None:
    text = Message((failed(7),)).text()
    assert Message((failed(7),)).subject == "F-7 orders-7.csv failed in webshop/orders"
    assert text.splitlines() == [
        "unknown customer",
        "look closer: edigw show F-7",
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param("short", "short", id="kept"),
        pytest.param("x" * 500, "x" * 399 + "…", id="cut-long"),
        pytest.param("a\nb\nc\nd\ne\nf", "a\nb\nc\nd…", id="cut-lines"),
        pytest.param("\n  a  \n\n  b", "a\n  b", id="blank-lines-dropped-indent-kept"),
    ],
)
def test_reasons_are_bounded(reason: str, expected: str) -> None:
    assert bounded(reason) == expected
