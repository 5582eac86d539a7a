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


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("{now.tzinfo.__class__}.csv", id="attribute"),
        pytest.param("{seq.__class__.__init__.__globals__}.csv", id="globals"),
        pytest.param("{partner[0]}.csv", id="index"),
    ],
)
def test_pattern_that_explores_a_field_is_refused(pattern):
    with pytest.raises(ConfigError, match="unknown name"):
        check_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("{seq:999999999}.csv", id="huge-width"),
        pytest.param("{partner:>0300}.csv", id="over-a-file-name"),
        pytest.param("{seq:{seq}}.csv", id="nested-width"),
    ],
)
def test_pattern_wider_than_a_file_name_is_refused_before_it_is_built(pattern):
    with pytest.raises(ConfigError, match="is wider than a file name"):
        check_pattern(pattern)


def test_pattern_with_digits_in_its_date_format_is_fine():
    check_pattern("{partner}_{now:%Y2024}_{seq:05d}.csv")


def test_pattern_that_makes_a_path_is_refused():
    with pytest.raises(ConfigError, match="not a plain file name"):
        check_pattern("../{partner}/x.csv")


def test_a_per_record_pattern_names_the_record_fields():
    name = file_name(
        "{partner}_{record[number]}_{record[seller][siren]}_{record[code]}_{seq:04d}.xml",
        partner="platform",
        flow="statuses",
        now=datetime(2026, 7, 1, tzinfo=UTC),
        seq=7,
        record={"number": "FA-2026/001", "seller": {"siren": "732829320"}, "code": 210},
    )
    assert name == "platform_FA-2026_001_732829320_210_0007.xml"


def test_record_values_lose_every_character_a_file_name_cannot_hold():
    name = file_name(
        "{record[number]}.xml",
        partner="p",
        flow="f",
        now=datetime(2026, 7, 1, tzinfo=UTC),
        seq=1,
        record={"number": '../a\\b:c*d?"e<f>g|h\ni'},
    )
    assert name == ".._a_b_c_d__e_f_g_h_i.xml"


def test_a_missing_record_field_fails_naming_it():
    with pytest.raises(ConfigError, match=r"the record has no field \[seller\]\[siret\]"):
        file_name(
            "{record[seller][siret]}.xml",
            partner="p",
            flow="f",
            now=datetime(2026, 7, 1, tzinfo=UTC),
            seq=1,
            record={"seller": {"siren": "732829320"}},
        )


def test_record_fields_are_refused_unless_the_flow_writes_one_file_per_record():
    with pytest.raises(ConfigError, match=r"unknown name \{record\[number\]\}"):
        check_pattern("{record[number]}.xml")
    check_pattern("{record[number]}_{record[seller][siren]}.xml", per_record=True)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("{record}.xml", id="the-whole-record"),
        pytest.param("{record.number}.xml", id="attribute"),
        pytest.param("{record[number].__class__}.xml", id="attribute-after-key"),
    ],
)
def test_a_per_record_pattern_reads_keys_only(pattern):
    with pytest.raises(ConfigError, match="unknown name"):
        check_pattern(pattern, per_record=True)


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
