"""Rebuild the Excel samples (the CRM export and the supplier's confirmation workbook).

The .xlsx files are committed; this script documents how they were made and rebuilds them
byte-for-byte in content (openpyxl stamps creation times into docProps, nothing else
changes)::

    python samples/tools/make_xlsx_samples.py
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

SAMPLES = Path(__file__).resolve().parent.parent
FIXED_TIME = datetime(2026, 11, 28, 9, 0, 0)  # noqa: DTZ001 - openpyxl stores naive times


def _save(workbook: Workbook, path: Path) -> None:
    workbook.properties.creator = "edigw samples"
    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)


def crm_customers(path: Path) -> None:
    """A CRM account export: a merged title row, a blank row, the header, then accounts.

    SIRET numbers are typed as numbers (as CRM users paste them), postal codes as text
    (so Nice keeps its leading zero), the creation date as an Excel date.
    """
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Comptes"
    ws["A1"] = "Export CRM — comptes clients actifs au 28/11/2026"
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells("A1:L1")
    header = [
        "Code client",
        "Raison sociale",
        "SIRET",
        "N° TVA intracom.",
        "E-mail",
        "Téléphone",
        "Adresse",
        "Code postal",
        "Ville",
        "Pays",
        "Conditions de paiement",
        "Client depuis",
    ]
    ws.append([])
    ws.append(header)
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    rows = [
        [
            "CUS-0001",
            "Services Simon",
            91180163700099,
            "FR73911801637",
            "compta@services-simon.example.fr",
            "+33 4 77 68 47 62",
            "136 chemin des Vignes",
            "75011",
            "Paris",
            "France",
            "30 j fin de mois",
            date(2019, 3, 14),
        ],
        [
            "CUS-0002",
            "Jardins Girard",
            31874926400061,
            "FR76318749264",
            "jardins.girard@example.fr",
            "04 10 35 86 86",
            "80 place du Marché",
            "35000",
            "Rennes",
            "France",
            "30 j fin de mois",
            date(2020, 9, 1),
        ],
        [
            "CUS-0003",
            "Distribution Petit",
            98718942000068,
            "FR65987189420",
            "achats@distribution-petit.example.fr",
            "+33 4 65 97 67 84",
            "166 chemin des Vignes",
            "67000",
            "Strasbourg",
            "France",
            "30 j fin de mois",
            date(2018, 1, 22),
        ],
        [
            "CUS-0051",
            "Rénovation Côte d'Azur",
            52211873600027,
            "FR26522118736",
            "contact@renovation-azur.example.fr",
            "04 93 88 12 40",
            "14 promenade des Anglais",
            "06000",
            "Nice",
            "France",
            "45 j fin de mois",
            date(2026, 11, 20),
        ],
    ]
    for row in rows:
        ws.append(row)
        ws.cell(row=ws.max_row, column=12).number_format = "DD/MM/YYYY"
    ws.append([])
    ws.append(["4 comptes exportés"])
    _save(wb, path)


def supplier_confirmations(path: Path) -> None:
    """A supplier's order acknowledgement workbook: one row per purchase-order line."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Confirmations"
    ws.append(
        [
            "N° commande client",
            "N° AR fournisseur",
            "N° ligne",
            "Réf. fournisseur",
            "Qté confirmée",
            "Prix unitaire HT",
            "Date de livraison",
            "Statut",
        ]
    )
    rows = [
        ["PO-2026-0001", "AR-VR-26-3301", 1, "001-7198", 10, 123.46, date(2026, 12, 13), "Accepté"],
        ["PO-2026-0001", "AR-VR-26-3301", 2, "001-5987", 50, 65.41, date(2026, 12, 13), "Accepté"],
        ["PO-2026-0009", "AR-VR-26-3302", 1, "001-8669", 200, 104.26, date(2027, 1, 8), "Modifié"],
        ["PO-2026-0009", "AR-VR-26-3302", 2, "001-7149", 24, 29.02, date(2026, 12, 20), "Accepté"],
        ["PO-2026-0009", "AR-VR-26-3302", 3, "001-5979", 0, 27.39, date(2026, 12, 5), "Refusé"],
        ["PO-2026-0009", "AR-VR-26-3302", 4, "001-1171", 24, 84.57, date(2026, 12, 24), "Accepté"],
    ]
    for row in rows:
        ws.append(row)
        ws.cell(row=ws.max_row, column=7).number_format = "DD/MM/YYYY"
        ws.cell(row=ws.max_row, column=6).number_format = "#,##0.00"
    _save(wb, path)


def crm_customers_bad(path: Path) -> None:
    """CRM export with a missing company name, a short SIRET and an unknown payment term."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Comptes"
    ws["A1"] = "Export CRM — comptes clients actifs au 28/11/2026"
    ws.merge_cells("A1:L1")
    ws.append([])
    ws.append(
        [
            "Code client",
            "Raison sociale",
            "SIRET",
            "N° TVA intracom.",
            "E-mail",
            "Téléphone",
            "Adresse",
            "Code postal",
            "Ville",
            "Pays",
            "Conditions de paiement",
            "Client depuis",
        ]
    )
    ws.append(
        [
            "CUS-0052",
            None,
            5221187360,
            "FR26522118736",
            "x@example.fr",
            "04 93 88 12 40",
            "1 rue Haute",
            "06000",
            "Nice",
            "France",
            "30 j fin de mois",
            date(2026, 11, 20),
        ]
    )
    ws.append(
        [
            "CUS-0053",
            "Bricolage Azur",
            52211873600027,
            "FR26522118736",
            "y@example.fr",
            "04 93 88 12 41",
            "2 rue Haute",
            "06000",
            "Nice",
            "France",
            "à réception",
            date(2026, 11, 21),
        ]
    )
    _save(wb, path)


def supplier_confirmations_bad(path: Path) -> None:
    """Confirmation rows with an unknown status, a quantity in words and a missing date."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Confirmations"
    ws.append(
        [
            "N° commande client",
            "N° AR fournisseur",
            "N° ligne",
            "Réf. fournisseur",
            "Qté confirmée",
            "Prix unitaire HT",
            "Date de livraison",
            "Statut",
        ]
    )
    ws.append(
        ["PO-2026-0003", "AR-JPS-0091", 1, "003-6475", 20, 117.36, date(2026, 12, 15), "Peut-être"]
    )
    ws.append(
        ["PO-2026-0003", "AR-JPS-0091", 2, "003-8520", "vingt-quatre", 53.60, None, "Accepté"]
    )
    _save(wb, path)


def main() -> None:
    crm_customers(SAMPLES / "crm" / "crm-customers-xlsx" / "export_comptes_crm_20261128.xlsx")
    supplier_confirmations(
        SAMPLES / "supplier" / "supplier-confirmations-xlsx" / "AR_commandes_visserie_du_rhone.xlsx"
    )
    crm_customers_bad(SAMPLES / "bad" / "crm-customers-xlsx" / "export_comptes_incomplet.xlsx")
    supplier_confirmations_bad(
        SAMPLES / "bad" / "supplier-confirmations-xlsx" / "AR_statut_inconnu.xlsx"
    )


if __name__ == "__main__":
    main()
