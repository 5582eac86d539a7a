"""The sandbox's business rules as pure functions (no HTTP, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from edigw.sandbox import rules
from edigw.sandbox.rules import BusinessRuleError

ARTICLES = {
    "A": {"code": "A", "label": "Vis", "sale_price": "0.10", "vat_rate": "20.00", "active": True},
    "B": {"code": "B", "label": "Café", "sale_price": "3.333", "vat_rate": "5.50", "active": True},
    "Z": {"code": "Z", "label": "Old", "sale_price": "1.00", "vat_rate": "20.00", "active": False},
}


def test_lines_are_rounded_half_up_to_the_cent_one_by_one() -> None:
    lines, totals = rules.price_lines(
        [{"article_code": "A", "quantity": "5"}, {"article_code": "B", "quantity": "3"}], ARTICLES
    )
    # A: 0.50 net, 0.10 VAT; B: 9.999 -> 10.00 net, 0.55 VAT
    assert [(line["net_amount"], line["vat_amount"]) for line in lines] == [
        ("0.50", "0.10"),
        ("10.00", "0.55"),
    ]
    assert totals == {"net": "10.50", "vat": "0.65", "gross": "11.15"}


def test_a_given_unit_price_wins_over_the_catalogue() -> None:
    lines, _ = rules.price_lines(
        [{"article_code": "A", "quantity": "1", "unit_price": "0.0125"}], ARTICLES
    )
    assert (lines[0]["unit_price"], lines[0]["net_amount"]) == ("0.0125", "0.01")


def test_every_unpriceable_line_is_reported_at_once() -> None:
    with pytest.raises(BusinessRuleError) as caught:
        rules.price_lines(
            [
                {"article_code": "X", "quantity": "1"},
                {"article_code": "Z", "quantity": "1"},
                {"article_code": "A", "quantity": "0"},
            ],
            ARTICLES,
        )
    assert caught.value.status == 422
    assert [e.pointer for e in caught.value.errors] == [
        "/lines/0/article_code",
        "/lines/1/article_code",
        "/lines/2/quantity",
    ]


def _order(delivered: str = "0", status: str = "received") -> dict[str, Any]:
    return {
        "number": "CMD-1",
        "status": status,
        "lines": [
            {
                "line_number": 1,
                "article_code": "A",
                "quantity": "5",
                "delivered_quantity": delivered,
            },
            {"line_number": 2, "article_code": "B", "quantity": "2", "delivered_quantity": "0"},
        ],
    }


def _note(**extra: Any) -> dict[str, Any]:
    return {
        "order_number": "CMD-1",
        "carrier_code": "GEODIS",
        "booking_reference": "R1",
        "appointment_date": "2026-12-01",
        "slot_start": "08:00",
        "slot_end": "09:00",
        **extra,
    }


def test_a_delivery_note_without_lines_takes_what_remains() -> None:
    note, order = rules.build_delivery_note(
        _note(), number="BL-1", order=_order(delivered="3"), carrier_known=True
    )
    assert [(line["line_number"], line["quantity"]) for line in note["lines"]] == [
        (1, "2"),
        (2, "2"),
    ]
    assert [line["delivered_quantity"] for line in order["lines"]] == ["5", "2"]


def test_two_request_lines_on_one_order_line_are_added_before_the_check() -> None:
    body = _note(
        lines=[{"line_number": 1, "quantity": "3"}, {"article_code": "A", "quantity": "3"}]
    )
    with pytest.raises(BusinessRuleError) as caught:
        rules.build_delivery_note(body, number="BL-1", order=_order(), carrier_known=True)
    assert [e.pointer for e in caught.value.errors] == ["/lines/1/quantity"]


def test_a_line_number_and_article_that_disagree_are_refused() -> None:
    body = _note(lines=[{"line_number": 1, "article_code": "B", "quantity": "1"}])
    with pytest.raises(BusinessRuleError) as caught:
        rules.build_delivery_note(body, number="BL-1", order=_order(), carrier_known=True)
    assert [e.pointer for e in caught.value.errors] == ["/lines/0/article_code"]


def test_an_expired_quote_is_an_invalid_state() -> None:
    quote = {"number": "Q", "status": "open", "valid_until": "2026-11-27", "lines": []}
    with pytest.raises(BusinessRuleError) as caught:
        rules.order_from_quote(quote, {}, number="C", today=date(2026, 11, 28), articles={})
    assert (caught.value.status, caught.value.kind) == (409, "invalid-state")


def test_a_quote_is_still_valid_on_its_last_day() -> None:
    quote = {
        "number": "Q",
        "status": "open",
        "valid_until": "2026-11-28",
        "customer_code": "C1",
        "lines": [{"article_code": "A", "quantity": "2", "unit_price": "1.00"}],
    }
    order = rules.order_from_quote(
        quote, {}, number="C", today=date(2026, 11, 28), articles=ARTICLES
    )
    assert order["totals"] == {"net": "2.00", "vat": "0.40", "gross": "2.40"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(Decimal("2.500"), "2.5", id="trailing-zeros"),
        pytest.param(Decimal("100"), "100", id="integer"),
        pytest.param(Decimal("1E+2"), "100", id="exponent"),
    ],
)
def test_quantities_are_written_plainly(value: Decimal, text: str) -> None:
    assert rules.quantity_text(value) == text


def test_the_problem_document_lists_every_field() -> None:
    err = rules.rule_broken([rules.Pointed("/a", "bad"), rules.Pointed("/b", "worse")], "Nope")
    assert err.problem() == {
        "type": "https://ecolix.example/problems/business-rule",
        "title": "Nope",
        "status": 422,
        "detail": "/a: bad; /b: worse",
        "errors": [{"pointer": "/a", "message": "bad"}, {"pointer": "/b", "message": "worse"}],
    }
