"""Value conversions: contract conventions (decimal strings, ISO dates) from partner habits."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from edigw.mapping.types import check_format, converter, to_string

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("12,50", "12.50", id="decimal-comma"),
        pytest.param("1 234,5", "1234.5", id="thousands-space"),
        pytest.param("1\u00a0234,5", "1234.5", id="thousands-nbsp"),
        pytest.param(" 3 ", "3", id="trimmed"),
        pytest.param(",5", "0.5", id="leading-separator"),
        pytest.param("+7", "7", id="plus-sign"),
        pytest.param(2.5, "2.5", id="excel-float"),
        pytest.param(3.0, "3.0", id="excel-whole-float"),
    ],
)
def test_decimals_become_dot_strings(raw: object, expected: str) -> None:
    assert converter("decimal", decimal_sep=",", thousands=" ")(raw) == expected


@pytest.mark.parametrize("raw", ["12.50", "1,2,3", "abc", "", "1e5"])
def test_text_that_is_not_a_decimal_comma_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a decimal"):
        converter("decimal", decimal_sep=",")(raw)


def test_scale_rounds_half_up() -> None:
    assert converter("decimal", scale=2)("2.345") == "2.35"
    assert converter("decimal", scale=2)("3") == "3.00"


def test_whole_excel_floats_become_intact_codes_as_strings() -> None:
    assert to_string(3017620422003.0) == "3017620422003"
    assert to_string(12.5) == "12.5"


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        pytest.param("%d/%m/%Y", "03/11/2026", "2026-11-03", id="french"),
        pytest.param("%d/%m/%Y", "3/1/2026", "2026-01-03", id="french-short"),
        pytest.param("%Y%m%d", "20261103", "2026-11-03", id="compact"),
        pytest.param("%d.%m.%y", "03.11.26", "2026-11-03", id="two-digit-year"),
        pytest.param("%d %b %Y", "03 Nov 2026", "2026-11-03", id="strptime-fallback"),
        pytest.param(None, "2026-11-03", "2026-11-03", id="iso-default"),
    ],
)
def test_dates_are_parsed_with_their_format(fmt: str | None, raw: str, expected: str) -> None:
    assert converter("date", fmt=fmt)(raw) == expected


@pytest.mark.parametrize("raw", ["31/02/2026", "2026-11-03", "03/11/26"])
def test_impossible_or_misformatted_dates_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a date in the format %d/%m/%Y"):
        converter("date", fmt="%d/%m/%Y")(raw)


def test_excel_dates_stored_as_numbers_and_as_dates_are_accepted() -> None:
    to_date = converter("date")
    assert to_date(46329.0) == "2026-11-03"
    assert to_date(date(2026, 11, 3)) == "2026-11-03"
    assert to_date(datetime(2026, 11, 3, 14, 0)) == "2026-11-03"


def test_datetimes_without_offset_take_the_mapping_time_zone() -> None:
    to_datetime = converter("datetime", fmt="%d/%m/%Y %H:%M", tz=PARIS)
    assert to_datetime("03/07/2026 10:15") == "2026-07-03T10:15:00+02:00"
    assert to_datetime("03/11/2026 10:15") == "2026-11-03T10:15:00+01:00"


def test_datetimes_with_an_offset_keep_it() -> None:
    to_datetime = converter("datetime", tz=PARIS)
    assert to_datetime("2026-11-03T10:15:00Z") == "2026-11-03T10:15:00+00:00"


@pytest.mark.parametrize(
    ("raw", "expected"), [("oui", True), ("N", False), (1.0, True), ("X", True)]
)
def test_booleans_accept_french_and_english_words(raw: object, expected: bool) -> None:
    assert converter("bool")(raw) is expected


def test_ints_refuse_fractions() -> None:
    with pytest.raises(ValueError, match="is not a whole number"):
        converter("int")("2,5")
    assert converter("int", thousands=".")("1.200") == 1200


def test_a_format_without_directives_is_refused() -> None:
    with pytest.raises(ValueError, match="has no % directive"):
        check_format("dd/mm/yyyy", "date")


# -- dates as the field writes them (issue 16) ------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        pytest.param(
            "%Y-%m-%d %H:%M:%S %z",
            "2026-11-28 14:03:11 +0100",
            "2026-11-28T14:03:11+01:00",
            id="shopify",
        ),
        pytest.param(
            "%Y-%m-%d %H:%M:%S %z",
            "2026-11-28 14:03:11 +01:00",
            "2026-11-28T14:03:11+01:00",
            id="offset-with-colon",
        ),
        pytest.param(
            "%Y-%m-%dT%H:%M:%S%z", "2026-11-28T13:03:11Z", "2026-11-28T13:03:11+00:00", id="zulu"
        ),
        pytest.param(None, "2026-11-28 14:03:11 +0100", "2026-11-28T14:03:11+01:00", id="iso"),
        pytest.param(None, "2026-11-28T14:03:11", "2026-11-28T14:03:11+01:00", id="iso-local"),
        pytest.param(None, "2026-11-28", "2026-11-28T00:00:00+01:00", id="iso-date-only"),
        pytest.param(None, "46329.5", "2026-11-03T12:00:00+01:00", id="excel-serial-as-text"),
    ],
)
def test_date_times_with_offsets_iso_and_excel_serials_are_read(
    fmt: str | None, raw: str, expected: str
) -> None:
    if fmt is not None:
        check_format(fmt, "datetime")
    assert converter("datetime", fmt=fmt, tz=PARIS)(raw) == expected


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        pytest.param(None, "2026-11-28 14:03:11 +0100", id="iso-with-time-and-offset"),
        pytest.param(None, "2026-11-28T14:03:11Z", id="iso-zulu"),
        pytest.param(None, "46354", id="excel-serial-as-text"),
        pytest.param("%Y-%m-%d %H:%M:%S %z", "2026-11-28 14:03:11 +0100", id="shopify-format"),
    ],
)
def test_a_date_field_takes_the_day_as_written(fmt: str | None, raw: str) -> None:
    assert converter("date", fmt=fmt)(raw) == "2026-11-28"


def test_a_date_time_keeps_the_calendar_day_it_was_written_on_not_another_zones() -> None:
    assert converter("date")("2026-11-28T23:30:00-05:00") == "2026-11-28"


@pytest.mark.parametrize("kind", ["date", "datetime"])
def test_a_format_with_an_offset_is_accepted_at_load_time(kind: str) -> None:
    check_format("%Y-%m-%d %H:%M:%S %z", kind)  # used to fail, quoting a made-up value


def test_an_offset_the_format_does_not_expect_is_named_with_the_value_quoted_exactly() -> None:
    with pytest.raises(ValueError) as caught:
        converter("datetime", fmt="%Y-%m-%d %H:%M:%S", tz=PARIS)("2026-11-28 14:03:11 +0100")
    assert str(caught.value) == (
        "'2026-11-28 14:03:11 +0100' is not a date and time in the format %Y-%m-%d %H:%M:%S; "
        "it ends with a time-zone offset '+0100': add %z to the format"
    )


def test_a_date_that_does_not_match_names_the_expected_format() -> None:
    with pytest.raises(ValueError) as caught:
        converter("date", fmt="%d/%m/%Y")("2026-11-28")
    assert str(caught.value) == "'2026-11-28' is not a date in the format %d/%m/%Y"
