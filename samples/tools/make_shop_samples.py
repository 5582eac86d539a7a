"""Write the web-shop order exports of samples/ecommerce/ (Shopify, WooCommerce, PrestaShop).

    python samples/tools/make_shop_samples.py

The samples are ours (written for edigw, not copied from a shop): twelve orders of French
customers in EUR, laid out as each platform's export lays them out (see the mappings for where
each layout comes from). Prices are the shops' own, incl. VAT, as French web shops show them;
every amount a shop writes (line totals, taxes, discounts, shipping, the order total) is
computed here with ``Decimal`` the way the platform computes it, so that the totals are the
shop's. The articles are the sandbox seed's (the SKU is the Ecolix article code), their VAT
rates the seed's.

The same orders go into the three files: paid ones with shipping and discounts (a coupon on the
whole order, a returning customer, a customer's note, a billing address apart from the delivery
address), a partly refunded one, a cancelled one, an unpaid one and a fully refunded one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "samples" / "sandbox-seed.json"
OUT = ROOT / "samples" / "ecommerce"
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def net_of(gross: Decimal, rate: Decimal) -> Decimal:
    return cents(gross / (1 + rate / 100))


@dataclass(frozen=True)
class Customer:
    first: str
    last: str
    email: str
    phone: str
    street: str
    postcode: str
    city: str
    company: str = ""
    #: a delivery address apart from the billing one: (name, street, postcode, city)
    ship_to: tuple[str, str, str, str] | None = None
    woo_id: int = 0  # 0: a guest checkout
    ps_id: int = 0


@dataclass
class Order:
    customer: Customer
    created: str  # local time, Europe/Paris, November (+01:00)
    lines: list[tuple[str, int]]  # (article code, quantity)
    shipping: tuple[str, Decimal]  # (method, amount incl. VAT)
    pay: str  # card, paypal, transfer
    state: str = "paid"  # paid, cancelled, pending, refunded, partially_refunded
    coupon: tuple[str, Decimal | None, Decimal | None] | None = None  # (code, amount, percent)
    note: str = ""
    refunded: Decimal = Decimal(0)
    # computed
    gross_lines: list[Decimal] = field(default_factory=list)
    shares: list[Decimal] = field(default_factory=list)


ALICE = Customer(
    "Jeanne",
    "Martin",
    "jeanne.martin@orange.fr",
    "+33 6 12 34 56 78",
    "12 rue Sommeiller",
    "74000",
    "Annecy",
    woo_id=1042,
    ps_id=311,
)
JARDINS = Customer(
    "Paul",
    "Giraud",
    "p.giraud@jardins-provence.fr",
    "+33 4 42 27 00 15",
    "5 cours Mirabeau",
    "13100",
    "Aix-en-Provence",
    company="Les Jardins de Provence",
    ship_to=("Les Jardins de Provence - Dépôt", "ZA du Pont de l'Arc, 220 rue Ampère", "13090",
             "Aix-en-Provence"),
    woo_id=1043,
    ps_id=312,
)
LUCAS = Customer(
    "Lucas", "Bernard", "lucas.bernard@free.fr", "+33 6 45 10 22 87", "8 place Bellecour",
    "69002", "Lyon", woo_id=0, ps_id=313,
)
CAMILLE = Customer(
    "Camille", "Lefèvre", "camille.lefevre@laposte.net", "+33 7 81 02 44 19",
    "27 rue de la Monnaie", "59800", "Lille", woo_id=1045, ps_id=314,
)
HUGO = Customer(
    "Hugo", "Moreau", "hugo.moreau@gmail.com", "+33 6 70 33 91 04", "3 allée des Tilleuls",
    "35000", "Rennes", woo_id=1046, ps_id=315,
)
CHLOE = Customer(
    "Chloé", "Dubois", "chloe.dubois@sfr.fr", "+33 6 28 75 60 11", "41 quai des Chartrons",
    "33000", "Bordeaux", woo_id=0, ps_id=316,
)
NATHAN = Customer(
    "Nathan", "Roux", "nathan.roux@outlook.fr", "+33 6 03 58 47 92", "16 rue d'Alsace-Lorraine",
    "31000", "Toulouse", woo_id=1048, ps_id=317,
)
EMMA = Customer(
    "Emma", "Fontaine", "emma.fontaine@wanadoo.fr", "+33 4 95 21 48 30", "9 boulevard Paoli",
    "20000", "Ajaccio", woo_id=1049, ps_id=318,
    ship_to=("Emma Fontaine (chez M. Santoni)", "Lieu-dit Campo dell'Oro", "20090", "Ajaccio"),
)
INES = Customer(
    "Inès", "Garnier", "ines.garnier@yahoo.fr", "+33 6 99 14 72 35", "2 rue Kléber",
    "67000", "Strasbourg", woo_id=1050, ps_id=319,
)
THEO = Customer(
    "Théo", "Chevalier", "theo.chevalier@orange.fr", "+33 2 40 48 12 90",
    "33 rue Crébillon", "44000", "Nantes", woo_id=1051, ps_id=320,
)

COLISSIMO = "Colissimo Domicile"
RELAY = "Mondial Relay - Point Relais"
CHRONO = "Chronopost 13h"

ORDERS = [
    Order(ALICE, "2026-11-28 09:14:52", [("ART-0007", 2), ("ART-0014", 1), ("ART-0028", 3)],
          (COLISSIMO, Decimal("6.90")), "card"),
    Order(JARDINS, "2026-11-28 09:47:05", [("ART-0003", 2), ("ART-0017", 4)],
          (CHRONO, Decimal("14.90")), "transfer",
          coupon=("PRO10", None, Decimal("10"))),
    Order(LUCAS, "2026-11-28 10:02:31", [("ART-0009", 1), ("ART-0043", 6)],
          (RELAY, Decimal("4.95")), "paypal", note="Merci de ne pas plier le colis."),
    Order(CAMILLE, "2026-11-28 10:26:44", [("ART-0012", 2)], (COLISSIMO, Decimal("6.90")),
          "card", state="cancelled"),
    Order(HUGO, "2026-11-28 11:08:19", [("ART-0033", 2), ("ART-0032", 1)],
          (RELAY, Decimal("4.95")), "transfer", state="pending"),
    Order(CHLOE, "2026-11-28 11:41:57",
          [("ART-0021", 1), ("ART-0042", 2), ("ART-0045", 1), ("ART-0029", 1)],
          (COLISSIMO, Decimal("8.90")), "card",
          coupon=("BIENVENUE5", Decimal("5.00"), None),
          note="Livrer chez la gardienne si absente, code porte 4512."),
    Order(NATHAN, "2026-11-28 13:22:08", [("ART-0040", 1), ("ART-0019", 2)],
          (COLISSIMO, Decimal("6.90")), "card", state="partially_refunded",
          refunded=Decimal("49.16")),
    Order(ALICE, "2026-11-28 14:03:11", [("ART-0035", 1)], ("Livraison offerte", Decimal("0")),
          "card", coupon=("NOEL15", None, Decimal("15"))),
    Order(EMMA, "2026-11-28 15:30:46", [("ART-0010", 1), ("ART-0031", 1), ("ART-0013", 2)],
          (CHRONO, Decimal("19.90")), "paypal"),
    Order(INES, "2026-11-28 16:12:23", [("ART-0023", 3)], (RELAY, Decimal("4.95")), "card",
          state="refunded"),
    Order(THEO, "2026-11-28 17:55:02", [("ART-0030", 1), ("ART-0005", 2), ("ART-0036", 1)],
          (COLISSIMO, Decimal("6.90")), "card", coupon=("LIVRAISON", Decimal("12.00"), None)),
    Order(LUCAS, "2026-11-28 18:40:37", [("ART-0038", 1), ("ART-0024", 1)],
          (CHRONO, Decimal("14.90")), "card"),
]


def load_articles() -> dict[str, dict[str, str]]:
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    return {a["code"]: a for a in seed["articles"]}


def spread(total: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """The contract's spread (edigw/sandbox/order_pricing.py), as the shops allocate too."""
    whole = sum(amounts, Decimal(0))
    if total == 0 or whole == 0:
        return [Decimal(0)] * len(amounts)
    largest = max(range(len(amounts)), key=lambda i: (amounts[i], -i))
    shares = [Decimal(0) if i == largest else cents(total * a / whole) for i, a in
              enumerate(amounts)]
    shares[largest] = total - sum(shares, Decimal(0))
    return shares


