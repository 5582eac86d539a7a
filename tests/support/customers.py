"""A web shop's customer export (the shipped ``ecommerce-customers-csv`` format), written
whole: the file a shop drops every night, most of its rows unchanged since the last one."""

from __future__ import annotations

from pathlib import Path

COLUMNS = (
    "id_client;societe;civilite;prenom;nom;email;telephone;siret;tva_intracom;adresse;"
    "complement;code_postal;ville;pays;livraison_nom;livraison_adresse;livraison_cp;"
    "livraison_ville;livraison_pays;reglement"
)


def customer_rows(
    count: int, *, changed: int | None = None, prefix: str = "WEB", phone: str = "07 00 00 00 01"
) -> list[str]:
    """``count`` customers ``{prefix}-00001``...; number ``changed`` (if any) has ``phone``."""
    rows = []
    for n in range(1, count + 1):
        number = f"06 12 34 {n // 100:02d} {n % 100:02d}" if n != changed else phone
        rows.append(
            ";".join(
                (
                    f"{prefix}-{n:05d}",
                    f"Société {n}" if n % 3 == 0 else "",
                    "Mme" if n % 2 else "M.",
                    f"Prénom{n}",
                    f"Nom{n}",
                    f"client{n}@example.fr",
                    number,
                    "",
                    "",
                    f"{n} rue de la République",
                    "",
                    "69003",
                    "Lyon",
                    "France",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "Comptant",
                )
            )
        )
    return rows


def write_export(path: Path, rows: list[str]) -> Path:
    """Written aside, then renamed in: the file appears whole, as a careful shop writes it."""
    staging = path.with_name(f".{path.name}.part")
    staging.write_text("\r\n".join([COLUMNS, *rows]) + "\r\n", encoding="cp1252")
    staging.replace(path)
    return path
