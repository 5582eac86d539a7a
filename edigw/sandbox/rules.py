"""Business rules of the five Ecolix packages, as pure functions over plain dicts.

The sandbox's HTTP layer looks objects up and stores results; everything Ecolix *decides*
(prices and totals, what a delivery may still cover, whether an invoice adds up) lives here,
free of I/O, so each rule can be read and tested on its own. A refusal is a
``BusinessRuleError`` carrying the HTTP status and the fields at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
TOLERANCE = Decimal("0.01")  # suppliers round per line or per rate: one cent of slack

PROBLEM_BASE = "https://ecolix.example/problems/"


@dataclass(frozen=True, slots=True)
class Pointed:
    """A JSON pointer into the request body and what is wrong there."""

    pointer: str
    message: str


@dataclass(slots=True)
class BusinessRuleError(Exception):
    """Ecolix refuses the request: 422 (rule broken), 409 (duplicate or state), 404."""

    status: int
    kind: str
    title: str
    errors: list[Pointed] = field(default_factory=list)
    detail: str = ""
    existing_id: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.title)

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document."""
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status,
        }
        doc["detail"] = self.detail or "; ".join(
            f"{e.pointer or '/'}: {e.message}" for e in self.errors
        )
        if self.errors:
            doc["errors"] = [{"pointer": e.pointer, "message": e.message} for e in self.errors]
        if self.existing_id is not None:
            doc["existing_id"] = self.existing_id
        return doc


def rule_broken(
    errors: Sequence[Pointed], title: str = "Business rule violated"
) -> BusinessRuleError:
    """422 with the fields at fault."""
    return BusinessRuleError(422, "business-rule", title, list(errors))


def invalid_state(title: str, pointer: str = "") -> BusinessRuleError:
    """409: the object is in a state that forbids the operation."""
    return BusinessRuleError(409, "invalid-state", title, [Pointed(pointer, title)])


def duplicate(title: str, existing_id: str, pointer: str = "") -> BusinessRuleError:
    """409: the same business object is already registered."""
    return BusinessRuleError(
        409, "duplicate", title, [Pointed(pointer, title)], existing_id=existing_id
    )


# --------------------------------------------------------------------------- numbers


def dec(text: str | int | Decimal) -> Decimal:
    """A Decimal from a contract decimal string."""
    return Decimal(text)