class Priced:
    """An order's amounts as a shop computes them, prices incl. VAT."""

    def __init__(self, order: Order, articles: dict[str, dict[str, str]]) -> None:
        self.order = order
        self.rates = [Decimal(articles[c]["vat_rate"]) for c, _ in order.lines]
        self.prices = [
            cents(Decimal(articles[c]["sale_price"]) * (1 + r / 100))
            for (c, _), r in zip(order.lines, self.rates, strict=True)
        ]
        self.labels = [articles[c]["label"] for c, _ in order.lines]
        self.gross = [p * q for p, (_, q) in zip(self.prices, order.lines, strict=True)]
        self.subtotal_before = sum(self.gross, Decimal(0))
        discount = Decimal(0)
        if order.coupon:
            _, amount, percent = order.coupon
            discount = amount if amount is not None else cents(self.subtotal_before * percent / 100)
        self.discount = discount
        self.shares = spread(discount, self.gross)
        self.after = [g - s for g, s in zip(self.gross, self.shares, strict=True)]
        self.line_tax = [a - net_of(a, r) for a, r in zip(self.after, self.rates, strict=True)]
        self.shipping = order.shipping[1]
        self.shipping_tax = self.shipping - net_of(self.shipping, Decimal(20))
        self.subtotal = self.subtotal_before - discount
        self.taxes = sum(self.line_tax, Decimal(0)) + self.shipping_tax
        self.total = self.subtotal + self.shipping


