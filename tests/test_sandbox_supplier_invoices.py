"""Supplier invoices over HTTP against a sandbox on the shipped seed: the seller found from
any identifier, header-only invoices, credit notes and their preceding invoices, lifecycle
statuses with their cursor-paged feed, and the attached original.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxProcess, own_sandbox
from tests.fixtures.sandbox_data import key, seed, unique


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with own_sandbox(tmp_path_factory, "supplier-invoices") as server:
        yield server


@pytest.fixture
def http(ecolix: SandboxProcess) -> Iterator[httpx.Client]:
    with ecolix.client() as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, json=body, headers={"Idempotency-Key": key()})


def supplier(code: str) -> dict[str, Any]:
    return next(s for s in seed()["suppliers"] if s["code"] == code)


def invoice(seller: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A small EN 16931 invoice that adds up (20 % and an exempt line)."""
    body: dict[str, Any] = {
        "supplier": seller,
        "document_type": "invoice",
        "number": unique("F"),
        "issue_date": "2026-11-20",
        "currency": "EUR",
        "payment": {"terms": "30 jours fin de mois"},
        "lines": [
            {
                "description": "Farine T65",
                "quantity": "10",
                "unit": "KGM",
                "unit_price": "1.20",
                "net_amount": "12.00",
                "vat_category": "S",
                "vat_rate": "20.00",
            },
            {
                "description": "Formation",
                "quantity": "1",
                "unit_price": "100",
                "net_amount": "100.00",
                "vat_category": "E",
                "vat_rate": "0",
            },
        ],
        "vat_breakdown": [
            {"category": "S", "rate": "20.00", "base": "12.00", "amount": "2.40"},
            {
                "category": "E",
                "rate": "0",
                "base": "100.00",
                "amount": "0",
                "exemption_reason": "Exonération article 261-4-4° du CGI",
            },
        ],
        "totals": {
            "lines": "112.00",
            "net": "112.00",
            "vat": "2.40",
            "gross": "114.40",
            "payable": "114.40",
        },
    }
    body.update(changes)
    return body


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------- finding the seller

MOULIN = supplier("SUP-010")


@pytest.mark.parametrize(
    "seller",
    [
        pytest.param({"siren": MOULIN["siren"]}, id="siren"),
        pytest.param({"siret": MOULIN["siret"]}, id="siret"),
        pytest.param({"vat_number": MOULIN["vat_number"]}, id="vat"),
        pytest.param({"electronic_address": MOULIN["electronic_addresses"][0]}, id="address"),
        pytest.param(
            {"name": "Au bon moulin", "siren": "999999998", "siret": "99999999800126"},
            id="siren-and-an-unrecorded-siret",
        ),
    ],
)
def test_the_seller_is_found_from_any_identifier_the_invoice_gives(
    http: httpx.Client, seller: dict[str, Any]
) -> None:
    answer = created(post(http, "/supplier-invoices", invoice(seller)))
    assert answer["supplier_code"] == "SUP-010"
    assert answer["seller"] == seller


def test_la_postes_siret_is_accepted_by_its_own_check_rule(http: httpx.Client) -> None:
    answer = created(post(http, "/supplier-invoices", invoice({"siret": "35600000049837"})))
    assert answer["supplier_code"] == "SUP-013"


def test_an_invoice_from_an_unknown_seller_names_every_identifier_tried(
    http: httpx.Client,
) -> None:
    seller = {
        "name": "Boulangerie Inconnue",
        "siren": "402123459",
        "vat_number": "FR40402123459",
        "electronic_address": {"scheme": "0225", "id": "402123459"},
    }
    response = post(http, "/supplier-invoices", invoice(seller))
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Unknown supplier"
    assert problem["detail"] == (
        "no Ecolix supplier has any of the identifiers of this invoice's seller (Boulangerie "
        "Inconnue): SIREN 402123459, VAT number FR40402123459, electronic address "
        "0225:402123459; register the supplier with one of them"
    )


def test_a_seller_siren_with_a_wrong_check_digit_is_refused(http: httpx.Client) -> None:
    response = post(http, "/supplier-invoices", invoice({"siren": "999999999"}))
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/supplier/siren"]


# ---------------------------------------------------------------- what is registered


