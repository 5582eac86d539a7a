"""Pricing an order as a web shop sends it: discounts, shipping, prices incl. VAT.

The contract's rule (docs/ecolix-api.md, "Orders"), exactly, with ``Decimal``:

1. A line's amount is ``quantity × unit_price`` rounded half-up to the cent, in the order's
   price mode (excl. VAT, or incl. VAT with ``prices_include_vat``).
2. Its own discount comes off: an amount, or ``amount × percentage / 100`` rounded to the cent.
3. The order's discount (an amount, or a percentage of the lines after their discounts, rounded
   to the cent) is spread over the lines in proportion to their amounts, each share rounded to
   the cent, the largest line taking the cents left over, so that the shares add up exactly.
4. Excl. VAT: a line's VAT is ``net × rate / 100`` rounded to the cent. Incl. VAT: the line's
   amount *is* its gross; its net is ``gross / (1 + rate / 100)`` rounded to the cent, and its
   VAT is ``gross − net``. Shipping is priced the same way at its own rate.
5. The totals are the sums; ``gross = net + vat``.

Why per line and gross first: a French ERP keeping a web shop's prices incl. VAT ("saisie
TTC") treats the customer's price as the reference and derives the rest from it, line by line,
so that the total incl. VAT equals, to the cent, what the shop charged and the customer paid;
VAT derived per line rather than per rate may differ from the shop's own VAT by a cent, never
the total. Rounding half-up ("arrondi commercial") is the contract's rule everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _text(value: Decimal) -> str:
    return str(cents(value))


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One line's figures, before it is written out."""

    index: int
    code: str
    label: str
    quantity: Decimal
    unit_price: Decimal
    rate: Decimal
    amount: Decimal  # after its own discount, in the price mode
    own_discount: Decimal


def gross_to_net(gross: Decimal, rate: Decimal) -> Decimal:
    """The amount excl. VAT in ``gross`` at ``rate`` percent, rounded half-up to the cent."""
    return cents(gross / (1 + rate / HUNDRED))


def split(amount: Decimal, rate: Decimal, *, includes_vat: bool) -> tuple[Decimal, Decimal]:
    """(net, vat) of an amount in the order's price mode."""
    if includes_vat:
        net = gross_to_net(amount, rate)
        return net, amount - net
    return amount, cents(amount * rate / HUNDRED)


def discount_of(spec: Mapping[str, Any] | None, base: Decimal) -> Decimal:
    """What a ``Discount`` takes off ``base``: its amount, or its percentage of ``base``."""
    if not spec:
        return Decimal(0)
    if "amount" in spec:
        return Decimal(spec["amount"])
    return cents(base * Decimal(spec["percentage"]) / HUNDRED)


def spread(total: Decimal, amounts: Sequence[Decimal]) -> list[Decimal]:
    """``total`` shared over ``amounts`` in proportion, to the cent, adding up exactly: each
    share rounded half-up, the largest amount (the first of equals) taking what is left."""
    whole = sum(amounts, Decimal(0))
    if not amounts or whole == 0 or total == 0:
        return [Decimal(0)] * len(amounts)
    largest = max(range(len(amounts)), key=lambda i: (amounts[i], -i))
    shares = [
        Decimal(0) if i == largest else cents(total * a / whole) for i, a in enumerate(amounts)
    ]
    shares[largest] = total - sum(shares, Decimal(0))
    return shares


def price_lines(
    lines: Sequence[PricedLine],
    body: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """(order lines, totals, extras: discount and shipping as recorded) of checked lines.

    ``body`` is the ``orders.create`` request; its lines are already checked (articles known
    and sold, quantities positive, discounts within their lines) and priced into ``lines``.
    """
    includes_vat = bool(body.get("prices_include_vat", False))
    order_discount = discount_of(body.get("discount"), sum((p.amount for p in lines), Decimal(0)))
    shares = spread(order_discount, [p.amount for p in lines])
    out: list[dict[str, Any]] = []
    net_total = vat_total = Decimal(0)
    for number, (line, share) in enumerate(zip(lines, shares, strict=True), start=1):
        amount = line.amount - share
        net, vat = split(amount, line.rate, includes_vat=includes_vat)
        net_total += net
        vat_total += vat
        unit_net = (
            (line.unit_price / (1 + line.rate / HUNDRED)) if includes_vat else line.unit_price
        )
        entry = {
            "line_number": number,
            "article_code": line.code,
            "label": line.label,
            "quantity": f"{line.quantity.normalize():f}",
            "unit_price": unit_text(unit_net),
            "vat_rate": _text(line.rate),
            "net_amount": _text(net),
            "vat_amount": _text(vat),
            "delivered_quantity": "0",
            "discount_amount": _text(line.own_discount + share),
            "gross_amount": _text(net + vat),
        }
        if includes_vat:
            entry["unit_price_incl_vat"] = unit_text(line.unit_price)
        out.append(entry)
    extras: dict[str, Any] = {"discount": None, "shipping": None}
    if body.get("discount"):
        extras["discount"] = {**body["discount"], "amount_taken": _text(order_discount)}
    shipping = body.get("shipping")
    if shipping:
        rate = Decimal(shipping["vat_rate"])
        net, vat = split(Decimal(shipping["amount"]), rate, includes_vat=includes_vat)
        net_total += net
        vat_total += vat
        extras["shipping"] = {
            **shipping,
            "vat_rate": _text(rate),
            "net_amount": _text(net),
            "vat_amount": _text(vat),
            "gross_amount": _text(net + vat),
        }
    totals = {
        "net": _text(net_total),
        "vat": _text(vat_total),
        "gross": _text(net_total + vat_total),
    }
    return out, totals, extras


def unit_text(value: Decimal) -> str:
    """A unit price: at least two decimals, up to four (``"12.50"``, ``"10.4167"``)."""
    rounded = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    if rounded == rounded.quantize(CENT):
        return _text(rounded)
    return f"{rounded.normalize():f}"
