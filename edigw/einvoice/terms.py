"""The EN 16931 semantic model as data: each business term, its alias, and where it sits.

Every row says, for one business term (BT) of EN 16931-1, its readable alias, its name, its
kind (how its text is normalised: dates, amounts, ...), the repeating group it belongs to
(``None``: the invoice itself), and one XPath per syntax, relative to the element of its
group: the root element for invoice-level terms, the ``cac:InvoiceLine`` or
``ram:IncludedSupplyChainTradeLineItem`` for line terms, and so on. ``None`` means the
syntax has no place for the term. UBL Invoice and CreditNote share one column: their few
differing names are written as unions (``cbc:InvoicedQuantity|cbc:CreditedQuantity``).

Repeating groups (BG) are rows of ``GROUPS``: a record's ``children("BG-25")`` (or
``children("lines")``) gives one record per line. Groups that occur once (the seller BG-4,
the totals BG-22, ...) are not records: their terms are addressed from the invoice with a
dotted alias (``seller.vat_id``, ``totals.payable``).

A term whose ``attribute_of`` is set reads an attribute (``schemeID``, ``currencyID``,
``unitCode``) of the node that gave another term: BT-29-1 is the scheme of the very BT-29
that was read, never of another identifier.

Terms marked ``DERIVED`` are computed by the reader (``edigw.einvoice.reader``) from other
terms: the SIREN/SIRET of the French reform, the document kind, the profile. Rows without a
BT id are Factur-X EXTENDED additions (sub-lines), addressed by alias only.

This table is for the product. Tests read the documents through their own, smaller table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

NAMESPACES = MappingProxyType(
    {
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
        "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
        "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
        "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    }
)


class Kind(StrEnum):
    TEXT = "text"
    CODE = "code"
    IDENTIFIER = "identifier"
    DATE = "date"  # CII's format 102 (YYYYMMDD) is given as ISO YYYY-MM-DD, like UBL's
    AMOUNT = "amount"
    QUANTITY = "quantity"
    PERCENT = "percent"
    DERIVED = "derived"


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    alias: str
    name: str
    parent: str | None  # the group whose element the XPaths are relative to
    ubl: str
    cii: str


@dataclass(frozen=True, slots=True)
class Term:
    id: str | None
    alias: str
    name: str
    kind: Kind
    group: str | None
    ubl: str | None
    cii: str | None
    attribute_of: tuple[str, str] | None = None  # (term alias, attribute name)

    @property
    def label(self) -> str:
        """How locations name it: ``BT-115 totals.payable``."""
        return f"{self.id} {self.alias}" if self.id else self.alias


# CII paths from the root (rsm:CrossIndustryInvoice).
_TX = "rsm:SupplyChainTradeTransaction/"
_AG = _TX + "ram:ApplicableHeaderTradeAgreement/"
_DL = _TX + "ram:ApplicableHeaderTradeDelivery/"
_ST = _TX + "ram:ApplicableHeaderTradeSettlement/"
_SUM = _ST + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
_SELLER = _AG + "ram:SellerTradeParty/"
_BUYER = _AG + "ram:BuyerTradeParty/"
_PM = _ST + "ram:SpecifiedTradeSettlementPaymentMeans/"
_TERMS = _ST + "ram:SpecifiedTradePaymentTerms/"
_DATE = "udt:DateTimeString"
# UBL paths from the root (Invoice or CreditNote).
_SUP = "cac:AccountingSupplierParty/cac:Party/"
_CUS = "cac:AccountingCustomerParty/cac:Party/"
_LMT = "cac:LegalMonetaryTotal/"
_VAT = "[cac:TaxScheme/cbc:ID='VAT']"
_FALSE = "normalize-space({})='false'"
_TRUE = "normalize-space({})='true'"

# fmt: off
GROUPS: tuple[Group, ...] = (
    Group("BG-1", "notes", "INVOICE NOTE", None, "cbc:Note", "rsm:ExchangedDocument/ram:IncludedNote"),
    Group(
        "BG-3",
        "preceding_invoices",
        "PRECEDING INVOICE REFERENCE",
        None,
        "cac:BillingReference/cac:InvoiceDocumentReference",
        _ST + "ram:InvoiceReferencedDocument",
    ),
    Group(
        "BG-17",
        "payment.credit_transfers",
        "CREDIT TRANSFER",
        None,
        "cac:PaymentMeans/cac:PayeeFinancialAccount",
        _PM + "ram:PayeePartyCreditorFinancialAccount",
    ),
    Group(
        "BG-20",
        "allowances",
        "DOCUMENT LEVEL ALLOWANCES",
        None,
        "cac:AllowanceCharge[" + _FALSE.format("cbc:ChargeIndicator") + "]",
        _ST + "ram:SpecifiedTradeAllowanceCharge[" + _FALSE.format("ram:ChargeIndicator/udt:Indicator") + "]",
    ),
    Group(
        "BG-21",
        "charges",
        "DOCUMENT LEVEL CHARGES",
        None,
        "cac:AllowanceCharge[" + _TRUE.format("cbc:ChargeIndicator") + "]",
        # EXTENDED's logistics service charges (freight...) count in BT-108 too
        _ST + "ram:SpecifiedTradeAllowanceCharge[" + _TRUE.format("ram:ChargeIndicator/udt:Indicator") + "]"
        "|" + _ST + "ram:SpecifiedLogisticsServiceCharge",
    ),
    Group(
        "BG-23",
        "vat_breakdown",
        "VAT BREAKDOWN",
        None,
        "cac:TaxTotal/cac:TaxSubtotal",
        _ST + "ram:ApplicableTradeTax",
    ),
    Group(
        "BG-25",
        "lines",
        "INVOICE LINE",
        None,
        "cac:InvoiceLine|cac:CreditNoteLine",
        _TX + "ram:IncludedSupplyChainTradeLineItem",
    ),
    Group(
        "BG-27",
        "line.allowances",
        "INVOICE LINE ALLOWANCES",
        "BG-25",
        "cac:AllowanceCharge[" + _FALSE.format("cbc:ChargeIndicator") + "]",
        "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge["
        + _FALSE.format("ram:ChargeIndicator/udt:Indicator")
        + "]",
    ),
    Group(
        "BG-28",
        "line.charges",
        "INVOICE LINE CHARGES",
        "BG-25",
        "cac:AllowanceCharge[" + _TRUE.format("cbc:ChargeIndicator") + "]",
        "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge["
        + _TRUE.format("ram:ChargeIndicator/udt:Indicator")
        + "]",
    ),
)

T, K = Term, Kind
_INV: None = None

TERMS: tuple[Term, ...] = (
    # -- the invoice (BG-0) ------------------------------------------------------------
    T("BT-1", "number", "Invoice number", K.IDENTIFIER, _INV, "cbc:ID", "rsm:ExchangedDocument/ram:ID"),
    T("BT-2", "issue_date", "Invoice issue date", K.DATE, _INV, "cbc:IssueDate", "rsm:ExchangedDocument/ram:IssueDateTime/" + _DATE),
    T("BT-3", "type_code", "Invoice type code", K.CODE, _INV, "cbc:InvoiceTypeCode|cbc:CreditNoteTypeCode", "rsm:ExchangedDocument/ram:TypeCode"),
    T("BT-5", "currency", "Invoice currency code", K.CODE, _INV, "cbc:DocumentCurrencyCode", _ST + "ram:InvoiceCurrencyCode"),
    T("BT-6", "vat_accounting_currency", "VAT accounting currency code", K.CODE, _INV, "cbc:TaxCurrencyCode", _ST + "ram:TaxCurrencyCode"),
    T("BT-7", "vat_point_date", "Value added tax point date", K.DATE, _INV, "cbc:TaxPointDate", _ST + "ram:ApplicableTradeTax/ram:TaxPointDate/udt:DateString"),
    T("BT-8", "vat_point_date_code", "Value added tax point date code", K.CODE, _INV, "cac:InvoicePeriod/cbc:DescriptionCode", _ST + "ram:ApplicableTradeTax/ram:DueDateTypeCode"),
    T("BT-9", "due_date", "Payment due date", K.DATE, _INV, "cbc:DueDate|cac:PaymentMeans/cbc:PaymentDueDate", _TERMS + "ram:DueDateDateTime/" + _DATE),
    T("BT-10", "buyer_reference", "Buyer reference", K.TEXT, _INV, "cbc:BuyerReference", _AG + "ram:BuyerReference"),
    T("BT-11", "project_reference", "Project reference", K.IDENTIFIER, _INV, "cac:ProjectReference/cbc:ID", _AG + "ram:SpecifiedProcuringProject/ram:ID"),
    T("BT-12", "contract_reference", "Contract reference", K.IDENTIFIER, _INV, "cac:ContractDocumentReference/cbc:ID", _AG + "ram:ContractReferencedDocument/ram:IssuerAssignedID"),
    T("BT-13", "order_reference", "Purchase order reference", K.IDENTIFIER, _INV, "cac:OrderReference/cbc:ID", _AG + "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID"),
    T("BT-14", "sales_order_reference", "Sales order reference", K.IDENTIFIER, _INV, "cac:OrderReference/cbc:SalesOrderID", _AG + "ram:SellerOrderReferencedDocument/ram:IssuerAssignedID"),
    T("BT-15", "receiving_advice_reference", "Receiving advice reference", K.IDENTIFIER, _INV, "cac:ReceiptDocumentReference/cbc:ID", _DL + "ram:ReceivingAdviceReferencedDocument/ram:IssuerAssignedID"),
    T("BT-16", "despatch_advice_reference", "Despatch advice reference", K.IDENTIFIER, _INV, "cac:DespatchDocumentReference/cbc:ID", _DL + "ram:DespatchAdviceReferencedDocument/ram:IssuerAssignedID"),
    T("BT-17", "tender_reference", "Tender or lot reference", K.IDENTIFIER, _INV, "cac:OriginatorDocumentReference/cbc:ID", _AG + "ram:AdditionalReferencedDocument[ram:TypeCode='50']/ram:IssuerAssignedID"),
    T("BT-19", "buyer_accounting_reference", "Buyer accounting reference", K.TEXT, _INV, "cbc:AccountingCost", _ST + "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID"),
    T("BT-20", "payment.terms", "Payment terms", K.TEXT, _INV, "cac:PaymentTerms/cbc:Note", _TERMS + "ram:Description"),
    T("BT-23", "process", "Business process type", K.TEXT, _INV, "cbc:ProfileID", "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"),
    T("BT-24", "specification", "Specification identifier", K.IDENTIFIER, _INV, "cbc:CustomizationID", "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"),
    T(None, "profile", "Profile named by BT-24 (MINIMUM ... EXTENDED-CTC-FR, XRechnung, PEPPOL BIS)", K.DERIVED, _INV, None, None),
    T(None, "syntax", "Syntax (UBL 2.1 Invoice, UBL 2.1 CreditNote, UN/CEFACT CII)", K.DERIVED, _INV, None, None),
    T(None, "document_kind", "invoice or credit_note, from BT-3", K.DERIVED, _INV, None, None),
    # -- BG-1 invoice note -------------------------------------------------------------
    T("BT-21", "note.subject", "Invoice note subject code", K.CODE, "BG-1", None, "ram:SubjectCode"),
    T("BT-22", "note.text", "Invoice note", K.TEXT, "BG-1", ".", "ram:Content"),
    # -- BG-3 preceding invoice reference ----------------------------------------------
    T("BT-25", "preceding_invoice.number", "Preceding Invoice reference", K.IDENTIFIER, "BG-3", "cbc:ID", "ram:IssuerAssignedID"),
    T("BT-26", "preceding_invoice.issue_date", "Preceding Invoice issue date", K.DATE, "BG-3", "cbc:IssueDate", "ram:FormattedIssueDateTime/qdt:DateTimeString"),
    # -- BG-4 seller -------------------------------------------------------------------
    T("BT-27", "seller.name", "Seller name", K.TEXT, _INV, _SUP + "cac:PartyLegalEntity/cbc:RegistrationName", _SELLER + "ram:Name"),
    T("BT-28", "seller.trading_name", "Seller trading name", K.TEXT, _INV, _SUP + "cac:PartyName/cbc:Name", _SELLER + "ram:SpecifiedLegalOrganization/ram:TradingBusinessName"),
    T("BT-29", "seller.id", "Seller identifier", K.IDENTIFIER, _INV, _SUP + "cac:PartyIdentification/cbc:ID[not(@schemeID='SEPA')]", _SELLER + "ram:ID|" + _SELLER + "ram:GlobalID"),
    T("BT-29-1", "seller.id_scheme", "Seller identifier scheme", K.CODE, _INV, None, None, ("seller.id", "schemeID")),
    T("BT-30", "seller.legal_id", "Seller legal registration identifier", K.IDENTIFIER, _INV, _SUP + "cac:PartyLegalEntity/cbc:CompanyID", _SELLER + "ram:SpecifiedLegalOrganization/ram:ID"),
    T("BT-30-1", "seller.legal_id_scheme", "Seller legal registration identifier scheme", K.CODE, _INV, None, None, ("seller.legal_id", "schemeID")),
    T("BT-31", "seller.vat_id", "Seller VAT identifier", K.IDENTIFIER, _INV, _SUP + "cac:PartyTaxScheme" + _VAT + "/cbc:CompanyID", _SELLER + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
    T("BT-32", "seller.tax_id", "Seller tax registration identifier", K.IDENTIFIER, _INV, _SUP + "cac:PartyTaxScheme[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID", _SELLER + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']"),
    T("BT-34", "seller.electronic_address", "Seller electronic address", K.IDENTIFIER, _INV, _SUP + "cbc:EndpointID", _SELLER + "ram:URIUniversalCommunication/ram:URIID"),
    T("BT-34-1", "seller.electronic_address_scheme", "Seller electronic address scheme", K.CODE, _INV, None, None, ("seller.electronic_address", "schemeID")),
    T(None, "seller.siren", "Seller SIREN (from BT-30, BT-29, BT-34 or a French VAT number)", K.DERIVED, _INV, None, None),
    T(None, "seller.siret", "Seller SIRET (from BT-29, BT-30 or BT-34 with scheme 0009)", K.DERIVED, _INV, None, None),
    T("BT-35", "seller.address.line1", "Seller address line 1", K.TEXT, _INV, _SUP + "cac:PostalAddress/cbc:StreetName", _SELLER + "ram:PostalTradeAddress/ram:LineOne"),
    T("BT-37", "seller.address.city", "Seller city", K.TEXT, _INV, _SUP + "cac:PostalAddress/cbc:CityName", _SELLER + "ram:PostalTradeAddress/ram:CityName"),
    T("BT-38", "seller.address.postcode", "Seller post code", K.TEXT, _INV, _SUP + "cac:PostalAddress/cbc:PostalZone", _SELLER + "ram:PostalTradeAddress/ram:PostcodeCode"),
    T("BT-40", "seller.address.country", "Seller country code", K.CODE, _INV, _SUP + "cac:PostalAddress/cac:Country/cbc:IdentificationCode", _SELLER + "ram:PostalTradeAddress/ram:CountryID"),
    T("BT-41", "seller.contact.name", "Seller contact point", K.TEXT, _INV, _SUP + "cac:Contact/cbc:Name", _SELLER + "ram:DefinedTradeContact/ram:PersonName"),
    T("BT-43", "seller.contact.email", "Seller contact email address", K.TEXT, _INV, _SUP + "cac:Contact/cbc:ElectronicMail", _SELLER + "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID"),
    # -- BG-7 buyer --------------------------------------------------------------------
    T("BT-44", "buyer.name", "Buyer name", K.TEXT, _INV, _CUS + "cac:PartyLegalEntity/cbc:RegistrationName", _BUYER + "ram:Name"),
    T("BT-45", "buyer.trading_name", "Buyer trading name", K.TEXT, _INV, _CUS + "cac:PartyName/cbc:Name", _BUYER + "ram:SpecifiedLegalOrganization/ram:TradingBusinessName"),
    T("BT-46", "buyer.id", "Buyer identifier", K.IDENTIFIER, _INV, _CUS + "cac:PartyIdentification/cbc:ID", _BUYER + "ram:ID|" + _BUYER + "ram:GlobalID"),
    T("BT-46-1", "buyer.id_scheme", "Buyer identifier scheme", K.CODE, _INV, None, None, ("buyer.id", "schemeID")),
    T("BT-47", "buyer.legal_id", "Buyer legal registration identifier", K.IDENTIFIER, _INV, _CUS + "cac:PartyLegalEntity/cbc:CompanyID", _BUYER + "ram:SpecifiedLegalOrganization/ram:ID"),
    T("BT-47-1", "buyer.legal_id_scheme", "Buyer legal registration identifier scheme", K.CODE, _INV, None, None, ("buyer.legal_id", "schemeID")),
    T("BT-48", "buyer.vat_id", "Buyer VAT identifier", K.IDENTIFIER, _INV, _CUS + "cac:PartyTaxScheme" + _VAT + "/cbc:CompanyID", _BUYER + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
    T("BT-49", "buyer.electronic_address", "Buyer electronic address", K.IDENTIFIER, _INV, _CUS + "cbc:EndpointID", _BUYER + "ram:URIUniversalCommunication/ram:URIID"),
    T("BT-49-1", "buyer.electronic_address_scheme", "Buyer electronic address scheme", K.CODE, _INV, None, None, ("buyer.electronic_address", "schemeID")),
    T(None, "buyer.siren", "Buyer SIREN (from BT-47, BT-46, BT-49 or a French VAT number)", K.DERIVED, _INV, None, None),
    T(None, "buyer.siret", "Buyer SIRET (from BT-46, BT-47 or BT-49 with scheme 0009)", K.DERIVED, _INV, None, None),
    T("BT-50", "buyer.address.line1", "Buyer address line 1", K.TEXT, _INV, _CUS + "cac:PostalAddress/cbc:StreetName", _BUYER + "ram:PostalTradeAddress/ram:LineOne"),
    T("BT-52", "buyer.address.city", "Buyer city", K.TEXT, _INV, _CUS + "cac:PostalAddress/cbc:CityName", _BUYER + "ram:PostalTradeAddress/ram:CityName"),
    T("BT-53", "buyer.address.postcode", "Buyer post code", K.TEXT, _INV, _CUS + "cac:PostalAddress/cbc:PostalZone", _BUYER + "ram:PostalTradeAddress/ram:PostcodeCode"),
    T("BT-55", "buyer.address.country", "Buyer country code", K.CODE, _INV, _CUS + "cac:PostalAddress/cac:Country/cbc:IdentificationCode", _BUYER + "ram:PostalTradeAddress/ram:CountryID"),
    # -- BG-10 payee, BG-11 seller tax representative, BG-13 delivery -----------------
    T("BT-59", "payee.name", "Payee name", K.TEXT, _INV, "cac:PayeeParty/cac:PartyName/cbc:Name", _ST + "ram:PayeeTradeParty/ram:Name"),
    T("BT-60", "payee.id", "Payee identifier", K.IDENTIFIER, _INV, "cac:PayeeParty/cac:PartyIdentification/cbc:ID", _ST + "ram:PayeeTradeParty/ram:ID"),
    T("BT-61", "payee.legal_id", "Payee legal registration identifier", K.IDENTIFIER, _INV, "cac:PayeeParty/cac:PartyLegalEntity/cbc:CompanyID", _ST + "ram:PayeeTradeParty/ram:SpecifiedLegalOrganization/ram:ID"),
    T("BT-62", "tax_representative.name", "Seller tax representative name", K.TEXT, _INV, "cac:TaxRepresentativeParty/cac:PartyName/cbc:Name", _AG + "ram:SellerTaxRepresentativeTradeParty/ram:Name"),
    T("BT-63", "tax_representative.vat_id", "Seller tax representative VAT identifier", K.IDENTIFIER, _INV, "cac:TaxRepresentativeParty/cac:PartyTaxScheme" + _VAT + "/cbc:CompanyID", _AG + "ram:SellerTaxRepresentativeTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
    T("BT-70", "delivery.name", "Deliver to party name", K.TEXT, _INV, "cac:Delivery/cac:DeliveryParty/cac:PartyName/cbc:Name", _DL + "ram:ShipToTradeParty/ram:Name"),
    T("BT-72", "delivery.date", "Actual delivery date", K.DATE, _INV, "cac:Delivery/cbc:ActualDeliveryDate", _DL + "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/" + _DATE),
    T("BT-80", "delivery.country", "Deliver to country code", K.CODE, _INV, "cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode", _DL + "ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID"),
    # -- BG-14 invoicing period --------------------------------------------------------
    T("BT-73", "period.start", "Invoicing period start date", K.DATE, _INV, "cac:InvoicePeriod/cbc:StartDate", _ST + "ram:BillingSpecifiedPeriod/ram:StartDateTime/" + _DATE),
    T("BT-74", "period.end", "Invoicing period end date", K.DATE, _INV, "cac:InvoicePeriod/cbc:EndDate", _ST + "ram:BillingSpecifiedPeriod/ram:EndDateTime/" + _DATE),
    # -- BG-16 payment instructions (the first payment means) -------------------------
    T("BT-81", "payment.means_code", "Payment means type code", K.CODE, _INV, "cac:PaymentMeans/cbc:PaymentMeansCode", _PM + "ram:TypeCode"),
    T("BT-82", "payment.means_text", "Payment means text", K.TEXT, _INV, "cac:PaymentMeans/cbc:PaymentMeansCode/@name", _PM + "ram:Information"),
    T("BT-83", "payment.remittance", "Remittance information", K.TEXT, _INV, "cac:PaymentMeans/cbc:PaymentID", _ST + "ram:PaymentReference"),
    T("BT-84", "payment.iban", "Payment account identifier", K.IDENTIFIER, _INV, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", _PM + "ram:PayeePartyCreditorFinancialAccount/ram:IBANID|" + _PM + "ram:PayeePartyCreditorFinancialAccount/ram:ProprietaryID"),
    T("BT-85", "payment.account_name", "Payment account name", K.TEXT, _INV, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:Name", _PM + "ram:PayeePartyCreditorFinancialAccount/ram:AccountName"),
    T("BT-86", "payment.bic", "Payment service provider identifier", K.IDENTIFIER, _INV, "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID", _PM + "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"),
    T("BT-87", "payment.card", "Payment card primary account number", K.IDENTIFIER, _INV, "cac:PaymentMeans/cac:CardAccount/cbc:PrimaryAccountNumberID", _PM + "ram:ApplicableTradeSettlementFinancialCard/ram:ID"),
    T("BT-89", "payment.mandate", "Mandate reference identifier", K.IDENTIFIER, _INV, "cac:PaymentMeans/cac:PaymentMandate/cbc:ID", _TERMS + "ram:DirectDebitMandateID"),
    T("BT-90", "payment.creditor_id", "Bank assigned creditor identifier", K.IDENTIFIER, _INV, _SUP + "cac:PartyIdentification/cbc:ID[@schemeID='SEPA']|cac:PayeeParty/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']", _ST + "ram:CreditorReferenceID"),
    T("BT-91", "payment.debited_account", "Debited account identifier", K.IDENTIFIER, _INV, "cac:PaymentMeans/cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID", _PM + "ram:PayerPartyDebtorFinancialAccount/ram:IBANID"),
    # -- BG-17 credit transfer (each account) ------------------------------------------
    T("BT-84", "credit_transfer.iban", "Payment account identifier", K.IDENTIFIER, "BG-17", "cbc:ID", "ram:IBANID|ram:ProprietaryID"),
    T("BT-85", "credit_transfer.account_name", "Payment account name", K.TEXT, "BG-17", "cbc:Name", "ram:AccountName"),
    T("BT-86", "credit_transfer.bic", "Payment service provider identifier", K.IDENTIFIER, "BG-17", "cac:FinancialInstitutionBranch/cbc:ID", "../ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"),
    # -- BG-20 document level allowances -----------------------------------------------
    T("BT-92", "allowance.amount", "Document level allowance amount", K.AMOUNT, "BG-20", "cbc:Amount", "ram:ActualAmount"),
    T("BT-93", "allowance.base", "Document level allowance base amount", K.AMOUNT, "BG-20", "cbc:BaseAmount", "ram:BasisAmount"),
    T("BT-94", "allowance.percentage", "Document level allowance percentage", K.PERCENT, "BG-20", "cbc:MultiplierFactorNumeric", "ram:CalculationPercent"),
    T("BT-95", "allowance.vat_category", "Document level allowance VAT category code", K.CODE, "BG-20", "cac:TaxCategory/cbc:ID", "ram:CategoryTradeTax/ram:CategoryCode"),
    T("BT-96", "allowance.vat_rate", "Document level allowance VAT rate", K.PERCENT, "BG-20", "cac:TaxCategory/cbc:Percent", "ram:CategoryTradeTax/ram:RateApplicablePercent"),
    T("BT-97", "allowance.reason", "Document level allowance reason", K.TEXT, "BG-20", "cbc:AllowanceChargeReason", "ram:Reason"),
    T("BT-98", "allowance.reason_code", "Document level allowance reason code", K.CODE, "BG-20", "cbc:AllowanceChargeReasonCode", "ram:ReasonCode"),
    # -- BG-21 document level charges --------------------------------------------------
    T("BT-99", "charge.amount", "Document level charge amount", K.AMOUNT, "BG-21", "cbc:Amount", "ram:ActualAmount|ram:AppliedAmount"),
    T("BT-100", "charge.base", "Document level charge base amount", K.AMOUNT, "BG-21", "cbc:BaseAmount", "ram:BasisAmount"),
    T("BT-101", "charge.percentage", "Document level charge percentage", K.PERCENT, "BG-21", "cbc:MultiplierFactorNumeric", "ram:CalculationPercent"),
    T("BT-102", "charge.vat_category", "Document level charge VAT category code", K.CODE, "BG-21", "cac:TaxCategory/cbc:ID", "ram:CategoryTradeTax/ram:CategoryCode|ram:AppliedTradeTax/ram:CategoryCode"),
    T("BT-103", "charge.vat_rate", "Document level charge VAT rate", K.PERCENT, "BG-21", "cac:TaxCategory/cbc:Percent", "ram:CategoryTradeTax/ram:RateApplicablePercent|ram:AppliedTradeTax/ram:RateApplicablePercent"),
    T("BT-104", "charge.reason", "Document level charge reason", K.TEXT, "BG-21", "cbc:AllowanceChargeReason", "ram:Reason|ram:Description"),
    T("BT-105", "charge.reason_code", "Document level charge reason code", K.CODE, "BG-21", "cbc:AllowanceChargeReasonCode", "ram:ReasonCode"),
    # -- BG-22 document totals ---------------------------------------------------------
    T("BT-106", "totals.lines", "Sum of Invoice line net amount", K.AMOUNT, _INV, _LMT + "cbc:LineExtensionAmount", _SUM + "ram:LineTotalAmount"),
    T("BT-107", "totals.allowances", "Sum of allowances on document level", K.AMOUNT, _INV, _LMT + "cbc:AllowanceTotalAmount", _SUM + "ram:AllowanceTotalAmount"),
    T("BT-108", "totals.charges", "Sum of charges on document level", K.AMOUNT, _INV, _LMT + "cbc:ChargeTotalAmount", _SUM + "ram:ChargeTotalAmount"),
    T("BT-109", "totals.net", "Invoice total amount without VAT", K.AMOUNT, _INV, _LMT + "cbc:TaxExclusiveAmount", _SUM + "ram:TaxBasisTotalAmount"),
    T("BT-110", "totals.vat", "Invoice total VAT amount", K.AMOUNT, _INV, "cac:TaxTotal/cbc:TaxAmount[not(@currencyID) or @currencyID=/*/cbc:DocumentCurrencyCode]", _SUM + "ram:TaxTotalAmount[not(@currencyID) or @currencyID=../../ram:InvoiceCurrencyCode]"),
    T("BT-111", "totals.vat_accounting_currency", "Invoice total VAT amount in accounting currency", K.AMOUNT, _INV, "cac:TaxTotal/cbc:TaxAmount[@currencyID=/*/cbc:TaxCurrencyCode and @currencyID!=/*/cbc:DocumentCurrencyCode]", _SUM + "ram:TaxTotalAmount[@currencyID=../../ram:TaxCurrencyCode and @currencyID!=../../ram:InvoiceCurrencyCode]"),
    T(None, "totals.vat_accounting_currency_code", "Currency of BT-111 (as its currencyID states)", K.CODE, _INV, None, None, ("totals.vat_accounting_currency", "currencyID")),
    T("BT-112", "totals.gross", "Invoice total amount with VAT", K.AMOUNT, _INV, _LMT + "cbc:TaxInclusiveAmount", _SUM + "ram:GrandTotalAmount"),
    T("BT-113", "totals.prepaid", "Paid amount", K.AMOUNT, _INV, _LMT + "cbc:PrepaidAmount", _SUM + "ram:TotalPrepaidAmount"),
    T("BT-114", "totals.rounding", "Rounding amount", K.AMOUNT, _INV, _LMT + "cbc:PayableRoundingAmount", _SUM + "ram:RoundingAmount"),
    T("BT-115", "totals.payable", "Amount due for payment", K.AMOUNT, _INV, _LMT + "cbc:PayableAmount", _SUM + "ram:DuePayableAmount"),
    # -- BG-23 VAT breakdown -----------------------------------------------------------
    T("BT-116", "vat.base", "VAT category taxable amount", K.AMOUNT, "BG-23", "cbc:TaxableAmount", "ram:BasisAmount"),
    T("BT-117", "vat.amount", "VAT category tax amount", K.AMOUNT, "BG-23", "cbc:TaxAmount", "ram:CalculatedAmount"),
    T("BT-118", "vat.category", "VAT category code", K.CODE, "BG-23", "cac:TaxCategory/cbc:ID", "ram:CategoryCode"),
    T("BT-119", "vat.rate", "VAT category rate", K.PERCENT, "BG-23", "cac:TaxCategory/cbc:Percent", "ram:RateApplicablePercent"),
    T("BT-120", "vat.exemption_reason", "VAT exemption reason text", K.TEXT, "BG-23", "cac:TaxCategory/cbc:TaxExemptionReason", "ram:ExemptionReason"),
    T("BT-121", "vat.exemption_code", "VAT exemption reason code", K.CODE, "BG-23", "cac:TaxCategory/cbc:TaxExemptionReasonCode", "ram:ExemptionReasonCode"),
    # -- BG-25 invoice line ------------------------------------------------------------
    T("BT-126", "line.id", "Invoice line identifier", K.IDENTIFIER, "BG-25", "cbc:ID", "ram:AssociatedDocumentLineDocument/ram:LineID"),
    T("BT-127", "line.note", "Invoice line note", K.TEXT, "BG-25", "cbc:Note", "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content"),
    T("BT-128", "line.object_id", "Invoice line object identifier", K.IDENTIFIER, "BG-25", "cac:DocumentReference/cbc:ID", "ram:SpecifiedLineTradeSettlement/ram:AdditionalReferencedDocument[ram:TypeCode='130']/ram:IssuerAssignedID"),
    T("BT-129", "line.quantity", "Invoiced quantity", K.QUANTITY, "BG-25", "cbc:InvoicedQuantity|cbc:CreditedQuantity", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"),
    T("BT-130", "line.unit", "Invoiced quantity unit of measure code", K.CODE, "BG-25", None, None, ("line.quantity", "unitCode")),
    T("BT-131", "line.net_amount", "Invoice line net amount", K.AMOUNT, "BG-25", "cbc:LineExtensionAmount", "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"),
    T("BT-132", "line.order_line_reference", "Referenced purchase order line reference", K.IDENTIFIER, "BG-25", "cac:OrderLineReference/cbc:LineID", "ram:SpecifiedLineTradeAgreement/ram:BuyerOrderReferencedDocument/ram:LineID"),
    T("BT-133", "line.accounting_reference", "Invoice line Buyer accounting reference", K.TEXT, "BG-25", "cbc:AccountingCost", "ram:SpecifiedLineTradeSettlement/ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID"),
    T("BT-134", "line.period.start", "Invoice line period start date", K.DATE, "BG-25", "cac:InvoicePeriod/cbc:StartDate", "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:StartDateTime/" + _DATE),
    T("BT-135", "line.period.end", "Invoice line period end date", K.DATE, "BG-25", "cac:InvoicePeriod/cbc:EndDate", "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime/" + _DATE),
    T("BT-146", "line.price", "Item net price", K.AMOUNT, "BG-25", "cac:Price/cbc:PriceAmount", "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"),
    T("BT-147", "line.price_discount", "Item price discount", K.AMOUNT, "BG-25", "cac:Price/cac:AllowanceCharge/cbc:Amount", "ram:SpecifiedLineTradeAgreement/ram:GrossPriceProductTradePrice/ram:AppliedTradeAllowanceCharge/ram:ActualAmount"),
    T("BT-148", "line.gross_price", "Item gross price", K.AMOUNT, "BG-25", "cac:Price/cac:AllowanceCharge/cbc:BaseAmount", "ram:SpecifiedLineTradeAgreement/ram:GrossPriceProductTradePrice/ram:ChargeAmount"),
    T("BT-149", "line.base_quantity", "Item price base quantity", K.QUANTITY, "BG-25", "cac:Price/cbc:BaseQuantity", "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:BasisQuantity"),
    T("BT-150", "line.base_quantity_unit", "Item price base quantity unit of measure code", K.CODE, "BG-25", None, None, ("line.base_quantity", "unitCode")),
    T("BT-151", "line.vat_category", "Invoiced item VAT category code", K.CODE, "BG-25", "cac:Item/cac:ClassifiedTaxCategory/cbc:ID", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode"),
    T("BT-152", "line.vat_rate", "Invoiced item VAT rate", K.PERCENT, "BG-25", "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent"),
    T("BT-153", "line.item.name", "Item name", K.TEXT, "BG-25", "cac:Item/cbc:Name", "ram:SpecifiedTradeProduct/ram:Name"),
    T("BT-154", "line.item.description", "Item description", K.TEXT, "BG-25", "cac:Item/cbc:Description", "ram:SpecifiedTradeProduct/ram:Description"),
    T("BT-155", "line.item.seller_id", "Item Seller's identifier", K.IDENTIFIER, "BG-25", "cac:Item/cac:SellersItemIdentification/cbc:ID", "ram:SpecifiedTradeProduct/ram:SellerAssignedID"),
    T("BT-156", "line.item.buyer_id", "Item Buyer's identifier", K.IDENTIFIER, "BG-25", "cac:Item/cac:BuyersItemIdentification/cbc:ID", "ram:SpecifiedTradeProduct/ram:BuyerAssignedID"),
    T("BT-157", "line.item.standard_id", "Item standard identifier", K.IDENTIFIER, "BG-25", "cac:Item/cac:StandardItemIdentification/cbc:ID", "ram:SpecifiedTradeProduct/ram:GlobalID"),
    T("BT-157-1", "line.item.standard_id_scheme", "Item standard identifier scheme", K.CODE, "BG-25", None, None, ("line.item.standard_id", "schemeID")),
    T("BT-158", "line.item.classification", "Item classification identifier", K.IDENTIFIER, "BG-25", "cac:Item/cac:CommodityClassification/cbc:ItemClassificationCode", "ram:SpecifiedTradeProduct/ram:DesignatedProductClassification/ram:ClassCode"),
    T("BT-159", "line.item.origin_country", "Item country of origin", K.CODE, "BG-25", "cac:Item/cac:OriginCountry/cbc:IdentificationCode", "ram:SpecifiedTradeProduct/ram:OriginTradeCountry/ram:ID"),
    # Factur-X EXTENDED sub-lines (no EN 16931 term): lines come flat, these say how they nest.
    T(None, "line.parent_id", "Parent line identifier (EXTENDED sub-line)", K.IDENTIFIER, "BG-25", None, "ram:AssociatedDocumentLineDocument/ram:ParentLineID"),
    T(None, "line.status_reason", "Line status reason: DETAIL, GROUP or INFORMATION (EXTENDED)", K.CODE, "BG-25", None, "ram:AssociatedDocumentLineDocument/ram:LineStatusReasonCode"),
    # -- BG-27 / BG-28 line allowances and charges -------------------------------------
    T("BT-136", "line.allowance.amount", "Invoice line allowance amount", K.AMOUNT, "BG-27", "cbc:Amount", "ram:ActualAmount"),
    T("BT-137", "line.allowance.base", "Invoice line allowance base amount", K.AMOUNT, "BG-27", "cbc:BaseAmount", "ram:BasisAmount"),
    T("BT-138", "line.allowance.percentage", "Invoice line allowance percentage", K.PERCENT, "BG-27", "cbc:MultiplierFactorNumeric", "ram:CalculationPercent"),
    T("BT-139", "line.allowance.reason", "Invoice line allowance reason", K.TEXT, "BG-27", "cbc:AllowanceChargeReason", "ram:Reason"),
    T("BT-140", "line.allowance.reason_code", "Invoice line allowance reason code", K.CODE, "BG-27", "cbc:AllowanceChargeReasonCode", "ram:ReasonCode"),
    T("BT-141", "line.charge.amount", "Invoice line charge amount", K.AMOUNT, "BG-28", "cbc:Amount", "ram:ActualAmount"),
    T("BT-142", "line.charge.base", "Invoice line charge base amount", K.AMOUNT, "BG-28", "cbc:BaseAmount", "ram:BasisAmount"),
    T("BT-143", "line.charge.percentage", "Invoice line charge percentage", K.PERCENT, "BG-28", "cbc:MultiplierFactorNumeric", "ram:CalculationPercent"),
    T("BT-144", "line.charge.reason", "Invoice line charge reason", K.TEXT, "BG-28", "cbc:AllowanceChargeReason", "ram:Reason"),
    T("BT-145", "line.charge.reason_code", "Invoice line charge reason code", K.CODE, "BG-28", "cbc:AllowanceChargeReasonCode", "ram:ReasonCode"),
)

# fmt: on

# Type codes (UNTDID 1001) that make a document a credit note in EN 16931 and the French list.
CREDIT_NOTE_TYPES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "502", "503", "532"}
)
