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

from edigw.sandbox import order_pricing

CENT = Decimal("0.01")

PROBLEM_BASE = "https://ecolix.example/problems/"


@dataclass(frozen=True, slots=True)
class Pointed:
    """A JSON pointer into the request body, what is wrong there, and the rule's id if any."""

    pointer: str
    message: str
    rule: str | None = None


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
            doc["errors"] = [_error_entry(e) for e in self.errors]
        if self.existing_id is not None:
            doc["existing_id"] = self.existing_id
        return doc


def _error_entry(error: Pointed) -> dict[str, str]:
    entry = {"pointer": error.pointer, "message": error.message}
    if error.rule is not None:
        entry["rule"] = error.rule
    return entry


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


def _sold_line(
    i: int,
    line: Mapping[str, Any],
    articles: Mapping[str, Mapping[str, Any]],
    problems: list[Pointed],
) -> tuple[Mapping[str, Any], Decimal] | None:
    """Line ``i``'s article and quantity; None, with the problem added to ``problems``, when
    the article is unknown or no longer sold or the quantity is not above 0."""
    code = line["article_code"]
    article = articles.get(code)
    if article is None:
        problems.append(Pointed(f"/lines/{i}/article_code", f"unknown article {code!r}"))
        return None
    if not article.get("active", True):
        problems.append(Pointed(f"/lines/{i}/article_code", f"article {code!r} is no longer sold"))
        return None
    quantity = dec(line["quantity"])
    if quantity <= 0:
        problems.append(Pointed(f"/lines/{i}/quantity", "quantity must be greater than 0"))
        return None
    return article, quantity


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
        checked = _sold_line(i, line, articles, problems)
        if checked is None:
            continue
        article, quantity = checked
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
    """The order Ecolix records for an ``orders.create`` body (status ``received``).

    Priced by ``edigw.sandbox.order_pricing`` (discounts, shipping, prices incl. VAT); the
    payment must equal the total incl. VAT to the cent.
    """
    if customer is None:
        raise rule_broken(
            [Pointed("/customer_code", f"unknown customer {body['customer_code']!r}")],
            "Unknown customer",
        )
    lines, totals, extras = order_pricing.price_lines(_checked_lines(body, articles), body)
    # no payment: the order is on the customer's account, paid on invoice
    payment = dict(body["payment"]) if "payment" in body else None
    if payment is not None and dec(payment["amount"]) != dec(totals["gross"]):
        raise rule_broken(
            [
                Pointed(
                    "/payment/amount",
                    f"payment {payment['amount']} does not match the order total incl. VAT "
                    f"{totals['gross']}{_made_of(totals, extras)}",
                )
            ],
            "Payment does not match the order total",
        )
    if payment is not None:
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
        "currency": body.get("currency", "EUR"),
        "prices_include_vat": bool(body.get("prices_include_vat", False)),
        "discount": extras["discount"],
        "shipping": extras["shipping"],
        "billing_address": body.get("billing_address"),
        "customer_note": body.get("customer_note"),
    }


def _made_of(totals: Mapping[str, str], extras: Mapping[str, Any]) -> str:
    parts = []
    if extras["discount"]:
        parts.append(f"order discount {extras['discount']['amount_taken']} taken off the lines")
    if extras["shipping"]:
        parts.append(f"shipping {extras['shipping']['gross_amount']} incl. VAT")
    return f" ({', '.join(parts)})" if parts else ""


def _checked_lines(
    body: Mapping[str, Any], articles: Mapping[str, Mapping[str, Any]]
) -> list[order_pricing.PricedLine]:
    """The order's lines priced before discounts are spread; every refusal reported at once:
    unknown or discontinued articles, zero quantities, a line discount above its line, a
    catalogue price in another currency than EUR, an order discount above the lines."""
    problems: list[Pointed] = []
    priced: list[order_pricing.PricedLine] = []
    includes_vat = bool(body.get("prices_include_vat", False))
    currency = body.get("currency", "EUR")
    for i, line in enumerate(body["lines"]):
        code = line["article_code"]
        checked = _sold_line(i, line, articles, problems)
        if checked is None:
            continue
        article, quantity = checked
        rate = dec(article["vat_rate"])
        if "unit_price" in line:
            unit_price = dec(line["unit_price"])
        elif currency != "EUR":
            problems.append(
                Pointed(
                    f"/lines/{i}/unit_price",
                    f"an order in {currency} gives every line's unit_price: catalogue prices "
                    "are in EUR",
                )
            )
            continue
        elif includes_vat:  # the catalogue price excl. VAT, made incl. VAT to the cent
            unit_price = order_pricing.cents(dec(article["sale_price"]) * (1 + rate / 100))
        else:
            unit_price = dec(article["sale_price"])
        amount = order_pricing.cents(quantity * unit_price)
        own = order_pricing.discount_of(line.get("discount"), amount)
        if own > amount:
            problems.append(
                Pointed(
                    f"/lines/{i}/discount",
                    f"the discount {money(own)} is more than the line's amount {money(amount)}",
                )
            )
            continue
        priced.append(
            order_pricing.PricedLine(
                i, code, article["label"], quantity, unit_price, rate, amount - own, own
            )
        )
    if problems:
        raise rule_broken(problems, "Order lines refer to articles Ecolix cannot sell")
    subtotal = sum((p.amount for p in priced), Decimal(0))
    taken = order_pricing.discount_of(body.get("discount"), subtotal)
    if taken > subtotal:
        raise rule_broken(
            [
                Pointed(
                    "/discount",
                    f"the order discount {money(taken)} is more than the lines' amount "
                    f"{money(subtotal)}",
                )
            ],
            "Order discount refused",
        )
    return priced


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


def path_mismatch(body: Mapping[str, Any], path_values: Mapping[str, str]) -> list[Pointed]:
    """A write's path parameters must repeat the body's properties of the same name."""
    return [
        Pointed(f"/{name}", f"{body.get(name)!r} differs from {value!r} in the URL path")
        for name, value in path_values.items()
        if body.get(name) != value
    ]
