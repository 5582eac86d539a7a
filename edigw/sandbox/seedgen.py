"""Deterministic generator of the sandbox seed (``samples/sandbox-seed.json``).

The seed gives every export content and every sample import something to refer to: a few
hundred articles with stock in two warehouses, customers, quotes (open, expired, validated),
orders in every state, suppliers, purchase orders, supplier invoices and carriers. It is
generated, not hand-written, so that identifiers (SIRET, VAT numbers, EAN-13) carry valid check
digits and amounts add up; a fixed random seed keeps it byte-identical run after run::

    python -m edigw.sandbox.seedgen samples/sandbox-seed.json
"""

from __future__ import annotations

import json
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from edigw.sandbox.rules import money, price_lines, quantity_text

SEED_VERSION = 1
RANDOM_SEED = 2026
ARTICLE_COUNT = 300
CUSTOMER_COUNT = 50

WAREHOUSES = [
    {"code": "WH-LYON", "name": "Entrepôt de Lyon-Corbas"},
    {"code": "WH-LILLE", "name": "Entrepôt de Lille-Lesquin"},
]
CARRIERS = [
    {"code": "GEODIS", "name": "Geodis Distribution & Express"},
    {"code": "SCHENKER", "name": "DB Schenker France"},
    {"code": "HEPPNER", "name": "Heppner"},
    {"code": "DHLFR", "name": "DHL Freight France"},
    {"code": "KUEHNE", "name": "Kuehne+Nagel Road"},
]
PAYMENT_METHODS = ["CARD", "PAYPAL", "TRANSFER", "CHEQUE", "GIFT_CARD"]
PAYMENT_TERMS = ["IMMEDIATE", "NET15", "NET30", "NET30EOM", "NET45EOM", "NET60"]

FAMILIES = {
    "Quincaillerie": (["Vis", "Boulon", "Cheville", "Charnière", "Équerre", "Crochet"], "20.00"),
    "Outillage": (["Marteau", "Tournevis", "Clé plate", "Pince", "Scie", "Niveau"], "20.00"),
    "Jardin": (["Sécateur", "Tuyau", "Arrosoir", "Râteau", "Bêche", "Terreau"], "10.00"),
    "Électricité": (["Câble", "Interrupteur", "Prise", "Ampoule LED", "Gaine", "Domino"], "20.00"),
    "Plomberie": (["Raccord", "Robinet", "Joint", "Siphon", "Flexible", "Vanne"], "20.00"),
    "Peinture": (["Peinture", "Rouleau", "Pinceau", "Enduit", "Vernis", "Ruban"], "20.00"),
    "Épicerie": (["Café", "Thé", "Miel", "Confiture", "Biscuits", "Chocolat"], "5.50"),
}
QUALIFIERS = [
    "inox",
    "acier zingué",
    "laiton",
    "pro",
    "compact",
    "renforcé",
    "bio",
    "premium",
    "éco",
    "grand modèle",
]
UNITS = ["PCE", "PCE", "PCE", "BOX", "KG", "M"]

CITIES = [
    ("69003", "Lyon"),
    ("59000", "Lille"),
    ("75011", "Paris"),
    ("13002", "Marseille"),
    ("31000", "Toulouse"),
    ("44000", "Nantes"),
    ("67000", "Strasbourg"),
    ("33000", "Bordeaux"),
    ("35000", "Rennes"),
    ("21000", "Dijon"),
    ("38000", "Grenoble"),
    ("06000", "Nice"),
]
STREETS = [
    "rue de la République",
    "avenue Jean Jaurès",
    "boulevard Victor Hugo",
    "rue Nationale",
    "place du Marché",
    "rue des Tanneurs",
    "chemin des Vignes",
    "allée des Peupliers",
]
COMPANY_WORDS = [
    "Bricolage",
    "Habitat",
    "Maison",
    "Jardins",
    "Services",
    "Distribution",
    "Rénovation",
    "Équipement",
]
COMPANY_NAMES = [
    "Dupont",
    "Martin",
    "Bernard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "Roux",
    "Fournier",
    "Girard",
    "Bonnet",
    "Mercier",
]


def luhn_complete(digits: str) -> str:
    """Append the Luhn check digit (SIREN and SIRET numbers use it)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def ean13_complete(digits12: str) -> str:
    """Append the EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return digits12 + str((10 - total % 10) % 10)