def refunded_of(order: Order, p: Priced) -> Decimal:
    """What the shop paid back: all of a cancelled or refunded order, or the part refunded."""
    return p.total if order.state in ("cancelled", "refunded") else order.refunded


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]], *, delimiter: str = ",",
              bom: bool = False, encoding: str = "utf-8") -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, delimiter=delimiter, lineterminator="\r\n",
                            extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


# --------------------------------------------------------------------------- Shopify

SHOPIFY_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Accepts Marketing", "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code",
    "Discount Amount", "Shipping Method", "Created at", "Lineitem quantity", "Lineitem name",
    "Lineitem price", "Lineitem compare at price", "Lineitem sku", "Lineitem requires shipping",
    "Lineitem taxable", "Lineitem fulfillment status", "Billing Name", "Billing Street",
    "Billing Address1", "Billing Address2", "Billing Company", "Billing City", "Billing Zip",
    "Billing Province", "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City",
    "Shipping Zip", "Shipping Province", "Shipping Country", "Shipping Phone", "Notes",
    "Note Attributes", "Cancelled at", "Payment Method", "Payment Reference", "Refunded Amount",
    "Vendor", "Outstanding Balance", "Employee", "Location", "Device ID", "Id", "Tags",
    "Risk Level", "Source", "Lineitem discount", "Tax 1 Name", "Tax 1 Value", "Tax 2 Name",
    "Tax 2 Value", "Tax 3 Name", "Tax 3 Value", "Tax 4 Name", "Tax 4 Value", "Tax 5 Name",
    "Tax 5 Value", "Phone", "Receipt Number", "Duties", "Billing Province Name",
    "Shipping Province Name", "Payment ID", "Payment Terms Name", "Next Payment Due At",
    "Payment References",
]
SHOPIFY_PAY = {"card": "Shopify Payments", "paypal": "PayPal Express Checkout",
               "transfer": "Virement bancaire"}


def rate_name(rate: Decimal) -> str:
    return f"TVA {rate.normalize():f}".replace(".", ",") + " %"


