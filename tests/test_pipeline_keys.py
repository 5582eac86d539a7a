"""Idempotency keys: derived from where a document came from, never from the mapping."""

from __future__ import annotations

from edigw.pipeline.dispatch import RetrySchedule
from edigw.pipeline.keys import idempotency_key, occurrences

BASE = {"partner": "webshop", "flow": "orders", "file_sha256": "ab" * 32, "business_key": "CO-1"}


def test_the_same_document_of_the_same_file_always_gets_the_same_key() -> None:
    assert idempotency_key(**BASE) == idempotency_key(**BASE)


def test_a_new_file_about_the_same_business_object_gets_a_new_key() -> None:
    assert idempotency_key(**BASE) != idempotency_key(**{**BASE, "file_sha256": "cd" * 32})


def test_each_part_of_the_origin_changes_the_key() -> None:
    keys = {
        idempotency_key(**BASE),
        idempotency_key(**{**BASE, "partner": "other"}),
        idempotency_key(**{**BASE, "flow": "customers"}),
        idempotency_key(**{**BASE, "business_key": "CO-2"}),
        idempotency_key(**BASE, occurrence=2),
    }
    assert len(keys) == 5


def test_a_first_reception_keeps_its_key_and_a_later_one_gets_its_own() -> None:
    """Keys journalled before receptions were numbered stay valid; ``duplicates: process``
    makes a new key for the same bytes received again."""
    first = idempotency_key(**BASE)
    assert idempotency_key(**BASE, reception=1) == first
    assert (
        len({first, idempotency_key(**BASE, reception=2), idempotency_key(**BASE, reception=3)})
        == 3
    )


def test_parts_cannot_be_shifted_into_each_other() -> None:
    assert idempotency_key(**{**BASE, "partner": "a", "flow": "bc"}) != idempotency_key(
        **{**BASE, "partner": "ab", "flow": "c"}
    )


def test_keys_are_short_printable_and_prefixed() -> None:
    key = idempotency_key(**BASE)
    assert key.startswith("edigw-")
    assert len(key) <= 64
    assert key.isascii()


def test_repeated_business_keys_in_a_file_are_numbered_in_file_order() -> None:
    assert occurrences(["C1", "C2", "C1", "C1", "C2"]) == [1, 1, 2, 3, 2]


def test_retry_delays_grow_and_stay_under_the_cap() -> None:
    schedule = RetrySchedule(max_attempts=10, first_delay=10, max_delay=300)
    delays = [schedule.delay(n) for n in range(1, 10)]
    assert all(d <= 300 for d in delays)
    assert delays[0] >= 10
    assert delays[4] > delays[0]


def test_retry_delay_honours_a_longer_server_hint() -> None:
    schedule = RetrySchedule(first_delay=1, max_delay=600)
    assert schedule.delay(1, server_hint=42) >= 42
