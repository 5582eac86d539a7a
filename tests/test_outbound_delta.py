"""The delta window: inclusive bound on the mark, de-duplication of records at the mark."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edigw.errors import SourceDataError
from edigw.outbound.marks import DeltaTracker, Fingerprints, Mark, fingerprint

T1 = "2026-11-28T10:00:00Z"
T2 = "2026-11-28T10:00:01Z"
AT1 = datetime(2026, 11, 28, 10, tzinfo=UTC)


def rec(code: str, at: str, **extra: str) -> dict[str, str]:
    return {"code": code, "updated_at": at, **extra}


def test_records_already_delivered_at_the_mark_are_skipped_but_late_ones_pass():
    delivered = rec("A", T1)
    mark = Mark(AT1, Fingerprints({fingerprint(delivered)}))
    tracker = DeltaTracker(mark, resource="articles.list")
    late = rec("B", T1)  # committed after the last run, in the very same instant
    passed = list(tracker.filter([delivered, late, rec("C", T2)]))
    assert [r["code"] for r in passed] == ["B", "C"]
    assert tracker.skipped == 1


def test_next_mark_is_the_latest_instant_with_the_fingerprints_at_it():
    tracker = DeltaTracker(None, resource="articles.list")
    records = [rec("A", T1), rec("B", T2), rec("C", T2)]
    list(tracker.filter(records))
    mark = tracker.next_mark()
    assert mark is not None
    assert mark.at == datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert set(mark.fingerprints) == {fingerprint(records[1]), fingerprint(records[2])}


def test_a_mark_that_does_not_move_keeps_the_earlier_fingerprints():
    first = rec("A", T1)
    tracker = DeltaTracker(Mark(AT1, Fingerprints({fingerprint(first)})), resource="x")
    late = rec("B", T1)
    list(tracker.filter([first, late]))
    mark = tracker.next_mark()
    assert mark == Mark(AT1, Fingerprints({fingerprint(first), fingerprint(late)}))


def test_fingerprints_ignore_key_order():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_a_record_without_updated_at_is_refused_with_its_position():
    tracker = DeltaTracker(None, resource="stock.list")
    with pytest.raises(
        SourceDataError, match=r"stock.list:2 field updated_at: Ecolix record has no"
    ):
        list(tracker.filter([rec("A", T1), {"code": "B"}]))


def test_fingerprints_survive_their_text_form_and_answer_membership():
    values = Fingerprints([5, 2**64 - 1, 7, 5])
    again = Fingerprints.from_text(values.to_text())
    assert again == values and len(again) == 3
    assert 2**64 - 1 in again and 7 in again and 6 not in again
