"""Supplier invoices: EN 16931's arithmetic as the standard states it, the registered
document, its lifecycle statuses and its attached original.

The arithmetic rules are those of EN 16931 (BR-CO-10 to BR-CO-17 and the per-category rules
BR-x-08/09), with the standard's own rounding (sums rounded to the cent, half up as XPath's
``round``) and tolerances, taking the looser where the official UBL and CII rule files differ:
a VAT category's tax amount may be off by up to 1 currency unit (BR-CO-17, CII), its taxable
base by less than 1 (BR-S-08, UBL); and the calculation of a line's net amount
(BT-131) within the same tolerance. Never stricter: a valid e-invoice must register. Every refusal
names the field (JSON pointer) and the rule id.

Senders that only know VAT rates (the suppliers' accounting export) leave the category out;
their lines and breakdown rows then match by rate, as they always did.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from edigw.sandbox.rules import (
    BusinessRuleError,
    Pointed,
    dec,
    invalid_state,
    money,
    quantity_text,
    rule_broken,
)

ZERO = Decimal(0)
HALF = Decimal("0.5")
TOLERANCE = Decimal(1)  # EN 16931's own (BR-CO-17, BR-S-08...): one currency unit
LINE_RULE = "EN16931-BT-131"  # the standard defines BT-131's calculation, without a BR id
NOT_COUNTED = frozenset({"GROUP", "INFORMATION"})  # EXTENDED lines kept, not summed
ZERO_TAX = frozenset({"Z", "E", "AE", "K", "G", "O"})
NEEDS_RATE = frozenset({"S", "L", "M"})
RULE_FAMILY = {
    "S": "BR-S",
    "Z": "BR-Z",
    "E": "BR-E",
    "AE": "BR-AE",
    "K": "BR-IC",
    "G": "BR-G",
    "O": "BR-O",
    "L": "BR-AF",
    "M": "BR-AG",
    None: "BR-S",  # rows known by rate only are standard-rated ones
}
CREDIT_NOTE_CODES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "502", "503", "532"}
)
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024

Key = tuple[str | None, Decimal]


def cents(value: Decimal) -> Decimal:
    """Rounded to the cent as EN 16931's rules round (XPath ``round``: half toward +∞)."""
    return (value * 100 + HALF).to_integral_value(rounding=ROUND_FLOOR) / 100


