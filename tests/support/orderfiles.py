"""Web-shop order files in the shipped ``ecommerce-orders-csv`` format, priced like Ecolix.

Used by the pipeline tests and benchmarks to make many valid orders: each order gets a
unique number (the external reference Ecolix refuses twice) and a payment equal to the
total incl. VAT that the sandbox will compute.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edigw.sandbox.rules import price_lines

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "samples" / "sandbox-seed.json"
HEADER = (
    "num_commande;date_commande;code_client;ref_article;designation;quantite;prix_unitaire_ht;"
    "mode_paiement;montant_paye_ttc;id_transaction;date_paiement;livraison_nom;"
    "livraison_adresse;livraison_cp;livraison_ville;livraison_pays"
)


def load_seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED.read_text(encoding="utf-8"))
    return data


def _fr(amount: str) -> str:
    return amount.replace(".", ",")


@dataclass(frozen=True, slots=True)
class OrderFactory:
    """Makes valid orders from the sandbox seed; deterministic for a given ``rng`` seed."""

    customers: Sequence[str]
    articles: dict[str, dict[str, Any]]

    @classmethod
    def from_seed(cls, seed: dict[str, Any] | None = None) -> OrderFactory:
        seed = seed or load_seed()
        articles = {a["code"]: a for a in seed["articles"] if a.get("active", True)}
        customers = [c["code"] for c in seed["customers"]]
        return cls(customers, articles)

    def order_rows(self, number: str, rng: random.Random, *, max_lines: int = 3) -> list[str]:
        customer = rng.choice(self.customers)
        codes = rng.sample(sorted(self.articles), rng.randint(1, max_lines))
        lines = [{"article_code": c, "quantity": str(rng.randint(1, 5))} for c in codes]
        _, totals = price_lines(lines, self.articles)
        rows = []
        for line in lines:
            article = self.articles[line["article_code"]]
            rows.append(
                ";".join(
                    (
                        number,
                        "28/11/2026",
                        customer,
                        line["article_code"],
                        article["label"],
                        line["quantity"],
                        _fr(article["sale_price"]),
                        "Carte bancaire",
                        _fr(totals["gross"]),
                        f"CB-{number}",
                        "28/11/2026 10:42:13",
                        "Jeanne Martin",
                        "12 rue de la Paix",
                        "69003",
                        "Lyon",
                        "France",
                    )
                )
            )
        return rows

    def write_file(self, path: Path, numbers: Sequence[str], rng: random.Random) -> None:
        rows = [HEADER]
        for number in numbers:
            rows += self.order_rows(number, rng)
        path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")


def write_order_files(
    folder: Path, *, files: int, orders_per_file: int, prefix: str = "T", seed: int = 7
) -> list[str]:
    """Write ``files`` order files into ``folder``; returns every order number written."""
    factory = OrderFactory.from_seed()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    numbers: list[str] = []
    for f in range(files):
        batch = [f"{prefix}{f:04d}-{n}" for n in range(orders_per_file)]
        factory.write_file(folder / f"orders-{prefix}-{f:04d}.csv", batch, rng)
        numbers += batch
    return numbers