def test_the_registered_invoice_keeps_every_value_sent(http: httpx.Client) -> None:
    body = invoice(
        {"siret": MOULIN["siret"]},
        buyer_reference="SERVICE-ACHATS",
        order_reference="PO-2026-0002",
        allowances=[
            {"amount": "2.00", "vat_category": "S", "vat_rate": "20.00", "reason": "Remise"}
        ],
    )
    body["vat_breakdown"][0].update(base="10.00", amount="2.00")
    body["totals"] = {
        "lines": "112.00",
        "allowances": "2.00",
        "net": "110.00",
        "vat": "2.00",
        "gross": "112.00",
        "prepaid": "12.00",
        "payable": "100.00",
    }
    answer = created(post(http, "/supplier-invoices", body))
    for name in ("lines", "allowances", "vat_breakdown", "payment", "buyer_reference"):
        assert answer[name] == body[name]
    assert answer["totals"] == {
        "lines": "112.00",
        "allowances": "2.00",
        "charges": None,
        "net": "110.00",
        "vat": "2.00",
        "vat_accounting_currency": None,
        "gross": "112.00",
        "prepaid": "12.00",
        "rounding": None,
        "payable": "100.00",
    }
    assert answer["due_date"] is None
    assert (answer["order_reference"], answer["linked_purchase_order"]) == ("PO-2026-0002", None)
    assert (answer["type_code"], answer["header_only"], answer["status"]) == (
        "380",
        False,
        "registered",
    )


def test_an_order_reference_naming_the_suppliers_purchase_order_is_linked(
    http: httpx.Client,
) -> None:
    po = next(p for p in seed()["purchase_orders"] if p["supplier_code"] == "SUP-002")
    answer = created(
        post(http, "/supplier-invoices", invoice({"code": "SUP-002"}, order_reference=po["number"]))
    )
    assert answer["linked_purchase_order"] == po["number"]


def test_a_header_only_invoice_is_registered_visibly_flagged(http: httpx.Client) -> None:
    body = invoice({"siren": MOULIN["siren"]}, header_only=True)
    del body["lines"], body["vat_breakdown"]
    body["totals"] = {"net": "624.90", "vat": "46.25", "gross": "671.15", "payable": "470.15"}
    answer = created(post(http, "/supplier-invoices", body))
    assert (answer["header_only"], answer["lines"], answer["vat_breakdown"]) == (True, [], [])


def test_an_invoice_without_lines_that_does_not_say_so_is_refused(http: httpx.Client) -> None:
    body = invoice({"siren": MOULIN["siren"]})
    del body["lines"]
    response = post(http, "/supplier-invoices", body)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/lines"]


def test_category_o_is_registered_without_a_rate(http: httpx.Client) -> None:
    line = {
        "description": "Débours",
        "quantity": "1",
        "unit_price": "35.00",
        "net_amount": "35.00",
        "vat_category": "O",
    }
    row = {"category": "O", "base": "35.00", "amount": "0.00", "exemption_code": "VATEX-EU-O"}
    body = invoice(
        {"siren": MOULIN["siren"]},
        lines=[line],
        vat_breakdown=[row],
        totals={"lines": "35.00", "net": "35.00", "gross": "35.00", "payable": "35.00"},
    )
    answer = created(post(http, "/supplier-invoices", body))
    assert answer["vat_breakdown"] == [row]
    assert answer["totals"]["vat"] is None


def test_an_arithmetic_refusal_names_the_rule(http: httpx.Client) -> None:
    body = invoice({"siren": MOULIN["siren"]})
    body["totals"]["gross"] = "114.41"
    response = post(http, "/supplier-invoices", body)
    assert response.status_code == 422
    (error, payable) = response.json()["errors"]
    assert (error["pointer"], error["rule"]) == ("/totals/gross", "BR-CO-15")
    assert error["message"].startswith("BR-CO-15: 114.41 is not net 112.00 + VAT 2.40")
    assert payable["rule"] == "BR-CO-16"


# ---------------------------------------------------------------- credit notes


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_credit_note_credits_none_one_or_several_invoices(http: httpx.Client, count: int) -> None:
    numbers = [
        created(post(http, "/supplier-invoices", invoice({"code": "SUP-010"})))["number"]
        for _ in range(count)
    ]
    refs = [{"number": n, "issue_date": "2026-11-20"} for n in numbers]
    body = invoice(
        {"code": "SUP-010"}, document_type="credit_note", type_code="381", preceding_invoices=refs
    )
    del body["payment"]
    answer = created(post(http, "/supplier-invoices", body))
    assert [p["number"] for p in answer["preceding_invoices"]] == numbers
    assert all(p["registered_id"] for p in answer["preceding_invoices"])
    assert answer["document_type"] == "credit_note"


def test_a_credit_note_type_code_on_an_invoice_is_refused(http: httpx.Client) -> None:
    response = post(http, "/supplier-invoices", invoice({"code": "SUP-010"}, type_code="381"))
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/type_code"]


# ---------------------------------------------------------------- lifecycle and its feed


def set_status(http: httpx.Client, invoice_id: str, status: str, **extra: Any) -> httpx.Response:
    return post(
        http,
        f"/supplier-invoices/{invoice_id}/status",
        {"id": invoice_id, "status": status, **extra},
    )


