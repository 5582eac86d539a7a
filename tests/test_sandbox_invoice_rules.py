"""Supplier invoices in the sandbox, as pure rules: identifiers, EN 16931 arithmetic, lifecycle.

Each arithmetic rule has a test that breaks it alone (the rest of the invoice adds up), and a
test that a difference within the standard's tolerance is accepted.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from edigw.sandbox import invoices
from edigw.sandbox.identifiers import resolve_supplier, siren_problem, siret_problem
from edigw.sandbox.rules import BusinessRuleError


def _invoice(**changes: Any) -> dict[str, Any]:
    """An EN 16931 invoice that adds up: two lines at 20 %, one at 5.5 %, a document
    allowance and a charge, a prepayment."""
    body: dict[str, Any] = {
        "document_type": "invoice",
        "type_code": "380",
        "number": "F-1",
        "issue_date": "2026-11-01",
        "due_date": "2026-12-01",
        "currency": "EUR",
        "lines": [
            {
                "description": "Vis",
                "quantity": "3",
                "unit_price": "0.333",
                "net_amount": "1.00",
                "vat_category": "S",
                "vat_rate": "20.00",
            },
            {
                "description": "Boulons par 100",
                "quantity": "250",
                "unit_price": "12.00",
                "base_quantity": "100",
                "net_amount": "32.00",
                "vat_category": "S",
                "vat_rate": "20.00",
                "allowances": [{"amount": "1.00", "reason": "Remise"}],
                "charges": [{"amount": "3.00", "reason": "Emballage"}],
            },
            {
                "description": "Café",
                "quantity": "2",
                "unit_price": "5.00",
                "net_amount": "10.00",
                "vat_category": "S",
                "vat_rate": "5.50",
            },
        ],
        "allowances": [{"amount": "3.00", "vat_category": "S", "vat_rate": "20.00"}],
        "charges": [{"amount": "5.00", "vat_category": "S", "vat_rate": "5.50"}],
        "vat_breakdown": [
            {"category": "S", "rate": "20.00", "base": "30.00", "amount": "6.00"},
            {"category": "S", "rate": "5.50", "base": "15.00", "amount": "0.83"},
        ],
        "totals": {
            "lines": "43.00",
            "allowances": "3.00",
            "charges": "5.00",
            "net": "45.00",
            "vat": "6.83",
            "gross": "51.83",
            "prepaid": "10.00",
            "rounding": "0.17",
            "payable": "42.00",
        },
    }
    body.update(changes)
    return body


def _rules(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(p.pointer, p.rule) for p in invoices.invoice_problems(body)]


def test_an_invoice_that_adds_up_as_en16931_states_it_has_no_problem() -> None:
    assert _rules(_invoice()) == []


# ---------------------------------------------------------------- the line amount (BT-131)


def test_a_line_net_amount_is_quantity_times_price_per_base_quantity_with_its_charges() -> None:
    body = _invoice()
    body["lines"][1]["net_amount"] = "33.00"  # 250 x 12 / 100 - 1 + 3 = 32
    body["totals"]["lines"], body["totals"]["net"] = "44.00", "46.00"
    body["vat_breakdown"][0]["base"] = "31.00"
    body["totals"].update(gross="53.03", vat="7.03", payable="43.20")
    body["vat_breakdown"][0]["amount"] = "6.20"
    assert _rules(body) == [("/lines/1/net_amount", "EN16931-BT-131")]


def test_a_line_within_the_standards_rounding_tolerance_is_accepted() -> None:
    body = _invoice()
    body["lines"][0]["unit_price"] = "0.3"  # 3 x 0.3 = 0.90, the line says 1.00
    assert _rules(body) == []


def test_a_price_base_quantity_of_zero_is_refused() -> None:
    body = _invoice()
    body["lines"][1]["base_quantity"] = "0"
    assert [p for p, _ in _rules(body)] == ["/lines/1/base_quantity"]


def test_a_returned_item_has_a_negative_quantity_and_amount() -> None:
    body = _invoice()
    body["lines"][2].update(quantity="-2", net_amount="-10.00")
    body["vat_breakdown"][1].update(base="-5.00", amount="-0.28")
    body["totals"].update(lines="23.00", net="25.00", vat="5.72", gross="30.72", payable="20.89")
    assert _rules(body) == []


# ---------------------------------------------------------------- BR-CO-10 .. BR-CO-16


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        pytest.param("lines", "43.01", "BR-CO-10", id="BR-CO-10-lines"),
        pytest.param("allowances", "2.00", "BR-CO-11", id="BR-CO-11-allowances"),
        pytest.param("charges", "6.00", "BR-CO-12", id="BR-CO-12-charges"),
        pytest.param("vat", "6.84", "BR-CO-14", id="BR-CO-14-vat"),
        pytest.param("payable", "42.01", "BR-CO-16", id="BR-CO-16-payable"),
    ],
)
def test_each_document_total_must_be_what_the_standard_computes(
    field: str, value: str, rule: str
) -> None:
    body = _invoice()
    body["totals"][field] = value
    assert (f"/totals/{field}", rule) in _rules(body)


def test_the_net_total_is_lines_minus_allowances_plus_charges() -> None:
    body = _invoice()
    body["totals"]["net"] = "43.00"  # as if allowances and charges were forgotten
    assert ("/totals/net", "BR-CO-13") in _rules(body)


def test_the_gross_total_is_net_plus_vat() -> None:
    body = _invoice()
    body["totals"].update(gross="52.83", payable="43.00")
    assert _rules(body) == [("/totals/gross", "BR-CO-15")]


def test_a_prepaid_amount_is_taken_off_the_amount_due() -> None:
    body = _invoice()
    body["totals"]["payable"] = "52.00"  # the prepayment of 10.00 dropped
    assert _rules(body) == [("/totals/payable", "BR-CO-16")]


def test_document_allowances_without_their_total_are_refused() -> None:
    body = _invoice()
    del body["totals"]["allowances"]
    assert ("/totals/allowances", "BR-CO-11") in _rules(body)


def test_absent_totals_count_as_the_standard_says() -> None:
    body = _invoice(allowances=[], charges=[])
    body["vat_breakdown"] = [
        {"category": "S", "rate": "20.00", "base": "33.00", "amount": "6.60"},
        {"category": "S", "rate": "5.50", "base": "10.00", "amount": "0.55"},
    ]
    body["totals"] = {"net": "43.00", "vat": "7.15", "gross": "50.15"}
    assert _rules(body) == []


# ---------------------------------------------------------------- VAT breakdown


def test_a_vat_amount_within_one_currency_unit_is_accepted_as_br_co_17_allows() -> None:
    body = _invoice()
    body["vat_breakdown"][0]["amount"] = "7.00"  # 20 % of 30.00 is 6.00
    body["totals"].update(vat="7.83", gross="52.83", payable="43.00")
    assert _rules(body) == []


def test_a_vat_amount_off_by_more_than_one_unit_breaks_br_co_17() -> None:
    body = _invoice()
    body["vat_breakdown"][0]["amount"] = "7.01"
    body["totals"].update(vat="7.84", gross="52.84", payable="43.01")
    assert _rules(body) == [("/vat_breakdown/0/amount", "BR-CO-17")]


def test_a_category_base_must_match_its_lines_allowances_and_charges() -> None:
    body = _invoice()
    body["vat_breakdown"][0]["base"] = "33.00"  # the lines alone, without the allowance
    body["vat_breakdown"][0]["amount"] = "6.60"
    body["totals"].update(vat="7.43", gross="52.43", payable="42.60")
    assert _rules(body) == [("/vat_breakdown/0/base", "BR-S-08")]


def test_a_category_used_by_lines_needs_a_breakdown_row() -> None:
    body = _invoice()
    body["lines"].append(
        {
            "description": "Livre",
            "quantity": "1",
            "unit_price": "0",
            "net_amount": "0",
            "vat_category": "E",
            "vat_rate": "0",
        }
    )
    assert _rules(body) == [("/vat_breakdown", "BR-E-01")]


@pytest.mark.parametrize("category", ["Z", "E", "AE", "K", "G", "O"])
def test_categories_without_vat_carry_a_vat_amount_of_zero(category: str) -> None:
    rate = None if category == "O" else "0"
    line: dict[str, Any] = {
        "description": "x",
        "quantity": "1",
        "unit_price": "100",
        "net_amount": "100.00",
        "vat_category": category,
    }
    row: dict[str, Any] = {"category": category, "base": "100.00", "amount": "0.00"}
    if rate is not None:
        line["vat_rate"] = row["rate"] = rate
    body = _invoice(lines=[line], allowances=[], charges=[], vat_breakdown=[row])
    body["totals"] = {"lines": "100.00", "net": "100.00", "vat": "0.00", "gross": "100.00"}
    assert _rules(body) == []
    body["vat_breakdown"][0]["amount"] = "1.00"
    body["totals"].update(vat="1.00", gross="101.00")
    family = invoices.RULE_FAMILY[category]
    assert _rules(body) == [("/vat_breakdown/0/amount", f"{family}-09")]


def test_category_o_has_no_rate() -> None:
    line = {
        "description": "Hors champ",
        "quantity": "1",
        "unit_price": "50",
        "net_amount": "50.00",
        "vat_category": "O",
    }
    body = _invoice(
        lines=[line],
        allowances=[],
        charges=[],
        vat_breakdown=[
            {
                "category": "O",
                "base": "50.00",
                "amount": "0",
                "exemption_reason": "Not subject to VAT",
                "exemption_code": "VATEX-EU-O",
            }
        ],
        totals={"lines": "50.00", "net": "50.00", "gross": "50.00"},
    )
    assert _rules(body) == []
    body["vat_breakdown"][0]["rate"] = "20.00"
    assert ("/vat_breakdown/0/rate", None) in _rules(body)


def test_category_s_needs_its_rate() -> None:
    body = _invoice()
    del body["lines"][0]["vat_rate"]
    assert ("/lines/0/vat_rate", None) in _rules(body)


def test_rows_known_by_rate_only_match_lines_known_by_rate_only() -> None:
    body = _invoice(allowances=[], charges=[])
    for item in (*body["lines"], *body["vat_breakdown"]):
        item.pop("vat_category", None)
        item.pop("category", None)
    body["vat_breakdown"] = [
        {"rate": "20.00", "base": "33.00", "amount": "6.60"},
        {"rate": "5.50", "base": "10.00", "amount": "0.55"},
    ]
    body["totals"] = {"net": "43.00", "vat": "7.15", "gross": "50.15"}
    assert _rules(body) == []


# ---------------------------------------------------------------- EXTENDED, header-only


def test_extended_group_and_information_lines_are_kept_but_not_summed() -> None:
    body = _invoice()
    body["lines"].insert(
        0,
        {
            "id": "G",
            "status_reason": "GROUP",
            "description": "Kit",
            "quantity": "1",
            "unit_price": "43.00",
            "net_amount": "43.00",
            "vat_category": "S",
            "vat_rate": "20.00",
        },
    )
    assert _rules(body) == []


def test_a_header_only_invoice_is_checked_on_its_totals_and_breakdown_alone() -> None:
    body = _invoice(header_only=True, allowances=[], charges=[])
    del body["lines"]
    body["totals"] = {
        "net": "45.00",
        "vat": "6.83",
        "gross": "51.83",
        "prepaid": "0.00",  # a BASIC WL invoice states BT-113: BR-CO-16 holds
        "payable": "51.83",
    }
    assert _rules(body) == []
    body["totals"]["gross"] = "51.84"
    assert [r for _, r in _rules(body)] == ["BR-CO-15", "BR-CO-16"]


def test_a_minimum_invoice_states_its_amount_due_without_a_prepaid_term() -> None:
    body = {
        "document_type": "invoice",
        "issue_date": "2017-11-13",
        "header_only": True,
        "totals": {"net": "624.90", "vat": "46.25", "gross": "671.15", "payable": "470.15"},
    }
    assert _rules(body) == []


# ---------------------------------------------------------------- dates, type codes


def test_payment_terms_stand_in_for_a_due_date() -> None:
    body = _invoice(payment={"terms": "30 jours fin de mois"})
    del body["due_date"]
    assert _rules(body) == []


def test_an_invoice_with_an_amount_due_needs_a_due_date_or_terms() -> None:
    body = _invoice()
    del body["due_date"]
    assert _rules(body) == [("/due_date", "BR-CO-25")]


def test_a_credit_note_needs_no_due_date() -> None:
    body = _invoice(document_type="credit_note", type_code="381")
    del body["due_date"]
    assert _rules(body) == []


def test_a_due_date_before_the_issue_date_is_kept_as_the_supplier_states_it() -> None:
    # a paid invoice issued after its payment (pretix's "paid" samples) is a valid invoice
    assert _rules(_invoice(due_date="2026-10-01")) == []


@pytest.mark.parametrize(
    ("kind", "code"),
    [("invoice", "381"), ("credit_note", "380"), ("credit_note", "389")],
)
def test_the_type_code_must_agree_with_the_document_type(kind: str, code: str) -> None:
    assert ("/type_code", None) in _rules(_invoice(document_type=kind, type_code=code))


@pytest.mark.parametrize("code", ["261", "262", "381", "396", "502", "503"])
def test_the_french_credit_note_codes_are_credit_notes(code: str) -> None:
    assert _rules(_invoice(document_type="credit_note", type_code=code)) == []


# ---------------------------------------------------------------- SIREN, SIRET


@pytest.mark.parametrize("siren", ["123456782", "999999998", "732829320", "356000000"])
def test_a_siren_with_its_luhn_key_is_valid(siren: str) -> None:
    assert siren_problem(siren) is None


@pytest.mark.parametrize(
    ("siren", "why"),
    [("123456789", "check digit"), ("12345678", "9 digits"), ("12345678A", "9 digits")],
)
def test_a_wrong_siren_says_why(siren: str, why: str) -> None:
    problem = siren_problem(siren)
    assert problem is not None and why in problem


def test_a_siret_is_checked_with_luhn() -> None:
    assert siret_problem("73282932000074") is None
    problem = siret_problem("73282932000075")
    assert problem is not None and "check digit" in problem


def test_la_postes_sirets_follow_their_own_rule() -> None:
    assert siret_problem("35600000049837") is None  # digit sum 45; Luhn would refuse it
    problem = siret_problem("35600000049838")
    assert problem is not None and "La Poste" in problem


# ---------------------------------------------------------------- finding the supplier

SUPPLIERS = [
    {
        "code": "S1",
        "siren": "732829320",
        "siret": "73282932000074",
        "vat_number": "FR44732829320",
        "electronic_addresses": [{"scheme": "0225", "id": "732829320"}],
    },
    {
        "code": "S2",
        "siren": "123456782",
        "siret": "12345678200077",
        "vat_number": "FR11123456782",
        "electronic_addresses": [{"scheme": "EM", "id": "factures@s2.example"}],
    },
    {
        "code": "S3",
        "siren": "123456782",
        "siret": "12345678200119",
        "vat_number": "FR11123456782",
        "electronic_addresses": [],
    },
]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param({"code": "S1"}, id="code"),
        pytest.param({"siren": "732829320"}, id="siren"),
        pytest.param({"siret": "73282932000074"}, id="siret"),
        pytest.param({"vat_number": "fr 44 732829320"}, id="vat-written-loosely"),
        pytest.param({"electronic_address": {"scheme": "0225", "id": "732829320"}}, id="address"),
        pytest.param({"name": "Exemple", "siret": "73282932000074"}, id="name-is-not-used"),
    ],
)
def test_the_supplier_is_found_from_any_identifier(given: dict[str, Any]) -> None:
    assert resolve_supplier(given, SUPPLIERS)["code"] == "S1"


def test_an_electronic_address_is_matched_whatever_its_case() -> None:
    given = {"electronic_address": {"scheme": "EM", "id": "Factures@S2.example"}}
    assert resolve_supplier(given, SUPPLIERS)["code"] == "S2"


def test_identifiers_ecolix_does_not_hold_do_not_count_against_the_supplier() -> None:
    given = {"siret": "73282932000157", "vat_number": "FR44732829320"}  # another establishment
    assert resolve_supplier(given, SUPPLIERS)["code"] == "S1"


def test_a_siren_shared_by_two_establishments_needs_the_siret() -> None:
    with pytest.raises(BusinessRuleError) as caught:
        resolve_supplier({"siren": "123456782"}, SUPPLIERS)
    assert [e.pointer for e in caught.value.errors] == ["/supplier"]
    assert "S2, S3" in caught.value.errors[0].message
    chosen = resolve_supplier({"siren": "123456782", "siret": "12345678200119"}, SUPPLIERS)
    assert chosen["code"] == "S3"


def test_identifiers_designating_different_suppliers_are_ambiguous() -> None:
    with pytest.raises(BusinessRuleError) as caught:
        resolve_supplier({"code": "S1", "siret": "12345678200077"}, SUPPLIERS)
    assert [e.pointer for e in caught.value.errors] == ["/supplier"]


def test_an_unknown_seller_is_refused_naming_every_identifier_tried() -> None:
    given = {
        "name": "Inconnu SA",
        "siren": "402123459",
        "vat_number": "FR00402123459",
        "electronic_address": {"scheme": "0225", "id": "402123459"},
    }
    with pytest.raises(BusinessRuleError) as caught:
        resolve_supplier(given, SUPPLIERS)
    problem = caught.value.problem()
    assert problem["status"] == 422
    assert [e["pointer"] for e in problem["errors"]] == [
        "/supplier/siren",
        "/supplier/vat_number",
        "/supplier/electronic_address",
    ]
    for shown in ("Inconnu SA", "SIREN 402123459", "VAT number FR00402123459", "0225:402123459"):
        assert shown in problem["detail"]


def test_an_unknown_supplier_code_is_refused_even_with_a_known_siret() -> None:
    with pytest.raises(BusinessRuleError) as caught:
        resolve_supplier({"code": "NOPE", "siret": "73282932000074"}, SUPPLIERS)
    assert [e.pointer for e in caught.value.errors] == ["/supplier/code"]


def test_a_seller_siret_with_a_wrong_check_digit_is_refused_before_any_search() -> None:
    with pytest.raises(BusinessRuleError) as caught:
        resolve_supplier({"siret": "73282932000075"}, SUPPLIERS)
    assert [e.pointer for e in caught.value.errors] == ["/supplier/siret"]
    assert "check digit" in caught.value.errors[0].message


# ---------------------------------------------------------------- lifecycle, attachment


def _registered() -> dict[str, Any]:
    return {
        "id": "FF-1",
        "supplier_code": "S1",
        "number": "F-1",
        "document_type": "invoice",
        "type_code": "380",
        "issue_date": "2026-11-01",
        "seller": {"siren": "732829320"},
        "buyer": None,
        "status": "registered",
        "status_reason": None,
    }


def test_an_invoice_goes_through_the_lifecycle_to_payment() -> None:
    invoice = _registered()
    for status in ("taken_over", "approved", "payment_transmitted"):
        changed = invoices.change_status(invoice, {"id": "FF-1", "status": status})
        assert changed is not None and changed["status"] == status
        invoice = changed
    with pytest.raises(BusinessRuleError) as caught:
        invoices.change_status(invoice, {"id": "FF-1", "status": "disputed"})
    assert caught.value.status == 409


def test_a_refused_invoice_stays_refused_with_its_reason() -> None:
    reason = {"code": "TX_TVA_ERR", "text": "Taux de TVA erroné"}
    refused = invoices.change_status(
        _registered(), {"id": "FF-1", "status": "refused", "reason": reason}
    )
    assert refused is not None and refused["status_reason"] == reason
    change = invoices.state_change(refused, "registered", reason)
    assert (change["lifecycle_code"], change["lifecycle_label"]) == ("210", "Refusée")
    with pytest.raises(BusinessRuleError):
        invoices.change_status(refused, {"id": "FF-1", "status": "approved"})


def test_setting_the_current_status_again_changes_nothing() -> None:
    assert invoices.change_status(_registered(), {"id": "FF-1", "status": "registered"}) is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("taken_over", "204"),
        ("approved", "205"),
        ("disputed", "207"),
        ("refused", "210"),
        ("payment_transmitted", "211"),
    ],
)
def test_each_status_carries_the_french_lifecycle_code(status: str, code: str) -> None:
    invoice = {**_registered(), "status": status}
    assert invoices.state_change(invoice, "registered", None)["lifecycle_code"] == code


def test_an_attachment_whose_bytes_do_not_match_their_sha256_is_refused() -> None:
    data = b"%PDF-1.7 original"
    body = {
        "id": "FF-1",
        "file_name": "f.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(data).decode(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    stored = invoices.attachment_of(body, attached_at="2026-11-28T00:00:00Z")
    assert (stored["size"], stored["sha256"]) == (len(data), body["sha256"])
    damaged = copy.deepcopy(body)
    damaged["content_base64"] = base64.b64encode(data + b"!").decode()
    with pytest.raises(BusinessRuleError) as caught:
        invoices.attachment_of(damaged, attached_at="2026-11-28T00:00:00Z")
    assert [e.pointer for e in caught.value.errors] == ["/sha256"]
