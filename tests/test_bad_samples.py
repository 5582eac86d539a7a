"""Deliberately broken samples (``samples/bad/<mapping>/``): each error message is pinned.

Every message must say where (file and line, XPath or cell, and the target field as a JSON
pointer) and what is wrong, and a bad document must never sink its neighbours. A malformed
file is one error for the whole file. The same files go through ``edigw demo``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edigw.mapping import load_mapping
from edigw.mapping.sample import SampleRun, run_samples

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "samples" / "bad"


def outcome(run: SampleRun) -> list[str]:
    """One line per problem (``KEY: where [pointer] message``), per good document, per error."""
    lines = []
    for document in run.documents:
        if "error" in document:
            lines.append(f"error: {document['error']}")
        elif "problems" not in document:
            lines.append(f"{document['key']}: ok")
        else:
            lines.extend(
                f"{document['key']}: {p['location']} [{p['pointer']}] {p['message']}"
                for p in document["problems"]
            )
    return lines


def map_bad(relative: str) -> SampleRun:
    sample = BAD / relative
    return run_samples(load_mapping(ROOT / "mappings" / f"{sample.parent.name}.yaml"), sample)


PINNED = [
    pytest.param(
        "carrier-appointments-csv/GEODIS_RDV_erreurs.csv",
        [
            "GEO-RDV-88190: GEODIS_RDV_erreurs.csv:2:3 field date_rdv [/appointment_date] '2026-12-02' is not a date in the format %d/%m/%Y",
            "GEO-RDV-88191: GEODIS_RDV_erreurs.csv:3:2 field commande [/order_number] required value missing ('commande' is empty)",
            "GEO-RDV-88191: GEODIS_RDV_erreurs.csv:3:5 field nb_palettes [/handling_units] 'aucune' is not a whole number",
            'GEO-RDV-88192: GEODIS_RDV_erreurs.csv:4:4 field creneau [/slot_start] "8h" does not match "^([01]\\d|2[0-3]):[0-5]\\d$"',
            'GEO-RDV-88192: GEODIS_RDV_erreurs.csv:4:4 field creneau [/slot_end] "12h" does not match "^([01]\\d|2[0-3]):[0-5]\\d$"',
            'GEO-RDV-88192: GEODIS_RDV_erreurs.csv:4:8 field quantite [/lines/0/quantity] "-3" does not match "^\\d{1,12}(\\.\\d{1,4})?$"',
        ],
        id="GEODIS_RDV_erreurs",
    ),
    pytest.param(
        "carrier-appointments-xml/schenker-unknown-order.xml",
        [
            "SCH-2026-77490: schenker-unknown-order.xml:5 /sch:AppointmentConfirmations/sch:Appointment[1]/sch:ConsigneeOrderRef [/order_number] required value missing ('sch:ConsigneeOrderRef' is empty)",
            "SCH-2026-77490: schenker-unknown-order.xml:6 /sch:AppointmentConfirmations/sch:Appointment[1]/sch:Date [/appointment_date] '2026-12-32' is not a date in the format YYYY-MM-DD",
            "SCH-2026-77490: schenker-unknown-order.xml:8 /sch:AppointmentConfirmations/sch:Appointment[1]/sch:HandlingUnits [/handling_units] '2.5' is not a whole number",
        ],
        id="schenker-unknown-order",
    ),
    pytest.param(
        "crm-customers-xlsx/export_comptes_incomplet.xlsx",
        [
            "CUS-0052: export_comptes_incomplet.xlsx Comptes!B4 [/name] required value missing ('Raison sociale' is empty)",
            "CUS-0053: export_comptes_incomplet.xlsx Comptes!K5 [/payment_terms] 'à réception' not found in lookup table payment-terms.csv (key column 'libelle')",
        ],
        id="export_comptes_incomplet",
    ),
    pytest.param(
        "crm-customers-xlsx/export_comptes_pas_un_classeur.xlsx",
        [
            "error: export_comptes_pas_un_classeur.xlsx: not an .xlsx workbook (corrupt or another format): File is not a zip file",
        ],
        id="export_comptes_pas_un_classeur",
    ),
    pytest.param(
        "ecommerce-customers-csv/clients_incomplets.csv",
        [
            "WEB-10290: clients_incomplets.csv:2 [/name] required value missing (expression \"record.societe or ((record.prenom or '') ~ ' ' ~ (record.nom or '')) | trim\" is empty)",
            "WEB-10290: clients_incomplets.csv:2:12 field code_postal [/billing_address/postal_code] required value missing ('code_postal' is empty)",
            "WEB-10291: clients_incomplets.csv:3:14 field pays [/billing_address/country] 'Lune' not found in lookup table countries.csv (key column 'pays')",
            "WEB-10291: clients_incomplets.csv:3:20 field reglement [/payment_terms] 'À la saint-glinglin' not found in lookup table payment-terms.csv (key column 'libelle')",
        ],
        id="clients_incomplets",
    ),
    pytest.param(
        "ecommerce-customers-csv/clients_octets_invalides.csv",
        [
            "error: clients_octets_invalides.csv:3:19: cannot decode bytes b'\\x81\\x8d' as cp1252; set the flow's or mapping's encoding to the one the partner uses (utf-8, utf-8-sig, cp1252) or to auto",
        ],
        id="clients_octets_invalides",
    ),
    pytest.param(
        "ecommerce-orders-csv/commandes_erreurs_20261128.csv",
        [
            "WEB-6190: commandes_erreurs_20261128.csv:2:2 field date_commande [/order_date] '31/02/2026' is not a date in the format %d/%m/%Y",
            "WEB-6190: commandes_erreurs_20261128.csv:2:6 field quantite [/lines/0/quantity] 'deux' is not a decimal number",
            "WEB-6191: commandes_erreurs_20261128.csv:3:3 field code_client [/customer_code] required value missing ('code_client' is empty)",
            "WEB-6191: commandes_erreurs_20261128.csv:3:8 field mode_paiement [/payment/method] 'Bitcoin' not found in lookup table payment-methods.csv (key column 'mode_paiement')",
            "WEB-6192: ok",
        ],
        id="commandes_erreurs_20261128",
    ),
    # Maps without a problem: Ecolix refuses the three orders (a payment that does not match
    # the total, an unknown article, a customer not yet created), see test_mapping_dry_run.py,
    # test_pipeline_refusals.py and the walk-through of docs/mappings.md.
    pytest.param(
        "ecommerce-orders-csv/commandes_refusees_20261128.csv",
        ["WEB-6195: ok", "WEB-6196: ok", "WEB-6197: ok"],
        id="commandes_refusees_20261128",
    ),
    pytest.param(
        "ecommerce-orders-xml/order-feed-truncated.xml",
        [
            "WEB-6104: ok",
            "error: order-feed-truncated.xml:49:10: malformed XML: StartTag: invalid element name",
        ],
        id="order-feed-truncated",
    ),
    pytest.param(
        "ecommerce-orders-xml/order-feed-wrong-types.xml",
        [
            "WEB-6104: order-feed-wrong-types.xml:22 /f:OrderFeed/f:Order[1]/f:Lines/f:Line[1]/f:Quantity [/lines/0/quantity] 'two' is not a decimal number",
            "WEB-6105: order-feed-wrong-types.xml:49 /f:OrderFeed/f:Order[2]/f:Lines/f:Line[1]/f:Sku [/lines/0/article_code] required value missing ('f:Sku' is empty)",
            "WEB-6105: order-feed-wrong-types.xml:44 /f:OrderFeed/f:Order[2]/f:Payment/@paidAt [/payment/paid_at] 'yesterday' is not a date and time in the format ISO 8601 (YYYY-MM-DDTHH:MM:SS)",
        ],
        id="order-feed-wrong-types",
    ),
    pytest.param(
        "ecommerceplus-quote-validations-csv/validations-erreurs.csv",
        [
            "validations-erreurs.csv:2: validations-erreurs.csv:2:1 field devis [/number] required value missing ('devis' is empty)",
            "validations-erreurs.csv:2: validations-erreurs.csv:2:1 field devis [None] key: required value missing ('devis' is empty)",
            "DEV-2026-0005: validations-erreurs.csv:3:2 field valide_le [/validated_at] 'hier soir' is not a date and time in the format %d/%m/%Y %H:%M",
            'DEV-2026-0006: validations-erreurs.csv:4:3 field reference_client [/customer_reference] "une référence client beaucoup trop longue pour Ecolix qui en refuse plus de soixante" is longer than 60 characters',
        ],
        id="validations-erreurs",
    ),
    pytest.param(
        "supplier-confirmations-ubl/OrderResponse-unknown-order.xml",
        [
            # '99' is not one of the examples' references: taken as our purchase order number
            # (Ecolix then answers that it has no such purchase order)
            "99: OrderResponse-unknown-order.xml:50 /or:OrderResponse[1]/cac:OrderLine[2]/cac:LineItem/cbc:LineStatusCode [/lines/1/status] 'Maybe' is not in the value map (known: '1', '3', '5', '7', '42', '27', '29', '30' and 5 more)",
        ],
        id="OrderResponse-unknown-order",
    ),
    pytest.param(
        "supplier-confirmations-xlsx/AR_statut_inconnu.xlsx",
        [
            "PO-2026-0003: AR_statut_inconnu.xlsx Confirmations!H2 [/lines/0/status] 'Peut-être' not found in lookup table confirmation-statuses.csv (key column 'statut')",
            "PO-2026-0003: AR_statut_inconnu.xlsx Confirmations!E3 [/lines/1/confirmed_quantity] 'vingt-quatre' is not a decimal number",
            "PO-2026-0003: AR_statut_inconnu.xlsx Confirmations!G3 [/lines/1/delivery_date] required value missing ('Date de livraison' is empty)",
        ],
        id="AR_statut_inconnu",
    ),
    pytest.param(
        "supplier-invoices-csv/factures_erreurs.csv",
        [
            "PF-2026-0007: factures_erreurs.csv:2:3 field type_piece [/document_type] 'PROFORMA' is not in the value map (known: 'FACTURE', 'AVOIR')",
            "FA-2026-1190: factures_erreurs.csv:5 [/lines] required list is empty (no records with values)",
            "FA-2026-1190: factures_erreurs.csv:5:19 field total_ht [/totals/net] 'cent' is not a decimal number",
        ],
        id="factures_erreurs",
    ),
    pytest.param(
        "supplier-invoices-ubl/invoice-entity-expansion.xml",
        [
            "error: invoice-entity-expansion.xml:3: the XML declares entities in its DTD; edigw refuses them (entity-expansion bombs). Ask the partner to send the file without a DOCTYPE",
        ],
        id="invoice-entity-expansion",
    ),
    pytest.param(
        "supplier-invoices-ubl/invoice-external-entity.xml",
        [
            "error: invoice-external-entity.xml:2: the XML declares entities in its DTD; edigw refuses them (entity-expansion bombs). Ask the partner to send the file without a DOCTYPE",
        ],
        id="invoice-external-entity",
    ),
]


@pytest.mark.parametrize(("relative", "expected"), PINNED)
def test_bad_sample_errors_name_the_place_and_the_reason(
    relative: str, expected: list[str]
) -> None:
    assert outcome(map_bad(relative)) == expected


def test_every_bad_sample_is_pinned() -> None:
    pinned = {p.values[0] for p in PINNED}
    flat = BAD / "flat"  # flat-file samples are pinned in tests/test_flat_mappings.py
    on_disk = {
        str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file() and flat not in p.parents
    }
    assert on_disk == pinned


def test_every_bad_sample_folder_names_a_shipped_mapping() -> None:
    for folder in (*BAD.iterdir(), *(BAD / "flat").iterdir()):
        if folder.name == "flat":
            continue
        assert (ROOT / "mappings" / f"{folder.name}.yaml").is_file(), folder


def test_a_document_with_problems_carries_no_payload() -> None:
    run = map_bad("ecommerce-orders-csv/commandes_erreurs_20261128.csv")
    assert [(d["key"], d["payload"] is None) for d in run.documents] == [
        ("WEB-6190", True),
        ("WEB-6191", True),
        ("WEB-6192", False),
    ]


def test_bad_samples_cover_csv_xml_and_xlsx_and_each_kind_of_error() -> None:
    text = "\n".join(line for p in PINNED for line in p.values[1])  # type: ignore[union-attr]
    for fragment in [
        "is not a decimal number",  # wrong type
        "is not a date in the format",  # wrong type
        "required value missing",  # missing required field
        "not found in lookup table",  # unknown lookup value
        "malformed XML",  # truncated file
        "not an .xlsx workbook",  # not a workbook
        "cannot decode bytes",  # wrong encoding
        "refuses them (entity-expansion bombs)",  # hostile XML
        "does not match",  # refused by the Ecolix contract
    ]:
        assert fragment in text, fragment
    suffixes = {Path(p.values[0]).suffix for p in PINNED}  # type: ignore[arg-type]
    assert suffixes == {".csv", ".xml", ".xlsx"}