def shopify(articles: dict[str, dict[str, str]]) -> None:
    rows = []
    for n, order in enumerate(ORDERS, start=1):
        p = Priced(order, articles)
        c = order.customer
        name = f"#{1100 + n}"
        created = f"2026-11-28 {order.created[11:]} +0100"
        paid = order.state in ("paid", "partially_refunded", "refunded", "cancelled")
        financial = {"paid": "paid", "cancelled": "refunded", "pending": "pending",
                     "refunded": "refunded", "partially_refunded": "partially_refunded"}
        refunded = refunded_of(order, p)
        taxes: dict[Decimal, Decimal] = {}
        for rate, tax in zip(p.rates, p.line_tax, strict=True):
            taxes[rate] = taxes.get(rate, Decimal(0)) + tax
        taxes[Decimal(20)] = taxes.get(Decimal(20), Decimal(0)) + p.shipping_tax
        tax_cols: dict[str, str] = {}
        for i, (rate, value) in enumerate(sorted(taxes.items(), reverse=True), start=1):
            tax_cols[f"Tax {i} Name"] = rate_name(rate)
            tax_cols[f"Tax {i} Value"] = str(value)
        ship = c.ship_to or (f"{c.first} {c.last}", c.street, c.postcode, c.city)
        for i, ((code, qty), price, share) in enumerate(
            zip(order.lines, p.prices, p.shares, strict=True)
        ):
            row = dict.fromkeys(SHOPIFY_HEADER, "")
            row.update({
                "Name": name, "Email": c.email, "Created at": created,
                "Lineitem quantity": str(qty), "Lineitem name": p.labels[i],
                "Lineitem price": str(price), "Lineitem sku": code,
                "Lineitem requires shipping": "true", "Lineitem taxable": "true",
                "Lineitem fulfillment status": "pending", "Vendor": "Quincaillerie du Lac",
                "Lineitem discount": str(share),
            })
            if i == 0:  # Shopify writes the order's own columns on its first row only
                row.update({
                    "Financial Status": financial[order.state],
                    "Paid at": created if paid else "",
                    "Fulfillment Status": "unfulfilled",
                    "Accepts Marketing": "no", "Currency": "EUR",
                    "Subtotal": str(p.subtotal), "Shipping": str(p.shipping),
                    "Taxes": str(cents(p.taxes)), "Total": str(p.total),
                    "Discount Code": order.coupon[0] if order.coupon else "",
                    "Discount Amount": str(p.discount), "Shipping Method": order.shipping[0],
                    "Billing Name": f"{c.first} {c.last}", "Billing Street": c.street,
                    "Billing Address1": c.street, "Billing Company": c.company,
                    "Billing City": c.city, "Billing Zip": c.postcode, "Billing Country": "FR",
                    "Billing Phone": c.phone, "Shipping Name": ship[0], "Shipping Street": ship[1],
                    "Shipping Address1": ship[1], "Shipping Company": c.company,
                    "Shipping City": ship[3], "Shipping Zip": ship[2], "Shipping Country": "FR",
                    "Shipping Phone": c.phone, "Notes": order.note,
                    "Cancelled at": (f"2026-11-28 {order.created[11:13]}:59:00 +0100"
                                     if order.state == "cancelled" else ""),
                    "Payment Method": SHOPIFY_PAY[order.pay],
                    "Payment Reference": f"c3104588{n:04d}.1" if paid else "",
                    "Refunded Amount": str(refunded),
                    "Outstanding Balance": "0.00" if paid else str(p.total),
                    "Id": str(5719382016000 + n * 7919), "Risk Level": "Low", "Source": "web",
                    "Payment ID": f"rX{n:03d}k2PqTz8vW1mB" if paid else "",
                    "Payment References": f"rX{n:03d}k2PqTz8vW1mB" if paid else "",
                    **tax_cols,
                })
            rows.append(row)
    write_csv(OUT / "shopify-orders-csv" / "orders_export_1.csv", SHOPIFY_HEADER, rows)


# --------------------------------------------------------------------------- WooCommerce