def french_vat_number(siren: str) -> str:
    """The intra-EU VAT number derived from a SIREN (key = (12 + 3 × (SIREN mod 97)) mod 97)."""
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def _address(rng: random.Random, name: str | None = None) -> dict[str, Any]:
    postal_code, city = rng.choice(CITIES)
    address: dict[str, Any] = {
        "line1": f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
        "postal_code": postal_code,
        "city": city,
        "country": "FR",
    }
    if name:
        address = {"name": name, **address}
    return address


def _company(rng: random.Random) -> tuple[str, str, str]:
    """(name, SIRET, VAT number) with valid check digits."""
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_NAMES)}"
    siren = luhn_complete(f"{rng.randint(10_000_000, 99_999_999)}")
    siret = luhn_complete(f"{siren}{rng.randint(1, 9):04d}")
    return name, siret, french_vat_number(siren)


def _articles(rng: random.Random) -> list[dict[str, Any]]:
    articles = []
    families = list(FAMILIES)
    for n in range(1, ARTICLE_COUNT + 1):
        family = families[(n - 1) % len(families)]
        nouns, vat_rate = FAMILIES[family]
        unit = rng.choice(UNITS)
        price = Decimal(rng.randint(99, 25000)) / 100
        articles.append(
            {
                "code": f"ART-{n:04d}",
                "ean13": ean13_complete(f"376{n:09d}") if n % 25 else None,
                "label": f"{rng.choice(nouns)} {rng.choice(QUALIFIERS)} {n:04d}",
                "family": family,
                "unit": unit,
                "sale_price": money(price),
                "vat_rate": vat_rate,
                "weight_kg": quantity_text(Decimal(rng.randint(5, 25000)) / 1000),
                "active": n % 50 != 0,
            }
        )
    return articles


