"""File-name patterns and schedules of export flows."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from edigw.errors import ConfigError
from edigw.outbound.naming import check_pattern, file_name
from edigw.outbound.schedule import Schedule, next_run

PARIS = ZoneInfo("Europe/Paris")


def test_file_name_uses_partner_flow_local_time_and_sequence():
    now = datetime(2026, 7, 1, 22, 5, 9, tzinfo=UTC).astimezone(PARIS)
    name = file_name(
        "{partner}_{flow}_{now:%Y%m%d-%H%M%S}_{seq:05d}.csv",
        partner="webshop",
        flow="articles",
        now=now,
        seq=42,
    )
    assert name == "webshop_articles_20260702-000509_00042.csv"


def test_pattern_with_an_unknown_name_is_refused_at_load_time():
    with pytest.raises(ConfigError, match=r"unknown name \{date\}; use flow, now, partner, seq"):
        check_pattern("{partner}_{date}.csv")


def test_pattern_that_makes_a_path_is_refused():
    with pytest.raises(ConfigError, match="not a plain file name"):
        check_pattern("../{partner}/x.csv")


def test_interval_schedule_adds_seconds():
    after = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert next_run({"every": 900}, after) == datetime(2026, 1, 1, 12, 15, tzinfo=UTC)


def test_cron_is_read_in_the_flow_time_zone_across_daylight_saving():
    summer = next_run(
        {"cron": "0 6 * * *"}, datetime(2026, 7, 1, 5, tzinfo=UTC), timezone="Europe/Paris"
    )
    winter = next_run(
        {"cron": "0 6 * * *"}, datetime(2026, 12, 1, 6, tzinfo=UTC), timezone="Europe/Paris"
    )
    assert summer == datetime(2026, 7, 2, 4, tzinfo=UTC)
    assert winter == datetime(2026, 12, 2, 5, tzinfo=UTC)


def test_cron_next_run_is_strictly_after():
    after = datetime(2026, 1, 1, 12, 15, tzinfo=UTC)
    assert next_run({"cron": "*/15 * * * *"}, after) == datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({}, id="neither"),
        pytest.param({"every": 5, "cron": "* * * * *"}, id="both"),
        pytest.param({"every": 0}, id="zero-interval"),
        pytest.param({"cron": "61 * * * *"}, id="bad-cron"),
    ],
)
def test_invalid_schedules_are_config_errors(value):
    with pytest.raises(ConfigError, match="schedule"):
        Schedule.of(value)