WOO_HEADER = [
    "order_id", "order_number", "date", "status", "shipping_total", "shipping_tax_total",
    "fee_total", "fee_tax_total", "tax_total", "discount_total", "order_total", "refunded_total",
    "order_currency", "payment_method", "shipping_method", "customer_id", "billing_first_name",
    "billing_last_name", "billing_company", "billing_email", "billing_phone",
    "billing_address_1", "billing_address_2", "billing_postcode", "billing_city",
    "billing_state", "billing_country", "shipping_first_name", "shipping_last_name",
    "shipping_company", "shipping_address_1", "shipping_address_2", "shipping_postcode",
    "shipping_city", "shipping_state", "shipping_country", "customer_note", "item_id",
    "item_product_id", "item_name", "item_sku", "item_quantity", "item_subtotal",
    "item_subtotal_tax", "item_total", "item_total_tax", "item_refunded", "item_refunded_qty",
    "item_meta", "shipping_items", "fee_items", "tax_items", "coupon_items", "order_notes",
    "download_permissions_granted", "transaction_id", "date_paid",
]
WOO_PAY = {"card": "stripe", "paypal": "ppcp-gateway", "transfer": "bacs"}
WOO_STATUS = {"paid": "processing", "cancelled": "cancelled", "pending": "on-hold",
              "refunded": "refunded", "partially_refunded": "completed"}


def woocommerce(articles: dict[str, dict[str, str]]) -> None:
    rows = []
    for n, order in enumerate(ORDERS, start=1):
        p = Priced(order, articles)
        c = order.customer
        number = str(4810 + n)
        paid = order.state not in ("pending",)
        ship_net = p.shipping - p.shipping_tax
        discount_net = sum(
            (s - (s - net_of(s, r)) for s, r in zip(p.shares, p.rates, strict=True)),
            Decimal(0),
        )
        ship = c.ship_to or (f"{c.first} {c.last}", c.street, c.postcode, c.city)
        ship_first, _, ship_last = ship[0].partition(" ")
        for i, ((code, qty), gross, after, rate) in enumerate(
            zip(order.lines, p.gross, p.after, p.rates, strict=True)
        ):
            sub_net, total_net = net_of(gross, rate), net_of(after, rate)
            rows.append({
                "order_id": str(9200 + n), "order_number": number,
                "date": order.created, "status": WOO_STATUS[order.state],
                "shipping_total": str(ship_net), "shipping_tax_total": str(p.shipping_tax),
                "fee_total": "0.00", "fee_tax_total": "0.00", "tax_total": str(cents(p.taxes)),
                "discount_total": str(cents(discount_net)), "order_total": str(p.total),
                "refunded_total": str(refunded_of(order, p)), "order_currency": "EUR",
                "payment_method": WOO_PAY[order.pay], "shipping_method": order.shipping[0],
                "customer_id": str(c.woo_id), "billing_first_name": c.first,
                "billing_last_name": c.last, "billing_company": c.company,
                "billing_email": c.email, "billing_phone": c.phone,
                "billing_address_1": c.street, "billing_address_2": "",
                "billing_postcode": c.postcode, "billing_city": c.city, "billing_state": "",
                "billing_country": "FR", "shipping_first_name": ship_first,
                "shipping_last_name": ship_last, "shipping_company": c.company,
                "shipping_address_1": ship[1], "shipping_address_2": "",
                "shipping_postcode": ship[2], "shipping_city": ship[3], "shipping_state": "",
                "shipping_country": "FR", "customer_note": order.note,
                "item_id": str(31000 + n * 10 + i), "item_product_id": str(700 + int(code[4:])),
                "item_name": p.labels[i], "item_sku": code, "item_quantity": str(qty),
                "item_subtotal": str(sub_net), "item_subtotal_tax": str(gross - sub_net),
                "item_total": str(total_net), "item_total_tax": str(after - total_net),
                "item_refunded": "0.00", "item_refunded_qty": "0", "item_meta": "",
                "shipping_items": f"method:{order.shipping[0]}|total:{ship_net}",
                "fee_items": "", "tax_items": "",
                "coupon_items": (f"code:{order.coupon[0].lower()}|amount:{cents(discount_net)}"
                                 if order.coupon else ""),
                "order_notes": "", "download_permissions_granted": "1" if paid else "0",
                "transaction_id": f"pi_3QxR{n:02d}Lk8vT2mZ9w" if paid else "",
                "date_paid": order.created if paid else "",
            })
    write_csv(OUT / "woocommerce-orders-csv" / "orders-export-2026_11_28-19_00_04.csv",
              WOO_HEADER, rows)