def money(value: Decimal) -> str:
    """An amount rounded half-up to the cent, as a string (``"12.50"``)."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def price_text(value: Decimal) -> str:
    """A unit price: at least two decimals, up to four (``"12.50"``, ``"0.0125"``)."""
    if value == value.quantize(CENT):
        return money(value)
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize())


def quantity_text(value: Decimal) -> str:
    """A quantity without trailing zeros or exponent (``"2"``, ``"2.5"``)."""
    text = f"{value.normalize():f}"
    return text


def rate_text(value: Decimal) -> str:
    """A VAT rate with two decimals (``"5.50"``)."""
    return money(value)


# --------------------------------------------------------------------------- orders


def price_lines(
    lines: Sequence[Mapping[str, Any]], articles: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Price order lines from the catalogue: (priced lines, totals).

    A line's ``unit_price`` (excl. VAT) wins over the catalogue price; its VAT is the
    article's rate, each line rounded to the cent; the totals are the sums of the lines.
    Unknown or inactive articles and zero quantities are refused, every one reported.
    """
    problems: list[Pointed] = []
    priced: list[dict[str, Any]] = []
    net_total = vat_total = Decimal(0)
    for i, line in enumerate(lines):
        code = line["article_code"]
        article = articles.get(code)
        if article is None:
            problems.append(Pointed(f"/lines/{i}/article_code", f"unknown article {code!r}"))
            continue
        if not article.get("active", True):
            problems.append(
                Pointed(f"/lines/{i}/article_code", f"article {code!r} is no longer sold")
            )
            continue
        quantity = dec(line["quantity"])
        if quantity <= 0:
            problems.append(Pointed(f"/lines/{i}/quantity", "quantity must be greater than 0"))
            continue
        unit_price = dec(line.get("unit_price") or article["sale_price"])
        rate = dec(article["vat_rate"])
        net = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        vat = (net * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        net_total += net
        vat_total += vat
        priced.append(
            {
                "line_number": len(priced) + 1,
                "article_code": code,
                "label": article["label"],
                "quantity": quantity_text(quantity),
                "unit_price": price_text(unit_price),
                "vat_rate": rate_text(rate),
                "net_amount": money(net),
                "vat_amount": money(vat),
                "delivered_quantity": "0",
            }
        )
    if problems:
        raise rule_broken(problems, "Order lines refer to articles Ecolix cannot sell")
    totals = {
        "net": money(net_total),
        "vat": money(vat_total),
        "gross": money(net_total + vat_total),
    }
    return priced, totals


def build_order(
    body: Mapping[str, Any],
    *,
    number: str,
    customer: Mapping[str, Any] | None,
    articles: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The order Ecolix records for an ``orders.create`` body (status ``received``)."""
    if customer is None:
        raise rule_broken(
            [Pointed("/customer_code", f"unknown customer {body['customer_code']!r}")],
            "Unknown customer",
        )
    lines, totals = price_lines(body["lines"], articles)
    payment = dict(body["payment"])
    if dec(payment["amount"]) != dec(totals["gross"]):
        raise rule_broken(
            [
                Pointed(
                    "/payment/amount",
                    f"payment {payment['amount']} does not match the order total incl. VAT "
                    f"{totals['gross']}",
                )
            ],
            "Payment does not match the order total",
        )
    payment["amount"] = money(dec(payment["amount"]))
    return {
        "number": number,
        "customer_code": customer["code"],
        "external_reference": body["external_reference"],
        "order_date": body["order_date"],
        "status": "received",
        "lines": lines,
        "delivery_address": body.get("delivery_address"),
        "payment": payment,
        "totals": totals,
        "quote_number": None,
    }


# --------------------------------------------------------------------------- quotes


def order_from_quote(
    quote: Mapping[str, Any],
    body: Mapping[str, Any],
    *,
    number: str,
    today: date,
    articles: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The order a validated quote becomes, at the quote's prices.

    Refused with 409 when the quote is not open or its validity date is past.
    """
    if quote["status"] != "open":
        msg = f"quote {quote['number']} is {quote['status']}, not open"
        raise invalid_state(msg)
    if date.fromisoformat(quote["valid_until"]) < today:
        msg = f"quote {quote['number']} expired on {quote['valid_until']}"
        raise invalid_state(msg, "/number")
    lines, totals = price_lines(
        [
            {
                "article_code": line["article_code"],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
            }
            for line in quote["lines"]
        ],
        {code: {**a, "active": True} for code, a in articles.items()},
    )
    return {
        "number": number,
        "customer_code": quote["customer_code"],
        "external_reference": body.get("customer_reference"),
        "order_date": today.isoformat(),
        "status": "received",
        "lines": lines,
        "delivery_address": None,
        "payment": None,
        "totals": totals,
        "quote_number": quote["number"],
    }


# --------------------------------------------------------------------------- carriers


def remaining_quantities(order: Mapping[str, Any]) -> dict[int, Decimal]:
    """What is left to deliver per order line number."""
    return {
        line["line_number"]: dec(line["quantity"]) - dec(line["delivered_quantity"])
        for line in order["lines"]
    }


def build_delivery_note(
    body: Mapping[str, Any],
    *,
    number: str,
    order: Mapping[str, Any] | None,
    carrier_known: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(delivery note, order with the delivered quantities updated).

    Without ``lines`` the note covers everything that remains. Refused: unknown order or
    carrier, a time slot ending before it starts, lines that match no order line, quantities
    above what remains (422); a cancelled or fully delivered order (409).
    """
    problems: list[Pointed] = []
    if not carrier_known:
        problems.append(Pointed("/carrier_code", f"unknown carrier {body['carrier_code']!r}"))
    if body["slot_end"] <= body["slot_start"]:
        problems.append(Pointed("/slot_end", "the time slot must end after it starts"))
    if order is None:
        problems.append(Pointed("/order_number", f"unknown order {body['order_number']!r}"))
        raise rule_broken(problems, "Delivery note refused")
    if problems:
        raise rule_broken(problems, "Delivery note refused")
    if order["status"] == "cancelled":
        msg = f"order {order['number']} is cancelled"
        raise invalid_state(msg, "/order_number")
    remaining = remaining_quantities(order)
    if all(q <= 0 for q in remaining.values()):
        msg = f"order {order['number']} is already fully delivered"
        raise invalid_state(msg, "/order_number")
    by_number = {line["line_number"]: line for line in order["lines"]}
    by_article = {line["article_code"]: line for line in order["lines"]}
    wanted: dict[int, Decimal] = {}
    if "lines" not in body:
        wanted = {n: q for n, q in remaining.items() if q > 0}
    for i, line in enumerate(body.get("lines", [])):
        target = _order_line_for(line, i, by_number, by_article, problems)
        if target is None:
            continue
        quantity = dec(line["quantity"])
        if quantity <= 0:
            problems.append(Pointed(f"/lines/{i}/quantity", "quantity must be greater than 0"))
            continue
        n = target["line_number"]
        wanted[n] = wanted.get(n, Decimal(0)) + quantity
        if wanted[n] > remaining[n]:
            problems.append(
                Pointed(
                    f"/lines/{i}/quantity",
                    f"{quantity_text(wanted[n])} exceeds the {quantity_text(remaining[n])} "
                    f"left to deliver on line {n} ({target['article_code']})",
                )
            )
    if problems:
        raise rule_broken(problems, "Delivery note refused")
    new_lines = []
    for line in order["lines"]:
        delivered = dec(line["delivered_quantity"]) + wanted.get(line["line_number"], Decimal(0))
        new_lines.append({**line, "delivered_quantity": quantity_text(delivered)})
    note = {
        "number": number,
        "order_number": order["number"],
        "carrier_code": body["carrier_code"],
        "booking_reference": body["booking_reference"],
        "appointment_date": body["appointment_date"],
        "slot_start": body["slot_start"],
        "slot_end": body["slot_end"],
        "handling_units": body.get("handling_units"),
        "lines": [
            {
                "line_number": n,
                "article_code": by_number[n]["article_code"],
                "quantity": quantity_text(q),
            }
            for n, q in sorted(wanted.items())
        ],
    }
    return note, {**order, "lines": new_lines}


def _order_line_for(
    line: Mapping[str, Any],
    i: int,
    by_number: Mapping[int, Mapping[str, Any]],
    by_article: Mapping[str, Mapping[str, Any]],
    problems: list[Pointed],
) -> Mapping[str, Any] | None:
    if "line_number" in line:
        target = by_number.get(line["line_number"])
        if target is None:
            problems.append(
                Pointed(f"/lines/{i}/line_number", f"the order has no line {line['line_number']}")
            )
            return None
        if "article_code" in line and line["article_code"] != target["article_code"]:
            problems.append(
                Pointed(
                    f"/lines/{i}/article_code",
                    f"line {line['line_number']} is article {target['article_code']}, "
                    f"not {line['article_code']}",
                )
            )
            return None
        return target
    target = by_article.get(line["article_code"])
    if target is None:
        problems.append(
            Pointed(
                f"/lines/{i}/article_code", f"the order has no line for {line['article_code']!r}"
            )
        )
    return target


# --------------------------------------------------------------------------- suppliers


def confirm_purchase_order(po: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The purchase order with the supplier's confirmation applied line by line.

    ``accepted`` must repeat the ordered quantity and price, ``rejected`` confirms 0,
    ``changed`` may change quantity, price or date. Once no line is pending the purchase
    order is ``confirmed``.
    """
    if po["status"] in ("cancelled", "received"):
        msg = f"purchase order {po['number']} is {po['status']}"
        raise invalid_state(msg)
    by_number = {line["line_number"]: line for line in po["lines"]}
    problems: list[Pointed] = []
    updates: dict[int, dict[str, Any]] = {}
    for i, line in enumerate(body["lines"]):
        n = line["line_number"]
        target = by_number.get(n)
        if target is None:
            problems.append(
                Pointed(f"/lines/{i}/line_number", f"the purchase order has no line {n}")
            )
            continue
        if n in updates:
            problems.append(Pointed(f"/lines/{i}/line_number", f"line {n} is confirmed twice"))
            continue
        if "article_code" in line and line["article_code"] != target["article_code"]:
            problems.append(
                Pointed(
                    f"/lines/{i}/article_code",
                    f"line {n} is article {target['article_code']}, not {line['article_code']}",
                )
            )
            continue
        quantity, price = dec(line["confirmed_quantity"]), dec(line["unit_price"])
        if line["status"] == "accepted" and quantity != dec(target["quantity"]):
            problems.append(
                Pointed(
                    f"/lines/{i}/confirmed_quantity",
                    f"an accepted line confirms the ordered quantity {target['quantity']}; "
                    "use status 'changed'",
                )
            )
        if line["status"] == "accepted" and price != dec(target["unit_price"]):
            problems.append(
                Pointed(
                    f"/lines/{i}/unit_price",
                    f"an accepted line confirms the ordered price {target['unit_price']}; "
                    "use status 'changed'",
                )
            )
        if line["status"] == "rejected" and quantity != 0:
            problems.append(
                Pointed(f"/lines/{i}/confirmed_quantity", "a rejected line confirms quantity 0")
            )
        updates[n] = {
            "status": line["status"],
            "confirmed_quantity": quantity_text(quantity),
            "confirmed_unit_price": price_text(price),
            "confirmed_delivery_date": line["delivery_date"],
        }
    if problems:
        raise rule_broken(problems, "Purchase order confirmation refused")
    lines = [{**line, **updates.get(line["line_number"], {})} for line in po["lines"]]
    status = "confirmed" if all(line["status"] != "pending" for line in lines) else "open"
    return {
        **po,
        "lines": lines,
        "status": status,
        "supplier_reference": body["supplier_reference"],
    }


def resolve_supplier(
    given: Mapping[str, str], found: Mapping[str, Mapping[str, Any] | None]
) -> Mapping[str, Any]:
    """The one supplier that every identifier given (code, SIRET, VAT number) designates."""
    problems = [
        Pointed(f"/supplier/{key}", f"no supplier with {key} {given[key]!r}")
        for key in given
        if found.get(key) is None
    ]
    if problems:
        raise rule_broken(problems, "Unknown supplier")
    codes = {str(s["code"]) for s in found.values() if s is not None}
    if len(codes) > 1:
        raise rule_broken(
            [
                Pointed(
                    "/supplier", f"the identifiers designate different suppliers: {sorted(codes)}"
                )
            ],
            "Ambiguous supplier",
        )
    supplier = next(s for s in found.values() if s is not None)
    return supplier


def invoice_arithmetic_problems(body: Mapping[str, Any]) -> list[Pointed]:
    """Every way the invoice's lines, VAT breakdown and totals fail to add up (to the cent)."""
    problems: list[Pointed] = []
    bases: dict[Decimal, Decimal] = {}
    for i, line in enumerate(body["lines"]):
        expected = dec(line["quantity"]) * dec(line["unit_price"])
        if abs(dec(line["net_amount"]) - expected) > TOLERANCE:
            problems.append(
                Pointed(
                    f"/lines/{i}/net_amount",
                    f"{line['net_amount']} is not quantity × unit price ({money(expected)})",
                )
            )
        rate = dec(line["vat_rate"])
        bases[rate] = bases.get(rate, Decimal(0)) + dec(line["net_amount"])
    seen: set[Decimal] = set()
    net = vat = Decimal(0)
    for i, row in enumerate(body["vat_breakdown"]):
        rate, base, amount = dec(row["rate"]), dec(row["base"]), dec(row["amount"])
        net += base
        vat += amount
        if rate in seen:
            problems.append(
                Pointed(f"/vat_breakdown/{i}/rate", f"rate {row['rate']} is listed twice")
            )
            continue
        seen.add(rate)
        if rate not in bases:
            problems.append(
                Pointed(f"/vat_breakdown/{i}/rate", f"no line is at VAT rate {row['rate']}")
            )
        elif abs(base - bases[rate]) > TOLERANCE:
            problems.append(
                Pointed(
                    f"/vat_breakdown/{i}/base",
                    f"{row['base']} differs from the lines at {row['rate']} % ({money(bases[rate])})",
                )
            )
        expected_vat = base * rate / 100
        if abs(amount - expected_vat) > TOLERANCE:
            problems.append(
                Pointed(
                    f"/vat_breakdown/{i}/amount",
                    f"{row['amount']} is not {row['rate']} % of {row['base']} ({money(expected_vat)})",
                )
            )
    for rate in sorted(set(bases) - seen):
        problems.append(
            Pointed(
                "/vat_breakdown", f"the lines at VAT rate {rate_text(rate)} % have no breakdown row"
            )
        )
    totals = body["totals"]
    if dec(totals["net"]) != net:
        problems.append(
            Pointed(
                "/totals/net", f"{totals['net']} is not the sum of the VAT bases ({money(net)})"
            )
        )
    if dec(totals["vat"]) != vat:
        problems.append(
            Pointed(
                "/totals/vat", f"{totals['vat']} is not the sum of the VAT amounts ({money(vat)})"
            )
        )
    if dec(totals["gross"]) != dec(totals["net"]) + dec(totals["vat"]):
        problems.append(Pointed("/totals/gross", f"{totals['gross']} is not net + VAT"))
    if date.fromisoformat(body["due_date"]) < date.fromisoformat(body["issue_date"]):
        problems.append(Pointed("/due_date", "the due date is before the issue date"))
    return problems


def build_supplier_invoice(
    body: Mapping[str, Any],
    *,
    entry_id: str,
    supplier: Mapping[str, Any],
    credited: Mapping[str, Any] | None,
    known_purchase_orders: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The registered supplier document, once its arithmetic and references check out."""
    problems = invoice_arithmetic_problems(body)
    if body["document_type"] == "credit_note":
        if credited is None:
            problems.append(
                Pointed(
                    "/credited_invoice",
                    f"supplier {supplier['code']} has no invoice {body.get('credited_invoice')!r}",
                )
            )
    elif "credited_invoice" in body:
        problems.append(Pointed("/credited_invoice", "only a credit note credits an invoice"))
    for i, number in enumerate(body.get("purchase_orders", [])):
        po = known_purchase_orders.get(number)
        if po is None:
            problems.append(Pointed(f"/purchase_orders/{i}", f"unknown purchase order {number!r}"))
        elif po["supplier_code"] != supplier["code"]:
            problems.append(
                Pointed(
                    f"/purchase_orders/{i}",
                    f"purchase order {number} was sent to {po['supplier_code']}, "
                    f"not {supplier['code']}",
                )
            )
    if problems:
        raise rule_broken(problems, "Supplier invoice refused")
    return {
        "id": entry_id,
        "supplier_code": supplier["code"],
        "document_type": body["document_type"],
        "credited_invoice": body.get("credited_invoice"),
        "number": body["number"],
        "issue_date": body["issue_date"],
        "due_date": body["due_date"],
        "currency": body["currency"],
        "purchase_orders": list(body.get("purchase_orders", [])),
        "lines": [{"article_code": None, **line} for line in body["lines"]],
        "vat_breakdown": list(body["vat_breakdown"]),
        "totals": dict(body["totals"]),
        "status": "registered",
    }


def path_mismatch(body: Mapping[str, Any], path_values: Mapping[str, str]) -> list[Pointed]:
    """A write's path parameters must repeat the body's properties of the same name."""
    return [
        Pointed(f"/{name}", f"{body.get(name)!r} differs from {value!r} in the URL path")
        for name, value in path_values.items()
        if body.get(name) != value
    ]