def _stock(rng: random.Random, articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stock = []
    for article in articles:
        for warehouse in WAREHOUSES:
            on_hand = rng.choice([0, rng.randint(1, 40), rng.randint(40, 900)])
            reserved = rng.randint(0, on_hand // 3) if on_hand else 0
            receipt = (
                f"2026-12-{rng.randint(1, 28):02d}" if on_hand < 10 or rng.random() < 0.2 else None
            )
            stock.append(
                {
                    "article_code": article["code"],
                    "warehouse": warehouse["code"],
                    "on_hand": str(on_hand),
                    "reserved": str(reserved),
                    "available": str(on_hand - reserved),
                    "next_receipt_date": receipt,
                }
            )
    return stock


def _customers(rng: random.Random) -> list[dict[str, Any]]:
    customers = []
    for n in range(1, CUSTOMER_COUNT + 1):
        name, siret, vat = _company(rng)
        consumer = n % 5 == 0  # a web-shop private customer: no SIRET, no VAT number
        if consumer:
            name = f"{rng.choice(['Claire', 'Julien', 'Sophie', 'Nicolas'])} {rng.choice(COMPANY_NAMES)}"
        slug = name.lower().replace(" ", ".").replace("é", "e").replace("è", "e")
        billing = _address(rng)
        deliveries = [_address(rng, name)] + ([_address(rng, "Dépôt")] if n % 3 == 0 else [])
        customers.append(
            {
                "code": f"CUS-{n:04d}",
                "name": name,
                "siret": None if consumer else siret,
                "vat_number": None if consumer else vat,
                "email": f"{slug}@example.fr",
                "phone": f"+33 4 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                "billing_address": billing,
                "delivery_addresses": deliveries,
                "payment_terms": "IMMEDIATE" if consumer else rng.choice(PAYMENT_TERMS[1:]),
            }
        )
    return customers


def _pick_lines(
    rng: random.Random, articles: list[dict[str, Any]], count: int
) -> list[dict[str, Any]]:
    chosen = rng.sample([a for a in articles if a["active"]], count)
    return [{"article_code": a["code"], "quantity": str(rng.randint(1, 12))} for a in chosen]


def _quotes(
    rng: random.Random, articles: list[dict[str, Any]], customers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_code = {a["code"]: a for a in articles}
    plan = (
        ["open"] * 14
        + ["open-past-date"] * 3
        + ["expired"] * 5
        + ["validated"] * 5
        + ["cancelled"] * 3
    )
    quotes = []
    for n, kind in enumerate(plan, start=1):
        lines, totals = price_lines(_pick_lines(rng, articles, rng.randint(1, 5)), by_code)
        month = rng.randint(1, 10)
        status = {"open-past-date": "open"}.get(kind, kind)
        # past validity dates stay at least a month behind the seed date (2026-11-28)
        valid_until = "2029-12-31" if kind == "open" else f"2026-{min(month, 9) + 1:02d}-28"
        quotes.append(
            {
                "number": f"DEV-2026-{n:04d}",
                "customer_code": customers[(n * 7) % len(customers)]["code"],
                "status": status,
                "quote_date": f"2026-{month:02d}-{rng.randint(1, 28):02d}",
                "valid_until": valid_until,
                "lines": [
                    {k: v for k, v in line.items() if k not in ("vat_amount", "delivered_quantity")}
                    for line in lines
                ],
                "totals": totals,
                "order_number": None,
                "customer_reference": None,
            }
        )
    return quotes


ORDER_PLAN = [
    ("received", ["received"]),
    ("confirmed", ["received", "confirmed"]),
    ("prepared", ["received", "confirmed", "prepared"]),
    ("shipped", ["received", "confirmed", "prepared", "shipped"]),
    ("delivered", ["received", "confirmed", "prepared", "shipped", "delivered"]),
    ("invoiced", ["received", "confirmed", "prepared", "shipped", "delivered", "invoiced"]),
    ("cancelled", ["received", "cancelled"]),
]


def _orders(
    rng: random.Random, articles: list[dict[str, Any]], customers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_code = {a["code"]: a for a in articles}
    orders = []
    n = 0
    for status, history in ORDER_PLAN:
        for _ in range(6):
            n += 1
            customer = customers[(n * 3) % len(customers)]
            lines, totals = price_lines(_pick_lines(rng, articles, rng.randint(1, 4)), by_code)
            delivered = status in ("shipped", "delivered", "invoiced")
            for line in lines:
                line["delivered_quantity"] = line["quantity"] if delivered else "0"
            day = f"2026-{rng.randint(6, 11):02d}-{rng.randint(1, 28):02d}"
            orders.append(
                {
                    "number": f"CMD-{100000 + n}",
                    "customer_code": customer["code"],
                    "external_reference": f"WEB-{5000 + n}",
                    "order_date": day,
                    "status": status,
                    "lines": lines,
                    "delivery_address": customer["delivery_addresses"][0],
                    "payment": {
                        "method": PAYMENT_METHODS[n % len(PAYMENT_METHODS)],
                        "amount": totals["gross"],
                        "transaction_id": f"TX-{rng.randint(10**9, 10**10 - 1)}",
                        "paid_at": f"{day}T{rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}:00Z",
                    },
                    "totals": totals,
                    "quote_number": None,
                    "history": history,
                }
            )
    return orders


#: Sellers of the public e-invoice samples (samples/einvoices) a French buyer would have as
#: suppliers, with the identifiers their invoices carry, and La Poste, whose SIRETs follow
#: their own check rule (the sum of the digits is a multiple of 5, not Luhn).
EINVOICE_SUPPLIERS: list[dict[str, Any]] = [
    {
        "code": "SUP-009",
        "name": "Le Fournisseur",
        "siren": "123456782",
        "siret": "12345678200077",
        "vat_number": "FR11123456782",
        "electronic_addresses": [{"scheme": "EM", "id": "moi@seller.com"}],
        "email": "moi@seller.com",
        "currency": "EUR",
        "payment_terms": "NET30",
    },
    {
        "code": "SUP-010",
        "name": "Au bon moulin",
        "siren": "999999998",
        "siret": "99999999800019",
        "vat_number": "FR11999999998",
        "electronic_addresses": [{"scheme": "0225", "id": "999999998_042"}],
        "email": None,
        "currency": "EUR",
        "payment_terms": "NET30",
    },
    {
        "code": "SUP-011",
        "name": "Exemple SARL",
        "siren": "812345676",
        "siret": "81234567600017",
        "vat_number": "FR19812345676",
        "electronic_addresses": [{"scheme": "EM", "id": "factures@exemple-sarl.example"}],
        "email": "factures@exemple-sarl.example",
        "currency": "EUR",
        "payment_terms": "NET30",
    },
    {
        "code": "SUP-012",
        "name": "Exemple Export SAS",
        "siren": "732829320",
        "siret": "73282932000074",
        "vat_number": "FR44732829320",
        "electronic_addresses": [{"scheme": "0225", "id": "732829320"}],
        "email": None,
        "currency": "EUR",
        "payment_terms": "NET45EOM",
    },
    {
        "code": "SUP-013",
        "name": "La Poste",
        "siren": "356000000",
        "siret": "35600000049837",
        "vat_number": "FR39356000000",
        "electronic_addresses": [],
        "email": None,
        "currency": "EUR",
        "payment_terms": "NET30",
    },
]


def _suppliers(rng: random.Random) -> list[dict[str, Any]]:
    names = [
        "Visserie du Rhône",
        "Outils Lefort",
        "Jardinerie Pro Sud",
        "Électro Négoce",
        "Sanitaire Distribution",
        "Couleurs & Cie",
        "Torréfaction Bernard",
    ]
    suppliers: list[dict[str, Any]] = []
    for n, name in enumerate(names, start=1):
        _, siret, vat = _company(rng)
        suppliers.append(
            {
                "code": f"SUP-{n:03d}",
                "name": name,
                "siren": siret[:9],
                "siret": siret,
                "vat_number": vat,
                "electronic_addresses": [{"scheme": "0225", "id": siret[:9]}],
                "email": f"commandes@supplier{n}.example.fr",
                "currency": "EUR",
                "payment_terms": rng.choice(["NET30", "NET45EOM", "NET60"]),
            }
        )
    suppliers.append(
        {
            "code": "SUP-008",
            "name": "Werkzeug Schmidt GmbH",
            "siren": None,
            "siret": None,
            "vat_number": "DE811907980",
            "electronic_addresses": [{"scheme": "9930", "id": "DE811907980"}],
            "email": "orders@schmidt.example.de",
            "currency": "EUR",
            "payment_terms": "NET30",
        }
    )
    return suppliers


def _purchase_orders(
    rng: random.Random, articles: list[dict[str, Any]], suppliers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    plan = ["open"] * 12 + ["confirmed"] * 3 + ["received"] * 2 + ["cancelled"] * 2
    orders = []
    for n, status in enumerate(plan, start=1):
        supplier = suppliers[(n - 1) % len(suppliers)]
        chosen = rng.sample(articles, rng.randint(2, 5))
        lines = []
        net = Decimal(0)
        for i, article in enumerate(chosen, start=1):
            qty = Decimal(rng.choice([10, 20, 24, 50, 100, 250]))
            price = (Decimal(article["sale_price"]) * Decimal("0.55")).quantize(Decimal("0.01"))
            net += (qty * price).quantize(Decimal("0.01"))
            delivery = f"2026-12-{rng.randint(1, 28):02d}"
            confirmed = status in ("confirmed", "received")
            lines.append(
                {
                    "line_number": i,
                    "article_code": article["code"],
                    "supplier_article_code": f"{supplier['code'][-3:]}-{rng.randint(1000, 9999)}",
                    "quantity": quantity_text(qty),
                    "unit_price": money(price),
                    "delivery_date": delivery,
                    "status": "accepted" if confirmed else "pending",
                    "confirmed_quantity": quantity_text(qty) if confirmed else None,
                    "confirmed_unit_price": money(price) if confirmed else None,
                    "confirmed_delivery_date": delivery if confirmed else None,
                }
            )
        vat = (net * Decimal("0.20")).quantize(Decimal("0.01"))
        orders.append(
            {
                "number": f"PO-2026-{n:04d}",
                "supplier_code": supplier["code"],
                "order_date": f"2026-11-{rng.randint(1, 20):02d}",
                "status": status,
                "currency": "EUR",
                "supplier_reference": f"AR-{rng.randint(10000, 99999)}"
                if status in ("confirmed", "received")
                else None,
                "lines": lines,
                "totals": {"net": money(net), "vat": money(vat), "gross": money(net + vat)},
            }
        )
    return orders


def _supplier_invoices(
    purchase_orders: list[dict[str, Any]], suppliers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Registered invoices for the received purchase orders, in the contract's stored shape."""
    by_code = {s["code"]: s for s in suppliers}
    invoices = []
    received = [po for po in purchase_orders if po["status"] == "received"]
    for n, po in enumerate(received, start=1):
        lines = []
        base = Decimal(0)
        for line in po["lines"]:
            net = (Decimal(line["quantity"]) * Decimal(line["unit_price"])).quantize(
                Decimal("0.01")
            )
            base += net
            lines.append(
                {
                    "id": str(line["line_number"]),
                    "description": f"Article {line['supplier_article_code']}",
                    "article_code": line["article_code"],
                    "seller_item_id": line["supplier_article_code"],
                    "quantity": line["quantity"],
                    "unit": "C62",
                    "unit_price": line["unit_price"],
                    "net_amount": money(net),
                    "vat_category": "S",
                    "vat_rate": "20.00",
                }
            )
        vat = (base * Decimal("0.20")).quantize(Decimal("0.01"))
        supplier = by_code[po["supplier_code"]]
        seller = {"name": supplier["name"]}
        seller.update({k: supplier[k] for k in ("siren", "siret", "vat_number") if supplier[k]})
        invoices.append(
            {
                "id": f"FF-{n:06d}",
                "supplier_code": po["supplier_code"],
                "document_type": "invoice",
                "type_code": "380",
                "number": f"F2026-{700 + n}",
                "issue_date": "2026-11-15",
                "due_date": "2026-12-15",
                "tax_point_date": None,
                "delivery_date": None,
                "period": None,
                "currency": "EUR",
                "profile": None,
                "seller": seller,
                "buyer": None,
                "buyer_reference": None,
                "order_reference": po["number"],
                "linked_purchase_order": po["number"],
                "sales_order_reference": None,
                "contract_reference": None,
                "project_reference": None,
                "receiving_advice_reference": None,
                "despatch_advice_reference": None,
                "buyer_accounting_reference": None,
                "purchase_orders": [po["number"]],
                "preceding_invoices": [],
                "notes": [],
                "header_only": False,
                "lines": lines,
                "allowances": [],
                "charges": [],
                "vat_breakdown": [
                    {"category": "S", "rate": "20.00", "base": money(base), "amount": money(vat)}
                ],
                "totals": {
                    "lines": money(base),
                    "allowances": None,
                    "charges": None,
                    "net": money(base),
                    "vat": money(vat),
                    "vat_accounting_currency": None,
                    "gross": money(base + vat),
                    "prepaid": None,
                    "rounding": None,
                    "payable": money(base + vat),
                },
                "payment": {"terms": "30 jours date de facture", "means_code": "58"},
                "attachment": None,
                "status": "registered",
                "status_reason": None,
            }
        )
    return invoices


def _delivery_notes(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    notes = []
    shipped = [o for o in orders if o["status"] in ("shipped", "delivered", "invoiced")]
    for n, order in enumerate(shipped, start=1):
        carrier = CARRIERS[n % len(CARRIERS)]["code"]
        notes.append(
            {
                "number": f"BL-{n:06d}",
                "order_number": order["number"],
                "carrier_code": carrier,
                "booking_reference": f"{carrier[:3]}-RDV-{40000 + n}",
                "appointment_date": order["order_date"][:8] + "28",
                "slot_start": "08:00",
                "slot_end": "12:00",
                "handling_units": 1 + n % 3,
                "lines": [
                    {
                        "line_number": line["line_number"],
                        "article_code": line["article_code"],
                        "quantity": line["quantity"],
                    }
                    for line in order["lines"]
                ],
            }
        )
    return notes


def generate() -> dict[str, Any]:
    """The seed, identical on every call."""
    rng = random.Random(RANDOM_SEED)
    articles = _articles(rng)
    customers = _customers(rng)
    suppliers = _suppliers(rng)
    quotes = _quotes(rng, articles, customers)
    orders = _orders(rng, articles, customers)
    purchase_orders = _purchase_orders(rng, articles, suppliers)
    return {
        "version": SEED_VERSION,
        "warehouses": WAREHOUSES,
        "carriers": CARRIERS,
        "payment_methods": PAYMENT_METHODS,
        "articles": articles,
        "stock": _stock(rng, articles),
        "customers": customers,
        "suppliers": [*suppliers, *EINVOICE_SUPPLIERS],
        "quotes": quotes,
        "orders": orders,
        "delivery_notes": _delivery_notes(orders),
        "purchase_orders": purchase_orders,
        "supplier_invoices": _supplier_invoices(purchase_orders, suppliers),
    }


def render() -> str:
    """The seed as the JSON text written to ``samples/sandbox-seed.json``."""
    return json.dumps(generate(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the seed to the path given (default: ``samples/sandbox-seed.json``)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path("samples/sandbox-seed.json")
    target.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
