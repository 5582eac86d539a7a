"""Business rules of the five packages, checked over HTTP against a sandbox on the shipped seed.

One sandbox per module (tests here change seeded quotes, orders and purchase orders, each
test its own objects).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxProcess, own_sandbox
from tests.fixtures.sandbox_data import customer_body, key, order_body, seed, unique


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with own_sandbox(tmp_path_factory, "rules") as server:
        yield server


@pytest.fixture
def http(ecolix: SandboxProcess) -> Iterator[httpx.Client]:
    with ecolix.client() as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, json=body, headers={"Idempotency-Key": key()})


def pointers(response: httpx.Response) -> list[str]:
    return [e["pointer"] for e in response.json()["errors"]]


def seeded(kind: str, **match: Any) -> list[dict[str, Any]]:
    return [o for o in seed()[kind] if all(o.get(k) == v for k, v in match.items())]


# ------------------------------------------------------------------------- e-commerce


def test_customer_upsert_creates_then_updates(http: httpx.Client) -> None:
    body = customer_body()
    path = f"/customers/{body['code']}"
    created = http.put(path, json=body, headers={"Idempotency-Key": key()})
    updated = http.put(
        path, json={**body, "name": "Martin & Fils"}, headers={"Idempotency-Key": key()}
    )
    assert (created.status_code, updated.status_code) == (201, 200)
    assert http.get(path).json()["name"] == "Martin & Fils"
    assert updated.json()["created_at"] == created.json()["created_at"]


def test_customer_upsert_with_the_same_record_changes_nothing(http: httpx.Client) -> None:
    body = customer_body()
    path = f"/customers/{body['code']}"
    first = http.put(path, json=body, headers={"Idempotency-Key": key()}).json()
    second = http.put(path, json=body, headers={"Idempotency-Key": key()}).json()
    assert second["updated_at"] == first["updated_at"]


def test_an_order_is_priced_from_the_catalogue_with_each_articles_vat(http: httpx.Client) -> None:
    lines = [
        {"article_code": "ART-0001", "quantity": "3"},  # 20 % VAT, catalogue price
        {"article_code": "ART-0007", "quantity": "2", "unit_price": "4.15"},  # 5.5 % VAT
    ]
    response = post(http, "/orders", order_body(lines=lines))
    assert response.status_code == 201
    order = response.json()
    art1 = seeded("articles", code="ART-0001")[0]
    assert order["lines"][0]["unit_price"] == art1["sale_price"]
    assert order["lines"][0]["vat_rate"] == "20.00"
    assert order["lines"][1]["vat_rate"] == "5.50"
    assert order["lines"][1]["net_amount"] == "8.30"
    assert order["lines"][1]["vat_amount"] == "0.46"
    net = Decimal(art1["sale_price"]) * 3 + Decimal("8.30")
    assert Decimal(order["totals"]["net"]) == net
    assert order["totals"]["gross"] == order["payment"]["amount"]
    assert order["status"] == "received"
    assert order["number"].startswith("CMD-")


def test_a_known_customer_is_kept_as_it_is_with_if_exists_keep(http: httpx.Client) -> None:
    body = customer_body()
    path = f"/customers/{body['code']}"
    created = http.put(path, json=body, headers={"Idempotency-Key": key()})
    web = {**body, "name": "Jeanne Martin", "siret": None, "if_exists": "keep"}
    del web["siret"]
    kept = http.put(path, json=web, headers={"Idempotency-Key": key()})
    assert (created.status_code, kept.status_code) == (201, 200)
    assert kept.json() == created.json()
    assert http.get(path).json()["name"] == "Quincaillerie Martin"


def test_a_new_customer_is_created_with_if_exists_keep(http: httpx.Client) -> None:
    body = customer_body(if_exists="keep")
    created = http.put(f"/customers/{body['code']}", json=body, headers={"Idempotency-Key": key()})
    assert created.status_code == 201
    assert "if_exists" not in created.json()


def test_a_web_shop_order_incl_vat_with_shipping_and_discount_is_created(
    http: httpx.Client,
) -> None:
    body = order_body(
        lines=[
            {"article_code": "ART-0001", "quantity": "2", "unit_price": "24.90"},
            {
                "article_code": "ART-0007",
                "quantity": "1",
                "unit_price": "5.49",
                "discount": {"percentage": "10"},
            },
        ]
    )
    body.update(
        currency="EUR",
        prices_include_vat=True,
        discount={"amount": "5.00", "reason": "BIENVENUE5"},
        shipping={"service": "Colissimo", "amount": "6.90", "vat_rate": "20.00"},
        billing_address={
            "name": "Jeanne Martin",
            "line1": "2 rue du Lac",
            "postal_code": "74000",
            "city": "Annecy",
            "country": "FR",
        },
        customer_note="Livrer chez la voisine si absente",
    )
    # 49.80 + (5.49 - 0.55) - 5.00 + 6.90 = 56.64
    body["payment"]["amount"] = "56.64"
    response = post(http, "/orders", body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["totals"]["gross"] == "56.64"
    assert order["shipping"]["gross_amount"] == "6.90"
    assert order["customer_note"] == "Livrer chez la voisine si absente"
    assert http.get(f"/orders/{order['number']}").json() == order


def test_a_discount_with_both_an_amount_and_a_percentage_breaks_the_contract(
    http: httpx.Client,
) -> None:
    body = order_body()
    body["discount"] = {"amount": "1.00", "percentage": "10"}
    response = post(http, "/orders", body)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/validation-failed")


def test_an_order_whose_payment_differs_from_the_total_is_refused(http: httpx.Client) -> None:
    body = order_body()
    body["payment"]["amount"] = str(Decimal(body["payment"]["amount"]) + Decimal("0.01"))
    response = post(http, "/orders", body)
    assert response.status_code == 422
    assert pointers(response) == ["/payment/amount"]


def test_an_order_for_an_unknown_customer_is_refused(http: httpx.Client) -> None:
    response = post(http, "/orders", order_body(customer="CUS-NOPE"))
    assert response.status_code == 422
    assert pointers(response) == ["/customer_code"]


def test_an_order_with_unknown_or_discontinued_articles_names_each_line(
    http: httpx.Client,
) -> None:
    body = order_body()
    body["lines"] = [
        {"article_code": "ART-0001", "quantity": "1"},
        {"article_code": "ART-9999", "quantity": "1"},
        {"article_code": "ART-0050", "quantity": "1"},  # inactive in the seed
    ]
    response = post(http, "/orders", body)
    assert response.status_code == 422
    assert pointers(response) == ["/lines/1/article_code", "/lines/2/article_code"]


def test_a_second_order_with_the_same_external_reference_is_a_409_duplicate(
    http: httpx.Client,
) -> None:
    first = post(http, "/orders", order_body(customer="CUS-0010", reference="WEB-DUP-1"))
    second = post(http, "/orders", order_body(customer="CUS-0010", reference="WEB-DUP-1"))
    other_customer = post(http, "/orders", order_body(customer="CUS-0011", reference="WEB-DUP-1"))
    assert (first.status_code, second.status_code, other_customer.status_code) == (201, 409, 201)
    assert second.json()["type"].endswith("/duplicate")
    assert second.json()["existing_id"] == first.json()["number"]


def test_a_seeded_order_reference_is_already_taken(http: httpx.Client) -> None:
    order = seeded("orders", status="received")[0]
    body = order_body(customer=order["customer_code"], reference=order["external_reference"])
    response = post(http, "/orders", body)
    assert response.status_code == 409
    assert response.json()["existing_id"] == order["number"]


# ------------------------------------------------------------------------- quotes


def test_validating_an_open_quote_creates_the_order_at_the_quote_prices(
    http: httpx.Client,
) -> None:
    quote = seeded("quotes", number="DEV-2026-0001")[0]
    body = {"number": quote["number"], "customer_reference": "PO-CLIENT-77"}
    response = post(http, f"/quotes/{quote['number']}/validation", body)
    assert response.status_code == 201
    order = http.get(f"/orders/{response.json()['order_number']}").json()
    assert order["quote_number"] == quote["number"]
    assert order["customer_code"] == quote["customer_code"]
    assert order["external_reference"] == "PO-CLIENT-77"
    assert order["totals"] == quote["totals"]
    assert [line["unit_price"] for line in order["lines"]] == [
        line["unit_price"] for line in quote["lines"]
    ]
    after = http.get(f"/quotes/{quote['number']}").json()
    assert (after["status"], after["order_number"]) == ("validated", order["number"])


def test_a_quote_is_validated_once(http: httpx.Client) -> None:
    number = "DEV-2026-0002"
    assert post(http, f"/quotes/{number}/validation", {"number": number}).status_code == 201
    again = post(http, f"/quotes/{number}/validation", {"number": number})
    assert again.status_code == 409
    assert again.json()["type"].endswith("/invalid-state")


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("DEV-2026-0015", id="open-but-past-its-validity-date"),
        pytest.param("DEV-2026-0018", id="expired"),
        pytest.param("DEV-2026-0028", id="cancelled"),
    ],
)
def test_a_quote_that_is_not_open_and_valid_cannot_be_validated(
    http: httpx.Client, number: str
) -> None:
    response = post(http, f"/quotes/{number}/validation", {"number": number})
    assert response.status_code == 409
    assert response.json()["type"].endswith("/invalid-state")


def test_validating_an_unknown_quote_is_404(http: httpx.Client) -> None:
    response = post(http, "/quotes/DEV-0000/validation", {"number": "DEV-0000"})
    assert response.status_code == 404


# ------------------------------------------------------------------------- carriers


def delivery(order: str, **extra: Any) -> dict[str, Any]:
    return {
        "order_number": order,
        "carrier_code": "GEODIS",
        "booking_reference": unique("RDV"),
        "appointment_date": "2026-12-02",
        "slot_start": "08:00",
        "slot_end": "10:00",
        **extra,
    }


def test_delivery_notes_cover_an_order_in_parts_then_refuse_more(http: httpx.Client) -> None:
    order = seeded("orders", number="CMD-100002")[0]
    first_line = order["lines"][0]
    partial = post(
        http,
        "/delivery-notes",
        delivery(order["number"], lines=[{"line_number": 1, "quantity": "1"}], handling_units=2),
    )
    assert partial.status_code == 201
    assert partial.json()["lines"] == [
        {"line_number": 1, "article_code": first_line["article_code"], "quantity": "1"}
    ]
    too_much = post(
        http,
        "/delivery-notes",
        delivery(
            order["number"],
            lines=[
                {"article_code": first_line["article_code"], "quantity": first_line["quantity"]}
            ],
        ),
    )
    assert too_much.status_code == 422
    assert pointers(too_much) == ["/lines/0/quantity"]
    rest = post(http, "/delivery-notes", delivery(order["number"]))  # no lines: all that remains
    assert rest.status_code == 201
    assert rest.json()["lines"][0]["quantity"] == str(int(first_line["quantity"]) - 1)
    done = post(http, "/delivery-notes", delivery(order["number"]))
    assert done.status_code == 409
    assert "fully delivered" in done.json()["title"]
    remaining = http.get(f"/orders/{order['number']}").json()["lines"]
    assert all(line["delivered_quantity"] == line["quantity"] for line in remaining)


def test_a_delivery_note_for_a_cancelled_order_is_409(http: httpx.Client) -> None:
    response = post(http, "/delivery-notes", delivery("CMD-100037"))
    assert response.status_code == 409
    assert response.json()["type"].endswith("/invalid-state")


def test_a_delivery_note_for_an_already_delivered_order_is_409(http: httpx.Client) -> None:
    assert post(http, "/delivery-notes", delivery("CMD-100025")).status_code == 409


def test_a_delivery_note_for_an_unknown_order_or_carrier_is_422(http: httpx.Client) -> None:
    response = post(http, "/delivery-notes", delivery("CMD-000000", carrier_code="NOPE"))
    assert response.status_code == 422
    assert sorted(pointers(response)) == ["/carrier_code", "/order_number"]


def test_a_delivery_note_line_must_match_an_order_line(http: httpx.Client) -> None:
    response = post(
        http,
        "/delivery-notes",
        delivery("CMD-100003", lines=[{"line_number": 99, "quantity": "1"}]),
    )
    assert response.status_code == 422
    assert pointers(response) == ["/lines/0/line_number"]


def test_the_same_carrier_booking_twice_is_a_409_duplicate(http: httpx.Client) -> None:
    body = delivery("CMD-100004", lines=[{"line_number": 1, "quantity": "1"}])
    first = post(http, "/delivery-notes", body)
    second = post(http, "/delivery-notes", body)  # same body, new key: a business duplicate
    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["existing_id"] == first.json()["number"]


def test_a_time_slot_must_end_after_it_starts(http: httpx.Client) -> None:
    response = post(
        http, "/delivery-notes", delivery("CMD-100005", slot_start="14:00", slot_end="12:00")
    )
    assert response.status_code == 422
    assert pointers(response) == ["/slot_end"]


# ------------------------------------------------------------------------- suppliers


def confirmation(
    po: dict[str, Any], status: str = "accepted", **line_changes: Any
) -> dict[str, Any]:
    return {
        "number": po["number"],
        "supplier_reference": unique("AR"),
        "lines": [
            {
                "line_number": line["line_number"],
                "article_code": line["article_code"],
                "confirmed_quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "delivery_date": line["delivery_date"],
                "status": status,
                **line_changes,
            }
            for line in po["lines"]
        ],
    }


def test_a_purchase_order_accepted_in_full_becomes_confirmed(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0001")[0]
    body = confirmation(po)
    response = http.post(
        f"/purchase-orders/{po['number']}/confirmation",
        json=body,
        headers={"Idempotency-Key": key()},
    )
    assert response.status_code == 200
    confirmed = response.json()
    assert confirmed["status"] == "confirmed"
    assert confirmed["supplier_reference"] == body["supplier_reference"]
    assert {line["status"] for line in confirmed["lines"]} == {"accepted"}


def test_a_partial_confirmation_keeps_the_purchase_order_open(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0002")[0]
    body = confirmation(po, status="changed", delivery_date="2027-01-15")
    body["lines"] = body["lines"][:2]
    response = post(http, f"/purchase-orders/{po['number']}/confirmation", body)
    assert response.status_code == 200
    lines = response.json()["lines"]
    assert [line["status"] for line in lines[:3]] == ["changed", "changed", "pending"]
    assert lines[0]["confirmed_delivery_date"] == "2027-01-15"
    assert response.json()["status"] == "open"


def test_an_accepted_line_must_repeat_the_ordered_quantity(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0003")[0]
    response = post(
        http,
        f"/purchase-orders/{po['number']}/confirmation",
        confirmation(po, confirmed_quantity="1"),
    )
    assert response.status_code == 422
    assert pointers(response)[0] == "/lines/0/confirmed_quantity"


def test_a_rejected_line_confirms_zero(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0004")[0]
    refused = post(
        http, f"/purchase-orders/{po['number']}/confirmation", confirmation(po, status="rejected")
    )
    accepted = post(
        http,
        f"/purchase-orders/{po['number']}/confirmation",
        confirmation(po, status="rejected", confirmed_quantity="0"),
    )
    assert refused.status_code == 422
    assert accepted.status_code == 200


def test_a_confirmation_of_an_unknown_line_is_422(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0005")[0]
    body = confirmation(po)
    body["lines"][0]["line_number"] = 42
    body["lines"][0].pop("article_code")
    response = post(http, f"/purchase-orders/{po['number']}/confirmation", body)
    assert response.status_code == 422
    assert pointers(response) == ["/lines/0/line_number"]


def test_a_cancelled_purchase_order_cannot_be_confirmed(http: httpx.Client) -> None:
    po = seeded("purchase_orders", number="PO-2026-0018")[0]
    response = post(http, f"/purchase-orders/{po['number']}/confirmation", confirmation(po))
    assert response.status_code == 409


def test_confirming_an_unknown_purchase_order_is_404(http: httpx.Client) -> None:
    body = {
        "number": "PO-0000",
        "supplier_reference": "AR-1",
        "lines": [
            {
                "line_number": 1,
                "confirmed_quantity": "1",
                "unit_price": "1",
                "delivery_date": "2026-12-01",
                "status": "accepted",
            }
        ],
    }
    assert post(http, "/purchase-orders/PO-0000/confirmation", body).status_code == 404


def invoice(supplier: dict[str, str], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "supplier": supplier,
        "document_type": "invoice",
        "number": unique("F"),
        "issue_date": "2026-11-20",
        "due_date": "2026-12-31",
        "currency": "EUR",
        "purchase_orders": ["PO-2026-0009"],
        "lines": [
            {
                "description": "Vis inox",
                "article_code": "ART-0001",
                "quantity": "10",
                "unit_price": "1.25",
                "net_amount": "12.50",
                "vat_rate": "20.00",
            },
            {
                "description": "Café",
                "quantity": "3",
                "unit_price": "4.10",
                "net_amount": "12.30",
                "vat_rate": "5.50",
            },
        ],
        "vat_breakdown": [
            {"rate": "20.00", "base": "12.50", "amount": "2.50"},
            {"rate": "5.50", "base": "12.30", "amount": "0.68"},
        ],
        "totals": {"net": "24.80", "vat": "3.18", "gross": "27.98"},
    }
    body.update(changes)
    return body


SUP1 = seeded("suppliers", code="SUP-001")[0]


@pytest.mark.parametrize(
    "identifier",
    [
        pytest.param({"code": "SUP-001"}, id="code"),
        pytest.param({"siret": SUP1["siret"]}, id="siret"),
        pytest.param({"vat_number": SUP1["vat_number"]}, id="vat"),
        pytest.param({"code": "SUP-001", "siret": SUP1["siret"]}, id="code-and-siret"),
    ],
)
def test_a_supplier_invoice_finds_its_supplier_by_any_identifier(
    http: httpx.Client, identifier: dict[str, str]
) -> None:
    response = post(http, "/supplier-invoices", invoice(identifier))
    assert response.status_code == 201
    assert response.json()["supplier_code"] == "SUP-001"
    assert response.json()["id"].startswith("FF-")


def test_a_supplier_invoice_for_an_unknown_or_ambiguous_supplier_is_422(http: httpx.Client) -> None:
    unknown = post(http, "/supplier-invoices", invoice({"siret": "40212345900016"}))
    ambiguous = post(
        http, "/supplier-invoices", invoice({"code": "SUP-002", "siret": SUP1["siret"]})
    )
    assert (unknown.status_code, ambiguous.status_code) == (422, 422)
    assert pointers(unknown) == ["/supplier/siret"]
    assert pointers(ambiguous) == ["/supplier"]


def test_supplier_invoice_totals_must_add_up(http: httpx.Client) -> None:
    body = invoice({"code": "SUP-001"})
    body["lines"][0]["net_amount"] = "13.50"  # not 10 x 1.25
    body["vat_breakdown"][1]["amount"] = "0.99"  # 5.5 % of 12.30 is 0.68: within BR-CO-17's 1
    body["totals"] = {"net": "24.80", "vat": "3.18", "gross": "28.00"}
    response = post(http, "/supplier-invoices", body)
    assert response.status_code == 422
    assert [(e["pointer"], e.get("rule")) for e in response.json()["errors"]] == [
        ("/lines/0/net_amount", "EN16931-BT-131"),
        ("/vat_breakdown/0/base", "BR-S-08"),
        ("/totals/net", "BR-CO-13"),
        ("/totals/vat", "BR-CO-14"),
        ("/totals/gross", "BR-CO-15"),
    ]


def test_the_same_supplier_and_number_twice_is_a_409_duplicate(http: httpx.Client) -> None:
    body = invoice({"code": "SUP-001"})
    first = post(http, "/supplier-invoices", body)
    by_vat = post(
        http, "/supplier-invoices", {**body, "supplier": {"vat_number": SUP1["vat_number"]}}
    )
    assert (first.status_code, by_vat.status_code) == (201, 409)
    assert by_vat.json()["existing_id"] == first.json()["id"]


def test_a_credit_note_links_the_invoices_it_credits_when_ecolix_knows_them(
    http: httpx.Client,
) -> None:
    seeded_invoice = seeded("supplier_invoices", supplier_code="SUP-001")[0]
    refs = [{"number": seeded_invoice["number"], "issue_date": "2026-11-15"}, {"number": "F-NOPE"}]
    good = post(
        http,
        "/supplier-invoices",
        invoice({"code": "SUP-001"}, document_type="credit_note", preceding_invoices=refs),
    )
    alone = post(
        http, "/supplier-invoices", invoice({"code": "SUP-001"}, document_type="credit_note")
    )
    assert (good.status_code, alone.status_code) == (201, 201)
    assert good.json()["preceding_invoices"] == [
        {
            "number": seeded_invoice["number"],
            "issue_date": "2026-11-15",
            "registered_id": "FF-000002",
        },
        {"number": "F-NOPE", "issue_date": None, "registered_id": None},
    ]
    assert alone.json()["preceding_invoices"] == []
    assert (good.json()["type_code"], alone.json()["type_code"]) == ("381", "381")


def test_a_supplier_invoice_refers_only_to_that_suppliers_purchase_orders(
    http: httpx.Client,
) -> None:
    response = post(
        http,
        "/supplier-invoices",
        invoice({"code": "SUP-001"}, purchase_orders=["PO-2026-0002", "PO-0000"]),
    )
    assert response.status_code == 422
    assert pointers(response) == ["/purchase_orders/0", "/purchase_orders/1"]


def test_a_supplier_invoice_may_carry_a_negative_return_line(http: httpx.Client) -> None:
    body = invoice({"code": "SUP-001"})
    body["lines"][1] = {
        "description": "Retour café",
        "quantity": "-1",
        "unit_price": "4.10",
        "net_amount": "-4.10",
        "vat_rate": "20.00",
    }
    body["vat_breakdown"] = [{"rate": "20.00", "base": "8.40", "amount": "1.68"}]
    body["totals"] = {"net": "8.40", "vat": "1.68", "gross": "10.08"}
    response = post(http, "/supplier-invoices", body)
    assert response.status_code == 201, response.text
    assert response.json()["lines"][1]["net_amount"] == "-4.10"


def test_an_invoice_and_a_credit_note_may_share_a_number(http: httpx.Client) -> None:
    seeded_invoice = seeded("supplier_invoices", supplier_code="SUP-001")[0]
    body = invoice(
        {"code": "SUP-001"},
        document_type="credit_note",
        preceding_invoices=[{"number": seeded_invoice["number"]}],
        number=seeded_invoice["number"],
    )
    first = post(http, "/supplier-invoices", body)
    second = post(http, "/supplier-invoices", body)
    assert (first.status_code, second.status_code) == (201, 409)