def _opt(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def _key(category: str | None, rate: Any) -> Key:
    return category, ZERO if rate is None else dec(rate)


def _label(key: Key) -> str:
    category, rate = key
    if category is None:
        return f"VAT rate {money(rate)} %"
    if category == "O":
        return "category O"
    return f"category {category} at {money(rate)} %"


def _counted(line: Mapping[str, Any]) -> bool:
    return line.get("status_reason") not in NOT_COUNTED


def _sum(items: Iterable[Mapping[str, Any]], field: str = "amount") -> Decimal:
    return sum((dec(item[field]) for item in items), ZERO)


# --------------------------------------------------------------------------- arithmetic


def line_problems(lines: Sequence[Mapping[str, Any]]) -> list[Pointed]:
    """Each line's net amount against the calculation EN 16931 defines for BT-131: quantity
    × (price ÷ base quantity) + its charges − its allowances, by less than the standard's
    rounding tolerance of one currency unit (the standard gives no rule id of its own)."""
    problems = []
    for i, line in enumerate(lines):
        base = dec(line.get("base_quantity", "1"))
        if base <= 0:
            problems.append(
                Pointed(f"/lines/{i}/base_quantity", "the price base quantity must be above 0")
            )
            continue
        quantity, price = dec(line["quantity"]), dec(line["unit_price"])
        charges, allowances = _sum(line.get("charges", [])), _sum(line.get("allowances", []))
        expected = quantity * (price / base) + charges - allowances
        if abs(dec(line["net_amount"]) - expected) >= TOLERANCE:
            how = f"quantity {quantity_text(quantity)} × unit price {line['unit_price']}"
            if base != 1:
                how += f" ÷ base quantity {quantity_text(base)}"
            if charges:
                how += f" + charges {money(charges)}"
            if allowances:
                how += f" − allowances {money(allowances)}"
            problems.append(
                Pointed(
                    f"/lines/{i}/net_amount",
                    f"{LINE_RULE}: {line['net_amount']} is not {how} = {money(expected)} "
                    "(by 1 or more)",
                    LINE_RULE,
                )
            )
    return problems


def _rate_problems(
    items: Sequence[Mapping[str, Any]], where: str, cat: str, rate: str
) -> list[Pointed]:
    problems = []
    for i, item in enumerate(items):
        category, value = item.get(cat), item.get(rate)
        if category == "O" and value is not None and dec(value) != 0:
            problems.append(
                Pointed(f"{where}/{i}/{rate}", "category O (not subject to VAT) has no VAT rate")
            )
        if category in NEEDS_RATE and value is None:
            problems.append(
                Pointed(f"{where}/{i}/{rate}", f"category {category} needs its VAT rate")
            )
    return problems


def _category_sums(body: Mapping[str, Any]) -> tuple[dict[Key, Decimal], ...]:
    """Line nets, document charges and allowances per (category, rate)."""
    sums: tuple[dict[Key, Decimal], ...] = ({}, {}, {})
    sources = (
        [line for line in body.get("lines", []) if _counted(line)],
        body.get("charges", []),
        body.get("allowances", []),
    )
    for totals, items, (cat, rate, amount) in zip(
        sums,
        sources,
        (
            ("vat_category", "vat_rate", "net_amount"),
            ("vat_category", "vat_rate", "amount"),
            ("vat_category", "vat_rate", "amount"),
        ),
        strict=True,
    ):
        for item in items:
            key = _key(item.get(cat), item.get(rate))
            totals[key] = totals.get(key, ZERO) + dec(item[amount])
    return sums


def breakdown_problems(body: Mapping[str, Any]) -> list[Pointed]:
    """Each VAT breakdown row: its tax amount (BR-CO-17, BR-x-09) and, when the invoice has
    lines, its base against them (BR-x-08); categories used but not broken down."""
    problems: list[Pointed] = []
    has_lines = bool(body.get("lines"))
    lines, charges, allowances = _category_sums(body)
    seen: set[Key] = set()
    for i, row in enumerate(body.get("vat_breakdown", [])):
        category = row.get("category")
        key = _key(category, row.get("rate"))
        family = RULE_FAMILY[category]
        if key in seen:
            problems.append(Pointed(f"/vat_breakdown/{i}", f"{_label(key)} is listed twice"))
            continue
        seen.add(key)
        base, amount = dec(row["base"]), dec(row["amount"])
        if category in ZERO_TAX:
            if amount != 0:
                problems.append(
                    Pointed(
                        f"/vat_breakdown/{i}/amount",
                        f"{family}-09: the VAT amount of {_label(key)} is 0, not {row['amount']}",
                        f"{family}-09",
                    )
                )
        elif key[1] == 0:
            if (amount + HALF).to_integral_value(rounding=ROUND_FLOOR) != 0:
                problems.append(
                    Pointed(
                        f"/vat_breakdown/{i}/amount",
                        f"BR-CO-17: at a rate of 0 the VAT amount is 0, not {row['amount']}",
                        "BR-CO-17",
                    )
                )
        else:
            expected = cents(abs(base) * key[1] / 100)
            if abs(abs(amount) - expected) > TOLERANCE:
                problems.append(
                    Pointed(
                        f"/vat_breakdown/{i}/amount",
                        f"BR-CO-17: {row['amount']} is not {money(key[1])} % of {row['base']} "
                        f"({money(expected)}, within 1)",
                        "BR-CO-17",
                    )
                )
        if not has_lines:
            continue
        if key not in lines and key not in charges and key not in allowances:
            problems.append(
                Pointed(
                    f"/vat_breakdown/{i}",
                    f"{family}-08: no line, allowance or charge is in {_label(key)}",
                    f"{family}-08",
                )
            )
            continue
        expected_base = (
            cents(lines.get(key, ZERO))
            + cents(charges.get(key, ZERO))
            - cents(allowances.get(key, ZERO))
        )
        if abs(base - expected_base) >= TOLERANCE:
            problems.append(
                Pointed(
                    f"/vat_breakdown/{i}/base",
                    f"{family}-08: {row['base']} differs from the lines, charges and allowances "
                    f"in {_label(key)} ({money(expected_base)}, by 1 or more)",
                    f"{family}-08",
                )
            )
    if has_lines:
        categories = {category for category, _ in seen}
        for key in sorted(set(lines) | set(charges) | set(allowances), key=repr):
            if key in seen:
                continue
            family = RULE_FAMILY[key[0]]
            rule = f"{family}-08" if key[0] in categories else f"{family}-01"
            problems.append(
                Pointed(
                    "/vat_breakdown",
                    f"{rule}: the lines, allowances or charges in {_label(key)} have no VAT "
                    "breakdown row",
                    rule,
                )
            )
    return problems


def totals_problems(body: Mapping[str, Any]) -> list[Pointed]:
    """BR-CO-10 to BR-CO-16 on ``totals``, absent totals counting as the standard says."""
    problems: list[Pointed] = []
    totals = body["totals"]
    lines = [line for line in body.get("lines", []) if _counted(line)]

    def broken(field: str, rule: str, message: str) -> None:
        problems.append(Pointed(f"/totals/{field}", f"{rule}: {message}", rule))

    line_sum = cents(_sum(lines, "net_amount")) if lines else None
    given_lines = _opt(totals.get("lines"))
    if line_sum is not None and given_lines is not None and given_lines != line_sum:
        broken(
            "lines",
            "BR-CO-10",
            f"{totals['lines']} is not the sum of the line net amounts ({money(line_sum)})",
        )
    for field, rule, items in (
        ("allowances", "BR-CO-11", body.get("allowances", [])),
        ("charges", "BR-CO-12", body.get("charges", [])),
    ):
        given = _opt(totals.get(field))
        expected = cents(_sum(items))
        if given is None and items:
            broken(field, rule, f"missing, but the document {field} add up to {money(expected)}")
        elif given is not None and given != expected:
            broken(
                field,
                rule,
                f"{totals[field]} is not the sum of the document {field} ({money(expected)})",
            )
    allowances = _opt(totals.get("allowances")) or ZERO
    charges = _opt(totals.get("charges")) or ZERO
    base = given_lines if given_lines is not None else line_sum
    net = dec(totals["net"])
    if base is not None and net != cents(base - allowances + charges):
        broken(
            "net",
            "BR-CO-13",
            f"{totals['net']} is not lines {money(base)} − allowances {money(allowances)} + "
            f"charges {money(charges)} ({money(cents(base - allowances + charges))})",
        )
    rows = body.get("vat_breakdown", [])
    vat_sum = cents(_sum(rows))
    vat = _opt(totals.get("vat"))
    if not rows:
        pass  # a header-only invoice without breakdown (MINIMUM): BT-110 stands alone
    elif vat is None and vat_sum != 0:
        broken("vat", "BR-CO-14", f"missing, but the VAT breakdown adds up to {money(vat_sum)}")
    elif vat is not None and vat != vat_sum:
        broken(
            "vat",
            "BR-CO-14",
            f"{totals['vat']} is not the sum of the VAT breakdown amounts ({money(vat_sum)})",
        )
    gross = dec(totals["gross"])
    if gross != cents(net + (vat or ZERO)):
        broken(
            "gross",
            "BR-CO-15",
            f"{totals['gross']} is not net {totals['net']} + VAT {totals.get('vat', '0')} ({money(cents(net + (vat or ZERO)))})",
        )
    payable = _opt(totals.get("payable"))
    prepaid = _opt(totals.get("prepaid")) or ZERO
    rounding = _opt(totals.get("rounding")) or ZERO
    # A header-only invoice of a profile without BT-113/BT-114 (Factur-X MINIMUM) cannot say
    # what was prepaid: its amount due stands as stated, as the profile's own rules have it.
    unstated = body.get("header_only") and "prepaid" not in totals and "rounding" not in totals
    if payable is not None and not unstated and cents(payable - rounding) != cents(gross - prepaid):
        broken(
            "payable",
            "BR-CO-16",
            f"{totals['payable']} is not gross {totals['gross']} − prepaid {money(prepaid)} + "
            f"rounding {money(rounding)} ({money(gross - prepaid + rounding)})",
        )
    return problems


def payable_of(totals: Mapping[str, Any]) -> Decimal:
    """BT-115: as given, else gross − prepaid + rounding."""
    if totals.get("payable") is not None:
        return dec(totals["payable"])
    return dec(totals["gross"]) - dec(totals.get("prepaid", "0")) + dec(totals.get("rounding", "0"))


def invoice_problems(body: Mapping[str, Any]) -> list[Pointed]:
    """Everything Ecolix refuses in a supplier invoice, before looking anything up."""
    credit = body["document_type"] == "credit_note"
    problems: list[Pointed] = []
    type_code = body.get("type_code")
    if type_code is not None and (type_code in CREDIT_NOTE_CODES) != credit:
        kind = "a credit note" if type_code in CREDIT_NOTE_CODES else "an invoice"
        problems.append(
            Pointed(
                "/type_code",
                f"type code {type_code} is {kind}, but document_type is {body['document_type']}",
            )
        )
    lines = body.get("lines", [])
    problems += _rate_problems(lines, "/lines", "vat_category", "vat_rate")
    problems += _rate_problems(
        body.get("allowances", []), "/allowances", "vat_category", "vat_rate"
    )
    problems += _rate_problems(body.get("charges", []), "/charges", "vat_category", "vat_rate")
    problems += _rate_problems(body.get("vat_breakdown", []), "/vat_breakdown", "category", "rate")
    problems += line_problems(lines)
    problems += breakdown_problems(body)
    problems += totals_problems(body)
    due = body.get("due_date")
    terms = (body.get("payment") or {}).get("terms")
    if (
        due is None
        and terms is None
        and not credit
        and not body.get("header_only")
        and payable_of(body["totals"]) > 0
    ):
        problems.append(
            Pointed(
                "/due_date",
                "BR-CO-25: an invoice with an amount due needs a due date or payment terms "
                "(payment.terms)",
                "BR-CO-25",
            )
        )
    return problems


# --------------------------------------------------------------------------- registration


def build_supplier_invoice(
    body: Mapping[str, Any],
    *,
    entry_id: str,
    supplier: Mapping[str, Any],
    registered: Mapping[str, Mapping[str, Any]],
    purchase_orders: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The registered document, once it adds up and its references check out.

    ``registered``: the supplier's registered documents by number (to link the preceding
    invoices); ``purchase_orders``: the purchase orders named (``purchase_orders`` and the
    order reference), None when unknown.
    """
    problems = invoice_problems(body)
    for i, number in enumerate(body.get("purchase_orders", [])):
        po = purchase_orders.get(number)
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
    credit = body["document_type"] == "credit_note"
    order_ref = body.get("order_reference")
    linked = purchase_orders.get(order_ref) if order_ref else None
    totals = body["totals"]
    return {
        "id": entry_id,
        "supplier_code": supplier["code"],
        "document_type": body["document_type"],
        "type_code": body.get("type_code") or ("381" if credit else "380"),
        "number": body["number"],
        "issue_date": body["issue_date"],
        "due_date": body.get("due_date"),
        "tax_point_date": body.get("tax_point_date"),
        "delivery_date": body.get("delivery_date"),
        "period": body.get("period"),
        "currency": body["currency"],
        "profile": body.get("profile"),
        "seller": {k: v for k, v in body["supplier"].items() if k != "code"},
        "buyer": body.get("buyer"),
        "buyer_reference": body.get("buyer_reference"),
        "order_reference": order_ref,
        "linked_purchase_order": (
            linked["number"]
            if linked is not None and linked["supplier_code"] == supplier["code"]
            else None
        ),
        "sales_order_reference": body.get("sales_order_reference"),
        "contract_reference": body.get("contract_reference"),
        "project_reference": body.get("project_reference"),
        "receiving_advice_reference": body.get("receiving_advice_reference"),
        "despatch_advice_reference": body.get("despatch_advice_reference"),
        "buyer_accounting_reference": body.get("buyer_accounting_reference"),
        "purchase_orders": list(body.get("purchase_orders", [])),
        "preceding_invoices": [
            {
                "number": ref["number"],
                "issue_date": ref.get("issue_date"),
                "registered_id": (
                    registered[ref["number"]]["id"] if ref["number"] in registered else None
                ),
            }
            for ref in body.get("preceding_invoices", [])
        ],
        "notes": list(body.get("notes", [])),
        "header_only": bool(body.get("header_only", False)),
        "lines": list(body.get("lines", [])),
        "allowances": list(body.get("allowances", [])),
        "charges": list(body.get("charges", [])),
        "vat_breakdown": list(body.get("vat_breakdown", [])),
        "totals": {
            "lines": totals.get("lines"),
            "allowances": totals.get("allowances"),
            "charges": totals.get("charges"),
            "net": totals["net"],
            "vat": totals.get("vat"),
            "vat_accounting_currency": totals.get("vat_accounting_currency"),
            "gross": totals["gross"],
            "prepaid": totals.get("prepaid"),
            "rounding": totals.get("rounding"),
            "payable": totals.get("payable") or money(payable_of(totals)),
        },
        "payment": body.get("payment"),
        "attachment": None,
        "status": "registered",
        "status_reason": None,
    }


# --------------------------------------------------------------------------- lifecycle

#: status -> (the French reform's lifecycle code, its name)
LIFECYCLE: Mapping[str, tuple[str | None, str | None]] = {
    "registered": (None, None),
    "taken_over": ("204", "Prise en charge"),
    "approved": ("205", "Approuvée"),
    "disputed": ("207", "En litige"),
    "refused": ("210", "Refusée"),
    "payment_transmitted": ("211", "Paiement transmis"),
}
MOVES: Mapping[str, frozenset[str]] = {
    "registered": frozenset({"taken_over", "approved", "disputed", "refused"}),
    "taken_over": frozenset({"approved", "disputed", "refused"}),
    "disputed": frozenset({"taken_over", "approved", "refused"}),
    "approved": frozenset({"disputed", "payment_transmitted"}),
    "refused": frozenset(),
    "payment_transmitted": frozenset(),
}


def change_status(invoice: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The invoice in the status ``body`` asks for; None when it is already in it.

    Refused with 409 ``invalid-state`` when the lifecycle does not allow the move.
    """
    current, wanted = invoice["status"], body["status"]
    if wanted == current:
        return None
    if wanted not in MOVES[current]:
        allowed = ", ".join(sorted(MOVES[current])) or "none: it is final"
        msg = (
            f"supplier invoice {invoice['id']} is {current}; it may become {allowed}, not {wanted}"
        )
        raise invalid_state(msg, "/status")
    return {**invoice, "status": wanted, "status_reason": body.get("reason")}


def state_change(
    invoice: Mapping[str, Any], previous: str | None, reason: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One item of the state-change feed: what a lifecycle message to the platform needs."""
    code, label = LIFECYCLE[invoice["status"]]
    return {
        "invoice_id": invoice["id"],
        "supplier_code": invoice["supplier_code"],
        "number": invoice["number"],
        "document_type": invoice["document_type"],
        "type_code": invoice["type_code"],
        "issue_date": invoice["issue_date"],
        "seller": invoice["seller"],
        "buyer": invoice.get("buyer"),
        "status": invoice["status"],
        "lifecycle_code": code,
        "lifecycle_label": label,
        "previous_status": previous,
        "reason": None if reason is None else dict(reason),
    }


# --------------------------------------------------------------------------- attachment


def attachment_of(body: Mapping[str, Any], *, attached_at: str) -> dict[str, Any]:
    """The stored attachment (bytes in base64) once the bytes match their ``sha256``."""
    try:
        content = base64.b64decode(body["content_base64"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise rule_broken([Pointed("/content_base64", f"not base64: {exc}")]) from None
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise rule_broken(
            [Pointed("/content_base64", f"{len(content):,} bytes, more than the 50 MB allowed")]
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != body["sha256"]:
        raise rule_broken(
            [Pointed("/sha256", f"the bytes sent have sha256 {digest}, not {body['sha256']}")],
            "Attachment damaged in transit",
        )
    return {
        "id": body["id"],
        "file_name": body["file_name"],
        "content_type": body["content_type"],
        "size": len(content),
        "sha256": digest,
        "attached_at": attached_at,
        "content_base64": body["content_base64"],
    }


def attachment_info(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The attachment without its bytes (what the invoice and the PUT answer show)."""
    return {k: v for k, v in stored.items() if k not in ("content_base64", "updated_at")}


__all__ = [
    "CREDIT_NOTE_CODES",
    "LIFECYCLE",
    "BusinessRuleError",
    "attachment_info",
    "attachment_of",
    "build_supplier_invoice",
    "change_status",
    "invoice_problems",
    "state_change",
]
