"""Template filters: numbers, dates, fixed-width fields, CSV cells and the formula guard."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from edigw.outbound.filters import (
    FilterError,
    csv_cell,
    csv_row,
    format_date,
    format_decimal,
    make_filters,
    pad,
)


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        pytest.param("12.5", (), "12.50", id="pads-decimals"),
        pytest.param("12.50", (2, ","), "12,50", id="comma-separator"),
        pytest.param("1234567.891", (2, ",", " "), "1 234 567,89", id="grouping-and-rounding"),
        pytest.param("2.345", (2,), "2.35", id="half-up"),
        pytest.param("-2.345", (2,), "-2.35", id="half-up-negative"),
        pytest.param("-0.001", (2,), "0.00", id="no-negative-zero"),
        pytest.param("-0.00", (2,), "0.00", id="no-negative-zero-fast-path"),
        pytest.param(3, (3,), "3.000", id="int"),
        pytest.param(Decimal("7.1"), (0,), "7", id="zero-precision"),
        pytest.param("0042.10", (2,), "42.10", id="leading-zeros"),
        pytest.param(None, (), "", id="none-is-empty"),
        pytest.param("", (), "", id="empty-is-empty"),
    ],
)
def test_decimal_formats_with_separator_and_precision(value, args, expected):
    assert format_decimal(value, *args) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(Decimal("105.67") * (100 + Decimal("20.00")) / 100, "126,80", id="vat-incl"),
        pytest.param(Decimal("0.005"), "0,01", id="half-up"),
        pytest.param(Decimal("-0.005"), "-0,01", id="half-up-negative"),
        pytest.param(Decimal("-0.004"), "0,00", id="no-negative-zero"),
        pytest.param(Decimal("1E+3"), "1000,00", id="exponent"),
        pytest.param(Decimal("1000.0"), "1000,00", id="same-number-other-exponent"),
        pytest.param(2.675, "2,68", id="float-as-written"),
        pytest.param(Decimal("-1E-1500"), "0,00", id="tiny-computed"),
        pytest.param(Decimal("1E+20"), "1" + "0" * 20 + ",00", id="big-computed"),
    ],
)
def test_decimal_formats_computed_numbers_like_their_text(value, expected):
    assert format_decimal(value, 2, ",") == expected
    decimal = make_filters()["decimal"]
    assert [decimal(value, 2, ","), decimal(value, 2, ",")] == [expected, expected]


@pytest.mark.parametrize(
    "fmt",
    [
        "%Y-%m-%d %H:%M:%S",
        "%d/%m/%Y",
        "%Y%m%d",
        "%H:%M",
        "100%% %Y",
        "%Y-%m-%d%",
        "%Y-%m-%dT%H:%M:%S%z",
        "%d %B %Y",
    ],
)
@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(datetime(2026, 7, 1, 22, 30, 5, tzinfo=UTC), id="aware"),
        pytest.param(datetime(2026, 7, 1, 9, 3), id="naive"),
        pytest.param(date(2026, 1, 2), id="date"),
        pytest.param(datetime(999, 1, 2, 3, 4, 5), id="year-999"),
    ],
)
def test_date_writes_what_strftime_writes(moment, fmt):
    local = (
        moment.astimezone(ZoneInfo("Europe/Paris"))
        if isinstance(moment, datetime) and moment.tzinfo
        else moment
    )
    assert format_date(moment, fmt, "Europe/Paris") == local.strftime(fmt)
    assert format_date(moment.isoformat(), fmt, "Europe/Paris") == local.strftime(fmt)


def test_the_decimal_filter_answers_repeated_values_exactly_as_the_first_time():
    decimal = make_filters()["decimal"]
    calls = [
        (("12.5",), {}, "12.50"),
        (("12.5", 2, ","), {}, "12,50"),
        (("12.5", 0), {}, "13"),
        (("1234.5", 2, ",", " "), {}, "1 234,50"),
        (("", 2), {"empty": "-"}, "-"),
        (("", 2), {}, ""),
        ((None, 2), {"empty": "n/a"}, "n/a"),
    ]
    for _ in range(2):  # the second time from the filter's own cache
        assert [decimal(*args, **kwargs) for args, kwargs, _ in calls] == [
            expected for _, _, expected in calls
        ]


def test_the_dec_filter_answers_repeated_values_exactly_as_the_first_time():
    dec = make_filters()["dec"]
    for _ in range(2):
        assert dec("12.50") == Decimal("12.50")
        assert str(dec("12.50")) == "12.50"  # the same exponent, not only the same number
        assert dec(None, 0) == 0
        with pytest.raises(FilterError, match="expected a number, got nothing"):
            dec("")
        with pytest.raises(FilterError, match="expected a number, got 'abc'"):
            dec("abc")


def test_decimal_refuses_text_that_is_not_a_number():
    with pytest.raises(FilterError, match="expected a number, got 'abc'"):
        format_decimal("abc")


def test_date_converts_aware_datetimes_to_the_flow_time_zone():
    f = make_filters(timezone="Europe/Paris")["date"]
    assert f("2026-07-01T22:30:00Z", "%d/%m/%Y %H:%M") == "02/07/2026 00:30"


def test_date_leaves_plain_dates_unshifted():
    assert format_date("2026-07-01", "%d.%m.%Y", "Pacific/Auckland") == "01.07.2026"
    assert format_date(date(2026, 1, 2), "%Y%m%d") == "20260102"


def test_date_accepts_datetime_objects_and_explicit_zone():
    moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert format_date(moment, "%H:%M", "America/New_York") == "07:00"


def test_date_refuses_garbage_with_the_value():
    with pytest.raises(FilterError, match=r"ISO 8601.*'yesterday'"):
        format_date("yesterday")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("abc", 5), "abc  ", id="left-space"),
        pytest.param(("42", 6, "right", "0"), "000042", id="right-zeros"),
        pytest.param(("abcdefgh", 5), "abcde", id="truncate-left-keeps-start"),
        pytest.param(("12345678", 5, "right"), "45678", id="truncate-right-keeps-end"),
        pytest.param((None, 3), "   ", id="none-blank"),
    ],
)
def test_pad_makes_fixed_width_fields(args, expected):
    assert pad(*args) == expected


def test_pad_without_truncation_refuses_long_text():
    with pytest.raises(FilterError, match="longer than 3"):
        pad("abcd", 3, truncate=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('=HYPERLINK("x")', '"\'=HYPERLINK(""x"")"', id="equals"),
        pytest.param("+33 1 23", "'+33 1 23", id="plus-phone-with-space"),
        pytest.param("-2+3", "'-2+3", id="minus-formula"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\tcmd", "'\tcmd", id="tab"),
        pytest.param("-12.50", "-12.50", id="negative-number-kept"),
        pytest.param("-1 234,50", "-1 234,50", id="negative-grouped-number-kept"),
        pytest.param("+5", "+5", id="signed-number-kept"),
        pytest.param("a;b", '"a;b"', id="separator-quoted"),
        pytest.param('say "hi"', '"say ""hi"""', id="quotes-doubled"),
        pytest.param("two\nlines", '"two\nlines"', id="newline-quoted"),
        pytest.param(None, "", id="none-empty"),
    ],
)
def test_csv_cell_quotes_and_guards_formulas(value, expected):
    assert csv_cell(value) == expected


def test_csv_row_parses_back_with_the_csv_module():
    values = ["A;1", 'q"uote', "=1+1", "-3.00", None, "multi\nline", 7]
    line = csv_row(values)
    parsed = next(csv.reader(io.StringIO(line), delimiter=";"))
    assert parsed == ["A;1", 'q"uote', "'=1+1", "-3.00", "", "multi\nline", "7"]


def test_decimal_output_of_a_negative_amount_survives_the_csv_guard():
    assert csv_cell(format_decimal("-4.5", 2, ",")) == "-4,50"