# --------------------------------------------------------------------------- PrestaShop

PS_HEADER = [
    "id_order", "reference", "date_add", "order_state", "payment", "module", "transaction_id",
    "payment_date", "id_currency_iso", "total_products_wt", "total_discounts_tax_incl",
    "total_shipping_tax_incl", "carrier_tax_rate", "carrier", "total_paid_tax_incl",
    "total_paid_real", "id_customer", "email", "invoice_company", "invoice_firstname",
    "invoice_lastname", "invoice_address1", "invoice_address2", "invoice_postcode",
    "invoice_city", "invoice_country_iso", "invoice_phone", "delivery_company",
    "delivery_firstname", "delivery_lastname", "delivery_address1", "delivery_address2",
    "delivery_postcode", "delivery_city", "delivery_country_iso", "delivery_phone",
    "customer_message", "product_reference", "product_name", "product_quantity",
    "unit_price_tax_incl", "total_price_tax_incl", "tax_rate",
]
PS_STATE = {"paid": "Paiement accepté", "cancelled": "Annulé",
            "pending": "En attente de virement bancaire", "refunded": "Remboursé",
            "partially_refunded": "Livré"}
PS_PAY = {"card": ("Carte bancaire", "ps_checkout"), "paypal": ("PayPal", "paypal"),
          "transfer": ("Virement bancaire", "ps_wirepayment")}


def prestashop(articles: dict[str, dict[str, str]]) -> None:
    rows = []
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    for n, order in enumerate(ORDERS, start=1):
        p = Priced(order, articles)
        c = order.customer
        paid = order.state != "pending"
        reference = "".join(letters[(n * 7 + k * 5) % len(letters)] for k in range(9))
        ship = c.ship_to or (f"{c.first} {c.last}", c.street, c.postcode, c.city)
        ship_first, _, ship_last = ship[0].partition(" ")
        for i, ((code, qty), price, gross) in enumerate(
            zip(order.lines, p.prices, p.gross, strict=True)
        ):
            rows.append({
                "id_order": str(1200 + n), "reference": reference,
                "date_add": order.created, "order_state": PS_STATE[order.state],
                "payment": PS_PAY[order.pay][0], "module": PS_PAY[order.pay][1],
                "transaction_id": f"PSX-{20261128}-{n:04d}" if paid else "",
                "payment_date": order.created if paid else "", "id_currency_iso": "EUR",
                "total_products_wt": str(p.subtotal_before),
                "total_discounts_tax_incl": str(p.discount),
                "total_shipping_tax_incl": str(p.shipping), "carrier_tax_rate": "20.000",
                "carrier": order.shipping[0], "total_paid_tax_incl": str(p.total),
                "total_paid_real": str(p.total) if paid else "0.00",
                "id_customer": str(c.ps_id), "email": c.email,
                "invoice_company": c.company, "invoice_firstname": c.first,
                "invoice_lastname": c.last, "invoice_address1": c.street,
                "invoice_address2": "", "invoice_postcode": c.postcode,
                "invoice_city": c.city, "invoice_country_iso": "FR", "invoice_phone": c.phone,
                "delivery_company": c.company, "delivery_firstname": ship_first,
                "delivery_lastname": ship_last, "delivery_address1": ship[1],
                "delivery_address2": "", "delivery_postcode": ship[2], "delivery_city": ship[3],
                "delivery_country_iso": "FR", "delivery_phone": c.phone,
                "customer_message": order.note, "product_reference": code,
                "product_name": p.labels[i], "product_quantity": str(qty),
                "unit_price_tax_incl": f"{price:.6f}", "total_price_tax_incl": f"{gross:.6f}",
                "tax_rate": f"{p.rates[i]:.3f}",
            })
    write_csv(OUT / "prestashop-orders-csv" / "request_sql_7.csv", PS_HEADER, rows,
              delimiter=";", bom=True)


def main() -> None:
    articles = load_articles()
    shopify(articles)
    woocommerce(articles)
    prestashop(articles)


if __name__ == "__main__":
    main()
