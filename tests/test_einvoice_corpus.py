"""Every file of samples/einvoices: the reader's values equal the document's own.

The document's values are read here independently, with a few plain XPaths per syntax (not
the product's term table), and compared with Decimal / date equality. Files that are no
invoice must fail with the reason named in NOT_INVOICES, located in the file.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pypdf import PdfReader

from edigw.einvoice.reader import EinvoiceReader
from edigw.errors import NotAnInvoiceError

CORPUS = Path(__file__).resolve().parent.parent / "samples" / "einvoices"

# File (relative to the corpus) -> the `found` key its detection must give.
NOT_INVOICES = {
    "not-invoices/UBL-Order-2.1-Example.xml": "ubl-order",
    "not-invoices/UBL-OrderResponse-2.1-Example.xml": "ubl-orderresponse",
    "not-invoices/ZUGFeRD_1p0_COMFORT_Rabatte.pdf": "zugferd-1",
    "not-invoices/zugferd-basic.xml": "zugferd-1",
    "not-invoices/order-x-basic.xml": "order-x",
    "not-invoices/order-x-comfort.xml": "order-x",
    "not-invoices/dati_trasporto.xml": "fatturapa",
    "not-invoices/misnamed.pdf": "pdf-without-invoice",
    "not-invoices/no-xml.pdf": "pdf-without-invoice",
    "not-invoices/tryton-invoice.pdf": "pdf-without-invoice",
    "not-invoices/unknown_invoice.pdf": "pdf-without-invoice",
    "ours/cdar-refused-210.xml": "cdar",
    "ours/not-an-invoice.html": "html",
}


def _corpus() -> list[str]:
    return sorted(
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "README.md"
    )


FILES = _corpus()
INVOICES = [f for f in FILES if f not in NOT_INVOICES]

# -- the document's own values, read without the product's table ------------------------

UBL = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
UBL_TOTALS = {
    "totals.lines": "LineExtensionAmount",
    "totals.allowances": "AllowanceTotalAmount",
    "totals.charges": "ChargeTotalAmount",
    "totals.net": "TaxExclusiveAmount",
    "totals.gross": "TaxInclusiveAmount",
    "totals.prepaid": "PrepaidAmount",
    "totals.rounding": "PayableRoundingAmount",
    "totals.payable": "PayableAmount",
}
CII_TOTALS = {
    "totals.lines": "LineTotalAmount",
    "totals.allowances": "AllowanceTotalAmount",
    "totals.charges": "ChargeTotalAmount",
    "totals.net": "TaxBasisTotalAmount",
    "totals.gross": "GrandTotalAmount",
    "totals.prepaid": "TotalPrepaidAmount",
    "totals.rounding": "RoundingAmount",
    "totals.payable": "DuePayableAmount",
}


def _xml_of(path: Path) -> bytes:
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        attachments = PdfReader(path).attachments
        return attachments["factur-x.xml"][0]
    return data


def _one(root: Any, path: str, ns: dict[str, str]) -> str | None:
    found = root.xpath(path, namespaces=ns)
    text = "".join(found[0].itertext()).strip() if found else ""
    return text or None


def document_values(path: Path) -> dict[str, Any]:
    """number, issue date, currency, type code and totals as the document states them."""
    root = etree.fromstring(_xml_of(path))
    values: dict[str, Any] = {}
    if "ubl" in (etree.QName(root).namespace or ""):
        values["number"] = _one(root, "cbc:ID", UBL)
        issued = _one(root, "cbc:IssueDate", UBL)
        values["issue_date"] = date.fromisoformat(issued) if issued else None
        currency = _one(root, "cbc:DocumentCurrencyCode", UBL)
        values["currency"] = currency
        values["type_code"] = _one(root, "cbc:InvoiceTypeCode", UBL) or _one(
            root, "cbc:CreditNoteTypeCode", UBL
        )
        for alias, name in UBL_TOTALS.items():
            values[alias] = _one(root, f"cac:LegalMonetaryTotal/cbc:{name}", UBL)
        tax_currency = _one(root, "cbc:TaxCurrencyCode", UBL)
        for amount in root.xpath("cac:TaxTotal/cbc:TaxAmount", namespaces=UBL):
            if amount.get("currencyID") in (currency, None):
                values.setdefault("totals.vat", amount.text.strip())
            elif amount.get("currencyID") == tax_currency:
                values["totals.vat_accounting_currency"] = amount.text.strip()
    else:
        values["number"] = _one(root, "rsm:ExchangedDocument/ram:ID", CII)
        issued = _one(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", CII)
        values["issue_date"] = datetime.strptime(issued, "%Y%m%d").date() if issued else None
        settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        currency = _one(root, settlement + "ram:InvoiceCurrencyCode", CII)
        values["currency"] = currency
        values["type_code"] = _one(root, "rsm:ExchangedDocument/ram:TypeCode", CII)
        summation = settlement + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
        for alias, name in CII_TOTALS.items():
            values[alias] = _one(root, summation + f"ram:{name}", CII)
        tax_currency = _one(root, settlement + "ram:TaxCurrencyCode", CII)
        for amount in root.xpath(summation + "ram:TaxTotalAmount", namespaces=CII):
            if amount.get("currencyID") in (currency, None):
                values.setdefault("totals.vat", amount.text.strip())
            elif amount.get("currencyID") == tax_currency:
                values["totals.vat_accounting_currency"] = amount.text.strip()
    values.setdefault("totals.vat", None)
    values.setdefault("totals.vat_accounting_currency", None)
    return values


AMOUNTS = [*UBL_TOTALS, "totals.vat", "totals.vat_accounting_currency"]


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@pytest.mark.parametrize("name", INVOICES)
def test_the_reader_gives_the_documents_own_values(name: str) -> None:
    path = CORPUS / name
    record = next(EinvoiceReader().records(path, source_name=path.name))
    expected = document_values(path)

    issued = record.value("issue_date")
    actual = {
        "number": record.value("number"),
        "issue_date": date.fromisoformat(issued) if issued else None,
        "currency": record.value("currency"),
        "type_code": record.value("type_code"),
        **{alias: _decimal(record.value(alias)) for alias in AMOUNTS},
    }
    expected.update({alias: _decimal(expected[alias]) for alias in AMOUNTS})
    assert actual == expected


def test_the_corpus_holds_forty_real_invoices_or_more() -> None:
    real = [f for f in INVOICES if not f.startswith("ours/")]
    assert len(real) >= 40
    assert {Path(f).suffix.lower() for f in real} >= {".xml", ".pdf"}


@pytest.mark.parametrize("name", sorted(NOT_INVOICES))
def test_a_file_that_is_no_invoice_fails_with_what_it_is(name: str) -> None:
    path = CORPUS / name
    with pytest.raises(NotAnInvoiceError) as caught:
        next(EinvoiceReader().records(path, source_name=path.name))
    assert caught.value.found == NOT_INVOICES[name]
    location = caught.value.location
    assert location is not None
    assert location.file == path.name


def test_every_corpus_file_is_listed_in_the_readme_with_its_sha256() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.MULTILINE))
    actual = {f: hashlib.sha256((CORPUS / f).read_bytes()).hexdigest() for f in FILES}
    assert listed == actual
