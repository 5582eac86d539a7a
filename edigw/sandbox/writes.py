"""The business writes: what each write operation of the contract does to the store.

A handler takes the sandbox, the open write transaction and a body already checked against
the contract's schema; it looks up what the rule needs, lets the pure rules decide (``rules``,
``invoices``, ``confirmations``, ``identifiers``), stores the result and answers
``(status, payload)``, or raises a ``BusinessRuleError``. ``Sandbox.write`` runs it inside the
transaction that also keeps idempotency and dry runs, so no handler sees HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edigw.sandbox import confirmations, invoices, rules
from edigw.sandbox.identifiers import resolve_supplier
from edigw.sandbox.rules import BusinessRuleError
from edigw.sandbox.seeding import (
    DELIVERY_NOTE_NUMBERS,
    ORDER_NUMBERS,
    SUPPLIER_INVOICE_IDS,
    alt_key,
    assign_number,
    record_invoice_state,
    record_state_change,
)
from edigw.sandbox.store import Tx

if TYPE_CHECKING:
    from edigw.sandbox.operations import Sandbox

WriteHandler = Callable[["Sandbox", Tx, dict[str, Any]], tuple[int, dict[str, Any]]]


def not_found(key: str, *, what: str) -> BusinessRuleError:
    return BusinessRuleError(404, "not-found", "Not found", [], detail=f"no {what} {key!r}")


def upsert_customer(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    existing = tx.get("customer", body["code"])
    if existing is not None and body.get("if_exists") == "keep":
        return 200, existing  # a known customer's record is not touched
    record = {
        "code": body["code"],
        "name": body["name"],
        "siret": body.get("siret"),
        "vat_number": body.get("vat_number"),
        "email": body.get("email"),
        "phone": body.get("phone"),
        "billing_address": body["billing_address"],
        "delivery_addresses": body.get(
            "delivery_addresses", existing["delivery_addresses"] if existing else []
        ),
        "payment_terms": body.get(
            "payment_terms", existing["payment_terms"] if existing else "NET30"
        ),
    }
    if existing is not None:
        unchanged = all(existing.get(k) == v for k, v in record.items())
        if unchanged:
            return 200, existing
        return 200, tx.put(
            "customer", body["code"], {**record, "created_at": existing["created_at"]}
        )
    return 201, tx.put("customer", body["code"], {**record, "created_at": tx.now()})


def create_order(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    customer = tx.get("customer", body["customer_code"])
    key = alt_key(body["customer_code"], body["external_reference"])
    if customer is not None:
        existing = tx.find_alt("order", key)
        if existing is not None:
            msg = (
                f"customer {body['customer_code']} already has order {existing['number']} "
                f"with external reference {body['external_reference']!r}"
            )
            raise rules.duplicate(
                msg,
                existing["number"],
                "/external_reference",
            )
    articles = tx.get_many("article", [line["article_code"] for line in body["lines"]])
    order = rules.build_order(body, number="", customer=customer, articles=articles)
    order["number"] = assign_number(tx, ORDER_NUMBERS)
    record_state_change(tx, order, "received", None)
    return 201, tx.put("order", order["number"], {**order, "created_at": tx.now()}, alt_key=key)


def validate_quote(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    quote = tx.get("quote", body["number"])
    if quote is None:
        raise not_found(body["number"], what="quote")
    articles = tx.get_many("article", [line["article_code"] for line in quote["lines"]])
    order = rules.order_from_quote(quote, body, number="", today=sb.today(), articles=articles)
    order["number"] = assign_number(tx, ORDER_NUMBERS)
    validated_at = body.get("validated_at") or tx.now()
    key = (
        alt_key(order["customer_code"], order["external_reference"])
        if order["external_reference"]
        else None
    )
    record_state_change(tx, order, "received", None)
    tx.put("order", order["number"], {**order, "created_at": tx.now()}, alt_key=key)
    tx.put(
        "quote",
        quote["number"],
        {
            **quote,
            "status": "validated",
            "order_number": order["number"],
            "customer_reference": body.get("customer_reference"),
        },
    )
    return 201, {
        "quote_number": quote["number"],
        "order_number": order["number"],
        "validated_at": validated_at,
    }


def create_delivery_note(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    key = alt_key(body["carrier_code"], body["booking_reference"])
    existing = tx.find_alt("delivery_note", key)
    if existing is not None:
        msg = (
            f"carrier {body['carrier_code']} booking {body['booking_reference']!r} is already "
            f"delivery note {existing['number']}"
        )
        raise rules.duplicate(
            msg,
            existing["number"],
            "/booking_reference",
        )
    order = tx.get("order", body["order_number"])
    carrier_known = tx.get("carrier", body["carrier_code"]) is not None
    note, updated_order = rules.build_delivery_note(
        body, number="", order=order, carrier_known=carrier_known
    )
    note["number"] = assign_number(tx, DELIVERY_NOTE_NUMBERS)
    tx.put("order", updated_order["number"], updated_order)
    return 201, tx.put(
        "delivery_note", note["number"], {**note, "created_at": tx.now()}, alt_key=key
    )


def confirm_purchase_order(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    po = tx.get("purchase_order", body["number"])
    if po is None:
        raise not_found(body["number"], what="purchase order")
    confirmed = confirmations.confirm_purchase_order(po, body)
    return 200, tx.put("purchase_order", po["number"], confirmed)


def create_supplier_invoice(
    sb: Sandbox, tx: Tx, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    supplier = resolve_supplier(body["supplier"], tx.all("supplier"))
    registered: dict[str, dict[str, Any]] = {}
    for ref in body.get("preceding_invoices", []):
        for kind in ("invoice", "credit_note"):
            found = tx.find_alt("supplier_invoice", alt_key(supplier["code"], kind, ref["number"]))
            if found is not None:
                registered.setdefault(ref["number"], found)
    named = list(body.get("purchase_orders", []))
    if body.get("order_reference"):
        named.append(body["order_reference"])
    pos = tx.get_many("purchase_order", named)
    invoice = invoices.build_supplier_invoice(
        body,
        entry_id="",
        supplier=supplier,
        registered=registered,
        purchase_orders={n: pos.get(n) for n in named},
    )
    # A body Ecolix refuses is refused first (422, nothing stored); a valid one that repeats
    # a registered document is the business duplicate (409).
    key = alt_key(supplier["code"], body["document_type"], body["number"])
    existing = tx.find_alt("supplier_invoice", key)
    if existing is not None:
        msg = (
            f"supplier {supplier['code']} document {body['number']!r} is already registered "
            f"as {existing['id']}"
        )
        raise rules.duplicate(msg, existing["id"], "/number")
    invoice["id"] = assign_number(tx, SUPPLIER_INVOICE_IDS)
    stored = tx.put(
        "supplier_invoice", invoice["id"], {**invoice, "created_at": tx.now()}, alt_key=key
    )
    record_invoice_state(tx, stored, None, None)
    return 201, stored


def _supplier_invoice(tx: Tx, invoice_id: str) -> dict[str, Any]:
    invoice = tx.get("supplier_invoice", invoice_id)
    if invoice is None:
        raise not_found(invoice_id, what="supplier invoice")
    return invoice


def set_supplier_invoice_status(
    sb: Sandbox, tx: Tx, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    invoice = _supplier_invoice(tx, body["id"])
    changed = invoices.change_status(invoice, body)
    if changed is None:
        return 200, invoice
    stored = tx.put("supplier_invoice", invoice["id"], changed)
    record_invoice_state(tx, stored, invoice["status"], body.get("reason"))
    return 200, stored


def attach_original(sb: Sandbox, tx: Tx, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    invoice = _supplier_invoice(tx, body["id"])
    current = invoice.get("attachment")
    if current is not None and all(
        current.get(k) == body[k] for k in ("sha256", "file_name", "content_type")
    ):
        return 200, current
    stored = invoices.attachment_of(body, attached_at=tx.now())
    tx.put("supplier_invoice_attachment", invoice["id"], stored)
    info = invoices.attachment_info(stored)
    tx.put("supplier_invoice", invoice["id"], {**invoice, "attachment": info})
    return 200, info


WRITES: dict[str, WriteHandler] = {
    "customers.upsert": upsert_customer,
    "orders.create": create_order,
    "quotes.validate": validate_quote,
    "delivery_notes.create": create_delivery_note,
    "purchase_orders.confirm": confirm_purchase_order,
    "supplier_invoices.create": create_supplier_invoice,
    "supplier_invoices.set_status": set_supplier_invoice_status,
    "supplier_invoices.attach": attach_original,
}