def feed(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = http.get("/supplier-invoice-states", params=query).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_each_status_change_is_an_item_of_the_feed_paged_by_cursor(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-011"})))
    for status in ("taken_over", "approved", "payment_transmitted"):
        assert set_status(http, entry["id"], status).status_code == 200
    mine = [c for c in feed(http, supplier="SUP-011", limit=1) if c["invoice_id"] == entry["id"]]
    assert [(c["previous_status"], c["status"], c["lifecycle_code"]) for c in mine] == [
        (None, "registered", None),
        ("registered", "taken_over", "204"),
        ("taken_over", "approved", "205"),
        ("approved", "payment_transmitted", "211"),
    ]
    assert mine[-1]["lifecycle_label"] == "Paiement transmis"
    assert mine[-1]["seller"] == {k: v for k, v in entry["seller"].items()}
    assert mine[-1]["number"] == entry["number"]


def test_the_feed_gives_only_the_changes_into_one_status(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-011"})))
    assert set_status(http, entry["id"], "approved").status_code == 200
    mine = [c for c in feed(http, status="approved") if c["invoice_id"] == entry["id"]]
    assert [(c["status"], c["lifecycle_code"]) for c in mine] == [("approved", "205")]
    assert {c["status"] for c in feed(http, status="approved")} == {"approved"}


def test_an_invoice_is_refused_with_its_reason_for_the_platform(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-012"})))
    reason = {"code": "TX_TVA_ERR", "text": "Taux de TVA erroné sur la ligne 2"}
    answer = set_status(http, entry["id"], "refused", reason=reason)
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["status_reason"]) == ("refused", reason)
    (last,) = [c for c in feed(http, supplier="SUP-012") if c["invoice_id"] == entry["id"]][-1:]
    assert (last["lifecycle_code"], last["lifecycle_label"], last["reason"]) == (
        "210",
        "Refusée",
        reason,
    )


def test_a_refusal_without_a_reason_is_refused(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-012"})))
    response = set_status(http, entry["id"], "refused")
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/reason"]


def test_a_move_the_lifecycle_does_not_allow_is_an_invalid_state(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-012"})))
    reason = {"text": "Doublon"}
    assert set_status(http, entry["id"], "refused", reason=reason).status_code == 200
    again = set_status(http, entry["id"], "approved")
    assert again.status_code == 409
    assert again.json()["type"].endswith("/invalid-state")


def test_setting_the_same_status_twice_adds_no_feed_item(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-012"})))
    set_status(http, entry["id"], "taken_over")
    set_status(http, entry["id"], "taken_over")
    mine = [c for c in feed(http, supplier="SUP-012") if c["invoice_id"] == entry["id"]]
    assert [c["status"] for c in mine] == ["registered", "taken_over"]


def test_the_status_of_an_unknown_invoice_is_404(http: httpx.Client) -> None:
    assert set_status(http, "FF-999999", "approved").status_code == 404


def test_invoices_are_listed_by_status(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-009"})))
    set_status(http, entry["id"], "disputed", reason={"text": "Quantité livrée: 8"})
    listed = http.get("/supplier-invoices", params={"status": "disputed", "limit": 1000}).json()
    assert entry["id"] in [i["id"] for i in listed["items"]]


# ---------------------------------------------------------------- the attached original


def attach(http: httpx.Client, invoice_id: str, data: bytes, name: str = "f.pdf") -> httpx.Response:
    body = {
        "id": invoice_id,
        "file_name": name,
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(data).decode(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return http.put(
        f"/supplier-invoices/{invoice_id}/attachment", json=body, headers={"Idempotency-Key": key()}
    )


def test_the_original_file_is_attached_and_read_back_byte_for_byte(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-010"})))
    data = b"%PDF-1.7\n" + bytes(range(256)) * 40
    answer = attach(http, entry["id"], data, "FA-2017-0010.pdf")
    assert answer.status_code == 200
    assert (answer.json()["size"], answer.json()["sha256"]) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    stored = http.get(f"/supplier-invoices/{entry['id']}/attachment").json()
    assert base64.b64decode(stored["content_base64"]) == data
    assert stored["file_name"] == "FA-2017-0010.pdf"
    shown = http.get(f"/supplier-invoices/{entry['id']}").json()["attachment"]
    assert shown == answer.json()


def test_attaching_the_same_file_again_changes_nothing(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-010"})))
    first = attach(http, entry["id"], b"%PDF same").json()
    second = attach(http, entry["id"], b"%PDF same").json()
    assert first == second


def test_an_attachment_damaged_in_transit_is_refused(http: httpx.Client) -> None:
    entry = created(post(http, "/supplier-invoices", invoice({"code": "SUP-010"})))
    body = {
        "id": entry["id"],
        "file_name": "f.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(b"%PDF one").decode(),
        "sha256": hashlib.sha256(b"%PDF two").hexdigest(),
    }
    response = http.put(
        f"/supplier-invoices/{entry['id']}/attachment",
        json=body,
        headers={"Idempotency-Key": key()},
    )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/sha256"]
    assert http.get(f"/supplier-invoices/{entry['id']}/attachment").status_code == 404


def test_an_attachment_for_an_unknown_invoice_is_404(http: httpx.Client) -> None:
    assert attach(http, "FF-999999", b"%PDF").status_code == 404
