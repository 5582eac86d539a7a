"""The supplier's answer to a purchase order (``purchase_orders.confirm``), as a pure rule.

Suppliers answer in three shapes, and Ecolix records each faithfully:

- **line by line** (no ``decision``): every listed line says ``accepted``, ``changed``,
  ``rejected`` or ``delivered`` (already delivered); the others stay as they were;
- **for the whole order** (``decision`` without lines): ``accepted`` confirms every line as
  ordered, ``rejected`` refuses every line, ``acknowledged`` only says the order arrived (the
  lines stay pending until the next answer);
- **both**: ``accepted``/``rejected``/``changed`` plus the lines it changes; the lines not
  listed take the decision (``changed``: they stay as they were).

What a line leaves out is what was ordered: an accepted line confirms the ordered quantity and
price; its date is the line's own promised date, else the order's ``promised_delivery_date``,
else the ordered date. No date is ever replaced silently: the order's promise is kept on the
purchase order, and a line's own date always wins over it.

A line listed several times is delivered in parts (PEPPOL's "added" lines): every part says
``changed`` with its quantity and date; the line's confirmed quantity is their sum, its date
the last part's, and the schedule is kept on the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from edigw.sandbox.rules import (
    Pointed,
    dec,
    invalid_state,
    price_text,
    quantity_text,
    rule_broken,
)

LINE_STATUSES = ("accepted", "changed", "rejected", "delivered")
"""What a supplier may say of a line (``delivered``: it was delivered already)."""

CLOSED = ("cancelled", "received")
"""Purchase orders no answer can change any more."""


def confirm_purchase_order(po: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The purchase order with the supplier's answer applied; 409/422 when it cannot be."""
    if po["status"] in CLOSED:
        msg = f"purchase order {po['number']} is {po['status']}"
        raise invalid_state(msg)
    decision = body.get("decision")
    listed = body.get("lines") or []
    problems = _shape_problems(decision, listed)
    if problems:
        raise rule_broken(problems, "Purchase order confirmation refused")
    promised = body.get("promised_delivery_date")
    by_number = {line["line_number"]: line for line in po["lines"]}
    parts: dict[int, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, line in enumerate(listed):
        target = by_number.get(line["line_number"])
        if target is None:
            problems.append(
                Pointed(
                    f"/lines/{i}/line_number",
                    f"the purchase order has no line {line['line_number']}",
                )
            )
            continue
        if "article_code" in line and line["article_code"] != target["article_code"]:
            problems.append(
                Pointed(
                    f"/lines/{i}/article_code",
                    f"line {line['line_number']} is article {target['article_code']}, "
                    f"not {line['article_code']}",
                )
            )
            continue
        if decision == "rejected" and line["status"] != "rejected":
            problems.append(
                Pointed(
                    f"/lines/{i}/status",
                    f"the order is rejected as a whole, but line {line['line_number']} "
                    f"is {line['status']}",
                )
            )
            continue
        parts.setdefault(line["line_number"], []).append((i, line))
    updates: dict[int, dict[str, Any]] = {}
    for number, entries in parts.items():
        target = by_number[number]
        if len(entries) == 1:
            index, line = entries[0]
            updates[number] = _answer(target, line, index, promised, problems)
        else:
            updates[number] = _schedule(target, entries, promised, problems)
    if problems:
        raise rule_broken(problems, "Purchase order confirmation refused")
    lines = []
    for line in po["lines"]:
        update = updates.get(line["line_number"])
        if update is None and decision in ("accepted", "rejected"):
            update = _whole(line, decision, promised)
        lines.append({**line, **update} if update else dict(line))
    return {
        **po,
        "lines": lines,
        "status": _status(lines),
        "supplier_reference": body["supplier_reference"],
        "supplier_decision": decision,
        "promised_delivery_date": promised,
        "supplier_note": body.get("note"),
    }


def _shape_problems(decision: str | None, listed: list[Mapping[str, Any]]) -> list[Pointed]:
    """Which decisions need, or forbid, lines."""
    if decision is None and not listed:
        return [Pointed("/lines", "give the lines, or a decision for the whole order")]
    if decision == "acknowledged" and listed:
        return [
            Pointed(
                "/lines",
                "an acknowledgement decides no line; send the lines with the answer that follows",
            )
        ]
    if decision == "changed" and not listed:
        return [Pointed("/lines", "an order accepted with changes lists the lines it changes")]
    return []


def _answer(
    target: Mapping[str, Any],
    line: Mapping[str, Any],
    i: int,
    promised: str | None,
    problems: list[Pointed],
) -> dict[str, Any]:
    """One line's answer, what it leaves out taken from the order."""
    status = line["status"]
    ordered_qty, ordered_price = dec(target["quantity"]), dec(target["unit_price"])
    default_qty = Decimal(0) if status == "rejected" else ordered_qty
    quantity = dec(line["confirmed_quantity"]) if "confirmed_quantity" in line else default_qty
    price = dec(line["unit_price"]) if "unit_price" in line else ordered_price
    if status in ("accepted", "delivered") and quantity != ordered_qty:
        problems.append(
            Pointed(
                f"/lines/{i}/confirmed_quantity",
                f"an {status} line confirms the ordered quantity {target['quantity']}; "
                "use status 'changed'",
            )
        )
    if status in ("accepted", "delivered") and price != ordered_price:
        problems.append(
            Pointed(
                f"/lines/{i}/unit_price",
                f"an {status} line confirms the ordered price {target['unit_price']}; "
                "use status 'changed'",
            )
        )
    if status == "rejected" and quantity != 0:
        problems.append(
            Pointed(f"/lines/{i}/confirmed_quantity", "a rejected line confirms quantity 0")
        )
    answer: dict[str, Any] = {
        "status": status,
        "confirmed_quantity": quantity_text(quantity),
        "confirmed_unit_price": price_text(price),
        "confirmed_delivery_date": line.get("delivery_date")
        or (None if status == "rejected" else promised or target["delivery_date"]),
        "confirmed_backorder_quantity": (
            quantity_text(dec(line["backorder_quantity"])) if "backorder_quantity" in line else None
        ),
        "confirmed_schedule": None,
        "substitute": line.get("substitute"),
        "supplier_note": line.get("note"),
    }
    return answer


def _schedule(
    target: Mapping[str, Any],
    entries: list[tuple[int, Mapping[str, Any]]],
    promised: str | None,
    problems: list[Pointed],
) -> dict[str, Any]:
    """A line delivered in parts: each part ``changed``, with its quantity and date."""
    number = target["line_number"]
    indexes = ", ".join(f"/lines/{i}" for i, _ in entries)
    schedule: list[tuple[Decimal, str]] = []
    for i, line in entries:
        if line["status"] != "changed" or "confirmed_quantity" not in line:
            problems.append(
                Pointed(
                    f"/lines/{i}/status",
                    f"line {number} is answered {len(entries)} times ({indexes}): a line is "
                    "answered once, or delivered in parts, each part 'changed' with its "
                    f"confirmed_quantity (this one is {line['status']}"
                    + ("" if "confirmed_quantity" in line else ", without a quantity")
                    + ")",
                )
            )
            continue
        date = line.get("delivery_date") or promised or target["delivery_date"]
        schedule.append((dec(line["confirmed_quantity"]), date))
    if not schedule:
        return {}
    prices = {dec(line.get("unit_price") or target["unit_price"]) for _, line in entries}
    if len(prices) > 1:
        problems.append(
            Pointed(
                f"/lines/{entries[-1][0]}/unit_price", f"the parts of line {number} differ in price"
            )
        )
    backorders = [
        dec(line["backorder_quantity"]) for _, line in entries if "backorder_quantity" in line
    ]
    notes = [line["note"] for _, line in entries if line.get("note")]
    substitutes = [line["substitute"] for _, line in entries if line.get("substitute")]
    return {
        "status": "changed",
        "confirmed_quantity": quantity_text(sum((qty for qty, _ in schedule), Decimal(0))),
        "confirmed_unit_price": price_text(min(prices)),
        "confirmed_delivery_date": max(day for _, day in schedule),
        "confirmed_backorder_quantity": quantity_text(sum(backorders, Decimal(0)))
        if backorders
        else None,
        "confirmed_schedule": [
            {"quantity": quantity_text(qty), "delivery_date": day}
            for qty, day in sorted(schedule, key=lambda part: part[1])
        ],
        "substitute": substitutes[0] if substitutes else None,
        "supplier_note": "; ".join(notes) or None,
    }


def _whole(line: Mapping[str, Any], decision: str, promised: str | None) -> dict[str, Any]:
    """A line the answer does not list takes the decision on the whole order."""
    accepted = decision == "accepted"
    return {
        "status": decision,
        "confirmed_quantity": line["quantity"] if accepted else "0",
        "confirmed_unit_price": price_text(dec(line["unit_price"])),
        "confirmed_delivery_date": (promised or line["delivery_date"]) if accepted else None,
        "confirmed_backorder_quantity": None,
        "confirmed_schedule": None,
        "substitute": None,
        "supplier_note": None,
    }


def _status(lines: Sequence[Mapping[str, Any]]) -> str:
    """``rejected`` when the supplier refused every line, ``confirmed`` once none is pending."""
    if all(line["status"] == "rejected" for line in lines):
        return "rejected"
    if all(line["status"] != "pending" for line in lines):
        return "confirmed"
    return "open"
