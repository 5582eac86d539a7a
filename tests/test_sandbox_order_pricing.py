"""Orders as web shops send them: discounts, shipping, prices incl. VAT, priced exactly.

The rule is the contract's (docs/ecolix-api.md, "Orders"): line amounts to the cent in the
order's price mode, discounts off, the order discount spread in proportion, net derived from
gross per line when prices include VAT, VAT = gross - net.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from edigw.sandbox import rules
from edigw.sandbox.order_pricing import gross_to_net, spread
from edigw.sandbox.rules import BusinessRuleError

ARTICLES = {
    "T": {"code": "T", "label": "Tournevis", "sale_price": "10.00", "vat_rate": "20.00"},
    "G": {"code": "G", "label": "Graines", "sale_price": "4.00", "vat_rate": "10.00"},
    "C": {"code": "C", "label": "Café", "sale_price": "7.50", "vat_rate": "5.50"},
}
CUSTOMER = {"code": "CUS-1"}


def order(lines: list[dict[str, Any]], paid: str = "0", **extra: Any) -> dict[str, Any]:
    return {
        "customer_code": "CUS-1",
        "external_reference": "#1001",
        "order_date": "2026-11-28",
        "lines": lines,
        "payment": {
            "method": "CARD",
            "amount": paid,
            "transaction_id": "TX",
            "paid_at": "2026-11-28T14:03:11+01:00",
        },
        **extra,
    }


def priced(body: dict[str, Any]) -> dict[str, Any]:
    """The order as Ecolix records it, the payment set to the total it computes."""
    try:
        return rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    except BusinessRuleError as exc:
        total = exc.errors[0].message.split("incl. VAT ")[-1].split(" ")[0]
        body = {**body, "payment": {**body["payment"], "amount": total}}
        return rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)


def test_an_order_without_the_new_fields_is_priced_as_before() -> None:
    body = order([{"article_code": "T", "quantity": "3", "unit_price": "9.99"}], "35.96")
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert recorded["totals"] == {"net": "29.97", "vat": "5.99", "gross": "35.96"}
    assert (recorded["currency"], recorded["prices_include_vat"]) == ("EUR", False)
    assert (recorded["shipping"], recorded["discount"], recorded["billing_address"]) == (
        None,
        None,
        None,
    )


def test_prices_incl_vat_give_net_per_line_from_the_gross_so_the_total_is_the_shops() -> None:
    # 3 x 12.99 = 38.97 incl. 20 %: net 32.475 -> 32.48, VAT 6.49; 2 x 5.49 = 10.98 incl.
    # 5.5 %: net 10.4076 -> 10.41, VAT 0.57. The shop charged 38.97 + 10.98 = 49.95.
    body = order(
        [
            {"article_code": "T", "quantity": "3", "unit_price": "12.99"},
            {"article_code": "C", "quantity": "2", "unit_price": "5.49"},
        ],
        "49.95",
        prices_include_vat=True,
    )
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    first, second = recorded["lines"]
    assert (first["net_amount"], first["vat_amount"], first["gross_amount"]) == (
        "32.48",
        "6.49",
        "38.97",
    )
    assert (second["net_amount"], second["vat_amount"]) == ("10.41", "0.57")
    assert (first["unit_price"], first["unit_price_incl_vat"]) == ("10.825", "12.99")
    assert recorded["totals"] == {"net": "42.89", "vat": "7.06", "gross": "49.95"}


def test_shipping_is_added_at_its_own_rate() -> None:
    body = order(
        [{"article_code": "G", "quantity": "1", "unit_price": "4.40"}],
        "11.30",
        prices_include_vat=True,
        shipping={"service": "Colissimo", "amount": "6.90", "vat_rate": "20.00"},
    )
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert recorded["shipping"] == {
        "service": "Colissimo",
        "amount": "6.90",
        "vat_rate": "20.00",
        "net_amount": "5.75",
        "vat_amount": "1.15",
        "gross_amount": "6.90",
    }
    assert recorded["totals"] == {"net": "9.75", "vat": "1.55", "gross": "11.30"}


@pytest.mark.parametrize(
    ("discount", "taken"),
    [
        pytest.param({"amount": "1.50"}, "1.50", id="amount"),
        pytest.param({"percentage": "10", "reason": "BIENVENUE10"}, "2.50", id="percentage"),
    ],
)
def test_a_line_discount_is_an_amount_or_a_percentage_of_its_line(
    discount: dict[str, str], taken: str
) -> None:
    body = order(
        [{"article_code": "T", "quantity": "2", "unit_price": "12.50", "discount": discount}],
        prices_include_vat=True,
    )
    line = priced(body)["lines"][0]
    assert line["discount_amount"] == taken
    assert Decimal(line["gross_amount"]) == Decimal("25.00") - Decimal(taken)


def test_an_order_discount_is_spread_over_the_lines_in_proportion_to_the_cent() -> None:
    # 10 % of 60.00 = 6.00 over 40.00 and 20.00: 4.00 and 2.00
    body = order(
        [
            {"article_code": "T", "quantity": "1", "unit_price": "40.00"},
            {"article_code": "G", "quantity": "1", "unit_price": "20.00"},
        ],
        "54.00",
        prices_include_vat=True,
        discount={"percentage": "10", "reason": "NOEL10"},
    )
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert [line["discount_amount"] for line in recorded["lines"]] == ["4.00", "2.00"]
    assert recorded["discount"] == {"percentage": "10", "reason": "NOEL10", "amount_taken": "6.00"}
    assert recorded["totals"]["gross"] == "54.00"


def test_spread_shares_add_up_exactly_the_largest_taking_the_cents_left() -> None:
    shares = spread(Decimal("1.00"), [Decimal("1.00"), Decimal("1.00"), Decimal("1.00")])
    assert shares == [Decimal("0.34"), Decimal("0.33"), Decimal("0.33")]
    assert sum(shares) == Decimal("1.00")


def test_net_from_gross_is_rounded_half_up_to_the_cent() -> None:
    assert gross_to_net(Decimal("1.21"), Decimal("10")) == Decimal("1.10")
    assert gross_to_net(Decimal("38.97"), Decimal("20")) == Decimal("32.48")  # 32.475


def test_the_payment_is_compared_with_the_total_of_lines_discounts_and_shipping() -> None:
    body = order(
        [{"article_code": "T", "quantity": "1", "unit_price": "30.00"}],
        "30.00",
        prices_include_vat=True,
        discount={"amount": "5.00"},
        shipping={"amount": "4.90", "vat_rate": "20"},
    )
    with pytest.raises(BusinessRuleError) as caught:
        rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert caught.value.errors[0].pointer == "/payment/amount"
    assert caught.value.errors[0].message == (
        "payment 30.00 does not match the order total incl. VAT 29.90 (order discount 5.00 "
        "taken off the lines, shipping 4.90 incl. VAT)"
    )


def test_excl_vat_orders_take_discounts_and_shipping_too() -> None:
    body = order(
        [{"article_code": "T", "quantity": "2", "unit_price": "10.00"}],
        "27.60",
        discount={"amount": "2.00"},
        shipping={"amount": "5.00", "vat_rate": "20.00"},
    )
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert recorded["totals"] == {"net": "23.00", "vat": "4.60", "gross": "27.60"}


def test_a_catalogue_price_becomes_incl_vat_to_the_cent_in_an_incl_vat_order() -> None:
    body = order([{"article_code": "C", "quantity": "1"}], prices_include_vat=True)
    line = priced(body)["lines"][0]
    assert (line["unit_price_incl_vat"], line["gross_amount"]) == ("7.91", "7.91")  # 7.9125


def test_another_currency_needs_every_lines_price() -> None:
    body = order([{"article_code": "T", "quantity": "1"}], "12.00", currency="CHF")
    with pytest.raises(BusinessRuleError) as caught:
        rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert [e.pointer for e in caught.value.errors] == ["/lines/0/unit_price"]


def test_discounts_above_what_they_apply_to_are_refused() -> None:
    too_much_on_line = order(
        [{"article_code": "T", "quantity": "1", "unit_price": "5.00", "discount": {"amount": "6"}}]
    )
    too_much_on_order = order(
        [{"article_code": "T", "quantity": "1", "unit_price": "5.00"}], discount={"amount": "6"}
    )
    for body, pointer in (
        (too_much_on_line, "/lines/0/discount"),
        (too_much_on_order, "/discount"),
    ):
        with pytest.raises(BusinessRuleError) as caught:
            rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
        assert [e.pointer for e in caught.value.errors] == [pointer]


def test_the_billing_address_currency_and_note_are_kept_as_sent() -> None:
    billing = {"line1": "2 rue du Lac", "postal_code": "74000", "city": "Annecy", "country": "FR"}
    body = order(
        [{"article_code": "T", "quantity": "1", "unit_price": "12.00"}],
        "14.40",
        billing_address=billing,
        customer_note="Sonnez deux fois, merci !",
    )
    recorded = rules.build_order(body, number="CMD-1", customer=CUSTOMER, articles=ARTICLES)
    assert (recorded["billing_address"], recorded["customer_note"]) == (
        billing,
        "Sonnez deux fois, merci !",
    )
